//! The callbacks Redis calls to get and set an `enc.*` config, and how a new value is taken.

use super::*;

pub(super) fn set_bool_value(config: &Config, new: bool) {
    if let Kind::Bool { value, .. } = config.kind {
        if value.swap(new, Relaxed) != new {
            changed(config.name, if new { "yes" } else { "no" });
        }
    }
}

pub(super) fn set_number_value(config: &Config, new: i64) {
    if let Kind::Number { value, .. } = config.kind {
        if value.swap(new, Relaxed) != new {
            changed(config.name, &new.to_string());
        }
    }
}

pub(super) fn set_text_value(config: &Config, text: &str) -> Result<(), String> {
    let Kind::Text { apply, .. } = config.kind else {
        return Err("not a text config".into());
    };
    let unchanged = TEXT_VALUES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|(n, v)| *n == config.name && v.bytes() == text.as_bytes());
    if unchanged {
        return Ok(());
    }
    apply(text)?;
    remember_text(config.name, text);
    changed(config.name, text);
    Ok(())
}

pub(super) extern "C" fn get_bool(_name: *const c_char, privdata: *mut c_void) -> c_int {
    run_callback("CONFIG GET", 0, || match config_of(privdata).kind {
        Kind::Bool { value, .. } => c_int::from(value.load(Relaxed)),
        _ => 0,
    })
}

pub(super) extern "C" fn set_bool(
    _name: *const c_char,
    new: c_int,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ffi::ERR, || {
        set_bool_value(config_of(privdata), new != 0);
        ffi::OK
    })
}

pub(super) extern "C" fn get_number(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    run_callback("CONFIG GET", 0, || match config_of(privdata).kind {
        Kind::Number { value, .. } => value.load(Relaxed),
        _ => 0,
    })
}

pub(super) extern "C" fn set_number(
    _name: *const c_char,
    new: c_longlong,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ffi::ERR, || {
        set_number_value(config_of(privdata), new);
        ffi::OK
    })
}

pub(super) extern "C" fn get_text(
    _name: *const c_char,
    privdata: *mut c_void,
) -> *mut raw::RedisModuleString {
    run_callback("CONFIG GET", std::ptr::null_mut(), || {
        let short = config_of(privdata).name;
        let values = TEXT_VALUES.lock().unwrap_or_else(|p| p.into_inner());
        values
            .iter()
            .find(|(n, _)| *n == short)
            .map_or(std::ptr::null_mut(), |(_, v)| v.as_ptr())
    })
}

pub(super) extern "C" fn set_text(
    _name: *const c_char,
    new: *mut raw::RedisModuleString,
    privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", ffi::ERR, || {
        let config = config_of(privdata);
        let result = std::str::from_utf8(ffi::bytes_of(new))
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|text| set_text_value(config, text));
        match result {
            Ok(()) => ffi::OK,
            Err(msg) => {
                ffi::set_config_error(err, &msg);
                ffi::ERR
            }
        }
    })
}
