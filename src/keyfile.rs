//! Key files: `<name>.key` (secret, mode 0600) and `<name>.vkey` (public), one line each in
//! the text formats of Go's `note` package.
//!
//! Secret keys are created with mode 0600 from the start (never chmod-ed after being written
//! world-readable), never overwritten, and refused when group- or world-readable.

use crate::note::{SecretKey, VerifierKey};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a secret key file, refusing one that others can read.
pub fn read_secret(path: &Path) -> Result<SecretKey, KeyFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyFileError::Invalid {
            path: path.to_path_buf(),
            why: format!(
                "secret key file is readable by group or others (mode {:o}); run: chmod 600 {}",
                meta.permissions().mode() & 0o777,
                path.display()
            ),
        });
    }
    let text = fs::read_to_string(path).map_err(io(path))?;
    // The error names the file and the problem, never the key text.
    SecretKey::parse(text.trim_end()).map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Reads a verifier key: the text itself, or a file holding it.
pub fn read_verifier(text_or_path: &str) -> Result<VerifierKey, KeyFileError> {
    if let Ok(k) = VerifierKey::parse(text_or_path.trim()) {
        return Ok(k);
    }
    let path = Path::new(text_or_path);
    let text = fs::read_to_string(path).map_err(io(path))?;
    VerifierKey::parse(text.trim()).map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Writes a new key pair as `<dir>/<file>.key` and `<dir>/<file>.vkey`; refuses to overwrite.
pub fn write_pair(
    dir: &Path,
    file: &str,
    key: &SecretKey,
) -> Result<(PathBuf, PathBuf), KeyFileError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let skey = dir.join(format!("{file}.key"));
    let vkey = dir.join(format!("{file}.vkey"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&skey)
        .map_err(io(&skey))?;
    f.write_all(format!("{}\n", key.to_text()).as_bytes())
        .map_err(io(&skey))?;
    f.sync_all().map_err(io(&skey))?;
    let mut v = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&vkey)
        .map_err(io(&vkey))?;
    v.write_all(format!("{}\n", key.verifier()).as_bytes())
        .map_err(io(&vkey))?;
    v.sync_all().map_err(io(&vkey))?;
    Ok((skey, vkey))
}

/// Loads `<dir>/<file>.key`, creating the pair under `name` if it does not exist. An existing
/// key must carry `name`.
pub fn load_or_create(
    dir: &Path,
    file: &str,
    name: &str,
) -> Result<(SecretKey, bool), KeyFileError> {
    let path = dir.join(format!("{file}.key"));
    if path.exists() {
        let k = read_secret(&path)?;
        if k.name != name {
            return Err(KeyFileError::Invalid {
                path,
                why: format!(
                    "the key is named {:?} but this log needs {name:?} (is --origin right?)",
                    k.name
                ),
            });
        }
        return Ok((k, false));
    }
    let k = SecretKey::generate(name).map_err(|e| KeyFileError::Invalid {
        path: path.clone(),
        why: e.to_string(),
    })?;
    write_pair(dir, file, &k)?;
    Ok((k, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_never_overwritten_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (k, created) = load_or_create(dir.path(), "log", "example.org/log").unwrap();
        assert!(created);
        let path = dir.path().join("log.key");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A second start loads the same key; it is never overwritten.
        let (again, created) = load_or_create(dir.path(), "log", "example.org/log").unwrap();
        assert!(!created);
        assert_eq!(again.verifier(), k.verifier());
        assert!(write_pair(dir.path(), "log", &k).is_err());
        // A key for another origin is refused with a clear message.
        let err = load_or_create(dir.path(), "log", "other.org/log")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is --origin right?"), "{err}");
        // Readable by others: refused, and the message says how to fix it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        // Malformed: refused without echoing the content.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "PRIVATE+KEY+example.org/log+00000000+AAAA\n").unwrap();
        let err = read_secret(&path).unwrap_err().to_string();
        assert!(err.contains("log.key") && !err.contains("AAAA"), "{err}");
        // The secret never shows in Debug output.
        assert!(!format!("{k:?}").contains(&k.to_text()[20..]));
    }
}
