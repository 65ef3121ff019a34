//! The on-disk Fernet key repository, with the semantics of Keystone's
//! `keystone/common/fernet_utils.py` (`keystone-manage fernet_setup` and
//! `fernet_rotate`).
//!
//! The repository is a directory of files named `0`, `1`, `2`, ... each
//! holding one key. Key `0` is the *staged* key (the next primary, already
//! accepted for decryption so that every node knows it before it is used),
//! the highest index is the *primary* (used to encrypt), and the others are
//! *secondary* keys (decryption only).

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::{self, FernetKey};
use crate::error::KeyRepositoryError;

const STAGED: &str = "0";
const STAGED_TMP: &str = "0.tmp";

/// Operations on a key repository directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyRepository;

/// What [`KeyRepository::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Index of the new primary key (the promoted staged key).
    pub primary: u64,
    /// Indices of the keys deleted to respect `max_active_keys`, lowest
    /// first.
    pub purged: Vec<u64>,
}

type Result<T> = std::result::Result<T, KeyRepositoryError>;

impl KeyRepository {
    /// Initialize a repository as `keystone-manage fernet_setup` does:
    /// unless a key `0` already exists, create the directory if missing
    /// (mode 0700), write a staged key `0`, then rotate once, leaving a
    /// primary key `1` (or the next free index) and a new staged key `0`.
    /// Existing keys are never overwritten or purged.
    ///
    /// Returns `true` if keys were created, `false` if the repository was
    /// already initialized.
    pub fn setup(dir: &Path) -> Result<bool> {
        ensure_dir(dir)?;
        let staged = dir.join(STAGED);
        if staged.exists() {
            tracing::info!(dir = %dir.display(), "fernet key repository already initialized");
            return Ok(false);
        }
        let tmp = write_tmp_key(dir)?;
        install(&tmp, &staged)?;
        sync_dir(dir)?;
        rotate_keys(dir, None)?;
        Ok(true)
    }

    /// Rotate keys as `keystone-manage fernet_rotate` does: the staged key
    /// `0` becomes the new primary (highest index + 1), a new staged key `0`
    /// is written, and the lowest-numbered keys are deleted until
    /// `max_active_keys` remain, the staged key included.
    ///
    /// As in Keystone, `max_active_keys = 1` leaves only the staged key.
    pub fn rotate(dir: &Path, max_active_keys: usize) -> Result<Rotation> {
        if max_active_keys < 1 {
            return Err(KeyRepositoryError::InvalidMaxActiveKeys);
        }
        rotate_keys(dir, Some(max_active_keys))
    }

    /// Load and validate every key, primary (highest index) first and the
    /// staged key `0` last: the order [`crate::TokenFormatter::new`] takes.
    ///
    /// Files whose names are not plain decimal numbers are ignored with a
    /// warning, empty key files are ignored with a warning (as Keystone
    /// does), and a key that is not a 32-byte urlsafe-base64 Fernet key is
    /// an error naming the file.
    pub fn load(dir: &Path) -> Result<Vec<String>> {
        let meta = fs::metadata(dir).map_err(|e| KeyRepositoryError::io(dir, e))?;
        if meta.permissions().mode() & 0o005 != 0 {
            tracing::warn!(dir = %dir.display(), "fernet key repository is world readable");
        }
        let files = scan(dir)?;
        if files.is_empty() {
            return Err(KeyRepositoryError::NoKeys {
                path: dir.to_path_buf(),
            });
        }
        let mut keys = Vec::with_capacity(files.len());
        for path in files.values().rev() {
            let malformed = || KeyRepositoryError::MalformedKey { path: path.clone() };
            let text = fs::read_to_string(path).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => malformed(),
                _ => KeyRepositoryError::io(path, e),
            })?;
            let key = text.trim();
            if FernetKey::parse(key).is_none() {
                return Err(malformed());
            }
            keys.push(key.to_owned());
        }
        tracing::debug!(dir = %dir.display(), count = keys.len(), "loaded fernet keys");
        Ok(keys)
    }
}

/// A new random Fernet key: 32 bytes in urlsafe base64 with padding, as
/// `cryptography.fernet.Fernet.generate_key()` makes them.
pub fn generate_key() -> Result<String> {
    crypto::generate_key().map_err(|_| KeyRepositoryError::Rng)
}

/// Keystone's `rotate_keys`; `max_active_keys = None` purges nothing.
fn rotate_keys(dir: &Path, max_active_keys: Option<usize>) -> Result<Rotation> {
    let mut files = scan(dir)?;
    if !files.contains_key(&0) {
        return Err(KeyRepositoryError::NotInitialized {
            path: dir.to_path_buf(),
        });
    }
    let current_primary = files.keys().next_back().copied().unwrap_or(0);
    let primary = current_primary
        .checked_add(1)
        .ok_or_else(|| KeyRepositoryError::Conflict {
            path: dir.join(current_primary.to_string()),
        })?;
    let tmp = write_tmp_key(dir)?;
    let staged = dir.join(STAGED);
    let primary_path = dir.join(primary.to_string());
    let moved = install(&staged, &primary_path).and_then(|()| install(&tmp, &staged));
    if let Err(e) = moved {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    files.remove(&0);
    files.insert(primary, primary_path);
    tracing::info!(dir = %dir.display(), primary, "promoted staged fernet key to primary");

    let mut purged = Vec::new();
    if let Some(max) = max_active_keys {
        // `files` holds the non-staged keys, new primary included.
        while files.len() > max.saturating_sub(1) {
            let Some((index, path)) = files.pop_first() else {
                break;
            };
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(KeyRepositoryError::io(path, e)),
            }
            tracing::info!(dir = %dir.display(), index, "purged excess fernet key");
            purged.push(index);
        }
    }
    sync_dir(dir)?;
    Ok(Rotation { primary, purged })
}

/// Regular, non-empty files with a canonical decimal name, by index.
fn scan(dir: &Path) -> Result<BTreeMap<u64, PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| KeyRepositoryError::io(dir, e))?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| KeyRepositoryError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(key_index) else {
            if name == STAGED_TMP {
                tracing::debug!(path = %path.display(), "ignoring temporary key file");
            } else {
                tracing::warn!(path = %path.display(), "ignoring non-numeric file in fernet key repository");
            }
            continue;
        };
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            // Removed concurrently.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(KeyRepositoryError::io(path, e)),
        };
        if !meta.is_file() {
            continue;
        }
        if meta.len() == 0 {
            tracing::warn!(path = %path.display(), "ignoring empty fernet key file");
            continue;
        }
        files.insert(index, path);
    }
    Ok(files)
}

/// `"0"`, `"1"`, `"42"`: digits only, no sign, no leading zero.
fn key_index(name: &str) -> Option<u64> {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    name.parse().ok()
}

fn ensure_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().mode() & 0o005 != 0 {
                tracing::warn!(dir = %dir.display(), "fernet key repository is world readable");
            }
            Ok(())
        }
        Ok(_) => Err(KeyRepositoryError::io(
            dir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| KeyRepositoryError::io(parent, e))?;
            }
            DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .or_else(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => Ok(()),
                    _ => Err(e),
                })
                .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
                .map_err(|e| KeyRepositoryError::io(dir, e))
        }
        Err(e) => Err(KeyRepositoryError::io(dir, e)),
    }
}

/// Write a new key to `0.tmp` (mode 0600, synced), replacing a stale one.
fn write_tmp_key(dir: &Path) -> Result<PathBuf> {
    let tmp = dir.join(STAGED_TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(KeyRepositoryError::io(tmp, e)),
    }
    let key = generate_key()?;
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(key.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(KeyRepositoryError::io(tmp, e));
    }
    Ok(tmp)
}

/// Move `from` to `to` without ever replacing an existing `to` (hard link,
/// then unlink; a plain rename where hard links are unsupported).
fn install(from: &Path, to: &Path) -> Result<()> {
    let conflict = || KeyRepositoryError::Conflict {
        path: to.to_path_buf(),
    };
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).map_err(|e| KeyRepositoryError::io(from, e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(conflict()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(KeyRepositoryError::io(from, e)),
        Err(_) => {
            if to.exists() {
                return Err(conflict());
            }
            fs::rename(from, to).map_err(|e| KeyRepositoryError::io(to, e))
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyRepositoryError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::key_index;

    #[test]
    fn key_file_names() {
        assert_eq!(key_index("0"), Some(0));
        assert_eq!(key_index("17"), Some(17));
        for bad in ["", "01", "+1", "-1", "0.tmp", "1 ", "a", "１"] {
            assert_eq!(key_index(bad), None, "{bad:?}");
        }
    }
}
