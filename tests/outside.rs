//! Attacks from outside the server: key providers, KMS answers, backups and the tool. Small
//! fakes stand in for a hostile KMS and a hostile replication primary; each test states the
//! promise it tries to break.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool_exe()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tool with a Vault token in its environment.
fn tool_env(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool_exe())
        .args(args)
        .env("VAULT_TOKEN", "t")
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
            let _ = read_request(&mut reader);
            count.fetch_add(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    FakeHttp { port, requests }
}

/// One HTTP request: its first line and its body; `None` once the client is gone.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut request = String::new();
    if reader.read_line(&mut request).unwrap_or(0) == 0 {
        return None;
    }
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
    reader.read_exact(&mut body).ok()?;
    Some((request, body))
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
    // A 200 that carries no key is a KMS failure, not a key.
    let empty = fake_http("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    let log = start_fails(Options {
        module_args: Some(vec!["master-key".into(), vault_uri(empty.port)]),
        env: vec![("VAULT_TOKEN".into(), "t".into())],
        ..Options::default()
    });
    assert!(log.contains("reply has no ciphertext"), "{log}");
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
    // A server that quotes the password back in its refusal.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"-WRONGPASS 'hunter2-secret' is not the password\r\n");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let url = format!("redis://ops:hunter2-secret@127.0.0.1:{port}");
    let (code, out, err) = backup_from(&url, &key, &dir.path().join("y.renc"));
    assert_ne!(code, 0);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(
        !err.contains("hunter2") && !out.contains("hunter2"),
        "{err}"
    );
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
    let child = Command::new(tool_exe())
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
    let mut child = Command::new(tool_exe())
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

/// A fake Vault Transit engine standing in for a KMS's protocol and latency (not its secrecy:
/// it "encrypts" by tagging). It answers each request after the delay set, on every connection
/// the client opens at once; while `down`, it answers 503 as a sealed Vault does.
struct FakeVault {
    port: u16,
    delay_ms: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl FakeVault {
    fn start() -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let vault = FakeVault {
            port: listener.local_addr().unwrap().port(),
            delay_ms: Arc::new(AtomicU64::new(0)),
            down: Arc::new(AtomicBool::new(false)),
            requests: Arc::new(AtomicUsize::new(0)),
        };
        let shared = (
            vault.delay_ms.clone(),
            vault.down.clone(),
            vault.requests.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve_vault(stream, &shared.0, &shared.1, &shared.2));
            }
        });
        vault
    }

    /// Options for a server whose master key this Vault holds.
    fn server_options(&self) -> Options {
        Options {
            module_args: Some(vec!["master-key".into(), vault_uri(self.port)]),
            env: vec![("VAULT_TOKEN".into(), "t".into())],
            ..Options::default()
        }
    }

    /// A server whose master key this Vault holds, on `dir` (a restart), with `server_args`.
    fn server_on(&self, dir: Arc<tempfile::TempDir>, server_args: &[&str]) -> Server {
        let mut opts = self.server_options();
        opts.dir = Some(dir);
        opts.server_args = server_args.iter().map(|a| a.to_string()).collect();
        Server::with(opts)
    }

    fn set_delay(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_vault(stream: TcpStream, delay: &AtomicU64, down: &AtomicBool, count: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some((request, body)) = read_request(&mut reader) {
        count.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
        let body = String::from_utf8_lossy(&body);
        let field = |name: &str| {
            body.split(&format!("\"{name}\":\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        let (status, reply) = if down.load(Ordering::SeqCst) {
            (
                "503 Service Unavailable",
                r#"{"errors":["Vault is sealed"]}"#.to_owned(),
            )
        } else if request.contains("/encrypt/") {
            let tagged = field("plaintext");
            (
                "200 OK",
                format!(r#"{{"data":{{"ciphertext":"vault:v1:{tagged}"}}}}"#),
            )
        } else if request.contains("/decrypt/") {
            let tagged = field("ciphertext");
            let plaintext = tagged.trim_start_matches("vault:v1:");
            (
                "200 OK",
                format!(r#"{{"data":{{"plaintext":"{plaintext}"}}}}"#),
            )
        } else {
            ("404 Not Found", r#"{"errors":[]}"#.to_owned())
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// How long a `PING` takes, at most and at the median, over `rounds` rounds while `busy` holds.
fn ping_pauses(
    con: &mut redis::Connection,
    mut busy: impl FnMut(usize) -> bool,
) -> (Duration, Duration) {
    let mut times = Vec::new();
    while busy(times.len()) {
        let started = Instant::now();
        cmd(con, "PING").unwrap();
        times.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    times.sort();
    (times[times.len() - 1], times[times.len() / 2])
}

/// Asserts that `key` opens to `value`.
fn opens(con: &mut redis::Connection, key: &str, value: &str) {
    let got = bulk(&cmd(con, &format!("ENC.GET {key}")).unwrap()).unwrap();
    assert_eq!(got, value.as_bytes(), "{key}");
}

/// The promise: a keyring change that waits on a slow KMS blocks the client that asked, not the
/// server; a second change meanwhile is refused at once, not queued; the change reaches the AOF.
#[test]
fn a_slow_kms_blocks_only_the_client_that_asked() {
    let vault = FakeVault::start();
    let server = vault.server_on(
        Arc::new(tempfile::tempdir().unwrap()),
        &["--appendonly", "yes"],
    );
    let mut con = server.client();
    cmd(&mut con, "ENC.SET before one").unwrap();
    let (normal_max, normal_median) = ping_pauses(&mut con, |n| n < 200);

    vault.set_delay(2000);
    let url = server.url();
    let rotating = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let started = Instant::now();
        (cmd(&mut c, "ENC.KEYRING ROTATE"), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let second = cmd(&mut con, "ENC.KEYRING CREATE other").unwrap_err();
    assert!(
        second.contains("waiting for the key management service"),
        "{second}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
    opens(&mut con, "before", "one");
    let (busy_max, busy_median) = ping_pauses(&mut con, |_| !rotating.is_finished());
    let (rotated, took) = rotating.join().unwrap();
    assert_eq!(rotated.unwrap(), redis::Value::Int(2));
    assert!(
        took >= Duration::from_secs(2),
        "the client waited for the KMS: {took:?}"
    );
    eprintln!(
        "PING during a ROTATE waiting {took:?} on the KMS: longest {busy_max:?}, median {busy_median:?}; \
         before it: longest {normal_max:?}, median {normal_median:?}"
    );
    assert!(
        busy_max < normal_max + Duration::from_millis(50),
        "another client paused {busy_max:?} (normally at most {normal_max:?})"
    );

    vault.set_delay(0);
    cmd(&mut con, "ENC.SET after two").unwrap();
    assert_eq!(key_version(&mut con, "after", None), 2);

    // A transaction or a script cannot wait for the KMS: the change is refused, nothing moves.
    let refused: redis::Value = redis::pipe()
        .atomic()
        .cmd("ENC.KEYRING")
        .arg("ROTATE")
        .query(&mut con)
        .unwrap_or_else(|e| redis::Value::SimpleString(e.to_string()));
    assert!(
        format!("{refused:?}").contains("cannot do: run it on its own"),
        "{refused:?}"
    );
    let scripted = redis::cmd("EVAL")
        .arg("return redis.call('ENC.KEYRING','ROTATE')")
        .arg(0)
        .query::<redis::Value>(&mut con)
        .map_err(|e| error_text(&e))
        .unwrap_err();
    assert!(scripted.contains("run it on its own"), "{scripted}");
    cmd(&mut con, "ENC.SET after two").unwrap();
    assert_eq!(key_version(&mut con, "after", None), 2);
    let dir = server.stop();
    let restarted = vault.server_on(dir, &["--appendonly", "yes"]);
    let mut con = restarted.client();
    opens(&mut con, "before", "one");
    opens(&mut con, "after", "two");
}

/// The promise: a start with many KMS-wrapped key versions unwraps them in parallel and says
/// how long it took: 1,000 versions behind a KMS answering in 50 ms load in seconds (one at a
/// time, 50 s).
#[test]
fn a_thousand_kms_wrapped_versions_load_in_seconds() {
    let vault = FakeVault::start();
    let server = Server::with(vault.server_options());
    let mut con = server.client();
    cmd(&mut con, "ENC.SET first one").unwrap();
    for _ in 1..1000 {
        cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
    }
    cmd(&mut con, "ENC.SET last thousand").unwrap();
    assert_eq!(key_version(&mut con, "last", None), 1000);
    cmd(&mut con, "SAVE").unwrap();
    let dir = server.stop();

    vault.set_delay(50);
    let before = vault.requests();
    let started = Instant::now();
    let server = vault.server_on(dir, &[]);
    let took = started.elapsed();
    let requests = vault.requests() - before;
    eprintln!("start with 1000 KMS-wrapped versions, KMS answering in 50 ms: {took:?}, {requests} requests");
    assert!(requests >= 1000, "{requests}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        server
            .log()
            .contains("unwrapping the keyring record's data keys took"),
        "{}",
        server.log()
    );
    let mut con = server.client();
    opens(&mut con, "first", "one");
    opens(&mut con, "last", "thousand");
}

/// The promise: a KMS that is down is reported as a KMS failure, by the module and by the
/// backup tool, not as a wrong master key or a damaged backup; it does not keep the server from
/// starting, and what it could not give is asked for again until it answers.
#[test]
fn a_kms_outage_is_not_reported_as_a_wrong_key() {
    let vault = FakeVault::start();
    vault.down.store(true, Ordering::SeqCst);
    let fresh = Server::with(vault.server_options());
    let mut con = fresh.client();
    let e = cmd(&mut con, "ENC.SET k v").unwrap_err();
    assert!(
        e.contains("key management service") && e.contains("503"),
        "{e}"
    );
    let e = cmd(&mut con, "ENC.KEYRING CREATE other").unwrap_err();
    assert!(
        e.contains("no keyring yet"),
        "no keyring before default: {e}"
    );
    // A record of no keyring, saved now, replaces nothing at the next start.
    cmd(&mut con, "SAVE").unwrap();
    let dir = fresh.stop();
    vault.down.store(false, Ordering::SeqCst);
    let fresh = vault.server_on(dir, &[]);
    let mut con = fresh.client();
    cmd(&mut con, "ENC.SET k v").unwrap();
    cmd(&mut con, "FLUSHALL").unwrap();
    let dir = fresh.stop();
    vault.down.store(true, Ordering::SeqCst);
    let fresh = vault.server_on(dir, &[]);
    let mut con = fresh.client();
    vault.down.store(false, Ordering::SeqCst);
    wait_until("the KMS to make the first key", || {
        cmd(&mut con, "ENC.SET k v").is_ok()
    });
    cmd(&mut con, "SAVE").unwrap();
    let dir = fresh.stop();

    vault.down.store(true, Ordering::SeqCst);
    let server = vault.server_on(dir.clone(), &[]);
    let mut con = server.client();
    let e = cmd(&mut con, "ENC.GET k").unwrap_err();
    assert!(
        e.contains("key management service") && e.contains("503") && !e.contains("not the one"),
        "{e}"
    );
    assert!(server.log().contains("503"), "{}", server.log());
    vault.down.store(false, Ordering::SeqCst);
    wait_until("the locked key to be unwrapped", || {
        cmd(&mut con, "ENC.GET k").is_ok()
    });
    opens(&mut con, "k", "v");
    assert!(server
        .log()
        .contains("unwrapped now that the key management service answers"));

    let rdb = dir.path().join("dump.rdb");
    let backup = dir.path().join("b.enc");
    let key = vault_uri(vault.port);
    let (code, _, err) = tool_env(&[
        "backup",
        "--rdb",
        rdb.to_str().unwrap(),
        "--master-key",
        &key,
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    vault.down.store(true, Ordering::SeqCst);
    let (code, out, err) = tool_env(&[
        "verify",
        "--master-key",
        &key,
        "--in",
        backup.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    let said = format!("{out}{err}");
    assert!(
        said.contains("key management service")
            && said.contains("503")
            && !said.contains("wrong master key"),
        "{said}"
    );
}

/// The keys a fake Vault holds for keyring `name`: its raw data keys (the fake's "ciphertext"
/// is the key in base64), read from an export.
fn raw_keys_of(export: &[u8], name: &str) -> Vec<Vec<u8>> {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    let text = String::from_utf8_lossy(export);
    let json: serde_json::Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
    let ring = json["keyrings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap();
    ring["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let wrapped = STANDARD
                .decode(v["material"]["key"].as_str().unwrap())
                .unwrap();
            let tagged = String::from_utf8(wrapped).unwrap();
            STANDARD
                .decode(tagged.strip_prefix("vault:v1:").unwrap())
                .unwrap()
        })
        .collect()
}

/// The XAES-256-GCM key that `key` derives for the nonce prefix of `envelope` (FORMAT.md §1.3).
fn derived_key(key: &[u8], envelope: &[u8]) -> Vec<u8> {
    use cmac::{KeyInit, Mac};
    let mut kx = Vec::new();
    for counter in [1u8, 2] {
        let mut mac = <cmac::Cmac<aes::Aes256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&[0x00, counter, b'X', 0x00]);
        mac.update(&envelope[8..20]);
        kx.extend_from_slice(&mac.finalize().into_bytes());
    }
    kx
}

/// Where the server's memory holds any of `secrets`.
fn copies_in_memory(server: &Server, secrets: &[(&str, Vec<u8>)]) -> Vec<String> {
    let memory = server.memory();
    let mut copies = Vec::new();
    for (what, secret) in secrets {
        for (region, bytes) in &memory {
            for (at, _) in bytes
                .windows(secret.len())
                .enumerate()
                .filter(|(_, w)| w == secret)
            {
                copies.push(format!("{what} at +{at:#x} of {region}"));
            }
        }
    }
    copies
}

/// The promise: once a keyring is destroyed, the server's memory holds no copy of its keys:
/// not the raw keys (nor the AES round keys that begin with them), wherever the module moved
/// them (the store, the KMS thread, a re-wrapping), and not the keys derived from them for the
/// values sealed and opened.
#[test]
fn a_destroyed_key_leaves_no_copy_in_memory() {
    let vault = FakeVault::start();
    let server = Server::with(vault.server_options());
    let mut con = server.client();
    cmd(&mut con, "ENC.KEYRING CREATE shred").unwrap();
    cmd(&mut con, "ENC.SET first v KEYRING shred").unwrap();
    cmd(&mut con, "ENC.KEYRING ROTATE shred").unwrap();
    cmd(&mut con, "ENC.KEYRING REWRAP").unwrap();
    let redis::Value::BulkString(export) = cmd(&mut con, "ENC.KEYRING EXPORT").unwrap() else {
        panic!()
    };
    // Sealing and opening last: little that overwrites the stack runs after them.
    cmd(&mut con, "ENC.SET k v KEYRING shred").unwrap();
    cmd(&mut con, "ENC.GET first").unwrap();
    cmd(&mut con, "ENC.GET k").unwrap();
    let keys = raw_keys_of(&export, "shred");
    assert_eq!(keys.len(), 2);
    let mut envelope = |key: &str| bulk(&cmd(&mut con, &format!("GET {key}")).unwrap()).unwrap();
    let (first, second) = (envelope("first"), envelope("k"));
    let secrets = [
        ("version 1", keys[0].clone()),
        ("version 2", keys[1].clone()),
        ("version 1's derived key", derived_key(&keys[0], &first)),
        ("version 2's derived key", derived_key(&keys[1], &second)),
    ];
    let in_use = copies_in_memory(&server, &secrets);
    for (what, _) in &secrets {
        assert!(
            in_use.iter().any(|c| c.starts_with(what)),
            "the scan sees {what} while it is in use"
        );
    }
    cmd(&mut con, "ENC.KEYRING DESTROY shred FORCE").unwrap();
    let left = copies_in_memory(&server, &secrets);
    assert!(
        left.is_empty(),
        "copies of destroyed keys left in memory:\n{}",
        left.join("\n")
    );
}

/// The promise: a TLS failure reaching the KMS (a certificate no trusted CA signed) is a
/// configuration to fix, not an outage to wait out: the module refuses to load.
#[test]
fn a_kms_certificate_nobody_trusts_refuses_the_load() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut https = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-cert",
            "server.crt",
            "-key",
            "server.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(certs.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("openssl s_server to listen", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let log = start_fails(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("vault-transit:https://127.0.0.1:{port}/transit/k"),
        ]),
        env: vec![("VAULT_TOKEN".into(), "t".into())],
        ..Options::default()
    });
    let _ = https.kill();
    let _ = https.wait();
    assert!(
        log.contains("refusing to load") && log.contains("cannot reach"),
        "{log}"
    );
}
