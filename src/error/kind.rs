//! The kinds of failure `INFO enc` counts.

use redis_enc_core::Error as CoreError;

/// The kinds of failure `INFO enc` counts, each under its name (`errors_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    WrongType,
    NoKey,
    NoPerm,
    Server,
    NotEnvelope,
    DecryptFailed,
    UnknownKey,
    UnsupportedFormat,
    RetiredOrDestroyed,
    KeyUnavailable,
    Kms,
    PhiTtl,
    PhiPlacement,
    PhiTls,
    Guard,
    AuditUnavailable,
    Other,
}

impl ErrorKind {
    /// Every kind, in the order `INFO enc` lists them.
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::Syntax,
        ErrorKind::WrongType,
        ErrorKind::NoKey,
        ErrorKind::NoPerm,
        ErrorKind::Server,
        ErrorKind::NotEnvelope,
        ErrorKind::DecryptFailed,
        ErrorKind::UnknownKey,
        ErrorKind::UnsupportedFormat,
        ErrorKind::RetiredOrDestroyed,
        ErrorKind::KeyUnavailable,
        ErrorKind::Kms,
        ErrorKind::PhiTtl,
        ErrorKind::PhiPlacement,
        ErrorKind::PhiTls,
        ErrorKind::Guard,
        ErrorKind::AuditUnavailable,
        ErrorKind::Other,
    ];

    /// The name `INFO enc` counts the kind under.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::WrongType => "wrongtype",
            ErrorKind::NoKey => "nokey",
            ErrorKind::NoPerm => "noperm",
            ErrorKind::Server => "server",
            ErrorKind::NotEnvelope => "not_envelope",
            ErrorKind::DecryptFailed => "decrypt_failed",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::UnsupportedFormat => "unsupported_format",
            ErrorKind::RetiredOrDestroyed => "retired_or_destroyed",
            ErrorKind::KeyUnavailable => "key_unavailable",
            ErrorKind::Kms => "kms",
            ErrorKind::PhiTtl => "phi_ttl",
            ErrorKind::PhiPlacement => "phi_placement",
            ErrorKind::PhiTls => "phi_tls",
            ErrorKind::Guard => "guard",
            ErrorKind::AuditUnavailable => "audit_unavailable",
            ErrorKind::Other => "other",
        }
    }

    /// The kind's place in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a stored value failed to open.
    pub fn is_open_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::NotEnvelope
                | ErrorKind::DecryptFailed
                | ErrorKind::UnknownKey
                | ErrorKind::UnsupportedFormat
                | ErrorKind::RetiredOrDestroyed
                | ErrorKind::KeyUnavailable
        )
    }
}

/// The kind of a core failure.
pub(super) fn core_kind(e: &CoreError) -> ErrorKind {
    match e {
        CoreError::Kms(_) | CoreError::KmsUnavailable(_) => ErrorKind::Kms,
        CoreError::NotAnEnvelope => ErrorKind::NotEnvelope,
        CoreError::DecryptFailed => ErrorKind::DecryptFailed,
        CoreError::UnknownKey { .. } => ErrorKind::UnknownKey,
        CoreError::KeyRetired { .. }
        | CoreError::KeyDestroyed { .. }
        | CoreError::KeyringDestroyed(_) => ErrorKind::RetiredOrDestroyed,
        CoreError::KeyUnavailable { .. } => ErrorKind::KeyUnavailable,
        CoreError::UnsupportedFormat(_) => ErrorKind::UnsupportedFormat,
        _ => ErrorKind::Other,
    }
}
