//! KMS-held master keys against real local services, started and stopped by the tests:
//! an OpenBao dev server (Vault's Transit API) and a moto server (the AWS KMS API).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use redis::Value;

/// Finds a command installed by `scripts/install-deps.sh` (pip puts it in Python's scripts
/// directory, which may not be on PATH).
fn tool(name: &str) -> Option<PathBuf> {
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let candidate = PathBuf::from(scripts).join(name);
    if candidate.exists() {
        return Some(candidate);
    }
    let which = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&which.stdout).trim().to_owned();
    if path.is_empty() {
        skipped(name);
        return None;
    }
    Some(PathBuf::from(path))
}

/// A background service, killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(mut cmd: Command, port: u16) -> Service {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{cmd:?} did not start listening");
            std::thread::sleep(Duration::from_millis(100));
        }
        Service { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An OpenBao dev server, or `None` (the test skips) where it is not installed.
fn openbao() -> Option<Service> {
    let bao_path = tool("bao")?;
    let port = free_port();
    let mut cmd = Command::new(&bao_path);
    cmd.args([
        "server",
        "-dev",
        "-dev-root-token-id=root",
        &format!("-dev-listen-address=127.0.0.1:{port}"),
    ]);
    let service = Service::start(cmd, port);
    let bao = |args: &[&str]| {
        let mut last = String::new();
        // The dev server listens slightly before it is unsealed.
        for _ in 0..50 {
            let out = Command::new(&bao_path)
                .args(args)
                .env("BAO_ADDR", format!("http://127.0.0.1:{port}"))
                .env("BAO_TOKEN", "root")
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("bao {args:?} failed: {last}");
    };
    bao(&["secrets", "enable", "transit"]);
    bao(&["write", "-f", "transit/keys/redis-enc"]);
    Some(service)
}

fn rotate_transit_key(port: u16) {
    let out = Command::new(tool("bao").unwrap())
        .args(["write", "-f", "transit/keys/redis-enc/rotate"])
        .env("BAO_ADDR", format!("http://127.0.0.1:{port}"))
        .env("BAO_TOKEN", "root")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// A moto server and the ARN of a key in it, or `None` (the test skips) where it is not
/// installed.
fn moto() -> Option<(Service, String)> {
    let port = free_port();
    let mut cmd = Command::new(tool("moto_server")?);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let service = Service::start(cmd, port);
    let script = format!(
        "import boto3; c = boto3.client('kms', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing'); print(c.create_key()['KeyMetadata']['Arn'])"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "create_key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((
        service,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    ))
}

fn server_with(uri: &str, env: &[(&str, &str)], dir: Option<Arc<tempfile::TempDir>>) -> Server {
    Server::with(Options {
        module_args: Some(vec!["master-key".into(), uri.into()]),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dir,
        ..Options::default()
    })
}

fn get(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    bulk(&cmd(con, &format!("ENC.GET {key}")).unwrap()).unwrap()
}

/// The same story for both KMSes: write, rotate, restart (keys come back through the KMS),
/// rotate the KMS key and re-wrap (values unchanged), then lose the KMS and keep serving.
fn exercise(
    uri: &str,
    env: &[(&str, &str)],
    rotate_kms_key: impl FnOnce(),
    mut stop_kms: impl FnMut(),
) {
    let server = server_with(uri, env, None);
    let mut con = server.client();
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(!info.contains("enc_master_key_id:\r"), "{info}");
    cmd(&mut con, "ENC.SET a before").unwrap();
    assert_eq!(cmd(&mut con, "ENC.KEYRING ROTATE").unwrap(), Value::Int(2));
    cmd(&mut con, "ENC.SET b after").unwrap();
    cmd(&mut con, "ENC.KEYRING CREATE tenant").unwrap();
    cmd(&mut con, "ENC.HSETFIELD h f tenant-field").unwrap();
    cmd(&mut con, "ENC.SET t in-tenant KEYRING tenant").unwrap();
    cmd(&mut con, "SAVE").unwrap();
    let dir = server.stop();

    let server = server_with(uri, env, Some(dir.clone()));
    let mut con = server.client();
    for (k, v) in [("a", "before"), ("b", "after"), ("t", "in-tenant")] {
        assert_eq!(get(&mut con, k), v.as_bytes(), "{k} after a restart");
    }
    let raw: Vec<_> = ["a", "b", "t"]
        .iter()
        .map(|k| bulk(&cmd(&mut con, &format!("GET {k}")).unwrap()))
        .collect();
    rotate_kms_key();
    assert_eq!(cmd(&mut con, "ENC.KEYRING REWRAP").unwrap(), Value::Int(3));
    let after: Vec<_> = ["a", "b", "t"]
        .iter()
        .map(|k| bulk(&cmd(&mut con, &format!("GET {k}")).unwrap()))
        .collect();
    assert_eq!(raw, after, "REWRAP changes no stored value");
    cmd(&mut con, "SAVE").unwrap();

    // A second KMS-backed server (a cluster shard, say) takes the keyrings before its first
    // write and then opens values moved to it.
    let Value::BulkString(blob) = cmd(&mut con, "ENC.KEYRING EXPORT").unwrap() else {
        panic!()
    };
    let shard = server_with(uri, env, None);
    let mut s = shard.client();
    run(&mut s, &[b"ENC.KEYRING", b"IMPORT", &blob]).unwrap();
    let Value::BulkString(dump) = cmd(&mut con, "DUMP b").unwrap() else {
        panic!()
    };
    run(&mut s, &[b"RESTORE", b"b", b"0", &dump]).unwrap();
    assert_eq!(
        get(&mut s, "b"),
        b"after",
        "a value moved to the second server opens there"
    );
    drop(shard);

    stop_kms();
    for (k, v) in [("a", "before"), ("b", "after"), ("t", "in-tenant")] {
        assert_eq!(get(&mut con, k), v.as_bytes(), "{k} with the KMS down");
    }
    cmd(&mut con, "ENC.SET c written-while-kms-down").unwrap();
    assert_eq!(get(&mut con, "c"), b"written-while-kms-down");
    let err = cmd(&mut con, "ENC.KEYRING ROTATE").unwrap_err();
    assert!(
        err.starts_with("ERR key management service unavailable: cannot reach"),
        "{err}"
    );
    let err = cmd(&mut con, "ENC.KEYRING REWRAP").unwrap_err();
    assert!(
        err.starts_with("ERR key management service unavailable: cannot reach"),
        "{err}"
    );
    assert_eq!(
        get(&mut con, "b"),
        b"after",
        "a failed KMS operation changes nothing"
    );
    drop(server);

    // With the KMS unreachable a server starts without keys, saying why, and seals nothing.
    let server = server_with(uri, env, None);
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("could not make keyring 'default''s first key"))
        .map(str::to_owned)
        .expect("one clear line");
    assert!(
        line.contains("key management service unavailable"),
        "{line}"
    );
    let mut con = server.client();
    let err = cmd(&mut con, "ENC.SET a b").unwrap_err();
    assert!(
        err.contains("no keyring yet") && err.contains("cannot reach"),
        "{err}"
    );
    assert_eq!(cmd(&mut con, "EXISTS a").unwrap(), Value::Int(0));
}

#[test]
fn vault_transit_on_openbao() {
    let Some(mut bao) = openbao() else { return };
    let port = bao.port;
    let uri = format!("vault-transit:http://127.0.0.1:{port}/transit/redis-enc?allow-http=yes");
    exercise(
        &uri,
        &[("VAULT_TOKEN", "root")],
        || rotate_transit_key(port),
        || bao.stop(),
    );
}

#[test]
fn aws_kms_on_moto() {
    let Some((mut kms, arn)) = moto() else { return };
    let uri = format!(
        "aws-kms:{arn}?region=us-east-1&endpoint=http://127.0.0.1:{}&allow-http=yes",
        kms.port
    );
    // moto keeps one key version; re-wrapping under the same key still exercises Encrypt.
    exercise(&uri, &AWS_ENV, || {}, || kms.stop());
}

#[test]
fn a_bad_vault_token_is_refused_at_load() {
    let Some(bao) = openbao() else { return };
    let uri = format!(
        "vault-transit:http://127.0.0.1:{}/transit/redis-enc?allow-http=yes",
        bao.port
    );
    let log = start_fails(Options {
        module_args: Some(vec!["master-key".into(), uri]),
        env: vec![("VAULT_TOKEN".into(), "wrong-token".into())],
        ..Options::default()
    });
    let line = log
        .lines()
        .find(|l| l.contains("redis-enc: refusing to load"))
        .expect("one clear line");
    assert!(line.contains("403"), "{line}");
    assert!(!line.contains("wrong-token"), "the token is never logged");
}
