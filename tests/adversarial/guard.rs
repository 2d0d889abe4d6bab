//! The guard: a plain write under a PHI key gets through only with an envelope that
//! authenticates under that key (and field), and only with a time to live inside the PHI
//! bounds; PHI known by its flag lives under the patterns while the guard is on.

use redis::{Connection, Value};

use crate::common::*;
use crate::phi_server;

fn refused(con: &mut Connection, args: &[&[u8]], reason: &str) {
    let err = run(con, args).unwrap_err();
    assert!(
        err.starts_with(&format!("ERR enc.phi-guard: {reason}")),
        "{:?}: {err}",
        String::from_utf8_lossy(&args.join(&b' '))
    );
}

/// The promise: a value that only starts like an envelope, or an envelope sealed for another
/// key or field, is plaintext to the guard, through every command that writes a value.
#[test]
fn only_envelopes_that_authenticate_under_the_key_get_through() {
    let server = phi_server(None, &[]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 sealed").unwrap();
    cmd(&mut con, "ENC.HSETFIELD patient:h f sealed-field").unwrap();
    let own = bulk(&cmd(&mut con, "GET patient:1").unwrap()).unwrap();
    let field = bulk(&cmd(&mut con, "HGET patient:h f").unwrap()).unwrap();
    let mut fake = vec![0xe5, 0x01];
    fake.extend_from_slice(b" SSN 123-45-6789 and a long enough tail for any header");
    cmd(&mut con, "SET other:x plain").unwrap();
    run(&mut con, &[b"SET", b"other:fake", &fake]).unwrap();
    let fake_dump = bulk(&cmd(&mut con, "DUMP other:fake").unwrap()).unwrap();
    let own_dump = bulk(&cmd(&mut con, "DUMP patient:1").unwrap()).unwrap();
    let plain = "plaintext";
    let attempts: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"patient:x", &fake],
        vec![b"SET", b"patient:x", &own],
        vec![b"SETNX", b"patient:x", &fake],
        vec![b"GETSET", b"patient:1", &fake],
        vec![b"SETEX", b"patient:x", b"100", &fake],
        vec![b"PSETEX", b"patient:x", b"100000", &own],
        vec![b"MSET", b"other:y", b"1", b"patient:x", &fake],
        vec![b"MSETNX", b"patient:x", &own],
        vec![b"HSET", b"patient:h", b"f", &fake],
        vec![b"HSET", b"patient:h", b"g", &field],
        vec![b"HSET", b"patient:x", b"f", &field],
        vec![b"HMSET", b"patient:h", b"f", &field, b"g", plain.as_bytes()],
        vec![b"HSETNX", b"patient:h", b"g", &fake],
        vec![b"RESTORE", b"patient:x", b"0", &fake_dump],
        vec![b"RESTORE", b"patient:x", b"0", &own_dump],
    ];
    for args in &attempts {
        refused(&mut con, args, "this would store plaintext");
    }
    assert_eq!(cmd(&mut con, "EXISTS patient:x").unwrap(), Value::Int(0));
    assert_eq!(cmd(&mut con, "HLEN patient:h").unwrap(), Value::Int(1));
    // The real thing passes: the key's own envelope, the field's own envelope.
    run(&mut con, &[b"SET", b"patient:1", &own]).unwrap();
    run(&mut con, &[b"HSET", b"patient:h", b"f", &field]).unwrap();
    run(
        &mut con,
        &[b"RESTORE", b"patient:1", b"0", &own_dump, b"REPLACE"],
    )
    .unwrap();
    assert_eq!(
        cmd(&mut con, "ENC.GET patient:1").map(|v| bulk(&v)),
        Ok(Some(b"sealed".to_vec()))
    );
}

/// The promise: plain writes of envelopes are held to the PHI TTL bounds like `ENC.*`
/// writes: a write without an expiry gets the default, one outside the bounds or one whose
/// TTL the guard cannot see is refused, and `STORE` destinations never hold PHI.
#[test]
fn plain_writes_of_envelopes_keep_the_ttl_bounds() {
    let server = phi_server(None, &["phi-ttl-max", "3600", "phi-ttl-default", "600"]);
    let mut con = server.client();
    cmd(&mut con, "ENC.SET patient:1 sealed").unwrap();
    cmd(&mut con, "ENC.HSETFIELD patient:h f sealed-field").unwrap();
    let own = bulk(&cmd(&mut con, "GET patient:1").unwrap()).unwrap();
    let field = bulk(&cmd(&mut con, "HGET patient:h f").unwrap()).unwrap();
    let dump = bulk(&cmd(&mut con, "DUMP patient:1").unwrap()).unwrap();
    let far = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 86_400_000)
        .to_string();
    let attempts: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"patient:1", &own, b"EX", b"7200"],
        vec![b"SET", b"patient:1", &own, b"KEEPTTL"],
        vec![b"SET", b"patient:1", &own, b"PXAT", far.as_bytes()],
        vec![b"SETEX", b"patient:1", b"7200", &own],
        vec![b"GETSET", b"patient:1", &own],
        vec![b"MSET", b"patient:1", &own],
        vec![b"HSET", b"patient:h", b"f", &field],
        vec![b"RESTORE", b"patient:1", b"7200000", &dump, b"REPLACE"],
        vec![
            b"RESTORE",
            b"patient:1",
            far.as_bytes(),
            &dump,
            b"REPLACE",
            b"ABSTTL",
        ],
        vec![b"PERSIST", b"patient:1"],
        vec![b"EXPIRE", b"patient:1", b"7200"],
    ];
    for args in &attempts {
        refused(&mut con, args, "this would leave a PHI key's time to live");
    }
    // Without an expiry, the default is added; inside the bounds, the write passes.
    for args in [
        vec![&b"SET"[..], b"patient:1", &own],
        vec![b"RESTORE", b"patient:1", b"0", &dump, b"REPLACE"],
    ] {
        cmd(&mut con, "PERSIST patient:1").unwrap_err();
        run(&mut con, &args).unwrap();
        let ttl = cmd(&mut con, "TTL patient:1").unwrap();
        assert!(
            matches!(ttl, Value::Int(t) if (590..=600).contains(&t)),
            "{:?}: {ttl:?}",
            String::from_utf8_lossy(args[0])
        );
    }
    run(&mut con, &[b"SET", b"patient:1", &own, b"EX", b"100"]).unwrap();
    run(&mut con, &[b"SETEX", b"patient:1", b"100", &own]).unwrap();

    // STORE destinations would hold plaintext under a PHI name.
    cmd(&mut con, "RPUSH src 3 1 2").unwrap();
    cmd(&mut con, "GEOADD geo 13.361389 38.115556 palermo").unwrap();
    for line in [
        "SORT src STORE patient:sorted",
        "GEORADIUS geo 15 37 200 km STORE patient:geo",
        "GEORADIUSBYMEMBER geo palermo 100 km STOREDIST patient:geo",
    ] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(
            err.starts_with("ERR enc.phi-guard: this would store plaintext"),
            "{line}: {err}"
        );
    }
    assert_eq!(
        cmd(&mut con, "EXISTS patient:sorted patient:geo").unwrap(),
        Value::Int(0)
    );
    cmd(&mut con, "SORT src STORE other:sorted").unwrap();
}

/// The promise: PHI known by its envelope flag is as protected as PHI known by its name.
/// While the guard is on, PHI lives under the patterns (plain commands see names only), and
/// `ENC.*` writes treat a value that holds PHI as PHI: they need `enc.phi|write` and keep the
/// flag.
#[test]
fn the_phi_flag_is_as_strong_as_a_pattern() {
    let server = phi_server(None, &[]);
    let mut con = server.client();
    for line in ["ENC.SET other:1 v PHI", "ENC.HSETFIELD other:h f v PHI"] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(
            err.starts_with("ERR enc.phi-guard: PHI must live under"),
            "{line}: {err}"
        );
    }
    assert_eq!(
        cmd(&mut con, "EXISTS other:1 other:h").unwrap(),
        Value::Int(0)
    );

    // With the guard off, PHI by flag alone exists; ENC.* writes still protect it.
    cmd(&mut con, "CONFIG SET enc.phi-guard no").unwrap();
    cmd(&mut con, "ENC.SET other:1 record PHI").unwrap();
    cmd(&mut con, "ENC.HSETFIELD other:h f record PHI").unwrap();
    cmd(
        &mut con,
        "ACL SETUSER nophi on >pw ~* +@all -enc.phi|write -enc.phi|read",
    )
    .unwrap();
    let mut nophi = server.client_as("nophi", "pw");
    for line in [
        "ENC.SET other:1 overwritten",
        "ENC.MSET other:1 overwritten",
        "ENC.HSETFIELD other:h f overwritten",
    ] {
        let err = cmd(&mut nophi, line).unwrap_err();
        assert!(err.starts_with("NOPERM"), "{line}: {err}");
    }
    // Overwritten by a user who may write PHI, it stays PHI.
    cmd(&mut con, "ENC.SET other:1 new-record").unwrap();
    let Value::Array(flat) = cmd(&mut con, "ENC.INSPECT other:1").unwrap() else {
        panic!()
    };
    let pos = flat
        .iter()
        .position(|v| bulk(v).as_deref() == Some(b"phi"))
        .unwrap();
    assert_eq!(flat[pos + 1], Value::Int(1), "no downgrade to non-PHI");
}

/// The promise: a refused write's plaintext reaches neither SLOWLOG nor MONITOR, also through
/// the checks the refusal makes.
#[test]
fn refused_plaintext_stays_out_of_slowlog_and_monitor() {
    let server = phi_server(None, &[]);
    let mut con = server.client();
    cmd(&mut con, "CONFIG SET slowlog-log-slower-than 0").unwrap();
    cmd(&mut con, "SLOWLOG RESET").unwrap();
    let monitor = Monitor::attach(server.port);
    for line in [
        "SET patient:1 SECRET-0451",
        "HSET patient:2 f SECRET-0451",
        "MSET other:1 x patient:3 SECRET-0451",
        "LPUSH patient:4 SECRET-0451",
        "SETEX patient:5 100 SECRET-0451",
    ] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(err.starts_with("ERR enc.phi-guard"), "{line}: {err}");
    }
    run(
        &mut con,
        &[
            b"EVAL",
            b"return redis.call('SET', KEYS[1], 'SECRET-0451')",
            b"1",
            b"patient:6",
        ],
    )
    .unwrap_err();
    let seen = monitor.finish();
    let Value::Array(slowlog) = cmd(&mut con, "SLOWLOG GET 1000").unwrap() else {
        panic!()
    };
    // The script's own source is its caller's to keep out of logs (the module cannot redact
    // it); every other entry is clean.
    for entry in &slowlog {
        let text = format!("{entry:?}");
        if !text.contains("\"EVAL\"") {
            assert!(!text.contains("SECRET-0451"), "SLOWLOG: {text}");
        }
    }
    // MONITOR shows the script's own source (the module cannot redact its caller), nothing else.
    let monitor_text = String::from_utf8_lossy(&seen);
    for line in monitor_text
        .lines()
        .filter(|l| !l.contains("\"EVAL\"") && !l.contains("lua]"))
    {
        assert!(!line.contains("SECRET-0451"), "MONITOR: {line}");
    }
}
