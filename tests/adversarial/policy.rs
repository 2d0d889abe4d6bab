//! The policy cannot be weakened silently: PHI and audit configs are protected like the
//! server's own `dir`, every change that happens is audited with who made it, in the log in
//! force before the change; `enc.phi-require-tls` keeps PHI off plain TCP.

use std::process::Command;
use std::sync::Arc;

use redis::Value;

use crate::common::*;
use crate::phi_server;

fn config(con: &mut redis::Connection, name: &str) -> String {
    let Value::Array(pair) = cmd(con, &format!("CONFIG GET {name}")).unwrap() else {
        panic!()
    };
    String::from_utf8(bulk(&pair[1]).unwrap()).unwrap()
}

/// The promise: with `enable-protected-configs no` (the server's default), no client can
/// switch a PHI or audit control off at run time, by any route; other configs still change.
#[test]
fn policy_configs_are_protected_like_dir() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let log = dir.path().join("audit.log");
    let server = Server::with(Options {
        module_args: Some(
            [
                "master-key".to_owned(),
                format!("file:{}", key.display()),
                "phi-patterns".into(),
                "patient:*".into(),
                "phi-ttl-max".into(),
                "3600".into(),
                "audit-fail-closed".into(),
                "yes".into(),
                "audit-log".into(),
                log.display().to_string(),
            ]
            .to_vec(),
        ),
        server_args: vec!["--enable-protected-configs".into(), "no".into()],
        dir: Some(dir),
        ..Options::default()
    });
    let mut con = server.client();
    for (name, weaker) in [
        ("enc.phi-guard", "no"),
        ("enc.phi-patterns", "\"\""),
        ("enc.audit-log", "/dev/null"),
        ("enc.audit-log", "\"\""),
        ("enc.phi-ttl-max", "0"),
        ("enc.audit-fail-closed", "no"),
        ("enc.allow-plaintext-read", "yes"),
        ("enc.phi-require-tls", "no"),
    ] {
        let before = config(&mut con, name);
        let err = cmd(&mut con, &format!("CONFIG SET {name} {weaker}")).unwrap_err();
        assert!(err.contains("can't set protected config"), "{name}: {err}");
        assert_eq!(config(&mut con, name), before, "{name} unchanged");
        // Not in a transaction either, nor mixed with another config.
        cmd(&mut con, "MULTI").unwrap();
        cmd(&mut con, &format!("CONFIG SET {name} {weaker}")).unwrap();
        let _ = cmd(&mut con, "EXEC");
        assert_eq!(config(&mut con, name), before, "{name} unchanged by MULTI");
        let err = cmd(&mut con, &format!("CONFIG SET maxmemory 0 {name} {weaker}")).unwrap_err();
        assert!(err.starts_with("ERR"), "{err}");
        assert_eq!(
            config(&mut con, name),
            before,
            "{name} unchanged by a mixed CONFIG SET"
        );
    }
    cmd(&mut con, "ENC.KEYRING CREATE tenant").unwrap();
    run(
        &mut con,
        &[b"CONFIG", b"SET", b"enc.keyring-patterns", b"t:* tenant"],
    )
    .unwrap();
}

/// The promise: a change that the server allows is recorded with the ACL user, client id and
/// address that made it, in the log that was in force before the change (and in the new one).
#[test]
fn every_policy_change_names_who_made_it() {
    let server = phi_server(None, &[]);
    let old_log = server.dir.path().join("old.log");
    let new_log = server.dir.path().join("new.log");
    let mut con = server.client();
    cmd(&mut con, "ACL SETUSER officer on >pw ~* +@all").unwrap();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", old_log.display()),
    )
    .unwrap();
    let mut officer = server.client_as("officer", "pw");
    let Value::Int(id) = cmd(&mut officer, "CLIENT ID").unwrap() else {
        panic!()
    };
    cmd(&mut officer, "CONFIG SET enc.phi-ttl-max 100").unwrap();
    cmd(
        &mut officer,
        &format!("CONFIG SET enc.audit-log {}", new_log.display()),
    )
    .unwrap();
    cmd(&mut officer, "CONFIG SET enc.phi-guard no").unwrap();
    let records = |path: &std::path::Path, n: usize| {
        let mut lines = Vec::new();
        wait_until("audit records", || {
            lines = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"event\":\"config\""))
                .map(str::to_owned)
                .collect();
            lines.len() >= n
        });
        lines
    };
    let old = records(&old_log, 3);
    for (line, what) in old
        .iter()
        .skip(1)
        .zip(["phi-ttl-max = 100", "audit-log = "])
    {
        assert!(line.contains(what), "{line}");
        assert!(line.contains("\"user\":\"officer\""), "{line}");
        assert!(line.contains(&format!("\"client_id\":{id}")), "{line}");
        assert!(line.contains("\"addr\":\"127.0.0.1:"), "{line}");
    }
    // A CONFIG SET that fails changes nothing, as the server's own: all values or none.
    let err = cmd(
        &mut officer,
        "CONFIG SET enc.phi-ttl-max 7200 enc.phi-ttl-min bogus",
    )
    .unwrap_err();
    assert!(err.contains("enc.phi-ttl-min"), "{err}");
    assert_eq!(config(&mut officer, "enc.phi-ttl-max"), "100");
    let new = records(&new_log, 2);
    assert!(
        new.iter()
            .any(|l| l.contains("phi-guard = no") && l.contains("\"user\":\"officer\"")),
        "{new:?}"
    );
    // The new file continues the old file's chain: they verify together, the new one alone
    // only from the old one's head.
    let verify = |files: &[&std::path::Path]| {
        Command::new(tool_exe())
            .args(["audit", "verify"])
            .args(files)
            .arg("--master-key")
            .arg(format!("file:{}", server.key_path().display()))
            .output()
            .unwrap()
    };
    let out = verify(&[&old_log, &new_log]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!verify(&[&new_log]).status.success());
}

/// The promise: with `enc.phi-require-tls yes`, PHI is neither read nor written over plain TCP
/// (counted and audited), while TLS and the unix socket work and non-PHI values are untouched.
#[test]
fn phi_needs_tls_when_asked() {
    let certs = Arc::new(tempfile::tempdir().unwrap());
    certificates(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let tls_port = free_port();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let socket = dir.path().join("redis.sock");
    let log = dir.path().join("audit.log");
    let server = Server::with(Options {
        module_args: Some(
            [
                "master-key".to_owned(),
                format!("file:{}", key.display()),
                "phi-patterns".into(),
                "patient:*".into(),
                "phi-require-tls".into(),
                "yes".into(),
                "audit-log".into(),
                log.display().to_string(),
            ]
            .to_vec(),
        ),
        server_args: [
            tls_server_args(certs.path(), tls_port, "no"),
            vec!["--unixsocket".into(), socket.display().to_string()],
        ]
        .concat(),
        dir: Some(dir),
        ..Options::default()
    });
    let cli = |extra: &[&str], args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(extra)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let sock = socket.display().to_string();
    assert_eq!(
        cli(&["-s", &sock], &["ENC.SET", "patient:1", "record"]),
        "OK"
    );
    assert_eq!(cli(&["-s", &sock], &["ENC.GET", "patient:1"]), "record");
    let mut tcp = server.client();
    for line in ["ENC.SET patient:2 record EX 100", "ENC.GET patient:1"] {
        let err = cmd(&mut tcp, line).unwrap_err();
        assert!(
            err.starts_with("NOPERM PHI is read and written only over TLS"),
            "{line}: {err}"
        );
    }
    cmd(&mut tcp, "ENC.SET other:1 fine").unwrap();
    assert_eq!(
        info_field(&mut tcp, "enc", "enc_errors_phi_tls").as_deref(),
        Some("2")
    );
    // A script's client cannot be seen: PHI through a script is refused, even on the socket.
    let out = cli(
        &["-s", &sock],
        &["EVAL", "return redis.call('ENC.GET','patient:1')", "0"],
    );
    assert!(out.contains("only over TLS"), "{out}");
    let port = tls_port.to_string();
    let ca = c("ca.crt");
    assert_eq!(
        cli(
            &["--tls", "--cacert", &ca, "-p", &port],
            &["ENC.GET", "patient:1"]
        ),
        "record"
    );
    wait_until("the denial records", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.matches("not a TLS connection").count() >= 2)
    });
}
