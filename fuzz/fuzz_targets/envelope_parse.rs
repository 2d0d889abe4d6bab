//! Envelope parsing takes untrusted bytes (anything stored under a key). Parsing never panics,
//! parse → serialize gives back the input, and opening never panics or succeeds on garbage.
//!
//! Run: `cargo +nightly fuzz run envelope_parse` from the repository root (on a stable toolchain,
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run envelope_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::{Envelope, KeyStore, Location, MasterKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        let bytes = env.to_vec();
        assert_eq!(bytes, data);
        let again = Envelope::parse(&bytes).expect("a serialized envelope parses");
        assert_eq!(again.header(), env.header());
        assert_eq!(again.plaintext_len(), env.plaintext_len());
    }
    thread_local! {
        static RING: KeyStore = KeyStore::new(
            &MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "fuzz").unwrap(),
            0,
        );
    }
    RING.with(|ring| {
        // Random bytes essentially never authenticate; a success here would be a forgery.
        assert!(ring.open(data, &Location::Value { key: b"k" }).is_err());
    });
});
