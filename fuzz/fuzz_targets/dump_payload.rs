//! A `RESTORE` under a PHI key carries a `DUMP` payload from a client; the guard reads it to see
//! whether it holds an envelope. Reading never panics, and what it returns lies inside the
//! payload, after its length header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::policy::dump_string;

fuzz_target!(|data: &[u8]| {
    if let Some(value) = dump_string(data) {
        assert!(value.len() + 2 <= data.len());
        let start = value.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start >= 2 && start + value.len() <= data.len());
    }
});
