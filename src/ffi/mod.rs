//! The thin, typed layer over the Redis module API. Every `unsafe` call of the adapter lives
//! in this module, next to the reason it is sound.
//!
//! Function pointers are filled in by `RedisModule_Init`. [`missing_apis`] lists the ones this
//! module needs that the running server lacks; `RedisModule_OnLoad` refuses to load if the list
//! is not empty, so the `api!` lookups below cannot fail afterwards.

// bindgen gives the module API's C constants as `isize` or `u32`; each fits the `c_int` the API
// takes, and argument positions and counts are bounded by what Redis itself passed in.
#![allow(clippy::cast_possible_truncation)]

use std::ffi::{c_char, c_int, c_long, c_longlong, CString};

use redis_module::raw;

/// What a callback returns when it succeeded.
pub const OK: c_int = raw::REDISMODULE_OK as c_int;
/// What a callback returns when it failed (or refuses the load).
pub const ERR: c_int = raw::REDISMODULE_ERR as c_int;
/// The one moment the keyring record is saved: before the keys, in every RDB.
pub const AUX_BEFORE_RDB: c_int = raw::REDISMODULE_AUX_BEFORE_RDB as c_int;

#[macro_use]
mod api;
pub use api::missing_apis;

/// The context of the current command or callback, valid while it runs (`'a`), so that safe
/// code cannot keep it past the call.
#[derive(Clone, Copy)]
pub struct Ctx<'a>(
    *mut raw::RedisModuleCtx,
    std::marker::PhantomData<&'a raw::RedisModuleCtx>,
);

/// One command argument: a Redis string owned by the server for the duration of the call
/// (`'a`), so that safe code cannot keep it past the call.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Arg<'a>(
    *mut raw::RedisModuleString,
    std::marker::PhantomData<&'a raw::RedisModuleString>,
);

impl<'a> Arg<'a> {
    /// The argument's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        string_bytes(self.0)
    }

    /// Borrows a string this module created as an argument-like handle, for as long as the
    /// string lives.
    pub fn from_owned(s: &'a OwnedString) -> Arg<'a> {
        Arg(s.ptr, std::marker::PhantomData)
    }
}

fn string_bytes<'a>(s: *const raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: `s` is a live RedisModuleString (a command argument or a string this module
    // created and has not freed); the returned pointer is valid for `len` bytes while it lives.
    let p = unsafe { api!(RedisModule_StringPtrLen)(s, &mut len) };
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: see above; Redis strings are never mutated while a command runs with them.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
}

/// Builds the argument list of a command call.
///
/// # Safety
/// `argv` must point to `argc` valid RedisModuleString pointers, as Redis passes them.
pub unsafe fn args<'a>(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> &'a [Arg<'a>] {
    if argv.is_null() || argc <= 0 {
        return &[];
    }
    // SAFETY: `Arg` is `repr(transparent)` over one pointer,
    // and the caller guarantees `argv` holds `argc` pointers alive for the call.
    unsafe { std::slice::from_raw_parts(argv.cast::<Arg>(), argc as usize) }
}
const _: () =
    assert!(std::mem::size_of::<Arg>() == std::mem::size_of::<*mut raw::RedisModuleString>());

/// A Redis string created by this module; freed on drop.
pub struct OwnedString<'a> {
    ctx: Ctx<'a>,
    ptr: *mut raw::RedisModuleString,
}

impl OwnedString<'_> {
    /// The string as an argument of a call or a replicated command, while it lives.
    pub fn arg(&self) -> Arg<'_> {
        Arg::from_owned(self)
    }
}

impl Drop for OwnedString<'_> {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` is a string this module owns (created here or handed over by the
        // server) and is freed exactly once.
        unsafe { api!(RedisModule_FreeString)(self.ctx.0, self.ptr) }
    }
}

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Empty,
    String,
    Hash,
    Other,
}

/// Log levels of the Redis log.
#[derive(Clone, Copy)]
pub enum Level {
    Warning,
    Notice,
}

impl<'a> Ctx<'a> {
    /// Wraps the context Redis passed to a callback (the trampolines of this module do).
    fn new(ctx: *mut raw::RedisModuleCtx) -> Ctx<'a> {
        Ctx(ctx, std::marker::PhantomData)
    }

    /// Writes one line to the Redis log. `msg` must not contain secrets.
    pub fn log(self, level: Level, msg: &str) {
        let level = match level {
            Level::Warning => c"warning",
            Level::Notice => c"notice",
        };
        let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: valid C strings; "%s" consumes exactly one string argument.
        unsafe { api!(RedisModule_Log)(self.0, level.as_ptr(), c"%s".as_ptr(), msg.as_ptr()) }
    }

    /// Replaces argument `pos` with "(redacted)" in SLOWLOG, MONITOR and the command log.
    pub fn redact(self, pos: usize) {
        // SAFETY: called from a command handler with a position inside argv (callers check).
        unsafe {
            api!(RedisModule_RedactClientCommandArgument)(self.0, pos as c_int);
        }
    }

    /// Creates a Redis string holding a copy of `bytes`.
    pub fn string(self, bytes: &[u8]) -> OwnedString<'a> {
        // SAFETY: `bytes` is valid for its length; Redis copies it.
        let ptr = unsafe {
            api!(RedisModule_CreateString)(self.0, bytes.as_ptr().cast::<c_char>(), bytes.len())
        };
        OwnedString { ctx: self, ptr }
    }

    /// Opens a key for reading.
    pub fn open_read(self, name: Arg) -> Key<'a> {
        self.open(name, raw::REDISMODULE_READ)
    }

    /// Opens a key for reading without touching it: its LRU or LFU stays as it was, so a
    /// scan that measures the keyspace does not change what eviction sees.
    pub fn open_untouched(self, name: Arg) -> Key<'a> {
        self.open(
            name,
            raw::REDISMODULE_READ | raw::REDISMODULE_OPEN_KEY_NOTOUCH,
        )
    }

    /// Opens a key for reading and writing.
    pub fn open_write(self, name: Arg) -> Key<'a> {
        self.open(name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
    }

    fn open(self, name: Arg, mode: u32) -> Key<'a> {
        // SAFETY: `name` is a live RedisModuleString; the key handle is closed by Key::drop.
        let ptr = unsafe { api!(RedisModule_OpenKey)(self.0, name.0, mode as c_int) };
        Key {
            ctx: self,
            ptr: ptr.cast(),
        }
    }

    /// Propagates `cmd args...` to replicas and the AOF.
    pub fn replicate(self, cmd: &std::ffi::CStr, args: &[Arg]) {
        // SAFETY: "v" takes an array of RedisModuleString pointers and its length; `Arg` is
        // `repr(transparent)` over one, and its lifetime keeps every string live for the call
        // (Redis retains what it keeps).
        unsafe {
            api!(RedisModule_Replicate)(
                self.0,
                cmd.as_ptr(),
                c"v".as_ptr(),
                args.as_ptr()
                    .cast::<*mut raw::RedisModuleString>()
                    .cast_mut(),
                args.len(),
            );
        }
    }

    /// Fires a keyspace notification.
    pub fn notify(self, class: c_int, event: &std::ffi::CStr, key: Arg) {
        // SAFETY: valid context, event C string and key string.
        unsafe {
            api!(RedisModule_NotifyKeyspaceEvent)(self.0, class, event.as_ptr(), key.0);
        }
    }

    /// Runs a Redis command with `fmt` "v"-style arguments and returns its reply.
    pub fn call(self, cmd: &std::ffi::CStr, flags: &std::ffi::CStr, args: &[Arg]) -> CallReply {
        let mut fmt = flags.to_bytes().to_vec();
        fmt.push(b'v');
        let fmt = CString::new(fmt).unwrap_or_default();
        // SAFETY: "v" takes the array of string pointers (`Arg` is `repr(transparent)` over one,
        // live for the call) and its length; the reply is freed by CallReply::drop.
        let ptr = unsafe {
            api!(RedisModule_Call)(
                self.0,
                cmd.as_ptr(),
                fmt.as_ptr(),
                args.as_ptr()
                    .cast::<*mut raw::RedisModuleString>()
                    .cast_mut(),
                args.len(),
            )
        };
        CallReply(ptr)
    }

    /// A server config's value (`CONFIG GET name`), or `None` when the server has no such
    /// config.
    pub fn config_get(self, name: &[u8]) -> Option<Vec<u8>> {
        let get = self.string(b"GET");
        let name = self.string(name);
        let reply = self.call(c"CONFIG", c"", &[get.arg(), name.arg()]);
        reply.string_elements().into_iter().nth(1)
    }

    pub fn reply_ok(self) {
        self.reply_simple(c"OK");
    }

    pub fn reply_simple(self, s: &std::ffi::CStr) {
        // SAFETY: valid context and C string.
        unsafe { api!(RedisModule_ReplyWithSimpleString)(self.0, s.as_ptr()) };
    }

    /// Replies with an error; `msg` starts with its code (`ERR`, `WRONGTYPE`, `NOPERM`).
    pub fn reply_error(self, msg: &str) {
        let msg = CString::new(msg.replace(['\0', '\r', '\n'], " ")).unwrap_or_default();
        // SAFETY: valid context and C string; Redis copies it.
        unsafe { api!(RedisModule_ReplyWithError)(self.0, msg.as_ptr()) };
    }

    pub fn reply_null(self) {
        // SAFETY: valid context.
        unsafe { api!(RedisModule_ReplyWithNull)(self.0) };
    }

    pub fn reply_bulk(self, bytes: &[u8]) {
        // SAFETY: `bytes` is valid for its length; Redis copies it into the reply.
        unsafe {
            api!(RedisModule_ReplyWithStringBuffer)(
                self.0,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        };
    }

    /// One `name: integer` entry of a map reply.
    pub fn reply_field_int(self, name: &[u8], n: i64) {
        self.reply_bulk(name);
        self.reply_int(n);
    }

    pub fn reply_int(self, n: i64) {
        // SAFETY: valid context.
        unsafe { api!(RedisModule_ReplyWithLongLong)(self.0, n as c_longlong) };
    }

    pub fn reply_array(self, len: usize) {
        // SAFETY: valid context; the caller then writes exactly `len` replies.
        unsafe { api!(RedisModule_ReplyWithArray)(self.0, len as c_long) };
    }

    /// A map under RESP3; Redis turns it into a flat array of 2 × `len` under RESP2.
    pub fn reply_map(self, len: usize) {
        // SAFETY: valid context; the caller then writes exactly 2 × `len` replies.
        unsafe { api!(RedisModule_ReplyWithMap)(self.0, len as c_long) };
    }
}

mod acl;
mod blocking;
mod call;
mod cluster;
pub mod command_info;
mod configs;
pub mod entry;
mod filter;
mod hooks;
mod jobs;
mod key;
mod register;
pub mod wipe;

pub use acl::{add_acl_category, note_script_caller, now_ms, AclCheck, Caller, Denial, Transport};
pub use blocking::{Blocked, Outcome};
pub use call::{CallReply, Reply};
pub use cluster::{Node, NodeId};
pub use configs::{ConfigHooks, ConfigKind};
pub use filter::FilterCtx;
pub use hooks::{AuxRecord, EventHandler, Rdb, ServerEvent, Timer};
pub use jobs::ScanCursor;
pub use key::Key;
pub use register::{log_without_context, InfoCtx};

#[cfg(test)]
mod tests;
