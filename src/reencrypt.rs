//! `ENC.REENCRYPT START|STATUS|STOP`: a background job that re-seals strings and hash fields
//! under the primary version of their keyring, or (`ENCRYPT-PLAINTEXT`) seals plain values in
//! place. It runs in small SCAN steps from a timer, on the main thread between commands, so
//! every step is atomic for clients and no step holds the server much more than a millisecond.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::{Envelope, Flags, KeyringId, KeyringName, Location};
use wildmatch::WildMatch;

use crate::audit::{self, Access};
use crate::blind::{self, IndexEntry};
use crate::error::CmdError;
use crate::ffi::{Ctx, KeyType, ScanCursor, Timer};
use crate::setopts::Expiry;
use crate::settings;
use crate::state;
use crate::store::{self, Content};

mod values;
use values::process_key;

/// How long one step may run.
const STEP_BUDGET: Duration = Duration::from_micros(600);
/// Pause between steps, in milliseconds.
const STEP_PERIOD_MS: i64 = 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Re-seal values not under their keyring's primary version.
    Reseal,
    /// Seal plain values whose key matches the pattern.
    EncryptPlaintext,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    Running,
    Done,
    Stopped,
}

/// Progress of the current or last job.
#[derive(Clone, Debug)]
pub struct Progress {
    pub mode: Mode,
    pub phase: Phase,
    pub keys_scanned: u64,
    pub values_resealed: u64,
    pub values_failed: u64,
    pub elapsed_ms: u64,
    /// Databases scanned to the end.
    pub databases_done: u64,
}

struct Job {
    mode: Mode,
    keyring: Option<(KeyringId, KeyringName)>,
    pattern: Option<WildMatch>,
    /// Keys per second, or unlimited.
    rate: Option<u64>,
    cursor: Option<ScanCursor>,
    timer: Option<u64>,
    started: Instant,
    finished: Option<Instant>,
    allowance: f64,
    last_step: Instant,
    progress: Progress,
    /// The primary version of each keyring in scope when the job started.
    primaries_at_start: Vec<(KeyringId, redis_enc_core::KeyVersion)>,
    /// The database being scanned; the job scans every database, 0 first.
    db: i32,
}

static JOB: Mutex<Option<Job>> = Mutex::new(None);

fn job() -> std::sync::MutexGuard<'static, Option<Job>> {
    JOB.lock().unwrap_or_else(|p| p.into_inner())
}

/// The current or last job's progress, for `STATUS` and `INFO enc`.
pub fn progress() -> Option<Progress> {
    job().as_ref().map(|j| {
        let mut p = j.progress.clone();
        let elapsed = j.finished.unwrap_or_else(Instant::now) - j.started;
        p.elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        p
    })
}

/// What `ENC.REENCRYPT START` asks for.
pub struct Request {
    pub mode: Mode,
    /// Only this keyring's values (reseal), or the keyring to seal under (encrypt-plaintext).
    pub keyring: Option<KeyringName>,
    /// Only keys matching this glob.
    pub pattern: Option<WildMatch>,
    /// Keys per second, or unlimited.
    pub rate: Option<u64>,
}

/// Starts a job over every database (audited), unless one is running.
pub fn begin(ctx: Ctx, request: Request) -> Result<(), CmdError> {
    let Request {
        mode,
        keyring,
        pattern,
        rate,
    } = request;
    if mode == Mode::EncryptPlaintext && pattern.is_none() {
        return Err(CmdError::Server(
            "ERR ENCRYPT-PLAINTEXT needs MATCH pattern (it seals every value it matches)".into(),
        ));
    }
    let keyring = match keyring {
        Some(name) => {
            let id = state::with(|s| {
                s.keys
                    .id_of(&name)
                    .ok_or(CmdError::Core(redis_enc_core::Error::UnknownKeyring))
            })?;
            Some((id, name))
        }
        None => None,
    };
    let primaries_at_start = state::with(|s| {
        Ok(s.keys
            .list()
            .into_iter()
            .filter(|k| keyring.as_ref().is_none_or(|(id, _)| *id == k.id))
            .map(|k| (k.id, k.primary))
            .collect::<Vec<_>>())
    })?;
    let scope_name = keyring.as_ref().map(|(_, name)| name.as_str().to_owned());
    let mut guard = job();
    if guard
        .as_ref()
        .is_some_and(|j| j.progress.phase == Phase::Running)
    {
        return Err(CmdError::Server(
            "ERR a re-encryption job is already running (ENC.REENCRYPT STATUS, STOP)".into(),
        ));
    }
    let now = Instant::now();
    *guard = Some(Job {
        mode,
        keyring,
        pattern,
        rate,
        cursor: Some(ScanCursor::new()),
        timer: Some(ctx.start_timer(STEP_PERIOD_MS, &STEP)),
        started: now,
        finished: None,
        allowance: 0.0,
        last_step: now,
        progress: Progress {
            mode,
            phase: Phase::Running,
            keys_scanned: 0,
            values_resealed: 0,
            values_failed: 0,
            elapsed_ms: 0,
            databases_done: 0,
        },
        primaries_at_start,
        db: 0,
    });
    drop(guard);
    // The job opens every sealed value in scope, PHI included.
    audit::record(
        ctx,
        Access {
            event: "reencrypt",
            command: "ENC.REENCRYPT START",
            key: None,
            keyring: scope_name,
            version: None,
            outcome: "ok",
            detail: Some(format!(
                "{}, every database",
                if mode == Mode::Reseal {
                    "reseal"
                } else {
                    "encrypt-plaintext"
                }
            )),
        },
    );
    Ok(())
}

pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Running => "running",
        Phase::Done => "done",
        Phase::Stopped => "stopped",
    }
}

/// Stops the running job.
pub fn end(ctx: Ctx) -> Result<(), CmdError> {
    let mut guard = job();
    match guard.as_mut() {
        Some(j) if j.progress.phase == Phase::Running => {
            if let Some(t) = j.timer.take() {
                ctx.stop_timer(t);
            }
            j.cursor = None;
            j.progress.phase = Phase::Stopped;
            j.finished = Some(Instant::now());
            Ok(())
        }
        _ => Err(CmdError::Server(
            "ERR no re-encryption job is running".into(),
        )),
    }
}

/// The job's timer: one step each time it fires.
static STEP: Timer = Timer {
    name: "re-encryption step",
    run: step,
};

/// One step: scan until the time budget (or the rate allowance) is spent, then re-arm.
fn step(ctx: Ctx) {
    // Only fails when the module has no state, and then there is nothing to seal with.
    let _ = crate::persist::propagate_if_new(ctx);
    let mut guard = job();
    let Some(j) = guard.as_mut() else { return };
    j.timer = None;
    if j.progress.phase != Phase::Running {
        return;
    }
    let began = Instant::now();
    if let Some(rate) = j.rate {
        j.allowance = (j.allowance + began.duration_since(j.last_step).as_secs_f64() * rate as f64)
            .min(rate as f64);
    }
    j.last_step = began;
    if !ctx.select_db(j.db) {
        finish(j);
        return;
    }
    while began.elapsed() < STEP_BUDGET && (j.rate.is_none() || j.allowance >= 1.0) {
        let mut names = Vec::new();
        let Some(cursor) = j.cursor.as_ref() else {
            break;
        };
        let more = ctx.scan_step(cursor, &mut names);
        for name in names {
            j.progress.keys_scanned += 1;
            j.allowance -= 1.0;
            if j.pattern
                .as_ref()
                .is_some_and(|p| !p.matches(&String::from_utf8_lossy(&name)))
            {
                continue;
            }
            let scope = j.keyring.as_ref();
            let (done, failed) =
                process_key(ctx, j.mode, scope.map(|k| k.0), scope.map(|k| &k.1), &name);
            j.progress.values_resealed += done;
            j.progress.values_failed += failed;
        }
        if !more {
            // This database is done; the next one, if the server has it.
            j.progress.databases_done += 1;
            j.db += 1;
            if !ctx.select_db(j.db) {
                finish(j);
                return;
            }
            j.cursor = Some(ScanCursor::new());
        }
    }
    j.timer = Some(ctx.start_timer(STEP_PERIOD_MS, &STEP));
}

/// Ends a job that scanned every database: versions no value is left under are marked so.
fn finish(j: &mut Job) {
    j.cursor = None;
    j.progress.phase = Phase::Done;
    j.finished = Some(Instant::now());
    let whole_keyspace =
        j.pattern.is_none() && j.progress.values_failed == 0 && j.mode == Mode::Reseal;
    if whole_keyspace {
        let primaries = j.primaries_at_start.clone();
        let _ = state::with_mut(|s| {
            for (id, primary) in primaries {
                s.keys.mark_scanned(id, primary);
            }
            Ok(())
        });
    }
    audit::record_server(
        "reencrypt-done",
        Some(format!(
            "{} databases, {} keys scanned, {} values resealed, {} failed",
            j.progress.databases_done,
            j.progress.keys_scanned,
            j.progress.values_resealed,
            j.progress.values_failed
        )),
    );
}
