//! A battery of malformed calls: every one gets a Redis-style error and the server keeps
//! answering (DESIGN.md invariant 7, and "bad input loses nothing").

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use common::*;
use redis::Value;

#[test]
fn malformed_calls_get_errors_and_the_server_keeps_serving() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, "ENC.SET str v").unwrap();
    cmd(&mut con, "ENC.HSETFIELD hash f v").unwrap();
    cmd(&mut con, "RPUSH list x").unwrap();
    let before_str = bulk(&cmd(&mut con, "GET str").unwrap()).unwrap();
    let huge = "99999999999999999999999999999";
    let calls: Vec<Vec<&[u8]>> = vec![
        vec![b"ENC.SET"],
        vec![b"ENC.SET", b"k"],
        vec![b"ENC.SET", b"k", b"v", b"EX"],
        vec![b"ENC.SET", b"k", b"v", b"EX", huge.as_bytes()],
        vec![b"ENC.SET", b"k", b"v", b"EX", b"-1"],
        vec![b"ENC.SET", b"k", b"v", b"PX", b"0"],
        vec![b"ENC.SET", b"k", b"v", b"EXAT", b"1e10"],
        vec![b"ENC.SET", b"k", b"v", b"NX", b"XX"],
        vec![b"ENC.SET", b"k", b"v", b"KEEPTTL", b"PX", b"5"],
        vec![b"ENC.SET", b"k", b"v", b"\xff\xfe"],
        vec![b"ENC.SET", b"k", b"v", b"KEYRING"],
        vec![b"ENC.SET", b"k", b"v", b"KEYRING", b"\xff\x00bad"],
        vec![b"ENC.SET", b"k", b"v", b"KEYRING", b"no-such-keyring"],
        vec![b"ENC.SET", b"list", b"v", b"GET"],
        vec![b"ENC.SET", b"str", b"v", b"XX", b"EX", b"0"],
        vec![b"ENC.GET"],
        vec![b"ENC.GET", b"a", b"b"],
        vec![b"ENC.GET", b"list"],
        vec![b"ENC.GET", b"hash"],
        vec![b"ENC.MSET"],
        vec![b"ENC.MSET", b"a"],
        vec![b"ENC.MSET", b"a", b"1", b"b"],
        vec![b"ENC.MGET"],
        vec![b"ENC.HSETFIELD"],
        vec![b"ENC.HSETFIELD", b"h"],
        vec![b"ENC.HSETFIELD", b"h", b"f"],
        vec![b"ENC.HSETFIELD", b"h", b"f", b"v", b"g"],
        vec![b"ENC.HSETFIELD", b"str", b"f", b"v"],
        vec![b"ENC.HSETFIELD", b"list", b"f", b"v"],
        vec![b"ENC.HGETFIELD"],
        vec![b"ENC.HGETFIELD", b"h"],
        vec![b"ENC.HGETFIELD", b"str", b"f"],
        vec![b"ENC.HGETALL"],
        vec![b"ENC.HGETALL", b"a", b"b"],
        vec![b"ENC.HGETALL", b"str"],
        vec![b"ENC.RENAME"],
        vec![b"ENC.RENAME", b"a"],
        vec![b"ENC.RENAME", b"nokey", b"b"],
        vec![b"ENC.RENAME", b"a", b"b", b"c"],
        vec![b"ENC.COPY", b"a"],
        vec![b"ENC.COPY", b"str", b"x", b"BOGUS"],
        vec![b"ENC.COPY", b"str", b"str"],
        vec![b"ENC.COPY", b"a", b"b", b"REPLACE", b"x"],
        vec![b"ENC.INSPECT"],
        vec![b"ENC.INSPECT", b"str", b"f", b"g"],
        vec![b"ENC.INSPECT", b"str", b"field"],
        vec![b"ENC.INSPECT", b"hash"],
        vec![b"ENC.INSPECT", b"list"],
        vec![b"ENC.INSPECT", b"hash", b"\xff\xfe"],
    ];
    for call in &calls {
        let shown: Vec<String> = call
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        match run(&mut con, call) {
            Ok(Value::Nil) if shown == ["ENC.INSPECT", "hash", "\u{fffd}\u{fffd}"] => {}
            Ok(v) => panic!("{shown:?} should fail, got {v:?}"),
            Err(e) => {
                let code = e.split(' ').next().unwrap();
                assert!(
                    ["ERR", "WRONGTYPE", "NOPERM"].contains(&code),
                    "{shown:?}: {e}"
                );
            }
        }
        assert_eq!(
            cmd(&mut con, "PING").unwrap(),
            Value::SimpleString("PONG".into()),
            "after {shown:?}"
        );
    }
    assert_eq!(
        bulk(&cmd(&mut con, "GET str").unwrap()).unwrap(),
        before_str,
        "failed writes changed nothing"
    );
    assert_eq!(cmd(&mut con, "LLEN list").unwrap(), Value::Int(1));
    assert_eq!(
        cmd(&mut con, "EXISTS k a h").unwrap(),
        Value::Int(0),
        "no failed write created a key"
    );
    // Envelope-shaped garbage.
    for garbage in [
        &b"\xe5\x01"[..],
        b"\xe5\x01\x01\x00\x00\x00\x00\x01",
        &[0xe5; 300],
        b"\xe5\x0f",
    ] {
        run(&mut con, &[b"SET", b"g", garbage]).unwrap();
        let e = cmd(&mut con, "ENC.GET g").unwrap_err();
        assert!(e.starts_with("ERR "), "{e}");
    }
    assert_eq!(
        cmd(&mut con, "PING").unwrap(),
        Value::SimpleString("PONG".into())
    );
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(
        info.contains("enc_errors_internal:0"),
        "no handler panicked: {info}"
    );
}
