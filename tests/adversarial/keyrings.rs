//! Keyring operations: re-encryption covers every database before anything is marked clear;
//! an import never silently locks the keys this server's values need.

use redis::Value;

use crate::common::*;

/// The promise: a re-encryption started from database 0 re-seals values in every database,
/// so that destroying the old version without FORCE shreds nothing (it used to scan only the
/// client's database and then mark the old version clear).
#[test]
fn reencryption_covers_every_database_before_a_version_is_cleared() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    let mut con = primary.client();
    for db in [0, 1, 15] {
        cmd(&mut con, &format!("SELECT {db}")).unwrap();
        cmd(&mut con, &format!("ENC.SET k{db} value-in-{db}")).unwrap();
        cmd(&mut con, &format!("ENC.HSETFIELD h{db} f field-in-{db}")).unwrap();
    }
    cmd(&mut con, "SELECT 3").unwrap();
    cmd(&mut con, "SET plain:3 clear").unwrap();
    cmd(&mut con, "SELECT 0").unwrap();
    cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
    cmd(&mut con, "ENC.REENCRYPT START").unwrap();
    let status = wait_reencrypt(&mut con);
    let pos = status
        .iter()
        .position(|v| bulk(v).as_deref() == Some(b"databases-done"))
        .expect("STATUS says how many databases it covered");
    assert_eq!(status[pos + 1], Value::Int(16));
    // Nothing is left under v1, so destroying it needs no FORCE and shreds nothing.
    cmd(&mut con, "ENC.KEYRING DESTROY default 1").unwrap();
    cmd(&mut con, "WAIT 1 5000").unwrap();
    let mut rcon = replica.client();
    for db in [0, 1, 15] {
        for c in [&mut con, &mut rcon] {
            cmd(c, &format!("SELECT {db}")).unwrap();
            assert_eq!(key_version(c, &format!("k{db}"), None), 2, "db {db}");
            assert_eq!(
                cmd(c, &format!("ENC.GET k{db}")).map(|v| bulk(&v)),
                Ok(Some(format!("value-in-{db}").into_bytes()))
            );
            assert_eq!(
                cmd(c, &format!("ENC.HGETFIELD h{db} f")),
                Ok(Value::Array(vec![Value::BulkString(
                    format!("field-in-{db}").into_bytes()
                )]))
            );
        }
    }

    // ENCRYPT-PLAINTEXT, started from database 0, seals the plain value in database 3.
    cmd(&mut con, "SELECT 0").unwrap();
    cmd(
        &mut con,
        "ENC.REENCRYPT START ENCRYPT-PLAINTEXT MATCH plain:*",
    )
    .unwrap();
    wait_reencrypt(&mut con);
    cmd(&mut con, "SELECT 3").unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.GET plain:3").map(|v| bulk(&v)),
        Ok(Some(b"clear".to_vec()))
    );
}

/// The promise: `ENC.KEYRING IMPORT` of an export made under another master key does not lock
/// this server's keys (its values would stop opening) unless FORCE asks for it.
#[test]
fn an_import_from_another_master_key_needs_force() {
    let ours = Server::start();
    let theirs = Server::start();
    let replica = replica_of(&ours);
    let mut con = ours.client();
    cmd(&mut con, "ENC.SET mine v").unwrap();
    let mut other = theirs.client();
    cmd(&mut other, "ENC.KEYRING CREATE tenant").unwrap();
    let export = bulk(&cmd(&mut other, "ENC.KEYRING EXPORT").unwrap()).unwrap();

    let err = run(&mut con, &[b"ENC.KEYRING", b"IMPORT", &export]).unwrap_err();
    assert!(
        err.starts_with(
            "ERR the import would leave data key version 1 of keyring 'default' unusable here"
        ),
        "{err}"
    );
    assert_eq!(
        cmd(&mut con, "ENC.GET mine").map(|v| bulk(&v)),
        Ok(Some(b"v".to_vec()))
    );
    assert_eq!(
        cmd(&mut con, "ENC.KEYRING LIST").unwrap(),
        Value::Array(vec![Value::BulkString(b"default".to_vec())])
    );

    // With FORCE the keys are locked, values fail closed, and the replica follows.
    let Value::Array(report) =
        run(&mut con, &[b"ENC.KEYRING", b"IMPORT", &export, b"FORCE"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(report[5], Value::Int(2), "versions-locked: {report:?}");
    let err = cmd(&mut con, "ENC.GET mine").unwrap_err();
    assert!(err.contains("is not available"), "{err}");
    cmd(&mut con, "WAIT 1 5000").unwrap();
    let err = cmd(&mut replica.client(), "ENC.GET mine").unwrap_err();
    assert!(err.contains("is not available"), "{err}");
}
