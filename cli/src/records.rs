//! Evidence records (docs/FORMAT.md §9.3): one JSON line per backup, backup verification and
//! restore drill, appended to a file the operator names (`--record FILE`), each with a MAC under
//! a key derived from the master key and chained to the one before it (`seq`, `prev`), so that
//! an edited, removed or reordered record shows. `redis-enc report --records FILE` reads them
//! back.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redis_enc_core::evidence::EvidenceKey;
use redis_enc_core::provider::Provider;
use redis_enc_core::MasterKey;
use serde_json::{json, Map, Value};

/// The kinds of record.
pub const BACKUP: &str = "backup";
pub const BACKUP_VERIFIED: &str = "backup-verify";
pub const RESTORE_DRILL: &str = "restore-drill";

/// The longest record line read as a record (a record is a few hundred bytes); a longer line
/// is an inauthentic record, not a reason to stop reading.
const MAX_RECORD_LINE: usize = 64 << 10;

/// The lines of a records file as bytes, split on `\n` only (a `\r` stays part of its line).
fn lines_of(
    file: std::fs::File,
    path: &Path,
) -> impl Iterator<Item = Result<Vec<u8>, String>> + '_ {
    BufReader::new(file)
        .split(b'\n')
        .map(move |l| l.map_err(|e| format!("cannot read the records {}: {e}", path.display())))
}

/// What a record says; `time` and `mac` are added when it is written.
pub struct Record<'a> {
    pub kind: &'a str,
    pub ok: bool,
    pub seconds: f64,
    pub detail: Value,
}

/// The master key records are made and checked with: a local key (`file:`, `env:`, `exec:`).
pub fn local_master(uri: &str) -> Result<MasterKey, String> {
    Provider::parse(uri)
        .and_then(|p| p.fetch())
        .map_err(|e| format!("master key: {e}"))
}

/// Where a chain of records stands: the next `seq` and the `prev` it names.
struct Head {
    seq: u64,
    prev: String,
}

/// The `prev` of a file's first record.
fn genesis(key: &EvidenceKey) -> String {
    key.mac(b"redis-enc records genesis")
}

/// The line of a record: its fields with `seq` and `prev`, and the MAC of them all (canonical
/// JSON: members sorted, no white space), as member `mac`.
fn line(record: &Record, key: &EvidenceKey, key_id: &str, head: &Head) -> String {
    let mut fields = Map::new();
    fields.insert("format".into(), json!(1));
    fields.insert("seq".into(), json!(head.seq));
    fields.insert("prev".into(), json!(head.prev));
    fields.insert("kind".into(), json!(record.kind));
    fields.insert("time".into(), json!(crate::now_unix()));
    fields.insert(
        "result".into(),
        json!(if record.ok { "ok" } else { "failed" }),
    );
    fields.insert(
        "seconds".into(),
        json!((record.seconds * 1000.0).round() / 1000.0),
    );
    fields.insert("detail".into(), record.detail.clone());
    fields.insert("master_key_id".into(), json!(key_id));
    let body = Value::Object(fields.clone());
    let mac = key.mac(body.to_string().as_bytes());
    fields.insert("mac".into(), json!(mac));
    Value::Object(fields).to_string()
}

/// Where the chain of the records in `file` stands: after its last line, which must be a record.
fn head_of(file: &std::fs::File, key: &EvidenceKey, path: &Path) -> Result<Head, String> {
    let mut last = None;
    let file = file
        .try_clone()
        .map_err(|e| format!("cannot read the records {}: {e}", path.display()))?;
    for line in lines_of(file, path) {
        let line = line?;
        if !line.trim_ascii().is_empty() {
            last = Some(line);
        }
    }
    let Some(last) = last else {
        return Ok(Head {
            seq: 0,
            prev: genesis(key),
        });
    };
    let fields: Value = serde_json::from_slice(&last).unwrap_or(Value::Null);
    match (fields["seq"].as_u64(), fields["mac"].as_str()) {
        (Some(seq), Some(mac)) => Ok(Head {
            seq: seq + 1,
            prev: mac.to_owned(),
        }),
        _ => Err(format!(
            "the last line of {} is not a record: start a new records file",
            path.display()
        )),
    }
}

/// Appends `record` to `path` (created with mode 0600), under `master_key`, chained to the
/// file's last record.
pub fn append(path: &Path, master_key: &str, record: &Record) -> Result<(), String> {
    if !record.seconds.is_finite() || record.seconds < 0.0 {
        return Err("a duration is a number of seconds, 0 or more".into());
    }
    let master = local_master(master_key)?;
    let key = EvidenceKey::for_records(&master);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write the record to {}: {e}", path.display()))?;
    // One writer at a time: the chain's head is read and extended under the lock.
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    let head = head_of(&file, &key, path)?;
    let text = line(record, &key, master.id(), &head);
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write the record to {}: {e}", path.display()))
}

/// A record read back, and whether it is authentic (`None`: no key to check it with): its MAC
/// verifies, its line is exactly as written, and it follows the record before it.
pub struct Read {
    pub fields: Value,
    pub authentic: Option<bool>,
}

/// Every record of the files, oldest first, read as one chain; lines that are not JSON objects
/// come back as inauthentic empty records, so that a damaged file shows. Also the chain's head
/// (the last record's `mac`), which a later report can be compared with.
pub fn read(
    paths: &[&Path],
    key: Option<&EvidenceKey>,
) -> Result<(Vec<Read>, Option<String>), String> {
    let mut records = Vec::new();
    let mut before: Option<(u64, String)> = None;
    for path in paths {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read the records {}: {e}", path.display()))?;
        for line in lines_of(file, path) {
            // Every line is a record: an empty or blank one too (a record never is).
            let line = line?;
            let parsed = (line.len() <= MAX_RECORD_LINE)
                .then(|| std::str::from_utf8(&line).ok())
                .flatten()
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            let Some(Value::Object(mut fields)) = parsed else {
                records.push(Read {
                    fields: Value::Object(Map::new()),
                    authentic: Some(false),
                });
                before = None;
                continue;
            };
            // Exactly as written: no other spelling, order, escape or duplicate member.
            let canonical =
                serde_json::to_string(&fields).is_ok_and(|text| text.as_bytes() == line.as_slice());
            let mac = fields.remove("mac");
            let seq = fields.get("seq").and_then(Value::as_u64);
            let prev = fields
                .get("prev")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let chained = match (&before, seq, &prev, key) {
                // The first record read: the start of the file's chain, or of what is kept.
                (None, Some(0), Some(p), Some(k)) => *p == genesis(k),
                (None, Some(_), Some(_), _) => true,
                (Some((last_seq, last_mac)), Some(seq), Some(p), _) => {
                    seq == last_seq + 1 && p == last_mac
                }
                _ => false,
            };
            let authentic = key.map(|k| match &mac {
                Some(Value::String(mac)) => {
                    let body = Value::Object(fields.clone()).to_string();
                    // Format 1 only: a later format is not read as this one.
                    let known = fields.get("format") == Some(&json!(1));
                    known && canonical && chained && k.verify(body.as_bytes(), mac)
                }
                _ => false,
            });
            before = match (seq, &mac) {
                (Some(seq), Some(Value::String(mac))) => Some((seq, mac.clone())),
                _ => None,
            };
            records.push(Read {
                fields: Value::Object(fields),
                authentic,
            });
        }
    }
    let head = before.map(|(_, mac)| mac);
    Ok((records, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_verifies_until_a_byte_changes() {
        let master = MasterKey::generate();
        let key = EvidenceKey::for_records(&master);
        let record = Record {
            kind: RESTORE_DRILL,
            ok: true,
            seconds: 1.25,
            detail: json!({ "keys": 10 }),
        };
        let head = Head {
            seq: 0,
            prev: genesis(&key),
        };
        let text = line(&record, &key, master.id(), &head);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let edited = text.replace("\"keys\":10", "\"keys\":11");
        std::fs::write(&path, format!("{text}\n{edited}\nnot json\n")).unwrap();
        let (read, _) = read(&[&path], Some(&key)).unwrap();
        let authentic: Vec<_> = read.iter().map(|r| r.authentic).collect();
        assert_eq!(authentic, [Some(true), Some(false), Some(false)]);
        assert_eq!(read[0].fields["kind"], RESTORE_DRILL);
        assert_eq!(read[0].fields["result"], "ok");
    }

    /// `tests/data/records-v1.jsonl`, written by release 0.1 under the vector master key.
    #[test]
    fn the_release_0_1_records_read_as_one_chain() {
        let master =
            MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "test").unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/records-v1.jsonl");
        let (read, head) = read(&[&path], Some(&EvidenceKey::for_records(&master))).unwrap();
        let results: Vec<_> = read
            .iter()
            .map(|r| (r.authentic, r.fields["result"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(results, [(Some(true), "ok"), (Some(true), "failed")]);
        assert_eq!(
            head.as_deref(),
            Some("bfc771acc57ce2554f57d7f8540140a6dc2d25c2f86866d8a735cfae9142645a")
        );
    }

    /// Three records appended; then each way of changing the file without the key.
    #[test]
    fn a_chain_of_records_shows_edits_removals_and_reordering() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let master = MasterKey::generate();
        redis_enc_core::provider::file::write_new_key_file(&key_file, &master).unwrap();
        let uri = format!("file:{}", key_file.display());
        let path = dir.path().join("records.jsonl");
        for (kind, ok) in [
            (BACKUP, true),
            (BACKUP_VERIFIED, true),
            (RESTORE_DRILL, false),
        ] {
            let record = Record {
                kind,
                ok,
                seconds: 1.0,
                detail: json!({}),
            };
            append(&path, &uri, &record).unwrap();
        }
        let key = EvidenceKey::for_records(&master);
        let authentic = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let (read, _) = read(&[&path], Some(&key)).unwrap();
            read.iter()
                .map(|r| r.authentic == Some(true))
                .collect::<Vec<_>>()
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(authentic(&text), [true, true, true]);
        // The failed drill removed from the middle of a longer file, or moved first.
        assert_eq!(
            authentic(&format!("{}\n{}\n", lines[0], lines[2])),
            [true, false]
        );
        // (A file may start after records that were rotated away: a first record is taken
        // as it comes, and the one after it is out of place.)
        assert_eq!(
            authentic(&format!("{}\n{}\n{}\n", lines[2], lines[0], lines[1])),
            [true, false, true]
        );
        // Other spellings of the same record.
        let mac_at = lines[2].find("\"mac\":\"").unwrap() + 7;
        let mut upper = lines[2].to_owned();
        upper.replace_range(
            mac_at..mac_at + 64,
            &lines[2][mac_at..mac_at + 64].to_uppercase(),
        );
        for spelling in [
            upper,
            lines[2].replace(
                "\"result\":\"failed\"",
                "\"result\":\"failed\",\"result\":\"ok\"",
            ),
            lines[2].replace(',', ", "),
            lines[2].replace("\"kind\"", "\"\\u006bind\""),
            format!("{}\r", lines[2]),
        ] {
            assert_eq!(
                authentic(&format!("{}\n{}\n{spelling}\n", lines[0], lines[1])),
                [true, true, false],
                "{spelling}"
            );
        }
        // A line too long, or not UTF-8, is one more bad record: reading goes on past it.
        let long = " ".repeat(MAX_RECORD_LINE + 1);
        assert_eq!(
            authentic(&format!("{}\n{long}\n{}\n", lines[0], lines[1])),
            [true, false, true]
        );
        std::fs::write(&path, [lines[0].as_bytes(), b"\n\xff\n"].concat()).unwrap();
        let (read, _) = read(&[&path], Some(&key)).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].authentic, Some(false));
        // Appending goes on from the last record; a damaged last line stops it.
        std::fs::write(&path, &text).unwrap();
        let record = Record {
            kind: RESTORE_DRILL,
            ok: true,
            seconds: 1.0,
            detail: json!({}),
        };
        append(&path, &uri, &record).unwrap();
        assert_eq!(
            authentic(&std::fs::read_to_string(&path).unwrap()),
            [true; 4]
        );
        std::fs::write(&path, format!("{text}garbage\n")).unwrap();
        assert!(append(&path, &uri, &record)
            .unwrap_err()
            .contains("is not a record"));
        let nan = Record {
            seconds: f64::NAN,
            ..record
        };
        assert!(append(&path, &uri, &nan).is_err());
    }

    /// The record of docs/FORMAT.md §9.4 reads back as authentic under its master key.
    #[test]
    fn the_documented_record_verifies() {
        let master =
            MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "test").unwrap();
        let line = r#"{"detail":{"differing":0,"recovery_s":0.42},"format":1,"kind":"restore-drill","mac":"7a26bc1526fc218900dde95b94c0beeb47e28edc5ef4dd2fc4feb0a0a1d98b95","master_key_id":"2a984a545c1cdbce","prev":"d79067ed6657e292ee9154ee2f34f53eb07908b73b217ee70747b45cfc07ba26","result":"ok","seconds":1.25,"seq":0,"time":1796256000}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let (read, head) = read(&[&path], Some(&EvidenceKey::for_records(&master))).unwrap();
        assert_eq!(read[0].authentic, Some(true));
        assert_eq!(
            head.as_deref(),
            Some("7a26bc1526fc218900dde95b94c0beeb47e28edc5ef4dd2fc4feb0a0a1d98b95")
        );
    }
}
