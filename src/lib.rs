//! redis-enc: a Redis module that seals values inside Redis.
//!
//! This crate is the server adapter. It parses command arguments, calls the core
//! (`redis-enc-core`: envelope, keys, providers) and writes through the Redis module API.
//!
//! - [`load`]: `RedisModule_OnLoad`: master key, commands, configs, INFO.
//! - [`commands`]: the `ENC.*` commands, their key specs and documentation.
//! - [`setopts`]: `ENC.SET` options.
//! - [`config`], [`pattern`], [`info`], [`state`]: configs and their key-name patterns, the
//!   `INFO enc` section, the loaded keyring.
//! - [`reencrypt`]: the background re-encryption job.
//! - [`phi`], [`audit`]: the PHI policy and the audit log.
//! - [`persist`]: the key store in the RDB and the replication stream.
//! - [`entry`]: every entry point runs under `catch_unwind`.
//! - [`error`]: the one mapping from errors to replies.
//! - [`rm`], [`command_info`]: the typed layer over the raw module API.

mod acl_log;
mod audit;
mod command_info;
mod commands;
mod config;
mod entry;
mod error;
mod guard;
mod info;
mod kms_retry;
mod load;
mod pattern;
mod persist;
mod phi;
mod reencrypt;
mod rm;
mod setopts;
mod state;

use std::ffi::c_int;

use redis_module::raw;

/// Called by Redis on `loadmodule` / `MODULE LOAD`.
///
/// # Safety
/// Called by Redis with a valid context and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    entry::run_callback("module load", raw::REDISMODULE_ERR as c_int, || {
        load::on_load(ctx, argv, argc)
    })
}

/// Called by Redis on `MODULE UNLOAD`.
#[no_mangle]
pub extern "C" fn RedisModule_OnUnload(_ctx: *mut raw::RedisModuleCtx) -> c_int {
    entry::run_callback(
        "module unload",
        raw::REDISMODULE_ERR as c_int,
        load::on_unload,
    )
}
