//! Reading the small files a provider names (a key file, a token file, a CA bundle): regular
//! files only, and never more than a bound. A FIFO, a device or a socket is refused before any
//! byte is read (opening a FIFO for reading would wait for a writer for ever), and `/dev/zero`
//! cannot fill the memory.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroizing;

/// The bytes of a regular file of at most `max` bytes, and its metadata; the message says what
/// is wrong (the path is the caller's to add).
pub fn small_file(path: &Path, max: u64) -> Result<(Zeroizing<Vec<u8>>, Metadata), String> {
    // Non-blocking, so that opening a FIFO returns at once; the file type is checked on the
    // file opened, not on a name that could be swapped in between.
    let file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("longer than {max} bytes"));
    }
    Ok((bytes, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_long_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(small_file(&fifo, 64).unwrap_err(), "not a regular file");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            small_file(Path::new("/dev/zero"), 64).unwrap_err(),
            "not a regular file"
        );
        let long = dir.path().join("long");
        std::fs::write(&long, [b'a'; 65]).unwrap();
        assert_eq!(small_file(&long, 64).unwrap_err(), "longer than 64 bytes");
        std::fs::write(&long, [b'a'; 64]).unwrap();
        assert_eq!(small_file(&long, 64).unwrap().0.len(), 64);
    }
}
