//! The `redis-enc` command line: output pinned by golden texts.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

mod common;
use common::{golden, tool_exe};

fn redis_enc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool_exe()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn help_is_pinned() {
    let (code, out, _) = redis_enc(&["--help"]);
    assert_eq!(code, 0);
    assert_eq!(out, golden("help.txt"));
    let (code, out, _) = redis_enc(&["cluster", "check", "--help"]);
    assert_eq!(code, 0);
    assert_eq!(out, golden("help-cluster-check.txt"));
    let (code, out, _) = redis_enc(&["cluster", "reencrypt", "--help"]);
    assert_eq!(code, 0);
    assert_eq!(out, golden("help-cluster-reencrypt.txt"));
    for (args, file) in [
        (&["report", "--help"][..], "help-report.txt"),
        (&["report", "verify", "--help"], "help-report-verify.txt"),
        (&["record", "--help"], "help-record.txt"),
    ] {
        let (code, out, _) = redis_enc(args);
        assert_eq!(code, 0);
        assert_eq!(out, golden(file), "{file}");
    }
    let (code, out, _) = redis_enc(&["keygen", "--help"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Write a new random master key to a file readable only by its owner (mode 0600)\n\n\
         Usage: redis-enc keygen --out <PATH>\n\n\
         Options:\n      \
         --out <PATH>  Where to write the key; an existing file is never replaced\n  \
         -h, --help        Print help\n"
    );
}

#[test]
fn keygen_writes_a_private_key_and_never_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let p = path.to_str().unwrap();
    let (code, out, err) = redis_enc(&["keygen", "--out", p]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (_, id, _) = redis_enc(&["key-id", "--master-key", &format!("file:{p}")]);
    let id = id.trim();
    assert_eq!(
        out,
        format!("wrote a new master key to {p} (mode 0600), key id {id}\n")
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 45, "44 base64 characters and a newline");
    assert!(
        !out.contains(text.trim()),
        "the key itself is never printed"
    );

    let (code, out, err) = redis_enc(&["keygen", "--out", p]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!("redis-enc: cannot write {p}: File exists (os error 17)\n")
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the existing key is untouched"
    );
}

#[test]
fn key_id_errors_are_pinned() {
    let (code, _, err) = redis_enc(&["key-id", "--master-key", "file:/nonexistent/k"]);
    assert_eq!(code, 1);
    assert_eq!(err, "redis-enc: master key: cannot read key file /nonexistent/k: No such file or directory (os error 2)\n");
    let (code, _, err) = redis_enc(&["key-id", "--master-key", "bogus:x"]);
    assert_eq!(code, 1);
    assert_eq!(err, "redis-enc: master key: unknown master key provider 'bogus'; use file:PATH, env:NAME, exec:PATH [ARGS], vault-transit:URL or aws-kms:KEY-ID\n");
}

/// A closed standard output (`redis-enc … | head -1`) ends the tool quietly with the status a
/// broken pipe gives; a full one is an error that says so. Neither panics.
#[test]
fn a_closed_or_full_standard_output_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let (code, _, err) = redis_enc(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let uri = format!("file:{}", key.display());
    // A pipe whose reading end is closed before the tool starts, so its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(tool_exe())
        .args(["key-id", "--master-key", &uri])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(tool_exe())
        .args(["key-id", "--master-key", &uri])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("redis-enc: cannot write to standard output"),
        "{stderr}"
    );
}

/// The report of `tests/data/report-v1.json` and its page, made by release 0.1 under the vector
/// master key, verify; one changed byte does not.
#[test]
fn the_release_0_1_report_verifies_and_an_edit_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("vector.key");
    std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = format!("file:{}", key.display());
    for name in ["report-v1.json", "report-v1.html"] {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let (code, out, err) = redis_enc(&["report", "verify", &path, "--master-key", &key]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(
            out.contains(": authentic; report of redis://127.0.0.1:7703"),
            "{out}"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        let edited = dir.path().join(name);
        std::fs::write(&edited, bytes).unwrap();
        let (code, _, err) = redis_enc(&[
            "report",
            "verify",
            edited.to_str().unwrap(),
            "--master-key",
            &key,
        ]);
        assert_eq!(code, 1, "{name} edited: {err}");
    }
}
