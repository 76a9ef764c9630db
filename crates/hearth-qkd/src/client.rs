//! [`EtsiQkdClient`]: the SAE side of ETSI GS QKD 014 over HTTPS with mutual
//! TLS.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hearth_pqc::KeyExchangePolicy;
use hearth_pqc::qkd::{QkdError, QkdKey, QkdKeySource};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode, Url};
use rustls::RootCertStore;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::api::{API_PREFIX, ErrorBody, KeyContainer, KeyIdEntry, KeyIds, KeyRequest, Status};

/// Time a request may take, connection and TLS handshake included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read from a KME. 128 keys of 8192 bits in base64
/// come to about 175 KiB, so this leaves room for extensions.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Connection settings for one KME: its URL and this SAE's credentials.
pub struct KmeClientConfig {
    /// Base URL of the KME, such as `https://kme-a.local:8443`; the ETSI 014
    /// paths (`/api/v1/keys/...`) are appended to its path.
    pub kme_url: String,
    /// This SAE's id. The KME identifies the caller by its certificate, so
    /// the id only appears in logs and is checked against status responses.
    pub sae_id: String,
    /// This SAE's client certificate, leaf first.
    pub client_cert_chain: Vec<CertificateDer<'static>>,
    /// The private key of the client certificate.
    pub client_key: PrivateKeyDer<'static>,
    /// The CA certificates that the KME's server certificate must chain to.
    pub kme_ca_certs: Vec<CertificateDer<'static>>,
    /// Time limit per request; [`DEFAULT_TIMEOUT`] unless set.
    pub timeout: Duration,
}

impl KmeClientConfig {
    /// Builds a configuration from PEM text: the client certificate chain
    /// (leaf first), its private key, and the KME's CA certificates.
    pub fn from_pem(
        kme_url: &str,
        sae_id: &str,
        client_cert_pem: &[u8],
        client_key_pem: &[u8],
        kme_ca_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let client_cert_chain = certificates_from_pem(client_cert_pem, "client certificate")?;
        let client_key = PrivateKeyDer::from_pem_slice(client_key_pem).map_err(|source| match source {
            rustls::pki_types::pem::Error::NoItemsFound => ConfigError::MissingPem { input: "client key" },
            source => ConfigError::InvalidPem { input: "client key", source },
        })?;
        let kme_ca_certs = certificates_from_pem(kme_ca_pem, "KME CA certificate")?;

        Ok(Self {
            kme_url: kme_url.to_owned(),
            sae_id: sae_id.to_owned(),
            client_cert_chain,
            client_key,
            kme_ca_certs,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Builds a configuration from PEM files, as [`Self::from_pem`] does.
    pub fn from_pem_files(
        kme_url: &str,
        sae_id: &str,
        client_cert_path: &Path,
        client_key_path: &Path,
        kme_ca_path: &Path,
    ) -> Result<Self, ConfigError> {
        let read = |path: &Path| {
            std::fs::read(path).map(Zeroizing::new).map_err(|source| ConfigError::Io { path: path.to_owned(), source })
        };
        let cert = read(client_cert_path)?;
        let key = read(client_key_path)?;
        let ca = read(kme_ca_path)?;

        Self::from_pem(kme_url, sae_id, &cert, &key, &ca)
    }
}

impl fmt::Debug for KmeClientConfig {
    /// Prints where the KME is and who calls it, never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmeClientConfig")
            .field("kme_url", &self.kme_url)
            .field("sae_id", &self.sae_id)
            .field("client_cert_chain_len", &self.client_cert_chain.len())
            .field("kme_ca_certs_len", &self.kme_ca_certs.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A client for one KME under ETSI GS QKD 014 v1.1.1, speaking HTTPS with
/// mutual TLS (TLS 1.3, X25519MLKEM768 preferred, aws-lc-rs).
///
/// It uses reqwest's blocking client, which runs its own runtime: create,
/// call and drop it outside async code, or inside `spawn_blocking`.
pub struct EtsiQkdClient {
    base_url: Url,
    sae_id: String,
    http: Client,
}

impl EtsiQkdClient {
    /// Builds a client from `config`; makes no request yet.
    pub fn new(config: KmeClientConfig) -> Result<Self, ConfigError> {
        let base_url = parse_base_url(&config.kme_url)?;
        let tls = tls_config(config.client_cert_chain, config.client_key, config.kme_ca_certs)?;
        let http = Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .timeout(config.timeout)
            .build()
            .map_err(ConfigError::HttpClient)?;

        Ok(Self { base_url, sae_id: config.sae_id, http })
    }

    /// This SAE's id, as configured.
    pub fn sae_id(&self) -> &str {
        &self.sae_id
    }

    /// Fetches the KME's status for keys shared with `slave_sae_id`
    /// (ETSI 014 "Get status", `GET /api/v1/keys/{slave_SAE_ID}/status`).
    pub fn status(&self, slave_sae_id: &str) -> Result<Status, QkdError> {
        let url = self.endpoint(slave_sae_id, "status");
        let body = self.send(Method::GET, &url, None::<&()>, &[])?;
        let status: Status = parse_json(&url, &body)?;

        if status.slave_SAE_ID != slave_sae_id {
            return Err(invalid(
                &url,
                format!("status names slave SAE {:?}, expected {slave_sae_id:?}", status.slave_SAE_ID),
            ));
        }
        if status.master_SAE_ID != self.sae_id {
            return Err(invalid(
                &url,
                format!("status names master SAE {:?}, but this client is {:?}", status.master_SAE_ID, self.sae_id),
            ));
        }
        Ok(status)
    }

    /// Obtains new keys as the master SAE with a full key request, for
    /// example one naming `additional_slave_SAE_IDs` (ETSI 014 "Get key",
    /// `POST /api/v1/keys/{slave_SAE_ID}/enc_keys`).
    ///
    /// A request without `size` takes the KME's default key size; the
    /// response is then checked only for consistent key lengths.
    pub fn get_keys(&self, slave_sae_id: &str, request: &KeyRequest) -> Result<Vec<QkdKey>, QkdError> {
        let url = self.endpoint(slave_sae_id, "enc_keys");
        let body = self.send(Method::POST, &url, Some(request), &[])?;
        let container: KeyContainer = parse_json(&url, &body)?;

        let expected_count = request.number.unwrap_or(1) as usize;
        if container.keys.len() != expected_count {
            return Err(invalid(&url, format!("got {} keys, requested {expected_count}", container.keys.len())));
        }
        let keys = decode_keys(&url, container)?;
        check_key_lengths(&url, &keys, request.size)?;

        tracing::debug!(kme = %self.base_url, slave_sae = slave_sae_id, count = keys.len(), "QKD keys obtained");
        Ok(keys)
    }

    /// Builds the URL `{base}/api/v1/keys/{sae_id}/{action}`, with the SAE id
    /// percent-encoded as one path segment.
    fn endpoint(&self, sae_id: &str, action: &str) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("parse_base_url accepts only https URLs, which can be a base")
            .pop_if_empty()
            .extend(API_PREFIX)
            .push(sae_id)
            .push(action);
        url
    }

    /// Sends one request and returns the body of a 200 response. Other
    /// responses become the matching [`QkdError`]. A 400 that names one of
    /// `requested_key_ids` becomes [`QkdError::UnknownKeyId`].
    fn send<B: Serialize>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        requested_key_ids: &[String],
    ) -> Result<Zeroizing<Vec<u8>>, QkdError> {
        let mut request = self.http.request(method, url.clone()).header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().map_err(|source| transport(url, source))?;

        // NOTE: only this copy of the body is wiped; the buffers inside
        // hyper and rustls that held the base64 keys before are not.
        let status = response.status();
        let mut bytes = Zeroizing::new(Vec::new());
        response.take(MAX_RESPONSE_BYTES + 1).read_to_end(&mut bytes).map_err(|source| transport(url, source))?;
        if bytes.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(invalid(url, format!("response body exceeds {MAX_RESPONSE_BYTES} bytes")));
        }
        tracing::debug!(url = %url, status = status.as_u16(), "KME responded");

        if status == StatusCode::OK {
            return Ok(bytes);
        }
        Err(error_from_answer(url, status, &bytes, requested_key_ids))
    }
}

impl QkdKeySource for EtsiQkdClient {
    fn enc_keys(&self, slave_sae_id: &str, number: u32, size_bits: u32) -> Result<Vec<QkdKey>, QkdError> {
        let request = KeyRequest { number: Some(number), size: Some(size_bits), ..KeyRequest::default() };
        self.get_keys(slave_sae_id, &request)
    }

    /// Sends `POST /api/v1/keys/{master_SAE_ID}/dec_keys` with a Key IDs
    /// body. An empty `key_ids` returns no keys without asking the KME.
    fn dec_keys(&self, master_sae_id: &str, key_ids: &[String]) -> Result<Vec<QkdKey>, QkdError> {
        if key_ids.is_empty() {
            return Ok(Vec::new());
        }

        let url = self.endpoint(master_sae_id, "dec_keys");
        let request = KeyIds {
            key_IDs: key_ids.iter().map(|id| KeyIdEntry { key_ID: id.clone(), key_ID_extension: None }).collect(),
            key_IDs_extension: None,
        };
        let body = self.send(Method::POST, &url, Some(&request), key_ids)?;
        let container: KeyContainer = parse_json(&url, &body)?;

        let keys = decode_keys(&url, container)?;
        let keys = order_as_requested(&url, keys, key_ids)?;
        tracing::debug!(kme = %self.base_url, master_sae = master_sae_id, count = keys.len(), "QKD keys obtained by id");
        Ok(keys)
    }
}

fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|source| ConfigError::InvalidUrl { url: text.to_owned(), source })?;
    if url.scheme() != "https" || url.cannot_be_a_base() {
        return Err(ConfigError::NotHttps { url: text.to_owned() });
    }
    Ok(url)
}

/// Builds the rustls client configuration: TLS 1.3, hybrid key exchange preferred,
/// the KME's CA as the only root, and this SAE's client certificate.
fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    kme_ca_certs: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in kme_ca_certs {
        roots.add(cert)?;
    }
    let provider = Arc::new(CryptoProvider {
        kx_groups: KeyExchangePolicy::HybridPreferred.groups(),
        ..aws_lc_rs::default_provider()
    });

    // NOTE: TLS 1.3 only, like the rest of Hearth. ETSI 014 also allows TLS
    // 1.2, so a KME that speaks nothing newer fails the handshake here.
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates_from_pem(pem: &[u8], input: &'static str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ConfigError::InvalidPem { input, source })?;
    if certs.is_empty() {
        return Err(ConfigError::MissingPem { input });
    }
    Ok(certs)
}

/// Maps a non-200 response to a [`QkdError`], taking the message from the
/// ETSI 014 Error body when there is one.
fn error_from_answer(url: &Url, status: StatusCode, body: &[u8], requested_key_ids: &[String]) -> QkdError {
    let error: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = match &error {
        Some(error) => error.message.clone(),
        None => format!("no ETSI 014 error body ({} bytes)", body.len()),
    };
    let url_text = url.to_string();

    match status {
        StatusCode::BAD_REQUEST => {
            // ETSI 014 fixes no status for a key id the KME cannot deliver.
            // The test KME returns 400 with `{"key_ID": ...}` in `details`.
            // A KME that reports it differently yields BadRequest.
            let unknown_id = error.as_ref().and_then(|error| named_key_id(error, requested_key_ids));
            match unknown_id {
                Some(key_id) => QkdError::UnknownKeyId { url: url_text, key_id, message },
                None => QkdError::BadRequest { url: url_text, message },
            }
        }
        StatusCode::UNAUTHORIZED => QkdError::Unauthorized { url: url_text, message },
        StatusCode::SERVICE_UNAVAILABLE => QkdError::Unavailable { url: url_text, message },
        other => {
            QkdError::InvalidResponse { url: url_text, reason: format!("unexpected HTTP status {other}: {message}") }
        }
    }
}

/// Returns the first requested key id that the Error body's `details` name.
fn named_key_id(error: &ErrorBody, requested_key_ids: &[String]) -> Option<String> {
    error
        .details
        .iter()
        .filter_map(|detail| detail.get("key_ID").and_then(serde_json::Value::as_str))
        .find(|id| requested_key_ids.iter().any(|requested| requested == id))
        .map(str::to_owned)
}

fn parse_json<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, QkdError> {
    serde_json::from_slice(body).map_err(|err| invalid(url, format!("body is not the expected JSON: {err}")))
}

/// Decodes the base64 keys, checking that each id is present and unique and
/// each key is non-empty.
fn decode_keys(url: &Url, mut container: KeyContainer) -> Result<Vec<QkdKey>, QkdError> {
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(container.keys.len());

    for entry in &mut container.keys {
        if entry.key_ID.is_empty() {
            return Err(invalid(url, "a key has an empty key_ID".to_owned()));
        }
        if !seen.insert(entry.key_ID.clone()) {
            return Err(invalid(url, format!("key_ID {} appears twice", entry.key_ID)));
        }
        let key = BASE64
            .decode(entry.key.as_bytes())
            .map(Zeroizing::new)
            .map_err(|err| invalid(url, format!("key {} is not valid base64: {err}", entry.key_ID)))?;
        if key.is_empty() {
            return Err(invalid(url, format!("key {} is empty", entry.key_ID)));
        }
        keys.push(QkdKey { key_id: std::mem::take(&mut entry.key_ID), key });
    }
    Ok(keys)
}

/// Checks that every key has `size_bits` bits, or, with no size requested,
/// that all keys have the same length.
fn check_key_lengths(url: &Url, keys: &[QkdKey], size_bits: Option<u32>) -> Result<(), QkdError> {
    let expected_bits = match size_bits {
        Some(bits) => bits as usize,
        None => keys.first().map_or(0, |key| key.key.len() * 8),
    };
    for key in keys {
        if key.key.len() * 8 != expected_bits {
            return Err(invalid(
                url,
                format!("key {} has {} bits, expected {expected_bits}", key.key_id, key.key.len() * 8),
            ));
        }
    }
    Ok(())
}

/// Puts the keys in the order of `key_ids`, failing when the KME left one
/// out or sent one that was not requested.
fn order_as_requested(url: &Url, keys: Vec<QkdKey>, key_ids: &[String]) -> Result<Vec<QkdKey>, QkdError> {
    let mut by_id: HashMap<String, QkdKey> = keys.into_iter().map(|key| (key.key_id.clone(), key)).collect();
    let mut ordered = Vec::with_capacity(key_ids.len());

    for id in key_ids {
        match by_id.remove(id) {
            Some(key) => ordered.push(key),
            None => return Err(invalid(url, format!("requested key {id} is missing from the answer"))),
        }
    }
    if let Some(extra) = by_id.keys().next() {
        return Err(invalid(url, format!("answer contains key {extra}, which was not requested")));
    }
    Ok(ordered)
}

fn invalid(url: &Url, reason: String) -> QkdError {
    QkdError::InvalidResponse { url: url.to_string(), reason }
}

fn transport(url: &Url, source: impl std::error::Error + Send + Sync + 'static) -> QkdError {
    QkdError::Transport { url: url.to_string(), source: Box::new(source) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://kme.test/api/v1/keys/b/dec_keys").unwrap()
    }

    #[test]
    fn base_url_must_be_https() {
        assert!(matches!(parse_base_url("http://kme.test"), Err(ConfigError::NotHttps { .. })));
        assert!(matches!(parse_base_url("not a url"), Err(ConfigError::InvalidUrl { .. })));
        assert!(parse_base_url("https://kme.test:8443/prefix/").is_ok());
    }

    #[test]
    fn status_codes_map_to_error_variants() {
        let body = br#"{"message": "m"}"#;

        let cases = [
            (StatusCode::BAD_REQUEST, "BadRequest"),
            (StatusCode::UNAUTHORIZED, "Unauthorized"),
            (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
            (StatusCode::INTERNAL_SERVER_ERROR, "InvalidResponse"),
        ];
        for (status, variant) in cases {
            let err = error_from_answer(&url(), status, body, &[]);
            assert!(format!("{err:?}").starts_with(variant), "{status}: {err:?}");
        }
    }

    #[test]
    fn bad_request_naming_key_is_unknown_key_id() {
        let body = br#"{"message": "key not found", "details": [{"key_ID": "k2"}]}"#;
        let requested = ["k1".to_owned(), "k2".to_owned()];

        let err = error_from_answer(&url(), StatusCode::BAD_REQUEST, body, &requested);

        match err {
            QkdError::UnknownKeyId { key_id, message, .. } => {
                assert_eq!(key_id, "k2");
                assert_eq!(message, "key not found");
            }
            other => panic!("expected UnknownKeyId, got {other:?}"),
        }
    }

    #[test]
    fn decode_rejects_duplicate_ids_and_bad_base64() {
        let duplicate: KeyContainer =
            serde_json::from_str(r#"{"keys": [{"key_ID": "a", "key": "AAAA"}, {"key_ID": "a", "key": "AAAA"}]}"#)
                .unwrap();
        let bad_base64: KeyContainer = serde_json::from_str(r#"{"keys": [{"key_ID": "a", "key": "!!"}]}"#).unwrap();

        assert!(matches!(decode_keys(&url(), duplicate), Err(QkdError::InvalidResponse { .. })));
        assert!(matches!(decode_keys(&url(), bad_base64), Err(QkdError::InvalidResponse { .. })));
    }

    #[test]
    fn key_lengths_must_match_requested_size() {
        let keys = vec![QkdKey { key_id: "a".to_owned(), key: Zeroizing::new(vec![0; 16]) }];

        assert!(check_key_lengths(&url(), &keys, Some(128)).is_ok());
        assert!(matches!(check_key_lengths(&url(), &keys, Some(256)), Err(QkdError::InvalidResponse { .. })));
    }

    #[test]
    fn answer_must_contain_exactly_the_requested_ids() {
        let key = |id: &str| QkdKey { key_id: id.to_owned(), key: Zeroizing::new(vec![1; 32]) };
        let requested = ["b".to_owned(), "a".to_owned()];

        let ordered = order_as_requested(&url(), vec![key("a"), key("b")], &requested).unwrap();
        let missing = order_as_requested(&url(), vec![key("a")], &requested);
        let extra = order_as_requested(&url(), vec![key("a"), key("b"), key("c")], &requested);

        assert_eq!(ordered[0].key_id, "b");
        assert_eq!(ordered[1].key_id, "a");
        assert!(matches!(missing, Err(QkdError::InvalidResponse { .. })));
        assert!(matches!(extra, Err(QkdError::InvalidResponse { .. })));
    }
}
