//! Access control: the PHI permissions are granted by `@phi` (or by name) and by nothing
//! else; they are checked before anything is decrypted; moving data onto a PHI name is a PHI
//! write; authentication and ACL errors come before anything the guard would say.

use redis::{Connection, Value};

use crate::common::*;
use crate::{acl_servers, phi_server};

fn categories(con: &mut Connection) -> Vec<String> {
    let Value::Array(cats) = cmd(con, "ACL CAT").unwrap() else {
        panic!()
    };
    cats.iter()
        .map(|c| String::from_utf8(bulk(c).unwrap()).unwrap())
        .collect()
}

fn dryrun(con: &mut Connection, user: &str, line: &str) -> bool {
    let reply = cmd(con, &format!("ACL DRYRUN {user} {line}")).unwrap();
    reply == Value::Okay || bulk(&reply).as_deref() == Some(b"OK")
}

fn info_count(con: &mut Connection, field: &str) -> u64 {
    info_field(con, "enc", field).unwrap().parse().unwrap()
}

/// The promise: no ACL category but `@phi` (where it exists) and `@all` grants a PHI
/// permission. Users are built from every category the server lists.
#[test]
fn only_phi_and_all_grant_phi_permissions() {
    for binary in acl_servers() {
        let server = phi_server(binary, &[]);
        let mut con = server.client();
        let cats = categories(&mut con);
        assert!(cats.len() > 15, "{cats:?}");
        for cat in &cats {
            let user = format!("u-{cat}");
            cmd(
                &mut con,
                &format!("ACL SETUSER {user} on >pw ~* -@all +@{cat}"),
            )
            .unwrap();
            let granted = cat == "phi";
            for line in ["ENC.PHI READ patient:1", "ENC.PHI WRITE patient:1"] {
                assert_eq!(
                    dryrun(&mut con, &user, line),
                    granted,
                    "{binary:?}: +@{cat} and {line}"
                );
            }
            // The same user with the data commands granted by name still reads no PHI.
            if !granted {
                cmd(&mut con, &format!("ACL SETUSER {user} +enc.get +enc.set")).unwrap();
                cmd(&mut con, "ENC.SET patient:1 secret").unwrap();
                let mut c = server.client_as(&user, "pw");
                let err = cmd(&mut c, "ENC.GET patient:1").unwrap_err();
                assert!(err.starts_with("NOPERM"), "{binary:?} +@{cat}: {err}");
                let err = cmd(&mut c, "ENC.SET patient:1 x").unwrap_err();
                assert!(err.starts_with("NOPERM"), "{binary:?} +@{cat}: {err}");
            }
        }
        cmd(&mut con, "ACL SETUSER everything on >pw ~* +@all").unwrap();
        assert!(dryrun(&mut con, "everything", "ENC.PHI READ patient:1"));
    }
}

/// The promise: the PHI read permission is checked before any value is decrypted. A denied
/// user gets NOPERM even for a damaged value, and no value is opened for them.
#[test]
fn permission_comes_before_decryption() {
    let server = phi_server(None, &["phi-guard", "no"]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 secret").unwrap();
    cmd(&mut con, "ENC.SET flagged PHI-by-flag PHI").unwrap();
    // Damage both envelopes' last byte (the tag): opening them would fail.
    for key in ["patient:1", "flagged"] {
        let mut stored = bulk(&cmd(&mut con, &format!("GET {key}")).unwrap()).unwrap();
        *stored.last_mut().unwrap() ^= 1;
        run(&mut con, &[b"SET", key.as_bytes(), &stored]).unwrap();
    }
    cmd(&mut con, "ENC.SET patient:2 intact").unwrap();
    cmd(
        &mut con,
        "ACL SETUSER nophi on >pw ~* +@all -enc.phi|read -enc.phi|write",
    )
    .unwrap();
    let mut nophi = server.client_as("nophi", "pw");
    let opened = info_count(&mut con, "enc_values_opened");
    let failures = info_count(&mut con, "enc_open_failures");
    for line in [
        "ENC.GET patient:1",
        "ENC.GET flagged",
        "ENC.GET patient:2",
        "ENC.MGET patient:2 patient:1",
        "ENC.RENAME patient:1 patient:9",
        "ENC.COPY flagged other",
        "ENC.COPY patient:2 patient:3",
    ] {
        let err = cmd(&mut nophi, line).unwrap_err();
        assert!(err.starts_with("NOPERM"), "{line}: {err}");
    }
    assert_eq!(
        info_count(&mut con, "enc_values_opened"),
        opened,
        "nothing opened"
    );
    assert_eq!(info_count(&mut con, "enc_open_failures"), failures);
    assert_eq!(
        cmd(&mut con, "EXISTS patient:9 other patient:3").unwrap(),
        Value::Int(0)
    );
}

/// The promise: moving anything onto a PHI name is a PHI write: it needs `enc.phi|write`,
/// seals plaintext (or refuses what cannot be sealed), gets the TTL bounds and is audited.
#[test]
fn moving_onto_a_phi_name_is_a_phi_write() {
    let server = phi_server(None, &["phi-ttl-max", "3600", "phi-ttl-default", "600"]);
    let log = server.dir.path().join("audit.log");
    let mut con = server.client();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    cmd(&mut con, "RPUSH list 123-45-6789").unwrap();
    cmd(&mut con, "SET plain 123-45-6789").unwrap();
    cmd(&mut con, "HSET plainhash ssn 123-45-6789").unwrap();
    cmd(&mut con, "ENC.SET sealed 123-45-6789").unwrap();
    cmd(
        &mut con,
        "ACL SETUSER mover on >pw ~* +@all -enc.phi|write -enc.phi|read",
    )
    .unwrap();
    let mut mover = server.client_as("mover", "pw");
    for line in [
        "ENC.RENAME list patient:l",
        "ENC.RENAME plain patient:p",
        "ENC.COPY plainhash patient:h",
        "ENC.COPY sealed patient:s",
    ] {
        let err = cmd(&mut mover, line).unwrap_err();
        assert!(err.starts_with("NOPERM"), "{line}: {err}");
    }
    let err = cmd(&mut con, "ENC.RENAME list patient:l").unwrap_err();
    assert!(err.contains("seals strings and hashes only"), "{err}");
    assert_eq!(
        cmd(&mut con, "EXISTS patient:l patient:p patient:h patient:s").unwrap(),
        Value::Int(0)
    );

    cmd(&mut con, "ENC.RENAME plain patient:p").unwrap();
    cmd(&mut con, "ENC.COPY plainhash patient:h").unwrap();
    cmd(&mut con, "ENC.COPY sealed patient:s").unwrap();
    for (key, raw) in [
        ("patient:p", "GET patient:p"),
        ("patient:h", "HGET patient:h ssn"),
        ("patient:s", "GET patient:s"),
    ] {
        let stored = bulk(&cmd(&mut con, raw).unwrap()).unwrap();
        assert!(!contains(&stored, b"123-45-6789"), "{key} holds plaintext");
        let ttl = cmd(&mut con, &format!("TTL {key}")).unwrap();
        assert!(
            matches!(ttl, Value::Int(t) if (590..=600).contains(&t)),
            "{key} gets the default TTL: {ttl:?}"
        );
    }
    assert_eq!(
        cmd(&mut con, "ENC.GET patient:p").map(|v| bulk(&v)),
        Ok(Some(b"123-45-6789".to_vec()))
    );
    // While the guard is on, PHI does not leave the patterns, by either command.
    for line in ["ENC.RENAME patient:p other:p", "ENC.COPY patient:p other:p"] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(
            err.starts_with("ERR enc.phi-guard: PHI must live under"),
            "{line}: {err}"
        );
    }
    // A PHI value with a TTL above the bounds does not move.
    cmd(&mut con, "ENC.SET long v EX 7200").unwrap();
    let err = cmd(&mut con, "ENC.COPY long patient:long").unwrap_err();
    assert!(err.starts_with("ERR PHI must expire"), "{err}");
    wait_until("the audit records", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.matches("\"event\":\"phi-write\"").count() >= 3)
    });
}

/// The promise: an unauthenticated client, or a user who may not write a key, learns nothing
/// from the guard: NOAUTH and NOPERM come first, worded as for any other key.
#[test]
fn authentication_and_acl_errors_come_before_the_guard() {
    for binary in acl_servers() {
        let server = phi_server(binary, &[]);
        let mut admin = server.client();
        cmd(&mut admin, "ACL SETUSER admin on >adminpw ~* +@all").unwrap();
        cmd(&mut admin, "ACL SETUSER scoped on >pw ~public:* +@all").unwrap();
        cmd(&mut admin, "ACL SETUSER narrow on >pw ~public:* -@all +set").unwrap();
        cmd(&mut admin, "ACL SETUSER default off").unwrap();
        let mut anon = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        for key in ["patient:1", "other:1"] {
            let err = cmd(&mut anon, &format!("SET {key} plaintext")).unwrap_err();
            assert!(err.starts_with("NOAUTH"), "{binary:?} {key}: {err}");
        }
        let users: &[&str] = if binary.is_some() {
            &["scoped", "narrow"]
        } else {
            // On Redis 7.0 a user granted +set alone also lacks ENC._REFUSED and gets the
            // server's NOPERM for it (README, the guard's limits).
            &["scoped"]
        };
        for user in users {
            let mut c = server.client_as(user, "pw");
            let phi = cmd(&mut c, "SET patient:1 plaintext").unwrap_err();
            let other = cmd(&mut c, "SET other:1 plaintext").unwrap_err();
            assert!(phi.starts_with("NOPERM"), "{binary:?} {user}: {phi}");
            assert_eq!(phi, other, "{binary:?} {user}: the same error for any key");
        }
    }
}

/// The promise: the refusal command itself, called directly with any arguments, answers an
/// error and never crashes the server (the ACL check it makes would read past a short
/// argument list).
#[test]
fn the_refusal_command_called_directly_is_harmless() {
    let server = phi_server(None, &[]);
    let mut con = server.client();
    for line in [
        "ENC._REFUSED",
        "ENC._REFUSED plaintext",
        "ENC._REFUSED plaintext SET",
        "ENC._REFUSED ttl SET patient:1",
        "ENC._REFUSED move RENAME patient:1",
        "ENC._REFUSED bogus GET patient:1",
        "ENC._REFUSED plaintext HSET patient:1 f",
        "ENC._REFUSED plaintext SET patient:1 v",
    ] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(err.starts_with("ERR enc.phi-guard"), "{line}: {err}");
        assert_eq!(
            cmd(&mut con, "PING").unwrap(),
            Value::SimpleString("PONG".into())
        );
    }
}
