//! A failed command changes nothing, on the primary or its replicas; whatever a command writes
//! is replicated; `ENC.SET` options mean what they mean for `SET`.

use std::collections::BTreeMap;

use redis::{Connection, Value};

use crate::common::*;

/// Every key of database 0 with its `DUMP` payload and whether it has a TTL.
pub fn snapshot(con: &mut Connection) -> BTreeMap<Vec<u8>, (Vec<u8>, bool)> {
    let Value::Array(keys) = cmd(con, "KEYS *").unwrap() else {
        panic!()
    };
    keys.iter()
        .map(|k| {
            let name = bulk(k).unwrap();
            let dump = bulk(&run(con, &[b"DUMP", &name]).unwrap()).unwrap();
            let ttl = run(con, &[b"PTTL", &name]).unwrap() != Value::Int(-1);
            (name, (dump, ttl))
        })
        .collect()
}

/// The promise: a value too large to seal leaves the key it would have replaced as it was, on
/// the primary and on the replica (it used to delete a hash first, unreplicated).
#[test]
fn a_value_too_large_to_seal_replaces_nothing() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    let mut con = primary.client();
    cmd(&mut con, "HSET big f v").unwrap();
    cmd(&mut con, "RPUSH list a").unwrap();
    let huge = vec![b'x'; 512 * 1024 * 1024 - 47];
    for key in ["big", "list", "absent"] {
        let err = run(&mut con, &[b"ENC.SET", key.as_bytes(), &huge]).unwrap_err();
        assert_eq!(err, "ERR value too large to seal");
    }
    let err = run(&mut con, &[b"ENC.MSET", b"a", b"1", b"big", &huge]).unwrap_err();
    assert_eq!(err, "ERR value too large to seal");
    drop(huge);
    assert_eq!(
        cmd(&mut con, "TYPE big").unwrap(),
        Value::SimpleString("hash".into())
    );
    assert_eq!(cmd(&mut con, "EXISTS a absent").unwrap(), Value::Int(0));
    cmd(&mut con, "WAIT 1 5000").unwrap();
    assert_eq!(snapshot(&mut con), snapshot(&mut replica.client()));
}

/// The promise: `ENC.SET … KEEPTTL` over a key of another type keeps its time to live, as
/// `SET … KEEPTTL` does, and the replica ends with the same expiry.
#[test]
fn keepttl_over_another_type_keeps_the_ttl_like_set() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    let mut con = primary.client();
    for key in ["plain", "sealed"] {
        cmd(&mut con, &format!("RPUSH {key} a")).unwrap();
        cmd(&mut con, &format!("PEXPIREAT {key} 4102444800000")).unwrap();
    }
    cmd(&mut con, "SET plain v KEEPTTL").unwrap();
    cmd(&mut con, "ENC.SET sealed v KEEPTTL").unwrap();
    for key in ["plain", "sealed"] {
        assert_eq!(
            cmd(&mut con, &format!("PEXPIRETIME {key}")).unwrap(),
            Value::Int(4102444800000),
            "{key}"
        );
    }
    cmd(&mut con, "WAIT 1 5000").unwrap();
    let mut rcon = replica.client();
    assert_eq!(
        cmd(&mut rcon, "PEXPIRETIME sealed").unwrap(),
        Value::Int(4102444800000)
    );
    assert_eq!(snapshot(&mut con), snapshot(&mut rcon));
}

/// The promise: no failing `ENC.*` call changes a key, on the primary or the replica. Each
/// case runs against the same dataset; the snapshots before and after must match.
#[test]
fn failing_calls_change_nothing_anywhere() {
    let primary = Server::with(Options {
        module_args: None,
        server_args: vec![
            "--enc.phi-patterns".into(),
            "patient:*".into(),
            "--enc.phi-ttl-max".into(),
            "60".into(),
            "--enc.keyring-patterns".into(),
            "gone:* gone".into(),
        ],
        ..Options::default()
    });
    let replica = replica_of(&primary);
    let mut con = primary.client();
    cmd(
        &mut con,
        "ACL SETUSER app on >pw ~* +@all -enc.phi|write -enc.phi|read",
    )
    .unwrap();
    cmd(&mut con, "ENC.SET s sealed").unwrap();
    cmd(&mut con, "SET p plain").unwrap();
    cmd(&mut con, "HSET h f v").unwrap();
    cmd(&mut con, "ENC.HSETFIELD h g sealed").unwrap();
    cmd(&mut con, "RPUSH l a").unwrap();
    cmd(&mut con, "ENC.SET patient:1 phi EX 30").unwrap();
    cmd(&mut con, "ENC.KEYRING CREATE tenant").unwrap();
    cmd(&mut con, "ENC.KEYRING ROTATE tenant").unwrap();
    cmd(&mut con, "ENC.SET t v KEYRING tenant").unwrap();
    cmd(&mut con, "ENC.KEYRING RETIRE tenant 1").unwrap();
    cmd(&mut con, "WAIT 1 5000").unwrap();
    let before = snapshot(&mut con);
    let mut app = primary.client_as("app", "pw");
    let cases: &[(&str, &str)] = &[
        ("ENC.SET s", "ERR wrong number of arguments"),
        ("ENC.SET s v BOGUS", "ERR syntax error"),
        ("ENC.SET s v EX 0", "ERR invalid expire time"),
        ("ENC.SET s v EX 10 PX 10", "ERR syntax error"),
        ("ENC.SET s v KEYRING nosuch", "ERR no such keyring"),
        ("ENC.SET gone:1 v", "ERR no such keyring"),
        ("ENC.SET l v GET", "WRONGTYPE"),
        ("ENC.SET p v GET", "ERR value is not sealed"),
        ("ENC.SET patient:1 v", "ERR PHI must expire"),
        ("ENC.SET patient:1 v EX 3600", "ERR PHI must expire"),
        ("ENC.MSET a 1 gone:1 2", "ERR no such keyring"),
        ("ENC.MSET a 1 b", "ERR wrong number of arguments"),
        ("ENC.HSETFIELD l f v", "WRONGTYPE"),
        ("ENC.HSETFIELD h f", "ERR wrong number of arguments"),
        ("ENC.HSETFIELD gone:1 f v", "ERR no such keyring"),
        ("ENC.RENAME absent x", "ERR no such key"),
        (
            "ENC.COPY s s",
            "ERR source and destination objects are the same",
        ),
        ("ENC.KEYRING ROTATE nosuch", "ERR no such keyring"),
        (
            "ENC.KEYRING RETIRE tenant 2",
            "ERR the primary version cannot be retired",
        ),
        (
            "ENC.KEYRING DESTROY default FORCE",
            "ERR the default keyring cannot be destroyed",
        ),
        (
            "ENC.KEYRING DESTROY tenant 1",
            "ERR values may still be sealed",
        ),
        (
            "ENC.KEYRING IMPORT garbage",
            "ERR not a redis-enc keyring export",
        ),
        ("ENC.REENCRYPT START BOGUS", "ERR syntax error"),
    ];
    for (line, want) in cases {
        let err = cmd(&mut con, line).expect_err(line);
        assert!(err.starts_with(want), "{line}: {err}");
        assert_eq!(snapshot(&mut con), before, "{line} changed the primary");
    }
    let as_app: &[(&str, &str)] = &[
        ("ENC.SET patient:1 v EX 30", "NOPERM"),
        ("ENC.MSET a 1 patient:2 2", "NOPERM"),
        ("ENC.HSETFIELD patient:3 f v", "NOPERM"),
        ("ENC.RENAME patient:1 x", "NOPERM"),
        ("ENC.COPY patient:1 x", "NOPERM"),
        ("ENC.GET patient:1", "NOPERM"),
    ];
    for (line, want) in as_app {
        let err = cmd(&mut app, line).expect_err(line);
        assert!(err.starts_with(want), "{line}: {err}");
        assert_eq!(snapshot(&mut con), before, "{line} changed the primary");
    }
    cmd(&mut con, "WAIT 1 5000").unwrap();
    assert_eq!(snapshot(&mut replica.client()), before, "the replica");
}
