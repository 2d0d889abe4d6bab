//! Module configs, typed: the rest of the module registers each `enc.*` config with its index
//! in its own table and one set of plain functions ([`ConfigHooks`]); the `extern "C"`
//! callbacks below are what Redis calls for `CONFIG GET` and `CONFIG SET`.

use std::ffi::{c_char, c_int, c_longlong, c_void, CString};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use redis_module::raw;

use super::entry::run_callback;
use super::register::HeldString;
use super::{string_bytes, Ctx, ERR, OK};

/// What `CONFIG GET` and `CONFIG SET` do for the module's configs. Each config was registered
/// with its index in the caller's table, which the functions receive.
pub struct ConfigHooks {
    pub get_bool: fn(usize) -> bool,
    pub set_bool: fn(usize, bool),
    pub get_number: fn(usize) -> i64,
    pub set_number: fn(usize, i64),
    pub get_text: fn(usize) -> String,
    /// Takes a new text value, or says why not.
    pub set_text: fn(usize, &str) -> Result<(), String>,
}

static CONFIG_HOOKS: OnceLock<&'static ConfigHooks> = OnceLock::new();

/// The strings last handed to `CONFIG GET` for text configs, by index: Redis copies a value
/// when it gets it, and the module frees it when the same config is read again.
static SHOWN: Mutex<Vec<(usize, HeldString)>> = Mutex::new(Vec::new());

fn hooks() -> Option<&'static ConfigHooks> {
    CONFIG_HOOKS.get().copied()
}

extern "C" fn get_bool(_name: *const c_char, index: *mut c_void) -> c_int {
    run_callback("CONFIG GET", 0, || {
        hooks().map_or(0, |h| c_int::from((h.get_bool)(index.addr())))
    })
}

extern "C" fn set_bool(
    _name: *const c_char,
    new: c_int,
    index: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ERR, || {
        hooks().map_or(ERR, |h| {
            (h.set_bool)(index.addr(), new != 0);
            OK
        })
    })
}

extern "C" fn get_number(_name: *const c_char, index: *mut c_void) -> c_longlong {
    run_callback("CONFIG GET", 0, || {
        hooks().map_or(0, |h| (h.get_number)(index.addr()))
    })
}

extern "C" fn set_number(
    _name: *const c_char,
    new: c_longlong,
    index: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ERR, || {
        hooks().map_or(ERR, |h| {
            (h.set_number)(index.addr(), new);
            OK
        })
    })
}

extern "C" fn get_text(_name: *const c_char, index: *mut c_void) -> *mut raw::RedisModuleString {
    run_callback("CONFIG GET", ptr::null_mut(), || {
        let Some(h) = hooks() else {
            return ptr::null_mut();
        };
        let index = index.addr();
        let held = HeldString::new((h.get_text)(index).as_bytes());
        let shown = held.as_ptr();
        let mut all = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(i, _)| *i != index);
        all.push((index, held));
        shown
    })
}

extern "C" fn set_text(
    _name: *const c_char,
    new: *mut raw::RedisModuleString,
    index: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ERR, || {
        let Some(h) = hooks() else { return ERR };
        let result = std::str::from_utf8(string_bytes(new))
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|text| (h.set_text)(index.addr(), text));
        match result {
            Ok(()) => OK,
            Err(msg) => {
                super::register::set_config_error(err, &msg);
                ERR
            }
        }
    })
}

/// A config to register: its name without `enc.`, whether it is protected, and its type with
/// the value it starts with.
pub enum ConfigKind<'v> {
    Bool(bool),
    /// Starting value and maximum (the minimum is 0).
    Number(i64, i64),
    Text(&'v str),
}

impl<'a> Ctx<'a> {
    /// Registers config `enc.<name>` as entry `index` of the caller's table; `hooks` answer
    /// `CONFIG GET` and `CONFIG SET` for every config.
    pub fn register_config(
        self,
        name: &str,
        index: usize,
        protected: bool,
        kind: ConfigKind,
        hooks: &'static ConfigHooks,
    ) -> Result<(), String> {
        // Every config shares one table of hooks.
        if !ptr::eq(*CONFIG_HOOKS.get_or_init(|| hooks), hooks) {
            return Err(format!("config enc.{name} registered with other hooks"));
        }
        let cname = CString::new(name).map_err(|_| format!("bad config name {name}"))?;
        let flags = if protected {
            raw::REDISMODULE_CONFIG_PROTECTED
        } else {
            raw::REDISMODULE_CONFIG_DEFAULT
        };
        let privdata = ptr::without_provenance_mut::<c_void>(index);
        // SAFETY: valid context during OnLoad; name and default are C strings Redis copies; the
        // callbacks are 'static; `privdata` is an index the callbacks look up, never
        // dereferenced.
        let status = unsafe {
            match kind {
                ConfigKind::Bool(initial) => api!(RedisModule_RegisterBoolConfig)(
                    self.0,
                    cname.as_ptr(),
                    c_int::from(initial),
                    flags as _,
                    Some(get_bool),
                    Some(set_bool),
                    None,
                    privdata,
                ),
                ConfigKind::Number(initial, max) => api!(RedisModule_RegisterNumericConfig)(
                    self.0,
                    cname.as_ptr(),
                    initial,
                    flags as _,
                    0,
                    max,
                    Some(get_number),
                    Some(set_number),
                    None,
                    privdata,
                ),
                ConfigKind::Text(initial) => {
                    let cdefault =
                        CString::new(initial).map_err(|_| format!("bad default for {name}"))?;
                    api!(RedisModule_RegisterStringConfig)(
                        self.0,
                        cname.as_ptr(),
                        cdefault.as_ptr(),
                        flags as _,
                        Some(get_text),
                        Some(set_text),
                        None,
                        privdata,
                    )
                }
            }
        };
        if status != OK {
            return Err(format!("cannot register config enc.{name}"));
        }
        Ok(())
    }
}
