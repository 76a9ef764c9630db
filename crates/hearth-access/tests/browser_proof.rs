//! Verifies request proofs made by the browser module
//! `hearth-server/src/web/device.js` with the server's [`ProofVerifier`].
//!
//! `tests/e2e/device_proof.mjs` makes a non-extractable WebCrypto P-256 key
//! under Node, signs proofs directly and through `DeviceClient` against a
//! simulated server (sign-in, a session request, a retry after
//! `error="binding"`), and prints them as JSON. Each proof must verify on the
//! connection it was accepted on and fail after any one-character change to
//! the method, path, exporter or session id.
//!
//! Needs `node` (version 20 or later) in PATH.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::proof::signed_string;
use hearth_access::{
    DeviceKey, ProofError, ProofVerifier, RequestBinding, RequestProof, SystemClock,
};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/e2e/device_proof.mjs"
);
const WORKSPACE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn browser_did_matches_server_did() {
    let output = browser_output();

    let key = device_key(output);

    assert_eq!(key.did().as_str(), output.did);
}

#[test]
fn browser_signed_strings_match_server_layout() {
    for proof in &browser_output().proofs {
        let exporter = decode(&proof.exporter_b64u);
        let parsed = RequestProof::from_header(&proof.header).unwrap();

        let expected =
            signed_string(&proof.binding(&exporter), parsed.timestamp, &parsed.nonce).unwrap();

        assert_eq!(proof.signed_string, expected, "{}", proof.label);
    }
}

#[test]
fn browser_proofs_verify_on_their_connection() {
    let output = browser_output();
    let key = device_key(output);
    let verifier = ProofVerifier::new(Arc::new(SystemClock));
    assert!(output.proofs.iter().any(|proof| proof.accepted));

    for proof in output.proofs.iter().filter(|proof| proof.accepted) {
        let exporter = decode(&proof.exporter_b64u);
        let parsed = RequestProof::from_header(&proof.header).unwrap();

        let result = verifier.verify(&key, &proof.binding(&exporter), &parsed);

        assert!(result.is_ok(), "{}: {:?}", proof.label, result);
    }
}

#[test]
fn proof_for_previous_connection_fails() {
    let output = browser_output();
    let key = device_key(output);
    let stale: Vec<_> = output
        .proofs
        .iter()
        .filter(|proof| !proof.accepted)
        .collect();
    assert_eq!(
        stale.len(),
        1,
        "expected one proof signed for the previous connection"
    );

    for proof in stale {
        let exporter = decode(&proof.exporter_b64u);
        let parsed = RequestProof::from_header(&proof.header).unwrap();
        let verifier = ProofVerifier::new(Arc::new(SystemClock));

        let err = verifier
            .verify(&key, &proof.binding(&exporter), &parsed)
            .unwrap_err();

        assert!(
            matches!(err, ProofError::Signature(_)),
            "{}: {err}",
            proof.label
        );
    }
}

#[test]
fn one_character_change_fails_verification() {
    let output = browser_output();
    let key = device_key(output);

    for proof in output.proofs.iter().filter(|proof| proof.accepted) {
        let parsed = RequestProof::from_header(&proof.header).unwrap();
        let session_id = if proof.session_id.is_empty() {
            "A".to_owned()
        } else {
            change_first_char(&proof.session_id)
        };
        let cases = [
            (
                "method",
                change_last_char(&proof.method),
                proof.path_and_query.clone(),
                proof.exporter_b64u.clone(),
                proof.session_id.clone(),
            ),
            (
                "path",
                proof.method.clone(),
                change_last_char(&proof.path_and_query),
                proof.exporter_b64u.clone(),
                proof.session_id.clone(),
            ),
            (
                "exporter",
                proof.method.clone(),
                proof.path_and_query.clone(),
                change_first_char(&proof.exporter_b64u),
                proof.session_id.clone(),
            ),
            (
                "session",
                proof.method.clone(),
                proof.path_and_query.clone(),
                proof.exporter_b64u.clone(),
                session_id,
            ),
        ];

        for (changed, method, path_and_query, exporter_b64u, session_id) in cases {
            let exporter = decode(&exporter_b64u);
            let binding = RequestBinding {
                method: &method,
                path_and_query: &path_and_query,
                exporter: &exporter,
                session_id: &session_id,
            };
            let verifier = ProofVerifier::new(Arc::new(SystemClock));

            let err = verifier.verify(&key, &binding, &parsed).unwrap_err();

            assert!(
                matches!(err, ProofError::Signature(_)),
                "{}, {changed} changed: {err}",
                proof.label
            );
        }
    }
}

fn change_last_char(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let last = chars.last_mut().expect("fields to change are not empty");
    *last = next_char(*last);
    chars.into_iter().collect()
}

fn change_first_char(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[0] = next_char(chars[0]);
    chars.into_iter().collect()
}

/// Returns the next letter of the same case (Z and z wrap around), or 'A'
/// for any other character, so a changed field stays valid and only the
/// signature can fail.
fn next_char(c: char) -> char {
    match c {
        'Z' => 'A',
        'z' => 'a',
        'A'..='Y' | 'a'..='y' => char::from(c as u8 + 1),
        _ => 'A',
    }
}

fn device_key(output: &BrowserOutput) -> DeviceKey {
    DeviceKey::from_p256_sec1(&decode(&output.public_key_b64u)).unwrap()
}

fn decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|err| panic!("{text:?} is not base64url: {err}"))
}

/// The script's output: the device's public key and did, and its proofs.
struct BrowserOutput {
    public_key_b64u: String,
    did: String,
    proofs: Vec<BrowserProof>,
}

/// One proof as the browser module sent it.
struct BrowserProof {
    label: String,
    method: String,
    path_and_query: String,
    exporter_b64u: String,
    session_id: String,
    header: String,
    signed_string: String,
    accepted: bool,
}

impl BrowserProof {
    fn binding<'a>(&'a self, exporter: &'a [u8]) -> RequestBinding<'a> {
        RequestBinding {
            method: &self.method,
            path_and_query: &self.path_and_query,
            exporter,
            session_id: &self.session_id,
        }
    }
}

/// Runs the script once for all tests in this file.
fn browser_output() -> &'static BrowserOutput {
    static OUTPUT: OnceLock<BrowserOutput> = OnceLock::new();
    OUTPUT.get_or_init(|| parse_output(&run_node()))
}

fn run_node() -> String {
    let mut child = Command::new("node")
        .arg(SCRIPT)
        .current_dir(WORKSPACE_ROOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("failed to start node for {SCRIPT} (install Node 20 or later): {err}")
        });

    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > NODE_TIMEOUT {
            child.kill().unwrap();
            panic!("node {SCRIPT} timed out after {NODE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let stdout = stdout_reader.join().unwrap().unwrap();
    let stderr = stderr_reader.join().unwrap().unwrap();
    assert!(
        status.success(),
        "node {SCRIPT} failed with {status}:\n{stdout}\n{stderr}"
    );
    stdout
}

fn parse_output(text: &str) -> BrowserOutput {
    let root = json::parse(text)
        .unwrap_or_else(|err| panic!("device_proof.mjs printed invalid JSON ({err}):\n{text}"));
    let proofs = root
        .get("proofs")
        .as_array()
        .iter()
        .map(|proof| BrowserProof {
            label: proof.get("label").as_str().to_owned(),
            method: proof.get("method").as_str().to_owned(),
            path_and_query: proof.get("path_and_query").as_str().to_owned(),
            exporter_b64u: proof.get("exporter_b64u").as_str().to_owned(),
            session_id: proof.get("session_id").as_str().to_owned(),
            header: proof.get("header").as_str().to_owned(),
            signed_string: proof.get("signed_string").as_str().to_owned(),
            accepted: proof.get("accepted").as_bool(),
        })
        .collect();

    BrowserOutput {
        public_key_b64u: root.get("public_key_b64u").as_str().to_owned(),
        did: root.get("did").as_str().to_owned(),
        proofs,
    }
}

/// A JSON reader for the script's output, because hearth-access has no JSON
/// dependency. It reads objects, arrays, strings, booleans and null, and
/// skips over numbers without keeping their value, since the script prints
/// none.
mod json {
    pub enum Value {
        Null,
        Bool(bool),
        Number,
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// Returns the member `key` of an object; panics when it is missing.
        pub fn get(&self, key: &str) -> &Value {
            match self {
                Value::Object(members) => members
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value)
                    .unwrap_or_else(|| panic!("JSON object has no member {key:?}")),
                _ => panic!("expected a JSON object containing {key:?}"),
            }
        }

        pub fn as_str(&self) -> &str {
            match self {
                Value::String(text) => text,
                _ => panic!("expected a JSON string"),
            }
        }

        pub fn as_bool(&self) -> bool {
            match self {
                Value::Bool(value) => *value,
                _ => panic!("expected a JSON boolean"),
            }
        }

        pub fn as_array(&self) -> &[Value] {
            match self {
                Value::Array(items) => items,
                _ => panic!("expected a JSON array"),
            }
        }
    }

    /// Parses one JSON document.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut parser = Parser {
            chars: text.char_indices().peekable(),
        };
        let value = parser.value()?;
        parser.skip_space();
        match parser.chars.next() {
            None => Ok(value),
            Some((at, c)) => Err(format!("unexpected {c:?} at byte {at} after the value")),
        }
    }

    struct Parser<'a> {
        chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    }

    impl Parser<'_> {
        fn value(&mut self) -> Result<Value, String> {
            self.skip_space();
            match self.chars.peek().copied() {
                Some((_, '{')) => self.object(),
                Some((_, '[')) => self.array(),
                Some((_, '"')) => self.string().map(Value::String),
                Some((_, 't')) => self.word("true", Value::Bool(true)),
                Some((_, 'f')) => self.word("false", Value::Bool(false)),
                Some((_, 'n')) => self.word("null", Value::Null),
                Some((_, c)) if c == '-' || c.is_ascii_digit() => Ok(self.number()),
                Some((at, c)) => Err(format!("unexpected {c:?} at byte {at}")),
                None => Err("unexpected end of input".to_owned()),
            }
        }

        fn object(&mut self) -> Result<Value, String> {
            self.expect('{')?;
            let mut members = Vec::new();
            self.skip_space();
            if self.eat('}') {
                return Ok(Value::Object(members));
            }
            loop {
                self.skip_space();
                let name = self.string()?;
                self.skip_space();
                self.expect(':')?;
                members.push((name, self.value()?));
                self.skip_space();
                if self.eat('}') {
                    return Ok(Value::Object(members));
                }
                self.expect(',')?;
            }
        }

        fn array(&mut self) -> Result<Value, String> {
            self.expect('[')?;
            let mut items = Vec::new();
            self.skip_space();
            if self.eat(']') {
                return Ok(Value::Array(items));
            }
            loop {
                items.push(self.value()?);
                self.skip_space();
                if self.eat(']') {
                    return Ok(Value::Array(items));
                }
                self.expect(',')?;
            }
        }

        fn string(&mut self) -> Result<String, String> {
            self.expect('"')?;
            let mut text = String::new();
            loop {
                match self.chars.next() {
                    Some((_, '"')) => return Ok(text),
                    Some((_, '\\')) => text.push(self.escape()?),
                    Some((_, c)) => text.push(c),
                    None => return Err("unterminated string".to_owned()),
                }
            }
        }

        fn escape(&mut self) -> Result<char, String> {
            match self.chars.next() {
                Some((_, '"')) => Ok('"'),
                Some((_, '\\')) => Ok('\\'),
                Some((_, '/')) => Ok('/'),
                Some((_, 'b')) => Ok('\u{8}'),
                Some((_, 'f')) => Ok('\u{c}'),
                Some((_, 'n')) => Ok('\n'),
                Some((_, 'r')) => Ok('\r'),
                Some((_, 't')) => Ok('\t'),
                Some((_, 'u')) => {
                    let hex: String = (0..4)
                        .filter_map(|_| self.chars.next().map(|(_, c)| c))
                        .collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .map_err(|_| format!("invalid \\u escape {hex:?}"))?;
                    char::from_u32(code).ok_or_else(|| {
                        format!("\\u{hex} is a surrogate, which this reader does not join")
                    })
                }
                Some((at, c)) => Err(format!("invalid escape \\{c} at byte {at}")),
                None => Err("unterminated escape".to_owned()),
            }
        }

        fn number(&mut self) -> Value {
            while matches!(self.chars.peek(), Some((_, c)) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
            {
                self.chars.next();
            }
            Value::Number
        }

        fn word(&mut self, word: &str, value: Value) -> Result<Value, String> {
            for expected in word.chars() {
                self.expect(expected)?;
            }
            Ok(value)
        }

        fn expect(&mut self, expected: char) -> Result<(), String> {
            match self.chars.next() {
                Some((_, c)) if c == expected => Ok(()),
                Some((at, c)) => Err(format!("expected {expected:?} at byte {at}, found {c:?}")),
                None => Err(format!("expected {expected:?}, found the end of input")),
            }
        }

        fn eat(&mut self, expected: char) -> bool {
            let found = matches!(self.chars.peek(), Some((_, c)) if *c == expected);
            if found {
                self.chars.next();
            }
            found
        }

        fn skip_space(&mut self) {
            while matches!(self.chars.peek(), Some((_, c)) if c.is_ascii_whitespace()) {
                self.chars.next();
            }
        }
    }
}
