//! What a server sends the backup tool in reply to SYNC is untrusted input. Reading it never
//! panics, never holds more than it was sent, and never writes more than it was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::transfer;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let mut reader = data;
    if let Ok(n) = transfer::read_sync_reply(&mut reader, &mut out, |_| {}) {
        assert_eq!(n as usize, out.len());
        assert!(out.len() <= data.len());
    }
    let _ = transfer::reply_line(&mut &data[..]);
});
