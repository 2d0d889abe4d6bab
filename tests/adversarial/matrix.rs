//! Every write command the server lists (`COMMAND LIST FILTERBY ACLCAT write`), tried against
//! PHI keys (a sealed string, a sealed hash, an absent key) with plaintext, forged envelopes,
//! envelopes of other keys and the keys' own envelopes; some through a script and a
//! transaction. After each case: under `patient:*` there are only strings and hashes whose
//! every value is an envelope that opens there, with a time to live inside the bounds, and the
//! replica holds exactly what the primary holds. At the end the primary restarts from its AOF
//! and holds the same. A write command the table does not know fails the test, so a newer
//! server's commands cannot slip past unseen.

use std::collections::BTreeMap;

use redis::{Connection, Value};

use crate::common::*;

/// The PHI TTL bounds of the server under test (seconds).
const TTL_MAX: i64 = 3600;

/// Write commands that take no key, or only keys of their own kind: nothing to try.
const NO_KEYS: &[&str] = &[
    "flushall",
    "flushdb",
    "swapdb",
    "function|delete",
    "function|flush",
    "function|load",
    "function|restore",
];

/// Invocations per command: `K` the PHI key under test, `D` another PHI key, `P` plaintext,
/// `E` an envelope sealed for `K`, `F` one sealed for field `f` of `K`, `X` one sealed for
/// another key, `DP`/`DE`/`DH` `DUMP`s of a plain string, of `E` and of a plain hash, `FAR` a
/// Unix time a day ahead (seconds), `FARMS` in milliseconds.
fn table() -> BTreeMap<&'static str, Vec<&'static str>> {
    let rows: &[(&str, &[&str])] = &[
        ("append", &["APPEND K P"]),
        ("bitfield", &["BITFIELD K SET u8 0 65"]),
        ("bitop", &["BITOP OR K src:str"]),
        (
            "blmove",
            &[
                "BLMOVE src:list K LEFT LEFT 0.01",
                "BLMOVE K src:list LEFT LEFT 0.01",
            ],
        ),
        ("blmpop", &["BLMPOP 0.01 1 K LEFT"]),
        ("blpop", &["BLPOP K 0.01"]),
        ("brpop", &["BRPOP K 0.01"]),
        ("brpoplpush", &["BRPOPLPUSH src:list K 0.01"]),
        ("bzmpop", &["BZMPOP 0.01 1 K MIN"]),
        ("bzpopmax", &["BZPOPMAX K 0.01"]),
        ("bzpopmin", &["BZPOPMIN K 0.01"]),
        (
            "copy",
            &[
                "COPY src:str K REPLACE",
                "COPY K D",
                "COPY K K DB 1 REPLACE",
            ],
        ),
        ("decr", &["DECR K"]),
        ("decrby", &["DECRBY K 2"]),
        ("del", &["DEL K"]),
        (
            "expire",
            &["EXPIRE K 7200", "EXPIRE K 100", "EXPIRE K 7200 GT"],
        ),
        ("expireat", &["EXPIREAT K FAR"]),
        ("geoadd", &["GEOADD K 13.36 38.11 p"]),
        (
            "georadius",
            &[
                "GEORADIUS src:geo 15 37 200 km STORE K",
                "GEORADIUS K 15 37 200 km",
            ],
        ),
        (
            "georadiusbymember",
            &["GEORADIUSBYMEMBER src:geo palermo 100 km STOREDIST K"],
        ),
        (
            "geosearchstore",
            &["GEOSEARCHSTORE K src:geo FROMLONLAT 15 37 BYRADIUS 200 km"],
        ),
        ("getdel", &["GETDEL K"]),
        (
            "getex",
            &["GETEX K PERSIST", "GETEX K EX 7200", "GETEX K PX 100000"],
        ),
        ("getset", &["GETSET K P", "GETSET K E"]),
        ("hdel", &["HDEL K f"]),
        ("hincrby", &["HINCRBY K f 1", "HINCRBY K n 1"]),
        ("hincrbyfloat", &["HINCRBYFLOAT K n 1.5"]),
        ("hmset", &["HMSET K f F n P"]),
        (
            "hset",
            &[
                "HSET K f P",
                "HSET K n P",
                "HSET K f X",
                "HSET K f F",
                "HSET K f E",
            ],
        ),
        ("hsetnx", &["HSETNX K n P"]),
        ("incr", &["INCR K"]),
        ("incrby", &["INCRBY K 2"]),
        ("incrbyfloat", &["INCRBYFLOAT K 1.5"]),
        ("linsert", &["LINSERT K BEFORE a P"]),
        (
            "lmove",
            &["LMOVE src:list K LEFT LEFT", "LMOVE K src:list LEFT LEFT"],
        ),
        ("lmpop", &["LMPOP 1 K LEFT"]),
        ("lpop", &["LPOP K"]),
        ("lpush", &["LPUSH K P"]),
        ("lpushx", &["LPUSHX K P"]),
        ("lrem", &["LREM K 0 a"]),
        ("lset", &["LSET K 0 P"]),
        ("ltrim", &["LTRIM K 0 0"]),
        ("migrate", &["MIGRATE 127.0.0.1 1 K 0 10"]),
        ("move", &["MOVE K 1"]),
        ("mset", &["MSET K P", "MSET K E", "MSET src:other 1 K X"]),
        ("msetnx", &["MSETNX K P"]),
        ("persist", &["PERSIST K"]),
        ("pexpire", &["PEXPIRE K 7200000"]),
        ("pexpireat", &["PEXPIREAT K FARMS"]),
        ("pfadd", &["PFADD K a"]),
        ("pfdebug", &["PFDEBUG GETREG K"]),
        ("pfmerge", &["PFMERGE K src:hll"]),
        (
            "psetex",
            &[
                "PSETEX K 100000 P",
                "PSETEX K 100000 E",
                "PSETEX K 7200000 E",
            ],
        ),
        ("rename", &["RENAME src:str K", "RENAME K D"]),
        ("renamenx", &["RENAMENX src:str K", "RENAMENX K D"]),
        (
            "restore",
            &[
                "RESTORE K 0 DP REPLACE",
                "RESTORE K 0 DE REPLACE",
                "RESTORE K 7200000 DE REPLACE",
                "RESTORE K 0 DH REPLACE",
                "RESTORE K FARMS DE REPLACE ABSTTL",
            ],
        ),
        ("restore-asking", &["RESTORE-ASKING K 0 DP REPLACE"]),
        ("rpop", &["RPOP K"]),
        ("rpoplpush", &["RPOPLPUSH src:list K"]),
        ("rpush", &["RPUSH K P"]),
        ("rpushx", &["RPUSHX K P"]),
        ("sadd", &["SADD K P"]),
        ("sdiffstore", &["SDIFFSTORE K src:set"]),
        (
            "set",
            &[
                "SET K P",
                "SET K E",
                "SET K E EX 7200",
                "SET K E KEEPTTL",
                "SET K X",
                "SET K E GET",
                "SET K P NX",
                "SET K E PXAT FARMS",
                "SET K E EX 10 EX 999999",
                "SET K E PX 1000 PX 99999999999",
                "SET K E NX NX",
                "SET K E XX XX",
                "SET K E KEEPTTL KEEPTTL",
                "SET K E EX abc EX 999999",
            ],
        ),
        ("setbit", &["SETBIT K 7 1"]),
        (
            "setex",
            &["SETEX K 100 P", "SETEX K 100 E", "SETEX K 7200 E"],
        ),
        ("setnx", &["SETNX K P"]),
        ("setrange", &["SETRANGE K 0 P"]),
        ("sinterstore", &["SINTERSTORE K src:set"]),
        ("smove", &["SMOVE src:set K a"]),
        (
            "sort",
            &[
                "SORT src:list STORE K",
                "SORT src:list ALPHA STORE src:x STORE K",
                "SORT src:list BY STORE STORE K",
            ],
        ),
        ("spop", &["SPOP K"]),
        ("srem", &["SREM K a"]),
        ("sunionstore", &["SUNIONSTORE K src:set"]),
        ("unlink", &["UNLINK K"]),
        ("xack", &["XACK K g 0-1"]),
        ("xadd", &["XADD K * f P"]),
        ("xautoclaim", &["XAUTOCLAIM K g c 0 0"]),
        ("xclaim", &["XCLAIM K g c 0 0-1"]),
        ("xdel", &["XDEL K 0-1"]),
        ("xgroup|create", &["XGROUP CREATE K g $ MKSTREAM"]),
        ("xgroup|createconsumer", &["XGROUP CREATECONSUMER K g c"]),
        ("xgroup|delconsumer", &["XGROUP DELCONSUMER K g c"]),
        ("xgroup|destroy", &["XGROUP DESTROY K g"]),
        ("xgroup|setid", &["XGROUP SETID K g 0"]),
        ("xreadgroup", &["XREADGROUP GROUP g c STREAMS K >"]),
        ("xsetid", &["XSETID K 0-1"]),
        ("xtrim", &["XTRIM K MAXLEN 0"]),
        ("zadd", &["ZADD K 1 P"]),
        ("zdiffstore", &["ZDIFFSTORE K 1 src:zset"]),
        ("zincrby", &["ZINCRBY K 1 a"]),
        ("zinterstore", &["ZINTERSTORE K 1 src:zset"]),
        ("zmpop", &["ZMPOP 1 K MIN"]),
        ("zpopmax", &["ZPOPMAX K"]),
        ("zpopmin", &["ZPOPMIN K"]),
        ("zrangestore", &["ZRANGESTORE K src:zset 0 -1"]),
        ("zrem", &["ZREM K a"]),
        ("zunionstore", &["ZUNIONSTORE K 1 src:zset"]),
        ("zremrangebylex", &["ZREMRANGEBYLEX K - +"]),
        ("zremrangebyrank", &["ZREMRANGEBYRANK K 0 -1"]),
        ("zremrangebyscore", &["ZREMRANGEBYSCORE K -inf +inf"]),
    ];
    rows.iter()
        .map(|(name, cases)| (*name, cases.to_vec()))
        .collect()
}

/// The byte strings a case's placeholders stand for, for one PHI key.
struct Values {
    key: Vec<u8>,
    own: Vec<u8>,
    field: Vec<u8>,
    other: Vec<u8>,
    dump_plain: Vec<u8>,
    dump_own: Vec<u8>,
    dump_hash: Vec<u8>,
    far: Vec<u8>,
    far_ms: Vec<u8>,
}

impl Values {
    fn argv(&self, case: &str) -> Vec<Vec<u8>> {
        case.split(' ')
            .map(|word| match word {
                "K" => self.key.clone(),
                "D" => b"patient:dst".to_vec(),
                "P" => b"123-45-6789 plain".to_vec(),
                "E" => self.own.clone(),
                "F" => self.field.clone(),
                "X" => self.other.clone(),
                "DP" => self.dump_plain.clone(),
                "DE" => self.dump_own.clone(),
                "DH" => self.dump_hash.clone(),
                "FAR" => self.far.clone(),
                "FARMS" => self.far_ms.clone(),
                other => other.as_bytes().to_vec(),
            })
            .collect()
    }
}

fn get(con: &mut Connection, args: &[&[u8]]) -> Vec<u8> {
    bulk(&run(con, args).unwrap()).unwrap()
}

/// Seals what the cases need for `key` (an envelope for it, one for its field `f`), by
/// writing and reading it back; the key is deleted again.
fn values_for(con: &mut Connection, key: &str, other: &[u8]) -> Values {
    let k = key.as_bytes();
    run(con, &[b"ENC.SET", k, b"own-secret"]).unwrap();
    let own = get(con, &[b"GET", k]);
    let dump_own = get(con, &[b"DUMP", k]);
    run(con, &[b"DEL", k]).unwrap();
    run(con, &[b"ENC.HSETFIELD", k, b"f", b"field-secret"]).unwrap();
    let field = get(con, &[b"HGET", k, b"f"]);
    run(con, &[b"DEL", k]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Values {
        key: k.to_vec(),
        own,
        field,
        other: other.to_vec(),
        dump_plain: get(con, &[b"DUMP", b"src:str"]),
        dump_own,
        dump_hash: get(con, &[b"DUMP", b"src:hash"]),
        far: (now + 86_400).to_string().into_bytes(),
        far_ms: ((now + 86_400) * 1000).to_string().into_bytes(),
    }
}

/// The dataset every case starts from.
fn reset(con: &mut Connection) {
    for line in [
        "FLUSHALL",
        "RPUSH src:list 3 1 2",
        "SADD src:set a b",
        "ZADD src:zset 1 a",
        "GEOADD src:geo 13.361389 38.115556 palermo",
        "SET src:str plain-value",
        "HSET src:hash f plain-field",
        "PFADD src:hll a b",
        "ENC.SET patient:s secret EX 600",
        "ENC.HSETFIELD patient:h f secret-field",
    ] {
        cmd(con, line).unwrap();
    }
}

/// A key's `DUMP` and whether it has a TTL.
type Dumped = (Vec<u8>, bool);

/// A snapshot to compare across processes: every key name, and PHI keys byte for byte (a set's
/// `DUMP` lists its members in the order of a hash table seeded per process).
fn phi_only(snapshot: BTreeMap<Vec<u8>, (Vec<u8>, bool)>) -> Vec<(Vec<u8>, Option<Dumped>)> {
    snapshot
        .into_iter()
        .map(|(k, v)| {
            let phi = k.starts_with(b"patient:");
            (k, phi.then_some(v))
        })
        .collect()
}

/// Every key under `patient:*` (databases 0 and 1) is a string or hash whose every value opens,
/// with a TTL inside the bounds.
fn phi_state(con: &mut Connection) -> Result<(), String> {
    for db in [1, 0] {
        cmd(con, &format!("SELECT {db}")).unwrap();
        let Value::Array(keys) = cmd(con, "KEYS patient:*").unwrap() else {
            panic!()
        };
        for key in keys.iter().map(|k| bulk(k).unwrap()) {
            let name = String::from_utf8_lossy(&key).into_owned();
            let kind = run(con, &[b"TYPE", &key]).unwrap();
            match kind {
                Value::SimpleString(t) if t == "string" => {
                    run(con, &[b"ENC.GET", &key])
                        .map_err(|e| format!("db {db} {name}: a string that does not open: {e}"))?;
                }
                Value::SimpleString(t) if t == "hash" => {
                    let Value::Array(fields) = run(con, &[b"HKEYS", &key]).unwrap() else {
                        panic!()
                    };
                    for field in fields.iter().map(|f| bulk(f).unwrap()) {
                        run(con, &[b"ENC.HGETFIELD", &key, &field]).map_err(|e| {
                            format!("db {db} {name}: a hash field that does not open: {e}")
                        })?;
                    }
                }
                other => return Err(format!("db {db} {name}: a {other:?} under a PHI key")),
            }
            let ttl = run(con, &[b"TTL", &key]).unwrap();
            if !matches!(ttl, Value::Int(t) if t > 0 && t <= TTL_MAX) {
                return Err(format!("db {db} {name}: TTL {ttl:?} outside the bounds"));
            }
        }
    }
    Ok(())
}

fn every_write_command_on(binary: Option<&str>) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let primary = Server::with(Options {
        module_args: Some(
            [
                "master-key".to_owned(),
                format!("file:{}", key.display()),
                "phi-patterns".into(),
                "patient:*".into(),
                "phi-ttl-max".into(),
                TTL_MAX.to_string(),
                "phi-ttl-default".into(),
                "600".into(),
            ]
            .to_vec(),
        ),
        server_args: ["--appendonly", "yes", "--appendfsync", "always"]
            .map(String::from)
            .to_vec(),
        dir: Some(dir),
        binary: binary.map(str::to_owned),
        ..Options::default()
    });
    let replica = replica_of(&primary);
    let mut con = primary.client();
    let mut rcon = replica.client();
    reset(&mut con);
    run(&mut con, &[b"ENC.SET", b"other:key", b"x"]).unwrap();
    let other = get(&mut con, &[b"GET", b"other:key"]);
    let targets: Vec<Values> = ["patient:s", "patient:h", "patient:new"]
        .iter()
        .map(|k| values_for(&mut con, k, &other))
        .collect();

    let Value::Array(listed) = cmd(&mut con, "COMMAND LIST FILTERBY ACLCAT write").unwrap() else {
        panic!()
    };
    let table = table();
    let unknown: Vec<String> = listed
        .iter()
        .map(|c| String::from_utf8(bulk(c).unwrap()).unwrap())
        .filter(|c| !c.starts_with("enc.") && !NO_KEYS.contains(&c.as_str()))
        .filter(|c| !table.contains_key(c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{binary:?}: write commands the table does not try: {unknown:?}"
    );

    let mut cases: Vec<(String, Vec<Vec<Vec<u8>>>)> = Vec::new();
    for (name, invocations) in &table {
        for invocation in invocations {
            for values in &targets {
                cases.push((
                    format!(
                        "{name}: {invocation} ({})",
                        String::from_utf8_lossy(&values.key)
                    ),
                    vec![values.argv(invocation)],
                ));
            }
        }
    }
    // The same writes through a script and inside a transaction.
    for values in &targets {
        for payload in ["P", "X"] {
            let mut eval = vec![
                b"EVAL".to_vec(),
                b"return redis.call('SET', KEYS[1], ARGV[1])".to_vec(),
                b"1".to_vec(),
            ];
            eval.extend(values.argv(&format!("K {payload}")));
            cases.push((format!("EVAL SET {payload}"), vec![eval]));
        }
        cases.push((
            "MULTI SET".into(),
            vec![
                vec![b"MULTI".to_vec()],
                values.argv("SET K P"),
                values.argv("HSET K f P"),
                vec![b"EXEC".to_vec()],
            ],
        ));
    }

    for (label, commands) in &cases {
        reset(&mut con);
        for argv in commands {
            let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            let _ = run(&mut con, &args);
        }
        if let Err(broken) = phi_state(&mut con) {
            panic!("{binary:?} {label}: {broken}");
        }
        cmd(&mut con, "WAIT 1 5000").unwrap();
        for db in [0, 1] {
            cmd(&mut con, &format!("SELECT {db}")).unwrap();
            cmd(&mut rcon, &format!("SELECT {db}")).unwrap();
            assert_eq!(
                phi_only(crate::writes::snapshot(&mut con)),
                phi_only(crate::writes::snapshot(&mut rcon)),
                "{binary:?} {label}: the replica differs in db {db}"
            );
        }
        cmd(&mut con, "SELECT 0").unwrap();
    }

    // The AOF replays to the same state.
    let before = phi_only(crate::writes::snapshot(&mut con));
    drop(replica);
    let dir = primary.stop();
    let restarted = Server::with(Options {
        module_args: None,
        server_args: ["--appendonly", "yes"].map(String::from).to_vec(),
        dir: Some(dir),
        binary: binary.map(str::to_owned),
        ..Options::default()
    });
    let mut con = restarted.client();
    assert_eq!(
        phi_only(crate::writes::snapshot(&mut con)),
        before,
        "{binary:?}: after the AOF replay"
    );
    phi_state(&mut con).unwrap();
}

/// The promise: no plain write command, through any route, leaves plaintext, a foreign or
/// forged envelope, another type, or a TTL outside the bounds under a PHI key, and the
/// replica and the AOF agree with the primary after each one.
#[test]
fn every_write_command_against_phi_keys() {
    for binary in crate::acl_servers() {
        every_write_command_on(binary);
    }
}
