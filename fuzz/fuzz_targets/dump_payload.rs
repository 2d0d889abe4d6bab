//! A `RESTORE` under a PHI key carries a `DUMP` payload from a client; the guard reads it to see
//! whether it holds only envelopes (a string, or a hash's values). Reading never panics; a
//! string returned lies inside the payload, after its length header; a hash's pairs hold no
//! more than the payload could expand to, and a hash accepted has at least one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::policy::{dump_hash_all, dump_string};

fuzz_target!(|data: &[u8]| {
    if let Some(value) = dump_string(data) {
        assert!(value.len() + 2 <= data.len());
        let start = value.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start >= 2 && start + value.len() <= data.len());
    }
    let mut pairs = 0usize;
    let all = dump_hash_all(data, |field, value| {
        pairs += 1;
        assert!(field.len() + value.len() <= data.len().saturating_mul(100) + 40);
        true
    });
    assert!(!all || pairs > 0);
});
