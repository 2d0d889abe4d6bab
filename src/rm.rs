//! The thin, typed layer over the Redis module API. Every `unsafe` call of the adapter lives
//! in this file, next to the reason it is sound.
//!
//! Function pointers are filled in by `RedisModule_Init`. [`missing_apis`] lists the ones this
//! module needs that the running server lacks; `RedisModule_OnLoad` refuses to load if the list
//! is not empty, so the `api!` lookups below cannot fail afterwards.

use std::ffi::{c_char, c_int, c_long, c_longlong, CString};
use std::ptr;

use redis_module::raw;

/// Resolves a module API function pointer. Sound to `expect`: [`missing_apis`] checked at
/// load time that every function used through this macro is present.
macro_rules! api {
    ($name:ident) => {
        raw::$name.expect(concat!(stringify!($name), " is checked at load"))
    };
}

/// Names of required module API functions the server did not provide.
pub fn missing_apis() -> Vec<&'static str> {
    let mut missing = Vec::new();
    macro_rules! need {
        ($($name:ident),* $(,)?) => {$(
            // SAFETY: reading a function-pointer static that RedisModule_Init wrote before any
            // other module code runs; the module API is single-threaded here.
            if unsafe { std::ptr::addr_of!(raw::$name).read().is_none() } { missing.push(stringify!($name)); }
        )*};
    }
    need!(
        RedisModule_CreateCommand,
        RedisModule_GetCommand,
        RedisModule_SetCommandInfo,
        RedisModule_OpenKey,
        RedisModule_CloseKey,
        RedisModule_KeyType,
        RedisModule_StringDMA,
        RedisModule_StringSet,
        RedisModule_DeleteKey,
        RedisModule_StringTruncate,
        RedisModule_SetExpire,
        RedisModule_SetAbsExpire,
        RedisModule_GetAbsExpire,
        RedisModule_HashSet,
        RedisModule_HashGet,
        RedisModule_Replicate,
        RedisModule_RedactClientCommandArgument,
        RedisModule_ReplyWithMap,
        RedisModule_ReplyWithArray,
        RedisModule_ReplyWithNull,
        RedisModule_ReplyWithError,
        RedisModule_ReplyWithSimpleString,
        RedisModule_ReplyWithStringBuffer,
        RedisModule_ReplyWithLongLong,
        RedisModule_CreateString,
        RedisModule_FreeString,
        RedisModule_StringPtrLen,
        RedisModule_Log,
        RedisModule_NotifyKeyspaceEvent,
        RedisModule_Call,
        RedisModule_CallReplyType,
        RedisModule_CallReplyLength,
        RedisModule_CallReplyArrayElement,
        RedisModule_CallReplyStringPtr,
        RedisModule_FreeCallReply,
        RedisModule_GetCurrentUserName,
        RedisModule_GetModuleUserFromUserName,
        RedisModule_FreeModuleUser,
        RedisModule_ACLCheckKeyPermissions,
        RedisModule_ACLAddLogEntry,
        RedisModule_RegisterBoolConfig,
        RedisModule_LoadConfigs,
        RedisModule_RegisterInfoFunc,
        RedisModule_InfoAddSection,
        RedisModule_InfoAddFieldCString,
        RedisModule_InfoAddFieldULongLong,
    );
    missing
}

/// The context of the current command or callback.
#[derive(Clone, Copy)]
pub struct Ctx(*mut raw::RedisModuleCtx);

/// One command argument: a Redis string owned by the server for the duration of the call.
#[derive(Clone, Copy)]
pub struct Arg(*mut raw::RedisModuleString);

impl Arg {
    /// The argument's bytes.
    pub fn bytes(&self) -> &[u8] {
        string_bytes(self.0)
    }

    pub(crate) fn as_ptr(self) -> *mut raw::RedisModuleString {
        self.0
    }

    /// Borrows a string this module created as an argument-like handle.
    pub fn from_owned(s: &OwnedString) -> Arg {
        Arg(s.ptr)
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
pub unsafe fn args<'a>(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> &'a [Arg] {
    if argv.is_null() || argc <= 0 {
        return &[];
    }
    // SAFETY: `Arg` is a transparent-layout wrapper of one pointer (see the assertion below),
    // and the caller guarantees `argv` holds `argc` pointers alive for the call.
    unsafe { std::slice::from_raw_parts(argv.cast::<Arg>(), argc as usize) }
}
const _: () =
    assert!(std::mem::size_of::<Arg>() == std::mem::size_of::<*mut raw::RedisModuleString>());

/// A Redis string created by this module; freed on drop.
pub struct OwnedString {
    ctx: Ctx,
    ptr: *mut raw::RedisModuleString,
}

impl OwnedString {
    pub fn as_ptr(&self) -> *mut raw::RedisModuleString {
        self.ptr
    }
}

impl Drop for OwnedString {
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

impl Ctx {
    /// Wraps the context Redis passed to a callback.
    pub fn new(ctx: *mut raw::RedisModuleCtx) -> Ctx {
        Ctx(ctx)
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
    pub fn string(self, bytes: &[u8]) -> OwnedString {
        // SAFETY: `bytes` is valid for its length; Redis copies it.
        let ptr = unsafe {
            api!(RedisModule_CreateString)(self.0, bytes.as_ptr().cast::<c_char>(), bytes.len())
        };
        OwnedString { ctx: self, ptr }
    }

    /// Opens a key for reading.
    pub fn open_read(self, name: Arg) -> Key {
        self.open(name, raw::REDISMODULE_READ)
    }

    /// Opens a key for reading and writing.
    pub fn open_write(self, name: Arg) -> Key {
        self.open(name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
    }

    fn open(self, name: Arg, mode: u32) -> Key {
        // SAFETY: `name` is a live RedisModuleString; the key handle is closed by Key::drop.
        let ptr = unsafe { api!(RedisModule_OpenKey)(self.0, name.0, mode as c_int) };
        Key {
            ctx: self,
            ptr: ptr.cast(),
        }
    }

    /// Propagates `cmd args...` to replicas and the AOF.
    pub fn replicate(self, cmd: &std::ffi::CStr, args: &[*mut raw::RedisModuleString]) {
        // SAFETY: "v" takes an array of RedisModuleString pointers and its length; every pointer
        // is live for the duration of the call (Redis retains what it keeps).
        unsafe {
            api!(RedisModule_Replicate)(
                self.0,
                cmd.as_ptr(),
                c"v".as_ptr(),
                args.as_ptr(),
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

    /// Whether the current user may access (read) `key`; on denial, adds an ACL LOG entry.
    pub fn may_read_key(self, key: Arg) -> bool {
        // SAFETY: the user name string and the user handle are freed below; a null user means
        // the command runs without a client (AOF, replication), which the server trusts.
        unsafe {
            let name = api!(RedisModule_GetCurrentUserName)(self.0);
            if name.is_null() {
                return true;
            }
            let user = api!(RedisModule_GetModuleUserFromUserName)(name);
            api!(RedisModule_FreeString)(self.0, name);
            if user.is_null() {
                return true;
            }
            let allowed = api!(RedisModule_ACLCheckKeyPermissions)(
                user,
                key.0,
                raw::REDISMODULE_CMD_KEY_ACCESS as c_int,
            ) == raw::REDISMODULE_OK as c_int;
            if !allowed {
                api!(RedisModule_ACLAddLogEntry)(
                    self.0,
                    user,
                    key.0,
                    raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_KEY,
                );
            }
            api!(RedisModule_FreeModuleUser)(user);
            allowed
        }
    }

    /// Runs a Redis command with `fmt` "v"-style arguments and returns its reply.
    pub fn call(
        self,
        cmd: &std::ffi::CStr,
        flags: &std::ffi::CStr,
        args: &[*mut raw::RedisModuleString],
    ) -> CallReply {
        let mut fmt = flags.to_bytes().to_vec();
        fmt.push(b'v');
        let fmt = CString::new(fmt).unwrap_or_default();
        // SAFETY: "v" takes the array and its length; the reply is freed by CallReply::drop.
        let ptr = unsafe {
            api!(RedisModule_Call)(
                self.0,
                cmd.as_ptr(),
                fmt.as_ptr(),
                args.as_ptr(),
                args.len(),
            )
        };
        CallReply(ptr)
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

/// An open key; closed on drop (which also signals WATCHers of a key opened for writing).
pub struct Key {
    ctx: Ctx,
    ptr: *mut raw::RedisModuleKey,
}

impl Key {
    pub fn key_type(&self) -> KeyType {
        if self.ptr.is_null() {
            return KeyType::Empty;
        }
        // SAFETY: open key handle.
        let t = unsafe { api!(RedisModule_KeyType)(self.ptr) } as isize;
        match t {
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
            raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
            raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
            _ => KeyType::Other,
        }
    }

    /// The bytes of a string value. Valid until the key is modified or closed.
    pub fn string_value(&self) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: the key is open and holds a string (callers check the type); DMA read access
        // returns a pointer valid for `len` bytes until the key is modified or closed, which the
        // borrow of `self` ensures.
        unsafe {
            let p = api!(RedisModule_StringDMA)(self.ptr, &mut len, raw::REDISMODULE_READ as c_int);
            if p.is_null() || len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }

    /// Deletes the key.
    pub fn delete(&mut self) {
        // SAFETY: key opened for writing.
        unsafe { api!(RedisModule_DeleteKey)(self.ptr) };
    }

    /// Makes the key's value a string of exactly `len` bytes (creating it if the key is empty,
    /// keeping its TTL otherwise) and returns it for writing. `None` if the server refused.
    pub fn string_buffer(&mut self, len: usize) -> Option<&mut [u8]> {
        // SAFETY: key opened for writing and empty or holding a string (callers delete other
        // types first); after a successful truncate, DMA write access returns a pointer valid
        // for `len` bytes until the key is modified or closed, which the borrow of `self` ensures.
        unsafe {
            if api!(RedisModule_StringTruncate)(self.ptr, len) != raw::REDISMODULE_OK as c_int {
                return None;
            }
            let mut got = 0usize;
            let p =
                api!(RedisModule_StringDMA)(self.ptr, &mut got, raw::REDISMODULE_WRITE as c_int);
            if p.is_null() || got != len {
                return None;
            }
            Some(std::slice::from_raw_parts_mut(p.cast::<u8>(), len))
        }
    }

    /// Removes the key's TTL.
    pub fn persist(&mut self) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetExpire)(self.ptr, raw::REDISMODULE_NO_EXPIRE as i64) };
    }

    /// Replaces the value (of any type) with a string; this removes any TTL.
    pub fn set_string(&mut self, value: &OwnedString) -> bool {
        // SAFETY: key opened for writing; Redis takes its own reference to `value`.
        unsafe { api!(RedisModule_StringSet)(self.ptr, value.ptr) == raw::REDISMODULE_OK as c_int }
    }

    /// Absolute expiry in Unix milliseconds, if the key has one.
    pub fn expire_at(&self) -> Option<i64> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: open key handle.
        let at = unsafe { api!(RedisModule_GetAbsExpire)(self.ptr) };
        (at != raw::REDISMODULE_NO_EXPIRE as i64).then_some(at)
    }

    pub fn set_expire_in(&mut self, ms: i64) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetExpire)(self.ptr, ms) };
    }

    pub fn set_expire_at(&mut self, unix_ms: i64) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetAbsExpire)(self.ptr, unix_ms) };
    }

    /// Whether the hash holds `field`.
    pub fn hash_has(&self, field: Arg) -> bool {
        let mut exists: c_int = 0;
        // SAFETY: EXISTS form of HashGet: (field, int*) pairs terminated by NULL.
        unsafe {
            api!(RedisModule_HashGet)(
                self.ptr,
                raw::REDISMODULE_HASH_EXISTS as c_int,
                field.0,
                &mut exists as *mut c_int,
                ptr::null_mut::<c_void>(),
            )
        };
        exists != 0
    }

    /// The value of one hash field.
    pub fn hash_get(&self, field: Arg) -> Option<OwnedString> {
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: (field, RedisModuleString**) pairs terminated by NULL; the returned string is
        // owned by the caller (no automatic memory management) and freed by OwnedString.
        unsafe {
            api!(RedisModule_HashGet)(
                self.ptr,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.0,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null_mut::<c_void>(),
            )
        };
        (!value.is_null()).then(|| OwnedString {
            ctx: self.ctx,
            ptr: value,
        })
    }

    /// Sets one hash field.
    pub fn hash_set(&mut self, field: Arg, value: &OwnedString) -> bool {
        // SAFETY: key opened for writing; (field, value) pair terminated by NULL.
        unsafe {
            api!(RedisModule_HashSet)(
                self.ptr,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.0,
                value.ptr,
                ptr::null_mut::<c_void>(),
            ) >= 0
        }
    }
}

use std::ffi::c_void;

impl Drop for Key {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the handle was returned by OpenKey and is closed exactly once.
            unsafe { api!(RedisModule_CloseKey)(self.ptr) };
        }
    }
}

impl OwnedString {
    pub fn bytes(&self) -> &[u8] {
        string_bytes(self.ptr)
    }
}

/// A reply from [`Ctx::call`]; freed on drop.
pub struct CallReply(*mut raw::RedisModuleCallReply);

impl CallReply {
    fn kind(&self) -> isize {
        if self.0.is_null() {
            return raw::REDISMODULE_REPLY_UNKNOWN;
        }
        // SAFETY: live reply.
        unsafe { api!(RedisModule_CallReplyType)(self.0) as isize }
    }

    pub fn is_error(&self) -> bool {
        matches!(
            self.kind(),
            raw::REDISMODULE_REPLY_ERROR | raw::REDISMODULE_REPLY_UNKNOWN
        )
    }

    /// The error text of an error reply.
    pub fn error_text(&self) -> String {
        if self.0.is_null() {
            return "ERR internal call failed".to_owned();
        }
        String::from_utf8_lossy(self.bytes_of(self.0)).into_owned()
    }

    /// The string elements of an array reply (map replies are not requested).
    pub fn string_elements(&self) -> Vec<Vec<u8>> {
        if self.kind() != raw::REDISMODULE_REPLY_ARRAY {
            return Vec::new();
        }
        // SAFETY: live array reply; elements are owned by it and read before it is freed.
        unsafe {
            let len = api!(RedisModule_CallReplyLength)(self.0);
            (0..len)
                .map(|i| {
                    self.bytes_of(api!(RedisModule_CallReplyArrayElement)(self.0, i))
                        .to_vec()
                })
                .collect()
        }
    }

    fn bytes_of(&self, reply: *mut raw::RedisModuleCallReply) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: `reply` is this reply or one of its elements, alive while `self` is.
        unsafe {
            let p = api!(RedisModule_CallReplyStringPtr)(reply, &mut len);
            if p.is_null() || len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: reply returned by RedisModule_Call, freed once.
            unsafe { api!(RedisModule_FreeCallReply)(self.0) };
        }
    }
}

/// The context of an `INFO` callback.
pub struct InfoCtx(*mut raw::RedisModuleInfoCtx);

impl InfoCtx {
    pub fn new(ctx: *mut raw::RedisModuleInfoCtx) -> InfoCtx {
        InfoCtx(ctx)
    }

    /// Starts a section; the empty name makes the section the module's own (`INFO enc`).
    pub fn section(&self, name: &str) {
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: valid info context and C string.
        unsafe { api!(RedisModule_InfoAddSection)(self.0, name.as_ptr()) };
    }

    pub fn field_str(&self, name: &str, value: &str) {
        let name = CString::new(name).unwrap_or_default();
        let value = CString::new(value).unwrap_or_default();
        // SAFETY: valid info context and C strings; Redis copies them.
        unsafe { api!(RedisModule_InfoAddFieldCString)(self.0, name.as_ptr(), value.as_ptr()) };
    }

    pub fn field_u64(&self, name: &str, value: u64) {
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: valid info context and C string.
        unsafe { api!(RedisModule_InfoAddFieldULongLong)(self.0, name.as_ptr(), value) };
    }
}

impl Ctx {
    /// Registers the INFO callback.
    pub fn register_info(self, cb: raw::RedisModuleInfoFunc) -> bool {
        // SAFETY: valid context at load time; `cb` is a 'static function.
        unsafe { api!(RedisModule_RegisterInfoFunc)(self.0, cb) == raw::REDISMODULE_OK as c_int }
    }

    /// Creates a command and sets its documentation and key specs.
    pub fn create_command(
        self,
        name: &str,
        handler: raw::RedisModuleCmdFunc,
        flags: &str,
        acl_categories: &str,
        legacy_keys: (i32, i32, i32),
        info: &raw::RedisModuleCommandInfo,
    ) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad command name {name}"))?;
        let cflags = CString::new(flags).map_err(|_| format!("bad flags for {name}"))?;
        let (first, last, step) = legacy_keys;
        // SAFETY: valid context during OnLoad; name and flags are C strings Redis copies;
        // `handler` is a 'static extern "C" function.
        unsafe {
            if api!(RedisModule_CreateCommand)(
                self.0,
                cname.as_ptr(),
                handler,
                cflags.as_ptr(),
                first,
                last,
                step,
            ) != raw::REDISMODULE_OK as c_int
            {
                return Err(format!("cannot create command {name}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cname.as_ptr());
            if command.is_null() {
                return Err(format!("cannot find command {name} after creating it"));
            }
            if api!(RedisModule_SetCommandInfo)(command, info) != raw::REDISMODULE_OK as c_int {
                return Err(format!("the server refused the documentation of {name}"));
            }
            // Redis 7.0 has no way for a module to place its commands in ACL categories.
            if let Some(set_categories) =
                std::ptr::addr_of!(raw::RedisModule_SetCommandACLCategories).read()
            {
                let categories = CString::new(acl_categories)
                    .map_err(|_| format!("bad categories for {name}"))?;
                if set_categories(command, categories.as_ptr()) != raw::REDISMODULE_OK as c_int {
                    return Err(format!("the server refused the ACL categories of {name}"));
                }
            }
        }
        Ok(())
    }

    /// Registers a boolean module config `enc.<name>`.
    pub fn register_bool_config(
        self,
        name: &str,
        default: bool,
        get: raw::RedisModuleConfigGetBoolFunc,
        set: raw::RedisModuleConfigSetBoolFunc,
        privdata: *mut c_void,
    ) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad config name {name}"))?;
        // SAFETY: valid context during OnLoad; callbacks are 'static; `privdata` points to a
        // 'static value the callbacks know the type of.
        let status = unsafe {
            api!(RedisModule_RegisterBoolConfig)(
                self.0,
                cname.as_ptr(),
                c_int::from(default),
                raw::REDISMODULE_CONFIG_DEFAULT,
                get,
                set,
                None,
                privdata,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot register config enc.{name}"));
        }
        Ok(())
    }

    /// Applies `enc.*` lines from the server's configuration file.
    pub fn load_configs(self) -> bool {
        // SAFETY: valid context during OnLoad, after every config was registered.
        unsafe { api!(RedisModule_LoadConfigs)(self.0) == raw::REDISMODULE_OK as c_int }
    }
}

/// A Redis string kept by the module beyond one call (config values); not tied to a context.
pub struct HeldString(*mut raw::RedisModuleString);

// SAFETY: a held string is only created, read and freed on the main thread; the pointer value
// itself may be moved between statics.
unsafe impl Send for HeldString {}

impl HeldString {
    /// Copies `bytes` into a new string owned by the module.
    pub fn new(bytes: &[u8]) -> HeldString {
        // SAFETY: a null context creates a string the module owns and frees explicitly.
        HeldString(unsafe {
            api!(RedisModule_CreateString)(
                ptr::null_mut(),
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        })
    }

    pub fn as_ptr(&self) -> *mut raw::RedisModuleString {
        self.0
    }

    pub fn bytes(&self) -> &[u8] {
        string_bytes(self.0)
    }
}

impl Drop for HeldString {
    fn drop(&mut self) {
        // SAFETY: created with a null context by HeldString::new and freed once.
        unsafe { api!(RedisModule_FreeString)(ptr::null_mut(), self.0) }
    }
}

/// The bytes of a string Redis passed to a callback.
pub fn bytes_of<'a>(s: *mut raw::RedisModuleString) -> &'a [u8] {
    string_bytes(s)
}

impl Ctx {
    /// Registers a string module config `enc.<name>`.
    pub fn register_string_config(
        self,
        name: &str,
        default: &str,
        get: raw::RedisModuleConfigGetStringFunc,
        set: raw::RedisModuleConfigSetStringFunc,
        privdata: *mut c_void,
    ) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad config name {name}"))?;
        let cdefault = CString::new(default).map_err(|_| format!("bad default for {name}"))?;
        // SAFETY: valid context during OnLoad; callbacks are 'static functions.
        let status = unsafe {
            api!(RedisModule_RegisterStringConfig)(
                self.0,
                cname.as_ptr(),
                cdefault.as_ptr(),
                raw::REDISMODULE_CONFIG_DEFAULT,
                get,
                set,
                None,
                privdata,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot register config enc.{name}"));
        }
        Ok(())
    }

    /// Registers a numeric module config `enc.<name>` with values from 0 to `max`.
    pub fn register_numeric_config(
        self,
        name: &str,
        default: i64,
        max: i64,
        get: raw::RedisModuleConfigGetNumericFunc,
        set: raw::RedisModuleConfigSetNumericFunc,
        privdata: *mut c_void,
    ) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad config name {name}"))?;
        // SAFETY: valid context during OnLoad; callbacks are 'static; `privdata` points to a
        // 'static value the callbacks know the type of.
        let status = unsafe {
            api!(RedisModule_RegisterNumericConfig)(
                self.0,
                cname.as_ptr(),
                default,
                raw::REDISMODULE_CONFIG_DEFAULT,
                0,
                max,
                get,
                set,
                None,
                privdata,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot register config enc.{name}"));
        }
        Ok(())
    }
}

/// Sets the error message of a failed config change.
pub fn set_config_error(err: *mut *mut raw::RedisModuleString, msg: &str) {
    if err.is_null() {
        return;
    }
    // SAFETY: Redis passes a valid out-pointer and frees the string it receives.
    unsafe {
        *err = api!(RedisModule_CreateString)(
            ptr::null_mut(),
            msg.as_ptr().cast::<c_char>(),
            msg.len(),
        )
    };
}

/// Registers the module's data type, used only for its auxiliary RDB record.
pub fn create_aux_data_type(
    ctx: Ctx,
    name: &std::ffi::CStr,
    encver: c_int,
    aux_load: raw::RedisModuleTypeAuxLoadFunc,
    aux_save: raw::RedisModuleTypeAuxSaveFunc,
) -> bool {
    extern "C" fn no_load(_rdb: *mut raw::RedisModuleIO, _encver: c_int) -> *mut c_void {
        ptr::null_mut()
    }
    extern "C" fn no_save(_rdb: *mut raw::RedisModuleIO, _value: *mut c_void) {}
    extern "C" fn no_free(_value: *mut c_void) {}
    let mut methods = raw::RedisModuleTypeMethods {
        version: 2,
        rdb_load: Some(no_load),
        rdb_save: Some(no_save),
        aof_rewrite: None,
        mem_usage: None,
        digest: None,
        free: Some(no_free),
        aux_load,
        aux_save,
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as c_int,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    };
    // SAFETY: valid context during OnLoad; `methods` declares version 2, so the server reads
    // only the fields up to aux_save_triggers; the name is a 9-character C string.
    let t = unsafe { api!(RedisModule_CreateDataType)(ctx.0, name.as_ptr(), encver, &mut methods) };
    !t.is_null()
}

/// Writes one string to an RDB.
pub fn save_bytes(io: *mut raw::RedisModuleIO, bytes: &[u8]) {
    // SAFETY: `io` is the RDB handle of the current aux_save call.
    unsafe { api!(RedisModule_SaveStringBuffer)(io, bytes.as_ptr().cast::<c_char>(), bytes.len()) }
}

/// Reads one string from an RDB.
pub fn load_bytes(io: *mut raw::RedisModuleIO) -> Vec<u8> {
    let mut len = 0usize;
    // SAFETY: `io` is the RDB handle of the current aux_load call; the buffer is allocated by
    // Redis and freed with RedisModule_Free after copying.
    unsafe {
        let p = api!(RedisModule_LoadStringBuffer)(io, &mut len);
        if p.is_null() {
            return Vec::new();
        }
        let out = std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec();
        api!(RedisModule_Free)(p.cast::<c_void>());
        out
    }
}

/// Logs from a callback that has no context (RDB load and save).
pub fn log_without_context(level: Level, msg: &str) {
    Ctx(ptr::null_mut()).log(level, msg);
}

impl Ctx {
    /// Creates a container command (such as `ENC.KEYRING`) whose subcommands are added with
    /// [`Ctx::create_subcommand`].
    pub fn create_container(self, name: &str, summary: &std::ffi::CStr) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad command name {name}"))?;
        // SAFETY: valid context during OnLoad; a null handler makes a container command.
        unsafe {
            if api!(RedisModule_CreateCommand)(self.0, cname.as_ptr(), None, c"".as_ptr(), 0, 0, 0)
                != raw::REDISMODULE_OK as c_int
            {
                return Err(format!("cannot create command {name}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cname.as_ptr());
            if command.is_null() {
                return Err(format!("cannot find command {name}"));
            }
            let mut info: raw::RedisModuleCommandInfo = std::mem::zeroed();
            info.version = crate::command_info::info_version();
            info.summary = summary.as_ptr();
            info.since = c"0.1.0".as_ptr();
            info.arity = -2;
            api!(RedisModule_SetCommandInfo)(command, &info);
        }
        Ok(())
    }

    /// Adds subcommand `sub` to container `parent`, with its documentation.
    pub fn create_subcommand(
        self,
        parent: &str,
        sub: &str,
        handler: raw::RedisModuleCmdFunc,
        flags: &str,
        acl_categories: &str,
        info: &raw::RedisModuleCommandInfo,
    ) -> Result<(), String> {
        let cparent = CString::new(parent).map_err(|_| format!("bad command name {parent}"))?;
        let csub = CString::new(sub).map_err(|_| format!("bad subcommand {sub}"))?;
        let cfull =
            CString::new(format!("{parent}|{sub}")).map_err(|_| format!("bad subcommand {sub}"))?;
        let cflags = CString::new(flags).map_err(|_| format!("bad flags for {sub}"))?;
        // SAFETY: valid context during OnLoad; `parent` was created by create_container.
        unsafe {
            let parent_cmd = api!(RedisModule_GetCommand)(self.0, cparent.as_ptr());
            if parent_cmd.is_null()
                || api!(RedisModule_CreateSubcommand)(
                    parent_cmd,
                    csub.as_ptr(),
                    handler,
                    cflags.as_ptr(),
                    0,
                    0,
                    0,
                ) != raw::REDISMODULE_OK as c_int
            {
                return Err(format!("cannot create {parent} {sub}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cfull.as_ptr());
            if command.is_null()
                || api!(RedisModule_SetCommandInfo)(command, info) != raw::REDISMODULE_OK as c_int
            {
                return Err(format!("cannot document {parent} {sub}"));
            }
            if let Some(set_categories) =
                std::ptr::addr_of!(raw::RedisModule_SetCommandACLCategories).read()
            {
                let categories = CString::new(acl_categories)
                    .map_err(|_| format!("bad categories for {sub}"))?;
                if set_categories(command, categories.as_ptr()) != raw::REDISMODULE_OK as c_int {
                    return Err(format!(
                        "the server refused the ACL categories of {parent} {sub}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Starts a one-shot timer that calls `callback` after `ms` milliseconds.
    pub fn start_timer(self, ms: i64, callback: raw::RedisModuleTimerProc) -> u64 {
        // SAFETY: valid context; the callback is a 'static function; no private data.
        unsafe { api!(RedisModule_CreateTimer)(self.0, ms, callback, ptr::null_mut()) }
    }

    /// Stops a timer that has not fired yet.
    pub fn stop_timer(self, id: u64) {
        // SAFETY: stopping an unknown or fired timer is a harmless error.
        unsafe { api!(RedisModule_StopTimer)(self.0, id, ptr::null_mut()) };
    }

    /// Runs one step of a keyspace scan, giving every key name seen to `seen`. Returns false
    /// when the scan is complete.
    pub fn scan_step(self, cursor: &ScanCursor, seen: &mut Vec<Vec<u8>>) -> bool {
        extern "C" fn on_key(
            _ctx: *mut raw::RedisModuleCtx,
            name: *mut raw::RedisModuleString,
            _key: *mut raw::RedisModuleKey,
            privdata: *mut c_void,
        ) {
            // SAFETY: `privdata` is the `Vec` passed below, alive for the call to RM_Scan.
            let seen = unsafe { &mut *privdata.cast::<Vec<Vec<u8>>>() };
            seen.push(string_bytes(name).to_vec());
        }
        // SAFETY: valid context and cursor; the callback only copies key names.
        unsafe {
            api!(RedisModule_Scan)(
                self.0,
                cursor.0,
                Some(on_key),
                (seen as *mut Vec<Vec<u8>>).cast::<c_void>(),
            ) != 0
        }
    }
}

/// A keyspace scan cursor; destroyed on drop.
pub struct ScanCursor(*mut raw::RedisModuleScanCursor);

// SAFETY: the cursor is created, used and destroyed on the main thread only; it sits in a
// static between timer ticks.
unsafe impl Send for ScanCursor {}

impl ScanCursor {
    pub fn new() -> ScanCursor {
        // SAFETY: creates a cursor owned by this value.
        ScanCursor(unsafe { api!(RedisModule_ScanCursorCreate)() })
    }
}

impl Drop for ScanCursor {
    fn drop(&mut self) {
        // SAFETY: the cursor was created by ScanCursorCreate and is destroyed once.
        unsafe { api!(RedisModule_ScanCursorDestroy)(self.0) }
    }
}

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

/// The arguments of a command seen by a command filter.
pub struct FilterCtx(*mut raw::RedisModuleCommandFilterCtx);

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

    /// Whether this server is a replica, from the load context.
    pub fn is_replica(self) -> bool {
        // SAFETY: valid context.
        let flags = unsafe { api!(RedisModule_GetContextFlags)(self.0) };
        flags & raw::REDISMODULE_CTX_FLAGS_SLAVE as c_int != 0
    }

    /// Subscribes to replication role changes and loading start/end.
    pub fn subscribe_role_and_loading(
        self,
        role: raw::RedisModuleEventCallback,
        loading: raw::RedisModuleEventCallback,
    ) -> bool {
        // SAFETY: valid context during OnLoad; the event structs are the server's constants
        // (id and data version) and the callbacks are 'static.
        unsafe {
            let role_event = raw::RedisModuleEvent {
                id: raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
                dataver: 1,
            };
            let loading_event = raw::RedisModuleEvent {
                id: raw::REDISMODULE_EVENT_LOADING,
                dataver: 1,
            };
            api!(RedisModule_SubscribeToServerEvent)(self.0, role_event, role)
                == raw::REDISMODULE_OK as c_int
                && api!(RedisModule_SubscribeToServerEvent)(self.0, loading_event, loading)
                    == raw::REDISMODULE_OK as c_int
        }
    }
}
