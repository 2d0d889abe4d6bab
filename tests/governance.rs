//! Key governance: dual control of destructive key operations and of weakening a PHI or audit
//! control (`enc.dual-control`).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::sync::Arc;

use common::*;
use redis::{Connection, Value};

/// A server with dual control on, its audit log in its directory, and two key administrators
/// (`keyadmin-a`, `keyadmin-b`), an operator who may list and approve requests but not destroy
/// keys (`approver-only`), all allowed `CONFIG SET`.
fn governed(extra: &[&str]) -> (Server, std::path::PathBuf) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let log = dir.path().join("audit.log");
    let mut args = vec![
        "master-key".to_owned(),
        format!("file:{}", key.display()),
        "phi-patterns".into(),
        "patient:*".into(),
        "dual-control".into(),
        "yes".into(),
        "audit-log".into(),
        log.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::with(Options {
        module_args: Some(args),
        server_args: vec!["--enable-protected-configs".into(), "yes".into()],
        dir: Some(dir),
        ..Options::default()
    });
    let mut admin = server.client();
    let admins = "+@connection +enc.keyring +enc.dualcontrol +config|set +config|get +enc._config";
    for user in ["keyadmin-a", "keyadmin-b"] {
        cmd(&mut admin, &format!("ACL SETUSER {user} on >pw {admins}")).unwrap();
    }
    cmd(
        &mut admin,
        "ACL SETUSER approver-only on >pw +@connection +enc.dualcontrol",
    )
    .unwrap();
    (server, log)
}

/// The request id in a `DUALCONTROL request <id> made: …` error.
fn request_id(err: &str) -> String {
    assert!(err.starts_with("DUALCONTROL request "), "{err}");
    err.split_whitespace().nth(2).unwrap().to_owned()
}

fn audit_records(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn pending(con: &mut Connection) -> usize {
    match cmd(con, "ENC.DUALCONTROL LIST").unwrap() {
        Value::Array(list) => list.len(),
        other => panic!("{other:?}"),
    }
}

/// The promise: with `enc.dual-control yes`, `DESTROY` asked by one key administrator changes
/// nothing until another user allowed to destroy approves it within the window; the requester
/// cannot approve their own request, a user without the permission cannot approve it, and both
/// steps are audited with who made them.
#[test]
fn a_destroy_needs_a_second_administrator() {
    let (server, log) = governed(&[]);
    let mut admin = server.client();
    let mut a = server.client_as("keyadmin-a", "pw");
    let mut b = server.client_as("keyadmin-b", "pw");
    let mut other = server.client_as("approver-only", "pw");
    cmd(&mut a, "ENC.KEYRING CREATE tenant").unwrap();
    cmd(&mut admin, "ENC.SET t:1 secret KEYRING tenant").unwrap();

    let err = cmd(&mut a, "ENC.KEYRING DESTROY tenant FORCE").unwrap_err();
    let id = request_id(&err);
    assert_eq!(
        bulk(&cmd(&mut admin, "ENC.GET t:1").unwrap()).unwrap(),
        b"secret",
        "nothing changed"
    );
    assert_eq!(pending(&mut b), 1);
    // Bad input is refused at once, not turned into a request.
    let err = cmd(&mut a, "ENC.KEYRING DESTROY tenant").unwrap_err();
    assert!(err.contains("FORCE"), "{err}");
    assert_eq!(pending(&mut b), 1);

    let err = cmd(&mut a, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap_err();
    assert!(err.contains("another user"), "{err}");
    let err = cmd(&mut other, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    assert_eq!(pending(&mut b), 1, "a refused approval leaves the request");
    assert_eq!(
        bulk(&cmd(&mut admin, "ENC.GET t:1").unwrap()).unwrap(),
        b"secret"
    );

    assert_eq!(
        cmd(&mut b, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap(),
        Value::Okay
    );
    let err = cmd(&mut admin, "ENC.GET t:1").unwrap_err();
    assert!(err.contains("destroyed"), "{err}");
    assert_eq!(pending(&mut b), 0);
    let err = cmd(&mut b, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap_err();
    assert!(err.contains("no such request"), "approved once: {err}");

    // The log's writer thread is a few milliseconds behind the commands.
    let mut records = Vec::new();
    wait_until("the destroy's audit record", || {
        records = audit_records(&log);
        records
            .iter()
            .any(|r| r["command"] == "ENC.KEYRING DESTROY")
    });
    let find = |event: &str, outcome: &str, user: &str| {
        records
            .iter()
            .any(|r| r["event"] == event && r["outcome"] == outcome && r["user"] == user)
    };
    assert!(find("dual-control", "pending", "keyadmin-a"), "the request");
    assert!(
        find("dual-control", "denied", "keyadmin-a"),
        "self-approval"
    );
    assert!(find("dual-control", "ok", "keyadmin-b"), "the approval");
    let destroy = records
        .iter()
        .find(|r| r["event"] == "keyring" && r["command"] == "ENC.KEYRING DESTROY")
        .unwrap();
    assert_eq!(destroy["user"], "keyadmin-b");
    let approval = records
        .iter()
        .find(|r| r["event"] == "dual-control" && r["outcome"] == "ok")
        .unwrap();
    assert!(
        approval["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("request {id} by keyadmin-a")),
        "{approval}"
    );
}

/// The promise: `RETIRE`, `REWRAP` and `IMPORT` (an export can retire and destroy versions)
/// wait for approval too; a request not approved within `enc.dual-control-window` lapses.
#[test]
fn retire_rewrap_and_import_wait_and_requests_lapse() {
    let (server, _log) = governed(&["dual-control-window", "1"]);
    let mut a = server.client_as("keyadmin-a", "pw");
    let mut b = server.client_as("keyadmin-b", "pw");
    cmd(&mut a, "ENC.KEYRING ROTATE").unwrap();
    let export = bulk(&cmd(&mut a, "ENC.KEYRING EXPORT").unwrap()).unwrap();
    for line in ["ENC.KEYRING RETIRE default 1", "ENC.KEYRING REWRAP"] {
        request_id(&cmd(&mut a, line).unwrap_err());
    }
    let err = run(&mut a, &[b"ENC.KEYRING", b"IMPORT", &export]).unwrap_err();
    request_id(&err);
    assert_eq!(pending(&mut b), 3);
    let Value::Array(list) = cmd(&mut b, "ENC.DUALCONTROL LIST").unwrap() else {
        panic!()
    };
    assert!(
        format!("{list:?}").contains("<"),
        "an export is listed by its length"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(pending(&mut b), 0, "lapsed");
    let id = request_id(&cmd(&mut a, "ENC.KEYRING RETIRE default 1").unwrap_err());
    cmd(&mut b, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap();
    let info = format!("{:?}", cmd(&mut b, "ENC.KEYRING INFO default").unwrap());
    assert!(info.contains("retired"), "{info}");
}

fn config(con: &mut Connection, name: &str) -> String {
    let Value::Array(pair) = cmd(con, &format!("CONFIG GET {name}")).unwrap() else {
        panic!()
    };
    String::from_utf8(bulk(&pair[1]).unwrap()).unwrap()
}

/// The promise: a `CONFIG SET` that weakens a PHI or audit control (turning the guard off,
/// dropping a PHI pattern, raising the TTL limit, turning dual control itself off) waits for a
/// second user; one that strengthens a control takes effect at once.
#[test]
fn weakening_a_phi_control_needs_a_second_user() {
    let (server, _log) = governed(&["phi-ttl-max", "3600"]);
    let mut a = server.client_as("keyadmin-a", "pw");
    let mut b = server.client_as("keyadmin-b", "pw");
    for (name, weaker, now, stronger) in [
        ("enc.phi-guard", "no", "yes", "yes"),
        (
            "enc.phi-patterns",
            "other:*",
            "patient:*",
            "other:* patient:*",
        ),
        ("enc.phi-ttl-max", "7200", "3600", "1800"),
        ("enc.dual-control", "no", "yes", ""),
    ] {
        let id = request_id(&cmd(&mut a, &format!("CONFIG SET {name} {weaker}")).unwrap_err());
        assert_eq!(config(&mut a, name), now, "{name} unchanged");
        cmd(&mut b, &format!("ENC.DUALCONTROL APPROVE {id}")).unwrap();
        assert_eq!(config(&mut a, name), weaker, "{name} approved");
        if !stronger.is_empty() {
            // Strengthening needs no approval.
            run(
                &mut a,
                &[b"CONFIG", b"SET", name.as_bytes(), stronger.as_bytes()],
            )
            .unwrap();
            assert_eq!(config(&mut a, name), stronger);
        }
    }
    // Dual control is off now: a weakening change acts at once.
    cmd(&mut a, "CONFIG SET enc.phi-guard no").unwrap();
}

fn primary_version(con: &mut Connection, keyring: &str) -> i64 {
    let Value::Array(info) = cmd(con, &format!("ENC.KEYRING INFO {keyring}")).unwrap() else {
        panic!()
    };
    int_field(&info, "primary")
}

/// The promise: `enc.keyring-rotate-after` rotates a keyring whose primary version is that
/// old, by itself, audited as a rotation by `(schedule)`; values sealed before still open.
#[test]
fn a_keyring_rotates_when_its_primary_is_old_enough() {
    let (server, log) = governed(&["keyring-rotate-after", "2"]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET k before").unwrap();
    wait_until("the scheduled rotation", || {
        primary_version(&mut con, "default") >= 2
    });
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET k").unwrap()).unwrap(),
        b"before"
    );
    cmd(&mut con, "ENC.SET k2 after").unwrap();
    assert!(key_version(&mut con, "k2", None) >= 2);
    let mut records = Vec::new();
    wait_until("the rotation's audit record", || {
        records = audit_records(&log);
        records.iter().any(|r| r["user"] == "(schedule)")
    });
    let record = records.iter().find(|r| r["user"] == "(schedule)").unwrap();
    assert_eq!(record["command"], "ENC.KEYRING ROTATE");
    assert!(
        record["detail"]
            .as_str()
            .unwrap()
            .starts_with("scheduled: version 1 is "),
        "{record}"
    );
}

/// The promise: `enc.keyring-rotate-after-values` rotates a keyring once its primary version
/// sealed that many values; turning the schedule off stops it; a bad value is refused.
#[test]
fn a_keyring_rotates_after_a_number_of_values() {
    let (server, _log) = governed(&["keyring-rotate-after-values", "50"]);
    let mut con = server.client();
    cmd(&mut con, "ENC.KEYRING CREATE cards").unwrap();
    for i in 0..49 {
        cmd(&mut con, &format!("ENC.SET c:{i} v KEYRING cards")).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(primary_version(&mut con, "cards"), 1, "49 values: not yet");
    cmd(&mut con, "ENC.SET c:49 v KEYRING cards").unwrap();
    wait_until("the rotation after 50 values", || {
        primary_version(&mut con, "cards") == 2
    });
    assert_eq!(
        primary_version(&mut con, "default"),
        1,
        "default sealed nothing"
    );
    for i in 0..50 {
        assert_eq!(
            bulk(&cmd(&mut con, &format!("ENC.GET c:{i}")).unwrap()).unwrap(),
            b"v"
        );
    }
    let err = cmd(&mut con, "CONFIG SET enc.keyring-rotate-after-values -1").unwrap_err();
    assert!(err.contains("a number of values"), "{err}");
}

/// Accepts one replica on a free port as its primary (a partial resync, so the replica keeps
/// its data) and sends it `commands`, as a primary that is not redis-enc's could. Returns the
/// port.
fn foreign_primary(commands: Vec<Vec<&'static str>>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some(n) = line
                .strip_prefix('*')
                .and_then(|n| n.trim().parse::<usize>().ok())
            else {
                continue;
            };
            let mut words = Vec::new();
            for _ in 0..n {
                line.clear();
                reader.read_line(&mut line).unwrap();
                line.clear();
                reader.read_line(&mut line).unwrap();
                words.push(line.trim().to_ascii_uppercase());
            }
            match words[0].as_str() {
                "PSYNC" | "SYNC" => break,
                "PING" => out.write_all(b"+PONG\r\n").unwrap(),
                _ => out.write_all(b"+OK\r\n").unwrap(),
            }
        }
        out.write_all(b"+CONTINUE\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        for words in commands {
            let mut resp = format!("*{}\r\n", words.len());
            for w in words {
                resp.push_str(&format!("${}\r\n{w}\r\n", w.len()));
            }
            out.write_all(resp.as_bytes()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    port
}

/// The promise: a primary that is not redis-enc's, attached with `REPLICAOF`, cannot turn a PHI
/// or audit control off (redis-enc's primaries never send `CONFIG SET`). It can still replace
/// the data and the keyrings, as any primary can: `REPLICAOF` is an administrator's command
/// (docs/SECURITY.md, "Dual control").
#[test]
fn a_foreign_primary_cannot_weaken_a_control() {
    let (server, _log) = governed(&[]);
    let mut admin = server.client();
    let port = foreign_primary(vec![
        vec!["CONFIG", "SET", "enc.phi-guard", "no"],
        vec!["CONFIG", "SET", "enc.dual-control", "no"],
        vec!["SET", "marker", "arrived"],
    ]);
    cmd(&mut admin, &format!("REPLICAOF 127.0.0.1 {port}")).unwrap();
    wait_until("the foreign primary's stream", || {
        cmd(&mut admin, "GET marker").unwrap() != Value::Nil
    });
    cmd(&mut admin, "REPLICAOF NO ONE").unwrap();
    assert_eq!(config(&mut admin, "enc.phi-guard"), "yes");
    assert_eq!(config(&mut admin, "enc.dual-control"), "yes");
}
