//! Evidence records (docs/FORMAT.md §9.2): one JSON line per backup, backup verification and
//! restore drill, appended to a file the operator names (`--record FILE`), each with a MAC under
//! a key derived from the master key. `redis-enc report --records FILE` reads them back.

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

/// The longest records file read (a record is a few hundred bytes).
const MAX_RECORDS_FILE: u64 = 64 << 20;

/// What a record says; `time` and `mac` are added when it is written.
pub struct Record<'a> {
    pub kind: &'a str,
    pub ok: bool,
    pub seconds: f64,
    pub detail: Value,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The master key records are made and checked with: a local key (`file:`, `env:`, `exec:`).
pub fn local_master(uri: &str) -> Result<MasterKey, String> {
    Provider::parse(uri)
        .and_then(|p| p.fetch())
        .map_err(|e| format!("master key: {e}"))
}

/// The line of a record: its fields and, last, the MAC of the line without it.
fn line(record: &Record, key: &EvidenceKey, key_id: &str) -> String {
    let mut fields = Map::new();
    fields.insert("format".into(), json!(1));
    fields.insert("kind".into(), json!(record.kind));
    fields.insert("time".into(), json!(now_unix()));
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

/// Appends `record` to `path` (created with mode 0600), under `master_key`.
pub fn append(path: &Path, master_key: &str, record: &Record) -> Result<(), String> {
    let master = local_master(master_key)?;
    let text = line(record, &EvidenceKey::for_records(&master), master.id());
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write the record to {}: {e}", path.display()))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot write the record to {}: {e}", path.display()))
}

/// A record read back, and whether its MAC verified (`None`: no key to check it with).
pub struct Read {
    pub fields: Value,
    pub authentic: Option<bool>,
}

/// Every record of `path`, oldest first; lines that are not JSON objects come back as
/// inauthentic empty records, so that a damaged file shows.
pub fn read(path: &Path, key: Option<&EvidenceKey>) -> Result<Vec<Read>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the records {}: {e}", path.display()))?;
    let mut records = Vec::new();
    for line in BufReader::new(std::io::Read::take(file, MAX_RECORDS_FILE)).lines() {
        let line = line.map_err(|e| format!("cannot read the records {}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&line) else {
            records.push(Read {
                fields: Value::Object(Map::new()),
                authentic: Some(false),
            });
            continue;
        };
        let mac = fields.remove("mac");
        let authentic = key.map(|k| match &mac {
            Some(Value::String(mac)) => {
                let body = Value::Object(fields.clone()).to_string();
                k.verify(body.as_bytes(), mac)
            }
            _ => false,
        });
        records.push(Read {
            fields: Value::Object(fields),
            authentic,
        });
    }
    Ok(records)
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
        let text = line(&record, &key, master.id());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let edited = text.replace("\"keys\":10", "\"keys\":11");
        std::fs::write(&path, format!("{text}\n{edited}\nnot json\n")).unwrap();
        let read = read(&path, Some(&key)).unwrap();
        let authentic: Vec<_> = read.iter().map(|r| r.authentic).collect();
        assert_eq!(authentic, [Some(true), Some(false), Some(false)]);
        assert_eq!(read[0].fields["kind"], RESTORE_DRILL);
        assert_eq!(read[0].fields["result"], "ok");
    }

    /// The record of docs/FORMAT.md §9.4 reads back as authentic under its master key.
    #[test]
    fn the_documented_record_verifies() {
        let master =
            MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "test").unwrap();
        let line = r#"{"detail":{"differing":0,"recovery_s":0.42},"format":1,"kind":"restore-drill","master_key_id":"2a984a545c1cdbce","result":"ok","seconds":1.25,"time":1796256000,"mac":"9d4d89d3ff87fdd8e49d3b621d6a2ef252986ca1b2f0fa49367ea7f44af1f081"}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let read = read(&path, Some(&EvidenceKey::for_records(&master))).unwrap();
        assert_eq!(read[0].authentic, Some(true));
    }
}
