//! A backup file is untrusted input to `verify` and `restore`. Reading one never panics, and
//! random bytes never restore.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::backup;
use redis_enc_core::wrap::Wrapper;
use redis_enc_core::MasterKey;

fuzz_target!(|data: &[u8]| {
    let master =
        MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "fuzz").unwrap();
    let _ = backup::read_header(&mut &data[..]);
    let mut out = Vec::new();
    let wrappers: [&dyn Wrapper; 1] = [&master];
    assert!(backup::restore(data, &mut out, &wrappers, |_| {}).is_err());
});
