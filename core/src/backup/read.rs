//! Reading a backup: its header, then each chunk checked in order, into the restored RDB.

use super::*;

/// Reads the magic and the header; returns the header and the bytes it was read from.
pub fn read_header(input: &mut impl Read) -> Result<(Header, Vec<u8>), BackupError> {
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| BackupError::NotABackup)?;
    if &magic[..7] != b"RENCBAK" {
        return Err(BackupError::NotABackup);
    }
    if magic[7] != b'1' {
        return Err(BackupError::UnsupportedVersion(magic[7].wrapping_sub(b'0')));
    }
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| BackupError::BadHeader)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(BackupError::BadHeader);
    }
    let mut json = vec![0u8; len as usize];
    input
        .read_exact(&mut json)
        .map_err(|_| BackupError::BadHeader)?;
    let header: Header = serde_json::from_slice(&json).map_err(|_| BackupError::BadHeader)?;
    if header.format != 1 || header.chunk_size as usize != CHUNK {
        return Err(BackupError::BadHeader);
    }
    let mut raw = magic.to_vec();
    raw.extend_from_slice(&len.to_be_bytes());
    raw.extend_from_slice(&json);
    Ok((header, raw))
}

/// Reads a full unit (or what is left at the end of the input).
pub(super) fn read_unit(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.resize(CHUNK + TAG, 0);
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

/// Decrypts and checks a whole backup, writing the plaintext (the RDB) to `out`. `progress`
/// gets the number of input bytes read so far. Nothing is trusted until this returns `Ok`.
pub fn restore(
    mut input: impl Read,
    mut out: impl Write,
    unwrappers: &[&dyn Wrapper],
    mut progress: impl FnMut(u64),
) -> Result<(Header, u64), BackupError> {
    let (header, raw) = read_header(&mut input)?;
    let aad: [u8; 32] = Sha256::digest(&raw).into();
    let wrapped = STANDARD
        .decode(&header.file_key)
        .map_err(|_| BackupError::BadHeader)?;
    let prefix: [u8; NONCE_PREFIX] = hex::decode(&header.nonce_prefix)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or(BackupError::BadHeader)?;
    let name = backup_context_name();
    let context = wrap_context(&name);
    let file_key = unwrap_file_key(unwrappers, &wrapped, &context)?;
    let mut decryptor = Some(DecryptorBE32::from_aead(
        cipher(&file_key),
        (&prefix).into(),
    ));
    let mut digest = Sha256::new();
    let mut rdb = RdbCheck::default();
    let mut held = Vec::with_capacity(DIGEST);
    let mut read = raw.len() as u64;
    let mut written = 0u64;
    let mut current = Vec::new();
    let mut next = Vec::new();
    read_unit(&mut input, &mut current)?;
    let mut index = 0u64;
    loop {
        read += current.len() as u64;
        progress(read);
        let is_last = current.len() < CHUNK + TAG;
        if !is_last {
            read_unit(&mut input, &mut next)?;
            if next.is_empty() {
                return Err(BackupError::Truncated);
            }
        }
        let mut chunk = std::mem::take(&mut current);
        if is_last {
            let dec = decryptor.take().ok_or(BackupError::Damaged(index))?;
            dec.decrypt_last_in_place(&aad, &mut chunk)
                .map_err(|_| BackupError::Damaged(index))?;
        } else {
            let dec = decryptor.as_mut().ok_or(BackupError::Damaged(index))?;
            dec.decrypt_next_in_place(&aad, &mut chunk)
                .map_err(|_| BackupError::Damaged(index))?;
        }
        // Hold back the last 32 bytes seen: they may be the trailing digest.
        held.extend_from_slice(&chunk);
        if held.len() > DIGEST {
            let release = held.len() - DIGEST;
            out.write_all(&held[..release])?;
            digest.update(&held[..release]);
            rdb.update(&held[..release]);
            written += release as u64;
            held.drain(..release);
        }
        if is_last {
            break;
        }
        current = std::mem::take(&mut next);
        index += 1;
    }
    if held.len() != DIGEST || digest.finalize().as_slice() != held.as_slice() {
        return Err(BackupError::DigestMismatch);
    }
    rdb.finish().map_err(BackupError::NotAnRdb)?;
    out.flush()?;
    Ok((header, written))
}

/// Sizes a backup's file implies, without a key: (chunks, plaintext bytes of the RDB).
pub fn sizes(file_len: u64, header_len: u64) -> (u64, u64) {
    let body = file_len.saturating_sub(header_len);
    let unit = (CHUNK + TAG) as u64;
    let chunks = body / unit + 1;
    let plaintext = body
        .saturating_sub(chunks * TAG as u64)
        .saturating_sub(DIGEST as u64);
    (chunks, plaintext)
}

#[allow(dead_code)]
const _KEY_LEN_IS_AES256: () = assert!(KEY_LEN == 32);

/// The file key, from the first wrapper that unwraps it; a KMS failure is told apart from a
/// master key that does not open it.
pub(super) fn unwrap_file_key(
    unwrappers: &[&dyn Wrapper],
    wrapped: &[u8],
    context: &WrapContext<'_>,
) -> Result<DataKey, BackupError> {
    let mut failure = BackupError::WrongKey;
    for wrapper in unwrappers {
        match wrapper.unwrap(wrapped, context) {
            Ok(key) => return Ok(key),
            Err(Error::Kms(why) | Error::KmsUnavailable(why))
                if matches!(failure, BackupError::WrongKey) =>
            {
                failure = BackupError::Kms(why);
            }
            Err(_) => {}
        }
    }
    Err(failure)
}
