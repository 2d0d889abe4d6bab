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
