//! Encrypted backup files (docs/FORMAT.md §7).
//!
//! ```text
//! "RENCBAK1"                         8 bytes, magic and format version 1
//! header length                      u32, big-endian
//! header                             JSON: creation time, source, wrapped file key, nonce prefix
//! chunk 0 .. chunk n-1               STREAM (BE32) over XAES-256-GCM under the file key:
//!                                    64 KiB of plaintext + 16-byte tag each; the last chunk
//!                                    is shorter (possibly empty) and flagged last in its nonce
//! ```
//!
//! The plaintext stream is the RDB followed by its SHA-256 (32 bytes). Every chunk's
//! associated data is the SHA-256 of the magic, length and header, so the header cannot be
//! altered; the counter and last flag in each nonce make reordered, duplicated, dropped or cut
//! chunks fail; the trailing digest is checked after the last chunk.

use std::io::{self, Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rdb::RdbCheck;
use xaes_256_gcm::aead::KeyInit;
use xaes_256_gcm::Xaes256Gcm;

use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, KEY_LEN};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

/// Magic and format version.
pub const MAGIC: &[u8; 8] = b"RENCBAK1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = CHUNK_SIZE as usize;
/// [`CHUNK`] as the header states it.
const CHUNK_SIZE: u32 = 64 * 1024;
const TAG: usize = 16;
const DIGEST: usize = 32;
/// STREAM nonce prefix: the XAES-256-GCM nonce less the 4-byte counter and 1-byte flag.
const NONCE_PREFIX: usize = 19;
const MAX_HEADER: u32 = 64 * 1024;

/// The clear header of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version (1).
    pub format: u8,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Where the snapshot came from (`redis://host:port` or `rdb:path`).
    pub source: String,
    /// What wrapped the file key (`local:<master key id>`, a KMS key).
    pub wrapped_by: String,
    /// The file key, wrapped (base64).
    pub file_key: String,
    /// STREAM nonce prefix (hex).
    pub nonce_prefix: String,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
}

/// What went wrong with a backup. Messages name the problem for the person running a drill.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackupError {
    /// Not a redis-enc backup.
    NotABackup,
    /// A newer or unknown format version.
    UnsupportedVersion(u8),
    /// The header is not readable.
    BadHeader,
    /// The file key does not unwrap with the given master key.
    WrongKey,
    /// The key management service holding the master key did not unwrap the file key
    /// (unreachable, timed out, refused): its words. Says nothing about the backup.
    Kms(String),
    /// A chunk failed authentication.
    Damaged(u64),
    /// The file ends before its last chunk.
    Truncated,
    /// The digest of the restored data does not match.
    DigestMismatch,
    /// The backup is intact, but what it holds is not a whole RDB file.
    NotAnRdb(&'static str),
    /// Reading or writing failed.
    Io(io::Error),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::NotABackup => f.write_str("not a redis-enc backup (bad magic)"),
            BackupError::NotAnRdb(why) => write!(
                f,
                "the backup is intact, but what it holds is not a whole RDB file: {why}"
            ),
            BackupError::UnsupportedVersion(v) => write!(f, "backup format version {v} is not supported by this build"),
            BackupError::BadHeader => f.write_str("the backup header is damaged"),
            BackupError::WrongKey => {
                f.write_str("the master key does not unwrap this backup's file key (wrong master key, or a damaged header)")
            }
            BackupError::Kms(why) => write!(
                f,
                "the key management service did not unwrap this backup's file key: {why} \
                 (the backup itself was not checked)"
            ),
            BackupError::Damaged(0) => f.write_str(
                "chunk 0 failed authentication: the backup was modified, its chunks reordered or duplicated, \
                 or its header altered (or, if a key management service unwrapped the file key, it returned a wrong one)",
            ),
            BackupError::Damaged(n) => write!(
                f,
                "chunk {n} failed authentication: the backup was modified, its chunks reordered or duplicated, \
                 or its header altered"
            ),
            BackupError::Truncated => f.write_str("the backup is truncated: its last chunk is missing"),
            BackupError::DigestMismatch => f.write_str("the restored data does not match the backup's digest"),
            BackupError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BackupError {}

impl From<io::Error> for BackupError {
    fn from(e: io::Error) -> Self {
        BackupError::Io(e)
    }
}

fn wrap_context(name: &KeyringName) -> WrapContext<'_> {
    WrapContext {
        keyring: name,
        id: KeyId {
            keyring: KeyringId(u16::MAX),
            version: KeyVersion(1),
        },
    }
}

fn backup_context_name() -> KeyringName {
    // A fixed valid name: the binding that keeps a backup file key from passing for a data key.
    KeyringName::parse(b"redis-enc-backup-file").expect("valid name")
}

/// Writes a backup as data streams in; call [`BackupWriter::finish`] at the end.
pub struct BackupWriter<W: Write> {
    out: W,
    encryptor: Option<EncryptorBE32<Xaes256Gcm>>,
    aad: [u8; 32],
    /// Plaintext not yet sealed: always less than one chunk between calls.
    buffer: Vec<u8>,
    /// Where each chunk is sealed (in place) before it is written.
    scratch: Vec<u8>,
    digest: Sha256,
    /// Whether what is backed up is a whole RDB file.
    rdb: RdbCheck,
    plaintext_len: u64,
    written: u64,
}

impl<W: Write> BackupWriter<W> {
    /// Starts a backup: a fresh random file key wrapped by `wrapper`, and the header.
    pub fn create(
        mut out: W,
        wrapper: &dyn Wrapper,
        source: &str,
        now: u64,
    ) -> Result<BackupWriter<W>, Error> {
        let name = backup_context_name();
        let context = wrap_context(&name);
        let (file_key, wrapped) = wrapper.generate(&context)?;
        let mut prefix = [0u8; NONCE_PREFIX];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let header = Header {
            format: 1,
            created: now,
            source: source.to_owned(),
            wrapped_by: wrapper.wrapper_id(),
            file_key: STANDARD.encode(wrapped),
            nonce_prefix: hex::encode(prefix),
            chunk_size: CHUNK_SIZE,
        };
        let json = serde_json::to_vec(&header).map_err(|_| Error::InvalidExport)?;
        let mut head = MAGIC.to_vec();
        let json_len = u32::try_from(json.len()).map_err(|_| Error::InvalidExport)?;
        head.extend_from_slice(&json_len.to_be_bytes());
        head.extend_from_slice(&json);
        out.write_all(&head)
            .map_err(|e| Error::Kms(format!("cannot write the backup: {e}")))?;
        let aead = cipher(&file_key);
        let encryptor = EncryptorBE32::from_aead(aead, (&prefix).into());
        Ok(BackupWriter {
            out,
            encryptor: Some(encryptor),
            aad: Sha256::digest(&head).into(),
            buffer: Vec::with_capacity(CHUNK + DIGEST + TAG),
            scratch: Vec::with_capacity(CHUNK + TAG),
            digest: Sha256::new(),
            rdb: RdbCheck::default(),
            plaintext_len: 0,
            written: head.len() as u64,
        })
    }

    /// Seals one full chunk (not the last: the digest always follows) and writes it.
    fn emit(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        self.scratch.extend_from_slice(plaintext);
        let enc = self
            .encryptor
            .as_mut()
            .ok_or_else(|| io::Error::other("backup already finished"))?;
        enc.encrypt_next_in_place(&self.aad, &mut self.scratch)
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&self.scratch)?;
        self.written += self.scratch.len() as u64;
        Ok(())
    }

    fn emit_full_chunks(&mut self) -> io::Result<()> {
        while self.buffer.len() > CHUNK {
            let rest = self.buffer.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.buffer, rest);
            self.emit(&chunk)?;
        }
        Ok(())
    }

    /// Ends the stream: the digest, the last chunk, a flush. Returns (plaintext bytes, file bytes).
    /// Fails, before the last chunk, when what was backed up is not a whole RDB file.
    pub fn finish(mut self) -> io::Result<(u64, u64, W)> {
        std::mem::take(&mut self.rdb).finish().map_err(|why| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("what was received is not a whole RDB file: {why}"),
            )
        })?;
        let digest = std::mem::take(&mut self.digest).finalize();
        self.buffer.extend_from_slice(&digest);
        self.emit_full_chunks()?;
        // Exactly CHUNK bytes may remain: they go out as a full chunk, then an empty last one.
        if self.buffer.len() == CHUNK {
            let chunk = std::mem::take(&mut self.buffer);
            self.emit(&chunk)?;
        }
        let mut last = std::mem::take(&mut self.buffer);
        let enc = self
            .encryptor
            .take()
            .ok_or_else(|| io::Error::other("backup already finished"))?;
        enc.encrypt_last_in_place(&self.aad, &mut last)
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&last)?;
        self.written += last.len() as u64;
        self.out.flush()?;
        Ok((self.plaintext_len, self.written, self.out))
    }
}

impl<W: Write> Write for BackupWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.digest.update(data);
        self.rdb.update(data);
        self.plaintext_len += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            if self.buffer.is_empty() && rest.len() >= CHUNK {
                let (chunk, tail) = rest.split_at(CHUNK);
                self.emit(chunk)?;
                rest = tail;
                continue;
            }
            let take = (CHUNK - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == CHUNK {
                let chunk = std::mem::take(&mut self.buffer);
                self.emit(&chunk)?;
                self.buffer = chunk;
                self.buffer.clear();
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn cipher(key: &DataKey) -> Xaes256Gcm {
    // A 32-byte key is always valid.
    Xaes256Gcm::new_from_slice(key.bytes()).expect("32-byte key")
}

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
fn read_unit(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
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
fn unwrap_file_key(
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

#[cfg(test)]
mod tests;
