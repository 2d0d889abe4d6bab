//! Files written by release 0.1 still load: an RDB holding its keyring record and sealed values
//! (`tests/data/keyring-v1.rdb`), and an encrypted backup of that RDB
//! (`tests/data/backup-v1.renc`), both under the vector master key of `tests/data/`.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use common::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A directory holding the vector master key (owner-only, as `file:` requires).
fn key_dir() -> Arc<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, format!("{MASTER_KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Arc::new(dir)
}

fn check_values(con: &mut redis::Connection) {
    let get = |con: &mut redis::Connection, line: &str| {
        let reply = cmd(con, line);
        bulk(reply.as_ref().unwrap()).unwrap_or_else(|| panic!("{line}: {reply:?}"))
    };
    assert_eq!(get(con, "ENC.GET patient:1"), br#"{"name":"Ada"}"#);
    assert_eq!(get(con, "ENC.GET patient:2"), b"second version");
    assert_eq!(get(con, "ENC.GET t:1"), b"tenant value");
    assert_eq!(
        cmd(con, "ENC.HGETFIELD h f1").unwrap(),
        redis::Value::Array(vec![redis::Value::BulkString(b"field one".to_vec())])
    );
    assert_eq!(key_version(con, "patient:1", None), 1);
    assert_eq!(key_version(con, "patient:2", None), 2);
}

/// The RDB aux record (docs/FORMAT.md §4) and envelopes of release 0.1 load, with every
/// keyring and version, and survive a save and a restart.
#[test]
fn an_rdb_written_by_release_0_1_loads() {
    let dir = key_dir();
    std::fs::copy(
        format!("{DATA}/keyring-v1.rdb"),
        dir.path().join("dump.rdb"),
    )
    .unwrap();
    let server = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let mut con = server.client();
    check_values(&mut con);
    let rings = format!("{:?}", cmd(&mut con, "ENC.KEYRING LIST").unwrap());
    assert!(
        rings.contains("default") && rings.contains("tenant-7"),
        "{rings}"
    );
    cmd(&mut con, "SAVE").unwrap();
    let dir = server.stop();
    let again = Server::with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    check_values(&mut again.client());
}

/// A backup file of release 0.1 (docs/FORMAT.md §7) verifies and restores to the RDB it was
/// made from, byte for byte.
#[test]
fn a_backup_written_by_release_0_1_restores_byte_for_byte() {
    let dir = key_dir();
    let key = format!("file:{}", dir.path().join("master.key").display());
    let backup = format!("{DATA}/backup-v1.renc");
    let succeeds = |args: &[&str]| {
        let out = Command::new(tool_exe()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    succeeds(&["verify", "--in", &backup, "--master-key", &key]);
    let out = dir.path().join("restored.rdb");
    let out_arg = out.to_str().unwrap();
    succeeds(&[
        "restore",
        "--in",
        &backup,
        "--master-key",
        &key,
        "--out",
        out_arg,
    ]);
    assert_eq!(
        std::fs::read(out).unwrap(),
        std::fs::read(format!("{DATA}/keyring-v1.rdb")).unwrap()
    );
}
