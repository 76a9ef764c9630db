//! The multipart/byteranges body of a response to several ranges
//! (RFC 9110 section 14.6).

use std::io;

use axum::http::HeaderValue;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, future, stream};
use tokio::fs::File;

use super::body::read_patched_span;
use super::patch::PatchSet;
use super::range::ByteSpan;

/// Layout of a multipart/byteranges body: each part's header block and span,
/// then the closing delimiter.
///
/// The header blocks are built up front, so the Content-Length of the whole
/// body is known before the first byte of the file is read.
#[derive(Debug, Clone)]
pub(crate) struct MultipartLayout {
    boundary: String,
    parts: Vec<Part>,
    closing: Bytes,
}

/// One body part: the delimiter line and part header fields, then the span of the file.
#[derive(Debug, Clone)]
struct Part {
    head: Bytes,
    span: ByteSpan,
}

impl MultipartLayout {
    /// Lays out `spans` of a file of `size` bytes under a random boundary.
    ///
    /// The boundary is 128 random bits in hexadecimal, so the chance that it
    /// occurs in the file is negligible.
    pub(crate) fn new(spans: &[ByteSpan], size: u64, content_type: &HeaderValue) -> Self {
        let boundary = format!("{:032x}", rand::random::<u128>());
        Self::with_boundary(boundary, spans, size, content_type)
    }

    /// Lays out `spans` under the given boundary.
    fn with_boundary(
        boundary: String,
        spans: &[ByteSpan],
        size: u64,
        content_type: &HeaderValue,
    ) -> Self {
        let parts = spans
            .iter()
            .enumerate()
            .map(|(index, &span)| {
                // The CRLF before each later delimiter belongs to the delimiter,
                // not to the preceding part's content (RFC 2046 section 5.1.1).
                let mut head = Vec::new();
                if index > 0 {
                    head.extend_from_slice(b"\r\n");
                }
                head.extend_from_slice(format!("--{boundary}\r\nContent-Type: ").as_bytes());
                head.extend_from_slice(content_type.as_bytes());
                let range = format!(
                    "\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                    span.first, span.last
                );
                head.extend_from_slice(range.as_bytes());
                Part {
                    head: Bytes::from(head),
                    span,
                }
            })
            .collect();
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));

        Self {
            boundary,
            parts,
            closing,
        }
    }

    /// Formats the Content-Type of the whole response, with the boundary parameter.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }

    /// Computes the exact length of the body in bytes.
    pub(crate) fn content_length(&self) -> u64 {
        let parts: u64 = self
            .parts
            .iter()
            .map(|part| part.head.len() as u64 + part.span.len())
            .sum();
        parts + self.closing.len() as u64
    }

    /// Streams the body, reading each part's span from `file` in turn and
    /// applying `patches` to it.
    ///
    /// Each part reads through its own duplicate of the file handle, so every
    /// part comes from the file that was opened once. The duplicates share one
    /// file offset, which is safe because a part seeks only after the one
    /// before it has been read.
    pub(crate) fn into_stream(
        self,
        file: std::fs::File,
        patches: PatchSet,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let parts = stream::iter(self.parts).flat_map(move |part| {
            let content = match file.try_clone() {
                Ok(duplicate) => read_patched_span(
                    File::from_std(duplicate),
                    part.span.first,
                    part.span.len(),
                    patches.clone(),
                )
                .left_stream(),
                Err(error) => stream::once(future::ready(Err(error))).right_stream(),
            };
            stream::once(future::ready(Ok(part.head))).chain(content)
        });

        parts.chain(stream::once(future::ready(Ok(self.closing))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn span(first: u64, last: u64) -> ByteSpan {
        ByteSpan { first, last }
    }

    #[tokio::test]
    async fn body_matches_layout_and_length() {
        let content: Vec<u8> = (0..200u8).collect();
        let mut temp = tempfile::NamedTempFile::new().unwrap();
        temp.write_all(&content).unwrap();
        let content_type = HeaderValue::from_static("video/mp4");

        let layout = MultipartLayout::with_boundary(
            "SEP".to_owned(),
            &[span(10, 12), span(0, 1)],
            200,
            &content_type,
        );
        let length = layout.content_length();
        let chunks: Vec<io::Result<Bytes>> = layout
            .into_stream(temp.reopen().unwrap(), PatchSet::default())
            .collect()
            .await;
        let mut body = Vec::new();
        for chunk in chunks {
            body.extend_from_slice(&chunk.unwrap());
        }

        let mut expected = Vec::new();
        expected.extend_from_slice(
            b"--SEP\r\nContent-Type: video/mp4\r\nContent-Range: bytes 10-12/200\r\n\r\n",
        );
        expected.extend_from_slice(&content[10..=12]);
        expected.extend_from_slice(
            b"\r\n--SEP\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/200\r\n\r\n",
        );
        expected.extend_from_slice(&content[0..=1]);
        expected.extend_from_slice(b"\r\n--SEP--\r\n");
        assert_eq!(body, expected);
        assert_eq!(length, expected.len() as u64);
    }

    #[test]
    fn boundary_is_random_and_in_content_type() {
        let content_type = HeaderValue::from_static("audio/flac");
        let first = MultipartLayout::new(&[span(0, 0), span(2, 2)], 3, &content_type);
        let second = MultipartLayout::new(&[span(0, 0), span(2, 2)], 3, &content_type);

        assert_ne!(first.boundary, second.boundary);
        assert_eq!(first.boundary.len(), 32);
        assert_eq!(
            first.content_type(),
            format!("multipart/byteranges; boundary={}", first.boundary)
        );
    }
}
