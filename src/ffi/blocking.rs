//! Blocking the calling client while work that waits (a KMS request) runs on a thread of its
//! own, so that the server goes on serving every other client; the result is applied on the
//! main thread's lock and the client gets its reply.

use std::ffi::{c_int, c_void};

use redis_module::raw;

use super::entry::{count_internal_error, Failure, INTERNAL_ERROR_REPLY};
use super::Ctx;

/// The reply a blocked client gets.
pub enum Outcome {
    Ok,
    Int(i64),
    /// A map (RESP3) or flat array (RESP2) of integer fields.
    Fields(Vec<(&'static [u8], i64)>),
    /// An error reply (counted as the command's error).
    Error(Box<dyn Failure>),
}

/// A panic while applying an outcome (already counted and logged).
struct InternalError;

impl Failure for InternalError {
    fn reply_text(&self) -> String {
        INTERNAL_ERROR_REPLY.to_owned()
    }

    fn count(&self) {}
}

/// A client blocked until [`Blocked::finish`] runs.
pub struct Blocked(*mut raw::RedisModuleBlockedClient);

// SAFETY: a blocked-client handle is meant to be used from another thread: the module API's
// thread-safe context functions take it there, and it is used once (by `finish`).
unsafe impl Send for Blocked {}

impl<'a> Ctx<'a> {
    /// Whether the calling client may be blocked: not in a transaction or a script, and not
    /// the server itself (replication, AOF loading).
    pub fn may_block(self) -> bool {
        let deny = (raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
            | raw::REDISMODULE_CTX_FLAGS_MULTI
            | raw::REDISMODULE_CTX_FLAGS_LUA) as c_int;
        self.flags() & deny == 0 && !self.is_server_itself()
    }

    /// Blocks the calling client; `None` where it may not be blocked ([`Ctx::may_block`]).
    pub fn block(self) -> Option<Blocked> {
        if !self.may_block() {
            return None;
        }
        // SAFETY: valid command context; the callbacks are 'static; no timeout.
        let bc = unsafe { api!(RedisModule_BlockClient)(self.0, Some(reply), None, Some(free), 0) };
        (!bc.is_null()).then_some(Blocked(bc))
    }
}

impl Outcome {
    /// Sends this reply to the client of `ctx`.
    pub fn reply(&self, ctx: Ctx) {
        match self {
            Outcome::Ok => ctx.reply_ok(),
            Outcome::Int(n) => ctx.reply_int(*n),
            Outcome::Fields(fields) => {
                ctx.reply_map(fields.len());
                for (name, n) in fields {
                    ctx.reply_field_int(name, *n);
                }
            }
            Outcome::Error(e) => {
                e.count();
                ctx.reply_error(&e.reply_text());
            }
        }
    }
}

impl Blocked {
    /// Runs `apply` on the main thread's lock, with a context that can write and replicate,
    /// then unblocks the client with what it returned. Called from the worker thread.
    pub fn finish(self, apply: impl FnOnce(Ctx) -> Outcome) {
        // SAFETY: the handle is live until UnblockClient below; the thread-safe context is
        // locked while used and freed after; the outcome box is handed to the server, which
        // gives it to `reply` and then to `free`.
        unsafe {
            let ctx = api!(RedisModule_GetThreadSafeContext)(self.0);
            api!(RedisModule_ThreadSafeContextLock)(ctx);
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(Ctx::new(ctx))))
                    .unwrap_or_else(|_| {
                        count_internal_error();
                        super::log_without_context(
                            super::Level::Warning,
                            "redis-enc: internal error applying a keyring change; it was stopped",
                        );
                        Outcome::Error(Box::new(InternalError))
                    });
            api!(RedisModule_ThreadSafeContextUnlock)(ctx);
            api!(RedisModule_FreeThreadSafeContext)(ctx);
            let boxed = Box::into_raw(Box::new(outcome)).cast::<c_void>();
            api!(RedisModule_UnblockClient)(self.0, boxed);
        }
    }
}

extern "C" fn reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    crate::ffi::entry::run_callback("blocked reply", super::OK, || {
        let ctx = Ctx::new(ctx);
        // SAFETY: the private data is the outcome box `finish` handed over; it stays alive
        // until `free` runs after this callback.
        let outcome = unsafe {
            let data = api!(RedisModule_GetBlockedClientPrivateData)(ctx.0).cast::<Outcome>();
            data.as_ref()
        };
        match outcome {
            Some(outcome) => outcome.reply(ctx),
            None => ctx.reply_error(INTERNAL_ERROR_REPLY),
        }
        super::OK
    })
}

extern "C" fn free(_ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the box `finish` made with Box::into_raw, freed once, here.
        drop(unsafe { Box::from_raw(data.cast::<Outcome>()) });
    }
}
