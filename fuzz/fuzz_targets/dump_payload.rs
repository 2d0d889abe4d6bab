//! A `RESTORE` under a PHI key carries a `DUMP` payload from a client; the guard reads it to see
//! whether it holds only envelopes (a string, or a hash's values). Reading never panics; a
//! string returned lies inside the payload, after its length header; a hash's pairs hold no
//! more than the payload could expand to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::policy::{dump_hash, dump_string};

fuzz_target!(|data: &[u8]| {
    if let Some(value) = dump_string(data) {
        assert!(value.len() + 2 <= data.len());
        let start = value.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start >= 2 && start + value.len() <= data.len());
    }
    if let Some(pairs) = dump_hash(data) {
        let held: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
        assert!(held <= data.len().saturating_mul(100) + 40 * pairs.len());
    }
});
