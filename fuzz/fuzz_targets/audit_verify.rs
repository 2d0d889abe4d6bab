//! An audit log is read back by `redis-enc audit verify` and, for its last line, by the server
//! when it resumes the chain. Neither panics on any bytes, and random bytes never verify as a
//! record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::audit::{verify, AuditKey, Chain};
use redis_enc_core::MasterKey;

fuzz_target!(|data: &[u8]| {
    let master =
        MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "fuzz").unwrap();
    let result = verify(&AuditKey::derive(&master), data, None).expect("reading memory");
    if !data.is_empty() {
        assert_eq!(result.good, 0, "a random line verified as a record");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let chain = Chain::resume(AuditKey::derive(&master), Some(text));
        assert!(chain.at_start(), "a random line was taken for the chain's last record");
    }
});
