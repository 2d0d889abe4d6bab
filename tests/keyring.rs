//! Keyrings on a live server: rotation while clients work, re-encryption, retire, destroy,
//! master-key rotation with REWRAP, export/import between servers, sealing a plaintext dataset
//! in place, and the keyring surviving restarts, replicas and RDB copies.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use redis::Value;

fn get(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    bulk(&cmd(con, &format!("ENC.GET {key}")).unwrap())
        .unwrap_or_else(|| panic!("{key} has a value"))
}

fn status_field(status: &[Value], name: &str) -> i64 {
    int_field(status, name)
}

#[test]
fn rotate_and_reencrypt_while_a_client_reads_and_writes() {
    let server = Server::start();
    let mut con = server.client();
    for i in 0..3000 {
        cmd(&mut con, &format!("ENC.SET old:{i} value-{i}")).unwrap();
    }
    for i in 0..300 {
        cmd(
            &mut con,
            &format!("ENC.HSETFIELD oldh:{i} a alpha-{i} b beta-{i}"),
        )
        .unwrap();
        cmd(&mut con, &format!("HSET oldh:{i} plain p")).unwrap();
    }
    cmd(&mut con, "ENC.SET old:ttl kept EX 5000").unwrap();
    let under_v1 = bulk(&cmd(&mut con, "GET old:0").unwrap()).unwrap();
    assert_eq!(cmd(&mut con, "ENC.KEYRING ROTATE").unwrap(), Value::Int(2));
    cmd(&mut con, "ENC.SET new:1 fresh").unwrap();
    assert_eq!(key_version(&mut con, "old:1", None), 1);
    assert_eq!(key_version(&mut con, "new:1", None), 2);
    assert_eq!(get(&mut con, "old:1"), b"value-1");
    assert_eq!(get(&mut con, "new:1"), b"fresh");

    // A client keeps writing and reading back while the job runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, mut c) = (stop.clone(), server.client());
        std::thread::spawn(move || {
            let (mut ops, mut bad) = (0u64, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let k = ops % 500;
                let v = format!("w{ops}");
                if cmd(&mut c, &format!("ENC.SET old:{k} {v}")).is_err() {
                    bad.push(format!("SET old:{k}"));
                }
                match cmd(&mut c, &format!("ENC.GET old:{k}")) {
                    Ok(got) if bulk(&got).as_deref() == Some(v.as_bytes()) => {}
                    other => bad.push(format!("GET old:{k}: {other:?}")),
                }
                match cmd(&mut c, &format!("ENC.HGETFIELD oldh:{} a", k % 300)) {
                    Ok(Value::Array(a))
                        if bulk(&a[0]) == Some(format!("alpha-{}", k % 300).into_bytes()) => {}
                    other => bad.push(format!("HGETFIELD: {other:?}")),
                }
                ops += 1;
            }
            (ops, bad)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(cmd(&mut con, "ENC.REENCRYPT START").unwrap(), Value::Okay);
    let status = wait_reencrypt(&mut con);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    let (ops, bad) = writer.join().unwrap();
    assert!(ops > 100, "the client kept working ({ops} rounds)");
    assert!(
        bad.is_empty(),
        "wrong or failed replies during re-encryption: {:?}",
        &bad[..bad.len().min(5)]
    );
    assert!(
        status_field(&status, "values-resealed") >= 2500,
        "{status:?}"
    );
    assert_eq!(status_field(&status, "values-failed"), 0);
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(info.contains("enc_reencrypt_state:done"), "{info}");

    for i in 0..3000 {
        assert_eq!(
            key_version(&mut con, &format!("old:{i}"), None),
            2,
            "old:{i}"
        );
    }
    for i in 0..300 {
        assert_eq!(key_version(&mut con, &format!("oldh:{i}"), Some("a")), 2);
        assert_eq!(key_version(&mut con, &format!("oldh:{i}"), Some("b")), 2);
        assert_eq!(
            bulk(&cmd(&mut con, &format!("HGET oldh:{i} plain")).unwrap()).unwrap(),
            b"p"
        );
    }
    assert!(
        matches!(cmd(&mut con, "TTL old:ttl").unwrap(), Value::Int(t) if t > 4000),
        "TTL kept"
    );
    assert_eq!(get(&mut con, "old:ttl"), b"kept");

    assert_eq!(
        cmd(&mut con, "ENC.KEYRING RETIRE default 1").unwrap(),
        Value::Okay
    );
    assert_eq!(get(&mut con, "old:2999"), b"value-2999");
    run(&mut con, &[b"SET", b"straggler", &under_v1]).unwrap();
    let err = cmd(&mut con, "ENC.GET straggler").unwrap_err();
    assert_eq!(
        err,
        "ERR data key version 1 of keyring 'default' is retired and no longer opens values"
    );
    assert!(cmd(&mut con, "ENC.KEYRING RETIRE default 2")
        .unwrap_err()
        .contains("primary"));
}

fn fill(con: &mut redis::Connection) {
    cmd(con, "ENC.SET a:1 before-rotation").unwrap();
    cmd(con, "ENC.HSETFIELD h:1 f field-before").unwrap();
    cmd(con, "ENC.KEYRING ROTATE").unwrap();
    cmd(con, "ENC.SET a:2 after-rotation EX 10000").unwrap();
    cmd(con, "ENC.KEYRING CREATE tenant-7").unwrap();
    cmd(con, "ENC.SET t7:1 tenant-value KEYRING tenant-7").unwrap();
    cmd(con, "ENC.KEYRING ROTATE tenant-7").unwrap();
    cmd(con, "ENC.SET t7:2 tenant-value-2 KEYRING tenant-7").unwrap();
}

fn check(con: &mut redis::Connection, place: &str) {
    for (k, v) in [
        ("a:1", "before-rotation"),
        ("a:2", "after-rotation"),
        ("t7:1", "tenant-value"),
        ("t7:2", "tenant-value-2"),
    ] {
        let got = cmd(con, &format!("ENC.GET {k}"));
        assert_eq!(
            got.map(|g| bulk(&g)),
            Ok(Some(v.as_bytes().to_vec())),
            "{k} on {place}"
        );
    }
    assert_eq!(
        cmd(con, "ENC.HGETFIELD h:1 f").unwrap(),
        Value::Array(vec![Value::BulkString(b"field-before".to_vec())]),
        "h:1 on {place}"
    );
}

#[test]
fn the_keyring_survives_restarts_and_reaches_replicas_and_rdb_copies() {
    let aof = || {
        ["--appendonly", "yes", "--appendfsync", "always"]
            .map(String::from)
            .to_vec()
    };
    let primary = Server::with(Options {
        server_args: aof(),
        ..Options::default()
    });
    let early = replica_of(&primary);
    let mut con = primary.client();
    fill(&mut con);
    assert_eq!(cmd(&mut con, "WAIT 1 5000").unwrap(), Value::Int(1));
    check(
        &mut early.client(),
        "a replica attached before the rotation",
    );
    let late = replica_of(&primary);
    check(
        &mut late.client(),
        "a replica attached after it (full resync)",
    );

    // The re-encryption job's writes reach the replicas too.
    cmd(&mut con, "ENC.REENCRYPT START").unwrap();
    wait_reencrypt(&mut con);
    cmd(&mut con, "WAIT 2 5000").unwrap();
    let mut e = early.client();
    assert_eq!(
        key_version(&mut e, "a:1", None),
        2,
        "re-sealed value replicated"
    );
    assert_eq!(
        bulk(&cmd(&mut con, "GET a:1").unwrap()),
        bulk(&cmd(&mut e, "GET a:1").unwrap())
    );
    check(&mut e, "the early replica after re-encryption");

    cmd(&mut con, "SAVE").unwrap();
    let rdb = std::fs::read(primary.dir.path().join("dump.rdb")).unwrap();
    let key = std::fs::read(primary.key_path()).unwrap();
    drop((early, late));

    // Restart from the AOF.
    let dir = primary.stop();
    let restarted = Server::with(Options {
        server_args: aof(),
        dir: Some(dir.clone()),
        ..Options::default()
    });
    check(&mut restarted.client(), "a restart from the AOF");
    restarted.stop();

    // Restart from the RDB alone.
    std::fs::remove_dir_all(dir.path().join("appendonlydir")).unwrap();
    let restarted = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    check(&mut restarted.client(), "a restart from the RDB");

    // The RDB copied to a fresh server with the same master key.
    let fresh_dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(fresh_dir.path().join("dump.rdb"), rdb).unwrap();
    std::fs::write(fresh_dir.path().join("master.key"), key).unwrap();
    std::fs::set_permissions(
        fresh_dir.path().join("master.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let fresh = Server::with(Options {
        dir: Some(fresh_dir),
        ..Options::default()
    });
    check(&mut fresh.client(), "a fresh server restored from the RDB");
}

#[test]
fn rewrap_after_a_master_key_rotation_changes_no_value() {
    let server = Server::start();
    let mut con = server.client();
    fill(&mut con);
    cmd(&mut con, "SAVE").unwrap();
    let keys = ["a:1", "a:2", "t7:1", "t7:2"];
    let before: Vec<_> = keys
        .iter()
        .map(|k| bulk(&cmd(&mut con, &format!("GET {k}")).unwrap()))
        .collect();
    let old_key = server.key_path();
    let dir = server.stop();

    // New master key; the old one is available while the keyring is re-wrapped.
    let old_copy = dir.path().join("old-master.key");
    std::fs::rename(&old_key, &old_copy).unwrap();
    write_key(&old_key);
    let both = vec![
        "master-key".to_owned(),
        format!("file:{}", old_key.display()),
        "old-master-key".to_owned(),
        format!("file:{}", old_copy.display()),
    ];
    let server = Server::with(Options {
        module_args: Some(both),
        dir: Some(dir.clone()),
        ..Options::default()
    });
    let mut con = server.client();
    check(&mut con, "the server holding both master keys");
    assert_eq!(cmd(&mut con, "ENC.KEYRING REWRAP").unwrap(), Value::Int(4));
    let after: Vec<_> = keys
        .iter()
        .map(|k| bulk(&cmd(&mut con, &format!("GET {k}")).unwrap()))
        .collect();
    assert_eq!(before, after, "REWRAP changes no stored value");
    cmd(&mut con, "SAVE").unwrap();
    server.stop();

    // The old master key is gone: everything still opens.
    std::fs::remove_file(&old_copy).unwrap();
    let server = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let mut con = server.client();
    check(&mut con, "the server holding only the new master key");
    let after: Vec<_> = keys
        .iter()
        .map(|k| bulk(&cmd(&mut con, &format!("GET {k}")).unwrap()))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn destroying_a_keyring_shreds_its_values_only() {
    let server = Server::start();
    let mut con = server.client();
    fill(&mut con);
    let err = cmd(&mut con, "ENC.KEYRING DESTROY tenant-7").unwrap_err();
    assert!(err.contains("FORCE"), "{err}");
    assert_eq!(
        get(&mut con, "t7:1"),
        b"tenant-value",
        "refused without FORCE: nothing changed"
    );
    assert_eq!(
        cmd(&mut con, "ENC.KEYRING DESTROY tenant-7 FORCE").unwrap(),
        Value::Okay
    );
    for k in ["t7:1", "t7:2"] {
        let err = cmd(&mut con, &format!("ENC.GET {k}")).unwrap_err();
        assert_eq!(
            err,
            "ERR keyring 'tenant-7' was destroyed; the value cannot be recovered"
        );
    }
    assert_eq!(get(&mut con, "a:1"), b"before-rotation");
    assert_eq!(get(&mut con, "a:2"), b"after-rotation");
    cmd(&mut con, "SAVE").unwrap();
    let dir = server.stop();
    let server = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let mut con = server.client();
    assert!(
        cmd(&mut con, "ENC.GET t7:1")
            .unwrap_err()
            .contains("destroyed"),
        "still shredded after a restart"
    );
    assert_eq!(get(&mut con, "a:1"), b"before-rotation");
    assert!(cmd(&mut con, "ENC.KEYRING DESTROY default FORCE")
        .unwrap_err()
        .contains("cannot be destroyed"));
    // A version no re-encryption has cleared needs FORCE; after one, it does not.
    assert!(cmd(&mut con, "ENC.KEYRING DESTROY default 1")
        .unwrap_err()
        .contains("FORCE"));
    cmd(&mut con, "ENC.REENCRYPT START KEYRING default").unwrap();
    wait_reencrypt(&mut con);
    assert_eq!(
        cmd(&mut con, "ENC.KEYRING DESTROY default 1").unwrap(),
        Value::Okay
    );
    assert_eq!(
        get(&mut con, "a:1"),
        b"before-rotation",
        "re-sealed before its old key was destroyed"
    );
}

#[test]
fn export_and_import_let_another_server_open_restored_values() {
    let first = Server::start();
    let mut a = first.client();
    fill(&mut a);
    let Value::BulkString(blob) = cmd(&mut a, "ENC.KEYRING EXPORT").unwrap() else {
        panic!()
    };
    assert!(!contains(&blob, b"tenant-value"));

    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::copy(first.key_path(), dir.path().join("master.key")).unwrap();
    let second = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let mut b = second.client();
    cmd(&mut b, "ENC.SET local:1 its-own-data").unwrap();
    let report = run(&mut b, &[b"ENC.KEYRING", b"IMPORT", &blob]).unwrap();
    assert!(
        format!("{report:?}").contains("keyrings-added"),
        "{report:?}"
    );
    for k in ["a:1", "a:2", "t7:1", "t7:2", "h:1"] {
        let Value::BulkString(dump) = cmd(&mut a, &format!("DUMP {k}")).unwrap() else {
            panic!()
        };
        run(&mut b, &[b"RESTORE", k.as_bytes(), b"0", &dump]).unwrap();
    }
    check(&mut b, "the second server after IMPORT and RESTORE");
    assert_eq!(get(&mut b, "local:1"), b"its-own-data");
    assert!(run(&mut b, &[b"ENC.KEYRING", b"IMPORT", b"not an export"])
        .unwrap_err()
        .contains("not a redis-enc keyring export"));
}

#[test]
fn encrypt_plaintext_seals_an_existing_dataset_in_place() {
    let server = Server::start();
    let mut con = server.client();
    for i in 0..1000 {
        cmd(&mut con, &format!("SET user:{i} plain-{i}")).unwrap();
    }
    cmd(&mut con, "HSET user:h name Ada dob 1815").unwrap();
    cmd(&mut con, "SET other:1 untouched").unwrap();
    cmd(&mut con, "EXPIRE user:5 9000").unwrap();
    assert!(cmd(&mut con, "ENC.REENCRYPT START ENCRYPT-PLAINTEXT")
        .unwrap_err()
        .contains("MATCH"));
    assert_eq!(
        cmd(
            &mut con,
            "ENC.REENCRYPT START ENCRYPT-PLAINTEXT MATCH user:*"
        )
        .unwrap(),
        Value::Okay
    );
    let status = wait_reencrypt(&mut con);
    assert_eq!(status_field(&status, "values-resealed"), 1002);
    for i in 0..1000 {
        assert_eq!(
            get(&mut con, &format!("user:{i}")),
            format!("plain-{i}").as_bytes()
        );
        let raw = bulk(&cmd(&mut con, &format!("GET user:{i}")).unwrap()).unwrap();
        assert_eq!(&raw[..2], b"\xe5\x01", "GET returns an envelope");
    }
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD user:h name dob").unwrap(),
        Value::Array(vec![
            Value::BulkString(b"Ada".to_vec()),
            Value::BulkString(b"1815".to_vec())
        ])
    );
    assert!(matches!(cmd(&mut con, "TTL user:5").unwrap(), Value::Int(t) if t > 8000));
    assert_eq!(
        bulk(&cmd(&mut con, "GET other:1").unwrap()).unwrap(),
        b"untouched"
    );

    // KEYRING chooses the keyring the plain values are sealed under.
    cmd(&mut con, "ENC.KEYRING CREATE legacy").unwrap();
    cmd(&mut con, "SET legacy:1 old-plain").unwrap();
    cmd(
        &mut con,
        "ENC.REENCRYPT START ENCRYPT-PLAINTEXT MATCH legacy:* KEYRING legacy",
    )
    .unwrap();
    wait_reencrypt(&mut con);
    let Value::Array(flat) = cmd(&mut con, "ENC.INSPECT legacy:1").unwrap() else {
        panic!()
    };
    let pos = flat
        .iter()
        .position(|v| bulk(v).as_deref() == Some(b"keyring"))
        .unwrap();
    assert_eq!(bulk(&flat[pos + 1]).unwrap(), b"legacy");
    assert_eq!(get(&mut con, "legacy:1"), b"old-plain");
}
