//! Streaming of byte spans of an open file into a response body.

use std::io::{self, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, future, stream};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use tracing::warn;

use super::patch::PatchSet;

/// Maximum size of one chunk read from the file and handed to the connection.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;

/// Streams `len` bytes of `file` starting at offset `first`, in chunks of at most [`CHUNK_SIZE`].
///
/// The stream ends with an [`io::ErrorKind::UnexpectedEof`] error when the
/// file ends before `len` bytes were read, for example because it was
/// truncated after its size was read. The response then stops short of its
/// Content-Length and the connection is closed.
pub(crate) fn read_span(
    file: File,
    first: u64,
    len: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let chunks = stream::once(async move {
        let mut file = file;
        file.seek(SeekFrom::Start(first)).await?;
        Ok::<_, io::Error>(ReaderStream::with_capacity(file.take(len), CHUNK_SIZE))
    })
    .try_flatten();

    ExactLength {
        inner: Box::pin(chunks),
        remaining: len,
        finished: false,
    }
}

/// Streams like [`read_span`], with `patches` applied to the bytes read.
pub(crate) fn read_patched_span(
    file: File,
    first: u64,
    len: u64,
    patches: PatchSet,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let mut position = first;
    read_span(file, first, len).map_ok(move |chunk| {
        let chunk_offset = position;
        position += chunk.len() as u64;
        patches.apply(chunk_offset, chunk)
    })
}

/// Wraps a file stream into a response body that logs the first read error and ends after it.
pub(crate) fn file_body<S>(chunks: S, path: &Path) -> Body
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let path = path.to_path_buf();
    let until_error = chunks.scan(false, move |failed, chunk| {
        if *failed {
            return future::ready(None);
        }
        if let Err(error) = &chunk {
            *failed = true;
            warn!(path = %path.display(), %error, "file read failed while streaming a response");
        }
        future::ready(Some(chunk))
    });
    Body::from_stream(until_error)
}

/// Stream adapter that turns an early end of its inner stream into an error.
struct ExactLength<S> {
    inner: Pin<Box<S>>,
    /// Bytes still expected from `inner`.
    remaining: u64,
    finished: bool,
}

impl<S> Stream for ExactLength<S>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }

        let item = match ready!(this.inner.as_mut().poll_next(context)) {
            Some(Ok(chunk)) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                Some(Ok(chunk))
            }
            Some(Err(error)) => {
                this.finished = true;
                Some(Err(error))
            }
            None if this.remaining > 0 => {
                this.finished = true;
                let message = format!(
                    "file ended {} bytes before the end of the requested span",
                    this.remaining
                );
                Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, message)))
            }
            None => {
                this.finished = true;
                None
            }
        };
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn numbered_file(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&content).unwrap();
        (file, content)
    }

    async fn collect(
        chunks: impl Stream<Item = io::Result<Bytes>>,
    ) -> (Vec<u8>, Vec<usize>, Option<io::Error>) {
        let mut bytes = Vec::new();
        let mut sizes = Vec::new();
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    sizes.push(chunk.len());
                    bytes.extend_from_slice(&chunk);
                }
                Err(error) => return (bytes, sizes, Some(error)),
            }
        }
        (bytes, sizes, None)
    }

    #[tokio::test]
    async fn span_reads_exact_bytes_in_bounded_chunks() {
        let (temp, content) = numbered_file(3 * CHUNK_SIZE + 17);
        let file = File::open(temp.path()).await.unwrap();

        let (bytes, sizes, error) = collect(read_span(file, 5, 2 * CHUNK_SIZE as u64 + 3)).await;

        assert!(error.is_none(), "{error:?}");
        assert_eq!(bytes, content[5..5 + 2 * CHUNK_SIZE + 3]);
        assert!(sizes.iter().all(|&size| size <= CHUNK_SIZE), "{sizes:?}");
    }

    #[tokio::test]
    async fn span_past_end_of_file_fails() {
        let (temp, content) = numbered_file(100);
        let file = File::open(temp.path()).await.unwrap();

        let (bytes, _, error) = collect(read_span(file, 90, 20)).await;

        assert_eq!(bytes, content[90..]);
        let error = error.expect("the file holds 10 of the 20 bytes");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn patched_span_replaces_bytes_across_chunks() {
        let (temp, content) = numbered_file(3 * CHUNK_SIZE);
        let file = File::open(temp.path()).await.unwrap();
        let patch_offset = CHUNK_SIZE as u64 - 2;
        let patches = PatchSet::new(&[hearth_media::LocationPatch {
            offset: patch_offset,
            bytes: vec![0xEE; 5],
        }]);

        let first = 10;
        let (bytes, _, error) = collect(read_patched_span(
            file,
            first,
            2 * CHUNK_SIZE as u64,
            patches,
        ))
        .await;

        assert!(error.is_none(), "{error:?}");
        let mut expected = content[first as usize..first as usize + 2 * CHUNK_SIZE].to_vec();
        let at = (patch_offset - first) as usize;
        expected[at..at + 5].fill(0xEE);
        assert_eq!(bytes, expected);
    }

    #[tokio::test]
    async fn empty_span_yields_nothing() {
        let (temp, _) = numbered_file(0);
        let file = File::open(temp.path()).await.unwrap();

        let (bytes, _, error) = collect(read_span(file, 0, 0)).await;

        assert!(bytes.is_empty());
        assert!(error.is_none(), "{error:?}");
    }
}
