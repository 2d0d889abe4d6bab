//! Dual control (`enc.dual-control yes`): `ENC.KEYRING RETIRE`, `DESTROY`, `REWRAP` and
//! `IMPORT` (which can retire and destroy versions), and a `CONFIG SET` that weakens a PHI or
//! audit control, do not act when asked; they become a
//! request, which another ACL user allowed to run the same command approves within
//! `enc.dual-control-window` seconds (`ENC.DUALCONTROL APPROVE id`). The command then runs as
//! the approver. Requests live in this server's memory only: a restart or a failover drops
//! them, and in a cluster they are made and approved on the keyring authority.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::audit::{self, Access};
use crate::error::CmdError;
use crate::ffi::{Caller, Ctx};
use crate::settings;

/// A request waiting for its approval.
#[derive(Clone)]
pub struct Request {
    pub id: String,
    /// The command as it was sent, name first.
    pub argv: Vec<Vec<u8>>,
    /// The ACL subcommand name the approver must be allowed (`enc.keyring|destroy`).
    pub permission: &'static str,
    pub requester: Caller,
    /// Unix seconds.
    pub made: u64,
}

impl Request {
    /// The command in words, for `LIST` and the audit log (an argument over 64 bytes, such
    /// as an export, by its length).
    pub fn command(&self) -> String {
        self.argv
            .iter()
            .map(|a| match a.len() {
                0..=64 => String::from_utf8_lossy(a).into_owned(),
                n => format!("<{n} bytes>"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn expired(&self, now: u64) -> bool {
        now >= self.made + settings::dual_control_window().max(0) as u64
    }
}

static PENDING: Mutex<Vec<Request>> = Mutex::new(Vec::new());

/// Set while an approved request's command runs: it acts instead of asking again.
static APPROVED_RUNNING: AtomicBool = AtomicBool::new(false);

fn now() -> u64 {
    crate::clock::now_secs()
}

/// A `dual-control` audit record.
fn record(ctx: Ctx, step: &str, outcome: &str, detail: String) {
    audit::record(
        ctx,
        Access {
            event: "dual-control",
            command: step,
            key: None,
            keyring: None,
            version: None,
            outcome,
            detail: Some(detail),
        },
    );
}

/// Requests still in their window, oldest first.
pub fn pending() -> Vec<Request> {
    let now = now();
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    pending.retain(|r| !r.expired(now));
    pending.clone()
}

/// Before a command under dual control acts: `Ok` when it may act now (dual control off, an
/// approved request running, or the server itself replaying it), else the request it became,
/// as the error the caller gets.
pub fn require_second(
    ctx: Ctx,
    argv: Vec<Vec<u8>>,
    permission: &'static str,
) -> Result<(), CmdError> {
    if !settings::dual_control()
        || APPROVED_RUNNING.load(Ordering::SeqCst)
        || ctx.is_server_itself()
    {
        return Ok(());
    }
    let request = Request {
        id: redis_enc_core::key::random_token()[..16].to_owned(),
        argv,
        permission,
        requester: ctx.caller(),
        made: now(),
    };
    let id = request.id.clone();
    record(
        ctx,
        "request",
        "pending",
        format!("request {id}: {}", request.command()),
    );
    PENDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request);
    Err(CmdError::Server(format!(
        "DUALCONTROL request {id} made: another user allowed to run it must approve it within \
         {} seconds (ENC.DUALCONTROL APPROVE {id}); nothing changed yet",
        settings::dual_control_window()
    )))
}

/// Request `id`, for its approval by the current caller: refused when it does not exist (or
/// expired) or when the approver made it. It stays pending until [`run_approved`].
pub fn find(ctx: Ctx, id: &[u8]) -> Result<Request, CmdError> {
    let now = now();
    let approver = ctx.caller();
    let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    pending.retain(|r| !r.expired(now));
    let Some(at) = pending.iter().position(|r| r.id.as_bytes() == id) else {
        return Err(CmdError::Server(
            "ERR no such request: it expired, was approved, or never existed".into(),
        ));
    };
    if pending[at].requester.user == approver.user {
        let id = pending[at].id.clone();
        drop(pending);
        let detail = format!("request {id}: the user who made it cannot approve it");
        record(ctx, "approve", "denied", detail);
        return Err(CmdError::Server(
            "ERR a request must be approved by another user than the one who made it".into(),
        ));
    }
    Ok(pending[at].clone())
}

/// Removes the request, records its approval, then runs its command with `run` as the
/// approver.
pub fn run_approved(
    ctx: Ctx,
    request: &Request,
    run: impl FnOnce() -> Result<(), CmdError>,
) -> Result<(), CmdError> {
    PENDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|r| r.id != request.id);
    let detail = format!(
        "request {} by {} ({}): {}",
        request.id,
        request.requester.user,
        request.requester.addr,
        request.command()
    );
    record(ctx, "approve", "ok", detail);
    APPROVED_RUNNING.store(true, Ordering::SeqCst);
    let result = run();
    APPROVED_RUNNING.store(false, Ordering::SeqCst);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lapses_at_the_end_of_its_window() {
        let request = Request {
            id: "0123456789abcdef".into(),
            argv: vec![b"ENC.KEYRING".to_vec(), b"IMPORT".to_vec(), vec![b'x'; 65]],
            permission: "enc.keyring|import",
            requester: Caller::default(),
            made: 1_000,
        };
        settings::DUAL_CONTROL_WINDOW.store(300, Ordering::Relaxed);
        assert!(!request.expired(1_299));
        assert!(request.expired(1_300));
        assert_eq!(request.command(), "ENC.KEYRING IMPORT <65 bytes>");
    }
}
