//! Scheduled rotation: `enc.keyring-rotate-after` (seconds) and
//! `enc.keyring-rotate-after-values` (values sealed) rotate a keyring whose primary version
//! reached either. Checked once a second on a primary (in a cluster, on the keyring authority
//! only, counting the values every primary sealed), one keyring at a time; each rotation is
//! made, propagated and audited as `ENC.KEYRING ROTATE` is, by the user `(schedule)`.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis_enc_core::key::scrub_stack;
use redis_enc_core::keystore::{changes, changes::MadeKey, PrimaryInUse, Sealing};
use redis_enc_core::KeyringName;

use crate::audit::{self, Access};
use crate::ffi::{Caller, Ctx, Level, Timer};
use crate::{cluster, persist, settings, state};

static TICK: Timer = Timer {
    name: "scheduled rotation",
    run: tick,
};

/// A rotation whose key a KMS is making on a thread of its own, with why it is made.
struct Making {
    result: std::sync::mpsc::Receiver<Result<MadeKey, String>>,
    reason: String,
}

static MAKING: Mutex<Option<Making>> = Mutex::new(None);
/// After a failure, the next try waits until then.
static NEXT_TRY: Mutex<Option<Instant>> = Mutex::new(None);

const RETRY_AFTER: Duration = Duration::from_secs(60);

pub fn start(ctx: Ctx) {
    ctx.start_timer(1000, &TICK);
}

fn tick(ctx: Ctx) {
    ctx.start_timer(1000, &TICK);
    let (after_secs, after_values) = settings::rotation_schedule();
    if after_secs == 0 && after_values == 0 {
        return;
    }
    if ctx.is_replica() || !cluster::may_act(ctx) {
        return;
    }
    if let Some(made) = finished_making() {
        match made {
            Ok((made, reason)) => apply(ctx, made, &reason),
            Err(why) => failed(ctx, &why),
        }
        return;
    }
    if NEXT_TRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some_and(|at| Instant::now() < at)
    {
        return;
    }
    let Ok(used) = state::with(|s| Ok(s.keys.primaries_in_use())) else {
        return;
    };
    let now = crate::clock::now_secs();
    if let Some((keyring, reason)) = used
        .iter()
        .find_map(|p| due(p, now, after_secs, after_values).map(|r| (p.keyring.clone(), r)))
    {
        rotate(ctx, keyring, reason);
    }
}

/// Why keyring `p` is due for rotation, if it is.
fn due(p: &PrimaryInUse, now: u64, after_secs: u64, after_values: u64) -> Option<String> {
    let age = now.saturating_sub(p.created);
    if after_secs > 0 && age >= after_secs {
        return Some(format!(
            "version {} is {age} s old (enc.keyring-rotate-after {after_secs})",
            p.id.version.0
        ));
    }
    let sealed = p.sealed + cluster::sealed_elsewhere(p.id);
    (after_values > 0 && sealed >= after_values).then(|| {
        format!(
            "version {} sealed {sealed} values (enc.keyring-rotate-after-values {after_values})",
            p.id.version.0
        )
    })
}

/// Makes the next version of `keyring`: now with a local master key, on a thread with a KMS
/// (the result is applied at a later tick).
fn rotate(ctx: Ctx, keyring: KeyringName, reason: String) {
    let made = state::with(|s| Ok((s.held(), s.keys.next_version(&keyring)?)));
    let (held, id) = match made {
        Ok(made) => made,
        Err(e) => return failed(ctx, &e.reply_text()),
    };
    if !held.remote() {
        let made = changes::make_key(held.master.wrapper(), &keyring, id);
        scrub_stack();
        match made {
            Ok(made) => apply(ctx, made, &reason),
            Err(e) => failed(ctx, &e.to_string()),
        }
        return;
    }
    let (send, result) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("enc-rotate".into())
        .spawn(move || {
            let made = changes::make_key(held.master.wrapper(), &keyring, id);
            let _ = send.send(made.map_err(|e| e.to_string()));
            scrub_stack();
        });
    match spawned {
        Ok(_) => {
            *MAKING.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Making { result, reason });
        }
        Err(e) => failed(ctx, &format!("cannot start a thread: {e}")),
    }
}

/// The key a thread finished making, with the reason, once it is done.
fn finished_making() -> Option<Result<(MadeKey, String), String>> {
    let mut making = MAKING.lock().unwrap_or_else(PoisonError::into_inner);
    let result = match making.as_ref()?.result.try_recv() {
        Ok(result) => result,
        Err(std::sync::mpsc::TryRecvError::Empty) => return None,
        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
            Err("the thread making the key stopped".into())
        }
    };
    let reason = making.take().map(|m| m.reason).unwrap_or_default();
    Some(result.map(|made| (made, reason)))
}

fn apply(ctx: Ctx, made: MadeKey, reason: &str) {
    let sealing = if ctx.in_cluster() {
        Sealing::WhenHeld
    } else {
        Sealing::Now
    };
    let keyring = made.keyring().clone();
    let now = crate::clock::now_secs();
    let version = match state::with_mut(|s| Ok(s.keys.add_made(made, now, sealing)?)) {
        Ok(v) => v,
        Err(e) => return failed(ctx, &e.reply_text()),
    };
    if persist::propagate(ctx).is_err() {
        ctx.log(
            Level::Warning,
            "redis-enc: cannot propagate a scheduled rotation",
        );
    }
    cluster::announce(ctx);
    ctx.log(
        Level::Notice,
        &format!(
            "redis-enc: keyring '{}' rotated to version {}: {reason}",
            keyring.as_str(),
            version.0
        ),
    );
    audit::record_as(
        Caller {
            user: "(schedule)".into(),
            client_id: 0,
            addr: String::new(),
        },
        Access {
            event: "keyring",
            command: "ENC.KEYRING ROTATE",
            key: None,
            keyring: Some(keyring.as_str().to_owned()),
            version: Some(version.0),
            outcome: "ok",
            detail: Some(format!("scheduled: {reason}")),
        },
    );
}

fn failed(ctx: Ctx, why: &str) {
    *NEXT_TRY.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + RETRY_AFTER);
    ctx.log(
        Level::Warning,
        &format!("redis-enc: a scheduled rotation failed ({why}); trying again in a minute"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_enc_core::{KeyId, KeyVersion, KeyringId};

    fn primary(created: u64, sealed: u64) -> PrimaryInUse {
        PrimaryInUse {
            keyring: KeyringName::default_name(),
            id: KeyId {
                keyring: KeyringId(0),
                version: KeyVersion(3),
            },
            created,
            sealed,
        }
    }

    #[test]
    fn a_primary_is_due_by_age_or_by_values_sealed() {
        let day = 86_400;
        let p = primary(1_000_000, 10);
        assert_eq!(due(&p, 1_000_000 + 90 * day - 1, 90 * day, 0), None);
        assert_eq!(
            due(&p, 1_000_000 + 90 * day, 90 * day, 0).as_deref(),
            Some("version 3 is 7776000 s old (enc.keyring-rotate-after 7776000)")
        );
        assert_eq!(due(&p, 1_000_000, 0, 11), None);
        assert_eq!(
            due(&p, 1_000_000, 0, 10).as_deref(),
            Some("version 3 sealed 10 values (enc.keyring-rotate-after-values 10)")
        );
        assert_eq!(due(&p, u64::MAX, 0, 0), None, "both off");
        assert_eq!(due(&primary(2_000, 0), 1_000, 1, 0), None, "a clock behind");
    }
}
