//! The KEK in a file beside the sealed keys.

use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::files::{self, io_error};
use super::{KEK_FILE, KekSource, KeyStoreError};

/// A KEK kept as 32 raw bytes in a file with mode 0600.
///
/// Anyone who can read the file (root, the Hearth user) can open every sealed
/// key, so this only protects copies of the sealed files made without it,
/// such as a backup that leaves the `kek` file out.
#[derive(Debug)]
pub struct FileKek {
    path: PathBuf,
}

impl FileKek {
    /// Creates a source for the KEK file at `path`. Nothing is read or
    /// created until [`KekSource::load_or_create`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Creates a source for the KEK file `kek` inside the store's folder `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self::new(dir.join(KEK_FILE))
    }

    /// Returns the KEK file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the KEK file, or returns `None` when it does not exist.
    fn read(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        let Some((mut file, len)) = files::open_private_file(&self.path)? else {
            return Ok(None);
        };
        if len != 32 {
            return Err(KeyStoreError::InvalidKekFile { path: self.path.clone(), len });
        }

        let mut kek = Zeroizing::new([0u8; 32]);
        file.read_exact(&mut kek[..]).map_err(io_error("read", &self.path))?;
        Ok(Some(kek))
    }
}

impl KekSource for FileKek {
    fn name(&self) -> &'static str {
        "file"
    }

    /// Reads the KEK file, or creates it with a new random KEK.
    ///
    /// Creation is atomic and never replaces an existing file: when two
    /// processes create the file at the same time, both end up with the one
    /// that was linked first. An existing file with any group or other
    /// permission bit is rejected.
    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        if let Some(kek) = self.read()? {
            return Ok(kek);
        }

        files::create_private_dir(files::parent_dir(&self.path))?;
        let kek = files::random_key()?;
        if files::create_file_once(&self.path, &kek[..])? {
            tracing::info!(path = %self.path.display(), "created KEK file");
            return Ok(kek);
        }

        // Another process created the file between the read and the link.
        self.read()?.ok_or_else(|| KeyStoreError::Io {
            action: "read",
            path: self.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "KEK file vanished right after another process created it",
            ),
        })
    }

    /// Reads the KEK file; `None` when it does not exist.
    fn load_existing(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        self.read()
    }
}
