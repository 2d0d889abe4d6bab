//! `redis-enc report`: each control's failure set up on a real server and seen to fail its
//! check with the right figure; a compliant server (TLS only, certificates made here) that
//! passes every check; the MAC that catches an edited byte; the page rendered in Chromium.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{
    certificates, cmd, golden, have, module_path, phi_server_on, redis_8, skipped, tls_client_args,
    tls_server_args, tool_exe, valkey_9, wait_until, write_key, Options, Server,
};

fn tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool_exe()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn status(report: &Value, id: &str) -> String {
    check(report, id)["status"].as_str().unwrap().to_owned()
}

/// A report file, checked against docs/report.schema.json.
fn read_json(path: &Path) -> Value {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
        ])
        .arg(path)
        .arg(schema)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the report does not follow its schema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A server with PHI under `patient:*` and a fail-closed audit log of hashed key names in its
/// directory, with more module arguments and server options.
fn audited_server(module_args: &[&str], server_args: Vec<String>) -> Server {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let mut args: Vec<String> = vec![
        "master-key".into(),
        format!("file:{}", key.display()),
        "audit-log".into(),
        dir.path().join("audit.log").display().to_string(),
    ];
    args.extend(
        [
            "phi-patterns",
            "patient:*",
            "audit-hash-keys",
            "yes",
            "audit-fail-closed",
            "yes",
        ]
        .into_iter()
        .chain(module_args.iter().copied())
        .map(str::to_owned),
    );
    Server::with(Options {
        module_args: Some(args),
        server_args,
        dir: Some(dir),
        ..Options::default()
    })
}

#[test]
fn each_failed_control_fails_its_check_with_its_figure() {
    let server = audited_server(&[], Vec::new());
    let mut con = server.client();
    // 97 of 100 PHI values sealed; 2 sealed ones written before the TTL bounds, without TTL;
    // 3 written in plaintext while the guard was off.
    for i in 0..95 {
        cmd(&mut con, &format!("ENC.SET patient:{i} v{i} EX 600")).unwrap();
    }
    cmd(&mut con, "ENC.SET patient:forever:1 v").unwrap();
    cmd(&mut con, "ENC.SET patient:forever:2 v").unwrap();
    cmd(&mut con, "CONFIG SET enc.phi-ttl-max 3600").unwrap();
    cmd(&mut con, "CONFIG SET enc.phi-guard no").unwrap();
    for i in 0..3 {
        cmd(&mut con, &format!("SET patient:plain:{i} leaked EX 600")).unwrap();
    }
    cmd(&mut con, "CONFIG SET enc.phi-guard yes").unwrap();
    cmd(&mut con, "ENC.SET public:1 v").unwrap();
    // A PHI reader without a password.
    cmd(
        &mut con,
        "ACL SETUSER nurse on nopass ~patient:* +enc.get +enc.phi|read",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("report.json");
    let key = format!("file:{}", server.key_path().display());
    let audit = server.dir.path().join("audit.log");
    let url = server.url();
    let report = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--url",
            &url,
            "--master-key",
            &key,
            "--json",
            json.to_str().unwrap(),
            "--max-key-age",
            "1s",
        ];
        args.extend(extra);
        let (code, out, err) = tool(&args);
        assert_eq!(code, 1, "a failing report exits 1: {out}{err}");
        (read_json(&json), out)
    };
    let (r, out) = report(&["--audit-log", audit.to_str().unwrap()]);
    // The scan read every key without touching it: LRU idle times go on.
    for key in ["patient:0", "patient:plain:0"] {
        let idle: i64 = redis::cmd("OBJECT")
            .arg("IDLETIME")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert!(idle >= 2, "{key} idle {idle} s after the report");
    }
    let coverage = check(&r, "phi-coverage");
    assert_eq!(coverage["status"], "fail");
    assert_eq!(coverage["figures"]["coverage_percent"], 97.0);
    assert_eq!(coverage["figures"]["phi_values_plain"], 3);
    assert_eq!(coverage["figures"]["phi_values"], 100);
    assert_eq!(coverage["figures"]["values_sealed_elsewhere"], 1);
    assert_eq!(r["summary"]["coverage_percent"], 97.0);
    let ttl = check(&r, "phi-ttl");
    assert_eq!(ttl["status"], "fail");
    assert_eq!(ttl["figures"]["phi_keys_without_ttl"], 2);
    let access = check(&r, "phi-access");
    assert_eq!(access["status"], "fail");
    let without: Vec<&str> = access["figures"]["users_without_password"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(without, ["default", "nurse"]);
    assert!(access["figures"]["users_phi_read"]
        .as_array()
        .unwrap()
        .contains(&"nurse".into()));
    assert!(!access["figures"]["users_phi_write"]
        .as_array()
        .unwrap()
        .contains(&"nurse".into()));
    assert_eq!(status(&r, "transport"), "fail");
    assert!(check(&r, "transport")["summary"]
        .as_str()
        .unwrap()
        .starts_with("TLS is off (tls-port 0)"));
    let keys = check(&r, "keys");
    assert_eq!(keys["status"], "fail");
    assert!(
        keys["summary"]
            .as_str()
            .unwrap()
            .contains("default version 1 is"),
        "{keys}"
    );
    assert_eq!(
        keys["evidence"]["keyrings"][0]["versions"][0]["values_found"],
        98
    );
    let audit_check = check(&r, "audit");
    assert_eq!(audit_check["status"], "pass", "{audit_check}");
    assert_eq!(
        audit_check["figures"]["reaches_server_head"][format!("127.0.0.1:{}", server.port)],
        true
    );
    assert_eq!(audit_check["figures"]["logs"][0]["first_bad"], Value::Null);
    assert_eq!(status(&r, "backups"), "fail");
    assert_eq!(status(&r, "guard"), "pass");
    assert_eq!(status(&r, "at-rest"), "pass");
    // No PHI key name or value in the report.
    let text = std::fs::read_to_string(&json).unwrap();
    for secret in ["patient:plain", "patient:forever", "leaked", "patient:1"] {
        assert!(!text.contains(secret), "{secret} in the report");
        assert!(!out.contains(secret), "{secret} on standard output");
    }
    // The text summary, its variable parts put aside.
    let shown = out
        .replace(&server.url(), "URL")
        .lines()
        .map(|l| {
            if l.starts_with("redis-enc report of") {
                "redis-enc report of URL (1 server) at TIME".to_owned()
            } else if l.starts_with("FAIL  keys") {
                "FAIL  keys          (ages vary)".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(format!("{shown}\n"), golden("report-failing.txt"));

    // An edited audit log fails the audit check at the edited line.
    let edited = work.path().join("edited.log");
    let log = std::fs::read_to_string(&audit).unwrap();
    let line = log
        .lines()
        .position(|l| l.contains("\"phi-write\""))
        .unwrap()
        + 1;
    std::fs::write(&edited, log.replacen("\"phi-write\"", "\"phi-read\"", 1)).unwrap();
    let (r, _) = report(&["--audit-log", edited.to_str().unwrap()]);
    let audit_check = check(&r, "audit");
    assert_eq!(audit_check["status"], "fail");
    assert_eq!(audit_check["figures"]["logs"][0]["first_bad"]["line"], line);
    // So does a log cut short: its newest records removed.
    let cut = work.path().join("cut.log");
    let lines: Vec<&str> = log.lines().collect();
    std::fs::write(&cut, lines[..lines.len() - 3].join("\n")).unwrap();
    let (r, _) = report(&["--audit-log", cut.to_str().unwrap()]);
    let audit_check = check(&r, "audit");
    assert_eq!(audit_check["status"], "fail");
    assert!(audit_check["summary"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "the audit log of 127.0.0.1:{} was not given, or does not reach the chain head",
            server.port
        )));
    assert_eq!(audit_check["figures"]["logs"][0]["first_bad"], Value::Null);

    // Users whose PHI permission a literal key of the pattern would not show, and one whose
    // name is not UTF-8 (its permissions cannot be asked about by name): both are found.
    cmd(
        &mut con,
        "ACL SETUSER clerk on >pw %R~patient:?* +enc.get +enc.phi|read",
    )
    .unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(b"evil\xff".as_slice())
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all")
        .query(&mut con)
        .unwrap();
    let (r, _) = report(&[]);
    let access = check(&r, "phi-access");
    let readers = access["figures"]["users_phi_read"].to_string();
    assert!(readers.contains("\"clerk\""), "{readers}");
    assert!(
        access["evidence"]["problems"]
            .to_string()
            .contains("could not be checked"),
        "{access}"
    );
    // An empty password is no password; a user reaching PHI keys of a suffix pattern through
    // a prefix pattern of its own is a PHI reader.
    cmd(
        &mut con,
        "ACL SETUSER emptypw on > ~patient:* +enc.get +enc.phi|read",
    )
    .unwrap();
    cmd(
        &mut con,
        "ACL SETUSER pfx on >pw ~user:* +enc.get +enc.phi|read",
    )
    .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("enc.phi-patterns")
        .arg("patient:* *:ssn")
        .query(&mut con)
        .unwrap();
    let (r, _) = report(&[]);
    let access = check(&r, "phi-access");
    assert!(
        access["evidence"]["problems"]
            .to_string()
            .contains("user 'emptypw' has an empty password"),
        "{access}"
    );
    assert!(
        access["figures"]["users_phi_read"]
            .to_string()
            .contains("\"pfx\""),
        "{access}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("enc.phi-patterns")
        .arg("patient:*")
        .query(&mut con)
        .unwrap();
    cmd(&mut con, "ACL DELUSER emptypw pfx").unwrap();
    cmd(&mut con, "ACL DELUSER clerk").unwrap();
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(b"evil\xff".as_slice())
        .query(&mut con)
        .unwrap();

    // The audit log failing, then off.
    cmd(&mut con, "CONFIG SET enc.audit-log /dev/full").unwrap();
    let _ = cmd(&mut con, "ENC.GET patient:1");
    wait_until("the audit log to fail", || {
        let info: String = redis::cmd("INFO").arg("enc").query(&mut con).unwrap();
        info.contains("enc_audit_failing:yes")
    });
    let (r, _) = report(&[]);
    assert_eq!(status(&r, "audit"), "fail");
    assert!(check(&r, "audit")["summary"]
        .as_str()
        .unwrap()
        .starts_with("the audit log is failing"));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("enc.audit-log")
        .arg("")
        .query(&mut con)
        .unwrap();
    let (r, _) = report(&[]);
    assert_eq!(status(&r, "audit"), "fail");
    assert!(check(&r, "audit")["summary"]
        .as_str()
        .unwrap()
        .starts_with("the audit log is off"));
}

/// `redis-enc report verify FILE --master-key KEY`.
fn verify(file: &Path, key: &str) -> (i32, String, String) {
    tool(&[
        "report",
        "verify",
        file.to_str().unwrap(),
        "--master-key",
        key,
    ])
}

/// Makes `file` differ from itself in one byte at `at`.
fn flip(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_compliant_server_passes_every_check_and_its_signed_report_verifies() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let tls_port = common::free_port();
    let mut server_args = tls_server_args(certs.path(), tls_port, "yes");
    server_args.extend(
        [
            "--tls-replication",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ]
        .map(str::to_owned),
    );
    let server = audited_server(
        &[
            "phi-ttl-min",
            "60",
            "phi-ttl-max",
            "86400",
            "phi-ttl-default",
            "3600",
        ],
        server_args,
    );
    let key = format!("file:{}", server.key_path().display());
    let audit = server.dir.path().join("audit.log");
    let mut con = server.client();
    for i in 0..20 {
        cmd(&mut con, &format!("ENC.SET patient:{i} v{i}")).unwrap();
    }
    cmd(&mut con, "ENC.HSETFIELD patient:h name alice").unwrap();
    // A backup, verified, and a restore drill, each recorded.
    let work = tempfile::tempdir().unwrap();
    let records = work.path().join("records.jsonl");
    let drill = Command::new("bash")
        .arg(format!(
            "{}/scripts/restore-drill.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(["--url", &server.url(), "--master-key", &key, "--record"])
        .arg(&records)
        .env("REDIS_ENC", tool_exe())
        .env("REDIS_ENC_MODULE", module_path())
        .output()
        .unwrap();
    assert!(
        drill.status.success(),
        "{}",
        String::from_utf8_lossy(&drill.stderr)
    );
    // Now only TLS, only named users with passwords, PHI only over TLS.
    let password = work.path().join("reporter.pw");
    std::fs::write(&password, "reporter-secret\n").unwrap();
    // The report runs as the reporter user of redis.conf.example, exactly as written there.
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf.example"))
            .unwrap();
    let reporter = example
        .lines()
        .find_map(|l| l.strip_prefix("user reporter "))
        .unwrap()
        .replace(">CHANGE-ME-reporter", ">reporter-secret");
    let reporter = format!("ACL SETUSER reporter {reporter}");
    for line in [
        "ACL SETUSER admin on >admin-secret ~* &* +@all",
        &reporter,
        "CONFIG SET enc.phi-require-tls yes",
        "CONFIG SET port 0",
        "ACL SETUSER default off",
    ] {
        cmd(&mut con, line).unwrap();
    }
    drop(con);
    let json = work.path().join("report.json");
    let html = work.path().join("report.html");
    let url = format!("redis://reporter@127.0.0.1:{tls_port}");
    let tls_args = tls_client_args(certs.path());
    let mut args = vec![
        "report",
        "--url",
        &url,
        "--password-file",
        password.to_str().unwrap(),
        "--master-key",
        &key,
        "--audit-log",
        audit.to_str().unwrap(),
        "--records",
        records.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    args.extend(tls_args.iter().map(String::as_str));
    let (code, out, err) = tool(&args);
    let r = read_json(&json);
    assert_eq!(code, 0, "{out}{err}\n{r:#}");
    for id in [
        "phi-coverage",
        "phi-ttl",
        "phi-access",
        "transport",
        "at-rest",
        "keys",
        "audit",
        "backups",
        "guard",
    ] {
        assert_eq!(status(&r, id), "pass", "{id}: {}", check(&r, id));
    }
    assert_eq!(r["summary"]["passed"], 9);
    assert_eq!(r["summary"]["coverage_percent"], 100.0);
    assert_eq!(check(&r, "phi-coverage")["figures"]["phi_values"], 21);
    let backups = check(&r, "backups");
    assert_eq!(backups["figures"]["last_restore_drill"]["result"], "ok");
    assert_eq!(
        backups["figures"]["last_restore_drill"]["authenticated"],
        true
    );
    assert_eq!(
        backups["figures"]["last_restore_drill"]["detail"]["differing"],
        0
    );
    assert_eq!(backups["figures"]["last_backup_verified"]["result"], "ok");
    assert!(out.contains("9 passed, 0 failed"), "{out}");

    // The MAC: both files verify; one edited byte in either is caught.
    for file in [&json, &html] {
        let (code, out, err) = verify(file, &key);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(": authentic; report of"), "{out}");
    }
    // The MAC covers the whole document, its own description included, in one spelling.
    let text = std::fs::read_to_string(&json).unwrap();
    let mac = r["mac"]["value"].as_str().unwrap();
    for edited in [
        text.replace("\"algorithm\": \"HMAC-SHA256\"", "\"algorithm\": \"NONE\""),
        text.replace(mac, &mac.to_uppercase()),
    ] {
        let copy = work.path().join("copy.json");
        std::fs::write(&copy, edited).unwrap();
        let (code, _, err) = verify(&copy, &key);
        assert_eq!(code, 1, "{err}");
    }
    let other_key = work.path().join("other.key");
    write_key(&other_key);
    let (code, _, err) = verify(&json, &format!("file:{}", other_key.display()));
    assert_eq!(code, 1);
    assert!(err.contains("signed under master key"), "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    render_in_chromium(&html, work.path());
    let text = std::fs::read_to_string(&json).unwrap();
    let at = text.find("\"phi_values_sealed\": 21").unwrap() + "\"phi_values_sealed\": ".len();
    flip(&json, at);
    let (code, _, err) = verify(&json, &key);
    assert_eq!(code, 1);
    assert!(err.contains("the report was edited"), "{err}");
    flip(&html, page.find("controls pass").unwrap() - 3);
    let (code, _, err) = verify(&html, &key);
    assert_eq!(code, 1);
    assert!(err.contains("edited"), "{err}");
    // An edited record fails the backups check.
    let edited = std::fs::read_to_string(&records)
        .unwrap()
        .replace("\"differing\":0", "\"differing\":1");
    std::fs::write(&records, edited).unwrap();
    let (code, _, _) = tool(&args);
    assert_eq!(code, 1);
    let r = read_json(&json);
    assert_eq!(status(&r, "backups"), "fail");
    assert!(check(&r, "backups")["summary"]
        .as_str()
        .unwrap()
        .contains("fail their MAC"));
}

/// Renders the page in headless Chromium: a screenshot, and the summary's text in the DOM.
fn render_in_chromium(html: &Path, work: &Path) {
    if !have("chromium") {
        skipped("rendering the report in Chromium: chromium is not installed");
        return;
    }
    let url = format!("file://{}", html.display());
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,1600",
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.join("chromium").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = work.join("report.png");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    assert!(
        png.len() > 20_000,
        "the screenshot shows a page ({} bytes)",
        png.len()
    );
    let dom = chromium(&["--dump-dom"]);
    for text in [
        "Encryption evidence report",
        "9 of 9</span>controls pass",
        "100.0%</span>of PHI values sealed (21 of 21)",
        "164.312(a)(2)(iv) Encryption and decryption",
    ] {
        assert!(dom.contains(text), "{text} in the rendered page");
    }
}

/// A replica that lost its primary holds what it held, not what the primary holds: read alone,
/// its coverage is no figure, and the report says it is a replica.
#[test]
fn a_replica_out_of_sync_does_not_pass_for_its_primary() {
    let primary = common::phi_server_on(None, &[]);
    cmd(&mut primary.client(), "ENC.SET patient:1 v").unwrap();
    let replica = common::replica_of(&primary);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("enc.phi-patterns")
        .arg("patient:*")
        .query(&mut replica.client())
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let json = work.path().join("r.json");
    let report = || {
        tool(&[
            "report",
            "--url",
            &replica.url(),
            "--json",
            json.to_str().unwrap(),
        ]);
        read_json(&json)
    };
    let r = report();
    assert_eq!(r["servers"][0]["role"], "replica");
    assert_eq!(
        status(&r, "phi-coverage"),
        "pass",
        "in sync: {}",
        check(&r, "phi-coverage")
    );
    primary.stop();
    wait_until("the replica to lose its primary", || {
        common::info_field(&mut replica.client(), "replication", "master_link_status").as_deref()
            == Some("down")
    });
    let r = report();
    assert_eq!(status(&r, "phi-coverage"), "fail");
    assert!(check(&r, "phi-coverage")["summary"]
        .as_str()
        .unwrap()
        .contains("is a replica not in sync"));
}

#[test]
fn no_report_without_a_server_and_bad_input_is_refused() {
    let (code, _, err) = tool(&["report", "--url", "redis://127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("redis-enc: no report: cannot connect to 127.0.0.1:1"),
        "{err}"
    );
    let (code, _, err) = tool(&[
        "report",
        "--url",
        "redis://127.0.0.1:1",
        "--max-key-age",
        "3w",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("'3w' is not an age"), "{err}");
    let plain = Server::start();
    let (code, _, err) = tool(&["report", "--url", &plain.url(), "--cluster"]);
    assert_eq!(code, 2, "{err}");
    let bare = Server::with(Options {
        load_module: false,
        ..Options::default()
    });
    let (code, _, err) = tool(&["report", "--url", &bare.url()]);
    assert_eq!(code, 2);
    assert!(err.contains("is the redis-enc module loaded?"), "{err}");
    let work = tempfile::tempdir().unwrap();
    let not_report = work.path().join("x.json");
    std::fs::write(&not_report, "{}").unwrap();
    let key = format!("file:{}", plain.key_path().display());
    let (code, _, err) = verify(&not_report, &key);
    assert_eq!(code, 1);
    assert!(err.contains("not a redis-enc-report/1 report"), "{err}");
    // ENC.COVERAGE: bad input gets an error and changes nothing.
    let mut con = plain.client();
    for (line, wanted) in [
        ("ENC.COVERAGE", "ERR wrong number of arguments"),
        ("ENC.COVERAGE x", "invalid cursor"),
        ("ENC.COVERAGE 0 COUNT 0", "syntax error"),
        ("ENC.COVERAGE 0 COUNT -1", "not an integer"),
        ("ENC.COVERAGE 0 LIMIT 1", "syntax error"),
        ("ENC.COVERAGE 0 COUNT 1 x", "wrong number of arguments"),
    ] {
        let err = cmd(&mut con, line).unwrap_err();
        assert!(err.contains(wanted), "{line}: {err}");
    }
}

/// The same figures on Valkey 8.0 and 9.1 and on Redis 8.2 (`INFO`, `ACL DRYRUN` and the
/// coverage scan as each server gives them).
#[test]
fn the_report_reads_valkey_and_redis_8() {
    let mut binaries = Vec::new();
    if Path::new("/usr/bin/valkey-server").exists() {
        binaries.push("/usr/bin/valkey-server".to_owned());
    } else {
        skipped("the report on Valkey 8.0: /usr/bin/valkey-server is not installed");
    }
    binaries.extend(valkey_9());
    binaries.extend(redis_8());
    for binary in binaries {
        let server = phi_server_on(Some(&binary), &[]);
        let mut con = server.client();
        for i in 0..10 {
            cmd(&mut con, &format!("ENC.SET patient:{i} v EX 600")).unwrap();
        }
        cmd(&mut con, "ENC.HSETFIELD patient:h name v").unwrap();
        cmd(&mut con, "EXPIRE patient:h 600").unwrap();
        cmd(&mut con, "CONFIG SET enc.phi-guard no").unwrap();
        cmd(&mut con, "HSET patient:h note plain").unwrap();
        let work = tempfile::tempdir().unwrap();
        let json = work.path().join("r.json");
        let (code, out, err) = tool(&[
            "report",
            "--url",
            &server.url(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{binary}: {out}{err}");
        let r = read_json(&json);
        let coverage = check(&r, "phi-coverage");
        assert_eq!(coverage["figures"]["phi_values"], 12, "{binary}");
        assert_eq!(coverage["figures"]["coverage_percent"], 91.6, "{binary}");
        assert_eq!(status(&r, "guard"), "fail", "{binary}");
        assert_eq!(
            check(&r, "phi-access")["figures"]["users_phi_write"][0],
            "default",
            "{binary}"
        );
        let server_name = if binary.contains("valkey") {
            "valkey"
        } else {
            "redis"
        };
        assert_eq!(r["servers"][0]["server"], server_name, "{binary}");
    }
}
