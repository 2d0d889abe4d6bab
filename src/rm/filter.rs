//! The command filter's view of a command, and server events.

use std::ffi::{c_char, c_int};
use std::ptr;

use redis_module::raw;

use super::{string_bytes, Ctx};

/// The arguments of a command seen by a command filter.
pub struct FilterCtx(pub(super) *mut raw::RedisModuleCommandFilterCtx);

impl FilterCtx {
    pub fn new(ctx: *mut raw::RedisModuleCommandFilterCtx) -> FilterCtx {
        FilterCtx(ctx)
    }

    pub fn argc(&self) -> usize {
        // SAFETY: valid filter context for the duration of the callback.
        let n = unsafe { api!(RedisModule_CommandFilterArgsCount)(self.0) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Argument `i` (0 is the command name), or empty if out of range.
    pub fn arg(&self, i: usize) -> &[u8] {
        // SAFETY: valid filter context; the string belongs to the command being filtered and
        // lives for the callback.
        let s = unsafe { api!(RedisModule_CommandFilterArgGet)(self.0, i as c_int) };
        if s.is_null() {
            return &[];
        }
        string_bytes(s)
    }

    /// Replaces the whole command with `args`.
    pub fn replace_all(&self, args: &[&[u8]]) {
        let old = self.argc();
        // SAFETY: valid filter context; inserted strings are created with a null context and
        // handed over to the server, which frees them with the command.
        unsafe {
            for _ in 0..old {
                api!(RedisModule_CommandFilterArgDelete)(self.0, 0);
            }
            for (i, a) in args.iter().enumerate() {
                let s = api!(RedisModule_CreateString)(
                    ptr::null_mut(),
                    a.as_ptr().cast::<c_char>(),
                    a.len(),
                );
                api!(RedisModule_CommandFilterArgInsert)(self.0, i as c_int, s);
            }
        }
    }
}

impl Ctx {
    /// Registers a command filter that skips the module's own calls.
    pub fn register_filter(self, cb: raw::RedisModuleCommandFilterFunc) -> bool {
        // SAFETY: valid context during OnLoad; `cb` is a 'static function.
        unsafe {
            !api!(RedisModule_RegisterCommandFilter)(
                self.0,
                cb,
                raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
            )
            .is_null()
        }
    }

    /// The server's context flags (`REDISMODULE_CTX_FLAGS_*`).
    pub fn flags(self) -> c_int {
        // SAFETY: valid context.
        unsafe { api!(RedisModule_GetContextFlags)(self.0) }
    }

    /// Whether this server is a replica, from the load context.
    pub fn is_replica(self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_SLAVE as c_int != 0
    }

    /// Whether the append-only file is on (or being turned on).
    pub fn aof_enabled(self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_AOF as c_int != 0
    }

    /// Subscribes `callback` to server event `id` (`REDISMODULE_EVENT_*`).
    pub fn subscribe(self, id: u64, callback: raw::RedisModuleEventCallback) -> bool {
        // SAFETY: valid context during OnLoad; the event struct is the server's constant id with
        // data version 1, and the callback is 'static.
        unsafe {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            api!(RedisModule_SubscribeToServerEvent)(self.0, event, callback)
                == raw::REDISMODULE_OK as c_int
        }
    }

    /// Selects database `db` for the rest of this context; false if it does not exist.
    pub fn select_db(self, db: i32) -> bool {
        // SAFETY: valid context; the server checks the range.
        unsafe { api!(RedisModule_SelectDb)(self.0, db) == raw::REDISMODULE_OK as c_int }
    }
}
