//! Search without plaintext: blind indexes beside sealed hash fields, plain fields under PHI
//! keys, tokenised key names; and the same with Redis 8.2's query engine (RediSearch 2.10).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use redis::{Connection, Value};

const RULES: &str = "doc:* mrn 24,doc:* patient_name 20";

/// A server whose documents `doc:*` are PHI, with blind indexes on `mrn` and `patient_name`
/// and `embedding`/`tenant` allowed in plain; `binary` and extra server arguments as given.
fn search_server(binary: Option<&str>, server_args: &[&str]) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let args = [
        "master-key",
        &format!("file:{}", key.display()),
        "phi-patterns",
        "doc:* archive:*",
        "phi-plain-fields",
        "embedding,tenant",
        "blind-indexes",
        RULES,
    ];
    Server::with(Options {
        module_args: Some(args.iter().map(|s| s.to_string()).collect()),
        server_args: server_args.iter().map(|s| s.to_string()).collect(),
        dir: Some(dir),
        binary: binary.map(str::to_owned),
        ..Options::default()
    })
}

fn tokens(con: &mut Connection, key: &str, field: &str, value: &str) -> Vec<String> {
    let reply = run(
        con,
        &[
            b"ENC.BLINDINDEX",
            key.as_bytes(),
            field.as_bytes(),
            value.as_bytes(),
        ],
    )
    .unwrap();
    let Value::Array(items) = reply else {
        panic!("ENC.BLINDINDEX replies with an array: {reply:?}")
    };
    items
        .iter()
        .map(|t| String::from_utf8(bulk(t).unwrap()).unwrap())
        .collect()
}

fn hget(con: &mut Connection, key: &str, field: &str) -> Option<String> {
    bulk(&cmd(con, &format!("HGET {key} {field}")).unwrap()).map(|b| String::from_utf8(b).unwrap())
}

/// The promise: a sealed field that a rule names gets its token beside it, and the token
/// follows the field through overwrites, `ENC.RENAME`/`ENC.COPY` (recomputed for the
/// destination's rules), rotation and re-encryption; `ENC.BLINDINDEX` gives one token per
/// active version, is refused without the PHI read permission, and is audited.
#[test]
fn blind_indexes_follow_the_sealed_fields() {
    let server = search_server(None, &[]);
    let mut con = server.client();
    let log = server.dir.path().join("audit.log");
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    run(
        &mut con,
        &[
            b"ENC.HSETFIELD",
            b"doc:1",
            b"mrn",
            b"MRN-0042",
            b"patient_name",
            b"Ada Lovelace",
            b"note",
            b"seen on Tuesday",
        ],
    )
    .unwrap();
    let mrn = tokens(&mut con, "doc:other", "mrn", "  mrn-0042 ");
    assert_eq!(mrn.len(), 1);
    assert!(
        mrn[0].starts_with("v1t") && mrn[0].len() == 3 + 6,
        "{mrn:?}"
    );
    assert_eq!(hget(&mut con, "doc:1", "bi_mrn"), Some(mrn[0].clone()));
    let name = tokens(&mut con, "doc:1", "patient_name", "ADA lovelace");
    assert_eq!(name[0].len(), 3 + 5);
    assert_eq!(
        hget(&mut con, "doc:1", "bi_patient_name"),
        Some(name[0].clone())
    );
    assert_eq!(
        hget(&mut con, "doc:1", "bi_note"),
        None,
        "no rule, no token"
    );
    let no_rule = cmd(&mut con, "ENC.BLINDINDEX doc:1 note x").unwrap_err();
    assert!(no_rule.contains("no enc.blind-indexes rule"), "{no_rule}");

    // An overwrite replaces the token; the reply counts only the sealed fields.
    assert_eq!(
        cmd(&mut con, "ENC.HSETFIELD doc:1 mrn MRN-0043").unwrap(),
        Value::Int(0)
    );
    let new = tokens(&mut con, "doc:1", "mrn", "MRN-0043");
    assert_ne!(new, mrn);
    assert_eq!(hget(&mut con, "doc:1", "bi_mrn"), Some(new[0].clone()));
    let clash = cmd(&mut con, "ENC.HSETFIELD doc:1 bi_mrn v1t000000").unwrap_err();
    assert!(clash.contains("blind-index token"), "{clash}");

    // Rotation: both versions' tokens find the value until it is re-encrypted.
    cmd(&mut con, "ENC.KEYRING ROTATE default").unwrap();
    let both = tokens(&mut con, "doc:1", "mrn", "MRN-0043");
    assert_eq!(both.len(), 2);
    assert!(both[0].starts_with("v2t") && both[1] == new[0], "{both:?}");
    cmd(&mut con, "ENC.REENCRYPT START").unwrap();
    wait_reencrypt(&mut con);
    assert_eq!(hget(&mut con, "doc:1", "bi_mrn"), Some(both[0].clone()));

    // Moves make the tokens again for the destination's rules.
    cmd(&mut con, "ENC.RENAME doc:1 doc:2").unwrap();
    assert_eq!(hget(&mut con, "doc:2", "bi_mrn"), Some(both[0].clone()));
    cmd(&mut con, "ENC.COPY doc:2 archive:2").unwrap();
    assert_eq!(hget(&mut con, "archive:2", "bi_mrn"), None);
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.HGETFIELD archive:2 mrn").unwrap()),
        None
    );
    let Value::Array(opened) = cmd(&mut con, "ENC.HGETFIELD archive:2 mrn").unwrap() else {
        panic!()
    };
    assert_eq!(bulk(&opened[0]).as_deref(), Some(&b"MRN-0043"[..]));

    // The token is an equality oracle: PHI read permission, audited. PHI read on one
    // document is not enough: a token finds every key of its rule.
    for (user, rules, allowed) in [
        ("app", "~* +enc.blindindex +enc.hsetfield", false),
        ("one-doc", "%R~doc:1 +enc.blindindex +enc.phi|read", false),
        ("clinician", "~* +enc.blindindex +enc.phi|read", true),
    ] {
        cmd(&mut con, &format!("ACL SETUSER {user} on >pw {rules}")).unwrap();
        let reply = cmd(
            &mut server.client_as(user, "pw"),
            "ENC.BLINDINDEX doc:1 mrn MRN-0043",
        );
        if allowed {
            assert!(
                matches!(reply, Ok(Value::Array(ref t)) if t.len() == 2),
                "{reply:?}"
            );
        } else {
            assert!(
                reply.as_ref().is_err_and(|e| e.starts_with("NOPERM")),
                "{user}: {reply:?}"
            );
        }
    }
    let mut audit = String::new();
    wait_until("the audit record of ENC.BLINDINDEX", || {
        audit = std::fs::read_to_string(&log).unwrap();
        audit.contains("ENC.BLINDINDEX") && audit.contains("clinician")
    });
    assert!(!audit.contains("MRN-0043"), "the value is not audited");

    // Sealing a plaintext dataset writes the tokens too.
    let rules = format!("{RULES},legacy:* mrn 24");
    run(
        &mut con,
        &[b"CONFIG", b"SET", b"enc.blind-indexes", rules.as_bytes()],
    )
    .unwrap();
    cmd(&mut con, "HSET legacy:1 mrn MRN-7 ward north").unwrap();
    assert_eq!(hget(&mut con, "legacy:1", "bi_mrn"), None);
    cmd(
        &mut con,
        "ENC.REENCRYPT START ENCRYPT-PLAINTEXT MATCH legacy:*",
    )
    .unwrap();
    wait_reencrypt(&mut con);
    let legacy = tokens(&mut con, "legacy:x", "mrn", "MRN-7");
    assert_eq!(
        hget(&mut con, "legacy:1", "bi_mrn"),
        Some(legacy[0].clone())
    );
    assert_ne!(
        legacy[0],
        tokens(&mut con, "doc:x", "mrn", "MRN-7")[0],
        "another rule, another token"
    );
    assert_eq!(
        cmd(&mut con, "PING").unwrap(),
        Value::SimpleString("PONG".into())
    );
}

/// The promise: under PHI keys the guard lets through, in plain, exactly the fields
/// `enc.phi-plain-fields` names and token-shaped values in the `bi_` fields that a rule
/// writes; every other plain field stays refused, through `HSET`, `HSETNX`, scripts and
/// `RESTORE`.
#[test]
fn only_named_plain_fields_and_tokens_pass_the_guard() {
    let server = search_server(None, &[]);
    let mut con = server.client();
    cmd(&mut con, "ENC.HSETFIELD doc:1 mrn MRN-1").unwrap();
    cmd(&mut con, "HSET doc:1 embedding \x01\x02\x03 tenant north").unwrap();
    cmd(&mut con, "HSETNX doc:1 tenant south").unwrap();
    cmd(&mut con, "HSET doc:1 bi_mrn v1t00ab12").unwrap();
    // A forged token: wider than the rule's 24 bits, or of a version the keyring lacks.
    for forged in [
        "v1tdeadbeefcafebabe",
        "v99999t000000",
        "v1t0ab12",
        "v01t00ab12",
    ] {
        let e = cmd(&mut con, &format!("HSET doc:1 bi_mrn {forged}")).unwrap_err();
        assert!(e.contains("enc.phi-guard"), "{forged}: {e}");
    }
    let e = cmd(&mut con, "CONFIG SET enc.phi-plain-fields embedding,bi_mrn").unwrap_err();
    assert!(e.contains("blind-index"), "{e}");
    for refused in [
        "HSET doc:1 mrn MRN-1",
        "HSET doc:1 tenant north diagnosis flu",
        "HSET doc:1 bi_mrn 078-05-1120",
        "HSET doc:1 bi_note v1t00ab12",
        "HSETNX doc:1 diagnosis flu",
        "HMSET doc:1 embedding x ssn 078-05-1120",
    ] {
        let e = cmd(&mut con, refused).unwrap_err();
        assert!(e.contains("enc.phi-guard"), "{refused}: {e}");
    }
    let script = run(
        &mut con,
        &[
            b"EVAL",
            b"return redis.call('HSET', KEYS[1], 'tenant', 'x', 'ssn', '078-05-1120')",
            b"1",
            b"doc:1",
        ],
    )
    .unwrap_err();
    assert!(script.contains("enc.phi-guard"), "{script}");
    // A plain hash moved in with RESTORE: its plain fields pass only if named.
    cmd(&mut con, "HSET plain:1 tenant north embedding xyz").unwrap();
    let Value::BulkString(good) = cmd(&mut con, "DUMP plain:1").unwrap() else {
        panic!()
    };
    run(&mut con, &[b"RESTORE", b"doc:9", b"0", &good]).unwrap();
    cmd(&mut con, "HSET plain:2 tenant north ssn 078-05-1120").unwrap();
    let Value::BulkString(bad) = cmd(&mut con, "DUMP plain:2").unwrap() else {
        panic!()
    };
    let e = run(&mut con, &[b"RESTORE", b"doc:10", b"0", &bad]).unwrap_err();
    assert!(e.contains("enc.phi-guard"), "{e}");
    // Adding a plain field is a weakening policy change: audited like the others.
    cmd(
        &mut con,
        "CONFIG SET enc.phi-plain-fields embedding,tenant,doc_type",
    )
    .unwrap();
    cmd(&mut con, "HSET doc:1 doc_type note").unwrap();

    // With TTL bounds, plain fields alone still pass (they are not PHI), whatever the key's
    // TTL; a hash that gets PHI is then held to the bounds by ENC.HSETFIELD.
    cmd(&mut con, "CONFIG SET enc.phi-ttl-max 3600").unwrap();
    cmd(&mut con, "HSET doc:20 tenant north embedding xyz").unwrap();
    let e = cmd(&mut con, "ENC.HSETFIELD doc:20 mrn MRN-20").unwrap_err();
    assert!(e.contains("must expire"), "{e}");
    cmd(&mut con, "EXPIRE doc:20 600").unwrap();
    cmd(&mut con, "ENC.HSETFIELD doc:20 mrn MRN-20").unwrap();
    cmd(&mut con, "HSET doc:20 tenant south").unwrap();
    let token = hget(&mut con, "doc:20", "bi_mrn").unwrap();
    let e = cmd(&mut con, &format!("HSET doc:20 bi_mrn {token}")).unwrap_err();
    assert!(
        e.contains("enc.phi-guard") && e.contains("time to live"),
        "a token is held to the bounds: {e}"
    );
}

/// The promise: `ENC.TOKENIZE` is deterministic, separates namespaces, makes tokens fit for
/// key names (lower-case letters, digits, `_`), keeps its tokens through a rotation; only
/// `ENC.DETOKENIZE` with the PHI read permission on the namespace reverses one, audited; an
/// edited token or one of another server's key is refused and the server keeps serving.
#[test]
fn key_name_tokens_reverse_only_for_phi_readers() {
    let server = search_server(None, &[]);
    let mut con = server.client();
    let log = server.dir.path().join("audit.log");
    cmd(
        &mut con,
        &format!("CONFIG SET enc.audit-log {}", log.display()),
    )
    .unwrap();
    let token = |con: &mut Connection, ns: &str, value: &str| {
        String::from_utf8(
            bulk(&run(con, &[b"ENC.TOKENIZE", ns.as_bytes(), value.as_bytes()]).unwrap()).unwrap(),
        )
        .unwrap()
    };
    let t81 = token(&mut con, "patient", "81");
    assert_eq!(t81, token(&mut con, "patient", "81"));
    assert_ne!(t81, token(&mut con, "patient", "82"));
    assert_ne!(t81, token(&mut con, "mrn", "81"));
    let odd = token(&mut con, "patient", "{81} *?, :\n");
    for t in [&t81, &odd] {
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{t}"
        );
    }
    assert_eq!(
        bulk(&cmd(&mut con, &format!("ENC.DETOKENIZE {odd}")).unwrap()).unwrap(),
        b"{81} *?, :\n"
    );
    // A rotation does not change the tokens (and so the key names) already in use.
    cmd(&mut con, "ENC.KEYRING ROTATE default").unwrap();
    assert_eq!(t81, token(&mut con, "patient", "81"));

    cmd(
        &mut con,
        "ACL SETUSER app on >pw ~doc:* +enc.tokenize +enc.detokenize",
    )
    .unwrap();
    cmd(
        &mut con,
        "ACL SETUSER reidentifier on >pw %R~patient +enc.detokenize +enc.phi|read",
    )
    .unwrap();
    let mut app = server.client_as("app", "pw");
    assert_eq!(token(&mut app, "patient", "81"), t81);
    let denied = cmd(&mut app, &format!("ENC.DETOKENIZE {t81}")).unwrap_err();
    assert!(denied.starts_with("NOPERM"), "{denied}");
    let mut re = server.client_as("reidentifier", "pw");
    assert_eq!(
        bulk(&cmd(&mut re, &format!("ENC.DETOKENIZE {t81}")).unwrap()).unwrap(),
        b"81"
    );
    let other_ns = token(&mut con, "mrn", "81");
    assert!(cmd(&mut re, &format!("ENC.DETOKENIZE {other_ns}"))
        .unwrap_err()
        .starts_with("NOPERM"));
    wait_until("the audit record of ENC.DETOKENIZE", || {
        let audit = std::fs::read_to_string(&log).unwrap();
        audit.contains("ENC.DETOKENIZE") && audit.contains("reidentifier")
    });

    let mut edited = t81.clone().into_bytes();
    edited[10] = if edited[10] == b'a' { b'b' } else { b'a' };
    let e = run(&mut con, &[b"ENC.DETOKENIZE", &edited]).unwrap_err();
    assert!(e.contains("does not open"), "{e}");
    for bad in ["x", "tk1_", "tk9_aaaa", "tk0_aa", "tk1_!!"] {
        assert!(
            cmd(&mut con, &format!("ENC.DETOKENIZE {bad}")).is_err(),
            "{bad}"
        );
    }
    let elsewhere = search_server(None, &[]);
    let e = cmd(&mut elsewhere.client(), &format!("ENC.DETOKENIZE {t81}")).unwrap_err();
    assert!(e.contains("does not open"), "{e}");
    assert!(cmd(&mut con, "ENC.TOKENIZE patient").is_err());
    assert_eq!(
        cmd(&mut con, "PING").unwrap(),
        Value::SimpleString("PONG".into())
    );
}

/// The embedding of document `i`: eight floats, as RediSearch takes them.
fn embedding(i: usize) -> Vec<u8> {
    (0..8)
        .flat_map(|d| {
            let x = ((i * 7919 + d * 104_729) % 1000) as f32 / 1000.0 + 0.001;
            x.to_le_bytes()
        })
        .collect()
}

fn mrn_of(i: usize) -> String {
    format!("mrn{:04}", i % 400)
}

fn name_of(i: usize) -> String {
    format!("Patient{:04} Surname", i % 450)
}

/// The keys a `FT.SEARCH … NOCONTENT` (or with `RETURN`) found.
fn found_keys(reply: &Value) -> Vec<String> {
    let Value::Array(items) = reply else {
        panic!("FT.SEARCH replies with an array: {reply:?}")
    };
    items[1..]
        .iter()
        .filter_map(|v| match v {
            Value::BulkString(b) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

/// The keys a KNN query for the 20 documents nearest document `i` finds, with `filter`.
fn knn(con: &mut Connection, index: &str, filter: &str, i: usize) -> Vec<String> {
    let query = format!("({filter})=>[KNN 20 @embedding $vec]");
    let reply = run(
        con,
        &[
            b"FT.SEARCH",
            index.as_bytes(),
            query.as_bytes(),
            b"PARAMS",
            b"2",
            b"vec",
            &embedding(i),
            b"RETURN",
            b"1",
            b"__embedding_score",
            b"LIMIT",
            b"0",
            b"50",
            b"DIALECT",
            b"2",
        ],
    )
    .unwrap();
    found_keys(&reply)
}

/// A filtered KNN over the sealed index: the tokens of `value`, the hits, and those whose
/// opened field equals `value` (the truncation's false positives removed).
fn sealed_knn(con: &mut Connection, field: &str, value: &str, i: usize) -> BTreeSet<usize> {
    let ts = tokens(con, "doc:0", field, value);
    knn(con, "docs", &format!("@bi_{field}:{{{}}}", ts.join("|")), i)
        .into_iter()
        .filter(|key| {
            let Value::Array(opened) = cmd(con, &format!("ENC.HGETFIELD {key} {field}")).unwrap()
            else {
                panic!()
            };
            bulk(&opened[0]).as_deref() == Some(value.as_bytes())
        })
        .map(|key| key.trim_start_matches("doc:").parse().unwrap())
        .collect()
}

/// The same query over the plaintext control index.
fn control_knn(con: &mut Connection, field: &str, value: &str, i: usize) -> BTreeSet<usize> {
    knn(con, "control", &format!("@{field}:{{{value}}}"), i)
        .into_iter()
        .map(|key| key.trim_start_matches("ctl:").parse().unwrap())
        .collect()
}

fn queries_match_the_control(con: &mut Connection, ctl: &mut Connection) {
    for i in [0usize, 7, 123, 399, 555, 998] {
        let mrn = mrn_of(i);
        let sealed = sealed_knn(con, "mrn", &mrn, i);
        assert!(sealed.contains(&i), "{mrn}: {sealed:?}");
        assert_eq!(sealed, control_knn(ctl, "mrn", &mrn, i), "{mrn}");
    }
    // A name with a space: the control's TAG query escapes it, the token needs nothing.
    let name = name_of(42);
    let sealed = sealed_knn(con, "patient_name", &name, 42);
    let escaped = name.replace(' ', "\\ ");
    assert_eq!(sealed, control_knn(ctl, "patient_name", &escaped, 42));
    assert!(sealed.contains(&42) && sealed.contains(&492));
}

/// The promise, on Redis 8.2 with RediSearch 2.10: an `FT.CREATE … ON HASH` index over 1,000
/// documents whose `mrn` and `patient_name` are sealed (PHI keys, guard on) and whose vector
/// is plain answers filtered KNN queries exactly as a plaintext control index does; the
/// plaintext finds nothing; no plaintext of a sealed field reaches `FT.INFO`, the AOF, the
/// RDB, `SLOWLOG` or `MONITOR`; a rotation and re-encryption keep the answers right.
#[test]
fn on_redis_8_filtered_knn_over_sealed_fields_matches_a_plaintext_control() {
    let (Some(binary), Some(search)) = (redis_8(), redisearch()) else {
        return;
    };
    let server = search_server(
        Some(&binary),
        &[
            "--loadmodule",
            &search,
            "--appendonly",
            "yes",
            "--slowlog-log-slower-than",
            "0",
            "--slowlog-max-len",
            "100000",
        ],
    );
    // The plaintext control lives on a server of its own, without the module, so that the
    // sealed server's files can be searched for plaintext.
    let control = Server::with(Options {
        load_module: false,
        binary: Some(binary.clone()),
        server_args: vec!["--loadmodule".into(), search.clone()],
        ..Options::default()
    });
    let mut con = server.client();
    let mut ctl = control.client();
    let schema = "SCHEMA tenant TAG embedding VECTOR FLAT 6 TYPE FLOAT32 DIM 8 DISTANCE_METRIC L2";
    cmd(
        &mut con,
        &format!("FT.CREATE docs ON HASH PREFIX 1 doc: {schema} bi_mrn TAG bi_patient_name TAG"),
    )
    .unwrap();
    cmd(
        &mut ctl,
        &format!("FT.CREATE control ON HASH PREFIX 1 ctl: {schema} mrn TAG patient_name TAG"),
    )
    .unwrap();
    let monitor = Monitor::attach(server.port);
    let mut pipe = redis::pipe();
    let mut ctl_pipe = redis::pipe();
    for i in 0..1000 {
        let (key, ctl) = (format!("doc:{i}"), format!("ctl:{i}"));
        let (mrn, name) = (mrn_of(i), name_of(i));
        pipe.cmd("ENC.HSETFIELD")
            .arg(&key)
            .arg("mrn")
            .arg(&mrn)
            .arg("patient_name")
            .arg(&name)
            .ignore();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("embedding")
            .arg(embedding(i))
            .arg("tenant")
            .arg("north")
            .ignore();
        ctl_pipe
            .cmd("HSET")
            .arg(&ctl)
            .arg("embedding")
            .arg(embedding(i))
            .arg("tenant")
            .arg("north")
            .arg("mrn")
            .arg(&mrn)
            .arg("patient_name")
            .arg(&name)
            .ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    let () = ctl_pipe.query(&mut ctl).unwrap();
    for (c, idx) in [(&mut con, "docs"), (&mut ctl, "control")] {
        wait_until("the index to hold 1,000 documents", || {
            let Value::Array(info) = cmd(c, &format!("FT.INFO {idx}")).unwrap() else {
                return false;
            };
            info.chunks(2).any(|kv| {
                bulk(&kv[0]).as_deref() == Some(b"num_docs") && matches!(&kv[1], Value::Int(1000))
                    || bulk(&kv[0]).as_deref() == Some(b"num_docs")
                        && bulk(&kv[1]).as_deref() == Some(b"1000")
            })
        });
    }
    queries_match_the_control(&mut con, &mut ctl);

    // A rotation: the old tokens still find what is not re-encrypted, then the new ones do.
    cmd(&mut con, "ENC.KEYRING ROTATE default").unwrap();
    queries_match_the_control(&mut con, &mut ctl);
    cmd(&mut con, "ENC.REENCRYPT START").unwrap();
    wait_reencrypt(&mut con);
    assert_eq!(key_version(&mut con, "doc:7", Some("mrn")), 2);
    assert!(hget(&mut con, "doc:7", "bi_mrn")
        .unwrap()
        .starts_with("v2t"));
    queries_match_the_control(&mut con, &mut ctl);

    // Where plaintext of the sealed fields could surface.
    let seen = monitor.finish();
    let Value::Array(info) = cmd(&mut con, "FT.INFO docs").unwrap() else {
        panic!()
    };
    let slowlog = format!("{:?}", cmd(&mut con, "SLOWLOG GET -1").unwrap());
    cmd(&mut con, "SAVE").unwrap();
    wait_persistence(&mut con);
    let mut files = Vec::new();
    for entry in walk(server.dir.path()) {
        let name = entry.to_string_lossy().into_owned();
        if name.contains("appendonly") || name.ends_with(".rdb") || name.ends_with(".aof") {
            files.push((name, std::fs::read(&entry).unwrap()));
        }
    }
    assert!(files.iter().any(|(n, _)| n.ends_with(".rdb")), "{files:?}");
    assert!(files.iter().any(|(n, _)| n.contains("appendonly")));
    let info = format!("{info:?}");
    for i in [0usize, 42, 399, 449] {
        for secret in [mrn_of(i), name_of(i)] {
            let secret = secret.as_bytes();
            assert!(
                !contains(&seen, secret),
                "MONITOR: {}",
                String::from_utf8_lossy(&seen)
                    .lines()
                    .filter(|l| l.contains(std::str::from_utf8(secret).unwrap()))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            assert!(!contains(info.as_bytes(), secret), "FT.INFO");
            assert!(!contains(slowlog.as_bytes(), secret), "SLOWLOG");
            for (name, bytes) in &files {
                assert!(!contains(bytes, secret), "{name}");
            }
        }
    }

    // The plaintext finds nothing in the sealed index (asked last: the query itself holds it).
    let plain = cmd(&mut con, "FT.SEARCH docs @bi_mrn:{mrn0042} NOCONTENT").unwrap();
    assert_eq!(found_keys(&plain).len(), 0);

    // RediSearch's own writes of text under a PHI key are refused too.
    let e = cmd(&mut con, "FT.SUGADD doc:sug Ada 1").unwrap_err();
    assert!(e.contains("enc.phi-guard"), "{e}");

    // A user without the PHI read permission gets no token.
    cmd(&mut con, "ACL SETUSER app on >pw ~* +@all -enc.phi|read").unwrap();
    let e = cmd(
        &mut server.client_as("app", "pw"),
        "ENC.BLINDINDEX doc:1 mrn mrn0001",
    )
    .unwrap_err();
    assert!(e.starts_with("NOPERM"), "{e}");
}

/// Every file under `dir`, recursively (the AOF lives in a directory of its own).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The promise: `redis-enc tokenize` and `detokenize` make and reverse the server's tokens
/// away from it, with the same master key: from the key alone while `default` v1 makes
/// them, and from the keyrings' export once another version does (here after `RETIRE` of
/// v1); values come as arguments or one per line of standard input.
#[test]
fn the_tool_makes_and_reverses_the_servers_tokens() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let server = search_server(None, &[]);
    let mut con = server.client();
    let master = format!("file:{}", server.dir.path().join("master.key").display());
    let tool = |args: &[&str], stdin: &str| {
        let mut child = Command::new(tool_exe())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let server_token = |con: &mut Connection, value: &str| {
        String::from_utf8(
            bulk(&cmd(con, &format!("ENC.TOKENIZE patient {value}")).unwrap()).unwrap(),
        )
        .unwrap()
    };
    let (t81, t82) = (server_token(&mut con, "81"), server_token(&mut con, "82"));
    let (ok, out, err) = tool(
        &[
            "tokenize",
            "--master-key",
            &master,
            "--namespace",
            "patient",
            "81",
            "82",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out, format!("{t81}\n{t82}\n"));
    let (ok, out, err) = tool(
        &["detokenize", "--master-key", &master],
        &format!("{t82}\n{t81}\n"),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "82\n81\n");

    // Another version makes tokens once v1 is retired: the tool needs the export for it.
    cmd(&mut con, "ENC.KEYRING ROTATE default").unwrap();
    cmd(&mut con, "ENC.KEYRING RETIRE default 1").unwrap();
    let t81_v2 = server_token(&mut con, "81");
    assert!(t81_v2.starts_with("tk2_"), "{t81_v2}");
    let export = bulk(&cmd(&mut con, "ENC.KEYRING EXPORT").unwrap()).unwrap();
    let file = server.dir.path().join("keyrings.export");
    std::fs::write(&file, export).unwrap();
    let keyrings = file.to_str().unwrap();
    let (ok, out, err) = tool(
        &[
            "tokenize",
            "--master-key",
            &master,
            "--keyrings",
            keyrings,
            "--namespace",
            "patient",
        ],
        "81\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out, format!("{t81_v2}\n"));
    let (ok, _, err) = tool(&["detokenize", "--master-key", &master, "tk2_aaaa"], "");
    assert!(!ok && err.contains("token 1"), "{err}");
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("k");
    write_key(&other_key);
    let (ok, _, err) = tool(
        &[
            "detokenize",
            "--master-key",
            &format!("file:{}", other_key.display()),
            &t81,
        ],
        "",
    );
    assert!(!ok && err.contains("does not open"), "{err}");
}

/// The promise, where the server runs jobs after notifications (here Redis 8.2): a sealed
/// field removed with `HDEL`, overwritten in plain (under a key that is not PHI), or expired
/// by its hash-field TTL takes its token along, on the primary and its replica.
#[test]
fn on_redis_8_a_removed_or_expired_field_takes_its_token_along() {
    let Some(binary) = redis_8() else { return };
    let server = search_server(Some(&binary), &[]);
    let replica = replica_of(&server);
    let mut con = server.client();
    let rules = format!("{RULES},card:* pan 16");
    run(
        &mut con,
        &[b"CONFIG", b"SET", b"enc.blind-indexes", rules.as_bytes()],
    )
    .unwrap();
    cmd(&mut con, "ENC.HSETFIELD doc:1 mrn MRN-1 patient_name Ada").unwrap();
    cmd(&mut con, "HDEL doc:1 mrn").unwrap();
    assert_eq!(hget(&mut con, "doc:1", "bi_mrn"), None);
    assert!(hget(&mut con, "doc:1", "bi_patient_name").is_some());
    cmd(
        &mut con,
        "ENC.HSETFIELD card:1 pan 4111111111111111 holder Ada",
    )
    .unwrap();
    assert!(hget(&mut con, "card:1", "bi_pan").is_some());
    cmd(&mut con, "HSET card:1 pan redacted").unwrap();
    assert_eq!(hget(&mut con, "card:1", "bi_pan"), None);
    cmd(&mut con, "ENC.HSETFIELD card:1 pan 4111111111111111").unwrap();
    assert!(hget(&mut con, "card:1", "bi_pan").is_some());
    cmd(&mut con, "HPEXPIRE card:1 200 FIELDS 1 pan").unwrap();
    wait_until("the field and its token to expire", || {
        hget(&mut con, "card:1", "bi_pan").is_none()
    });
    assert_eq!(
        cmd(&mut con, "HEXISTS card:1 holder").unwrap(),
        Value::Int(1),
        "the other fields stay"
    );
    let mut r = replica.client();
    cmd(&mut con, "WAIT 1 5000").unwrap();
    wait_until("the replica to drop the tokens too", || {
        hget(&mut r, "doc:1", "bi_mrn").is_none() && hget(&mut r, "card:1", "bi_pan").is_none()
    });
    assert!(hget(&mut r, "doc:1", "bi_patient_name").is_some());
}

/// The RAG example (`make example`) runs green against Redis 8.2 with RediSearch and this
/// build of the module: its own checks cover tokenised keys, sealed fields, filtered KNN and
/// what a plaintext search finds.
#[test]
fn on_redis_8_the_rag_example_runs() {
    let (Some(_), Some(_)) = (redis_8(), redisearch()) else {
        return;
    };
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example.sh"))
        .env("REDIS_ENC_MODULE", module_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The promise on Redis 7.0, which runs no job after a notification: a sealed field removed
/// with `HDEL` (directly, in `MULTI`, in a script) takes its token along, on the primary, its
/// replica and the AOF a restart replays; other fields stay. A plain overwrite keeps the token
/// there (documented).
#[test]
fn on_redis_7_an_hdel_takes_the_token_along() {
    let server = search_server(None, &["--appendonly", "yes"]);
    let replica = replica_of(&server);
    let mut con = server.client();
    for i in 1..=3 {
        cmd(
            &mut con,
            &format!("ENC.HSETFIELD doc:{i} mrn MRN-{i} patient_name Ada"),
        )
        .unwrap();
    }
    cmd(&mut con, "HDEL doc:1 mrn").unwrap();
    let multi = redis::pipe()
        .atomic()
        .cmd("HDEL")
        .arg("doc:2")
        .arg("mrn")
        .cmd("HSET")
        .arg("doc:2")
        .arg("tenant")
        .arg("north")
        .query::<Vec<i64>>(&mut con)
        .unwrap();
    assert_eq!(multi, vec![1, 1]);
    run(
        &mut con,
        &[
            b"EVAL",
            b"return redis.call('HDEL', KEYS[1], 'mrn')",
            b"1",
            b"doc:3",
        ],
    )
    .unwrap();
    cmd(&mut con, "WAIT 1 5000").unwrap();
    let fields = |c: &mut Connection, key: &str| {
        let Value::Array(names) = cmd(c, &format!("HKEYS {key}")).unwrap() else {
            panic!()
        };
        let mut names: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8(bulk(n).unwrap()).unwrap())
            .collect();
        names.sort();
        names
    };
    let mut r = replica.client();
    for c in [&mut con, &mut r] {
        assert_eq!(fields(c, "doc:1"), ["bi_patient_name", "patient_name"]);
        assert_eq!(
            fields(c, "doc:2"),
            ["bi_patient_name", "patient_name", "tenant"]
        );
        assert_eq!(fields(c, "doc:3"), ["bi_patient_name", "patient_name"]);
    }
    wait_persistence(&mut con);
    let dir = server.stop();
    let restarted = Server::with(Options {
        module_args: Some(vec![
            "master-key".into(),
            format!("file:{}", dir.path().join("master.key").display()),
            "phi-patterns".into(),
            "doc:*".into(),
            "blind-indexes".into(),
            RULES.into(),
        ]),
        server_args: vec!["--appendonly".into(), "yes".into()],
        dir: Some(dir),
        ..Options::default()
    });
    let mut again = restarted.client();
    assert_eq!(
        fields(&mut again, "doc:2"),
        ["bi_patient_name", "patient_name", "tenant"]
    );
}
