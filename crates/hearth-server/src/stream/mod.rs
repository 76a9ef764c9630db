//! Direct-play streaming of media files: GET and HEAD of one file with byte
//! ranges and conditional requests, following RFC 9110 sections 13 and 14.
//!
//! [`serve_file`] opens the file once and reads its size and modification
//! time from the open handle, so the body, Content-Length, ETag and
//! Last-Modified all describe the same file even if the path is replaced
//! meanwhile.
//!
//! # Validators and caching
//!
//! - ETag is strong: `"{size:x}-{mtime_ns:x}"`, the size and the modification
//!   time in nanoseconds since the Unix epoch, both in hexadecimal. Two writes
//!   that keep the size and fall within one tick of the filesystem's timestamp
//!   clock get the same tag.
//! - Last-Modified is the modification time in whole seconds, never later than
//!   the current time.
//! - Cache-Control is `private, no-cache`: the media belongs to the household,
//!   so shared caches must not store it and clients revalidate every time.
//! - Every 200 and 206 carries `Accept-Ranges: bytes`, and a HEAD response
//!   carries the headers of the 200 a GET would get, without a body.
//!
//! # Order of evaluation
//!
//! The preconditions run in the order of RFC 9110 section 13.2.2: If-Match
//! (412), If-Unmodified-Since (412), If-None-Match (304 for GET and HEAD),
//! If-Modified-Since (304), then If-Range and Range. A 304 carries ETag and
//! Cache-Control only. Section 13.2.1 would also have the preconditions
//! ignored when the request without them gets a 416; this module does not do
//! that, so a client whose cached copy is current gets a 304 even when its
//! range lies beyond the end of the file.
//!
//! # Ranges
//!
//! Range is honoured for GET only. HEAD ignores it, since RFC 9110 section
//! 14.2 defines range handling for GET alone. The response to a GET with a
//! Range field is:
//!
//! - 206 with Content-Range for one satisfiable range. An end past the end of
//!   the file is clamped to it, and a suffix longer than the file selects the
//!   whole file.
//! - 416 with `Content-Range: bytes */SIZE` when no range selects a byte:
//!   every first-pos is at or past the end, or every suffix is `-0`. A
//!   zero-length file gets 416 for any valid Range. RFC 9110 section 14.1.2
//!   calls a non-zero suffix satisfiable there, but Content-Range has no form
//!   for an empty span.
//! - 200 with the whole file when the field is invalid (a last-pos below its
//!   first-pos, anything but digits, an empty set) or names a unit other than
//!   `bytes`. RFC 9110 section 14.2 requires ignoring an unknown unit and
//!   permits ignoring an invalid field.
//! - For several ranges, unsatisfiable ones are dropped and overlapping or
//!   adjacent ones coalesced. If one span remains, the response is a plain
//!   206. Otherwise it is a 206 multipart/byteranges body under a random
//!   boundary, with Content-Type and Content-Range in each part and the parts
//!   in the order the request named them.
//! - 200 with the whole file when the ranges together ask for more bytes than
//!   the file contains, or when more than 16 remain after coalescing. RFC 9110
//!   section 14.2 lets a server ignore a Range field, and calls many small or
//!   overlapping ranges a sign of a broken client or a denial-of-service attack.
//!
//! If-Range allows the range only for a strong ETag equal to the current one,
//! or for a date equal to Last-Modified when that date is strong, meaning the
//! file was last modified at least one second before the request. Otherwise
//! the whole file is sent with 200.
//!
//! # Patched representations
//!
//! [`serve_file_patched`] serves the file with same-length patches applied
//! to its bytes, such as the removal of a photo's location. Size, ranges and
//! multipart layouts are those of the file, and a patch may straddle chunk,
//! range and part boundaries. The ETag gets a `-r` suffix inside the quotes,
//! so no cache or If-Range mixes the two forms, and If-Range with a date
//! always sends the whole representation because the date cannot tell the
//! forms apart. With no patches, the response is that of [`serve_file`].
//!
//! # Streaming
//!
//! Bodies are read from the file in chunks of at most 64 KiB after a seek to
//! each span, and multipart bodies part by part, so no body is held in memory
//! whole. If the file ends before a span does, the body stream fails and the
//! connection is closed short of its Content-Length.

mod body;
mod conditional;
mod error;
mod multipart;
mod patch;
mod range;
mod response;

use std::io;
use std::path::Path;
use std::time::SystemTime;

use axum::http::header::RANGE;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use hearth_media::LocationPatch;
use tokio::fs::File;
use tracing::debug;

pub use error::StreamError;

use conditional::{Precondition, Validators};
use patch::PatchSet;
use range::RangeOutcome;
use response::Representation;

/// Builds the response for GET or HEAD of one file, honouring Range, If-Range and the conditional headers.
///
/// Other methods get 405 with `Allow: GET, HEAD`. Errors are returned only
/// when the file cannot be opened or examined, or when `content_type` is not
/// a valid header value. Every outcome of the range and conditional headers
/// is a response.
pub async fn serve_file(
    method: &Method,
    headers: &HeaderMap,
    path: &Path,
    content_type: &str,
) -> Result<Response, StreamError> {
    serve(method, headers, path, content_type, PatchSet::default()).await
}

/// Builds the response like [`serve_file`], for the file with `patches`
/// applied to its bytes and an ETag of its own (see "Patched representations").
///
/// Patch bytes past the end of the file are ignored. Where two patches
/// overlap, the one that starts later wins.
pub async fn serve_file_patched(
    method: &Method,
    headers: &HeaderMap,
    path: &Path,
    content_type: &str,
    patches: &[LocationPatch],
) -> Result<Response, StreamError> {
    serve(method, headers, path, content_type, PatchSet::new(patches)).await
}

/// Builds the response of [`serve_file`] and [`serve_file_patched`].
async fn serve(
    method: &Method,
    headers: &HeaderMap,
    path: &Path,
    content_type: &str,
    patches: PatchSet,
) -> Result<Response, StreamError> {
    if method != Method::GET && method != Method::HEAD {
        return Ok(response::method_not_allowed());
    }
    let content_type =
        HeaderValue::from_str(content_type).map_err(|source| StreamError::InvalidContentType {
            content_type: content_type.to_owned(),
            source,
        })?;

    let (file, metadata) = open_regular_file(path).await?;
    let modified = metadata
        .modified()
        .map_err(|source| StreamError::Metadata {
            path: path.to_path_buf(),
            source,
        })?;
    let size = metadata.len();
    let mut validators = Validators::new(size, modified, SystemTime::now());
    if !patches.is_empty() {
        validators = validators.patched();
    }

    match conditional::evaluate_preconditions(method, headers, &validators) {
        Precondition::Failed => return Ok(response::precondition_failed()),
        Precondition::NotModified => return Ok(response::not_modified(&validators)),
        Precondition::Passed => {}
    }

    let range = if method == Method::GET
        && headers.contains_key(RANGE)
        && conditional::if_range_allows_range(headers, &validators)
    {
        Some(range::resolve_range_fields(headers.get_all(RANGE), size))
    } else {
        None
    };

    let representation = Representation {
        file,
        path,
        size,
        validators,
        content_type,
        patches,
    };
    let response = match range {
        None => response::full(method, representation),
        Some(RangeOutcome::Invalid) => {
            debug!(path = %path.display(), range = ?headers.get(RANGE), "invalid range ignored");
            response::full(method, representation)
        }
        Some(RangeOutcome::Excessive) => {
            debug!(path = %path.display(), range = ?headers.get(RANGE), "excessive ranges ignored");
            response::full(method, representation)
        }
        Some(RangeOutcome::Unsatisfiable) => response::range_not_satisfiable(size),
        Some(RangeOutcome::Single(span)) => response::partial(representation, span),
        Some(RangeOutcome::Multiple(spans)) => response::multipart(representation, &spans).await,
    };
    Ok(response)
}

/// Opens `path` and reads its metadata from the open handle. The open is
/// non-blocking, so a FIFO swapped in for a media file is rejected at once
/// instead of blocking a thread until a writer appears; Linux ignores
/// O_NONBLOCK for reads of regular files.
async fn open_regular_file(path: &Path) -> Result<(File, std::fs::Metadata), StreamError> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .await
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => StreamError::NotFound {
                path: path.to_path_buf(),
                source,
            },
            _ => StreamError::Open {
                path: path.to_path_buf(),
                source,
            },
        })?;

    let metadata = file
        .metadata()
        .await
        .map_err(|source| StreamError::Metadata {
            path: path.to_path_buf(),
            source,
        })?;
    if !metadata.is_file() {
        return Err(StreamError::NotAFile {
            path: path.to_path_buf(),
        });
    }

    Ok((file, metadata))
}

/// Strips optional whitespace (spaces and tabs, RFC 9110 section 5.6.3) from both ends.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = value
        .iter()
        .position(|byte| !is_ows(byte))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|byte| !is_ows(byte))
        .map_or(start, |last| last + 1);
    &value[start..end]
}
