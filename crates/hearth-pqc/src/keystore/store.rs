//! The sealed key store: one write-once file per key version.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::files::{self, io_error};
use super::format::{self, Header, MAX_FILE_LEN, MAX_NAME_LEN, MAX_SECRET_LEN, Sealer};
use super::{KekSource, KeyStoreError};

/// An authenticated header and the secret it sealed.
type Opened = (Header, Zeroizing<Vec<u8>>);

/// Ends the file name of every sealed key version: `NAME.vVERSION.sealed`.
const SEALED_SUFFIX: &str = ".sealed";
/// The KEK check file: an empty secret sealed under the store's KEK.
const CHECK_FILE: &str = "kek.check";
/// The key name in the check file's header. Its version is 0, which no key has.
const CHECK_NAME: &str = "kek-check";
/// Held with an exclusive `flock` by every writer, in this process or another.
const LOCK_FILE: &str = ".lock";

/// A folder (mode 0700) of sealed key files, all under one KEK.
///
/// Every `put` writes a new file and never replaces one, so a crash mid-write
/// leaves the previous versions as they were. Writers in this process and in
/// others take an exclusive lock on the folder's `.lock` file. Readers take no
/// lock, because a version file appears whole or not at all.
pub struct SealedKeyStore {
    dir: PathBuf,
    kek_name: &'static str,
    sealer: Sealer,
    clock: fn() -> SystemTime,
}

/// The version number of a sealed key. Versions of a key count up from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(u32);

/// One version of a key, as listed by [`SealedKeyStore::versions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersionInfo {
    /// The version number.
    pub version: KeyVersion,
    /// When this version was sealed, to the millisecond.
    pub created_at: SystemTime,
    /// When the next version replaced this one; `None` for the current version.
    pub retired_at: Option<SystemTime>,
    /// Whether this is the newest version, which [`SealedKeyStore::current`] returns.
    pub current: bool,
}

impl KeyVersion {
    /// The version with this number. Stored versions start at 1, so version 0
    /// is never found.
    pub const fn new(number: u32) -> Self {
        Self(number)
    }

    /// The version number.
    pub const fn number(self) -> u32 {
        self.0
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl SealedKeyStore {
    /// Opens the store in `dir`, creating the folder with mode 0700 if needed,
    /// and loads the KEK from `kek`.
    ///
    /// The KEK is checked against the folder's `kek.check` file, or against an
    /// existing sealed key when that file is missing. A wrong KEK therefore
    /// fails here with [`KeyStoreError::KekMismatch`], before it can seal new
    /// versions that the other versions' KEK cannot open. Temporary files left
    /// by a crashed write are removed.
    ///
    /// A folder that already holds sealed keys or a `kek.check` file gets no
    /// new KEK: when `kek` has none, this fails with
    /// [`KeyStoreError::KekMissing`] and writes nothing. A folder that group
    /// or others could access is set to 0700 with a warning.
    pub fn open(dir: &Path, kek: Box<dyn KekSource>) -> Result<Self, KeyStoreError> {
        if let Some(mode) = files::create_private_dir(dir)? {
            tracing::warn!(
                dir = %dir.display(),
                old_mode = %format!("{mode:04o}"),
                "key store folder was open to other users; set it to 0700; if another user may \
                 have replaced a file in it, restore the folder from a backup"
            );
        }
        let kek_name = kek.name();
        let kek_bytes = if holds_sealed_files(dir)? {
            kek.load_existing()?.ok_or_else(|| KeyStoreError::KekMissing { kek: kek_name, dir: dir.to_owned() })?
        } else {
            kek.load_or_create()?
        };
        let sealer = Sealer::new(&kek_bytes);
        let store = Self { dir: dir.to_owned(), kek_name, sealer, clock: SystemTime::now };

        let _lock = store.lock()?;
        files::remove_stale_temp_files(dir, SEALED_SUFFIX)?;
        files::remove_stale_temp_files(dir, CHECK_FILE)?;
        store.check_kek()?;

        tracing::info!(dir = %dir.display(), kek = kek_name, "sealed key store opened");
        Ok(store)
    }

    /// Seals `secret` as a new version of key `name` (e.g. "server-signing",
    /// "tls-leaf") and makes it current.
    pub fn put(&self, name: &str, secret: &[u8]) -> Result<KeyVersion, KeyStoreError> {
        validate_name(name)?;
        let _lock = self.lock()?;
        self.put_locked(name, secret)
    }

    /// Returns the newest version of key `name` and its secret, or `None` when
    /// the key has no version.
    ///
    /// A newest version that fails to open is an error; older versions are
    /// never returned in its place.
    #[allow(
        clippy::type_complexity,
        reason = "the signature callers were promised; no alias hides it"
    )]
    pub fn current(
        &self,
        name: &str,
    ) -> Result<Option<(KeyVersion, Zeroizing<Vec<u8>>)>, KeyStoreError> {
        validate_name(name)?;
        let Some(&newest) = self.list_versions(name)?.last() else {
            return Ok(None);
        };

        let (_, secret) = self.read_listed_version(name, newest)?;
        Ok(Some((KeyVersion(newest), secret)))
    }

    /// Returns the secret of one version of key `name`, or `None` when that
    /// version does not exist.
    pub fn get(
        &self,
        name: &str,
        version: KeyVersion,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError> {
        validate_name(name)?;
        if version.0 == 0 {
            return Ok(None);
        }

        let opened = self.read_version(name, version.0)?;
        Ok(opened.map(|(_, secret)| secret))
    }

    /// Lists the versions of key `name`, oldest first.
    ///
    /// Every version is decrypted to authenticate its creation time, so a
    /// version that fails to open makes the whole listing fail.
    pub fn versions(&self, name: &str) -> Result<Vec<KeyVersionInfo>, KeyStoreError> {
        validate_name(name)?;
        let numbers = self.list_versions(name)?;

        let mut created = Vec::with_capacity(numbers.len());
        for &number in &numbers {
            let (header, _) = self.read_listed_version(name, number)?;
            created.push(self.created_at(name, &header)?);
        }

        let infos = numbers
            .iter()
            .enumerate()
            .map(|(index, &number)| KeyVersionInfo {
                version: KeyVersion(number),
                created_at: created[index],
                retired_at: created.get(index + 1).copied(),
                current: index + 1 == numbers.len(),
            })
            .collect();
        Ok(infos)
    }

    /// Rotates key `name` when its current version is at least `max_age` old
    /// (scheduled) or whenever `force` is set (emergency). `make` produces the
    /// new secret. Old versions are kept, retired but still readable, so
    /// signatures made with them stay verifiable.
    ///
    /// A key with no version yet is always due, so a caller can use this to
    /// create a key on first start. A version whose creation time lies in the
    /// future (the clock was set back) counts as age zero. The check and the
    /// write happen under the store's lock, so concurrent callers rotate once.
    /// `make` runs under that lock too, so it should not open this store.
    /// Returns the new version, or `None` when no rotation was due.
    pub fn rotate_if_due(
        &self,
        name: &str,
        max_age: Duration,
        force: bool,
        make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, KeyStoreError>,
    ) -> Result<Option<KeyVersion>, KeyStoreError> {
        validate_name(name)?;
        let _lock = self.lock()?;

        let age = match self.list_versions(name)?.last() {
            Some(&newest) => {
                let (header, _) = self.read_listed_version(name, newest)?;
                let created_at = self.created_at(name, &header)?;
                Some((self.clock)().duration_since(created_at).unwrap_or(Duration::ZERO))
            }
            None => None,
        };
        let due = match age {
            Some(age) => force || age >= max_age,
            None => true,
        };
        if !due {
            tracing::debug!(key = name, ?age, ?max_age, "key rotation not due");
            return Ok(None);
        }

        let secret = make()?;
        let version = self.put_locked(name, &secret)?;
        tracing::info!(key = name, version = version.0, forced = force, ?age, "key rotated");
        Ok(Some(version))
    }

    /// Seals a new version; the caller holds the lock.
    fn put_locked(&self, name: &str, secret: &[u8]) -> Result<KeyVersion, KeyStoreError> {
        if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
            return Err(KeyStoreError::InvalidSecret {
                name: name.to_owned(),
                len: secret.len(),
                max: MAX_SECRET_LEN,
            });
        }

        let number = match self.list_versions(name)?.last() {
            None => 1,
            Some(&newest) => newest.checked_add(1).ok_or_else(|| {
                KeyStoreError::VersionOverflow { name: name.to_owned(), max: u32::MAX }
            })?,
        };
        let header = Header {
            name: name.to_owned(),
            version: number,
            created_at_ms: format::to_unix_ms((self.clock)())?,
        };
        let sealed = self.sealer.seal(&header, secret)?;

        let path = self.version_path(name, number);
        if !files::create_file_once(&path, &sealed)? {
            return Err(KeyStoreError::Io {
                action: "create",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a writer that bypassed the store's lock created this version first",
                ),
            });
        }

        tracing::info!(key = name, version = number, kek = self.kek_name, "sealed new key version");
        Ok(KeyVersion(number))
    }

    /// Verifies the KEK against the check file, creating that file when it is
    /// missing. The caller holds the lock.
    fn check_kek(&self) -> Result<(), KeyStoreError> {
        let path = self.dir.join(CHECK_FILE);

        if let Some(bytes) = files::read_limited(&path, MAX_FILE_LEN, too_long(&path))? {
            return match self.sealer.open(&path, self.kek_name, &bytes) {
                Ok((header, _)) if header.name == CHECK_NAME && header.version == 0 => Ok(()),
                Ok((header, _)) => Err(KeyStoreError::Malformed {
                    path,
                    reason: format!(
                        "its header names key {:?} version {}, expected the KEK check",
                        header.name, header.version
                    ),
                }),
                Err(KeyStoreError::Decrypt { .. }) => Err(self.kek_mismatch(path)),
                Err(err) => Err(err),
            };
        }

        // No check file yet: a folder with sealed keys but no check file (one
        // restored without it, say) must still reject a new, wrong KEK.
        if let Some(sealed) = self.any_sealed_file()? {
            let bytes = files::read_limited(&sealed, MAX_FILE_LEN, too_long(&sealed))?;
            if let Some(bytes) = bytes {
                match self.sealer.open(&sealed, self.kek_name, &bytes) {
                    Ok(_) => {}
                    Err(KeyStoreError::Decrypt { .. }) => return Err(self.kek_mismatch(sealed)),
                    Err(err) => return Err(err),
                }
            }
        }

        let header = Header {
            name: CHECK_NAME.to_owned(),
            version: 0,
            created_at_ms: format::to_unix_ms((self.clock)())?,
        };
        let sealed = self.sealer.seal(&header, &[])?;
        files::create_file_once(&path, &sealed)?;
        Ok(())
    }

    fn kek_mismatch(&self, check: PathBuf) -> KeyStoreError {
        KeyStoreError::KekMismatch { kek: self.kek_name, dir: self.dir.clone(), check }
    }

    /// Reads and authenticates a version that `list_versions` just returned,
    /// so a missing file is an error.
    fn read_listed_version(&self, name: &str, number: u32) -> Result<Opened, KeyStoreError> {
        self.read_version(name, number)?.ok_or_else(|| KeyStoreError::Io {
            action: "read",
            path: self.version_path(name, number),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the file was listed a moment ago and has since been removed",
            ),
        })
    }

    /// Reads and authenticates one version, or returns `None` when its file
    /// does not exist. The header must name the same key and version as the
    /// file name, so a file renamed over another version is rejected.
    fn read_version(&self, name: &str, number: u32) -> Result<Option<Opened>, KeyStoreError> {
        let path = self.version_path(name, number);
        let Some(bytes) = files::read_limited(&path, MAX_FILE_LEN, too_long(&path))? else {
            return Ok(None);
        };

        let (header, secret) = self.sealer.open(&path, self.kek_name, &bytes)?;
        if header.name != name || header.version != number {
            return Err(KeyStoreError::Malformed {
                path,
                reason: format!(
                    "its header names key {:?} version {}, but the file name says key {name:?} \
                     version {number}: the file was renamed or copied over another",
                    header.name, header.version
                ),
            });
        }
        Ok(Some((header, secret)))
    }

    fn created_at(&self, name: &str, header: &Header) -> Result<SystemTime, KeyStoreError> {
        format::from_unix_ms(header.created_at_ms).ok_or_else(|| KeyStoreError::Malformed {
            path: self.version_path(name, header.version),
            reason: format!("creation time {} ms is out of range", header.created_at_ms),
        })
    }

    /// Returns the version numbers of key `name` found in the folder, ascending.
    fn list_versions(&self, name: &str) -> Result<Vec<u32>, KeyStoreError> {
        let mut numbers = Vec::new();
        for file_name in self.sealed_file_names()? {
            if let Some((file_key, number)) = parse_file_name(&file_name)
                && file_key == name
            {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Returns the path of some sealed key file in the folder, if there is one.
    fn any_sealed_file(&self) -> Result<Option<PathBuf>, KeyStoreError> {
        let found = self
            .sealed_file_names()?
            .into_iter()
            .find(|file_name| parse_file_name(file_name).is_some());
        Ok(found.map(|file_name| self.dir.join(file_name)))
    }

    fn sealed_file_names(&self) -> Result<Vec<String>, KeyStoreError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))?;

        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list", &self.dir))?;
            if let Ok(file_name) = entry.file_name().into_string()
                && file_name.ends_with(SEALED_SUFFIX)
            {
                names.push(file_name);
            }
        }
        Ok(names)
    }

    fn version_path(&self, name: &str, number: u32) -> PathBuf {
        self.dir.join(format!("{name}.v{number}{SEALED_SUFFIX}"))
    }

    /// Takes the folder's write lock; dropping the file releases it.
    fn lock(&self) -> Result<File, KeyStoreError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("open lock file", &path))?;
        file.lock().map_err(io_error("lock", &path))?;
        Ok(file)
    }
}

impl fmt::Debug for SealedKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedKeyStore")
            .field("dir", &self.dir)
            .field("kek", &self.kek_name)
            .finish_non_exhaustive()
    }
}

/// Checks that `name` is 1 to 64 characters from `a-z`, `0-9` and `-`, so it
/// can never form a path or clash with the store's own files.
fn validate_name(name: &str) -> Result<(), KeyStoreError> {
    let invalid = |reason: String| KeyStoreError::InvalidName { name: name.to_owned(), reason };

    if name.is_empty() {
        return Err(invalid("the name is empty".to_owned()));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
        return Err(invalid(format!("it contains {c:?}")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(format!("it is {} characters long", name.len())));
    }
    Ok(())
}

/// Splits `NAME.vVERSION.sealed` into the key name and version, or returns
/// `None` for any other file name. A version with a leading zero is rejected,
/// so every version has exactly one file name.
fn parse_file_name(file_name: &str) -> Option<(&str, u32)> {
    let stem = file_name.strip_suffix(SEALED_SUFFIX)?;
    let (name, version) = stem.rsplit_once(".v")?;
    validate_name(name).ok()?;

    if version.is_empty()
        || version.starts_with('0')
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number = version.parse().ok()?;
    Some((name, number))
}

/// Returns whether `dir` holds a sealed key version or the KEK check file,
/// that is, files that only the existing KEK opens.
fn holds_sealed_files(dir: &Path) -> Result<bool, KeyStoreError> {
    let entries = fs::read_dir(dir).map_err(io_error("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Ok(file_name) = entry.file_name().into_string()
            && (file_name == CHECK_FILE || parse_file_name(&file_name).is_some())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn too_long<'a>(path: &'a Path) -> impl FnOnce(u64) -> KeyStoreError + use<'a> {
    move |len| KeyStoreError::Malformed {
        path: path.to_owned(),
        reason: format!("{len} bytes, larger than any sealed key ({MAX_FILE_LEN} bytes)"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::UNIX_EPOCH;

    use super::*;

    /// Milliseconds since the Unix epoch returned by `fake_now`.
    static FAKE_NOW_MS: AtomicU64 = AtomicU64::new(1_700_000_000_000);

    fn fake_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(FAKE_NOW_MS.load(Ordering::SeqCst))
    }

    struct FixedKek;

    impl KekSource for FixedKek {
        fn name(&self) -> &'static str {
            "fixed"
        }

        fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
            Ok(Zeroizing::new([7; 32]))
        }
    }

    #[test]
    fn rotation_follows_fake_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SealedKeyStore::open(dir.path(), Box::new(FixedKek)).unwrap();
        store.clock = fake_now;
        let day = Duration::from_secs(86_400);
        let make = || Ok(Zeroizing::new(b"new".to_vec()));

        let first = store.rotate_if_due("tls-leaf", day, false, make).unwrap();
        FAKE_NOW_MS.fetch_add(day.as_millis() as u64 - 1, Ordering::SeqCst);
        let one_ms_early = store.rotate_if_due("tls-leaf", day, false, make).unwrap();
        FAKE_NOW_MS.fetch_add(1, Ordering::SeqCst);
        let on_time = store.rotate_if_due("tls-leaf", day, false, make).unwrap();

        assert_eq!(first, Some(KeyVersion(1)));
        assert_eq!(one_ms_early, None);
        assert_eq!(on_time, Some(KeyVersion(2)));
        let versions = store.versions("tls-leaf").unwrap();
        assert_eq!(versions[0].retired_at, Some(versions[1].created_at));
        assert_eq!(versions[1].created_at.duration_since(versions[0].created_at).unwrap(), day);
    }

    #[test]
    fn version_from_future_counts_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = SealedKeyStore::open(dir.path(), Box::new(FixedKek)).unwrap();
        store.put("tls-leaf", b"one").unwrap();
        let mut store = store;
        store.clock = || UNIX_EPOCH + Duration::from_secs(1_000);

        let rotated = store
            .rotate_if_due("tls-leaf", Duration::from_secs(1), false, || {
                Ok(Zeroizing::new(b"two".to_vec()))
            })
            .unwrap();

        assert_eq!(rotated, None);
    }

    #[test]
    fn file_names_parse_strictly() {
        assert_eq!(parse_file_name("tls-leaf.v1.sealed"), Some(("tls-leaf", 1)));
        assert_eq!(parse_file_name("a.v4294967295.sealed"), Some(("a", u32::MAX)));
        assert_eq!(parse_file_name("a.v0.sealed"), None);
        assert_eq!(parse_file_name("a.v01.sealed"), None);
        assert_eq!(parse_file_name("a.v.sealed"), None);
        assert_eq!(parse_file_name("a.v4294967296.sealed"), None);
        assert_eq!(parse_file_name("a.v1.sealed.tmp-00"), None);
        assert_eq!(parse_file_name(".a.v1.sealed"), None);
        assert_eq!(parse_file_name("A.v1.sealed"), None);
        assert_eq!(parse_file_name("kek.check"), None);
        assert_eq!(parse_file_name("a.v+1.sealed"), None);
    }
}
