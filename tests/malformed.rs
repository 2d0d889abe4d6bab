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
    // Each call and its exact error: the same words the plain command would use.
    let calls: Vec<(Vec<&[u8]>, &str)> = vec![
        (
            vec![b"ENC.SET"],
            "ERR wrong number of arguments for 'enc.set' command",
        ),
        (
            vec![b"ENC.SET", b"k"],
            "ERR wrong number of arguments for 'enc.set' command",
        ),
        (vec![b"ENC.SET", b"k", b"v", b"EX"], "ERR syntax error"),
        (
            vec![b"ENC.SET", b"k", b"v", b"EX", huge.as_bytes()],
            "ERR value is not an integer or out of range",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"EX", b"-1"],
            "ERR invalid expire time in 'enc.set' command",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"PX", b"0"],
            "ERR invalid expire time in 'enc.set' command",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"EXAT", b"1e10"],
            "ERR value is not an integer or out of range",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"NX", b"XX"],
            "ERR syntax error",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"KEEPTTL", b"PX", b"5"],
            "ERR syntax error",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"\xff\xfe"],
            "ERR syntax error",
        ),
        (vec![b"ENC.SET", b"k", b"v", b"KEYRING"], "ERR syntax error"),
        (
            vec![b"ENC.SET", b"k", b"v", b"KEYRING", b"\xff\x00bad"],
            "ERR invalid keyring name: use 1 to 64 printable characters without spaces",
        ),
        (
            vec![b"ENC.SET", b"k", b"v", b"KEYRING", b"no-such-keyring"],
            "ERR no such keyring",
        ),
        (
            vec![b"ENC.SET", b"list", b"v", b"GET"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.SET", b"str", b"v", b"XX", b"EX", b"0"],
            "ERR invalid expire time in 'enc.set' command",
        ),
        (
            vec![b"ENC.GET"],
            "ERR wrong number of arguments for 'enc.get' command",
        ),
        (
            vec![b"ENC.GET", b"a", b"b"],
            "ERR wrong number of arguments for 'enc.get' command",
        ),
        (
            vec![b"ENC.GET", b"list"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.GET", b"hash"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.MSET"],
            "ERR wrong number of arguments for 'enc.mset' command",
        ),
        (
            vec![b"ENC.MSET", b"a"],
            "ERR wrong number of arguments for 'enc.mset' command",
        ),
        (
            vec![b"ENC.MSET", b"a", b"1", b"b"],
            "ERR wrong number of arguments for 'enc.mset' command",
        ),
        (
            vec![b"ENC.MGET"],
            "ERR wrong number of arguments for 'enc.mget' command",
        ),
        (
            vec![b"ENC.HSETFIELD"],
            "ERR wrong number of arguments for 'enc.hsetfield' command",
        ),
        (
            vec![b"ENC.HSETFIELD", b"h"],
            "ERR wrong number of arguments for 'enc.hsetfield' command",
        ),
        (
            vec![b"ENC.HSETFIELD", b"h", b"f"],
            "ERR wrong number of arguments for 'enc.hsetfield' command",
        ),
        (
            vec![b"ENC.HSETFIELD", b"h", b"f", b"v", b"g"],
            "ERR wrong number of arguments for 'enc.hsetfield' command",
        ),
        (
            vec![b"ENC.HSETFIELD", b"str", b"f", b"v"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.HSETFIELD", b"list", b"f", b"v"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.HGETFIELD"],
            "ERR wrong number of arguments for 'enc.hgetfield' command",
        ),
        (
            vec![b"ENC.HGETFIELD", b"h"],
            "ERR wrong number of arguments for 'enc.hgetfield' command",
        ),
        (
            vec![b"ENC.HGETFIELD", b"str", b"f"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.HGETALL"],
            "ERR wrong number of arguments for 'enc.hgetall' command",
        ),
        (
            vec![b"ENC.HGETALL", b"a", b"b"],
            "ERR wrong number of arguments for 'enc.hgetall' command",
        ),
        (
            vec![b"ENC.HGETALL", b"str"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.RENAME"],
            "ERR wrong number of arguments for 'enc.rename' command",
        ),
        (
            vec![b"ENC.RENAME", b"a"],
            "ERR wrong number of arguments for 'enc.rename' command",
        ),
        (vec![b"ENC.RENAME", b"nokey", b"b"], "ERR no such key"),
        (
            vec![b"ENC.RENAME", b"a", b"b", b"c"],
            "ERR wrong number of arguments for 'enc.rename' command",
        ),
        (
            vec![b"ENC.COPY", b"a"],
            "ERR wrong number of arguments for 'enc.copy' command",
        ),
        (
            vec![b"ENC.COPY", b"str", b"x", b"BOGUS"],
            "ERR syntax error",
        ),
        (
            vec![b"ENC.COPY", b"str", b"str"],
            "ERR source and destination objects are the same",
        ),
        (
            vec![b"ENC.COPY", b"a", b"b", b"REPLACE", b"x"],
            "ERR wrong number of arguments for 'enc.copy' command",
        ),
        (
            vec![b"ENC.INSPECT"],
            "ERR wrong number of arguments for 'enc.inspect' command",
        ),
        (
            vec![b"ENC.BLINDINDEX", b"k", b"f"],
            "ERR wrong number of arguments for 'enc.blindindex' command",
        ),
        (
            vec![b"ENC.BLINDINDEX", b"k", b"f", b"v"],
            "ERR no enc.blind-indexes rule covers field 'f' of that key",
        ),
        (
            vec![b"ENC.TOKENIZE", b"ns"],
            "ERR wrong number of arguments for 'enc.tokenize' command",
        ),
        (
            vec![b"ENC.TOKENIZE", &[b'n'; 256], b"v"],
            "ERR a token namespace is at most 255 bytes",
        ),
        (
            vec![b"ENC.DETOKENIZE", b"a", b"b"],
            "ERR wrong number of arguments for 'enc.detokenize' command",
        ),
        (
            vec![b"ENC.DETOKENIZE", b"tk1_\xff\x00"],
            "ERR not a redis-enc token (tk<version>_<lower-case base32>)",
        ),
        (
            vec![b"ENC.DETOKENIZE", b"tk7_aaaaaaaaaaaaaaaaaaaaaaaaaa"],
            "ERR unknown data key: version 7 of keyring 'default' (id 0) is not held by this server",
        ),
        (
            vec![b"ENC.INSPECT", b"str", b"f", b"g"],
            "ERR wrong number of arguments for 'enc.inspect' command",
        ),
        (
            vec![b"ENC.INSPECT", b"str", b"field"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.INSPECT", b"hash"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.INSPECT", b"list"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            vec![b"ENC.INSPECT", b"hash", b"\xff\xfe"],
            "(nil: no such field)",
        ),
    ];
    for (call, expected) in &calls {
        let shown: Vec<String> = call
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        match run(&mut con, call) {
            Ok(Value::Nil) if *expected == "(nil: no such field)" => {}
            Ok(v) => panic!("{shown:?} should fail, got {v:?}"),
            Err(e) => assert_eq!(&e, expected, "{shown:?}"),
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
