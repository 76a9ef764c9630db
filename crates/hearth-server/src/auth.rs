//! Startup tokens, the first release's authentication, still accepted by
//! [`crate::access::authenticate`] while clients move to request proofs.
//!
//! `hearth serve` draws two random tokens at start and prints them: an admin
//! token and a member token. A token is sent as an `Authorization: Bearer`
//! header or as the `hearth_token` cookie (HttpOnly, Secure,
//! SameSite=Strict) that the sign-in form sets. Tokens live only in memory,
//! so a restart signs every device out.

use axum::http::{HeaderMap, header};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "hearth_token";

/// Permission level of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything, including photo locations; may start scans.
    Admin,
    /// Browses and plays, but never receives photo locations.
    Member,
}

/// The two tokens of this server run.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    member: String,
}

impl Tokens {
    /// Draws two new random tokens (32 bytes each, hex).
    pub fn generate() -> Self {
        Self { admin: hex::encode(rand::random::<[u8; 32]>()), member: hex::encode(rand::random::<[u8; 32]>()) }
    }

    /// Uses the given tokens (tests and the desktop app pass their own).
    pub fn from_values(admin: String, member: String) -> Self {
        Self { admin, member }
    }

    /// Returns the admin token.
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// Returns the member token.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// Returns the role a presented token grants, compared in constant time.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        if constant_time_eq(presented.as_bytes(), self.admin.as_bytes()) {
            Some(Role::Admin)
        } else if constant_time_eq(presented.as_bytes(), self.member.as_bytes()) {
            Some(Role::Member)
        } else {
            None
        }
    }
}

/// Extracts the token from the Authorization header, else from the cookie.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    // The scheme name is case-insensitive (RFC 9110 section 11.1).
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_owned());
    }

    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// Builds the Set-Cookie value that stores `token` for this origin.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// Builds the Set-Cookie value that deletes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_header_wins_over_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("hearth_token=def"));

        assert_eq!(presented_token(&headers).as_deref(), Some("abc"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bEaReR abc"));

        assert_eq!(presented_token(&headers).as_deref(), Some("abc"));
    }

    #[test]
    fn cookie_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("theme=dark; hearth_token=def; x=1"));

        assert_eq!(presented_token(&headers).as_deref(), Some("def"));
    }

    #[test]
    fn roles_match_only_exact_tokens() {
        let tokens = Tokens::from_values("admin-secret".into(), "member-secret".into());

        assert_eq!(tokens.role_of("admin-secret"), Some(Role::Admin));
        assert_eq!(tokens.role_of("member-secret"), Some(Role::Member));
        assert_eq!(tokens.role_of("admin-secre"), None);
        assert_eq!(tokens.role_of(""), None);
    }
}
