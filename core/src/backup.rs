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
use crate::xaes::XaesAead;

use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, KEY_LEN};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

mod read;
pub use read::{read_header, restore, sizes};

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
    encryptor: Option<EncryptorBE32<XaesAead>>,
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

fn cipher(key: &DataKey) -> XaesAead {
    XaesAead::new(key.bytes())
}

#[cfg(test)]
mod tests;
