//! The audit log is complete and verifies: one chain across restarts, whatever the records
//! hold; no record removable unseen; the server's own denials, the re-encryption job and the
//! real client behind a script are in it; nothing is recorded as read that was not returned.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use redis::Value;

use crate::common::*;
use crate::{acl_servers, phi_server};

fn verify(files: &[&Path], key: &Path, after: Option<&str>) -> (bool, String) {
    let mut command = Command::new(tool_exe());
    command.args(["audit", "verify"]).args(files);
    command
        .arg("--master-key")
        .arg(format!("file:{}", key.display()));
    if let Some(head) = after {
        command.args(["--after", head]);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn lines_with(path: &Path, needle: &str, n: usize) -> Vec<String> {
    let mut found = Vec::new();
    wait_until(&format!("{n} audit records with {needle}"), || {
        found = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        found.len() >= n
    });
    found
}

fn server_with_log(dir: Arc<tempfile::TempDir>, log: &Path) -> Server {
    let key = dir.path().join("master.key");
    if !key.exists() {
        write_key(&key);
    }
    Server::with(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("file:{}", key.display()),
            "phi-patterns".into(),
            "patient:*".into(),
            "audit-log".into(),
            log.display().to_string(),
        ]),
        dir: Some(dir),
        ..Options::default()
    })
}

/// The promise: with `audit-log` given as a module argument, restarts continue one chain,
/// and a record of any size (a denied command on a very long key name) neither breaks the
/// chain at the next start nor grows the log with the name.
#[test]
fn one_chain_across_restarts_whatever_the_records_hold() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let log = dir.path().join("audit.log");
    let server = server_with_log(dir.clone(), &log);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 record").unwrap();
    cmd(&mut con, "ACL SETUSER nophi on >pw ~* +@all -enc.phi|read").unwrap();
    let mut nophi = server.client_as("nophi", "pw");
    let long = format!("patient:{}", "x".repeat(100 * 1024));
    let err = run(&mut nophi, &[b"ENC.HGETALL", long.as_bytes()]).unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    lines_with(&log, "key name of", 1);
    let dir = server.stop();
    for n in 1..=2 {
        let server = server_with_log(dir.clone(), &log);
        let mut con = server.client();
        cmd(&mut con, "ENC.SET patient:1 record").unwrap();
        cmd(&mut con, "ENC.GET patient:1").unwrap();
        lines_with(&log, "\"event\":\"phi-read\"", n);
        server.stop();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("\"event\":\"audit-started\"").count(),
        1,
        "{text}"
    );
    assert!(
        text.len() < 20_000,
        "the long name is not in the log: {} bytes",
        text.len()
    );
    let (ok, out) = verify(&[&log], &dir.path().join("master.key"), None);
    assert!(ok, "{out}");
}

/// The promise: removing every record before a reopening is found: a file that continues a
/// chain verifies only after the file before it, or from the head kept from it.
#[test]
fn records_removed_before_a_reopening_are_found() {
    let server = phi_server(None, &[]);
    let log = server.dir.path().join("audit.log");
    let rotated = server.dir.path().join("audit.log.1");
    let mut con = server.client();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    cmd(&mut con, "ENC.SET patient:1 record").unwrap();
    lines_with(&log, "\"event\":\"phi-write\"", 1);
    let head = info_field(&mut con, "enc", "enc_audit_head").unwrap();
    std::fs::rename(&log, &rotated).unwrap();
    cmd(&mut con, "ENC.AUDIT REOPEN").unwrap();
    cmd(&mut con, "ENC.GET patient:1").unwrap();
    lines_with(&log, "\"event\":\"phi-read\"", 1);
    let key = server.key_path();
    let (ok, out) = verify(&[&log], &key, None);
    assert!(!ok, "the reopened file alone does not verify: {out}");
    assert!(out.contains("continues one whose head was"), "{out}");
    assert!(verify(&[&rotated, &log], &key, None).0);
    let (ok, out) = verify(&[&log], &key, Some(&head));
    assert!(ok, "{out}");
}

/// The promise: the server's own NOPERM on a PHI key or an `ENC.*` command is audited, with
/// the user and client the server saw.
#[test]
fn the_servers_own_denials_reach_the_log() {
    let server = phi_server(None, &[]);
    let log = server.dir.path().join("audit.log");
    let mut con = server.client();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    cmd(&mut con, "ENC.SET patient:1 record").unwrap();
    cmd(&mut con, "ACL SETUSER outsider on >pw %R~public:* +@all").unwrap();
    cmd(&mut con, "ACL SETUSER nocmd on >pw ~* +@all -enc.get").unwrap();
    let mut outsider = server.client_as("outsider", "pw");
    let err = cmd(&mut outsider, "ENC.GET patient:1").unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    let mut nocmd = server.client_as("nocmd", "pw");
    let err = cmd(&mut nocmd, "ENC.GET patient:1").unwrap_err();
    assert!(err.starts_with("NOPERM"), "{err}");
    let denied = lines_with(&log, "the server's ACL", 2);
    assert!(
        denied.iter().any(|l| l.contains("\"user\":\"outsider\"")
            && l.contains("\"key\":\"patient:1\"")
            && l.contains("\"addr\":\"127.0.0.1:")),
        "{denied:?}"
    );
    assert!(
        denied
            .iter()
            .any(|l| l.contains("\"user\":\"nocmd\"") && l.contains("ENC.GET")),
        "{denied:?}"
    );
}

/// The promise: the re-encryption job (which opens every PHI value) is audited, and a read
/// through a script names the client that ran the script where the server tells.
#[test]
fn reencryption_and_scripts_are_attributed() {
    for binary in acl_servers() {
        let server = phi_server(binary, &[]);
        let log = server.dir.path().join("audit.log");
        let mut con = server.client();
        cmd(
            &mut con,
            &format!("CONFIG SET enc.audit-log {}", log.display()),
        )
        .unwrap();
        cmd(&mut con, "ENC.SET patient:1 record").unwrap();
        cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
        cmd(&mut con, "ENC.REENCRYPT START").unwrap();
        wait_reencrypt(&mut con);
        lines_with(&log, "\"event\":\"reencrypt\"", 1);
        lines_with(&log, "\"event\":\"reencrypt-done\"", 1);
        let Value::Int(id) = cmd(&mut con, "CLIENT ID").unwrap() else {
            panic!()
        };
        run(
            &mut con,
            &[b"EVAL", b"return redis.call('ENC.GET','patient:1')", b"0"],
        )
        .unwrap();
        let reads = lines_with(&log, "\"event\":\"phi-read\"", 1);
        let expected = if binary.is_some() {
            format!("\"client_id\":{id}")
        } else {
            "\"addr\":\"script\"".to_owned()
        };
        assert!(reads[0].contains(&expected), "{binary:?}: {}", reads[0]);
    }
}

/// The promise: a command that fails records nothing as read (`ENC.MGET` used to record the
/// values it opened before a later one failed, though it returned none of them).
#[test]
fn a_failed_read_records_no_read() {
    let server = phi_server(None, &["phi-guard", "no"]);
    let log = server.dir.path().join("audit.log");
    let mut con = server.client();
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    cmd(&mut con, "ENC.SET patient:1 record").unwrap();
    cmd(&mut con, "ENC.SET patient:2 other").unwrap();
    let mut stored = bulk(&cmd(&mut con, "GET patient:2").unwrap()).unwrap();
    *stored.last_mut().unwrap() ^= 1;
    run(&mut con, &[b"SET", b"patient:2", &stored]).unwrap();
    cmd(&mut con, "ENC.MGET patient:1 patient:2").unwrap_err();
    cmd(&mut con, "ENC.SET marker x").unwrap();
    cmd(&mut con, "ENC.GET patient:1").unwrap();
    let reads = lines_with(&log, "\"event\":\"phi-read\"", 1);
    assert_eq!(reads.len(), 1, "only the ENC.GET: {reads:?}");
    assert!(reads[0].contains("ENC.GET"), "{}", reads[0]);
}

/// The promise: a replica with the audit log on records the keyring changes its primary
/// sends (it used to crash asking for the user of the replication link).
#[test]
fn a_replica_with_an_audit_log_follows_keyring_changes() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    let log = replica.dir.path().join("audit.log");
    cmd(
        &mut replica.client(),
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    let mut con = primary.client();
    cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
    cmd(&mut con, "ENC.SET k v").unwrap();
    cmd(&mut con, "WAIT 1 5000").unwrap();
    lines_with(&log, "ENC.KEYRING IMPORT", 1);
    assert_eq!(
        cmd(&mut replica.client(), "ENC.GET k").map(|v| bulk(&v)),
        Ok(Some(b"v".to_vec()))
    );
}

/// The promise: a last line cut short (a crash mid-write) does not make the rest of the log
/// unverifiable: the server resumes on a new line from the record before it and says so, and
/// `verify` reports it; an empty log does not pass as verified.
#[test]
fn a_line_cut_short_is_reported_and_the_chain_goes_on() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let log = dir.path().join("audit.log");
    let server = server_with_log(dir.clone(), &log);
    cmd(&mut server.client(), "ENC.SET patient:1 record").unwrap();
    lines_with(&log, "\"event\":\"phi-write\"", 1);
    let dir = server.stop();
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"{\"seq\":99,\"prev\":\"ab")
        .unwrap();
    let server = server_with_log(dir.clone(), &log);
    cmd(&mut server.client(), "ENC.SET patient:2 record").unwrap();
    lines_with(&log, "\"event\":\"phi-write\"", 2);
    server.stop();
    let key = dir.path().join("master.key");
    let (ok, out) = verify(&[&log], &key, None);
    assert!(ok, "{out}");
    assert!(out.contains("warning: line"), "{out}");
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let (ok, out) = verify(&[&empty], &key, None);
    assert!(!ok, "an empty log: {out}");
}

/// The promise: when denials are pushed out of ACL LOG before they are read, the audit log
/// says so (rather than silently missing a denied PHI access).
#[test]
fn denials_pushed_out_of_acl_log_are_noted() {
    for binary in acl_servers() {
        let server = phi_server(binary, &[]);
        let log = server.dir.path().join("audit.log");
        let mut con = server.client();
        cmd(
            &mut con,
            &format!("CONFIG SET enc.audit-log {}", log.display()),
        )
        .unwrap();
        cmd(&mut con, "CONFIG SET acllog-max-len 16").unwrap();
        cmd(&mut con, "ACL SETUSER lim on >pw ~other* +@all").unwrap();
        // One denial the module reads, so that it has seen the log before the flood.
        let mut lim = server.client_as("lim", "pw");
        cmd(&mut lim, "GET patient:0").unwrap_err();
        lines_with(&log, "the server's ACL", 1);
        cmd(&mut lim, "GET patient:1").unwrap_err();
        for i in 0..64 {
            cmd(&mut lim, &format!("GET x{i}")).unwrap_err();
        }
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline
            && !(text().contains("\"key\":\"patient:1\"") || text().contains("acl-log-overflow"))
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            text().contains("\"key\":\"patient:1\"") || text().contains("acl-log-overflow"),
            "{binary:?}: {}\nACL LOG {:?}",
            text(),
            cmd(&mut con, "ACL LOG")
        );
    }
}
