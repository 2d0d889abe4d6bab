//! One keyring for a whole Redis Cluster: changes made on the cluster's keyring authority reach
//! every primary and replica; other nodes refuse changes and name the authority; a node that
//! was down catches up by itself; values move between shards and open there.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use redis::Connection;

/// A cluster of `primaries` primaries with `replicas` replicas each, every node loading the
/// module with one master key, on loopback ports (cluster bus included).
struct Cluster {
    nodes: Vec<Server>,
    key: Arc<tempfile::TempDir>,
    primaries: usize,
}

fn cluster_args(bus_port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        "--cluster-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([bus_port.to_string()])
    .collect()
}

impl Cluster {
    fn start(primaries: usize, replicas: usize) -> Cluster {
        let key = Arc::new(tempfile::tempdir().unwrap());
        write_key(&key.path().join("master.key"));
        let nodes: Vec<Server> = (0..primaries * (1 + replicas))
            .map(|_| Cluster::node(&key, Arc::new(tempfile::tempdir().unwrap()), None))
            .collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend([
            "--cluster-replicas".into(),
            replicas.to_string(),
            "--cluster-yes".into(),
        ]);
        redis_cli(&create);
        let cluster = Cluster {
            nodes,
            key,
            primaries,
        };
        cluster.wait_ok();
        cluster
    }

    /// Starts one node in `dir`, with the cluster's master key.
    fn node(key: &tempfile::TempDir, dir: Arc<tempfile::TempDir>, port: Option<u16>) -> Server {
        std::fs::copy(key.path().join("master.key"), dir.path().join("master.key")).unwrap();
        Server::with(Options {
            server_args: cluster_args(free_port()),
            dir: Some(dir),
            port,
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

    /// Waits until every node reports the same keyring digest; returns it.
    fn converged(&self) -> String {
        let mut digest = String::new();
        wait_until("every node to hold the same keyrings", || {
            let digests: Vec<_> = self
                .nodes
                .iter()
                .map(|n| info_field(&mut n.client(), "enc", "enc_keyring_digest"))
                .collect();
            digest = digests[0].clone().unwrap_or_default();
            digests
                .iter()
                .all(|d| d.as_deref() == Some(digest.as_str()))
        });
        digest
    }

    /// Runs a keyed command on the node that serves the key, following `MOVED`.
    fn keyed(&self, line: &str) -> Result<redis::Value, String> {
        let mut con = self.nodes[0].client();
        for _ in 0..3 {
            match cmd(&mut con, line) {
                Err(e) if e.starts_with("MOVED") => {
                    let port: u16 = e.rsplit(':').next().unwrap().trim().parse().unwrap();
                    con = self.nodes.iter().find(|n| n.port == port).unwrap().client();
                }
                other => return other,
            }
        }
        panic!("{line}: redirected too often");
    }
}

/// Runs `redis-cli` and fails the test with its output if it fails.
fn redis_cli(args: &[String]) {
    let out = Command::new("redis-cli").args(args).output().unwrap();
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

/// The promise: a keyring change made through one node holds on every primary and replica,
/// and values sealed under it on each shard open after they move to another shard.
#[test]
fn a_keyring_change_reaches_every_node_and_moved_values_open() {
    let cluster = Cluster::start(3, 1);
    let authority = cluster.authority();
    let mut a = authority.client();
    cmd(&mut a, "ENC.KEYRING CREATE cards").unwrap();
    cmd(&mut a, "ENC.KEYRING ROTATE cards").unwrap();
    cluster.converged();
    for n in &cluster.nodes {
        assert_eq!(
            keyring_versions(&mut n.client(), "cards"),
            2,
            "node {}",
            n.port
        );
    }
    for i in 0..60 {
        cluster
            .keyed(&format!("ENC.SET card:{i} number-{i} KEYRING cards"))
            .unwrap();
    }
    // Every slot of one shard moves to another (MIGRATE: DUMP, then RESTORE there).
    let primaries = cluster.primaries();
    let id = |n: &Server| bulk(&cmd(&mut n.client(), "CLUSTER MYID").unwrap()).unwrap();
    let (from, to) = (primaries[1], primaries[2]);
    redis_cli(&[
        "--cluster".into(),
        "reshard".into(),
        format!("127.0.0.1:{}", from.port),
        "--cluster-from".into(),
        String::from_utf8(id(from)).unwrap(),
        "--cluster-to".into(),
        String::from_utf8(id(to)).unwrap(),
        "--cluster-slots".into(),
        "16384".into(),
        "--cluster-yes".into(),
    ]);
    assert_eq!(
        cmd(&mut from.client(), "DBSIZE").unwrap(),
        redis::Value::Int(0),
        "every key left the shard"
    );
    for i in 0..60 {
        let value = cluster.keyed(&format!("ENC.GET card:{i}")).unwrap();
        assert_eq!(bulk(&value).unwrap(), format!("number-{i}").as_bytes());
    }
}

/// The promise: keyring changes are made on one node only, so the same change sent to every
/// primary at once (as `redis-cli --cluster call` does) leaves one keyring, not one per shard;
/// the others refuse and name the authority.
#[test]
fn a_rotation_sent_to_every_primary_makes_one_version() {
    let cluster = Cluster::start(3, 0);
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

/// The promise: a node that was down while the keyring changed catches up by itself when it
/// comes back, before anyone tells it anything.
#[test]
fn a_node_down_during_a_rotation_catches_up() {
    let mut cluster = Cluster::start(3, 0);
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
    let back = Cluster::node(&cluster.key, dir, Some(port));
    let mut c = back.client();
    cluster.nodes.push(back);
    cluster.wait_ok();
    cluster.converged();
    assert_eq!(keyring_versions(&mut c, "default"), 2);
    cmd(&mut c, "ENC.KEYRING INFO while-down").unwrap();
}

/// The promise: the application and PHI-reader users of `redis.conf.example` can use a
/// cluster-aware client, which learns the slot map (`CLUSTER SLOTS`/`SHARDS`/`NODES`), the
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
}
