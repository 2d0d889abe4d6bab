//! Junk and forged envelopes through every `ENC.*` command that reads a stored value: each
//! fails with a fixed error (never a crash, never another value's plaintext, never an empty
//! success), nothing changes on the primary or its replica, and the server keeps serving.

use redis::{Connection, Value};

use crate::common::*;
use crate::writes::snapshot;

/// Stored values an attacker with plain write access (guard off) could leave under a key.
fn junk(con: &mut Connection) -> Vec<(&'static str, Vec<u8>)> {
    cmd(con, "ENC.SET donor secret-of-the-donor").unwrap();
    let donor = bulk(&cmd(con, "GET donor").unwrap()).unwrap();
    let mut flipped = donor.clone();
    flipped[20] ^= 0x40;
    let mut unknown_version = donor.clone();
    unknown_version[7] = 9;
    let mut unknown_ring = donor.clone();
    unknown_ring[5] = 42;
    let mut phi_cleared = donor.clone();
    phi_cleared[3] ^= 1;
    let mut bad_format = donor.clone();
    bad_format[1] = 7;
    let mut magic_only = vec![0xe5, 0x01];
    magic_only.extend_from_slice(b"SSN 123-45-6789 and more bytes than any header needs");
    vec![
        ("another key's envelope", donor.clone()),
        ("a flipped ciphertext byte", flipped),
        ("an unknown key version", unknown_version),
        ("an unknown keyring", unknown_ring),
        ("a changed flag", phi_cleared),
        ("an unknown format", bad_format),
        ("only the magic", magic_only),
        ("a truncated envelope", donor[..30].to_vec()),
        ("two bytes", vec![0xe5, 0x01]),
        ("empty", Vec::new()),
        ("plain text", b"123-45-6789".to_vec()),
        ("binary", (0u8..=255).collect()),
    ]
}

/// The promise: every read of a junk or forged value fails closed with a fixed error, and
/// nothing changes anywhere.
#[test]
fn junk_and_forged_envelopes_fail_closed_everywhere() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    let mut con = primary.client();
    let cases = junk(&mut con);
    for (what, bytes) in &cases {
        cmd(&mut con, "DEL victim hvictim target").unwrap();
        run(&mut con, &[b"SET", b"victim", bytes]).unwrap();
        run(&mut con, &[b"HSET", b"hvictim", b"f", bytes]).unwrap();
        cmd(&mut con, "WAIT 1 5000").unwrap();
        let before = snapshot(&mut con);
        for line in [
            "ENC.GET victim",
            "ENC.MGET donor victim",
            "ENC.HGETFIELD hvictim f",
            "ENC.HGETALL hvictim",
            "ENC.SET victim new GET",
            "ENC.RENAME victim target",
            "ENC.COPY victim target",
            "ENC.RENAME hvictim target",
            "ENC.COPY hvictim target",
        ] {
            // Values that are not envelopes are no one's secret: they move as they are, and
            // ENC.HGETALL returns plain fields as stored.
            let plain_is_fine = matches!(*what, "plain text" | "binary" | "empty")
                && (line.contains("RENAME") || line.contains("COPY") || line.contains("HGETALL"));
            match cmd(&mut con, line) {
                Ok(_) if plain_is_fine => {
                    cmd(&mut con, "DEL target").unwrap();
                    if line.contains("RENAME") {
                        let back = if line.contains("hvictim") {
                            "HSET"
                        } else {
                            "SET"
                        };
                        if back == "SET" {
                            run(&mut con, &[b"SET", b"victim", bytes]).unwrap();
                        } else {
                            run(&mut con, &[b"HSET", b"hvictim", b"f", bytes]).unwrap();
                        }
                    }
                }
                Ok(reply) => panic!("{what}: {line} succeeded: {reply:?}"),
                Err(e) => {
                    assert!(e.starts_with("ERR "), "{what}: {line}: {e}");
                    assert!(!e.contains("secret-of-the-donor"), "{what}: {line}: {e}");
                    assert!(!e.contains("123-45-6789"), "{what}: {line}: {e}");
                }
            }
            assert_eq!(
                cmd(&mut con, "PING").unwrap(),
                Value::SimpleString("PONG".into())
            );
        }
        // INSPECT reads the header only: fine on a well-formed one, a fixed error otherwise.
        let _ = cmd(&mut con, "ENC.INSPECT victim");
        assert_eq!(snapshot(&mut con), before, "{what}: the primary changed");
        cmd(&mut con, "WAIT 1 5000").unwrap();
        assert_eq!(
            snapshot(&mut replica.client()),
            before,
            "{what}: the replica differs"
        );
    }
    // The re-encryption job meets them all, fails them, and changes none.
    for (i, (_, bytes)) in cases.iter().enumerate() {
        run(&mut con, &[b"SET", format!("junk:{i}").as_bytes(), bytes]).unwrap();
    }
    cmd(&mut con, "ENC.KEYRING ROTATE").unwrap();
    let before: Vec<_> = snapshot(&mut con)
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"junk:"))
        .collect();
    cmd(&mut con, "ENC.REENCRYPT START").unwrap();
    wait_reencrypt(&mut con);
    let after: Vec<_> = snapshot(&mut con)
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"junk:"))
        .collect();
    assert_eq!(after, before, "the job changed no junk value");
}
