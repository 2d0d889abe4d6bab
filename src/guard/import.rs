//! Valkey's atomic slot migration (`CLUSTER MIGRATESLOTS`): the target receives the moving
//! slots from a client of the source node, which writes a hash (`HSET`) before the
//! `PEXPIREAT` that gives it its TTL. The guard leaves that client's TTLs as they come (no
//! TTL refusal, no default TTL added) while the import runs; everything it writes under a PHI
//! key must still be an envelope that authenticates there, as anyone's.
//!
//! The client is known by the command that opens the import (`CLUSTER SYNCSLOTS ESTABLISH`,
//! seen by the filter) followed, within that same command, by the server's `IMPORT_STARTED`
//! event. A user allowed `CLUSTER SYNCSLOTS` can open an import and so write PHI keys without
//! a TTL; not plaintext.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::ffi::{Ctx, FilterCtx, Level};

/// valkeymodule.h `VALKEYMODULE_SUBEVENT_ATOMIC_SLOT_MIGRATION_*`.
const IMPORT_STARTED: u64 = 0;
const IMPORT_ABORTED: u64 = 2;
const IMPORT_COMPLETED: u64 = 4;

/// The client whose `CLUSTER SYNCSLOTS ESTABLISH` the filter saw last (0: none).
static ESTABLISHING: AtomicU64 = AtomicU64::new(0);
/// Imports running on this node; the filter looks no further while it is 0.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// The clients of the imports running.
static IMPORTERS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Notes the client that asks to open an import.
pub fn note(f: &FilterCtx, name: &[u8]) {
    if name.eq_ignore_ascii_case(b"CLUSTER")
        && f.argc() >= 3
        && f.arg(1).eq_ignore_ascii_case(b"SYNCSLOTS")
        && f.arg(2).eq_ignore_ascii_case(b"ESTABLISH")
    {
        ESTABLISHING.store(f.client_id().unwrap_or(0), Ordering::SeqCst);
    }
}

/// Whether the command comes from a running import's client (its TTLs are left as they come).
pub fn from_importer(f: &FilterCtx) -> bool {
    if RUNNING.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let Some(id) = f.client_id() else {
        return false;
    };
    IMPORTERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&id)
}

/// Server event: an import started, completed or was aborted on this node (exports need
/// nothing: the source's guard already let the values in).
pub fn on_slot_migration(ctx: Ctx, subevent: u64) {
    let mut importers = IMPORTERS.lock().unwrap_or_else(|p| p.into_inner());
    match subevent {
        IMPORT_STARTED => {
            let id = ESTABLISHING.swap(0, Ordering::SeqCst);
            if id != 0 {
                importers.push(id);
            }
            RUNNING.fetch_add(1, Ordering::SeqCst);
            ctx.log(
                Level::Notice,
                "redis-enc: a slot import started; the guard trusts its client as it trusts \
                 replication",
            );
        }
        IMPORT_ABORTED | IMPORT_COMPLETED => {
            let left = RUNNING
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    Some(n.saturating_sub(1))
                })
                .map_or(0, |n| n.saturating_sub(1));
            if left == 0 {
                importers.clear();
            }
        }
        _ => {}
    }
}
