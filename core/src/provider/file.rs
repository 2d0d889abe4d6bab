//! `file:PATH`: the key file written by `redis-enc keygen`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::MasterKeyError;
use crate::key::MasterKey;

/// A key file is one line of base64; anything much longer is not a key file.
const MAX_FILE_LEN: u64 = 4096;

pub(super) fn fetch(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let shown = path.display().to_string();
    let (bytes, meta) = super::read::small_file(path, MAX_FILE_LEN).map_err(|reason| {
        MasterKeyError::Unreadable {
            path: shown.clone(),
            reason,
        }
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(MasterKeyError::Permissions { path: shown, mode });
    }
    let source = format!("key file {shown}");
    let text = std::str::from_utf8(&bytes).map_err(|_| MasterKeyError::Malformed {
        source: source.clone(),
    })?;
    MasterKey::from_base64(text, &source)
}

/// Writes a new key file with mode 0600, refusing to replace an existing file.
pub fn write_new_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only remove bits; set the mode explicitly in case the file system ignores it.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    let mut line = Zeroizing::new(key.to_base64().to_string());
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_file_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate();
        write_new_key_file(&path, &key).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fetch(&path).unwrap().id(), key.id());
        assert!(
            write_new_key_file(&path, &key).is_err(),
            "an existing key file is never replaced"
        );
    }

    #[test]
    fn group_readable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_new_key_file(&path, &MasterKey::generate()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            fetch(&path),
            Err(MasterKeyError::Permissions { mode: 0o640, .. })
        ));
    }

    #[test]
    fn missing_files_say_so() {
        let err = fetch(Path::new("/nonexistent/master.key")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read key file /nonexistent/master.key"),
            "{err}"
        );
    }
}
