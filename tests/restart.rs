//! Values survive restarts from RDB and AOF; a wrong master key fails closed and damages
//! nothing; a bad master key stops the server from starting, with the reason in its log
//! (DESIGN.md invariant 4).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::*;

const UNAVAILABLE: &str =
    "ERR data key version 1 of keyring 'default' is not available: the loaded master key is not the one that protects it";

fn fill(con: &mut redis::Connection) {
    cmd(con, "ENC.SET s:1 first").unwrap();
    cmd(con, "ENC.SET s:2 second PHI EX 1000").unwrap();
    cmd(con, "ENC.MSET s:3 third s:4 fourth").unwrap();
    cmd(con, "ENC.HSETFIELD h:1 a alpha b beta").unwrap();
}

fn check(con: &mut redis::Connection) {
    for (k, v) in [
        ("s:1", "first"),
        ("s:2", "second"),
        ("s:3", "third"),
        ("s:4", "fourth"),
    ] {
        assert_eq!(
            bulk(&cmd(con, &format!("ENC.GET {k}")).unwrap()).unwrap(),
            v.as_bytes(),
            "{k}"
        );
    }
    assert_eq!(
        cmd(con, "ENC.HGETFIELD h:1 a b").unwrap(),
        redis::Value::Array(vec![
            redis::Value::BulkString(b"alpha".to_vec()),
            redis::Value::BulkString(b"beta".to_vec())
        ])
    );
}

fn snapshot(con: &mut redis::Connection) -> Vec<Option<Vec<u8>>> {
    ["s:1", "s:2", "s:3", "s:4"]
        .iter()
        .map(|k| bulk(&cmd(con, &format!("GET {k}")).unwrap()))
        .collect()
}

#[test]
fn restart_from_rdb() {
    let server = Server::start();
    fill(&mut server.client());
    cmd(&mut server.client(), "SAVE").unwrap();
    let dir = server.stop();
    let server = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    check(&mut server.client());
}

#[test]
fn restart_from_aof_and_with_a_wrong_then_the_right_master_key() {
    let aof = || {
        ["--appendonly", "yes", "--appendfsync", "always"]
            .map(String::from)
            .to_vec()
    };
    let server = Server::with(Options {
        server_args: aof(),
        ..Options::default()
    });
    fill(&mut server.client());
    let before = snapshot(&mut server.client());
    let key_path = server.key_path();
    let dir = server.stop();

    let server = Server::with(Options {
        server_args: aof(),
        dir: Some(dir.clone()),
        ..Options::default()
    });
    check(&mut server.client());
    server.stop();

    // A different (valid) master key: the server starts, every read fails closed.
    let right_key = std::fs::read(&key_path).unwrap();
    std::fs::remove_file(&key_path).unwrap();
    write_key(&key_path);
    let server = Server::with(Options {
        server_args: aof(),
        dir: Some(dir.clone()),
        ..Options::default()
    });
    let mut con = server.client();
    for k in ["s:1", "s:2", "s:3", "s:4"] {
        let err = cmd(&mut con, &format!("ENC.GET {k}")).unwrap_err();
        assert_eq!(err, UNAVAILABLE, "{k}");
    }
    assert_eq!(
        cmd(&mut con, "ENC.SET s:5 new-value").unwrap_err(),
        UNAVAILABLE,
        "no write under a key it cannot hold"
    );
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h:1 a").unwrap_err(),
        UNAVAILABLE
    );
    assert_eq!(
        snapshot(&mut con),
        before,
        "failed reads change no stored byte"
    );
    cmd(&mut con, "BGREWRITEAOF").unwrap();
    wait_until("the AOF rewrite", || {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut con)
            .unwrap();
        info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0")
    });
    server.stop();

    // The right key again: everything opens.
    std::fs::write(&key_path, right_key).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = Server::with(Options {
        server_args: aof(),
        dir: Some(dir),
        ..Options::default()
    });
    check(&mut server.client());
}

fn refused(module_args: Vec<String>, setup: impl FnOnce(&std::path::Path)) -> String {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    setup(dir.path());
    let log = start_fails(Options {
        module_args: Some(module_args),
        dir: Some(dir),
        ..Options::default()
    });
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("redis-enc: refusing to load"))
        .collect();
    assert_eq!(lines.len(), 1, "one clear line in the log:\n{log}");
    lines[0].to_owned()
}

fn file_arg(dir: &std::path::Path, name: &str) -> Vec<String> {
    vec![
        "master-key".into(),
        format!("file:{}", dir.join(name).display()),
    ]
}

#[test]
fn a_bad_master_key_stops_the_server_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let line = refused(file_arg(&d, "absent.key"), |_| {});
    assert!(
        line.contains("cannot read key file") && line.contains("absent.key"),
        "{line}"
    );

    let line = refused(file_arg(&d, "a-directory"), |dir| {
        std::fs::create_dir(d.join("a-directory")).unwrap();
        let _ = dir;
    });
    assert!(line.contains("not a regular file"), "{line}");

    let write = |name: &str, text: &str, mode: u32| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("malformed.key", "this is not base64!\n", 0o600);
    let line = refused(file_arg(&d, "malformed.key"), |_| {});
    assert!(line.contains("does not hold a key"), "{line}");

    write("short.key", "AAECAwQFBgcICQoLDA0ODw==\n", 0o600);
    let line = refused(file_arg(&d, "short.key"), |_| {});
    assert!(
        line.contains("holds 16 bytes") && line.contains("exactly 32 bytes"),
        "{line}"
    );

    write_key(&d.join("group.key"));
    std::fs::set_permissions(d.join("group.key"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let line = refused(file_arg(&d, "group.key"), |_| {});
    assert!(
        line.contains("readable by group or others (mode 0640)") && line.contains("chmod 600"),
        "{line}"
    );

    let line = refused(
        vec![
            "master-key".into(),
            "env:REDIS_ENC_TEST_UNSET_VARIABLE".into(),
        ],
        |_| {},
    );
    assert!(
        line.contains("REDIS_ENC_TEST_UNSET_VARIABLE is not set"),
        "{line}"
    );

    let line = refused(vec!["master-key".into(), "exec:/bin/false".into()], |_| {});
    assert!(line.contains("exited with status 1"), "{line}");

    let line = refused(vec!["master-key".into(), "vault:whatever".into()], |_| {});
    assert!(
        line.contains("unknown master key provider 'vault'"),
        "{line}"
    );

    let line = refused(vec![], |_| {});
    assert!(line.contains("no master key configured"), "{line}");

    let line = refused(
        vec![
            "master-key".into(),
            "env:X".into(),
            "no-such-option".into(),
            "1".into(),
        ],
        |_| {},
    );
    assert!(
        line.contains("unknown module argument 'no-such-option'"),
        "{line}"
    );
}

#[test]
fn env_and_exec_providers_load_the_key() {
    let key = {
        let dir = tempfile::tempdir().unwrap();
        write_key(&dir.path().join("k"))
    };
    let server = Server::with(Options {
        module_args: Some(vec!["master-key".into(), "env:REDIS_ENC_TEST_KEY".into()]),
        env: vec![("REDIS_ENC_TEST_KEY".into(), key.clone())],
        ..Options::default()
    });
    let mut con = server.client();
    cmd(&mut con, "ENC.SET k v").unwrap();
    let sealed = bulk(&cmd(&mut con, "GET k").unwrap()).unwrap();
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(info.contains("enc_provider:env"), "{info}");
    assert!(!info.contains(&key), "INFO never shows the key");
    drop(server);

    // A private directory: an exec: program may not sit where others can replace it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = dir.path().join("get-key.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho {key}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let server = Server::with(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("exec:{}", script.display()),
        ]),
        ..Options::default()
    });
    let mut con = server.client();
    run(&mut con, &[b"SET", b"k", &sealed]).unwrap();
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET k").unwrap()).unwrap(),
        b"v",
        "same key through exec:"
    );
}

/// The promise: on a server without a module API function the module calls, the load is
/// refused with a line naming it. (Debug builds can hide functions to show this.)
#[test]
fn a_server_without_a_required_api_function_refuses_the_load_naming_it() {
    let log = start_fails(Options {
        env: vec![(
            "REDIS_ENC_HIDE_API".into(),
            "RedisModule_Scan,RedisModule_HashSet".into(),
        )],
        ..Options::default()
    });
    let line = log
        .lines()
        .find(|l| l.contains("redis-enc: refusing to load"))
        .unwrap_or_default();
    assert!(
        line.contains("lacks module API functions RedisModule_HashSet, RedisModule_Scan"),
        "{log}"
    );
}
