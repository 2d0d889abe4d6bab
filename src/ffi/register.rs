//! Registration at load time: commands and their documentation, configs, INFO, the
//! data type that carries the keyring record, and RDB reads and writes.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;

use redis_module::raw;

use super::{Ctx, Level};

/// The context of an `INFO` callback.
pub struct InfoCtx(pub(super) *mut raw::RedisModuleInfoCtx);

impl InfoCtx {
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

impl<'a> Ctx<'a> {
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
            ) != super::OK
            {
                return Err(format!("cannot create command {name}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cname.as_ptr());
            if command.is_null() {
                return Err(format!("cannot find command {name} after creating it"));
            }
            if api!(RedisModule_SetCommandInfo)(command, info) != super::OK {
                return Err(format!("the server refused the documentation of {name}"));
            }
            set_acl_categories(command, acl_categories, name)?;
        }
        Ok(())
    }

    /// Applies `enc.*` lines from the server's configuration file.
    pub fn load_configs(self) -> bool {
        // SAFETY: valid context during OnLoad, after every config was registered.
        unsafe { api!(RedisModule_LoadConfigs)(self.0) == super::OK }
    }
}

/// A Redis string kept by the module beyond one call (config values); not tied to a context.
pub(super) struct HeldString(pub(super) *mut raw::RedisModuleString);

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
}

impl Drop for HeldString {
    fn drop(&mut self) {
        // SAFETY: created with a null context by HeldString::new and freed once.
        unsafe { api!(RedisModule_FreeString)(ptr::null_mut(), self.0) }
    }
}

/// Puts a command in ACL categories where the server lets modules do so: Redis 7.0 has no
/// way for a module to place its commands in ACL categories; Redis 7.2+ and Valkey do.
///
/// # Safety
/// `command` must be a command handle returned by `RedisModule_GetCommand` during OnLoad.
pub(super) unsafe fn set_acl_categories(
    command: *mut raw::RedisModuleCommand,
    acl_categories: &str,
    what: &str,
) -> Result<(), String> {
    if acl_categories.is_empty() {
        return Ok(());
    }
    // SAFETY: reads an optional function pointer of the API table filled at load; the caller
    // passes a valid command handle.
    unsafe {
        if let Some(set_categories) =
            std::ptr::addr_of!(raw::RedisModule_SetCommandACLCategories).read()
        {
            let categories =
                CString::new(acl_categories).map_err(|_| format!("bad categories for {what}"))?;
            if set_categories(command, categories.as_ptr()) != super::OK {
                return Err(format!("the server refused the ACL categories of {what}"));
            }
        }
    }
    Ok(())
}

/// Sets the error message of a failed config change.
pub(super) fn set_config_error(err: *mut *mut raw::RedisModuleString, msg: &str) {
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
pub(super) fn create_aux_data_type(
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
        aux_save_triggers: super::AUX_BEFORE_RDB,
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

/// Logs from a callback that has no context (RDB load and save).
pub fn log_without_context(level: Level, msg: &str) {
    Ctx::new(ptr::null_mut()).log(level, msg);
}
