//! Nothing of a sealed value's plaintext reaches the AOF, the RDB, SLOWLOG, MONITOR, the
//! server log or a replica; the replica holds byte-identical ciphertext (DESIGN.md invariant 1).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use common::*;
use redis::Value;

/// Distinctive plaintexts, one per writing command, that must never appear outside the module.
const SECRETS: [&str; 9] = [
    "PLAINTEXT-ENC-SET-4f1c",
    "PLAINTEXT-ENC-SET-GET-77a2",
    "PLAINTEXT-ENC-MSET-ONE-0b9e",
    "PLAINTEXT-ENC-MSET-TWO-d3c4",
    "PLAINTEXT-ENC-HSETFIELD-ONE-5a6b",
    "PLAINTEXT-ENC-HSETFIELD-TWO-c8d0",
    "PLAINTEXT-ENC-SET-EX-9e31",
    "PLAINTEXT-ENC-SET-KEEPTTL-2b7f",
    "PLAINTEXT-ENC-SET-NX-61aa",
];

fn write_everything(con: &mut redis::Connection) {
    let s = SECRETS;
    cmd(con, &format!("ENC.SET str:1 {}", s[0])).unwrap();
    cmd(con, &format!("ENC.SET str:1 {} GET", s[1])).unwrap();
    cmd(con, &format!("ENC.MSET str:2 {} str:3 {}", s[2], s[3])).unwrap();
    cmd(
        con,
        &format!("ENC.HSETFIELD hash:1 f1 {} f2 {} PHI", s[4], s[5]),
    )
    .unwrap();
    cmd(con, &format!("ENC.SET str:4 {} EX 1000 PHI", s[6])).unwrap();
    cmd(con, &format!("ENC.SET str:4 {} KEEPTTL", s[7])).unwrap();
    cmd(con, &format!("ENC.SET str:5 {} NX", s[8])).unwrap();
    cmd(con, "ENC.RENAME str:2 str:6").unwrap();
    cmd(con, "ENC.COPY hash:1 hash:2").unwrap();
    // Reads too: their replies must not be logged anywhere either.
    cmd(con, "ENC.GET str:1").unwrap();
    cmd(con, "ENC.MGET str:3 str:6").unwrap();
    cmd(con, "ENC.HGETALL hash:2").unwrap();
    // Keyring changes and a re-encryption job re-seal everything above.
    cmd(con, "ENC.KEYRING ROTATE").unwrap();
    cmd(con, "ENC.KEYRING CREATE leak-test").unwrap();
    cmd(con, "ENC.REENCRYPT START").unwrap();
    wait_until("the re-encryption job", || {
        format!("{:?}", cmd(con, "ENC.REENCRYPT STATUS").unwrap()).contains("done")
    });
    // A failing write with a plaintext argument.
    cmd(con, "ENC.SET str:1 PLAINTEXT-IN-A-FAILED-WRITE-aa11 EX 0").unwrap_err();
}

fn assert_clean(place: &str, bytes: &[u8]) {
    for secret in SECRETS
        .iter()
        .chain(["PLAINTEXT-IN-A-FAILED-WRITE-aa11"].iter())
    {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "{secret} found in {place}"
        );
    }
}

#[test]
fn no_plaintext_in_aof_rdb_slowlog_monitor_log_or_replica() {
    let primary = Server::with(Options {
        server_args: [
            "--appendonly",
            "yes",
            "--slowlog-log-slower-than",
            "0",
            "--slowlog-max-len",
            "1000",
            "--loglevel",
            "debug",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    });
    // The replica shares the master key: copy the primary's key file into its directory.
    let replica_dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::copy(primary.key_path(), replica_dir.path().join("master.key")).unwrap();
    let replica = Server::with(Options {
        server_args: vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port.to_string(),
            "--loglevel".into(),
            "debug".into(),
        ],
        dir: Some(replica_dir),
        ..Options::default()
    });
    let mut rcon = replica.client();
    wait_until("the replica to sync", || {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut rcon)
            .unwrap();
        info.contains("master_link_status:up")
    });

    let monitor = Monitor::attach(primary.port);
    let mut con = primary.client();
    write_everything(&mut con);
    assert_eq!(cmd(&mut con, "WAIT 1 5000").unwrap(), Value::Int(1));
    let monitored = monitor.finish();
    assert!(
        contains(&monitored, b"ENC.SET") || contains(&monitored, b"enc.set"),
        "MONITOR saw the commands"
    );
    assert!(
        contains(&monitored, b"(redacted)"),
        "MONITOR shows redacted arguments"
    );
    assert_clean("MONITOR", &monitored);

    let slowlog = cmd(&mut con, "SLOWLOG GET 1000").unwrap();
    let slowlog_text = format!("{slowlog:?}");
    assert!(
        slowlog_text.contains("redacted"),
        "SLOWLOG shows redacted arguments"
    );
    assert_clean("SLOWLOG", slowlog_text.as_bytes());
    assert_clean(
        "CLIENT LIST",
        format!("{:?}", cmd(&mut con, "CLIENT LIST").unwrap()).as_bytes(),
    );

    // The replica holds exactly the primary's ciphertext, and can open it with the same key.
    for key in ["str:1", "str:3", "str:4", "str:5", "str:6"] {
        let a = bulk(&cmd(&mut con, &format!("GET {key}")).unwrap()).unwrap();
        let b = bulk(&cmd(&mut rcon, &format!("GET {key}")).unwrap()).unwrap();
        assert_eq!(a, b, "replica holds byte-identical ciphertext for {key}");
        assert_clean("stored value", &a);
    }
    for key in ["hash:1", "hash:2"] {
        for field in ["f1", "f2"] {
            let a = bulk(&cmd(&mut con, &format!("HGET {key} {field}")).unwrap()).unwrap();
            let b = bulk(&cmd(&mut rcon, &format!("HGET {key} {field}")).unwrap()).unwrap();
            assert_eq!(a, b);
        }
    }
    assert_eq!(
        bulk(&cmd(&mut rcon, "ENC.GET str:4").unwrap()).unwrap(),
        SECRETS[7].as_bytes()
    );
    assert_eq!(
        cmd(&mut con, "TTL str:4").unwrap(),
        cmd(&mut rcon, "TTL str:4").unwrap()
    );

    cmd(&mut con, "SAVE").unwrap();
    cmd(&mut rcon, "SAVE").unwrap();
    let files = primary.files_written();
    assert!(
        files
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains(".aof")),
        "an AOF was written: {files:?}"
    );
    assert!(
        files.iter().any(|(p, _)| p.ends_with("dump.rdb")),
        "an RDB was written"
    );
    for (path, bytes) in files.iter().chain(replica.files_written().iter()) {
        assert_clean(&path.display().to_string(), bytes);
    }
    assert!(!primary.log().is_empty());
}
