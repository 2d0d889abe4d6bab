//! Encrypted backups with the `redis-enc` tool: a live server backed up, verified and restored
//! into a fresh server; every kind of tampering found; no plaintext on disk; output pinned.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use redis::Value;

fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool_exe()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn key_uri(server: &Server) -> String {
    format!("file:{}", server.key_path().display())
}

/// Digits replaced by `N`, so that summaries with sizes and times compare with a golden text.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

const SECRET_VALUES: [&str; 3] = [
    "BACKUP-SECRET-VALUE-1",
    "BACKUP-SECRET-FIELD-2",
    "BACKUP-PLAIN-VALUE-3",
];
const SECRET_NAMES: [&str; 2] = ["distinctive-key-name-alpha", "distinctive-stream-name-beta"];

fn mixed_dataset(con: &mut redis::Connection) {
    cmd(
        con,
        &format!("ENC.SET sealed:1 {} EX 5000", SECRET_VALUES[0]),
    )
    .unwrap();
    cmd(
        con,
        &format!("ENC.HSETFIELD patient:1 ssn {} PHI", SECRET_VALUES[1]),
    )
    .unwrap();
    cmd(con, "HSET patient:1 name Ada").unwrap();
    cmd(
        con,
        &format!("SET {} {}", SECRET_NAMES[0], SECRET_VALUES[2]),
    )
    .unwrap();
    cmd(con, "RPUSH list:1 a b c").unwrap();
    cmd(con, &format!("XADD {} * f v", SECRET_NAMES[1])).unwrap();
    cmd(con, "PEXPIRE list:1 900000").unwrap();
    // Enough sealed bulk for several 64 KiB chunks.
    for i in 0..300 {
        cmd(con, &format!("ENC.SET bulk:{i} {}", "x".repeat(1000))).unwrap();
    }
}

fn backup_server() -> Server {
    Server::with(Options {
        server_args: vec!["--repl-diskless-sync-delay".into(), "0".into()],
        ..Options::default()
    })
}

#[test]
fn backup_verify_restore_into_a_fresh_server() {
    let server = backup_server();
    let mut con = server.client();
    mixed_dataset(&mut con);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup.renc");
    let (code, out, err) = tool(&[
        "backup",
        "--url",
        &server.url(),
        "--master-key",
        &key_uri(&server),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        shape(&out),
        shape(&format!("backup of redis://127.0.0.1:{} written to {}\n1 RDB bytes, 1 file bytes, 1 s, 1 MB/s\n", server.port, file.display()))
    );
    // Nothing but the encrypted file was written, and it holds none of the distinctive strings.
    let files: Vec<PathBuf> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files, vec![file.clone()]);
    let bytes = std::fs::read(&file).unwrap();
    for s in SECRET_VALUES.iter().chain(SECRET_NAMES.iter()) {
        assert!(!contains(&bytes, s.as_bytes()), "{s} is in the backup file");
    }

    let (code, out, _) = tool(&[
        "verify",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        &key_uri(&server),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        shape(&out),
        shape(&format!(
            "{}: intact and complete (1 RDB bytes from redis://127.0.0.1:{})\n",
            file.display(),
            server.port
        ))
    );
    let (code, out, _) = tool(&[
        "verify",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        &key_uri(&server),
        "--json",
    ]);
    assert_eq!(code, 0);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["ok"], true);

    let (code, out, _) = tool(&["inspect", "--in", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("source       redis://127.0.0.1:{}", server.port)),
        "{out}"
    );
    assert!(out.contains("key id       local:"), "{out}");

    // Restore into a fresh server's directory with the same master key.
    let fresh_dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::copy(server.key_path(), fresh_dir.path().join("master.key")).unwrap();
    let rdb = fresh_dir.path().join("dump.rdb");
    let (code, out, err) = tool(&[
        "restore",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        &key_uri(&server),
        "--out",
        rdb.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        shape(&out),
        shape(&format!(
            "restored 1 RDB bytes from redis://127.0.0.1:{} into {}\n",
            server.port,
            rdb.display()
        ))
    );
    let fresh = Server::with(Options {
        dir: Some(fresh_dir),
        ..Options::default()
    });
    let mut f = fresh.client();
    assert_eq!(
        cmd(&mut f, "DBSIZE").unwrap(),
        cmd(&mut con, "DBSIZE").unwrap()
    );
    assert_eq!(
        bulk(&cmd(&mut f, "ENC.GET sealed:1").unwrap()).unwrap(),
        SECRET_VALUES[0].as_bytes()
    );
    assert_eq!(
        cmd(&mut f, "ENC.HGETFIELD patient:1 ssn").unwrap(),
        Value::Array(vec![Value::BulkString(
            SECRET_VALUES[1].as_bytes().to_vec()
        )])
    );
    assert_eq!(
        bulk(&cmd(&mut f, "HGET patient:1 name").unwrap()).unwrap(),
        b"Ada"
    );
    assert_eq!(
        bulk(&cmd(&mut f, &format!("GET {}", SECRET_NAMES[0])).unwrap()).unwrap(),
        SECRET_VALUES[2].as_bytes()
    );
    assert_eq!(
        cmd(&mut f, "LRANGE list:1 0 -1").unwrap(),
        cmd(&mut con, "LRANGE list:1 0 -1").unwrap()
    );
    assert_eq!(
        cmd(&mut f, &format!("XLEN {}", SECRET_NAMES[1])).unwrap(),
        Value::Int(1)
    );
    assert!(
        matches!(cmd(&mut f, "TTL sealed:1").unwrap(), Value::Int(t) if t > 4000),
        "TTLs kept"
    );
    assert!(matches!(cmd(&mut f, "PTTL list:1").unwrap(), Value::Int(t) if t > 800_000));
    for i in [0, 150, 299] {
        assert_eq!(
            bulk(&cmd(&mut f, &format!("ENC.GET bulk:{i}")).unwrap())
                .unwrap()
                .len(),
            1000
        );
    }
    // An RDB file can be backed up too.
    let from_rdb = work.path().join("from-rdb.renc");
    let (code, out, _) = tool(&[
        "backup",
        "--rdb",
        rdb.to_str().unwrap(),
        "--master-key",
        &key_uri(&server),
        "--out",
        from_rdb.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("backup of rdb:{} written to", rdb.display())),
        "{out}"
    );
}

fn assert_fails_cleanly(file: &Path, key: &str, expected: &str) {
    let dir = file.parent().unwrap();
    let out_rdb = dir.join("restored.rdb");
    let (code, out, err) = tool(&[
        "verify",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        key,
    ]);
    assert_eq!(code, 1, "verify must fail: {out}");
    assert_eq!(err, format!("redis-enc: {}: {expected}\n", file.display()));
    let (code, _, err) = tool(&[
        "restore",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        key,
        "--out",
        out_rdb.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(err, format!("redis-enc: {}: {expected}\n", file.display()));
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restored"))
        .collect();
    assert!(leftovers.is_empty(), "no output left behind: {leftovers:?}");
}

#[test]
fn tampered_backups_fail_clearly_and_leave_no_output() {
    let server = backup_server();
    mixed_dataset(&mut server.client());
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.renc");
    let (code, _, err) = tool(&[
        "backup",
        "--url",
        &server.url(),
        "--master-key",
        &key_uri(&server),
        "--out",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&good).unwrap();
    let header_len = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let unit = 64 * 1024 + 16;
    assert!(bytes.len() > header_len + 3 * unit, "several chunks");
    let key = key_uri(&server);
    let write = |name: &str, data: Vec<u8>| {
        let p = work.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let flip = |i: usize| {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        b
    };
    let damaged = |n: u64| {
        let kms = if n == 0 {
            " (or, if a key management service unwrapped the file key, it returned a wrong one)"
        } else {
            ""
        };
        format!("chunk {n} failed authentication: the backup was modified, its chunks reordered or duplicated, or its header altered{kms}")
    };
    // The header: its JSON no longer parses, or names another key, or fails every chunk.
    let p = write("header.renc", flip(header_len - 3));
    let (code, _, err) = tool(&["verify", "--in", p.to_str().unwrap(), "--master-key", &key]);
    assert_eq!(code, 1);
    assert!(err.contains("header") || err.contains("chunk 0"), "{err}");
    assert_fails_cleanly(
        &write("chunk.renc", flip(header_len + unit + 100)),
        &key,
        &damaged(1),
    );
    assert_fails_cleanly(
        &write("tag.renc", flip(header_len + 2 * unit - 1)),
        &key,
        &damaged(1),
    );
    assert_fails_cleanly(
        &write("truncated.renc", bytes[..header_len + 2 * unit].to_vec()),
        &key,
        "the backup is truncated: its last chunk is missing",
    );
    assert_fails_cleanly(
        &write("cut.renc", bytes[..bytes.len() - 5].to_vec()),
        &key,
        &damaged(((bytes.len() - header_len) / unit) as u64),
    );
    let mut swapped = bytes[..header_len].to_vec();
    swapped.extend_from_slice(&bytes[header_len + unit..header_len + 2 * unit]);
    swapped.extend_from_slice(&bytes[header_len..header_len + unit]);
    swapped.extend_from_slice(&bytes[header_len + 2 * unit..]);
    assert_fails_cleanly(&write("swapped.renc", swapped), &key, &damaged(0));
    let mut duplicated = bytes[..header_len + 2 * unit].to_vec();
    duplicated.extend_from_slice(&bytes[header_len + unit..]);
    assert_fails_cleanly(&write("duplicated.renc", duplicated), &key, &damaged(2));
    let other = work.path().join("other.key");
    write_key(&other);
    assert_fails_cleanly(
        &good,
        &format!("file:{}", other.display()),
        "the master key does not unwrap this backup's file key (wrong master key, or a damaged header)",
    );
    assert_fails_cleanly(
        &write("garbage.renc", b"not a backup".to_vec()),
        &key,
        "not a redis-enc backup (bad magic)",
    );
}

#[test]
fn help_and_errors_are_pinned() {
    assert_eq!(tool(&["--help"]).1, golden("help.txt"));
    for c in ["backup", "verify", "restore", "inspect"] {
        assert_eq!(
            tool(&[c, "--help"]).1,
            golden(&format!("help-{c}.txt")),
            "{c} --help"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    write_key(&key);
    let key_uri = format!("file:{}", key.display());
    let existing = dir.path().join("exists");
    std::fs::write(&existing, b"x").unwrap();
    let (code, _, err) = tool(&[
        "restore",
        "--in",
        existing.to_str().unwrap(),
        "--master-key",
        &key_uri,
        "--out",
        existing.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "redis-enc: {} exists; remove it or choose another --out\n",
            existing.display()
        )
    );
    let (code, _, err) = tool(&[
        "backup",
        "--url",
        "redis://127.0.0.1:1",
        "--master-key",
        &key_uri,
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("redis-enc: cannot connect to 127.0.0.1:1: "),
        "{err}"
    );
    assert!(!dir.path().join("b").exists());
    let (code, _, err) = tool(&["inspect", "--in", "/nonexistent.renc"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "redis-enc: cannot read /nonexistent.renc: No such file or directory (os error 2)\n"
    );
}

fn drill(server: &Server, tmp: &Path, record: &Path) -> std::process::Child {
    let root = env!("CARGO_MANIFEST_DIR");
    Command::new("bash")
        .arg(format!("{root}/scripts/restore-drill.sh"))
        .args(["--url", &server.url(), "--master-key", &key_uri(server)])
        .arg("--record")
        .arg(record)
        .env("REDIS_ENC", tool_exe())
        .env("REDIS_ENC_MODULE", module_path())
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The restore drill's own server, found by its configuration file under `tmp`.
fn drill_server_pids(tmp: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-f", &format!("redis-server.*{}", tmp.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_restore_drill_script_passes_and_reports_times() {
    let server = backup_server();
    mixed_dataset(&mut server.client());
    cmd(
        &mut server.client(),
        "CONFIG SET enc.phi-patterns patient:*",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let records = tempfile::tempdir().unwrap();
    let record = records.path().join("records.jsonl");
    let out = drill(&server, tmp.path(), &record)
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "backup ",
        "verify ",
        "restore ",
        "server up ",
        "compare ",
        "recovery ",
    ] {
        assert!(stdout.contains(step), "{step} timed: {stdout}");
    }
    assert!(stdout.contains("100 keys sampled, 0 differ"), "{stdout}");
    assert!(stdout.trim_end().ends_with("restore-drill: OK"));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
    assert_eq!(
        recorded(&record),
        [
            ("backup".to_owned(), "ok".to_owned()),
            ("backup-verify".to_owned(), "ok".to_owned()),
            ("restore-drill".to_owned(), "ok".to_owned())
        ]
    );
}

/// The promise: the drill's server (production data, production key) listens on no TCP port,
/// runs with the production PHI policy, and a drill stopped half-way (SIGTERM) stops it and
/// leaves no plaintext RDB behind.
#[test]
fn the_restore_drill_stays_private_and_cleans_up_when_stopped() {
    let server = backup_server();
    mixed_dataset(&mut server.client());
    cmd(
        &mut server.client(),
        "CONFIG SET enc.phi-patterns patient:*",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let records = tempfile::tempdir().unwrap();
    let record = records.path().join("records.jsonl");
    let mut child = drill(&server, tmp.path(), &record);
    wait_until("the drill's server", || {
        !drill_server_pids(tmp.path()).is_empty()
    });
    let pid = drill_server_pids(tmp.path())[0].clone();
    let listening = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ss -ltnp 2>/dev/null | grep -c 'pid={pid},' || true"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listening.stdout).trim(),
        "0",
        "no TCP port"
    );
    let conf = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|d| d.path().join("drill.conf"))
        .find(|p| p.exists())
        .unwrap();
    let conf = std::fs::read_to_string(conf).unwrap();
    assert!(conf.contains("enc.phi-patterns \"patient:*\""), "{conf}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    wait_until("the drill's server to stop", || {
        drill_server_pids(tmp.path()).is_empty()
    });
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the restored RDB is gone"
    );
    assert_eq!(
        recorded(&record).last().unwrap(),
        &("restore-drill".to_owned(), "failed".to_owned()),
        "a stopped drill is recorded as failed"
    );
}

/// The kind and result of each record in a records file.
fn recorded(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["kind"].as_str().unwrap().to_owned(),
                v["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
#[test]
fn a_backup_over_tls_with_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let tls_port = free_port();
    let mut server_args = tls_server_args(certs.path(), tls_port, "yes");
    server_args.extend(["--repl-diskless-sync-delay".into(), "0".into()]);
    let server = Server::with(Options {
        server_args,
        ..Options::default()
    });
    cmd(
        &mut server.client(),
        &format!("ENC.SET tls:1 {}", SECRET_VALUES[0]),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("tls.renc");
    let url = format!("redis://127.0.0.1:{tls_port}");
    let key = key_uri(&server);
    let mut args = vec!["backup", "--url", &url, "--master-key", &key, "--out"];
    args.push(file.to_str().unwrap());
    let tls = tls_client_args(certs.path());
    args.extend(tls.iter().map(String::as_str));
    let (code, out, err) = tool(&args);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = tool(&[
        "verify",
        "--in",
        file.to_str().unwrap(),
        "--master-key",
        &key_uri(&server),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!contains(
        &std::fs::read(&file).unwrap(),
        SECRET_VALUES[0].as_bytes()
    ));
    // Without the client certificate the server refuses the handshake; nothing is written.
    let refused = work.path().join("refused.renc");
    let (code, _, err) = tool(&[
        "backup",
        "--url",
        &url,
        "--tls",
        "--tls-ca-cert",
        &c("ca.crt"),
        "--master-key",
        &key_uri(&server),
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.starts_with("redis-enc: "), "{err}");
    assert!(!refused.exists());
}
