//! The options of `ENC.SET` (and of `SET`, which the guard reads) come from clients. Parsing
//! never panics, and what it accepts means what `SET` means: a relative expiry is positive and
//! does not overflow the clock.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::setopts::{Expiry, SetOptions};

fuzz_target!(|data: &[u8]| {
    let words: Vec<&[u8]> = data.split(|b| *b == b' ').collect();
    let now = 1_800_000_000_000;
    if let Ok(opts) = SetOptions::parse(&words, now) {
        match opts.expiry {
            Expiry::In(ms) => assert!(ms > 0 && ms.checked_add(now).is_some()),
            Expiry::At(at) => assert!(at > 0),
            Expiry::Keep | Expiry::Clear => {}
        }
    }
});
