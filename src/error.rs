//! Errors of the adapter layer and the one mapping from every error to a Redis reply.
//!
//! Messages are fixed strings (the only variable parts are numbers and command names): an error
//! reply never carries plaintext, ciphertext, key material, or a key name.

use std::borrow::Cow;

use redis_enc_core::Error as CoreError;

mod kind;
use kind::core_kind;
pub use kind::ErrorKind;

/// Why the server holds no keyring yet (its KMS was out at start), asked when a command finds
/// none. The runtime registers it ([`explain_missing_keyrings_with`]) so that this mapping holds
/// no state of its own.
static NO_KEYRING_REASON: std::sync::OnceLock<fn() -> Option<String>> = std::sync::OnceLock::new();

/// Registers what says why no keyring exists yet.
pub fn explain_missing_keyrings_with(why: fn() -> Option<String>) {
    let _ = NO_KEYRING_REASON.set(why);
}

/// Why a key version may be missing on this node (a cluster node whose keyrings are behind),
/// registered by the runtime as [`NO_KEYRING_REASON`] is.
static MISSING_VERSION_REASON: std::sync::OnceLock<fn() -> Option<String>> =
    std::sync::OnceLock::new();

/// Registers what says why a key version may be missing here.
pub fn explain_missing_versions_with(why: fn() -> Option<String>) {
    let _ = MISSING_VERSION_REASON.set(why);
}

/// Why a command failed.
#[derive(Debug)]
pub enum CmdError {
    /// Wrong number of arguments for the named command.
    WrongArity(&'static str),
    Syntax,
    NotInteger,
    /// An expire time out of range, for the named command.
    InvalidExpire(&'static str),
    WrongType,
    NoSuchKey,
    /// The user may write the key but not read it (the `GET` option of `ENC.SET`).
    NoReadPermission,
    /// The core refused: bad envelope, unknown key, and so on.
    Core(CoreError),
    /// A server-side failure of a write (out of memory, for example): the server's own text.
    Server(String),
    /// The module has no keyring (it failed to load completely).
    NotReady,
    /// A destructive keyring operation that needs `FORCE`.
    NeedsForce,
    /// The user lacks PHI read or write permission.
    PhiDenied(redis_enc_core::policy::Op),
    /// A PHI write without a time to live, or with one outside the bounds (given in seconds).
    PhiTtl(redis_enc_core::policy::TtlBounds, Option<i64>),
    /// `enc.audit-fail-closed` is on and the audit log cannot be written.
    AuditUnavailable,
    /// PHI under a key name that `enc.phi-patterns` does not cover, while the guard is active.
    PhiOutsidePatterns,
    /// The guard refused a plain command.
    Guard(redis_enc_core::policy::Refusal),
    /// PHI over a connection that is not TLS, with `enc.phi-require-tls yes`.
    PhiNeedsTls,
    /// The user may not run this (lower-case) command: the server's own wording.
    AclCommand(String),
    /// The user may not access a key of the command: the server's own wording.
    AclKey,
    /// A KMS-backed server whose KMS has not made `default`'s first key yet: why not.
    NoKeyringYet(String),
}

impl From<CoreError> for CmdError {
    fn from(e: CoreError) -> Self {
        CmdError::Core(e)
    }
}

impl CmdError {
    /// The reply text, starting with the Redis error code.
    pub fn reply_text(&self) -> Cow<'static, str> {
        match self {
            CmdError::WrongArity(cmd) => {
                format!("ERR wrong number of arguments for '{cmd}' command").into()
            }
            CmdError::Syntax => "ERR syntax error".into(),
            CmdError::NotInteger => "ERR value is not an integer or out of range".into(),
            CmdError::InvalidExpire(cmd) => {
                format!("ERR invalid expire time in '{cmd}' command").into()
            }
            CmdError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            }
            CmdError::NoSuchKey => "ERR no such key".into(),
            CmdError::NoReadPermission => {
                "NOPERM this user has no permissions to read the key (needed by the GET option)"
                    .into()
            }
            CmdError::Server(text) => text.clone().into(),
            CmdError::NotReady => "ERR redis-enc has no keyring loaded".into(),
            CmdError::PhiDenied(op) => format!(
                "NOPERM this user has no permission to {} PHI (grant +{} or +@phi)",
                if *op == redis_enc_core::policy::Op::Read {
                    "read"
                } else {
                    "write"
                },
                op.permission()
            )
            .into(),
            CmdError::PhiTtl(bounds, got) => {
                let range = |v: i64| {
                    if v > 0 {
                        v.to_string()
                    } else {
                        "none".to_owned()
                    }
                };
                let given = match got {
                    Some(s) => format!("{s} s was asked"),
                    None => "no expiry was given and enc.phi-ttl-default is 0".to_owned(),
                };
                format!(
                    "ERR PHI must expire within enc.phi-ttl-min {} s and enc.phi-ttl-max {} s; {given}",
                    range(bounds.min),
                    range(bounds.max)
                )
                .into()
            }
            CmdError::Guard(refusal) => refusal.message().into(),
            CmdError::PhiNeedsTls => "NOPERM PHI is read and written only over TLS here (enc.phi-require-tls yes); \
                                      connect with TLS or through the unix socket"
                .into(),
            CmdError::AclCommand(command) => {
                format!("NOPERM this user has no permissions to run the '{command}' command").into()
            }
            CmdError::AclKey => {
                "NOPERM this user has no permissions to access one of the keys used as arguments".into()
            }
            CmdError::PhiOutsidePatterns => "ERR enc.phi-guard: PHI must live under a key that enc.phi-patterns \
                                             covers (plain commands see key names, not the PHI flag); add a pattern for this key"
                .into(),
            CmdError::AuditUnavailable => {
                "ERR the audit log cannot be written; PHI access is denied until it can \
                                           (enc.audit-fail-closed yes)"
                    .into()
            }
            CmdError::NeedsForce => {
                "ERR values may still be sealed under this key: run ENC.REENCRYPT START for \
                                     the keyring first, or add FORCE to shred them"
                    .into()
            }
            CmdError::NoKeyringYet(why) => no_keyring_yet(why),
            CmdError::Core(e) => core_reply_text(e),
        }
    }

    /// Whether this error is a stored value that failed to open.
    pub fn is_open_failure(&self) -> bool {
        self.kind().is_open_failure()
    }

    /// What kind of failure this is, for the `INFO enc` error counters.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CmdError::WrongArity(_)
            | CmdError::Syntax
            | CmdError::NotInteger
            | CmdError::InvalidExpire(_) => ErrorKind::Syntax,
            CmdError::WrongType => ErrorKind::WrongType,
            CmdError::NoSuchKey => ErrorKind::NoKey,
            CmdError::NoReadPermission
            | CmdError::PhiDenied(_)
            | CmdError::AclCommand(_)
            | CmdError::AclKey => ErrorKind::NoPerm,
            CmdError::Guard(_) => ErrorKind::Guard,
            CmdError::PhiNeedsTls => ErrorKind::PhiTls,
            CmdError::PhiTtl(..) => ErrorKind::PhiTtl,
            CmdError::PhiOutsidePatterns => ErrorKind::PhiPlacement,
            CmdError::AuditUnavailable => ErrorKind::AuditUnavailable,
            CmdError::Server(_) | CmdError::NotReady | CmdError::NeedsForce => ErrorKind::Server,
            CmdError::NoKeyringYet(_) => ErrorKind::Kms,
            CmdError::Core(e) => core_kind(e),
        }
    }
}

fn core_reply_text(e: &CoreError) -> Cow<'static, str> {
    match e {
        CoreError::NotAnEnvelope => {
            "ERR value is not sealed by redis-enc (read it with GET, or seal it with ENC.SET)".into()
        }
        CoreError::DecryptFailed => "ERR decryption failed: the value was modified, moved from another key or \
                                     field, or sealed under a different master key"
            .into(),
        CoreError::UnsupportedFormat(v) => {
            format!("ERR envelope format version {v} is not supported by this redis-enc build").into()
        }
        CoreError::UnknownKey { keyring, name, version } => {
            let why = MISSING_VERSION_REASON
                .get()
                .and_then(|why| why())
                .map_or_else(String::new, |b| format!(": {b}"));
            match name {
                Some(name) => format!(
                    "ERR unknown data key: version {} of keyring '{}' (id {keyring}) is not held by this server{why}",
                    version.0,
                    name.as_str()
                ),
                None => format!(
                    "ERR unknown data key: keyring id {keyring} version {} is not held by this server{why}",
                    version.0
                ),
            }
        }
        .into(),
        CoreError::KeyRetired { keyring, version } => format!(
            "ERR data key version {} of keyring '{}' is retired and no longer opens values",
            version.0,
            keyring.as_str()
        )
        .into(),
        CoreError::KeyDestroyed { keyring, version } => format!(
            "ERR data key version {} of keyring '{}' was destroyed; the value cannot be recovered",
            version.0,
            keyring.as_str()
        )
        .into(),
        CoreError::KeyringDestroyed(name) => {
            format!("ERR keyring '{}' was destroyed; the value cannot be recovered", name.as_str()).into()
        }
        CoreError::KeyUnavailable {
            keyring,
            version,
            why,
        } => format!(
            "ERR data key version {} of keyring '{}' is not available: {why}",
            version.0,
            keyring.as_str()
        )
        .into(),
        CoreError::TooLarge => "ERR value too large to seal".into(),
        CoreError::InvalidKeyringName => {
            "ERR invalid keyring name: use 1 to 64 printable characters without spaces".into()
        }
        CoreError::UnknownKeyring => match NO_KEYRING_REASON.get().and_then(|why| why()) {
            Some(why) => no_keyring_yet(&why),
            None => "ERR no such keyring".into(),
        },
        CoreError::KeyringExists => "ERR a keyring with that name exists".into(),
        CoreError::UnknownVersion => "ERR no such key version in that keyring".into(),
        CoreError::LimitReached => "ERR too many keyrings or key versions (65535 at most)".into(),
        CoreError::Refused(why) => format!("ERR {why}").into(),
        CoreError::InvalidExport => "ERR not a redis-enc keyring export, or a damaged one".into(),
        CoreError::KeyMismatch => "ERR an imported data key differs from the one this server holds for the same \
                                   keyring and version (each server made its own; import before writing)"
            .into(),
        CoreError::WouldLock { keyring, version } => format!(
            "ERR the import would leave data key version {} of keyring '{}' unusable here: it is wrapped \
             under a master key this server does not hold (another server's master key?); add FORCE to import it anyway",
            version.0,
            keyring.as_str()
        )
        .into(),
        CoreError::KeyringConflict => {
            "ERR an imported keyring's id or name belongs to a different keyring on this server".into()
        }
        CoreError::Kms(why) => format!("ERR key management service: {why}").into(),
        CoreError::KmsUnavailable(why) => {
            format!("ERR key management service unavailable: {why}").into()
        }
        CoreError::MasterKey(_) => "ERR master key unavailable".into(),
        _ => "ERR redis-enc internal error".into(),
    }
}

fn no_keyring_yet(why: &str) -> Cow<'static, str> {
    format!(
        "ERR no keyring yet: the key management service could not make keyring 'default''s first key ({why}); \
         it is asked again every few seconds"
    )
    .into()
}

/// A command handler of this module.
pub type Handler = crate::ffi::entry::Handler<CmdError>;

/// Checks the argument count of a command.
pub fn arity(args: &[crate::ffi::Arg], min: usize, name: &'static str) -> Result<(), CmdError> {
    if args.len() < min {
        return Err(CmdError::WrongArity(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_starts_with_an_error_code() {
        let errors = [
            CmdError::WrongArity("enc.get"),
            CmdError::Syntax,
            CmdError::NotInteger,
            CmdError::InvalidExpire("enc.set"),
            CmdError::WrongType,
            CmdError::NoSuchKey,
            CmdError::NoReadPermission,
            CmdError::NotReady,
            CmdError::Core(CoreError::NotAnEnvelope),
            CmdError::Core(CoreError::DecryptFailed),
            CmdError::Core(CoreError::UnsupportedFormat(2)),
            CmdError::Core(CoreError::TooLarge),
        ];
        for e in errors {
            let text = e.reply_text();
            let code = text.split(' ').next().unwrap();
            assert!(["ERR", "WRONGTYPE", "NOPERM"].contains(&code), "{text}");
        }
    }

    #[test]
    fn every_kind_sits_at_its_own_index() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }
}
