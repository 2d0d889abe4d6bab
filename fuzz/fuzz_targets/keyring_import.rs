//! A keyring export arrives from outside (`ENC.KEYRING IMPORT`, an RDB's auxiliary record, the
//! replication stream). Importing never panics; whatever imports once imports again without
//! changing anything, and the store's own export imports back into it unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_enc_core::keystore::Locking;
use redis_enc_core::{KeyStore, MasterKey};

fuzz_target!(|data: &[u8]| {
    let master =
        MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "fuzz").unwrap();
    let mut store = KeyStore::new(&master, 0);
    for locking in [Locking::Refuse, Locking::Allow] {
        let _ = store.import(data, &[&master], &[&master], locking);
    }
    if store.import(data, &[&master], &[&master], Locking::Allow).is_ok() {
        let again = store
            .import(data, &[&master], &[&master], Locking::Allow)
            .expect("an import that worked works again");
        assert_eq!(again.versions_changed, 0);
        assert_eq!(again.keyrings_added, 0);
    }
    let own = store.export();
    let report = store
        .import(&own, &[&master], &[&master], Locking::Refuse)
        .expect("a store's own export imports");
    assert_eq!(report.versions_changed, 0);
});
