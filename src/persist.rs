//! Where the key store lives (docs/FORMAT.md §2, docs/OPERATIONS.md).
//!
//! Like Redis Functions: the whole store, keys wrapped, is an auxiliary record of every RDB
//! (so a restart, a full resync, `DEBUG RELOAD` and a restored backup carry it), and every
//! change is propagated to replicas and the AOF as `ENC.KEYRING IMPORT <export>`, which merges
//! (states only move forward). An AOF rewrite writes a new base file: with the RDB preamble it
//! holds the auxiliary record; without it (`aof-use-rdb-preamble no`) it holds no module state
//! at all, so when a rewrite starts the whole store is propagated again, as the first entry of
//! the incremental file that the rewritten AOF is made of (FORMAT.md §2.4).

use std::ffi::c_int;

use redis_enc_core::keystore::Locking;

use crate::error::CmdError;
use crate::ffi::{self, AuxRecord, Ctx, Level, Rdb};
use crate::state;
use redis_module::raw::REDISMODULE_SUBEVENT_FORK_CHILD_BORN;

/// Encoding version of the auxiliary record.
const AUX_ENCVER: c_int = 1;

/// The keyring record of every RDB.
static RECORD: AuxRecord = AuxRecord {
    name: c"redis-enc",
    encver: AUX_ENCVER,
    save: aux_save,
    load: aux_load,
};

/// Registers the data type that carries the auxiliary record.
pub fn register(ctx: Ctx) -> Result<(), String> {
    if !ctx.register_aux(&RECORD) {
        return Err("cannot register the keyring record type".into());
    }
    Ok(())
}

fn aux_save(rdb: &Rdb) {
    let blob = state::with(|s| Ok(s.keys.export())).unwrap_or_default();
    rdb.save_bytes(&blob);
}

fn aux_load(rdb: &Rdb, encver: c_int) -> bool {
    if encver != AUX_ENCVER {
        ffi::log_without_context(
            Level::Warning,
            "redis-enc: the RDB holds a keyring record of an unknown version",
        );
        return false;
    }
    let blob = rdb.load_bytes();
    match replace_from(&blob) {
        Ok((locked, first)) => {
            if locked > 0 {
                ffi::log_without_context(
                    Level::Warning,
                    &format!(
                        "redis-enc: {locked} data key(s) in the RDB could not be unwrapped; values under them \
                         will not open until they are. The first: {}",
                        first.unwrap_or_default()
                    ),
                );
            }
            true
        }
        Err(e) => {
            ffi::log_without_context(
                Level::Warning,
                &format!(
                    "redis-enc: cannot load the keyring record: {}",
                    e.reply_text()
                ),
            );
            false
        }
    }
}

/// Replaces the key store with the one in `blob` (an RDB being loaded is the whole truth).
/// Returns how many keys stayed locked, and why the first did.
fn replace_from(blob: &[u8]) -> Result<(usize, Option<String>), CmdError> {
    let replaced = replace_store(blob);
    redis_enc_core::key::scrub_stack();
    replaced
}

fn replace_store(blob: &[u8]) -> Result<(usize, Option<String>), CmdError> {
    state::with_mut(|s| {
        let mut fresh = match s.master.local() {
            Some(key) => redis_enc_core::KeyStore::new(key, crate::clock::now_secs()),
            // No local key to derive from; the record brings the whole store.
            None => redis_enc_core::KeyStore::empty(),
        };
        let held = s.held();
        let report = fresh.import(blob, &held.masters(), &held.unwrappers(), Locking::Allow)?;
        // A record of no keyring (saved by a server whose KMS could not make `default` yet)
        // says nothing: the store this server made, if any, stays.
        if fresh.is_empty() {
            return Ok((0, None));
        }
        s.keys = fresh;
        state::mark_unpropagated(false);
        if report.unwrap_ms > 100 {
            ffi::log_without_context(
                Level::Notice,
                &format!(
                    "redis-enc: unwrapping the keyring record's data keys took {} ms",
                    report.unwrap_ms
                ),
            );
        }
        Ok((report.versions_locked, report.first_locked))
    })
}

/// Propagates the key store first if it holds keys nothing has persisted yet; every command
/// that seals calls this before it writes.
pub fn propagate_if_new(ctx: Ctx) -> Result<(), CmdError> {
    if state::take_unpropagated() {
        propagate(ctx)?;
    }
    Ok(())
}

/// Propagates the key store to replicas and the AOF after a change.
pub fn propagate(ctx: Ctx) -> Result<(), CmdError> {
    // A store of no keyring (a KMS that could not make `default` yet) says nothing; the
    // `default` made later is propagated before the first sealed write.
    let Some(blob) = state::with(|s| Ok((!s.keys.is_empty()).then(|| s.keys.export())))? else {
        return Ok(());
    };
    let sub = ctx.string(b"IMPORT");
    let blob = ctx.string(&blob);
    ctx.replicate(c"ENC.KEYRING", &[sub.arg(), blob.arg()]);
    // Replicas and the AOF hold the store now: a later import merges into it.
    state::mark_unpropagated(false);
    Ok(())
}

/// Server event: a child process was forked. When it is an AOF rewrite, the server has just
/// opened the incremental file that follows the new base file, so the store propagated now is
/// in the rewritten AOF whatever `aof-use-rdb-preamble` says.
pub fn on_fork(ctx: Ctx, subevent: u64) {
    if subevent != REDISMODULE_SUBEVENT_FORK_CHILD_BORN
        || !ctx.aof_enabled()
        || !aof_rewrite_in_progress(ctx)
    {
        return;
    }
    if propagate(ctx).is_err() {
        ctx.log(
            Level::Warning,
            "redis-enc: cannot write the keyrings into the rewritten AOF",
        );
    }
}

/// Whether the child just forked is an AOF rewrite (`INFO persistence`).
fn aof_rewrite_in_progress(ctx: Ctx) -> bool {
    let section = ctx.string(b"persistence");
    let reply = ctx.call(c"INFO", c"", &[section.arg()]);
    reply
        .bytes()
        .split(|b| *b == b'\n')
        .any(|line| line.trim_ascii_end() == b"aof_rewrite_in_progress:1")
}
