//! A sealed value is bound to where it lives, and any change to it fails closed
//! (DESIGN.md invariants 2 and 3).

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

mod common;

use common::*;
use redis::Value;

const DECRYPT_FAILED: &str = "ERR decryption failed: the value was modified, moved from another key or field, or sealed under a different master key";
const PLAINTEXT: &str = "TAMPER-TEST-PLAINTEXT-93c1";

/// Every error reply an envelope that fails to open may produce: fixed texts only.
fn assert_fixed_error(err: &str) {
    let allowed = [
        DECRYPT_FAILED,
        "ERR value is not sealed by redis-enc (read it with GET, or seal it with ENC.SET)",
    ];
    let allowed_prefixes = ["ERR envelope format version ", "ERR unknown data key: "];
    assert!(
        allowed.contains(&err) || allowed_prefixes.iter().any(|p| err.starts_with(p)),
        "unexpected error text: {err}"
    );
    assert!(!err.contains(PLAINTEXT));
}

#[test]
fn a_copied_value_does_not_open_elsewhere() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, &format!("ENC.SET a {PLAINTEXT}")).unwrap();
    cmd(&mut con, &format!("ENC.HSETFIELD h f {PLAINTEXT}")).unwrap();
    let string_env = bulk(&cmd(&mut con, "GET a").unwrap()).unwrap();
    let field_env = bulk(&cmd(&mut con, "HGET h f").unwrap()).unwrap();

    run(&mut con, &[b"SET", b"b", &string_env]).unwrap();
    assert_eq!(cmd(&mut con, "ENC.GET b").unwrap_err(), DECRYPT_FAILED);
    run(&mut con, &[b"HSET", b"h", b"g", &field_env]).unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h g").unwrap_err(),
        DECRYPT_FAILED
    );
    run(&mut con, &[b"HSET", b"h2", b"f", &field_env]).unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h2 f").unwrap_err(),
        DECRYPT_FAILED
    );
    assert_eq!(cmd(&mut con, "ENC.HGETALL h2").unwrap_err(), DECRYPT_FAILED);
    run(&mut con, &[b"SET", b"c", &field_env]).unwrap();
    assert_eq!(cmd(&mut con, "ENC.GET c").unwrap_err(), DECRYPT_FAILED);
    run(&mut con, &[b"HSET", b"h3", b"x", &string_env]).unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD h3 x").unwrap_err(),
        DECRYPT_FAILED
    );
    // The originals still open: a failed read damages nothing.
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET a").unwrap()).unwrap(),
        PLAINTEXT.as_bytes()
    );
    assert_eq!(cmd(&mut con, "ENC.MGET a b").unwrap_err(), DECRYPT_FAILED);
}

#[test]
fn every_flipped_byte_truncation_and_extension_fails_closed() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, &format!("ENC.SET orig {PLAINTEXT}")).unwrap();
    let env = bulk(&cmd(&mut con, "GET orig").unwrap()).unwrap();
    assert_eq!(env.len(), PLAINTEXT.len() + 48);
    for index in 0..env.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut tampered = env.clone();
            tampered[index] ^= mask;
            run(&mut con, &[b"SET", b"orig", &tampered]).unwrap();
            let err = cmd(&mut con, "ENC.GET orig").expect_err("a tampered envelope never opens");
            assert_fixed_error(&err);
            // Outside the identification fields (magic, format version, key id) every change
            // gives one and the same error.
            if !matches!(index, 0 | 1 | 4..=7) {
                assert_eq!(err, DECRYPT_FAILED, "byte {index} mask {mask:#x}");
            }
        }
    }
    for len in 2..env.len() {
        run(&mut con, &[b"SET", b"orig", &env[..len]]).unwrap();
        assert_eq!(
            cmd(&mut con, "ENC.GET orig").unwrap_err(),
            DECRYPT_FAILED,
            "truncated to {len}"
        );
    }
    for extra in [&b"\x00"[..], b"x", &[0u8; 100]] {
        let longer = [env.clone(), extra.to_vec()].concat();
        run(&mut con, &[b"SET", b"orig", &longer]).unwrap();
        assert_eq!(cmd(&mut con, "ENC.GET orig").unwrap_err(), DECRYPT_FAILED);
    }
    run(&mut con, &[b"SET", b"orig", &env]).unwrap();
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET orig").unwrap()).unwrap(),
        PLAINTEXT.as_bytes()
    );
    let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
    assert!(
        !info.contains("enc_errors_decrypt_failed:0\r"),
        "failures are counted: {info}"
    );
    assert!(!server.log().contains(PLAINTEXT));
}

#[test]
fn plaintext_values_are_refused_unless_migration_reads_are_on() {
    let server = Server::start();
    let mut con = server.client();
    cmd(&mut con, "SET legacy hello").unwrap();
    cmd(&mut con, "HSET lh f hello").unwrap();
    let not_sealed =
        "ERR value is not sealed by redis-enc (read it with GET, or seal it with ENC.SET)";
    assert_eq!(cmd(&mut con, "ENC.GET legacy").unwrap_err(), not_sealed);
    assert_eq!(cmd(&mut con, "ENC.HGETFIELD lh f").unwrap_err(), not_sealed);
    assert_eq!(
        cmd(&mut con, "CONFIG SET enc.allow-plaintext-read yes").unwrap(),
        Value::Okay
    );
    assert_eq!(
        bulk(&cmd(&mut con, "ENC.GET legacy").unwrap()).unwrap(),
        b"hello"
    );
    assert_eq!(
        cmd(&mut con, "ENC.HGETFIELD lh f").unwrap(),
        Value::Array(vec![Value::BulkString(b"hello".to_vec())])
    );
    // Tampered envelopes still fail with the relaxation on.
    cmd(&mut con, "ENC.SET s v").unwrap();
    let mut env = bulk(&cmd(&mut con, "GET s").unwrap()).unwrap();
    env[20] ^= 1;
    run(&mut con, &[b"SET", b"s", &env]).unwrap();
    assert_eq!(cmd(&mut con, "ENC.GET s").unwrap_err(), DECRYPT_FAILED);
    let got = cmd(&mut con, "CONFIG GET enc.allow-plaintext-read").unwrap();
    assert_eq!(
        got,
        Value::Array(vec![
            Value::BulkString(b"enc.allow-plaintext-read".to_vec()),
            Value::BulkString(b"yes".to_vec())
        ])
    );
}
