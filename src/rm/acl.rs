//! Who runs a command, and the server's own ACL check.

use std::ffi::{c_int, c_void};

use redis_module::raw;

use super::{string_bytes, Ctx, OwnedString};

/// Who runs the current command, for audit records.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: String,
    pub client_id: u64,
    pub addr: String,
}

/// Whether the current user may run a command with these arguments (the server's own ACL
/// check: command permissions and key patterns).
pub enum AclCheck {
    Allowed,
    Denied,
    /// No user: AOF loading, the replication stream, the server itself.
    NoUser,
}

impl Ctx {
    /// The current client's user, id and address.
    pub fn caller(self) -> Caller {
        let mut caller = Caller::default();
        // SAFETY: valid context; the user-name string is freed here; the client-info struct
        // is versioned (version 1) and filled by the server.
        unsafe {
            let name = api!(RedisModule_GetCurrentUserName)(self.0);
            if !name.is_null() {
                caller.user = String::from_utf8_lossy(string_bytes(name)).into_owned();
                api!(RedisModule_FreeString)(self.0, name);
            }
            caller.client_id = api!(RedisModule_GetClientId)(self.0);
            if let Some(addr) = cached_addr(caller.client_id) {
                caller.addr = addr;
                return caller;
            }
            let mut info: raw::RedisModuleClientInfo = std::mem::zeroed();
            info.version = 1;
            if caller.client_id != 0
                && api!(RedisModule_GetClientInfoById)(
                    (&mut info as *mut raw::RedisModuleClientInfo).cast::<c_void>(),
                    caller.client_id,
                ) == raw::REDISMODULE_OK as c_int
            {
                let addr = std::ffi::CStr::from_ptr(info.addr.as_ptr()).to_string_lossy();
                caller.addr = format!("{addr}:{}", info.port);
                remember_addr(caller.client_id, &caller.addr);
            }
        }
        caller
    }

    /// Checks the current user's permission to run `args` (command name first) with the
    /// server's ACL; on denial adds an `ACL LOG` entry naming `object`.
    pub fn acl_check(self, args: &[&[u8]], object: &[u8]) -> AclCheck {
        // SAFETY: every string created here is freed below; a null user name means no client
        // (AOF loading, replication), which the server trusts.
        unsafe {
            let name = api!(RedisModule_GetCurrentUserName)(self.0);
            if name.is_null() {
                return AclCheck::NoUser;
            }
            let user = api!(RedisModule_GetModuleUserFromUserName)(name);
            api!(RedisModule_FreeString)(self.0, name);
            if user.is_null() {
                return AclCheck::NoUser;
            }
            let strings: Vec<OwnedString> = args.iter().map(|a| self.string(a)).collect();
            let mut argv: Vec<*mut raw::RedisModuleString> =
                strings.iter().map(|s| s.ptr).collect();
            let allowed = api!(RedisModule_ACLCheckCommandPermissions)(
                user,
                argv.as_mut_ptr(),
                argv.len() as c_int,
            ) == raw::REDISMODULE_OK as c_int;
            if !allowed {
                let object = self.string(object);
                api!(RedisModule_ACLAddLogEntry)(
                    self.0,
                    user,
                    object.ptr,
                    raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_CMD,
                );
            }
            api!(RedisModule_FreeModuleUser)(user);
            if allowed {
                AclCheck::Allowed
            } else {
                AclCheck::Denied
            }
        }
    }

    /// Milliseconds since the Unix epoch, by the server's clock.
    pub fn now_ms(self) -> i64 {
        // SAFETY: no arguments.
        unsafe { api!(RedisModule_Milliseconds)() }
    }
}

/// Adds the ACL category `name` (Redis 7.4+, Valkey 8+). Only valid while loading.
pub fn add_acl_category(ctx: Ctx, name: &std::ffi::CStr) -> bool {
    // SAFETY: reading a function pointer static; calling it with a valid load context.
    unsafe {
        match std::ptr::addr_of!(raw::RedisModule_AddACLCategory).read() {
            Some(add) => add(ctx.0, name.as_ptr()) == raw::REDISMODULE_OK as c_int,
            None => false,
        }
    }
}

/// Client addresses by client id. Ids are never reused while the server runs, so an entry
/// never goes stale; the cache is emptied when it grows large. Saves a `getpeername` call per
/// audit record.
static ADDRS: std::sync::Mutex<Option<std::collections::HashMap<u64, String>>> =
    std::sync::Mutex::new(None);

fn cached_addr(id: u64) -> Option<String> {
    ADDRS.lock().ok()?.as_ref()?.get(&id).cloned()
}

fn remember_addr(id: u64, addr: &str) {
    if let Ok(mut guard) = ADDRS.lock() {
        let map = guard.get_or_insert_with(std::collections::HashMap::new);
        if map.len() >= 10_000 {
            map.clear();
        }
        map.insert(id, addr.to_owned());
    }
}
