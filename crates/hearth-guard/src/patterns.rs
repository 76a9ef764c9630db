//! What attacks look like in a request: paths no household client asks
//! for, traversal in its encoded forms, injection probes, scanner names.
//! Every list here matches lowercase text after percent-decoding.

/// Decodes `%XX` escapes and `+` once; bytes that do not form an escape stay.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns `target` lowercased and percent-decoded until it stops changing
/// (at most three times, which undoes double and triple encoding).
pub(crate) fn normalise(target: &str) -> String {
    // Overlong UTF-8 for "/" and ".", which lax decoders accept, first.
    let mut text = target.to_ascii_lowercase().replace("%c0%af", "/").replace("%c0%ae", ".");
    for _ in 0..3 {
        let decoded = percent_decode(&text).to_ascii_lowercase();
        if decoded == text {
            break;
        }
        text = decoded;
    }
    text
}

/// Paths that only scanners and intruders ask a media server for.
const SENSITIVE: [&str; 26] = [
    "/.env", "/.git", "/.svn", "/.hg/", "/.htaccess", "/.htpasswd", "/.ds_store", "/.aws/", "/.ssh/", "id_rsa", "/wp-config",
    "/wp-admin", "/wp-login", "/phpmyadmin", "/server-status", "/config.php", "/web.config", "/.well-known/security.txt.bak",
    ".sql", ".sqlite", ".sqlite3", ".db", ".bak", ".old", ".swp", "/backup",
];

/// Returns the sensitive pattern that `path` (normalised, without query) requests.
pub(crate) fn sensitive(path: &str) -> Option<&'static str> {
    SENSITIVE.iter().copied().find(|pattern| {
        if pattern.starts_with('.') && !pattern.contains('/') {
            // An extension: the path ends with it (hearth.sqlite3, dump.sql).
            path.ends_with(pattern) || path.contains(&format!("{pattern}/")) || path.ends_with(&format!("{pattern}~"))
        } else {
            path.contains(pattern)
        }
    })
}

/// Traversal forms after normalising: dot segments with either slash, and
/// the usual target files.
const TRAVERSAL: [&str; 7] = ["../", "..\\", "/..", "\\..", "/etc/passwd", "/etc/shadow", "c:\\windows"];

/// Returns the traversal pattern in `target` (normalised), if any.
pub(crate) fn traversal(target: &str) -> Option<&'static str> {
    TRAVERSAL.iter().copied().find(|pattern| target.contains(pattern))
}

/// SQL injection and cross-site scripting probes. Plain words such as
/// "select" alone are left out: a family searches for "Select Comedies".
const INJECTION: [&str; 31] = [
    "' or '1'='1", "' or 1=1", "\" or \"1\"=\"1", " or 1=1--", "union select", "union all select", "sleep(", "benchmark(",
    "waitfor delay", "information_schema", "xp_cmdshell", "';--", "<script", "javascript:", "onerror=", "onload=", "<svg/onload",
    "{{7*7}}",
    // Function calls that blind and error-based injection tools (sqlmap)
    // build their payloads from; no title or search contains them.
    "(select ", "dbms_", "chr(", "char(", "xmltype(", "extractvalue(", "updatexml(", "pg_sleep(", "rlike ", "@@version",
    "sqlite_version(", "randomblob(", "convert(int",
];

/// Returns the injection pattern in `query` (normalised), if any.
pub(crate) fn injection(query: &str) -> Option<&'static str> {
    INJECTION.iter().copied().find(|pattern| query.contains(pattern)).or_else(|| numeric_tautology(query))
}

/// Finds a boolean probe such as `20 AND 5487=5487` or `1) OR 3=4`: the
/// word `and` or `or` followed by a comparison of two numbers, which blind
/// injection tools append to a parameter to compare the answers.
fn numeric_tautology(query: &str) -> Option<&'static str> {
    for (keyword, name) in [(" and ", "and N=N"), (" or ", "or N=N")] {
        for (index, _) in query.match_indices(keyword) {
            let rest = &query[index + keyword.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with('=') && rest[digits + 1..].starts_with(|c: char| c.is_ascii_digit()) {
                return Some(name);
            }
        }
    }
    None
}

/// User agents of scanning and attack tools, lowercase.
const SCANNERS: [&str; 16] = [
    "nmap", "nikto", "sqlmap", "gobuster", "dirbuster", "dirb/", "wfuzz", "ffuf", "hydra", "masscan", "zgrab", "wapiti", "nuclei",
    "acunetix", "nessus", "openvas",
];

/// Returns the scanner named in `user_agent`, if any.
pub(crate) fn scanner(user_agent: &str) -> Option<&'static str> {
    let agent = user_agent.to_ascii_lowercase();
    SCANNERS.iter().copied().find(|name| agent.contains(name))
}

/// Methods no Hearth client sends.
pub(crate) fn unusual_method(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_traversal_is_seen() {
        for target in ["/api/v1/items/../../etc/passwd", "/%2e%2e/%2e%2e/x", "/..%2f..%2fhearth.sqlite3", "/%252e%252e%252f", "/a/..%5c..%5cwin", "/..%c0%af..%c0%afetc"] {
            assert!(traversal(&normalise(target)).is_some(), "{target}");
        }
        for target in ["/api/v1/items?q=ok", "/hls/abc/720p/3.m4s", "/media/x/stream", "/ui/assets/index-3f.js"] {
            assert!(traversal(&normalise(target)).is_none(), "{target}");
        }
    }

    #[test]
    fn sensitive_files_and_clean_paths() {
        for path in ["/.env", "/.git/config", "/backup.tar.gz", "/hearth.sqlite3", "/db.sql", "/index.php.bak", "/wp-login.php", "/.ssh/id_rsa"] {
            assert!(sensitive(&normalise(path)).is_some(), "{path}");
        }
        for path in ["/api/v1/items", "/ui/", "/media/abc/thumbnail", "/api/v1/items/in-progress", "/app.js", "/dbz-episode"] {
            assert!(sensitive(&normalise(path)).is_none(), "{path}");
        }
    }

    #[test]
    fn injection_probes_but_not_searches() {
        assert!(injection(&normalise("/api/v1/items?q=1%27%20or%20%271%27%3D%271")).is_some());
        assert!(injection(&normalise("/api/v1/items?q=%3Cscript%3Ealert(1)%3C/script%3E")).is_some());
        assert!(injection(&normalise("/api/v1/items?q=x%27%20UNION%20SELECT%20name%20FROM%20users--")).is_some());
        assert!(injection(&normalise("/api/v1/items?limit=20%29%20AND%205487%3DDBMS_UTILITY.SQLID_TO_SQLHASH%28%28CHR%28113%29")).is_some());
        assert_eq!(injection(&normalise("/api/v1/items?limit=20%20AND%202492%3D2492")), Some("and N=N"));
        assert_eq!(injection(&normalise("/api/v1/items?limit=20%29%20OR%203%3D4")), Some("or N=N"));
        assert!(injection(&normalise("/api/v1/items?q=Select+Comedies")).is_none());
        assert!(injection(&normalise("/api/v1/items?q=Salt+and+1+pepper")).is_none());
        assert!(injection(&normalise("/api/v1/items?q=Fast+and+Furious+7")).is_none());
        assert!(injection(&normalise("/api/v1/items?q=Rock+%26+Roll")).is_none());
    }

    #[test]
    fn scanners_and_methods() {
        assert_eq!(scanner("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"), Some("nmap"));
        assert_eq!(scanner("Mozilla/5.00 (Nikto/2.1.6)"), Some("nikto"));
        assert_eq!(scanner("Fuzz Faster U Fool v2.1.0"), None, "ffuf's default agent does not name it; other rules catch it");
        assert_eq!(scanner("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36"), None);
        for method in ["TRACE", "TRACK", "DEBUG", "PROPFIND"] {
            assert!(unusual_method(method), "{method}");
        }
        for method in ["GET", "DELETE"] {
            assert!(!unusual_method(method), "{method}");
        }
    }
}
