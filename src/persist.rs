//! Where the key store lives (docs/FORMAT.md §2, docs/OPERATIONS.md).
//!
//! Like Redis Functions: the whole store, keys wrapped, is an auxiliary record of every RDB
//! (so a restart, a full resync and a restored backup carry it), and every change is
//! propagated to replicas and the AOF as `ENC.KEYRING IMPORT <export>`, which merges (states
//! only move forward). An AOF with the RDB preamble therefore holds it too.

use std::ffi::c_int;

use redis_module::raw;

use crate::entry::run_callback;
use crate::error::CmdError;
use crate::rm::{self, Ctx, Level};
use crate::state;

/// Encoding version of the auxiliary record.
const AUX_ENCVER: c_int = 1;

/// Registers the data type that carries the auxiliary record.
pub fn register(ctx: Ctx) -> Result<(), String> {
    if !rm::create_aux_data_type(
        ctx,
        c"redis-enc",
        AUX_ENCVER,
        Some(aux_load),
        Some(aux_save),
    ) {
        return Err("cannot register the keyring record type".into());
    }
    Ok(())
}

extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    run_callback("RDB save", (), || {
        if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
            return;
        }
        let blob = state::with(|s| Ok(s.keys.export())).unwrap_or_default();
        rm::save_bytes(rdb, &blob);
    })
}

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, encver: c_int, when: c_int) -> c_int {
    run_callback("RDB load", raw::REDISMODULE_ERR as c_int, || {
        if encver != AUX_ENCVER || when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
            rm::log_without_context(
                Level::Warning,
                "redis-enc: the RDB holds a keyring record of an unknown version",
            );
            return raw::REDISMODULE_ERR as c_int;
        }
        let blob = rm::load_bytes(rdb);
        match replace_from(&blob) {
            Ok(locked) => {
                if locked > 0 {
                    rm::log_without_context(
                        Level::Warning,
                        &format!(
                            "redis-enc: {locked} data key(s) in the RDB could not be unwrapped with the loaded master key; \
                             values under them will not open until the right master key is loaded"
                        ),
                    );
                }
                raw::REDISMODULE_OK as c_int
            }
            Err(e) => {
                rm::log_without_context(
                    Level::Warning,
                    &format!(
                        "redis-enc: cannot load the keyring record: {}",
                        e.reply_text()
                    ),
                );
                raw::REDISMODULE_ERR as c_int
            }
        }
    })
}

/// Replaces the key store with the one in `blob` (an RDB being loaded is the whole truth).
/// Returns how many keys stayed locked.
fn replace_from(blob: &[u8]) -> Result<usize, CmdError> {
    state::with_mut(|s| {
        let mut fresh = match s.master.local() {
            Some(key) => redis_enc_core::KeyStore::new(key, state::now_secs()),
            // No local key to derive from; the record brings the whole store.
            None => redis_enc_core::KeyStore::empty(),
        };
        let report = fresh.import(blob, &s.masters(), &s.unwrappers())?;
        s.keys = fresh;
        state::mark_unpropagated(false);
        Ok(report.versions_locked)
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
    let blob = state::with(|s| Ok(s.keys.export()))?;
    let sub = ctx.string(b"IMPORT");
    let blob = ctx.string(&blob);
    ctx.replicate(c"ENC.KEYRING", &[sub.as_ptr(), blob.as_ptr()]);
    Ok(())
}
