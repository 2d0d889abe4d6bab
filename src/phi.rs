//! The PHI policy: which values are PHI, who may read and write them (Redis ACL, through the
//! subcommands of `ENC.PHI`), and how long they may live.
//!
//! A value is PHI when its envelope carries the PHI flag or its key matches `enc.phi-patterns`.
//! Reading PHI plaintext needs `enc.phi|read`, writing PHI needs `enc.phi|write` (both granted
//! by the `@phi` category where the server lets modules add categories), checked with the
//! server's own ACL check against the real key, so key patterns keep applying.

use redis_enc_core::Envelope;

use crate::audit::{self, Access};
use crate::error::CmdError;
use crate::ffi::{AclCheck, Arg, Ctx, Key, KeyType, Transport};
use crate::setopts::Expiry;
use crate::settings;

pub use redis_enc_core::policy::Op;

/// Whether a value is PHI.
pub fn is_phi(flagged: bool, key: &[u8]) -> bool {
    flagged || settings::is_phi_key(key)
}

/// Whether a write must look at the value it replaces for the PHI flag. While the guard is
/// active, PHI lives only under `enc.phi-patterns` (see [`check_placement`]), so the key name
/// says all; otherwise a value can be PHI by its flag alone, and an `ENC.*` write over it is a
/// PHI write. (Reading the old value costs a hash field copy per field in `ENC.HSETFIELD`.)
pub fn flag_matters() -> bool {
    !guard_active()
}

/// Whether stored bytes are an envelope with the PHI flag. The header is read, not yet
/// authenticated: a forged flag only makes a write need more permission, and a cleared one
/// makes the value fail to open.
pub fn flagged(stored: &[u8]) -> bool {
    Envelope::parse(stored).is_ok_and(|e| e.header().flags.phi)
}

/// Whether the value under `name` (open as `key`) holds PHI by its envelope flag: a flagged
/// string, or a hash with a flagged field. A write that replaces it is a PHI write.
pub fn stored_is_phi(ctx: Ctx, name: Arg, key: &Key) -> bool {
    match key.key_type() {
        KeyType::String => flagged(key.string_value()),
        // A hash that cannot be read is treated as PHI: the stricter answer.
        KeyType::Hash => crate::store::all_fields(ctx, name)
            .map_or(true, |fields| fields.iter().any(|(_, v)| flagged(v))),
        KeyType::Empty | KeyType::Other => false,
    }
}

/// Whether the guard protects PHI from plain commands now: `enc.phi-guard yes` with
/// `enc.phi-patterns` set. It knows PHI by key name only.
pub fn guard_active() -> bool {
    settings::phi_guard() && settings::any_phi_patterns()
}

/// While the guard is active, PHI lives only under `enc.phi-patterns`: a value flagged PHI
/// under another name would be PHI that plain commands (`SET`, `PERSIST`, ...) could overwrite
/// or keep for ever, since a command filter sees names, not stored values.
pub fn check_placement(flagged: bool, name: Arg) -> Result<(), CmdError> {
    if flagged && guard_active() && !settings::is_phi_key(name.bytes()) {
        return Err(CmdError::PhiOutsidePatterns);
    }
    Ok(())
}

/// Checks that the current user may do `op` on PHI under `key`, and that the audit log can
/// record it; a denial is logged in `ACL LOG` and the audit log.
pub fn authorize(ctx: Ctx, op: Op, key: Arg, command: &str) -> Result<(), CmdError> {
    audit::check_writable(ctx)?;
    if settings::phi_require_tls() {
        // A unix socket never leaves the host; a script's client cannot be seen, so PHI
        // through scripts is refused (fail closed).
        let secure = matches!(
            ctx.transport(),
            Transport::Tls | Transport::UnixSocket | Transport::ServerItself
        );
        if !secure {
            deny(
                ctx,
                command,
                key,
                "not a TLS connection (enc.phi-require-tls)".into(),
            );
            return Err(CmdError::PhiNeedsTls);
        }
    }
    match ctx.acl_check(
        &[b"ENC.PHI", op.subcommand(), key.bytes()],
        op.permission().as_bytes(),
    ) {
        AclCheck::Allowed | AclCheck::NoUser => Ok(()),
        AclCheck::Denied => {
            deny(
                ctx,
                command,
                key,
                format!("no {} permission", op.permission()),
            );
            Err(CmdError::PhiDenied(op))
        }
    }
}

/// Records a denied PHI access.
fn deny(ctx: Ctx, command: &str, key: Arg, why: String) {
    audit::record(
        ctx,
        Access {
            event: "denied",
            command,
            key: Some(key.bytes()),
            keyring: None,
            version: None,
            outcome: "denied",
            detail: Some(why),
        },
    );
}

/// Records a successful PHI access.
pub fn record(
    ctx: Ctx,
    op: Op,
    key: &[u8],
    command: &str,
    keyring: Option<String>,
    version: Option<u16>,
) {
    audit::record(
        ctx,
        Access {
            event: op.event(),
            command,
            key: Some(key),
            keyring,
            version,
            outcome: "ok",
            detail: None,
        },
    );
}

/// The expiry a PHI write ends with: the requested one if inside the bounds, the default if
/// none was requested, or an error. `existing_at` is the key's current expiry (for `KEEPTTL`).
pub fn bounded_expiry(
    expiry: Expiry,
    existing_at: Option<i64>,
    now_ms: i64,
) -> Result<Expiry, CmdError> {
    let bounds = settings::phi_ttl();
    bounds
        .bound(expiry, existing_at, now_ms)
        .map_err(|asked| CmdError::PhiTtl(bounds, asked))
}
