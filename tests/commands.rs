//! Round trips through every command, against a real redis-server, and `ENC.SET` options
//! compared with plain `SET` on the same server.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use common::*;
use redis::Value;

fn nul_binary() -> Vec<u8> {
    let mut v = b"\x00bin\x00ary\xff\xfe\x00".to_vec();
    v.extend((0..=255u8).collect::<Vec<_>>());
    v
}

#[test]
fn set_and_get_round_trip_binary_empty_and_large_values() {
    let server = Server::start();
    let mut con = server.client();
    let large: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for (key, value) in [
        (&b"k:nul"[..], nul_binary()),
        (b"k:empty", Vec::new()),
        (b"k:large", large),
        (b"k\x00bin-key", b"v".to_vec()),
    ] {
        assert_eq!(
            run(&mut con, &[b"ENC.SET", key, &value]).unwrap(),
            Value::Okay
        );
        let got = run(&mut con, &[b"ENC.GET", key]).unwrap();
        assert_eq!(bulk(&got).unwrap(), value, "key {key:?}");
        let stored = bulk(&run(&mut con, &[b"GET", key]).unwrap()).unwrap();
        assert_eq!(
            stored.len(),
            value.len() + 48,
            "envelope overhead is 48 bytes"
        );
        assert!(!contains(&stored, &value) || value.len() < 4);
    }
    assert_eq!(cmd(&mut con, "ENC.GET k:missing").unwrap(), Value::Nil);
}

#[test]
fn mset_and_mget() {
    let server = Server::start();
    let mut con = server.client();
    let bin = nul_binary();
    assert_eq!(
        run(&mut con, &[b"ENC.MSET", b"a", b"1", b"b", &bin, b"c", b""]).unwrap(),
        Value::Okay
    );
    cmd(&mut con, "HSET h f v").unwrap();
    let got = cmd(&mut con, "ENC.MGET a b c missing h").unwrap();
    assert_eq!(
        got,
        Value::Array(vec![
            Value::BulkString(b"1".to_vec()),
            Value::BulkString(bin),
            Value::BulkString(vec![]),
            Value::Nil,
            Value::Nil,
        ])
    );
    let err = cmd(&mut con, "ENC.MSET a 1 b").unwrap_err();
    assert!(err.contains("wrong number of arguments"), "{err}");
}

/// ENC.MSET leaves keys as MSET does: strings without a TTL, whatever they held before; and
/// when one value cannot be sealed, no key changes.
#[test]
fn mset_replaces_like_mset_and_fails_whole() {
    let server = Server::start();
    let mut con = server.client();
    for prefix in ["plain", "enc"] {
        cmd(&mut con, &format!("SET {prefix}:ttl old EX 1000")).unwrap();
        cmd(&mut con, &format!("RPUSH {prefix}:list a b")).unwrap();
    }
    cmd(&mut con, "MSET plain:ttl 1 plain:list 2 plain:new 3").unwrap();
    cmd(&mut con, "ENC.MSET enc:ttl 1 enc:list 2 enc:new 3").unwrap();
    for name in ["ttl", "list", "new"] {
        let plain_ttl = cmd(&mut con, &format!("TTL plain:{name}")).unwrap();
        assert_eq!(
            cmd(&mut con, &format!("TTL enc:{name}")).unwrap(),
            plain_ttl
        );
        assert_eq!(plain_ttl, Value::Int(-1));
        assert_eq!(
            cmd(&mut con, &format!("TYPE enc:{name}")).unwrap(),
            Value::SimpleString("string".into())
        );
        assert_eq!(
            cmd(&mut con, &format!("ENC.GET enc:{name}")).unwrap(),
            cmd(&mut con, &format!("GET plain:{name}")).unwrap()
        );
    }
    // A key mapped to a keyring that does not exist: the whole command fails, nothing changes.
    run(
        &mut con,
        &[
            b"CONFIG",
            b"SET",
            b"enc.keyring-patterns",
            b"missing:* nosuchring",
        ],
    )
    .unwrap();
    let before = cmd(&mut con, "GET enc:ttl").unwrap();
    let err = cmd(&mut con, "ENC.MSET enc:ttl changed missing:1 x").unwrap_err();
    assert!(err.contains("no such keyring"), "{err}");
    assert_eq!(cmd(&mut con, "GET enc:ttl").unwrap(), before);
    assert_eq!(cmd(&mut con, "EXISTS missing:1").unwrap(), Value::Int(0));
}

#[test]
fn hash_fields_round_trip_and_plain_fields_stay() {
    let server = Server::start();
    let mut con = server.client();
    let bin = nul_binary();
    cmd(&mut con, "HSET patient:81 name Ada").unwrap();
    let added = run(
        &mut con,
        &[
            b"ENC.HSETFIELD",
            b"patient:81",
            b"ssn",
            b"078-05-1120",
            b"notes",
            &bin,
            b"PHI",
        ],
    )
    .unwrap();
    assert_eq!(added, Value::Int(2));
    let updated = run(
        &mut con,
        &[
            b"ENC.HSETFIELD",
            b"patient:81",
            b"ssn",
            b"078-05-1121",
            b"empty",
            b"",
        ],
    )
    .unwrap();
    assert_eq!(updated, Value::Int(1), "one field updated, one added");
    assert_eq!(
        bulk(&cmd(&mut con, "HGET patient:81 name").unwrap()).unwrap(),
        b"Ada",
        "plain fields stay as they are"
    );
    let got = cmd(&mut con, "ENC.HGETFIELD patient:81 ssn notes missing empty").unwrap();
    assert_eq!(
        got,
        Value::Array(vec![
            Value::BulkString(b"078-05-1121".to_vec()),
            Value::BulkString(bin.clone()),
            Value::Nil,
            Value::BulkString(vec![]),
        ])
    );
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD nokey f").unwrap(),
        Value::Array(vec![Value::Nil])
    );
    let all = cmd(&mut con, "ENC.HGETALL patient:81").unwrap();
    let Value::Array(flat) = all else {
        panic!("RESP2 HGETALL is a flat array: {all:?}")
    };
    let pairs: std::collections::HashMap<Vec<u8>, Vec<u8>> = flat
        .chunks(2)
        .map(|p| (bulk(&p[0]).unwrap(), bulk(&p[1]).unwrap()))
        .collect();
    assert_eq!(pairs.len(), 4);
    assert_eq!(pairs[&b"name"[..]], b"Ada");
    assert_eq!(pairs[&b"ssn"[..]], b"078-05-1121");
    assert_eq!(pairs[&b"notes"[..]], bin);
    let mut con3 = server.resp3_client();
    match cmd(&mut con3, "ENC.HGETALL patient:81").unwrap() {
        Value::Map(m) => assert_eq!(m.len(), 4),
        other => panic!("RESP3 HGETALL is a map: {other:?}"),
    }
    assert_eq!(
        cmd(&mut con, "ENC.HGETALL nokey").unwrap(),
        Value::Array(vec![])
    );
    let inspect = cmd(&mut con, "ENC.INSPECT patient:81 notes").unwrap();
    assert!(format!("{inspect:?}").contains("phi"), "{inspect:?}");
}

fn inspect_map(v: Value) -> std::collections::HashMap<String, Value> {
    match v {
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| (String::from_utf8(bulk(&k).unwrap()).unwrap(), v))
            .collect(),
        Value::Array(a) => a
            .chunks(2)
            .map(|p| {
                (
                    String::from_utf8(bulk(&p[0]).unwrap()).unwrap(),
                    p[1].clone(),
                )
            })
            .collect(),
        other => panic!("unexpected INSPECT reply {other:?}"),
    }
}

#[test]
fn inspect_under_resp2_and_resp3() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, "ENC.SET p:1 record PHI").unwrap();
    cmd(&mut con, "ENC.SET p:2 record").unwrap();
    let flat = cmd(&mut con, "ENC.INSPECT p:1").unwrap();
    assert!(
        matches!(flat, Value::Array(ref a) if a.len() == 12),
        "RESP2: flat field-value array: {flat:?}"
    );
    let m = inspect_map(flat);
    assert_eq!(m["format"], Value::Int(1));
    assert_eq!(bulk(&m["algorithm"]).unwrap(), b"XAES-256-GCM");
    assert_eq!(bulk(&m["keyring"]).unwrap(), b"default");
    assert_eq!(m["key-version"], Value::Int(1));
    assert_eq!(m["phi"], Value::Int(1));
    assert_eq!(m["plaintext-length"], Value::Int(6));
    let mut con3 = server.resp3_client();
    let map = cmd(&mut con3, "ENC.INSPECT p:2").unwrap();
    assert!(matches!(map, Value::Map(_)), "RESP3: a map: {map:?}");
    assert_eq!(inspect_map(map)["phi"], Value::Int(0));
    assert_eq!(cmd(&mut con, "ENC.INSPECT missing").unwrap(), Value::Nil);
    cmd(&mut con, "SET plain text").unwrap();
    assert!(cmd(&mut con, "ENC.INSPECT plain")
        .unwrap_err()
        .contains("not sealed"));
}

#[test]
fn rename_and_copy_reseal_and_keep_ttl() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, "ENC.SET s:a secret-a PHI EX 1000").unwrap();
    cmd(&mut con, "HSET h:a plain p").unwrap();
    cmd(&mut con, "ENC.HSETFIELD h:a f secret-f").unwrap();
    cmd(&mut con, "PEXPIRE h:a 500000").unwrap();
    let before = bulk(&cmd(&mut con, "GET s:a").unwrap()).unwrap();

    assert_eq!(cmd(&mut con, "ENC.RENAME s:a s:b").unwrap(), Value::Okay);
    assert_eq!(cmd(&mut con, "EXISTS s:a").unwrap(), Value::Int(0));
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET s:b").unwrap()).unwrap(),
        b"secret-a"
    );
    assert_ne!(
        bulk(&cmd(&mut con, "GET s:b").unwrap()).unwrap(),
        before,
        "re-sealed, not copied"
    );
    let ttl = cmd(&mut con, "TTL s:b").unwrap();
    assert!(matches!(ttl, Value::Int(t) if t > 990), "TTL kept: {ttl:?}");
    assert_eq!(
        inspect_map(cmd(&mut con, "ENC.INSPECT s:b").unwrap())["phi"],
        Value::Int(1),
        "flags kept"
    );

    assert_eq!(cmd(&mut con, "ENC.COPY s:b s:c").unwrap(), Value::Int(1));
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET s:c").unwrap()).unwrap(),
        b"secret-a"
    );
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET s:b").unwrap()).unwrap(),
        b"secret-a"
    );
    assert_eq!(
        cmd(&mut con, "ENC.COPY s:b s:c").unwrap(),
        Value::Int(0),
        "destination exists"
    );
    cmd(&mut con, "ENC.SET s:d other").unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.COPY s:d s:c REPLACE").unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET s:c").unwrap()).unwrap(),
        b"other"
    );
    assert_eq!(
        cmd(&mut con, "ENC.COPY missing s:x").unwrap(),
        Value::Int(0)
    );

    assert_eq!(cmd(&mut con, "ENC.RENAME h:a h:b").unwrap(), Value::Okay);
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h:b f").unwrap(),
        Value::Array(vec![Value::BulkString(b"secret-f".to_vec())])
    );
    assert_eq!(
        bulk(&cmd(&mut con, "HGET h:b plain").unwrap()).unwrap(),
        b"p"
    );
    assert!(matches!(cmd(&mut con, "PTTL h:b").unwrap(), Value::Int(t) if t > 490_000));
    assert_eq!(cmd(&mut con, "ENC.COPY h:b h:c").unwrap(), Value::Int(1));
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h:c f").unwrap(),
        Value::Array(vec![Value::BulkString(b"secret-f".to_vec())])
    );

    cmd(&mut con, "RPUSH l:a x y").unwrap();
    assert_eq!(cmd(&mut con, "ENC.RENAME l:a l:b").unwrap(), Value::Okay);
    assert_eq!(cmd(&mut con, "LLEN l:b").unwrap(), Value::Int(2));
    assert!(cmd(&mut con, "ENC.RENAME missing x")
        .unwrap_err()
        .contains("no such key"));
    assert_eq!(cmd(&mut con, "ENC.RENAME s:b s:b").unwrap(), Value::Okay);
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET s:b").unwrap()).unwrap(),
        b"secret-a"
    );
}

/// The observable state of a key: its value (opened for the encrypted twin) and TTL class.
fn observe(con: &mut redis::Connection, key: &str, encrypted: bool) -> (Value, i64) {
    let value = if encrypted {
        cmd(con, &format!("ENC.GET {key}"))
    } else {
        cmd(con, &format!("GET {key}"))
    };
    let value = value
        .unwrap_or_else(|e| Value::SimpleString(format!("error {}", e.split(' ').next().unwrap())));
    let Value::Int(pttl) = cmd(con, &format!("PTTL {key}")).unwrap() else {
        panic!()
    };
    // Round to 10 s so that the plain and encrypted twins compare equal.
    let ttl_class = if pttl < 0 {
        pttl
    } else {
        (pttl + 5_000) / 10_000
    };
    (value, ttl_class)
}

#[test]
fn set_options_behave_like_plain_set() {
    let server = Server::start();
    let mut con = server.client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // (setup, options): setup is "none", "plain" (a value), "ttl" (a value with a TTL) or "hash".
    let exat = format!("EXAT {}", now + 100);
    let pxat = format!("PXAT {}", (now + 100) * 1000);
    let past = format!("EXAT {}", now - 100);
    let cases: Vec<(&str, String)> = vec![
        ("none", String::new()),
        ("ttl", String::new()),
        ("hash", String::new()),
        ("none", "NX".into()),
        ("plain", "NX".into()),
        ("none", "XX".into()),
        ("plain", "XX".into()),
        ("none", "GET".into()),
        ("plain", "GET".into()),
        ("hash", "GET".into()),
        ("plain", "NX GET".into()),
        ("none", "XX GET".into()),
        ("none", "EX 100".into()),
        ("none", "PX 100000".into()),
        ("none", exat),
        ("none", pxat),
        ("plain", past),
        ("ttl", "KEEPTTL".into()),
        ("plain", "KEEPTTL".into()),
        ("ttl", "XX KEEPTTL GET".into()),
        ("none", "EX 0".into()),
        ("none", "PX -5".into()),
        ("none", "EX abc".into()),
        ("none", "NX XX".into()),
        ("none", "EX 10 PX 10".into()),
        ("none", "KEEPTTL EX 10".into()),
        ("none", "EX".into()),
        ("none", "BOGUS".into()),
        ("none", "EX 9223372036854775807".into()),
    ];
    for (i, (setup, options)) in cases.iter().enumerate() {
        let (p, e) = (format!("plain:{i}"), format!("enc:{i}"));
        match *setup {
            "plain" | "ttl" => {
                cmd(&mut con, &format!("SET {p} old")).unwrap();
                cmd(&mut con, &format!("ENC.SET {e} old")).unwrap();
                if *setup == "ttl" {
                    cmd(&mut con, &format!("EXPIRE {p} 500")).unwrap();
                    cmd(&mut con, &format!("EXPIRE {e} 500")).unwrap();
                }
            }
            "hash" => {
                cmd(&mut con, &format!("HSET {p} f v")).unwrap();
                cmd(&mut con, &format!("HSET {e} f v")).unwrap();
            }
            _ => {}
        }
        let plain = cmd(&mut con, &format!("SET {p} new {options}"));
        let sealed = cmd(&mut con, &format!("ENC.SET {e} new {options}"));
        match (&plain, &sealed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "reply of SET {options} after {setup}"),
            (Err(a), Err(b)) => assert_eq!(
                a.split(' ').next(),
                b.split(' ').next(),
                "error class of SET {options} after {setup}: {a} / {b}"
            ),
            _ => panic!("SET {options} after {setup}: plain {plain:?}, encrypted {sealed:?}"),
        }
        assert_eq!(
            observe(&mut con, &p, false),
            observe(&mut con, &e, true),
            "state after SET {options} after {setup}"
        );
    }
}
