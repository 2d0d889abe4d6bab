//! How a keyring change that waits for a KMS runs: the client is blocked while a thread talks
//! to the KMS, the change is applied on the main thread's lock, and the stack it used is wiped.

use super::*;

/// Runs a keyring handler, then overwrites the stack it used: the copies of raw keys that
/// building, wrapping or copying keys left there.
#[inline(never)]
pub(super) fn scrubbed(ctx: Ctx, args: &[Arg], handler: Handler) -> Result<(), CmdError> {
    let result = handler(ctx, args);
    scrub_stack();
    result
}

/// Only one keyring change waits on the key management service at a time.
static WAITING: AtomicBool = AtomicBool::new(false);

/// Runs a keyring change in two steps: `work`, the key management service's part (making,
/// wrapping or unwrapping keys with the held master keys), then `apply`, the change to the
/// store with its propagation and audit record. With a KMS master key and a client that may
/// block, `work` runs on a thread of its own while the server goes on serving everyone else,
/// and `apply` runs once it is done (refused if the store changed meanwhile in a way that
/// conflicts). With a local master key, or when the server itself runs the change (the
/// replication stream, the AOF), both run now; a client in a transaction or a script is refused.
pub(super) fn change<T: Send + 'static>(
    ctx: Ctx,
    work: impl FnOnce(&Held) -> Result<T, CmdError> + Send + 'static,
    apply: impl FnOnce(Ctx, T) -> Result<Outcome, CmdError> + Send + 'static,
) -> Result<(), CmdError> {
    let held = state::with(|s| Ok(s.held()))?;
    if held.remote() && !ctx.may_block() && !ctx.is_server_itself() {
        // Waiting for the KMS there would stop the whole server.
        return Err(CmdError::Server(
            "ERR with a KMS-held master key this keyring change waits for the key management \
             service, which a transaction or a script cannot do: run it on its own"
                .into(),
        ));
    }
    if !held.remote() || ctx.is_server_itself() {
        work(&held).and_then(|done| apply(ctx, done))?.reply(ctx);
        return Ok(());
    }
    if WAITING.swap(true, Ordering::SeqCst) {
        return Err(CoreError::Refused(
            "another keyring change is waiting for the key management service; try again",
        )
        .into());
    }
    let (hand_over, handed) = mpsc::channel::<Blocked>();
    let spawned = std::thread::Builder::new()
        .name("enc-keyring".into())
        .spawn(move || {
            let Ok(blocked) = handed.recv() else {
                WAITING.store(false, Ordering::SeqCst);
                return;
            };
            let done = catch_unwind(AssertUnwindSafe(|| work(&held))).unwrap_or_else(|_| {
                crate::stats::count_internal_error();
                crate::ffi::log_without_context(
                    crate::ffi::Level::Warning,
                    "redis-enc: internal error in a keyring change waiting on the key management service; \
                     the change was not made",
                );
                Err(CmdError::Server(
                    "ERR redis-enc internal error; see the server log".into(),
                ))
            });
            blocked.finish(move |ctx| {
                WAITING.store(false, Ordering::SeqCst);
                done.and_then(|t| apply(ctx, t))
                    .unwrap_or_else(|e| Outcome::Error(Box::new(e)))
            });
            scrub_stack();
        });
    if spawned.is_err() {
        WAITING.store(false, Ordering::SeqCst);
        return Err(CmdError::Server(
            "ERR cannot start a thread to wait for the key management service".into(),
        ));
    }
    match ctx.block() {
        Some(blocked) => {
            // The thread holds the receiver until it is handed the client.
            let _ = hand_over.send(blocked);
            Ok(())
        }
        None => Err(CmdError::Server(
            "ERR this client cannot wait for the key management service".into(),
        )),
    }
}
