//! Attacks from outside the server: key providers, KMS answers, backups and the tool. Small
//! fakes stand in for a hostile KMS and a hostile replication primary; each test states the
//! promise it tries to break.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redis-enc"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `redis-enc backup --url URL --master-key KEY --out OUT`.
fn backup_from(url: &str, key: &str, out: &Path) -> (i32, String, String) {
    tool(&[
        "backup",
        "--url",
        url,
        "--master-key",
        key,
        "--out",
        out.to_str().unwrap(),
    ])
}

/// A fake HTTP server: answers every request with `reply` and counts them.
struct FakeHttp {
    port: u16,
    requests: Arc<AtomicUsize>,
}

fn fake_http(reply: &'static str) -> FakeHttp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            count.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    FakeHttp { port, requests }
}

fn vault_uri(port: u16) -> String {
    format!("vault-transit:http://127.0.0.1:{port}/transit/k?allow-http=yes")
}

/// The promise: a KMS request carrying credentials never follows a redirect, also not from a
/// KMS that answers with one; the error names where it was sent.
#[test]
fn kms_redirects_are_not_followed() {
    let elsewhere = fake_http("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    let location = format!("http://127.0.0.1:{}/steal", elsewhere.port);
    let reply: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let redirecting = fake_http(reply);
    let log = start_fails(Options {
        module_args: Some(vec!["master-key".into(), vault_uri(redirecting.port)]),
        env: vec![("VAULT_TOKEN".into(), "s.secret-token".into())],
        ..Options::default()
    });
    let line = log
        .lines()
        .find(|l| l.contains("refusing to load"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("not followed") && line.contains("/steal"),
        "{log}"
    );
    assert!(redirecting.requests.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        elsewhere.requests.load(Ordering::SeqCst),
        0,
        "the token went nowhere else"
    );
    assert!(!log.contains("s.secret-token"));
}

/// The promise: a KMS is reached over https unless plain http is asked for, and then the log
/// says so; an error a KMS sends cannot forge log lines.
#[test]
fn plain_http_needs_asking_and_kms_text_cannot_forge_log_lines() {
    let log = start_fails(Options {
        module_args: Some(vec![
            "master-key".into(),
            "vault-transit:http://127.0.0.1:1/transit/k".into(),
        ]),
        env: vec![("VAULT_TOKEN".into(), "t".into())],
        ..Options::default()
    });
    assert!(log.contains("plain http"), "{log}");
    let forging = fake_http(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 55\r\n\r\n\
         {\"errors\":[\"denied\\n# redis-enc: all is well, rotate\"]}",
    );
    let log = start_fails(Options {
        module_args: Some(vec!["master-key".into(), vault_uri(forging.port)]),
        env: vec![("VAULT_TOKEN".into(), "t".into())],
        ..Options::default()
    });
    assert!(
        log.contains("403") && log.contains("all is well"),
        "the KMS text is reported: {log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("# redis-enc: all is well")),
        "a forged line: {log}"
    );
    assert!(
        log.contains("plain http (allow-http=yes)") || log.contains("refusing"),
        "{log}"
    );
}

/// The promise: `file:` naming a FIFO or a device does not hang or exhaust the start.
#[test]
fn a_fifo_or_a_device_as_key_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("master.key");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let log = start_fails(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("file:{}", fifo.display()),
        ]),
        ..Options::default()
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(log.contains("not a regular file"), "{log}");
    let log = start_fails(Options {
        module_args: Some(vec!["master-key".into(), "file:/dev/zero".into()]),
        ..Options::default()
    });
    assert!(log.contains("not a regular file"), "{log}");
}

/// A fake replication primary: answers AUTH and REPLCONF with +OK, then SYNC with `sync`
/// (written in pieces, with `pause` before the last piece).
fn fake_primary(sync: Vec<Vec<u8>>, pause: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(n) = line.trim().strip_prefix('*') {
                    let n: usize = n.parse().unwrap_or(0);
                    let mut words = Vec::new();
                    for _ in 0..n {
                        let mut len = String::new();
                        let _ = reader.read_line(&mut len);
                        let mut word = String::new();
                        let _ = reader.read_line(&mut word);
                        words.push(word.trim().to_ascii_uppercase());
                    }
                    if words.first().map(String::as_str) == Some("SYNC") {
                        let last = sync.len().saturating_sub(1);
                        for (i, piece) in sync.iter().enumerate() {
                            if i == last {
                                std::thread::sleep(pause);
                            }
                            if out.write_all(piece).is_err() {
                                return;
                            }
                        }
                        std::thread::sleep(Duration::from_secs(2));
                        return;
                    }
                    let _ = out.write_all(b"+OK\r\n");
                }
            }
        }
    });
    port
}

fn key_file(dir: &Path) -> String {
    let path = dir.join("master.key");
    write_key(&path);
    format!("file:{}", path.display())
}

/// The promise: what is backed up must be a whole RDB file: junk, or half an RDB sent as
/// complete, leaves no backup behind.
#[test]
fn only_whole_rdb_files_are_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let junk = dir.path().join("junk.rdb");
    std::fs::write(&junk, b"this is no rdb file at all").unwrap();
    let out = dir.path().join("junk.renc");
    let (code, _, err) = tool(&[
        "backup",
        "--rdb",
        junk.to_str().unwrap(),
        "--master-key",
        &key,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("not a whole RDB file"), "{err}");
    assert!(!out.exists());
    // A primary that sends half an RDB as a complete transfer.
    let half = b"REDIS0010\xfa\x09redis-ver\x067.0.15".to_vec();
    let mut reply = format!("${}\r\n", half.len()).into_bytes();
    reply.extend_from_slice(&half);
    let port = fake_primary(vec![reply], Duration::ZERO);
    let out = dir.path().join("half.renc");
    let (code, _, err) = backup_from(&format!("redis://127.0.0.1:{port}"), &key, &out);
    assert_ne!(code, 0);
    assert!(err.contains("not a whole RDB file"), "{err}");
    assert!(!out.exists());
}

/// The promise: a server that sends an endless reply line does not fill the tool's memory,
/// and a password in the URL is never printed.
#[test]
fn endless_lines_and_passwords_do_not_reach_memory_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let endless = vec![vec![b'a'; 8 * 1024 * 1024]];
    let port = fake_primary(endless, Duration::ZERO);
    let out = dir.path().join("x.renc");
    let (code, _, err) = backup_from(&format!("redis://127.0.0.1:{port}"), &key, &out);
    assert_ne!(code, 0);
    assert!(err.contains("longer than"), "{err}");
    assert!(!out.exists());
    for url in [
        "redis://ops:hunter2-secret@127.0.0.1:bad",
        "redis://ops:hunter2-secret@127.0.0.1:1",
        "ftp://ops:hunter2-secret@host",
    ] {
        let (code, out, err) = tool(&[
            "backup",
            "--url",
            url,
            "--master-key",
            &key,
            "--out",
            "/nonexistent/x",
        ]);
        assert_ne!(code, 0);
        assert!(
            !err.contains("hunter2") && !out.contains("hunter2"),
            "{url}: {err}"
        );
    }
}

/// The promise: an output file that appears while a backup runs is never replaced.
#[test]
fn an_output_created_during_the_run_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let mut rdb = b"REDIS0010\xfa\x09redis-ver\x067.0.15\xff".to_vec();
    rdb.extend([0u8; 8]);
    let mut first = format!("${}\r\n", rdb.len()).into_bytes();
    first.extend_from_slice(&rdb[..10]);
    let port = fake_primary(vec![first, rdb[10..].to_vec()], Duration::from_millis(1500));
    let out = dir.path().join("race.renc");
    let child = Command::new(env!("CARGO_BIN_EXE_redis-enc"))
        .args([
            "backup",
            "--url",
            &format!("redis://127.0.0.1:{port}"),
            "--master-key",
            &key,
            "--out",
            out.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&out, b"someone else's file").unwrap();
    let result = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(err.contains("was created while this ran"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"someone else's file");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The promise: a restore stopped by SIGTERM or Ctrl-C leaves no plaintext RDB behind.
#[test]
fn a_stopped_restore_leaves_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    // A real backup of a real RDB, then a restore that reads it from a FIFO fed slowly.
    let server = Server::start();
    let mut con = server.client();
    for i in 0..2000 {
        cmd(&mut con, &format!("SET key:{i} value-{i}")).unwrap();
    }
    cmd(&mut con, "SAVE").unwrap();
    let rdb = server.dir.path().join("dump.rdb");
    let backup = dir.path().join("b.renc");
    let (code, _, err) = tool(&[
        "backup",
        "--rdb",
        rdb.to_str().unwrap(),
        "--master-key",
        &key,
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&backup).unwrap();
    let fifo = dir.path().join("feed");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out_dir = dir.path().join("restore");
    std::fs::create_dir(&out_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redis-enc"))
        .args([
            "restore",
            "--in",
            fifo.to_str().unwrap(),
            "--master-key",
            &key,
            "--out",
            out_dir.join("dump.rdb").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    feed.write_all(&bytes[..bytes.len() / 2]).unwrap();
    wait_until("the partial plaintext file", || {
        std::fs::read_dir(&out_dir).unwrap().count() > 0
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    drop(feed);
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        0,
        "the partial plaintext RDB is gone"
    );
}
