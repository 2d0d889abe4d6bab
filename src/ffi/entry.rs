//! Every entry point from Redis into the module goes through here, so that a panic never
//! crosses into the server (DESIGN.md invariant 7): it becomes an error reply and a log line.
//! [`entry_points!`] declares the two symbols Redis looks up, `RedisModule_OnLoad` and
//! `RedisModule_OnUnload`; the crate root names what they call.

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use redis_module::raw;

use crate::ffi::{self, Arg, Ctx, Level};

/// A command's error, as the entry point needs it: its reply, and a count of it.
pub trait Failure: Send {
    /// The error reply (`CODE message`); never inner text a client should not see.
    fn reply_text(&self) -> String;
    /// Counts it, for `INFO`.
    fn count(&self);
}

/// A command handler: validates everything before it writes or starts a reply, so that an
/// error leaves stored data untouched and the reply well-formed.
pub type Handler<E> = fn(Ctx, &[Arg]) -> Result<(), E>;

/// Panics caught at an entry point (each stopped what it was doing).
static INTERNAL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts an internal error caught elsewhere.
pub fn count_internal_error() {
    INTERNAL_ERRORS.fetch_add(1, Relaxed);
}

/// How many internal errors were caught.
pub fn internal_errors() -> u64 {
    INTERNAL_ERRORS.load(Relaxed)
}

/// The reply of a command stopped by an internal error.
pub const INTERNAL_ERROR_REPLY: &str = "ERR redis-enc internal error; see the server log";

/// Declares `RedisModule_OnLoad` and `RedisModule_OnUnload`: the first initialises the module
/// API as `enc` with `$version` and calls `$load` with the module's arguments (false refuses
/// the load); the second calls `$unload`.
#[macro_export]
macro_rules! entry_points {
    ($version:expr, $load:path, $unload:path) => {
        /// Called by Redis on `loadmodule` / `MODULE LOAD`.
        ///
        /// # Safety
        /// Called by Redis with a valid context and `argc` argument strings.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub unsafe extern "C" fn RedisModule_OnLoad(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::ffi::c_int,
        ) -> std::ffi::c_int {
            let version: std::ffi::c_int = $version;
            let on_load: fn($crate::ffi::Ctx, &[&[u8]]) -> bool = $load;
            // SAFETY: Redis calls OnLoad with a valid context and its arguments.
            unsafe { $crate::ffi::entry::load(ctx, argv, argc, version, on_load) }
        }

        /// Called by Redis on `MODULE UNLOAD`.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn RedisModule_OnUnload(
            _ctx: *mut redis_module::raw::RedisModuleCtx,
        ) -> std::ffi::c_int {
            $crate::ffi::entry::run_callback("module unload", $crate::ffi::ERR, $unload)
        }
    };
}

/// What `RedisModule_OnLoad` does.
///
/// # Safety
/// `ctx` must be the load context Redis passed, with `argc` live argument strings in `argv`.
pub unsafe fn load(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    version: c_int,
    on_load: fn(Ctx, &[&[u8]]) -> bool,
) -> c_int {
    let refused = super::ERR;
    run_callback("module load", refused, || {
        // SAFETY: `ctx` is the load context Redis passed; the name is a C string; this fills in
        // the module API function pointers and runs before any other API call.
        let init = unsafe {
            raw::Export_RedisModule_Init(
                ctx,
                c"enc".as_ptr(),
                version,
                raw::REDISMODULE_APIVER_1 as c_int,
            )
        };
        if init == refused {
            return refused;
        }
        // SAFETY: the caller passes Redis's `argc` live argument strings.
        let args: Vec<&[u8]> = unsafe { ffi::args(argv, argc) }
            .iter()
            .map(Arg::bytes)
            .collect();
        if on_load(Ctx::new(ctx), &args) {
            super::OK
        } else {
            refused
        }
    })
}

/// Runs a command handler under `catch_unwind` and turns its error into the reply.
pub fn run_command<E: Failure>(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    name: &'static str,
    handler: Handler<E>,
) -> c_int {
    let ctx = Ctx::new(ctx);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Redis passes `argc` live argument strings for the duration of the call.
        let args = unsafe { ffi::args(argv, argc) };
        handler(ctx, args)
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            e.count();
            ctx.reply_error(&e.reply_text());
        }
        Err(_) => {
            count_internal_error();
            ctx.log(
                Level::Warning,
                &format!("redis-enc: internal error in {name}; the command was stopped"),
            );
            ctx.reply_error(INTERNAL_ERROR_REPLY);
        }
    }
    super::OK
}

/// Runs any other callback under `catch_unwind`; `fallback` is returned if it panics.
pub fn run_callback<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        count_internal_error();
        ffi::log_without_context(
            Level::Warning,
            &format!("redis-enc: internal error in {what}"),
        );
        fallback
    })
}

/// Declares the `extern "C"` function Redis calls for one command.
#[macro_export]
macro_rules! command_entry {
    ($name:literal, $handler:path) => {{
        extern "C" fn entry(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::ffi::c_int,
        ) -> std::ffi::c_int {
            $crate::ffi::entry::run_command(ctx, argv, argc, $name, $handler)
        }
        let entry: redis_module::raw::RedisModuleCmdFunc = Some(entry);
        entry
    }};
}
