//! The command filter's view of a command, and server events.

use std::ffi::{c_char, c_int};
use std::ptr;

use redis_module::raw;

use super::{string_bytes, Ctx};

/// The arguments of a command seen by a command filter, for the filter's call.
pub struct FilterCtx(pub(super) *mut raw::RedisModuleCommandFilterCtx);

impl FilterCtx {
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

    /// Inserts `arg` before argument `i` (0 puts it in front of the command name).
    pub fn insert(&mut self, i: usize, arg: &[u8]) {
        // SAFETY: valid filter context; the string is created with a null context and handed
        // over to the server, which frees it with the command.
        unsafe {
            let s = api!(RedisModule_CreateString)(
                ptr::null_mut(),
                arg.as_ptr().cast::<c_char>(),
                arg.len(),
            );
            api!(RedisModule_CommandFilterArgInsert)(self.0, i as c_int, s);
        }
    }

    /// Replaces argument `i`.
    pub fn replace(&mut self, i: usize, arg: &[u8]) {
        // SAFETY: as for `insert`; the server frees the argument replaced.
        unsafe {
            let s = api!(RedisModule_CreateString)(
                ptr::null_mut(),
                arg.as_ptr().cast::<c_char>(),
                arg.len(),
            );
            api!(RedisModule_CommandFilterArgReplace)(self.0, i as c_int, s);
        }
    }

    /// The id of the client that sent the command, where the server tells a filter (Redis
    /// 7.2+, Valkey).
    pub fn client_id(&self) -> Option<u64> {
        // SAFETY: reads an optional function pointer of the API table filled at load, and calls
        // it with the valid filter context.
        unsafe {
            let get = std::ptr::addr_of!(raw::RedisModule_CommandFilterGetClientId).read()?;
            Some(get(self.0))
        }
    }

    /// Whether the client that sent the command may run it by its ACL user (command and keys),
    /// or `None` where the server cannot tell a filter who sent a command (before Redis 7.2)
    /// or the sender has no user (the server's own clients).
    pub fn sender_may_run(&self) -> Option<bool> {
        // SAFETY: reads an optional function pointer of the API table filled at load.
        let client_id =
            unsafe { std::ptr::addr_of!(raw::RedisModule_CommandFilterGetClientId).read() }?;
        let detached = DETACHED.load(std::sync::atomic::Ordering::Relaxed);
        if detached.is_null() {
            return None;
        }
        // SAFETY: valid filter context; `detached` is the module's detached context, used on
        // the main thread; every string and user handle is freed below.
        unsafe {
            let id = client_id(self.0);
            let name = api!(RedisModule_GetClientUserNameById)(detached, id);
            if name.is_null() {
                return None;
            }
            let user = api!(RedisModule_GetModuleUserFromUserName)(name);
            api!(RedisModule_FreeString)(detached, name);
            if user.is_null() {
                return None;
            }
            let mut argv: Vec<*mut raw::RedisModuleString> = (0..self.argc())
                .map(|i| api!(RedisModule_CommandFilterArgGet)(self.0, i as c_int))
                .collect();
            let allowed = api!(RedisModule_ACLCheckCommandPermissions)(
                user,
                argv.as_mut_ptr(),
                argv.len() as c_int,
            ) == super::OK;
            api!(RedisModule_FreeModuleUser)(user);
            Some(allowed)
        }
    }
}

/// A detached context for the calls a command filter makes that need one (it has none).
static DETACHED: std::sync::atomic::AtomicPtr<raw::RedisModuleCtx> =
    std::sync::atomic::AtomicPtr::new(ptr::null_mut());

impl<'a> Ctx<'a> {
    /// Registers a command filter that skips the module's own calls.
    pub(super) fn register_command_filter(self, cb: raw::RedisModuleCommandFilterFunc) -> bool {
        // SAFETY: valid context during OnLoad; the detached context lives as long as the
        // module (it is never freed: the module cannot be unloaded while it has a data type).
        unsafe {
            if DETACHED
                .load(std::sync::atomic::Ordering::Relaxed)
                .is_null()
            {
                DETACHED.store(
                    api!(RedisModule_GetDetachedThreadSafeContext)(self.0),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
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

    /// The database this context works in.
    pub fn selected_db(self) -> i32 {
        // SAFETY: valid context.
        unsafe { api!(RedisModule_GetSelectedDb)(self.0) }
    }

    /// Selects database `db` for the rest of this context; false if it does not exist.
    pub fn select_db(self, db: i32) -> bool {
        // SAFETY: valid context; the server checks the range.
        unsafe { api!(RedisModule_SelectDb)(self.0, db) == super::OK }
    }
}
