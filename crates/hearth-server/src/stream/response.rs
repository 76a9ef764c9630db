//! Construction of each kind of response that [`serve_file`](super::serve_file) sends.

use std::path::Path;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tokio::fs::File;

use super::body::{file_body, read_patched_span};
use super::conditional::Validators;
use super::multipart::MultipartLayout;
use super::patch::PatchSet;
use super::range::ByteSpan;

/// Cache-Control of every response about the file. The media belongs to the
/// household, so shared caches must not store it and clients must revalidate.
const CACHE_CONTROL_VALUE: &str = "private, no-cache";

/// The open file and what its responses describe.
pub(crate) struct Representation<'a> {
    /// The open file.
    pub(crate) file: File,
    /// The requested path, for log lines.
    pub(crate) path: &'a Path,
    /// File size in bytes, read from the open handle.
    pub(crate) size: u64,
    /// ETag and Last-Modified of this version.
    pub(crate) validators: Validators,
    /// Content-Type given by the caller.
    pub(crate) content_type: HeaderValue,
    /// Patches applied to the file's bytes; empty for the file as it is.
    pub(crate) patches: PatchSet,
}

/// Builds a 200 with the whole file, or the same headers without a body for HEAD.
pub(crate) fn full(method: &Method, representation: Representation<'_>) -> Response {
    let mut headers = representation_headers(&representation.validators);
    headers.insert(CONTENT_TYPE, representation.content_type);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(representation.size));

    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let chunks = read_patched_span(
            representation.file,
            0,
            representation.size,
            representation.patches,
        );
        file_body(chunks, representation.path)
    };
    build(StatusCode::OK, headers, body)
}

/// Builds a 206 with one span of the file.
pub(crate) fn partial(representation: Representation<'_>, span: ByteSpan) -> Response {
    let mut headers = representation_headers(&representation.validators);
    headers.insert(CONTENT_TYPE, representation.content_type);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(span.len()));
    let content_range = format!("bytes {}-{}/{}", span.first, span.last, representation.size);
    headers.insert(CONTENT_RANGE, generated_value(content_range));

    let chunks = read_patched_span(
        representation.file,
        span.first,
        span.len(),
        representation.patches,
    );
    let body = file_body(chunks, representation.path);
    build(StatusCode::PARTIAL_CONTENT, headers, body)
}

/// Builds a 206 with a multipart/byteranges body holding `spans` in order.
pub(crate) async fn multipart(representation: Representation<'_>, spans: &[ByteSpan]) -> Response {
    let layout = MultipartLayout::new(spans, representation.size, &representation.content_type);

    let mut headers = representation_headers(&representation.validators);
    headers.insert(CONTENT_TYPE, generated_value(layout.content_type()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(layout.content_length()));

    let file = representation.file.into_std().await;
    let body = file_body(
        layout.into_stream(file, representation.patches),
        representation.path,
    );
    build(StatusCode::PARTIAL_CONTENT, headers, body)
}

/// Builds a 304 with the fields a 200 would carry for caches: ETag and Cache-Control.
///
/// Last-Modified is left out because the ETag is present (RFC 9110 section 15.4.5).
pub(crate) fn not_modified(validators: &Validators) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(ETAG, generated_value(validators.etag().to_owned()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    build(StatusCode::NOT_MODIFIED, headers, Body::empty())
}

/// Builds a 412 for a failed If-Match or If-Unmodified-Since.
pub(crate) fn precondition_failed() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    build(StatusCode::PRECONDITION_FAILED, headers, Body::empty())
}

/// Builds a 416 whose Content-Range gives the current size (RFC 9110 section 15.5.17).
pub(crate) fn range_not_satisfiable(size: u64) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    headers.insert(CONTENT_RANGE, generated_value(format!("bytes */{size}")));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    build(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty())
}

/// Builds a 405 for a method other than GET and HEAD.
pub(crate) fn method_not_allowed() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    build(StatusCode::METHOD_NOT_ALLOWED, headers, Body::empty())
}

/// Headers shared by 200 and 206: range support, validators and caching.
fn representation_headers(validators: &Validators) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(ETAG, generated_value(validators.etag().to_owned()));
    headers.insert(
        LAST_MODIFIED,
        generated_value(validators.last_modified_http_date()),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    headers
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Converts text this module formatted from digits, hex, quotes, dates and
/// ASCII keywords into a header value.
fn generated_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("generated header text is visible ASCII")
}
