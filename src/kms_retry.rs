//! Keys a key management service could not give (it was down, slow or refusing when they were
//! loaded) are asked for again every few seconds on a thread of the module's own, until they
//! are held: values under them open as soon as the KMS answers again, without a restart. The
//! same holds for `default`'s first key on a fresh server whose KMS could not make it at start.
//! Nothing here changes what the store exports (the wrapped keys are the same), so there is
//! nothing to propagate; a made `default` key is propagated before the first sealed write.

use std::time::Duration;

use redis_enc_core::key::scrub_stack;
use redis_enc_core::keystore::{forget_outage, prefetch, UnwrapJobs};
use redis_enc_core::KeyStore;

use crate::audit;
use crate::ffi::{self, Level};
use crate::state::{self, Held};

/// How long the thread waits between tries.
const PERIOD: Duration = Duration::from_secs(5);

/// Starts the thread (at load), where a master key is held by a KMS: only a KMS leaves keys
/// locked for a reason that may pass.
pub fn start() {
    let spawned = std::thread::Builder::new()
        .name("enc-kms-retry".into())
        .spawn(|| loop {
            std::thread::sleep(PERIOD);
            let worked = std::panic::catch_unwind(try_again);
            if worked.is_err() {
                crate::stats::count_internal_error();
                ffi::log_without_context(
                    Level::Warning,
                    "redis-enc: internal error while asking the key management service for locked keys",
                );
            }
            if worked.unwrap_or(true) {
                scrub_stack();
            }
        });
    if spawned.is_err() {
        ffi::log_without_context(
            Level::Warning,
            "redis-enc: cannot start the thread that retries locked keys; they stay locked until \
             the next restart or RDB load",
        );
    }
}

/// Asks the KMS again for what it could not give; whether it asked for anything.
fn try_again() -> bool {
    let Ok((held, jobs, make_default)) = state::with(|s| {
        Ok((
            s.held(),
            s.keys.retry_jobs(),
            s.keys.is_empty() && state::no_default().is_some(),
        ))
    }) else {
        return false;
    };
    if make_default {
        match KeyStore::new_wrapped(held.master.wrapper(), crate::clock::now_secs()) {
            Ok(fresh) => {
                let installed = state::with_mut(|s| {
                    let empty = s.keys.is_empty();
                    if empty {
                        s.keys = fresh;
                        state::mark_unpropagated(true);
                    }
                    Ok(empty)
                });
                state::set_no_default(None);
                if installed.unwrap_or(false) {
                    ffi::log_without_context(
                        Level::Notice,
                        "redis-enc: the key management service answered: keyring 'default' has its first key",
                    );
                }
            }
            Err(e) => state::set_no_default(Some(e.to_string())),
        }
    }
    if jobs.is_empty() {
        return make_default;
    }
    // One key first: a KMS that is still down gets one request every few seconds, not one
    // per locked key.
    let (probe, others) = jobs.split_first();
    forget_outage();
    let (probed, _) = unlock(&probe, &held);
    if probed == 0 {
        return true;
    }
    let (rest, still) = unlock(&others, &held);
    let unlocked = probed + rest;
    ffi::log_without_context(
        Level::Notice,
        &format!(
            "redis-enc: {unlocked} locked data key(s) unwrapped now that the key management service answers; \
             {still} still locked"
        ),
    );
    audit::record_server(
        "keys-unlocked",
        Some(format!("{unlocked} unlocked, {still} still locked")),
    );
    true
}

/// Unwraps `jobs` and holds what was unwrapped: how many were unlocked, how many stay locked.
fn unlock(jobs: &UnwrapJobs, held: &Held) -> (usize, usize) {
    let prefetched = prefetch(jobs, &held.masters(), &held.unwrappers());
    state::with_mut(|s| Ok(s.keys.take_unlocked(prefetched))).unwrap_or((0, 0))
}
