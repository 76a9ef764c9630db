//! File helpers shared by the store and the KEK sources: private folders,
//! write-once files, permission checks and random bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::KeyStoreError;

/// Marks temporary files; `remove_stale_temp_files` looks for it.
const TEMP_MARKER: &str = ".tmp-";

/// Creates `dir` and its missing parents with mode 0700, and sets an existing
/// `dir` to 0700. Returns the earlier mode of an existing `dir` that gave
/// group or others any permission, so the caller can warn that other users
/// may have read or replaced its files.
pub(super) fn create_private_dir(dir: &Path) -> Result<Option<u32>, KeyStoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error("create folder", dir))?;

    let mode = fs::metadata(dir).map_err(io_error("read metadata of", dir))?.permissions().mode() & 0o7777;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error("set mode 0700 on", dir))?;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// Writes `contents` to a new file at `path` with mode 0600, unless a file
/// already exists there. Returns whether this call created the file.
///
/// The bytes go to a temporary file first, which is synced and then hard-linked
/// to `path`. A link, unlike a rename, fails when `path` exists, so two writers
/// racing for the same path cannot replace each other's file, and a crash at
/// any point leaves either no file or the whole file at `path`.
///
/// NOTE: filesystems without hard links (FAT, some network mounts) make this
/// fail with the link error; the store's folder belongs on a Unix filesystem.
pub(super) fn create_file_once(path: &Path, contents: &[u8]) -> Result<bool, KeyStoreError> {
    let temp = temp_path(path)?;

    let result = write_then_link(&temp, path, contents);

    // After a successful link the data is safe at `path`, so a temporary file
    // that cannot be removed is only logged. `remove_stale_temp_files` or the
    // operator clears it later.
    if let Err(err) = fs::remove_file(&temp)
        && err.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %temp.display(), error = %err, "failed to remove temporary file");
    }

    let created = result?;
    sync_dir(parent_dir(path))?;
    Ok(created)
}

/// Removes temporary files that a crashed writer left in `dir`. Only files
/// whose names contain `suffix` followed by the temporary marker are touched,
/// so a caller can limit this to the writers that its lock excludes.
pub(super) fn remove_stale_temp_files(dir: &Path, suffix: &str) -> Result<(), KeyStoreError> {
    let marker = format!("{suffix}{TEMP_MARKER}");
    let entries = fs::read_dir(dir).map_err(io_error("list", dir))?;

    for entry in entries {
        let entry = entry.map_err(io_error("list", dir))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with('.') && file_name.contains(&marker) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error("remove stale temporary file", &path))?;
            tracing::info!(path = %path.display(), "removed temporary file left by a crashed write");
        }
    }
    Ok(())
}

/// Opens `path` for reading and rejects it when group or others have any
/// permission bit. Returns `None` when the file does not exist.
pub(super) fn open_private_file(path: &Path) -> Result<Option<(File, u64)>, KeyStoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("open", path)(err)),
    };

    let metadata = file.metadata().map_err(io_error("read metadata of", path))?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(Some((file, metadata.len())))
}

/// Reads a whole file of at most `max_len` bytes. Returns `None` when it does
/// not exist, and the error from `too_long` when it is longer than `max_len`.
pub(super) fn read_limited(
    path: &Path,
    max_len: u64,
    too_long: impl FnOnce(u64) -> KeyStoreError,
) -> Result<Option<Vec<u8>>, KeyStoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("open", path)(err)),
    };

    let len = file.metadata().map_err(io_error("read metadata of", path))?.len();
    if len > max_len {
        return Err(too_long(len));
    }

    // The limit on the read guards against a file that grows between the
    // metadata call and the read.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_len + 1).read_to_end(&mut bytes).map_err(io_error("read", path))?;
    if bytes.len() as u64 > max_len {
        return Err(too_long(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Returns the folder that contains `path`, which is "." for a bare file name.
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Returns a fresh random 256-bit key from the operating system.
pub(super) fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut key[..]).map_err(|source| KeyStoreError::Random { source })?;
    Ok(key)
}

/// Returns `len` random bytes from the operating system as lowercase hex.
pub(super) fn random_hex(len: usize) -> Result<String, KeyStoreError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|source| KeyStoreError::Random { source })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Returns a closure that wraps an I/O error with the action and path.
pub(super) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> KeyStoreError + use<'a> {
    move |source| KeyStoreError::Io { action, path: path.to_owned(), source }
}

/// Names a temporary file beside `path`: hidden, unique per call.
fn temp_path(path: &Path) -> Result<PathBuf, KeyStoreError> {
    let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let unique = random_hex(8)?;
    Ok(path.with_file_name(format!(".{file_name}{TEMP_MARKER}{unique}")))
}

/// Writes and syncs `temp`, then links it to `path`. Returns false when `path`
/// already exists.
fn write_then_link(temp: &Path, path: &Path, contents: &[u8]) -> Result<bool, KeyStoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(io_error("create", temp))?;
    file.write_all(contents).map_err(io_error("write", temp))?;
    file.sync_all().map_err(io_error("sync", temp))?;
    drop(file);

    match fs::hard_link(temp, path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(io_error("create", path)(err)),
    }
}

/// Syncs a folder so that a new entry in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), KeyStoreError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error("sync folder", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_folder_mode_is_reported_and_fixed() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("keys");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();

        let loose = create_private_dir(&dir).unwrap();
        let again = create_private_dir(&dir).unwrap();

        assert_eq!(loose, Some(0o777));
        assert_eq!(again, None);
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o700);
    }
}
