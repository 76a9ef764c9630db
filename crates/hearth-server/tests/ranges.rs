//! In-process tests of `stream::serve_file` and `stream::serve_file_patched`
//! behind an axum Router.
//!
//! Every body is compared byte for byte with the slice of the file, or of
//! the patched copy, that it claims to hold, so a wrong offset, length, part
//! order or patch position fails.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hearth_media::LocationPatch;
use hearth_server::stream::{StreamError, serve_file, serve_file_patched};
use tempfile::TempDir;
use tower::ServiceExt;

const CONTENT_TYPE: &str = "video/mp4";
const SIZE: usize = 10_000;
/// Modification time given to every fixture file: 2023-11-14T22:13:20.123456789Z.
const MTIME_SECS: u64 = 1_700_000_000;
const MTIME_NANOS: u32 = 123_456_789;
const LAST_MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
const EARLIER: &str = "Tue, 14 Nov 2023 22:13:19 GMT";

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    content: Vec<u8>,
    router: Router,
}

/// Writes `len` pseudo-random bytes with the fixed modification time and routes `/media` to it.
fn fixture(len: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("episode.mp4");
    let content = pseudo_random_bytes(len, 0x5eed_0000_0000_0000 ^ len as u64);
    fs::write(&path, &content).unwrap();
    set_mtime(&path, UNIX_EPOCH + Duration::new(MTIME_SECS, MTIME_NANOS));

    let router = Router::new()
        .route("/media", any(handler))
        .with_state(Arc::new(path.clone()));
    Fixture {
        _dir: dir,
        path,
        content,
        router,
    }
}

async fn handler(State(path): State<Arc<PathBuf>>, method: Method, headers: HeaderMap) -> Response {
    match serve_file(&method, &headers, &path, CONTENT_TYPE).await {
        Ok(response) => response,
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn set_mtime(path: &Path, mtime: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

fn expected_etag(size: usize) -> String {
    let mtime_ns = u128::from(MTIME_SECS) * 1_000_000_000 + u128::from(MTIME_NANOS);
    format!("\"{size:x}-{mtime_ns:x}\"")
}

async fn send(
    router: &Router,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    send_to(router, "/media", method, headers).await
}

async fn send_to(
    router: &Router,
    uri: &str,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// One request and the response it must get from a file of [`SIZE`] bytes.
struct Case {
    name: &'static str,
    method: Method,
    headers: Vec<(&'static str, String)>,
    status: StatusCode,
    /// Expected Content-Range, or `None` when the response must have none.
    content_range: Option<String>,
    /// Slice of the file the body must equal, or `None` for an empty body.
    body: Option<Range<usize>>,
}

fn get(name: &'static str, headers: &[(&'static str, &str)], status: StatusCode) -> Case {
    Case {
        name,
        method: Method::GET,
        headers: headers
            .iter()
            .map(|(name, value)| (*name, value.to_string()))
            .collect(),
        status,
        content_range: None,
        body: None,
    }
}

fn full(name: &'static str, headers: &[(&'static str, &str)]) -> Case {
    Case {
        body: Some(0..SIZE),
        ..get(name, headers, StatusCode::OK)
    }
}

fn partial(
    name: &'static str,
    headers: &[(&'static str, &str)],
    first: usize,
    last: usize,
) -> Case {
    Case {
        content_range: Some(format!("bytes {first}-{last}/{SIZE}")),
        body: Some(first..last + 1),
        ..get(name, headers, StatusCode::PARTIAL_CONTENT)
    }
}

fn unsatisfiable(name: &'static str, headers: &[(&'static str, &str)]) -> Case {
    Case {
        content_range: Some(format!("bytes */{SIZE}")),
        ..get(name, headers, StatusCode::RANGE_NOT_SATISFIABLE)
    }
}

#[tokio::test]
async fn response_table() {
    let fixture = fixture(SIZE);
    let etag = expected_etag(SIZE);
    let weak_etag = format!("W/{etag}");
    let seventeen: Vec<String> = (0..17)
        .map(|i| format!("{}-{}", i * 100, i * 100 + 9))
        .collect();
    let seventeen = format!("bytes={}", seventeen.join(","));

    let cases = vec![
        full("no range", &[]),
        // Probes and single ranges.
        partial("two-byte probe", &[("range", "bytes=0-1")], 0, 1),
        partial("one-byte probe", &[("range", "bytes=0-0")], 0, 0),
        partial("open-ended", &[("range", "bytes=100-")], 100, SIZE - 1),
        partial("suffix", &[("range", "bytes=-500")], SIZE - 500, SIZE - 1),
        partial(
            "suffix larger than file",
            &[("range", "bytes=-20000")],
            0,
            SIZE - 1,
        ),
        partial(
            "end past EOF clamped",
            &[("range", "bytes=9000-20000")],
            9000,
            SIZE - 1,
        ),
        partial(
            "last byte",
            &[("range", "bytes=9999-9999")],
            SIZE - 1,
            SIZE - 1,
        ),
        partial("unit in capitals", &[("range", "BYTES=10-19")], 10, 19),
        partial(
            "unsatisfiable spec dropped",
            &[("range", "bytes=50000-,10-19")],
            10,
            19,
        ),
        // Unsatisfiable.
        unsatisfiable("start equals size", &[("range", "bytes=10000-")]),
        unsatisfiable("start past EOF", &[("range", "bytes=20000-30000")]),
        unsatisfiable("zero suffix", &[("range", "bytes=-0")]),
        // Invalid Range fields are ignored.
        full("last below first", &[("range", "bytes=5-2")]),
        full("not digits", &[("range", "bytes=abc")]),
        full("unknown unit", &[("range", "items=0-1")]),
        full("empty field", &[("range", "")]),
        full("empty range set", &[("range", "bytes=")]),
        full("space around equals", &[("range", "bytes = 0-1")]),
        // Coalescing and excessive requests.
        partial(
            "overlapping coalesced",
            &[("range", "bytes=0-99,50-149")],
            0,
            149,
        ),
        partial(
            "adjacent coalesced",
            &[("range", "bytes=0-99, 100-199")],
            0,
            199,
        ),
        full("seventeen ranges", &[("range", &seventeen)]),
        full("more bytes than the file", &[("range", "bytes=0-,0-")]),
        // If-Range.
        partial(
            "if-range current etag",
            &[("range", "bytes=0-99"), ("if-range", &etag)],
            0,
            99,
        ),
        full(
            "if-range old etag",
            &[("range", "bytes=0-99"), ("if-range", "\"2710-0\"")],
        ),
        full(
            "if-range weak etag",
            &[("range", "bytes=0-99"), ("if-range", &weak_etag)],
        ),
        partial(
            "if-range exact date",
            &[("range", "bytes=0-99"), ("if-range", LAST_MODIFIED)],
            0,
            99,
        ),
        full(
            "if-range earlier date",
            &[("range", "bytes=0-99"), ("if-range", EARLIER)],
        ),
        full(
            "if-range garbage",
            &[("range", "bytes=0-99"), ("if-range", "soon")],
        ),
        full("if-range without range", &[("if-range", &etag)]),
        // Preconditions.
        get(
            "if-none-match current",
            &[("if-none-match", &etag)],
            StatusCode::NOT_MODIFIED,
        ),
        get(
            "if-none-match weak current",
            &[("if-none-match", &weak_etag)],
            StatusCode::NOT_MODIFIED,
        ),
        get(
            "if-none-match star",
            &[("if-none-match", "*")],
            StatusCode::NOT_MODIFIED,
        ),
        full("if-none-match old", &[("if-none-match", "\"old\"")]),
        get(
            "if-modified-since same",
            &[("if-modified-since", LAST_MODIFIED)],
            StatusCode::NOT_MODIFIED,
        ),
        full(
            "if-modified-since earlier",
            &[("if-modified-since", EARLIER)],
        ),
        get(
            "if-match mismatch",
            &[("if-match", "\"old\"")],
            StatusCode::PRECONDITION_FAILED,
        ),
        get(
            "if-match mismatch beats range",
            &[("if-match", "\"old\""), ("range", "bytes=0-1")],
            StatusCode::PRECONDITION_FAILED,
        ),
        partial(
            "if-match current with range",
            &[("if-match", &etag), ("range", "bytes=0-1")],
            0,
            1,
        ),
        get(
            "if-unmodified-since earlier",
            &[("if-unmodified-since", EARLIER)],
            StatusCode::PRECONDITION_FAILED,
        ),
        full(
            "if-unmodified-since same",
            &[("if-unmodified-since", LAST_MODIFIED)],
        ),
        get(
            "none-match before range",
            &[("if-none-match", &etag), ("range", "bytes=0-1")],
            StatusCode::NOT_MODIFIED,
        ),
        // Methods.
        Case {
            method: Method::HEAD,
            body: None,
            ..full("head", &[])
        },
        Case {
            method: Method::HEAD,
            body: None,
            ..full("head ignores range", &[("range", "bytes=0-1")])
        },
        Case {
            method: Method::POST,
            ..get("post", &[], StatusCode::METHOD_NOT_ALLOWED)
        },
    ];

    for case in cases {
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let (status, response_headers, body) =
            send(&fixture.router, case.method.clone(), &headers).await;
        let name = case.name;

        assert_eq!(status, case.status, "{name}: status");
        assert_eq!(
            header(&response_headers, "content-range"),
            case.content_range.as_deref(),
            "{name}: Content-Range"
        );
        let expected_body = case
            .body
            .clone()
            .map_or(&[][..], |range| &fixture.content[range]);
        assert!(
            body == expected_body,
            "{name}: body of {} bytes differs from the file slice",
            body.len()
        );

        match status {
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
                // HEAD gets the Content-Length that GET would get.
                let length = if case.method == Method::HEAD {
                    SIZE
                } else {
                    body.len()
                };
                assert_eq!(
                    header(&response_headers, "content-length"),
                    Some(length.to_string().as_str()),
                    "{name}: Content-Length"
                );
                assert_eq!(
                    header(&response_headers, "accept-ranges"),
                    Some("bytes"),
                    "{name}: Accept-Ranges"
                );
                assert_eq!(
                    header(&response_headers, "content-type"),
                    Some(CONTENT_TYPE),
                    "{name}: Content-Type"
                );
                assert_eq!(
                    header(&response_headers, "etag"),
                    Some(etag.as_str()),
                    "{name}: ETag"
                );
                assert_eq!(
                    header(&response_headers, "last-modified"),
                    Some(LAST_MODIFIED),
                    "{name}: Last-Modified"
                );
                assert_eq!(
                    header(&response_headers, "cache-control"),
                    Some("private, no-cache"),
                    "{name}: Cache-Control"
                );
            }
            StatusCode::NOT_MODIFIED => {
                assert_eq!(
                    header(&response_headers, "etag"),
                    Some(etag.as_str()),
                    "{name}: ETag"
                );
                assert_eq!(
                    header(&response_headers, "cache-control"),
                    Some("private, no-cache"),
                    "{name}: Cache-Control"
                );
                // The axum router adds `Content-Length: 0` to every empty body,
                // and hyper leaves it off a 304 on the wire.
                // `not_modified_has_no_content_length` checks serve_file's own headers.
            }
            StatusCode::RANGE_NOT_SATISFIABLE | StatusCode::PRECONDITION_FAILED => {
                assert_eq!(
                    header(&response_headers, "content-length"),
                    Some("0"),
                    "{name}: Content-Length"
                );
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                assert_eq!(
                    header(&response_headers, "allow"),
                    Some("GET, HEAD"),
                    "{name}: Allow"
                );
            }
            other => panic!("{name}: unexpected status {other}"),
        }
    }
}

#[tokio::test]
async fn head_matches_get_headers() {
    let fixture = fixture(SIZE);

    let (_, get_headers, _) = send(&fixture.router, Method::GET, &[]).await;
    let (head_status, head_headers, head_body) = send(&fixture.router, Method::HEAD, &[]).await;
    let (ranged_status, ranged_headers, ranged_body) =
        send(&fixture.router, Method::HEAD, &[("range", "bytes=0-1")]).await;

    assert_eq!(head_status, StatusCode::OK);
    assert_eq!(ranged_status, StatusCode::OK);
    assert!(head_body.is_empty());
    assert!(ranged_body.is_empty());
    assert_eq!(head_headers, get_headers);
    assert_eq!(ranged_headers, get_headers);
}

#[tokio::test]
async fn not_modified_has_no_content_length() {
    let fixture = fixture(SIZE);
    let mut headers = HeaderMap::new();
    headers.insert("if-none-match", expected_etag(SIZE).parse().unwrap());

    let response = serve_file(&Method::GET, &headers, &fixture.path, CONTENT_TYPE)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(response.headers(), "content-length"), None);
    assert_eq!(header(response.headers(), "last-modified"), None);
}

#[tokio::test]
async fn head_body_is_empty_before_the_router() {
    let fixture = fixture(SIZE);
    let response = serve_file(
        &Method::HEAD,
        &HeaderMap::new(),
        &fixture.path,
        CONTENT_TYPE,
    )
    .await
    .unwrap();

    assert_eq!(header(response.headers(), "content-length"), Some("10000"));
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(body.is_empty());
}

/// One part of a multipart/byteranges body, as parsed back by [`parse_multipart`].
#[derive(Debug)]
struct Part {
    content_type: String,
    first: usize,
    last: usize,
    size: usize,
    data: Vec<u8>,
}

/// Parses a multipart/byteranges body strictly: any byte out of place panics.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(delimiter.as_bytes())
        .expect("body starts with the delimiter");
    let mut parts = Vec::new();

    loop {
        if let Some(after) = rest.strip_prefix(b"--\r\n") {
            assert!(
                after.is_empty(),
                "{} bytes after the closing delimiter",
                after.len()
            );
            return parts;
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .expect("CRLF after the delimiter");

        let header_end = rest
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("blank line after part headers");
        let header_block = std::str::from_utf8(&rest[..header_end]).unwrap();
        rest = &rest[header_end + 4..];

        let mut content_type = None;
        let mut content_range = None;
        for line in header_block.split("\r\n") {
            let (name, value) = line.split_once(": ").expect("part header line has a colon");
            match name.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(value.to_owned()),
                "content-range" => content_range = Some(value.to_owned()),
                other => panic!("unexpected part header {other}"),
            }
        }
        let content_range = content_range.expect("part has Content-Range");
        let (span, size) = content_range
            .strip_prefix("bytes ")
            .unwrap()
            .split_once('/')
            .unwrap();
        let (first, last) = span.split_once('-').unwrap();
        let (first, last, size): (usize, usize, usize) = (
            first.parse().unwrap(),
            last.parse().unwrap(),
            size.parse().unwrap(),
        );

        let len = last - first + 1;
        let data = rest[..len].to_vec();
        rest = &rest[len..];
        parts.push(Part {
            content_type: content_type.expect("part has Content-Type"),
            first,
            last,
            size,
            data,
        });

        rest = rest
            .strip_prefix(b"\r\n")
            .expect("CRLF before the next delimiter");
        rest = rest
            .strip_prefix(delimiter.as_bytes())
            .expect("delimiter after the part");
    }
}

async fn get_multipart(fixture: &Fixture, range: &str) -> Vec<Part> {
    let (status, headers, body) = send(&fixture.router, Method::GET, &[("range", range)]).await;

    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
    assert_eq!(header(&headers, "content-range"), None, "{range}");
    assert_eq!(
        header(&headers, "content-length"),
        Some(body.len().to_string().as_str()),
        "{range}"
    );
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"), "{range}");
    let content_type = header(&headers, "content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{range}: Content-Type {content_type}"));

    let parts = parse_multipart(&body, boundary);
    for part in &parts {
        assert_eq!(part.content_type, CONTENT_TYPE, "{range}");
        assert_eq!(part.size, fixture.content.len(), "{range}");
        assert!(
            part.data == fixture.content[part.first..=part.last],
            "{range}: part {part:?} differs"
        );
    }
    parts
}

fn spans(parts: &[Part]) -> Vec<(usize, usize)> {
    parts.iter().map(|part| (part.first, part.last)).collect()
}

#[tokio::test]
async fn multiple_ranges_get_multipart() {
    let fixture = fixture(SIZE);

    let parts = get_multipart(&fixture, "bytes=0-99,500-599,-100").await;
    assert_eq!(spans(&parts), vec![(0, 99), (500, 599), (9900, 9999)]);

    let parts = get_multipart(&fixture, "bytes=0-0, 9999-").await;
    assert_eq!(spans(&parts), vec![(0, 0), (9999, 9999)]);
}

#[tokio::test]
async fn multipart_parts_keep_request_order() {
    let fixture = fixture(SIZE);

    let parts = get_multipart(&fixture, "bytes=500-599,0-99").await;
    assert_eq!(spans(&parts), vec![(500, 599), (0, 99)]);
}

#[tokio::test]
async fn multipart_overlapping_ranges_coalesced() {
    let fixture = fixture(SIZE);

    let parts = get_multipart(&fixture, "bytes=1000-1099,0-99,50-149,1050-1199").await;
    assert_eq!(spans(&parts), vec![(1000, 1199), (0, 149)]);
}

#[tokio::test]
async fn sixteen_ranges_get_multipart() {
    let fixture = fixture(SIZE);
    let ranges: Vec<String> = (0..16)
        .map(|i| format!("{}-{}", i * 100, i * 100 + 9))
        .collect();

    let parts = get_multipart(&fixture, &format!("bytes={}", ranges.join(","))).await;
    assert_eq!(parts.len(), 16);
}

#[tokio::test]
async fn zero_byte_file_range_is_unsatisfiable() {
    let fixture = fixture(0);

    for range in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
        let (status, headers, body) = send(&fixture.router, Method::GET, &[("range", range)]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some("bytes */0"),
            "{range}"
        );
        assert!(body.is_empty(), "{range}");
    }

    let (status, headers, body) = send(&fixture.router, Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-length"), Some("0"));
    assert!(body.is_empty());
}

#[tokio::test]
async fn five_mebibyte_file_streams_fully() {
    let fixture = fixture(5 * 1024 * 1024);

    let (status, headers, body) = send(&fixture.router, Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-length"), Some("5242880"));
    assert!(body == fixture.content, "body differs from the file");

    // A range across several 64 KiB chunks.
    let (status, headers, body) = send(
        &fixture.router,
        Method::GET,
        &[("range", "bytes=65530-300000")],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&headers, "content-range"),
        Some("bytes 65530-300000/5242880")
    );
    assert!(
        body == fixture.content[65530..=300000],
        "ranged body differs from the file"
    );
}

#[tokio::test]
async fn future_mtime_date_is_weak() {
    let fixture = fixture(SIZE);
    set_mtime(&fixture.path, SystemTime::now() + Duration::from_secs(3600));

    let (_, headers, _) = send(&fixture.router, Method::HEAD, &[]).await;
    let last_modified = header(&headers, "last-modified").unwrap().to_owned();
    let served_at = httpdate::parse_http_date(&last_modified).unwrap();
    assert!(
        served_at <= SystemTime::now(),
        "Last-Modified {last_modified} is in the future"
    );

    let (status, _, body) = send(
        &fixture.router,
        Method::GET,
        &[("range", "bytes=0-99"), ("if-range", &last_modified)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), SIZE);
}

#[tokio::test]
async fn missing_file_is_not_found() {
    let fixture = fixture(1);
    let missing = fixture.path.with_file_name("missing.mp4");

    let error = serve_file(&Method::GET, &HeaderMap::new(), &missing, CONTENT_TYPE)
        .await
        .unwrap_err();
    assert!(matches!(error, StreamError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.mp4"), "{error}");
}

#[tokio::test]
async fn directory_is_not_a_file() {
    let fixture = fixture(1);
    let directory = fixture.path.parent().unwrap();

    let error = serve_file(&Method::GET, &HeaderMap::new(), directory, CONTENT_TYPE)
        .await
        .unwrap_err();
    assert!(matches!(error, StreamError::NotAFile { .. }), "{error:?}");
}

#[tokio::test]
async fn invalid_content_type_is_an_error() {
    let fixture = fixture(1);

    let error = serve_file(
        &Method::GET,
        &HeaderMap::new(),
        &fixture.path,
        "video/mp4\n",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, StreamError::InvalidContentType { .. }),
        "{error:?}"
    );
}

/// A file served at `/media` as it is and at `/patched` with patches applied,
/// and the patched copy that every `/patched` body is compared with.
struct PatchedFixture {
    plain: Fixture,
    patches: Vec<LocationPatch>,
    patched_content: Vec<u8>,
    router: Router,
}

/// Patches of [`SIZE`]-byte fixtures: one at the start of a range test, one
/// in the middle and one that ends at the last byte of the file.
fn sample_patches() -> Vec<LocationPatch> {
    vec![
        LocationPatch {
            offset: 100,
            bytes: vec![0xAA; 50],
        },
        LocationPatch {
            offset: 4000,
            bytes: vec![0xBB; 300],
        },
        LocationPatch {
            offset: SIZE as u64 - 10,
            bytes: vec![0xCC; 10],
        },
    ]
}

fn patched_fixture(len: usize, patches: Vec<LocationPatch>) -> PatchedFixture {
    let plain = fixture(len);
    let mut patched_content = plain.content.clone();
    for patch in &patches {
        let start = patch.offset as usize;
        patched_content[start..start + patch.bytes.len()].copy_from_slice(&patch.bytes);
    }

    let state = Arc::new((plain.path.clone(), patches.clone()));
    let patched_route = Router::new()
        .route("/patched", any(patched_handler))
        .with_state(state);
    let router = plain.router.clone().merge(patched_route);
    PatchedFixture {
        plain,
        patches,
        patched_content,
        router,
    }
}

async fn patched_handler(
    State(state): State<Arc<(PathBuf, Vec<LocationPatch>)>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (path, patches) = state.as_ref();
    match serve_file_patched(&method, &headers, path, CONTENT_TYPE, patches).await {
        Ok(response) => response,
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

fn patched_etag(size: usize) -> String {
    let plain = expected_etag(size);
    format!("{}-r\"", &plain[..plain.len() - 1])
}

#[tokio::test]
async fn patched_full_body_equals_patched_copy() {
    let fixture = patched_fixture(SIZE, sample_patches());

    let (status, headers, body) = send_to(&fixture.router, "/patched", Method::GET, &[]).await;
    let (head_status, head_headers, head_body) =
        send_to(&fixture.router, "/patched", Method::HEAD, &[]).await;

    assert_eq!(status, StatusCode::OK);
    assert!(
        body == fixture.patched_content,
        "body differs from the patched copy"
    );
    assert!(
        body != fixture.plain.content,
        "the patches were not applied"
    );
    assert_eq!(header(&headers, "content-length"), Some("10000"));
    assert_eq!(header(&headers, "etag"), Some(patched_etag(SIZE).as_str()));
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&headers, "last-modified"), Some(LAST_MODIFIED));
    assert_eq!(head_status, StatusCode::OK);
    assert!(head_body.is_empty());
    assert_eq!(head_headers, headers);
}

#[tokio::test]
async fn patched_ranges_cross_patch_boundaries() {
    let fixture = patched_fixture(SIZE, sample_patches());
    let cases: [(&str, usize, usize); 7] = [
        ("bytes=90-109", 90, 109),
        ("bytes=140-160", 140, 160),
        ("bytes=120-129", 120, 129),
        ("bytes=3999-4300", 3999, 4300),
        ("bytes=150-3999", 150, 3999),
        ("bytes=-5", SIZE - 5, SIZE - 1),
        ("bytes=9985-", 9985, SIZE - 1),
    ];

    for (range, first, last) in cases {
        let (status, headers, body) = send_to(
            &fixture.router,
            "/patched",
            Method::GET,
            &[("range", range)],
        )
        .await;

        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes {first}-{last}/{SIZE}").as_str()),
            "{range}"
        );
        assert!(
            body == fixture.patched_content[first..=last],
            "{range}: body differs from the patched copy"
        );
    }
}

#[tokio::test]
async fn patch_across_chunk_boundary_streams_exactly() {
    let chunk_boundary = 64 * 1024;
    let patches = vec![LocationPatch {
        offset: chunk_boundary as u64 - 7,
        bytes: vec![0xDD; 20],
    }];
    let fixture = patched_fixture(5 * 1024 * 1024, patches);

    let (status, _, body) = send_to(&fixture.router, "/patched", Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body == fixture.patched_content,
        "full body differs from the patched copy"
    );

    let range = format!("bytes={}-{}", chunk_boundary - 3, 3 * chunk_boundary);
    let (status, _, body) = send_to(
        &fixture.router,
        "/patched",
        Method::GET,
        &[("range", &range)],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(
        body == fixture.patched_content[chunk_boundary - 3..=3 * chunk_boundary],
        "ranged body differs from the patched copy"
    );
}

#[tokio::test]
async fn patched_multipart_parts_hold_patched_bytes() {
    let fixture = patched_fixture(SIZE, sample_patches());
    let range = "bytes=110-119,4100-4199,0-9,140-159";

    let (status, headers, body) = send_to(
        &fixture.router,
        "/patched",
        Method::GET,
        &[("range", range)],
    )
    .await;

    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&headers, "content-length"),
        Some(body.len().to_string().as_str())
    );
    let content_type = header(&headers, "content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("Content-Type {content_type}"));
    let parts = parse_multipart(&body, boundary);
    assert_eq!(
        spans(&parts),
        vec![(110, 119), (4100, 4199), (0, 9), (140, 159)]
    );
    for part in &parts {
        assert_eq!(part.size, SIZE);
        assert!(
            part.data == fixture.patched_content[part.first..=part.last],
            "part {}-{} differs from the patched copy",
            part.first,
            part.last
        );
    }
    assert!(
        parts[0].data.iter().all(|&byte| byte == 0xAA),
        "part inside a patch"
    );
}

#[tokio::test]
async fn patched_etag_keeps_representations_apart() {
    let fixture = patched_fixture(SIZE, sample_patches());
    let plain_etag = expected_etag(SIZE);
    let patched = patched_etag(SIZE);

    let (_, plain_headers, _) = send(&fixture.router, Method::HEAD, &[]).await;
    let (_, patched_headers, _) = send_to(&fixture.router, "/patched", Method::HEAD, &[]).await;
    assert_eq!(header(&plain_headers, "etag"), Some(plain_etag.as_str()));
    assert_eq!(header(&patched_headers, "etag"), Some(patched.as_str()));
    assert_ne!(plain_etag, patched);

    // If-Range with the unpatched ETag or with the date sends the whole patched file.
    for if_range in [plain_etag.as_str(), LAST_MODIFIED] {
        let (status, _, body) = send_to(
            &fixture.router,
            "/patched",
            Method::GET,
            &[("range", "bytes=100-149"), ("if-range", if_range)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "if-range {if_range}");
        assert!(body == fixture.patched_content, "if-range {if_range}: body");
    }

    let (status, _, body) = send_to(
        &fixture.router,
        "/patched",
        Method::GET,
        &[("range", "bytes=100-149"), ("if-range", &patched)],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body == fixture.patched_content[100..150]);

    // A cached unpatched copy is not revalidated as the patched one.
    let (status, _, _) = send_to(
        &fixture.router,
        "/patched",
        Method::GET,
        &[("if-none-match", &plain_etag)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send_to(
        &fixture.router,
        "/patched",
        Method::GET,
        &[("if-none-match", &patched)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, _) = send(&fixture.router, Method::GET, &[("if-match", &patched)]).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn empty_patch_list_keeps_file() {
    let fixture = patched_fixture(SIZE, Vec::new());
    assert!(fixture.patches.is_empty());

    let (status, headers, body) = send_to(&fixture.router, "/patched", Method::GET, &[]).await;

    assert_eq!(status, StatusCode::OK);
    assert!(body == fixture.plain.content, "body differs from the file");
    assert_eq!(header(&headers, "etag"), Some(expected_etag(SIZE).as_str()));
}
