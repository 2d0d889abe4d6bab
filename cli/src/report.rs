//! `redis-enc report`: evidence for an auditor. Reads a server (or every node of a cluster),
//! runs the checks of [`checks`], and writes a JSON document and a self-contained HTML page,
//! both with a MAC under a key derived from the master key (docs/FORMAT.md §9);
//! `redis-enc report verify` checks it.

mod checks;
mod gather;
mod html;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use redis_enc_core::evidence::EvidenceKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::replication::{self, Target, Tls};
use checks::{AuditFacts, Extra, Limits, RecordFacts, Status};
use gather::{Progress, Reach};

/// The format name every report carries.
pub const FORMAT: &str = "redis-enc-report/1";

/// What `redis-enc report` was asked to do.
pub struct Options {
    pub url: String,
    pub target: Target,
    pub tls: Option<Tls>,
    pub cluster: bool,
    pub master_key: Option<String>,
    /// `[ADDRESS=]FILE`: an audit log file, of the node at ADDRESS in a cluster.
    pub audit_logs: Vec<String>,
    pub records: Vec<PathBuf>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub max_key_age: Option<u64>,
    pub max_backup_age: u64,
    pub max_drill_age: u64,
    pub scan_count: u32,
}

/// How the report ended: every check passed, or some failed.
pub enum Outcome {
    Passed,
    Failed,
}

/// Parses an age: a number with `s`, `m`, `h` or `d` (days when no unit).
pub fn parse_age(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "d"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not an age (say 90d, 12h, 30m or 45s)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}' is not an age (say 90d, 12h, 30m or 45s)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too long an age"))
}

/// The servers to read: the one named, or with `--cluster` every node it lists.
fn reach<'a>(opts: &'a Options) -> Result<Vec<Reach<'a>>, String> {
    let address = format!("{}:{}", opts.target.host, opts.target.port);
    if !opts.cluster {
        return Ok(vec![Reach {
            target: opts.target.clone(),
            address,
            primary: true,
            tls: opts.tls.as_ref(),
        }]);
    }
    let mut con = replication::connect(
        &opts.target,
        opts.tls.as_ref(),
        std::time::Duration::from_secs(10),
    )?;
    let nodes = String::from_utf8_lossy(&con.bulk(&["CLUSTER", "NODES"])?).into_owned();
    let (listed, unreadable) = crate::cluster::listed(&nodes);
    if unreadable > 0 || listed.is_empty() {
        return Err(format!("{address}: CLUSTER NODES could not be read"));
    }
    let mut reach: Vec<Reach> = listed
        .iter()
        .map(|n| Reach {
            target: n.target(&opts.target),
            address: n.addr(),
            // Each slot counted once: only primaries that serve slots are scanned.
            primary: n.primary && n.serves_slots,
            tls: opts.tls.as_ref(),
        })
        .collect();
    reach.sort_by(|a, b| a.address.cmp(&b.address));
    if let Some(failing) = listed.iter().find(|n| n.role == "failing") {
        return Err(format!(
            "node {} is failing: a report needs every node",
            failing.addr()
        ));
    }
    Ok(reach)
}

/// The audit logs given: `[ADDRESS=]FILE` each; the files of one address (or of none) form one
/// chain, oldest first.
fn read_audits(
    specs: &[String],
    master: Option<&redis_enc_core::MasterKey>,
) -> Result<Vec<AuditFacts>, String> {
    let mut chains: Vec<(Option<String>, Vec<PathBuf>)> = Vec::new();
    for spec in specs {
        let (node, file) = match spec.split_once('=') {
            Some((node, file)) if node.contains(':') && !node.contains('/') => {
                (Some(node.to_owned()), file)
            }
            _ => (None, spec.as_str()),
        };
        match chains.iter_mut().find(|(n, _)| *n == node) {
            Some((_, files)) => files.push(PathBuf::from(file)),
            None => chains.push((node, vec![PathBuf::from(file)])),
        }
    }
    chains
        .into_iter()
        .map(|(node, files)| read_audit(node, files, master))
        .collect()
}

fn read_audit(
    node: Option<String>,
    files: Vec<PathBuf>,
    master: Option<&redis_enc_core::MasterKey>,
) -> Result<AuditFacts, String> {
    let mut text = Vec::new();
    for f in &files {
        std::fs::File::open(f)
            .and_then(|mut file| file.read_to_end(&mut text))
            .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
    }
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    let verified = match master {
        Some(m) => Some(
            redis_enc_core::audit::verify(
                &redis_enc_core::audit::AuditKey::derive(m),
                std::io::Cursor::new(&text),
                None,
            )
            .map_err(|e| format!("cannot read the audit log: {e}"))?,
        ),
        None => None,
    };
    let mut facts = AuditFacts {
        node,
        files,
        verified: None,
        macs: Default::default(),
        events: Default::default(),
        denials: 0,
        first_ms: None,
        last_ms: None,
    };
    // Only the records the chain verified are counted, and only their MACs can show that the
    // log reaches a server's head: not the lines before the first bad one's, not the cut lines
    // the chain steps over, nothing without a key.
    let Some(v) = verified else {
        return Ok(facts);
    };
    for (at, line) in (1u64..).zip(text.split(|&b| b == b'\n')) {
        if v.first_bad.as_ref().is_some_and(|(bad, _)| at >= *bad) {
            break;
        }
        if v.incomplete.contains(&at) {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let mac = record["mac"].as_str().map(str::to_owned);
        let Ok(event) = serde_json::from_value::<redis_enc_core::audit::Event>(record) else {
            continue;
        };
        facts.macs.extend(mac);
        let name = if event.event.len() <= 32
            && event
                .event
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            event.event.clone()
        } else {
            "other".to_owned()
        };
        *facts.events.entry(name).or_default() += 1;
        if event.event == "denied" || event.outcome.starts_with("denied") {
            facts.denials += 1;
        }
        facts.first_ms = facts.first_ms.or(Some(event.time_ms));
        facts.last_ms = Some(event.time_ms);
    }
    facts.verified = Some(v);
    Ok(facts)
}

fn read_records(
    files: &[PathBuf],
    master: Option<&redis_enc_core::MasterKey>,
) -> Result<RecordFacts, String> {
    let key = master.map(EvidenceKey::for_records);
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (records, head) = crate::records::read(&paths, key.as_ref())?;
    Ok(RecordFacts {
        files: files.to_vec(),
        records,
        head,
    })
}

/// The settings read, hashed: SHA-256 of the configs and `INFO enc` identity of every node.
fn settings_digest(nodes: &[gather::Node]) -> String {
    let settings: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "address": n.address,
                "config": n.config,
                "provider": n.info("enc_provider"),
                "master_key_id": n.info("enc_master_key_id"),
                "keyring_digest": n.info("enc_keyring_digest"),
            })
        })
        .collect();
    hex::encode(Sha256::digest(
        Value::Array(settings).to_string().as_bytes(),
    ))
}

/// `unix` as a UTC time to the second (`2026-12-03T04:21:57Z`).
fn rfc3339(unix: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Builds the report document (without its MAC).
fn document(opts: &Options, nodes: &[gather::Node], list: &[checks::Check], now: u64) -> Value {
    let count = |s: Status| list.iter().filter(|c| c.status == s).count();
    let coverage = checks::total_coverage(nodes);
    let values = coverage.phi_values_sealed + coverage.phi_values_plain;
    let servers: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "address": n.address,
                "role": if n.info("role") == "slave" { "replica" } else { "primary" },
                "server": if n.info.contains_key("valkey_version") { "valkey" } else { "redis" },
                "version": n.info.get("valkey_version").map_or(n.info("redis_version"), String::as_str),
                "run_id": n.info("run_id"),
                "time": n.time,
                "master_key_id": n.info("enc_master_key_id"),
                "keyring_epoch": n.info("enc_keyring_epoch"),
            })
        })
        .collect();
    // `INFO modules`: `module:name=enc,ver=100,...`.
    let module_version = nodes
        .first()
        .and_then(|n| n.info.get("module"))
        .and_then(|m| m.split(',').find_map(|kv| kv.strip_prefix("ver=")))
        .unwrap_or_default()
        .to_owned();
    json!({
        "format": FORMAT,
        "made_at": rfc3339(now),
        "made_at_unix": now,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "target": {
            "url": replication::shown(&opts.url),
            "cluster": opts.cluster,
        },
        "module_version": module_version,
        "servers": servers,
        "settings_sha256": settings_digest(nodes),
        "summary": {
            "result": if count(Status::Fail) > 0 { "fail" } else { "pass" },
            "checks": list.len(),
            "passed": count(Status::Pass),
            "failed": count(Status::Fail),
            "warnings": count(Status::Warn),
            "not_applicable": count(Status::NotApplicable),
            "coverage_percent": checks::percent(coverage.phi_values_sealed, values),
            "phi_values": values,
            "phi_values_sealed": coverage.phi_values_sealed,
        },
        "hipaa": checks::PARAGRAPHS.iter().map(|(id, title)| {
            json!({
                "paragraph": id,
                "title": title,
                "checks": list.iter().filter(|c| c.hipaa.contains(id)).map(|c| c.id).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "checks": list.iter().map(checks::Check::to_json).collect::<Vec<_>>(),
    })
}

/// The bytes the MAC covers: the canonical JSON of the whole document, `mac` included but for
/// its `value` (so its algorithm, key and master key id are covered too).
fn mac_input(doc: &Value) -> Vec<u8> {
    let mut body = doc.clone();
    if let Some(mac) = body.get_mut("mac").and_then(Value::as_object_mut) {
        mac.remove("value");
    }
    body.to_string().into_bytes()
}

/// The JSON file's text: the document pretty-printed, one trailing newline.
fn json_text(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes `text` to `path` through a new temporary file in the same directory (created
/// exclusively, under a random name, so no link planted there is followed), renamed into
/// place. Only a regular file is replaced.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let failed = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            return Err(failed(&"it exists and is not a regular file"));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".redis-enc-report")
        .tempfile_in(dir)
        .map_err(|e| failed(&e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| failed(&e))?;
    tmp.persist(path).map_err(|e| failed(&e.error))?;
    Ok(())
}

/// `redis-enc report`.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let master = opts
        .master_key
        .as_deref()
        .map(crate::records::local_master)
        .transpose()?;
    let reach = reach(opts)?;
    let mut progress = Progress::new(gather::key_total(&reach));
    let nodes = reach
        .iter()
        .map(|r| gather::read_node(r, opts.scan_count, &mut progress))
        .collect::<Result<Vec<_>, _>>();
    progress.finish();
    let nodes = nodes?;
    // Read after the servers: a complete log holds the chain head each server had then.
    let audit = read_audits(&opts.audit_logs, master.as_ref())?;
    let records = (!opts.records.is_empty())
        .then(|| read_records(&opts.records, master.as_ref()))
        .transpose()?;
    let now = crate::now_unix();
    let limits = Limits {
        max_key_age: opts.max_key_age,
        max_backup_age: opts.max_backup_age,
        max_drill_age: opts.max_drill_age,
    };
    let extra = Extra {
        audit,
        records,
        now,
    };
    let list = checks::run(&nodes, &extra, &limits);
    let mut doc = document(opts, &nodes, &list, now);
    doc["mac"] = Value::Null;
    if let Some(m) = &master {
        doc["mac"] = json!({
            "algorithm": "HMAC-SHA256",
            "key": "HKDF-SHA256 of the master key, info \"redis-enc report\"",
            "master_key_id": m.id(),
        });
        doc["mac"]["value"] = json!(EvidenceKey::for_reports(m).mac(&mac_input(&doc)));
    }
    if let Some(path) = &opts.json {
        write_file(path, &json_text(&doc))?;
    }
    if let Some(path) = &opts.html {
        let mut page = html::render(&doc);
        if let Some(m) = &master {
            let mac = EvidenceKey::for_reports(m).mac(page.as_bytes());
            page = html::with_page_mac(&page, &mac);
        }
        write_file(path, &page)?;
    }
    print_summary(&doc);
    Ok(if list.iter().any(|c| c.status == Status::Fail) {
        Outcome::Failed
    } else {
        Outcome::Passed
    })
}

fn print_summary(doc: &Value) {
    let servers = doc["servers"].as_array().map_or(0, Vec::len);
    say!(
        "redis-enc report of {} ({} server{}) at {}",
        doc["target"]["url"].as_str().unwrap_or(""),
        servers,
        if servers == 1 { "" } else { "s" },
        doc["made_at"].as_str().unwrap_or("")
    );
    for c in doc["checks"].as_array().into_iter().flatten() {
        let status = match c["status"].as_str().unwrap_or("") {
            "not-applicable" => "N/A".to_owned(),
            s => s.to_uppercase(),
        };
        say!(
            "{status:<4}  {:<12}  {}",
            c["id"].as_str().unwrap_or(""),
            c["summary"].as_str().unwrap_or("")
        );
    }
    let s = &doc["summary"];
    say!(
        "{} passed, {} failed, {} warnings, {} not applicable; PHI values sealed: {:.1}%{}",
        s["passed"],
        s["failed"],
        s["warnings"],
        s["not_applicable"],
        s["coverage_percent"].as_f64().unwrap_or(0.0),
        if doc["mac"].is_null() {
            "; not signed (no --master-key)"
        } else {
            ""
        }
    );
}

/// The report document inside a JSON file or an HTML page, and whether the file around it is
/// untouched: for the JSON file, that it is exactly the printing of the document; for a page,
/// that the page's own MAC verifies.
fn read_report(text: &str, key: &EvidenceKey) -> Result<(Value, bool), String> {
    if text.starts_with("<!DOCTYPE html>") {
        let json = html::embedded(text).ok_or("the page holds no report document")?;
        let doc: Value =
            serde_json::from_str(&json).map_err(|e| format!("the page's report document: {e}"))?;
        let intact =
            html::page_mac(text).is_some_and(|(mac, zeroed)| key.verify(zeroed.as_bytes(), &mac));
        return Ok((doc, intact));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not a report: {e}"))?;
    let intact = json_text(&doc) == text;
    Ok((doc, intact))
}

/// `redis-enc report verify FILE --master-key URI`.
pub fn verify(file: &Path, master_key: &str) -> Result<(), String> {
    let master = crate::records::local_master(master_key)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let key = EvidenceKey::for_reports(&master);
    let (doc, intact) = read_report(&text, &key)?;
    if doc["format"] != FORMAT {
        return Err(format!("{}: not a {FORMAT} report", file.display()));
    }
    let mac = &doc["mac"];
    let Some(value) = mac["value"].as_str() else {
        return Err(format!(
            "{}: the report is not signed (made without --master-key)",
            file.display()
        ));
    };
    if mac["master_key_id"] != master.id() {
        return Err(format!(
            "{}: signed under master key {}, not {}",
            file.display(),
            mac["master_key_id"].as_str().unwrap_or("?"),
            master.id()
        ));
    }
    if !key.verify(&mac_input(&doc), value) {
        return Err(format!(
            "{}: the MAC does not match: the report was edited",
            file.display()
        ));
    }
    if !intact {
        return Err(format!(
            "{}: the document verifies but the file around it was edited",
            file.display()
        ));
    }
    let s = &doc["summary"];
    say!(
        "{}: authentic; report of {} made at {}: {} passed, {} failed, {} warnings",
        file.display(),
        doc["target"]["url"].as_str().unwrap_or(""),
        doc["made_at"].as_str().unwrap_or(""),
        s["passed"],
        s["failed"],
        s["warnings"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_units() {
        assert_eq!(parse_age("90d"), Ok(90 * 86_400));
        assert_eq!(parse_age("12h"), Ok(12 * 3600));
        assert_eq!(parse_age("45s"), Ok(45));
        assert_eq!(parse_age("7"), Ok(7 * 86_400));
        assert!(parse_age("7w").is_err());
        assert!(parse_age("").is_err());
    }

    #[test]
    fn a_document_reads_back_to_the_bytes_its_mac_covers() {
        let doc = json!({
            "format": FORMAT,
            "figures": [0.1 + 0.2, 1.0 / 3.0, 97.0, 2.1316282072803006e-13, 1e300, u64::MAX],
            "text": "é </script> \u{1}",
        });
        let back: Value = serde_json::from_str(&json_text(&doc)).unwrap();
        assert_eq!(mac_input(&back), mac_input(&doc));
        assert_eq!(json_text(&back), json_text(&doc));
    }

    /// A line the chain steps over (a write cut short, noted by the record after it) is not
    /// counted, and its `mac` cannot stand for a server's head.
    #[test]
    fn only_verified_audit_records_are_counted() {
        use redis_enc_core::audit::{AuditKey, Chain, Event, INCOMPLETE_LINE};
        let master = redis_enc_core::MasterKey::generate();
        let mut chain = Chain::new(AuditKey::derive(&master));
        let event = |name: &str, detail: Option<&str>| Event {
            event: name.to_owned(),
            detail: detail.map(str::to_owned),
            outcome: "ok".to_owned(),
            ..Event::default()
        };
        let mut lines = vec![
            chain.append(event("audit-started", None)),
            chain.append(event("phi-read", None)),
        ];
        let forged = r#"{"seq":2,"prev":"x","event":"forged-event","time_ms":1,"user":"","client_id":0,"addr":"","command":"","outcome":"ok","mac":"HEAD"}"#;
        lines.push(forged.to_owned());
        lines.push(chain.append(event("audit-resumed", Some(INCOMPLETE_LINE))));
        let real_head = chain.head();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(
            &log,
            lines.join("\n").replace("HEAD", "0".repeat(64).as_str()),
        )
        .unwrap();
        let facts = read_audit(None, vec![log], Some(&master)).unwrap();
        assert_eq!(facts.verified.as_ref().unwrap().incomplete, [3]);
        assert!(
            !facts.events.contains_key("forged-event"),
            "{:?}",
            facts.events
        );
        assert_eq!(facts.events.values().sum::<u64>(), 3);
        assert!(facts.macs.contains(&real_head));
        assert!(!facts.macs.contains(&"0".repeat(64)));
    }

    #[test]
    fn report_files_replace_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report.json");
        write_file(&out, "one").unwrap();
        write_file(&out, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "two");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "kept").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_file(&link, "x")
            .unwrap_err()
            .contains("not a regular file"));
        assert!(write_file(dir.path(), "x").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "kept");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "no temporary file left behind");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_271_717), "2026-12-03T04:21:57Z");
    }
}
