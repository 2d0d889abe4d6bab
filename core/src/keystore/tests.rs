use super::*;

fn name(s: &str) -> KeyringName {
    KeyringName::parse(s.as_bytes()).unwrap()
}

const LOC: Location<'static> = Location::Value { key: b"k" };

#[test]
fn rotation_keeps_old_values_open_and_seals_with_the_new_primary() {
    let master = MasterKey::generate();
    let mut store = KeyStore::new(&master, 100);
    let default = KeyringName::default_name();
    let old = store
        .seal(&default, Flags::default(), &LOC, b"old")
        .unwrap();
    assert_eq!(store.rotate(&default, &master, 200).unwrap(), KeyVersion(2));
    let new = store
        .seal(&default, Flags::default(), &LOC, b"new")
        .unwrap();
    assert_eq!(
        store.open(&old, &LOC).unwrap().header.key_id.version,
        KeyVersion(1)
    );
    assert_eq!(
        store.open(&new, &LOC).unwrap().header.key_id.version,
        KeyVersion(2)
    );
    store.retire(&default, KeyVersion(1)).unwrap();
    assert_eq!(
        store.open(&old, &LOC).err(),
        Some(Error::KeyRetired {
            keyring: default.clone(),
            version: KeyVersion(1)
        })
    );
    assert!(store.open(&new, &LOC).is_ok());
    assert!(matches!(
        store.retire(&default, KeyVersion(2)),
        Err(Error::Refused(_))
    ));
    assert!(store
        .destroy_would_shred(&default, Some(KeyVersion(1)))
        .unwrap());
    store.mark_scanned(KeyringId(0), KeyVersion(2));
    assert!(!store
        .destroy_would_shred(&default, Some(KeyVersion(1)))
        .unwrap());
    store.destroy(&default, Some(KeyVersion(1))).unwrap();
    assert_eq!(
        store.open(&old, &LOC).err(),
        Some(Error::KeyDestroyed {
            keyring: default.clone(),
            version: KeyVersion(1)
        })
    );
}

#[test]
fn destroying_a_keyring_shreds_only_its_values() {
    let master = MasterKey::generate();
    let mut store = KeyStore::new(&master, 0);
    let t42 = name("t42");
    store.create(&t42, &master, 1).unwrap();
    assert_eq!(
        store.create(&t42, &master, 1).unwrap_err(),
        Error::KeyringExists
    );
    let a = store.seal(&t42, Flags::default(), &LOC, b"tenant").unwrap();
    let b = store
        .seal(
            &KeyringName::default_name(),
            Flags::default(),
            &LOC,
            b"shared",
        )
        .unwrap();
    store.destroy(&t42, None).unwrap();
    assert_eq!(
        store.open(&a, &LOC).err(),
        Some(Error::KeyringDestroyed(t42.clone()))
    );
    assert_eq!(
        store.open(&b, &LOC).unwrap().plaintext.as_slice(),
        b"shared"
    );
    assert_eq!(
        store.seal(&t42, Flags::default(), &LOC, b"x").unwrap_err(),
        Error::UnknownKeyring
    );
    assert!(matches!(
        store.destroy(&KeyringName::default_name(), None),
        Err(Error::Refused(_))
    ));
}

#[test]
fn export_import_carries_keys_to_another_server_with_the_same_master_key() {
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    let t = name("tenant-7");
    a.create(&t, &master, 1).unwrap();
    a.rotate(&t, &master, 2).unwrap();
    let sealed = a.seal(&t, Flags::default(), &LOC, b"moved").unwrap();
    let old_default = a
        .seal(&KeyringName::default_name(), Flags::default(), &LOC, b"d")
        .unwrap();

    let same_master = MasterKey::from_base64(&master.to_base64(), "test").unwrap();
    let mut b = KeyStore::new(&same_master, 0);
    let report = b
        .import(
            &a.export(),
            &[&same_master],
            &[&same_master],
            Locking::Allow,
        )
        .unwrap();
    assert_eq!(report.keyrings_added, 1);
    assert_eq!(report.versions_locked, 0);
    assert_eq!(
        b.open(&sealed, &LOC).unwrap().plaintext.as_slice(),
        b"moved"
    );
    assert_eq!(
        b.open(&old_default, &LOC).unwrap().plaintext.as_slice(),
        b"d"
    );
    // Importing twice changes nothing; states only move forward.
    assert_eq!(
        b.import(
            &a.export(),
            &[&same_master],
            &[&same_master],
            Locking::Allow
        )
        .unwrap()
        .versions_changed,
        0
    );
    a.retire(&t, KeyVersion(1)).unwrap();
    b.import(
        &a.export(),
        &[&same_master],
        &[&same_master],
        Locking::Allow,
    )
    .unwrap();
    assert_eq!(b.info(&t).unwrap().versions[0].state, VersionState::Retired);
    assert_eq!(b.info(&t).unwrap().primary, KeyVersion(2));
}

#[test]
fn a_wrong_master_key_leaves_keys_locked_and_fails_closed() {
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    a.rotate(&KeyringName::default_name(), &master, 1).unwrap();
    let sealed = a
        .seal(&KeyringName::default_name(), Flags::default(), &LOC, b"x")
        .unwrap();
    let wrong = MasterKey::generate();
    let mut b = KeyStore::new(&wrong, 0);
    let report = b
        .import(&a.export(), &[&wrong], &[&wrong], Locking::Allow)
        .unwrap();
    assert_eq!(
        report.versions_locked, 2,
        "v1 (derived from the other key) and v2"
    );
    assert!(matches!(
        b.open(&sealed, &LOC),
        Err(Error::KeyUnavailable { .. })
    ));
    // Its export still carries the wrapped key unchanged: nothing is lost.
    let mut c = KeyStore::new(&master, 0);
    c.import(&b.export(), &[&master], &[&master], Locking::Allow)
        .unwrap();
    assert_eq!(c.open(&sealed, &LOC).unwrap().plaintext.as_slice(), b"x");
}

#[test]
fn rewrap_moves_every_key_to_a_new_master_key() {
    let old = MasterKey::generate();
    let mut a = KeyStore::new(&old, 0);
    let v1 = a
        .seal(
            &KeyringName::default_name(),
            Flags::default(),
            &LOC,
            b"derived",
        )
        .unwrap();
    a.rotate(&KeyringName::default_name(), &old, 1).unwrap();
    let v2 = a
        .seal(
            &KeyringName::default_name(),
            Flags::default(),
            &LOC,
            b"wrapped",
        )
        .unwrap();
    let new = MasterKey::generate();
    assert_eq!(a.rewrap(&new).unwrap(), 2);
    let export = a.export();
    // Only the new master key is needed from now on.
    let mut b = KeyStore::new(&new, 0);
    b.import(&export, &[&new], &[&new], Locking::Allow).unwrap();
    assert_eq!(b.open(&v1, &LOC).unwrap().plaintext.as_slice(), b"derived");
    assert_eq!(b.open(&v2, &LOC).unwrap().plaintext.as_slice(), b"wrapped");
    assert!(b
        .info(&KeyringName::default_name())
        .unwrap()
        .versions
        .iter()
        .all(|v| v.wrapped_by == new.wrapper_id()));
}

#[test]
fn damaged_or_conflicting_exports_are_refused_whole() {
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    a.create(&name("x"), &master, 0).unwrap();
    let mut b = KeyStore::new(&master, 0);
    b.create(&name("y"), &master, 0).unwrap();
    assert_eq!(
        b.import(&a.export(), &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::KeyringConflict
    );
    assert_eq!(
        b.import(b"garbage", &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::InvalidExport
    );
    let mut blob = a.export();
    let shorter = blob.len() - 3;
    blob.truncate(shorter);
    assert_eq!(
        b.import(&blob, &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::InvalidExport
    );
    assert!(
        b.id_of(&name("x")).is_none(),
        "a refused import changes nothing"
    );
}

#[test]
fn unknown_keys_are_named() {
    let master = MasterKey::generate();
    let store = KeyStore::new(&master, 0);
    let mut sealed = store
        .seal(&KeyringName::default_name(), Flags::default(), &LOC, b"x")
        .unwrap();
    sealed[7] = 9;
    let err = store.open(&sealed, &LOC).err().unwrap();
    assert_eq!(
        err.to_string(),
        "data key v9 of keyring 'default' (id 0) is not held by this server"
    );
    sealed[5] = 4;
    let err = store.open(&sealed, &LOC).err().unwrap();
    assert_eq!(
        err.to_string(),
        "data key v9 of keyring id 4 is not held by this server"
    );
}

#[test]
fn an_import_never_trades_a_working_key_for_one_it_cannot_open() {
    let old = MasterKey::generate();
    let mut primary = KeyStore::new(&old, 0);
    primary
        .rotate(&KeyringName::default_name(), &old, 1)
        .unwrap();
    let sealed = primary
        .seal(&KeyringName::default_name(), Flags::default(), &LOC, b"v2")
        .unwrap();
    let same_old = MasterKey::from_base64(&old.to_base64(), "t").unwrap();
    let mut replica = KeyStore::new(&same_old, 0);
    replica
        .import(
            &primary.export(),
            &[&same_old],
            &[&same_old],
            Locking::Allow,
        )
        .unwrap();
    // The primary moves to a new master key; the replica still holds only the old one.
    let new = MasterKey::generate();
    primary.rewrap(&new).unwrap();
    let report = replica
        .import(
            &primary.export(),
            &[&same_old],
            &[&same_old],
            Locking::Allow,
        )
        .unwrap();
    assert_eq!(
        report.versions_locked, 0,
        "the replica keeps its working keys"
    );
    assert_eq!(
        replica.open(&sealed, &LOC).unwrap().plaintext.as_slice(),
        b"v2"
    );
}

#[test]
fn exports_with_a_dead_primary_or_without_default_are_refused() {
    let master = MasterKey::generate();
    let store = KeyStore::new(&master, 0);
    let text = String::from_utf8(store.export().to_vec()).unwrap();
    let retired = text.replace("\"state\":\"active\"", "\"state\":\"retired\"");
    let mut target = KeyStore::new(&master, 0);
    assert_eq!(
        target
            .import(retired.as_bytes(), &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::InvalidExport
    );
    let destroyed = text.replace("\"destroyed\":false", "\"destroyed\":true");
    assert_eq!(
        target
            .import(destroyed.as_bytes(), &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::InvalidExport
    );
    let extra_field = text.replace("\"kind\":\"derived\"", "\"kind\":\"derived\",\"x\":1");
    assert_eq!(
        target
            .import(
                extra_field.as_bytes(),
                &[&master],
                &[&master],
                Locking::Allow
            )
            .unwrap_err(),
        Error::InvalidExport
    );
}

#[test]
fn a_version_rotated_away_during_a_scan_is_not_cleared() {
    let master = MasterKey::generate();
    let mut store = KeyStore::new(&master, 0);
    let default = KeyringName::default_name();
    store.rotate(&default, &master, 1).unwrap();
    // A job starts while v2 is primary; v3 arrives before it ends.
    store.rotate(&default, &master, 2).unwrap();
    store.mark_scanned(KeyringId(0), KeyVersion(2));
    assert!(!store
        .destroy_would_shred(&default, Some(KeyVersion(1)))
        .unwrap());
    assert!(
        store
            .destroy_would_shred(&default, Some(KeyVersion(2)))
            .unwrap(),
        "v2 may still hold values"
    );
}

#[test]
fn two_independently_made_keys_for_one_version_conflict() {
    // Two fresh stores that each generated their own default v1 (as KMS-backed servers do).
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    let mut b = KeyStore::new(&master, 0);
    a.rotate(&KeyringName::default_name(), &master, 1).unwrap();
    b.rotate(&KeyringName::default_name(), &master, 1).unwrap();
    let sealed = b
        .seal(
            &KeyringName::default_name(),
            Flags::default(),
            &LOC,
            b"b's value",
        )
        .unwrap();
    assert_eq!(
        b.import(&a.export(), &[&master], &[&master], Locking::Allow)
            .unwrap_err(),
        Error::KeyMismatch
    );
    assert_eq!(
        b.open(&sealed, &LOC).unwrap().plaintext.as_slice(),
        b"b's value",
        "nothing changed"
    );
}

#[test]
fn an_import_that_would_lock_working_keys_is_refused_unless_allowed() {
    let ours = MasterKey::generate();
    let theirs = MasterKey::generate();
    let mut local = KeyStore::new(&ours, 100);
    let sealed = local
        .seal(&KeyringName::default_name(), Flags::default(), &LOC, b"v1")
        .unwrap();
    let mut other = KeyStore::new(&theirs, 50);
    other.create(&name("tenant"), &theirs, 60).unwrap();
    let export = other.export();

    // default v1 derived from another master key would stop opening here.
    let err = local
        .import(&export, &[&ours], &[&ours], Locking::Refuse)
        .unwrap_err();
    assert_eq!(
        err,
        Error::WouldLock {
            keyring: KeyringName::default_name(),
            version: KeyVersion(1)
        }
    );
    assert_eq!(local.list().len(), 1, "a refused import changes nothing");
    assert_eq!(
        local.open(&sealed, &LOC).unwrap().plaintext.as_slice(),
        b"v1"
    );

    // A new keyring whose keys cannot be unwrapped here is refused too.
    let mut only_tenant = KeyStore::new(&ours, 100);
    let mut theirs_with_ours_default = KeyStore::new(&ours, 100);
    theirs_with_ours_default
        .create(&name("tenant"), &theirs, 60)
        .unwrap();
    assert!(matches!(
        only_tenant.import(
            &theirs_with_ours_default.export(),
            &[&ours],
            &[&ours],
            Locking::Refuse
        ),
        Err(Error::WouldLock { .. })
    ));

    // Allowed, the keys are locked and fail closed.
    let report = local
        .import(&export, &[&ours], &[&ours], Locking::Allow)
        .unwrap();
    assert_eq!(report.versions_locked, 2);
    assert!(matches!(
        local.open(&sealed, &LOC),
        Err(Error::KeyUnavailable { .. })
    ));
}

#[test]
fn an_import_keeps_the_earliest_creation_time() {
    let master = MasterKey::generate();
    let original = KeyStore::new(&master, 1_000);
    let same = MasterKey::from_base64(&master.to_base64(), "t").unwrap();
    // A restart builds a fresh store (created now) and merges the persisted one into it.
    let mut restarted = KeyStore::new(&same, 9_000);
    restarted
        .import(&original.export(), &[&same], &[&same], Locking::Refuse)
        .unwrap();
    assert_eq!(
        restarted
            .info(&KeyringName::default_name())
            .unwrap()
            .versions[0]
            .created,
        1_000
    );
}

/// A wrapper that answers every unwrap with some other 32 bytes, as a broken proxy, a man in
/// the middle or a buggy KMS would.
struct LyingKms(MasterKey);

impl Wrapper for LyingKms {
    fn wrapper_id(&self) -> String {
        self.0.wrapper_id()
    }

    fn wrap(&self, key: &DataKey, context: &WrapContext<'_>) -> Result<Vec<u8>, Error> {
        self.0.wrap(key, context)
    }

    fn unwrap(&self, _wrapped: &[u8], context: &WrapContext<'_>) -> Result<DataKey, Error> {
        Ok(DataKey::generate(context.id))
    }
}

#[test]
fn a_key_that_does_not_match_its_check_value_is_not_believed() {
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    let t = name("tenant");
    a.create(&t, &master, 1).unwrap();
    let sealed = a.seal(&t, Flags::default(), &LOC, b"v").unwrap();
    let same = MasterKey::from_base64(&master.to_base64(), "t").unwrap();
    let liar = LyingKms(MasterKey::from_base64(&master.to_base64(), "t").unwrap());
    let mut b = KeyStore::new(&same, 0);
    let report = b
        .import(&a.export(), &[&same], &[&liar], Locking::Allow)
        .unwrap();
    assert_eq!(report.versions_locked, 1, "the wrong key is not taken");
    assert!(matches!(
        b.open(&sealed, &LOC),
        Err(Error::KeyUnavailable { .. })
    ));
    assert!(
        b.seal(&t, Flags::default(), &LOC, b"x").is_err(),
        "nothing seals under a guess"
    );
    // With an honest unwrapper the same export opens.
    let mut c = KeyStore::new(&same, 0);
    c.import(&a.export(), &[&same], &[&same], Locking::Refuse)
        .unwrap();
    assert_eq!(c.open(&sealed, &LOC).unwrap().plaintext.as_slice(), b"v");
}

#[test]
fn exports_naming_a_keyring_or_a_version_twice_are_refused() {
    let master = MasterKey::generate();
    let mut a = KeyStore::new(&master, 0);
    a.create(&name("x"), &master, 0).unwrap();
    let export = a.export();
    let magic = export.iter().position(|&b| b == b'{').unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&export[magic..]).unwrap();
    let twice = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut d = doc.clone();
        edit(&mut d);
        let mut target = KeyStore::new(&master, 0);
        target
            .import(
                &[&export[..magic], &serde_json::to_vec(&d).unwrap()[..]].concat(),
                &[&master],
                &[&master],
                Locking::Allow,
            )
            .unwrap_err()
    };
    let version_twice = twice(&|d| {
        let versions = d["keyrings"][0]["versions"].as_array_mut().unwrap();
        versions.push(versions[0].clone());
    });
    assert_eq!(version_twice, Error::InvalidExport);
    let ring_twice = twice(&|d| {
        let rings = d["keyrings"].as_array_mut().unwrap();
        rings.push(rings[1].clone());
    });
    assert_eq!(ring_twice, Error::InvalidExport);
    let name_twice = twice(&|d| {
        let rings = d["keyrings"].as_array_mut().unwrap();
        let mut copy = rings[1].clone();
        copy["id"] = serde_json::json!(77);
        rings.push(copy);
    });
    assert_eq!(name_twice, Error::InvalidExport);
}

/// The keyring export written by release 0.1 (`tests/data/keyring-export-v1.txt`, docs/FORMAT.md
/// §2.1): it imports under its master key, its wrapped keys unwrap and pass their check
/// values, and exporting again gives the same bytes.
#[test]
fn the_release_0_1_keyring_export_reads_and_writes_back_byte_for_byte() {
    let blob = include_bytes!("../../../tests/data/keyring-export-v1.txt");
    let master =
        MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "v").unwrap();
    let mut store = KeyStore::new(&master, u64::MAX);
    let report = store
        .import(blob, &[&master], &[&master], Locking::Refuse)
        .unwrap();
    assert_eq!(report.keyrings_added, 1);
    assert_eq!(report.versions_locked, 0);
    assert_eq!(store.export().as_slice(), blob.as_slice());
    let tenant = name("tenant-7");
    let sealed = store.seal(&tenant, Flags::default(), &LOC, b"t").unwrap();
    assert_eq!(
        store.open(&sealed, &LOC).unwrap().plaintext.as_slice(),
        b"t"
    );
    // Another master key cannot unwrap them: the wrapped keys are bound to it.
    let other = MasterKey::generate();
    let mut elsewhere = KeyStore::new(&other, u64::MAX);
    assert!(elsewhere
        .import(blob, &[&other], &[&other], Locking::Refuse)
        .is_err());
}

#[test]
fn a_held_version_seals_only_once_promoted_and_an_import_carries_both_steps() {
    let master = MasterKey::generate();
    let mut authority = KeyStore::new(&master, 100);
    let mut peer = KeyStore::new(&master, 100);
    let default = KeyringName::default_name();
    let id = authority.next_version(&default).unwrap();
    let made = changes::make_key(&master, &default, id).unwrap();
    let before = authority.epoch();
    assert_eq!(
        authority.add_made(made, 200, Sealing::WhenHeld).unwrap(),
        KeyVersion(2)
    );
    assert!(authority.epoch().number > before.number);
    let sealed = authority
        .seal(&default, Flags::default(), &LOC, b"v")
        .unwrap();
    let version =
        |env: &[u8], store: &KeyStore| store.open(env, &LOC).unwrap().header.key_id.version;
    assert_eq!(
        version(&sealed, &authority),
        KeyVersion(1),
        "held, not sealing"
    );
    assert_eq!(
        authority.held_for_promotion(),
        vec![(default.clone(), KeyVersion(2))]
    );
    peer.import(&authority.export(), &[&master], &[&master], Locking::Refuse)
        .unwrap();
    assert_eq!(peer.epoch(), authority.epoch());
    assert_eq!(peer.info(&default).unwrap().primary, KeyVersion(1));

    let held = authority.epoch();
    assert_eq!(
        authority.promote_held(),
        vec![(default.clone(), KeyVersion(2))]
    );
    assert!(
        authority.epoch().number > held.number,
        "promotion is a step"
    );
    assert!(authority.held_for_promotion().is_empty());
    let sealed = authority
        .seal(&default, Flags::default(), &LOC, b"v")
        .unwrap();
    assert_eq!(version(&sealed, &peer), KeyVersion(2), "the peer opens it");
    peer.import(&authority.export(), &[&master], &[&master], Locking::Refuse)
        .unwrap();
    assert_eq!(peer.epoch(), authority.epoch());
    assert_eq!(peer.info(&default).unwrap().primary, KeyVersion(2));
}

#[test]
fn a_retired_held_version_is_not_promoted() {
    let master = MasterKey::generate();
    let mut store = KeyStore::new(&master, 100);
    let default = KeyringName::default_name();
    let id = store.next_version(&default).unwrap();
    let made = changes::make_key(&master, &default, id).unwrap();
    store.add_made(made, 200, Sealing::WhenHeld).unwrap();
    store.retire(&default, KeyVersion(2)).unwrap();
    assert!(store.promote_held().is_empty());
    assert_eq!(store.info(&default).unwrap().primary, KeyVersion(1));
}

#[test]
fn primaries_in_use_count_seals_and_skip_a_rotation_under_way() {
    let master = MasterKey::generate();
    let mut store = KeyStore::new(&master, 100);
    let default = KeyringName::default_name();
    for _ in 0..3 {
        store.seal(&default, Flags::default(), &LOC, b"v").unwrap();
    }
    let used = store.primaries_in_use();
    assert_eq!(used.len(), 1);
    assert_eq!(
        (used[0].id.version, used[0].created, used[0].sealed),
        (KeyVersion(1), 100, 3)
    );
    let id = store.next_version(&default).unwrap();
    let made = changes::make_key(&master, &default, id).unwrap();
    store.add_made(made, 200, Sealing::WhenHeld).unwrap();
    assert!(
        store.primaries_in_use().is_empty(),
        "a version waits to be promoted"
    );
    store.promote_held();
    let used = store.primaries_in_use();
    assert_eq!(
        (used[0].id.version, used[0].created, used[0].sealed),
        (KeyVersion(2), 200, 0)
    );
}
