use super::*;
use crate::key::MasterKey;

/// `len` bytes shaped like an RDB file (magic, filler, end-of-file opcode, no checksum).
fn rdb_of(len: usize) -> Vec<u8> {
    assert!(len >= 18);
    let mut data = b"REDIS0010".to_vec();
    data.extend((9..len - 9).map(|i| u8::try_from(i % 251).unwrap()));
    data.push(0xff);
    data.extend([0u8; 8]);
    data
}

fn backup(master: &MasterKey, data: &[u8]) -> Vec<u8> {
    let mut w = BackupWriter::create(Vec::new(), master, "rdb:test", 1).unwrap();
    for piece in data.chunks(7777) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap().2
}

fn restored(master: &MasterKey, file: &[u8]) -> Result<Vec<u8>, BackupError> {
    let mut out = Vec::new();
    restore(file, &mut out, &[master], |_| {})?;
    Ok(out)
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let master = MasterKey::generate();
    for len in [
        18,
        19,
        CHUNK - DIGEST - 1,
        CHUNK - DIGEST,
        CHUNK - DIGEST + 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK + 5,
    ] {
        let data = rdb_of(len);
        let file = backup(&master, &data);
        assert_eq!(restored(&master, &file).unwrap(), data, "length {len}");
        let (header, raw) = read_header(&mut &file[..]).unwrap();
        assert_eq!(
            sizes(file.len() as u64, raw.len() as u64).1,
            len as u64,
            "size of {len}"
        );
        assert_eq!(header.source, "rdb:test");
    }
}

/// What is backed up must be a whole RDB file; what a backup holds is checked again when
/// it is read.
#[test]
fn only_whole_rdb_files_are_backed_up() {
    let master = MasterKey::generate();
    for junk in [&b""[..], b"not an rdb", &rdb_of(100)[..90]] {
        let mut w = BackupWriter::create(Vec::new(), &master, "rdb:test", 1).unwrap();
        w.write_all(junk).unwrap();
        let err = w.finish().unwrap_err();
        assert!(err.to_string().contains("not a whole RDB file"), "{err}");
    }
}

#[test]
fn tampering_is_found() {
    let master = MasterKey::generate();
    let data = rdb_of(3 * CHUNK + 100);
    let file = backup(&master, &data);
    let (_, raw) = read_header(&mut &file[..]).unwrap();
    let h = raw.len();
    let unit = CHUNK + TAG;
    let flip = |i: usize| {
        let mut f = file.clone();
        f[i] ^= 1;
        f
    };
    assert!(matches!(
        restored(&master, &flip(h + 10)),
        Err(BackupError::Damaged(0))
    ));
    assert!(
        matches!(
            restored(&master, &flip(h + unit - 1)),
            Err(BackupError::Damaged(0))
        ),
        "tag"
    );
    assert!(matches!(
        restored(&master, &flip(h + 2 * unit + 5)),
        Err(BackupError::Damaged(2))
    ));
    assert!(restored(&master, &flip(20)).is_err(), "header");
    let mut swapped = file[..h].to_vec();
    swapped.extend_from_slice(&file[h + unit..h + 2 * unit]);
    swapped.extend_from_slice(&file[h..h + unit]);
    swapped.extend_from_slice(&file[h + 2 * unit..]);
    assert!(matches!(
        restored(&master, &swapped),
        Err(BackupError::Damaged(0))
    ));
    let mut duplicated = file[..h + unit].to_vec();
    duplicated.extend_from_slice(&file[h..]);
    assert!(matches!(
        restored(&master, &duplicated),
        Err(BackupError::Damaged(1))
    ));
    assert!(matches!(
        restored(&master, &file[..h + 3 * unit]),
        Err(BackupError::Truncated)
    ));
    assert!(matches!(
        restored(&master, &file[..file.len() - 1]),
        Err(BackupError::Damaged(3))
    ));
    assert!(matches!(
        restored(&MasterKey::generate(), &file),
        Err(BackupError::WrongKey)
    ));
    assert!(matches!(
        restored(&master, b"not a backup at all"),
        Err(BackupError::NotABackup)
    ));
}
