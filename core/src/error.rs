//! The error type of the core layer.
//!
//! Messages are written for the person who has to act on them. Every authentication failure is
//! the same [`Error::DecryptFailed`]: a caller cannot tell a wrong key from a flipped bit, a moved
//! value or a truncated one. No variant carries key material, plaintext or ciphertext.

use std::fmt;

use crate::key::{KeyVersion, KeyringId};
use crate::keyring::KeyringName;

/// Everything that can go wrong in the core layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the envelope magic: this value was not sealed by redis-enc.
    NotAnEnvelope,
    /// The envelope names a format version this build does not read (docs/FORMAT.md §1.4).
    UnsupportedFormat(u8),
    /// The envelope names a data key this server does not hold.
    UnknownKey {
        /// Keyring id from the envelope header.
        keyring: KeyringId,
        /// The keyring's name, if this server knows the keyring.
        name: Option<KeyringName>,
        /// Key version from the envelope header.
        version: KeyVersion,
    },
    /// The data key was retired: it no longer opens values.
    KeyRetired {
        /// Keyring name.
        keyring: KeyringName,
        /// Version.
        version: KeyVersion,
    },
    /// The data key was destroyed.
    KeyDestroyed {
        /// Keyring name.
        keyring: KeyringName,
        /// Version.
        version: KeyVersion,
    },
    /// The whole keyring was destroyed.
    KeyringDestroyed(KeyringName),
    /// The data key is known but none of the loaded master keys could unwrap it.
    KeyUnavailable {
        /// Keyring name.
        keyring: KeyringName,
        /// Version.
        version: KeyVersion,
        /// What failed.
        why: Locked,
    },
    /// A keyring with that name exists.
    KeyringExists,
    /// No such version in the keyring.
    UnknownVersion,
    /// Too many keyrings or versions (65535 each).
    LimitReached,
    /// A keyring operation that would break an invariant; the text says which.
    Refused(&'static str),
    /// Bytes that are not a keyring export, or a damaged one.
    InvalidExport,
    /// An imported keyring's id or name is used by a different keyring here.
    KeyringConflict,
    /// An imported data key differs from the one held for the same keyring and version.
    KeyMismatch,
    /// The key management service refused or answered wrongly; the text says how.
    Kms(String),
    /// The key management service could not be reached, timed out, or said it is unavailable
    /// (5xx, 429): trying again later may succeed. The text says how.
    KmsUnavailable(String),
    /// Authentication failed: the value was modified, truncated, moved to another key or field,
    /// or sealed under a different master key.
    DecryptFailed,
    /// A value too large for the cipher (more than 2^36 - 32 bytes).
    TooLarge,
    /// The master key could not be obtained; the string says which source and why.
    MasterKey(MasterKeyError),
    /// A keyring name that is not valid (empty, too long, or with control characters).
    InvalidKeyringName,
    /// A keyring name that this server does not hold.
    UnknownKeyring,
    /// An import would leave a data key that opens here, or a keyring's primary version, in a
    /// form none of the held master keys can unwrap.
    WouldLock {
        /// Keyring name.
        keyring: KeyringName,
        /// Version.
        version: KeyVersion,
    },
}

/// Why a master key could not be loaded. Names the source (a path or a variable name, never
/// the key) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeyError {
    /// No `master-key` argument was given.
    NotConfigured,
    /// The URI scheme is not one of `file:`, `env:`, `exec:`.
    UnknownScheme(String),
    /// `file:` or `env:` without a path or a variable name.
    Incomplete(String),
    /// The key file could not be read.
    Unreadable {
        /// Path of the key file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The key file can be read by group or others.
    Permissions {
        /// Path of the key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The environment variable is not set or not valid UTF-8.
    EnvMissing(String),
    /// The helper program failed: did not start, timed out, or exited non-zero.
    Exec(String),
    /// The key is not base64 of one line.
    Malformed {
        /// Where the key came from (`file /path`, `variable NAME`, `program /path`).
        source: String,
    },
    /// A KMS provider could not be set up or reached.
    Kms(String),
    /// The key decoded to the wrong number of bytes.
    WrongSize {
        /// Where the key came from.
        source: String,
        /// How many bytes it decoded to.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAnEnvelope => f.write_str("value is not a redis-enc envelope"),
            Error::UnsupportedFormat(v) => write!(
                f,
                "envelope format version {v} is not supported by this build of redis-enc"
            ),
            Error::UnknownKey { keyring, name: Some(name), version } => write!(
                f,
                "data key {version} of keyring '{}' (id {keyring}) is not held by this server",
                name.as_str()
            ),
            Error::UnknownKey { keyring, name: None, version } => {
                write!(f, "data key {version} of keyring id {keyring} is not held by this server")
            }
            Error::KeyRetired { keyring, version } => write!(
                f,
                "data key {version} of keyring '{}' is retired and no longer opens values",
                keyring.as_str()
            ),
            Error::KeyDestroyed { keyring, version } => write!(
                f,
                "data key {version} of keyring '{}' was destroyed; its values cannot be recovered",
                keyring.as_str()
            ),
            Error::KeyringDestroyed(name) => {
                write!(f, "keyring '{}' was destroyed; its values cannot be recovered", name.as_str())
            }
            Error::KeyUnavailable {
                keyring,
                version,
                why,
            } => write!(
                f,
                "data key {version} of keyring '{}' is not available: {why}",
                keyring.as_str()
            ),
            Error::KeyringExists => f.write_str("a keyring with that name exists"),
            Error::UnknownVersion => f.write_str("no such key version in that keyring"),
            Error::LimitReached => f.write_str("too many keyrings or key versions (65535 at most)"),
            Error::Refused(why) => f.write_str(why),
            Error::InvalidExport => f.write_str("not a redis-enc keyring export, or a damaged one"),
            Error::Kms(why) => write!(f, "key management service: {why}"),
            Error::KmsUnavailable(why) => write!(f, "key management service unavailable: {why}"),
            Error::WouldLock { keyring, version } => write!(
                f,
                "the import would leave data key v{} of keyring '{}' locked: it is wrapped under a master key this server does not hold",
                version.0,
                keyring.as_str()
            ),
            Error::KeyMismatch => f.write_str(
                "an imported data key differs from the one this server holds for the same keyring and version",
            ),
            Error::KeyringConflict => f.write_str(
                "an imported keyring's id or name belongs to a different keyring on this server",
            ),
            Error::DecryptFailed => f.write_str(
                "decryption failed: the value was modified, moved from another key or field, \
                 or sealed under a different master key",
            ),
            Error::TooLarge => f.write_str("value is too large to seal"),
            Error::MasterKey(e) => write!(f, "master key: {e}"),
            Error::InvalidKeyringName => {
                f.write_str("invalid keyring name: use 1 to 64 printable characters without spaces")
            }
            Error::UnknownKeyring => f.write_str("no such keyring"),
        }
    }
}

impl fmt::Display for MasterKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeyError::NotConfigured => f.write_str(
                "no master key configured; add 'master-key file:/path/to/master.key' \
                 (or env:NAME, exec:/path/to/program) to the loadmodule line",
            ),
            MasterKeyError::UnknownScheme(s) => write!(
                f,
                "unknown master key provider '{s}'; use file:PATH, env:NAME, exec:PATH [ARGS], \
                 vault-transit:URL or aws-kms:KEY-ID"
            ),
            MasterKeyError::Kms(why) => write!(f, "key management service: {why}"),
            MasterKeyError::Incomplete(scheme) => {
                write!(
                    f,
                    "master key URI '{scheme}:' needs a path or a variable name after the colon"
                )
            }
            MasterKeyError::Unreadable { path, reason } => {
                write!(f, "cannot read key file {path}: {reason}")
            }
            MasterKeyError::Permissions { path, mode } => write!(
                f,
                "key file {path} is readable by group or others (mode {mode:04o}); \
                 run 'chmod 600 {path}'"
            ),
            MasterKeyError::EnvMissing(name) => {
                write!(f, "environment variable {name} is not set or not UTF-8")
            }
            MasterKeyError::Exec(reason) => write!(f, "key program failed: {reason}"),
            MasterKeyError::Malformed { source } => write!(
                f,
                "{source} does not hold a key: expected one line of base64 \
                 (make one with 'redis-enc keygen')"
            ),
            MasterKeyError::WrongSize { source, len } => write!(
                f,
                "{source} holds {len} bytes; a master key is exactly 32 bytes \
                 (make one with 'redis-enc keygen')"
            ),
        }
    }
}

impl std::error::Error for Error {}
impl std::error::Error for MasterKeyError {}

impl From<MasterKeyError> for Error {
    fn from(e: MasterKeyError) -> Self {
        Error::MasterKey(e)
    }
}

/// Why a data key is not held: which is not the same thing to an operator in an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    /// No master key held unwraps (or derives) it: the wrong master key, or a damaged wrapping.
    WrongKey,
    /// The key management service did not answer with the key (unreachable, timed out,
    /// refused): its own words, made printable.
    Kms(String),
    /// What was unwrapped does not match the key's stored check value: a wrong answer from a
    /// key management service (or from whoever answered for it).
    BadCheck,
    /// Not tried: the unwrap deadline of the start or import had passed.
    GivenUp,
}

impl Locked {
    /// Whether trying again later may unlock it (the KMS may be back).
    pub fn may_pass(&self) -> bool {
        matches!(self, Locked::Kms(_) | Locked::GivenUp)
    }
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Locked::WrongKey => f.write_str("the loaded master key is not the one that protects it"),
            Locked::Kms(why) => write!(
                f,
                "the key management service did not unwrap it ({why}); it is asked for again every few seconds"
            ),
            Locked::BadCheck => f.write_str(
                "the key the key management service returned fails its stored check value (a wrong answer, not the key)",
            ),
            Locked::GivenUp => f.write_str(
                "unwrapping did not finish within the deadline; it is asked for again every few seconds",
            ),
        }
    }
}
