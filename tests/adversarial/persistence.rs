//! Keyrings survive every persistence path: AOF rewrites with and without the RDB preamble,
//! `DEBUG RELOAD`, `SAVE`, `BGSAVE`, turning the AOF on at run time, replica full syncs and
//! restarts. A lost keyring is lost data: values under it never open again.

use std::sync::Arc;

use redis::{Connection, Value};

use crate::common::*;

/// A keyring `tenant` and a rotated `default`, with a value under each newest version and one
/// under `default` v1.
fn rotate_and_fill(con: &mut Connection) {
    cmd(con, "ENC.SET old v1-value").unwrap();
    cmd(con, "ENC.KEYRING CREATE tenant").unwrap();
    assert_eq!(cmd(con, "ENC.KEYRING ROTATE").unwrap(), Value::Int(2));
    assert_eq!(
        cmd(con, "ENC.KEYRING ROTATE tenant").unwrap(),
        Value::Int(2)
    );
    cmd(con, "ENC.SET new v2-value").unwrap();
    cmd(con, "ENC.SET t tenant-value KEYRING tenant").unwrap();
    cmd(con, "ENC.HSETFIELD h f field-value").unwrap();
}

fn check(con: &mut Connection, place: &str) {
    for (line, want) in [
        ("ENC.GET old", &b"v1-value"[..]),
        ("ENC.GET new", b"v2-value"),
        ("ENC.GET t", b"tenant-value"),
    ] {
        assert_eq!(
            cmd(con, line).map(|v| bulk(&v)),
            Ok(Some(want.to_vec())),
            "{line} after {place}"
        );
    }
    assert_eq!(
        cmd(con, "ENC.HGETFIELD h f"),
        Ok(Value::Array(vec![Value::BulkString(
            b"field-value".to_vec()
        )])),
        "ENC.HGETFIELD after {place}"
    );
}

/// Rewrites the AOF, after any rewrite the server started by itself.
fn rewrite_aof(con: &mut Connection) {
    wait_persistence(con);
    cmd(con, "BGREWRITEAOF").unwrap();
    wait_persistence(con);
}

fn start(dir: Option<Arc<tempfile::TempDir>>, args: &[&str]) -> Server {
    Server::with(Options {
        server_args: args.iter().map(|s| s.to_string()).collect(),
        dir,
        ..Options::default()
    })
}

fn aof(preamble: &str) -> Vec<&str> {
    vec![
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        preamble,
    ]
}

/// The promise: a rewritten AOF holds every keyring, with or without the RDB preamble, also
/// after a second rewrite and a write in between.
#[test]
fn keyrings_survive_aof_rewrites_with_and_without_the_preamble() {
    for preamble in ["no", "yes"] {
        let server = start(None, &aof(preamble));
        let mut con = server.client();
        rotate_and_fill(&mut con);
        rewrite_aof(&mut con);
        cmd(&mut con, "ENC.SET after-rewrite x").unwrap();
        let dir = server.stop();

        let server = start(Some(dir), &aof(preamble));
        let mut con = server.client();
        check(
            &mut con,
            &format!("a rewrite (preamble {preamble}) and a restart"),
        );
        rewrite_aof(&mut con);
        let dir = server.stop();

        let server = start(Some(dir), &aof(preamble));
        check(
            &mut server.client(),
            &format!("two rewrites (preamble {preamble}) and two restarts"),
        );
    }
}

/// The promise: turning the AOF on at run time (which starts with a rewrite) keeps the
/// keyrings in it.
#[test]
fn keyrings_survive_turning_the_aof_on_at_run_time() {
    let server = start(None, &["--aof-use-rdb-preamble", "no"]);
    let mut con = server.client();
    rotate_and_fill(&mut con);
    cmd(&mut con, "CONFIG SET appendonly yes").unwrap();
    wait_persistence(&mut con);
    wait_until("the AOF to be on", || {
        info_field(&mut con, "persistence", "aof_enabled").as_deref() == Some("1")
    });
    let dir = server.stop();
    let server = start(Some(dir), &aof("no"));
    check(
        &mut server.client(),
        "CONFIG SET appendonly yes and a restart",
    );
}

/// The promise: snapshots (`SAVE`, `BGSAVE`, `DEBUG RELOAD`) carry the keyrings, and the
/// creation time of `default` v1 is the time it was made, not the time of the last start.
#[test]
fn keyrings_survive_snapshots_and_debug_reload() {
    let server = start(None, &["--enable-debug-command", "yes"]);
    let mut con = server.client();
    let created = |con: &mut Connection| {
        let Value::Array(info) = cmd(con, "ENC.KEYRING INFO default").unwrap() else {
            panic!()
        };
        let Value::Array(versions) = &info[7] else {
            panic!("{info:?}")
        };
        let Value::Array(v1) = &versions[0] else {
            panic!()
        };
        v1[7].clone()
    };
    let first_created = created(&mut con);
    rotate_and_fill(&mut con);
    cmd(&mut con, "DEBUG RELOAD").unwrap();
    check(&mut con, "DEBUG RELOAD");
    cmd(&mut con, "SAVE").unwrap();
    let dir = server.stop();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let server = start(Some(dir), &[]);
    let mut con = server.client();
    check(&mut con, "SAVE and a restart");
    assert_eq!(
        created(&mut con),
        first_created,
        "default v1 keeps its creation time across restarts"
    );
    cmd(&mut con, "ENC.KEYRING ROTATE tenant").unwrap();
    cmd(&mut con, "ENC.SET t3 v3 KEYRING tenant").unwrap();
    cmd(&mut con, "BGSAVE").unwrap();
    wait_persistence(&mut con);
    let dir = server.stop();

    let server = start(Some(dir), &[]);
    let mut con = server.client();
    check(&mut con, "BGSAVE and a restart");
    assert_eq!(
        cmd(&mut con, "ENC.GET t3").map(|v| bulk(&v)),
        Ok(Some(b"v3".to_vec()))
    );
}

/// The promise: a replica that syncs in full after the keyrings changed, and rewrites its own
/// AOF, opens every value, also when restarted on its own.
#[test]
fn a_replica_full_sync_and_its_own_rewrite_keep_the_keyrings() {
    let primary = start(None, &[]);
    let mut con = primary.client();
    rotate_and_fill(&mut con);
    let replica = replica_with(&primary, aof("no").into_iter().map(String::from).collect());
    let mut rcon = replica.client();
    check(&mut rcon, "a full sync");
    rewrite_aof(&mut rcon);
    let dir = replica.stop();
    drop(primary);
    let alone = start(Some(dir), &aof("no"));
    check(
        &mut alone.client(),
        "the replica's own AOF rewrite and a restart without its primary",
    );
}
