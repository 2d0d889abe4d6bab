use super::*;

#[test]
fn load_arguments() {
    let args: Vec<&[u8]> = vec![
        b"master-key",
        b"file:/k",
        b"allow-plaintext-read",
        b"yes",
        b"phi-ttl-max",
        b"3600",
    ];
    let parsed = parse_load_args(&args).unwrap();
    assert_eq!(parsed.master_key, "file:/k");
    assert_eq!(parsed.configs.len(), 2);
    assert!(parse_load_args(&[]).unwrap_err().contains("no master key"));
    assert!(parse_load_args(&[b"master-key"])
        .unwrap_err()
        .contains("pairs"));
    assert!(parse_load_args(&[b"bogus", b"1", b"master-key", b"env:K"])
        .unwrap_err()
        .contains("unknown"));
    assert!(
        parse_load_args(&[b"allow-plaintext-read", b"maybe", b"master-key", b"env:K"]).is_err()
    );
    assert!(parse_load_args(&[b"phi-ttl-min", b"-1", b"master-key", b"env:K"]).is_err());
}

#[test]
fn which_policy_changes_weaken_a_control() {
    for (name, old, new, expected) in [
        ("enc.phi-guard", "yes", "no", true),
        ("enc.phi-guard", "no", "yes", false),
        ("enc.allow-plaintext-read", "no", "yes", true),
        ("enc.allow-plaintext-read", "yes", "no", false),
        ("enc.dual-control", "yes", "no", true),
        ("enc.phi-patterns", "a:* b:*", "a:*", true),
        ("enc.phi-patterns", "a:*", "a:* b:*", false),
        ("enc.audit-log", "", "/var/log/a", false),
        ("enc.audit-log", "/var/log/a", "/var/log/b", true),
        ("enc.audit-log", "/var/log/a", "", true),
        ("enc.phi-ttl-max", "3600", "1800", false),
        ("enc.phi-ttl-max", "0", "1800", false),
        ("enc.phi-ttl-max", "3600", "7200", true),
        ("enc.phi-ttl-max", "3600", "0", true),
        ("enc.phi-ttl-min", "60", "30", true),
        ("enc.dual-control-window", "300", "600", true),
        ("enc.phi-guard", "yes", "yes", false),
        ("enc.keyring-patterns", "a:* t", "", false),
        ("maxmemory", "1", "2", false),
    ] {
        assert_eq!(
            weakens(name.as_bytes(), old, new),
            expected,
            "{name}: {old:?} -> {new:?}"
        );
    }
}
