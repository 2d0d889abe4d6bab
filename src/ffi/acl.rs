//! Who runs a command, and the server's own ACL check.

use std::ffi::{c_int, c_void};
use std::ptr;

use redis_module::raw;

use super::{Arg, Ctx, OwnedString};

/// Who runs the current command, for audit records.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: String,
    pub client_id: u64,
    pub addr: String,
}

/// How the current client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No client: the replication stream, AOF loading, the server itself.
    ServerItself,
    Tls,
    UnixSocket,
    /// Plain TCP, from the loopback address or not.
    Tcp {
        local: bool,
    },
    /// The server cannot say (a script's client).
    Unknown,
}

/// Why the server's ACL refuses the current user a command.
pub enum Denial {
    /// The user may not run the command at all.
    Command,
    /// The user may not access this key of the command.
    Key(Vec<u8>),
}

/// Whether the current user may run a command with these arguments (the server's own ACL
/// check: command permissions and key patterns).
pub enum AclCheck {
    Allowed,
    Denied,
    /// No user: AOF loading, the replication stream, the server itself.
    NoUser,
}

impl<'a> Ctx<'a> {
    /// The ACL user name the current command runs as; `None` when the server runs it by
    /// itself: the replication stream, AOF or RDB loading, timers and server events. (The
    /// server's clients for those have no user at all, and asking for their user's name
    /// crashes Redis 7.0, so they are recognised first.)
    fn user_name(self) -> Option<OwnedString<'a>> {
        if self.is_replaying() {
            return None;
        }
        // SAFETY: valid context; a returned string is owned by the OwnedString (freed once).
        unsafe {
            let id = api!(RedisModule_GetClientId)(self.0);
            if id != 0 {
                let name = api!(RedisModule_GetClientUserNameById)(self.0, id);
                if !name.is_null() {
                    return Some(OwnedString {
                        ctx: self,
                        ptr: name,
                    });
                }
            }
            // A script's client is no connected client, and carries the caller's user.
            if self.flags() & raw::REDISMODULE_CTX_FLAGS_LUA as c_int != 0 {
                let name = api!(RedisModule_GetCurrentUserName)(self.0);
                return (!name.is_null()).then_some(OwnedString {
                    ctx: self,
                    ptr: name,
                });
            }
        }
        None
    }

    /// Whether the server replays writes decided elsewhere: the replication stream from the
    /// primary, or an AOF or RDB being loaded.
    pub fn is_replaying(self) -> bool {
        let replay = (raw::REDISMODULE_CTX_FLAGS_REPLICATED
            | raw::REDISMODULE_CTX_FLAGS_LOADING
            | raw::REDISMODULE_CTX_FLAGS_ASYNC_LOADING) as c_int;
        self.flags() & replay != 0
    }

    /// Whether the command runs without a client user: the AOF being loaded, the replication
    /// stream from the primary, or the server itself. Such commands replay decisions a
    /// primary already made.
    pub fn is_server_itself(self) -> bool {
        self.user_name().is_none()
    }

    /// The current user as the ACL functions take it, if there is one.
    fn module_user(self) -> Option<ModuleUser> {
        let name = self.user_name()?;
        // SAFETY: `name` is a live string; the user handle is freed by ModuleUser::drop.
        let user = unsafe { api!(RedisModule_GetModuleUserFromUserName)(name.ptr) };
        (!user.is_null()).then_some(ModuleUser(user))
    }

    /// The client's info (flags, address), if it is a connected client.
    fn client_info(self) -> Option<raw::RedisModuleClientInfo> {
        // SAFETY: valid context; the client-info struct is versioned (version 1) and filled by
        // the server.
        unsafe {
            let id = api!(RedisModule_GetClientId)(self.0);
            let mut info: raw::RedisModuleClientInfo = std::mem::zeroed();
            info.version = 1;
            (id != 0
                && api!(RedisModule_GetClientInfoById)(
                    (&mut info as *mut raw::RedisModuleClientInfo).cast::<c_void>(),
                    id,
                ) == super::OK)
                .then_some(info)
        }
    }

    /// How the current client is connected.
    pub fn transport(self) -> Transport {
        if self.user_name().is_none() {
            return Transport::ServerItself;
        }
        let Some(info) = self.client_info() else {
            return Transport::Unknown;
        };
        if info.flags & u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_SSL) != 0 {
            return Transport::Tls;
        }
        if info.flags & u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_UNIXSOCKET) != 0 {
            return Transport::UnixSocket;
        }
        // SAFETY: the server writes a NUL-terminated address into the fixed-size array.
        let addr = unsafe { std::ffi::CStr::from_ptr(info.addr.as_ptr()) };
        Transport::Tcp {
            local: matches!(addr.to_bytes(), b"127.0.0.1" | b"::1"),
        }
    }

    /// Whether the current client is local as the server's `enable-protected-configs local`
    /// means it: a unix socket, or the loopback address (TLS or not). The server itself counts.
    pub fn is_local_client(self) -> bool {
        if self.user_name().is_none() {
            return true;
        }
        let Some(info) = self.client_info() else {
            return false;
        };
        if info.flags & u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_UNIXSOCKET) != 0 {
            return true;
        }
        // SAFETY: the server writes a NUL-terminated address into the fixed-size array.
        let addr = unsafe { std::ffi::CStr::from_ptr(info.addr.as_ptr()) };
        matches!(addr.to_bytes(), b"127.0.0.1" | b"::1")
    }

    /// The current client's user, id and address. In a script, the client that ran the script
    /// where the server lets the module know it (Redis 7.2+, Valkey); elsewhere, client 0 at
    /// address `script`.
    pub fn caller(self) -> Caller {
        let mut caller = Caller::default();
        let Some(name) = self.user_name() else {
            return caller;
        };
        caller.user = String::from_utf8_lossy(name.bytes()).into_owned();
        let in_script = self.flags() & raw::REDISMODULE_CTX_FLAGS_LUA as c_int != 0;
        // SAFETY: valid context; the client-info struct is versioned (version 1) and filled by
        // the server.
        unsafe {
            caller.client_id = if in_script {
                SCRIPT_CALLER.load(std::sync::atomic::Ordering::Relaxed)
            } else {
                api!(RedisModule_GetClientId)(self.0)
            };
            if in_script && caller.client_id == 0 {
                caller.addr = "script".into();
                return caller;
            }
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
                ) == super::OK
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
        let Some(user) = self.module_user() else {
            return AclCheck::NoUser;
        };
        let strings: Vec<OwnedString> = args.iter().map(|a| self.string(a)).collect();
        let mut argv: Vec<*mut raw::RedisModuleString> = strings.iter().map(|s| s.ptr).collect();
        // SAFETY: valid user handle and argument strings, alive for the call.
        let allowed = unsafe {
            api!(RedisModule_ACLCheckCommandPermissions)(
                user.0,
                argv.as_mut_ptr(),
                argv.len() as c_int,
            ) == super::OK
        };
        if allowed {
            return AclCheck::Allowed;
        }
        let object = self.string(object);
        // SAFETY: valid context, user handle and object string.
        unsafe {
            api!(RedisModule_ACLAddLogEntry)(
                self.0,
                user.0,
                object.ptr,
                raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_CMD,
            );
        }
        AclCheck::Denied
    }

    /// Whether the current user may run `args` (command name first), and if not, why: the
    /// command, or one of its keys. The server's key finder checks the arity first (its ACL
    /// check reads past a short argument list); `Err` when the arguments are not a command the
    /// server would run. Nothing is logged or replicated.
    pub fn acl_denial(self, args: &[Arg]) -> Result<Option<Denial>, ()> {
        let Some(user) = self.module_user() else {
            return Ok(None);
        };
        let mut argv: Vec<*mut raw::RedisModuleString> = args.iter().map(|a| a.0).collect();
        let argc = c_int::try_from(argv.len()).map_err(|_| ())?;
        let mut count: c_int = 0;
        let mut flags: *mut c_int = ptr::null_mut();
        // SAFETY: valid context and argument strings; the returned arrays are allocated by the
        // server and freed below with RedisModule_Free.
        unsafe {
            let positions = api!(RedisModule_GetCommandKeysWithFlags)(
                self.0,
                argv.as_mut_ptr(),
                argc,
                &mut count,
                &mut flags,
            );
            // Every null return sets errno: 0 for no keys, else an unknown command or a wrong
            // arity.
            if positions.is_null() && std::io::Error::last_os_error().raw_os_error() != Some(0) {
                return Err(());
            }
            let keys: Vec<(usize, c_int)> = if positions.is_null() {
                Vec::new()
            } else {
                let n = usize::try_from(count).unwrap_or(0);
                let list = (0..n)
                    .map(|i| {
                        (
                            usize::try_from(*positions.add(i)).unwrap_or(usize::MAX),
                            if flags.is_null() { 0 } else { *flags.add(i) },
                        )
                    })
                    .collect();
                api!(RedisModule_Free)(positions.cast());
                if !flags.is_null() {
                    api!(RedisModule_Free)(flags.cast());
                }
                list
            };
            if api!(RedisModule_ACLCheckCommandPermissions)(user.0, argv.as_mut_ptr(), argc)
                == super::OK
            {
                return Ok(None);
            }
            for (pos, key_flags) in keys {
                let Some(key) = args.get(pos) else { continue };
                if api!(RedisModule_ACLCheckKeyPermissions)(user.0, key.0, key_flags) != super::OK {
                    return Ok(Some(Denial::Key(key.bytes().to_vec())));
                }
            }
        }
        Ok(Some(Denial::Command))
    }

    /// Adds an `ACL LOG` entry for the current user: a denied key, or a denied command.
    pub fn acl_log(self, object: &[u8], key: bool) {
        let Some(user) = self.module_user() else {
            return;
        };
        let object = self.string(object);
        let reason = if key {
            raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_KEY
        } else {
            raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_CMD
        };
        // SAFETY: valid context, user handle and object string.
        unsafe { api!(RedisModule_ACLAddLogEntry)(self.0, user.0, object.ptr, reason) };
    }

    /// Whether the current user may access (read) `key`; on denial, adds an ACL LOG entry.
    pub fn may_read_key(self, key: Arg) -> bool {
        let Some(user) = self.module_user() else {
            return true;
        };
        // SAFETY: valid user handle, context and key string.
        unsafe {
            let allowed = api!(RedisModule_ACLCheckKeyPermissions)(
                user.0,
                key.0,
                raw::REDISMODULE_CMD_KEY_ACCESS as c_int,
            ) == super::OK;
            if !allowed {
                api!(RedisModule_ACLAddLogEntry)(
                    self.0,
                    user.0,
                    key.0,
                    raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_KEY,
                );
            }
            allowed
        }
    }
}

/// The client that sent the last script (`EVAL`, `FCALL`, ... or `EXEC`, which may run one),
/// as the command filter saw it.
static SCRIPT_CALLER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Notes the client that is about to run a script.
pub fn note_script_caller(id: u64) {
    SCRIPT_CALLER.store(id, std::sync::atomic::Ordering::Relaxed);
}

/// Milliseconds since the Unix epoch, by the server's clock (for callbacks without a context).
pub fn now_ms() -> i64 {
    // SAFETY: no arguments.
    unsafe { api!(RedisModule_Milliseconds)() }
}

/// An ACL user handle; freed on drop.
struct ModuleUser(*mut raw::RedisModuleUser);

impl Drop for ModuleUser {
    fn drop(&mut self) {
        // SAFETY: a handle returned by GetModuleUserFromUserName, freed once.
        unsafe { api!(RedisModule_FreeModuleUser)(self.0) };
    }
}

/// Adds the ACL category `name` (Redis 7.4+, Valkey 8+). Only valid while loading.
pub fn add_acl_category(ctx: Ctx, name: &std::ffi::CStr) -> bool {
    // SAFETY: reading a function pointer static; calling it with a valid load context.
    unsafe {
        match std::ptr::addr_of!(raw::RedisModule_AddACLCategory).read() {
            Some(add) => add(ctx.0, name.as_ptr()) == super::OK,
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
