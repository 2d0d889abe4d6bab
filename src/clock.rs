//! The module's one clock: Unix time as the server reads it (`RedisModule_Milliseconds`), so
//! that a TTL the module computes and the expiry the server applies agree.

use crate::ffi;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    ffi::now_ms()
}

/// Whole seconds since the Unix epoch (0 for a clock set before 1970).
pub fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}
