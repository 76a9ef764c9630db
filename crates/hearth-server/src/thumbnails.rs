//! Thumbnails made on first request and cached on disk by content hash, so a
//! moved file keeps its cached thumbnail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hearth_catalog::MediaFile;
use hearth_media::MediaError;
use tokio::sync::Semaphore;

/// Longer edge of a thumbnail in pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// Time allowed to make one thumbnail.
const THUMBNAIL_TIMEOUT: Duration = Duration::from_secs(20);

/// The on-disk thumbnail cache.
pub struct ThumbnailCache {
    dir: PathBuf,
    /// Bounds concurrent thumbnail pipelines to the number of cores.
    permits: Semaphore,
}

/// Result of a thumbnail request.
pub enum Thumbnail {
    /// JPEG bytes.
    Jpeg(Vec<u8>),
    /// The item has nothing to show (audio without cover art).
    None(String),
}

impl ThumbnailCache {
    /// Creates a cache in `dir`; the folder is created on first write.
    pub fn new(dir: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self { dir, permits: Semaphore::new(cores) }
    }

    /// Returns the thumbnail of `file`, from the cache or made now.
    pub async fn get(self: &Arc<Self>, file: MediaFile) -> Result<Thumbnail, String> {
        let cached = self.dir.join(format!("{}-{THUMBNAIL_EDGE}.jpg", file.sha256));
        if let Ok(bytes) = tokio::fs::read(&cached).await {
            return Ok(Thumbnail::Jpeg(bytes));
        }

        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let made = tokio::task::spawn_blocking(move || {
            hearth_media::thumbnail(&file.path, &file.probe, THUMBNAIL_EDGE, THUMBNAIL_TIMEOUT)
        })
        .await
        .map_err(|e| e.to_string())?;

        match made {
            Ok(bytes) => {
                if let Err(err) = write_atomically(&self.dir, &cached, &bytes).await {
                    tracing::warn!(path = %cached.display(), error = %err, "failed to cache thumbnail");
                }
                Ok(Thumbnail::Jpeg(bytes))
            }
            Err(MediaError::NoThumbnail { .. }) => Ok(Thumbnail::None("this item has no picture".into())),
            Err(err) => Err(err.to_string()),
        }
    }
}

async fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
