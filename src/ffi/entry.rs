//! Every entry point from Redis into the module goes through here, so that a panic never
//! crosses into the server (DESIGN.md invariant 7): it becomes an error reply and a log line.
//! The two symbols Redis looks up, `RedisModule_OnLoad` and `RedisModule_OnUnload`, are here.

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::raw;

use crate::error::CmdError;
use crate::ffi::{self, Arg, Ctx, Level};
use crate::info;

/// A command handler: validates everything before it writes or starts a reply, so that an
/// error leaves stored data untouched and the reply well-formed.
pub type Handler = fn(Ctx, &[Arg]) -> Result<(), CmdError>;

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
    let refused = super::ERR;
    run_callback("module load", refused, || {
        // SAFETY: `ctx` is the load context Redis passed; the name is a C string; this fills in
        // the module API function pointers and runs before any other API call.
        let init = unsafe {
            raw::Export_RedisModule_Init(
                ctx,
                c"enc".as_ptr(),
                crate::load::MODULE_VERSION,
                raw::REDISMODULE_APIVER_1 as c_int,
            )
        };
        if init == refused {
            return refused;
        }
        // SAFETY: Redis passes `argc` live argument strings to OnLoad.
        let args: Vec<&[u8]> = unsafe { ffi::args(argv, argc) }
            .iter()
            .map(Arg::bytes)
            .collect();
        if crate::load::on_load(Ctx::new(ctx), &args) {
            super::OK
        } else {
            refused
        }
    })
}

/// Called by Redis on `MODULE UNLOAD`.
#[no_mangle]
pub extern "C" fn RedisModule_OnUnload(_ctx: *mut raw::RedisModuleCtx) -> c_int {
    run_callback("module unload", super::ERR, crate::load::on_unload)
}

/// Runs a command handler under `catch_unwind` and turns its error into the reply.
pub fn run_command(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    name: &'static str,
    handler: Handler,
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
            info::count_error(&e);
            ctx.reply_error(&e.reply_text());
        }
        Err(_) => {
            info::count_internal_error();
            ctx.log(
                Level::Warning,
                &format!("redis-enc: internal error in {name}; the command was stopped"),
            );
            ctx.reply_error("ERR redis-enc internal error; see the server log");
        }
    }
    super::OK
}

/// Runs any other callback under `catch_unwind`; `fallback` is returned if it panics.
pub fn run_callback<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        info::count_internal_error();
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

/// Checks the argument count of a command.
pub fn arity(args: &[Arg], min: usize, name: &'static str) -> Result<(), CmdError> {
    if args.len() < min {
        return Err(CmdError::WrongArity(name));
    }
    Ok(())
}
