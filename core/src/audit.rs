//! The audit log's records and their hash chain (docs/FORMAT.md §5).
//!
//! Every record is one JSON line. Its `mac` is HMAC-SHA256, under a key derived from the master
//! key, of the line without the `mac` field; the line names the previous record's `mac` in
//! `prev` and counts up in `seq`. Editing, deleting, reordering or cutting records therefore
//! breaks the chain at the first record touched. Values are never recorded.

use std::fmt;
use std::io::BufRead;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::key::MasterKey;

type HmacSha256 = Hmac<Sha256>;

/// The audit log's keys, derived from the master key: one authenticates the chain, one
/// hashes key names when `enc.audit-hash-keys` is on.
pub struct AuditKey {
    chain: Zeroizing<[u8; 32]>,
    names: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// Derives the audit keys from the master key (§5.2).
    pub fn derive(master: &MasterKey) -> AuditKey {
        AuditKey {
            chain: master.derive_secret(b"redis-enc audit chain"),
            names: master.derive_secret(b"redis-enc audit key names"),
        }
    }

    fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(self.chain.as_ref()).expect("any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// The `prev` of a chain's first record.
    pub fn genesis(&self) -> [u8; 32] {
        self.mac(b"redis-enc audit genesis")
    }

    /// An HMAC of a key name, so that identifiers in key names stay out of the log.
    pub fn hash_name(&self, name: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(self.names.as_ref()).expect("any key length");
        mac.update(name);
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// What happened, as one record says it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `phi-read`, `phi-write`, `denied`, `keyring`, `config`, `audit-started`, `audit-reopened`.
    pub event: String,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The ACL user, or empty for the server itself.
    pub user: String,
    /// The client id.
    pub client_id: u64,
    /// The client's address.
    pub addr: String,
    /// The command.
    pub command: String,
    /// The key name, or its HMAC (prefixed `hmac:`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// The keyring.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub keyring: Option<String>,
    /// The key version.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u16>,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// A detail: the config set, the keyring operation, the reason of a denial.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// A record as it is read back.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Body {
    seq: u64,
    prev: String,
    /// Parsed to check the record's shape; verification needs only `seq` and `prev`.
    #[serde(flatten)]
    #[cfg_attr(not(test), allow(dead_code))]
    event: Event,
}

/// A record as it is written: the same fields in the same order as [`Body`], borrowed.
/// (`#[serde(flatten)]` serializes through an intermediate map, which cost more than the HMAC.)
#[derive(Serialize)]
struct BodyRef<'a> {
    seq: u64,
    prev: &'a str,
    event: &'a str,
    time_ms: u64,
    user: &'a str,
    client_id: u64,
    addr: &'a str,
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyring: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u16>,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// Lower-case hex of a MAC, without an allocation per digit.
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // The output is exactly twice the input.
    hex::encode_to_slice(bytes, &mut out).expect("64 hex digits");
    out
}

/// The start of the detail of the record a server writes when it resumes a log whose last line
/// was cut short (a crash mid-write). `verify` accepts such a line only when the record after
/// it says so and continues the chain from the record before it.
pub const INCOMPLETE_LINE: &str = "the last line was incomplete";

/// The writer's side of a chain.
pub struct Chain {
    key: AuditKey,
    seq: u64,
    prev: [u8; 32],
}

impl Chain {
    /// A new chain.
    pub fn new(key: AuditKey) -> Chain {
        let prev = key.genesis();
        Chain { key, seq: 0, prev }
    }

    /// Continues after `last_line` if it is an authentic record, else starts a new chain.
    pub fn resume(key: AuditKey, last_line: Option<&str>) -> Chain {
        let mut chain = Chain::new(key);
        if let Some((seq, mac, _)) = last_line.and_then(|l| check_line(&chain.key, l).ok()) {
            chain.seq = seq + 1;
            chain.prev = mac;
        }
        chain
    }

    /// Continues a chain whose next record is `seq` after the record with mac `head` (hex), in a
    /// new file: the log the new file replaces ended there.
    pub fn continuing(key: AuditKey, seq: u64, head: String) -> Chain {
        let mut chain = Chain::new(key);
        if let Some(mac) = hex::decode(head).ok().and_then(|m| m.try_into().ok()) {
            chain.seq = seq;
            chain.prev = mac;
        }
        chain
    }

    /// Whether this chain starts a file (no record before it).
    pub fn at_start(&self) -> bool {
        self.seq == 0
    }

    /// Appends an event: returns its line (without the newline).
    pub fn append(&mut self, event: Event) -> String {
        let prev = hex32(&self.prev);
        let body = BodyRef {
            seq: self.seq,
            // Hex digits are ASCII.
            prev: std::str::from_utf8(&prev).unwrap_or_default(),
            event: &event.event,
            time_ms: event.time_ms,
            user: &event.user,
            client_id: event.client_id,
            addr: &event.addr,
            command: &event.command,
            key: event.key.as_deref(),
            keyring: event.keyring.as_deref(),
            version: event.version,
            outcome: &event.outcome,
            detail: event.detail.as_deref(),
        };
        let mut line = Vec::with_capacity(384);
        // A struct of strings and numbers always serializes.
        serde_json::to_writer(&mut line, &body).unwrap_or_default();
        let mac = self.key.mac(&line);
        self.prev = mac;
        self.seq += 1;
        // Replace the closing brace with the mac field.
        line.pop();
        line.extend_from_slice(b",\"mac\":\"");
        line.extend_from_slice(&hex32(&mac));
        line.extend_from_slice(b"\"}");
        // serde_json writes UTF-8, and the rest is ASCII.
        String::from_utf8(line).unwrap_or_default()
    }

    /// The `mac` of the last record: an anchor an operator can keep elsewhere.
    pub fn head(&self) -> String {
        hex::encode(self.prev)
    }

    /// Records written in this chain so far.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// Checks one line's own MAC; returns its `seq`, `mac` and body.
fn check_line(key: &AuditKey, line: &str) -> Result<(u64, [u8; 32], Body), String> {
    const SUFFIX_LEN: usize = ",\"mac\":\"\"}".len() + 64;
    let split = line.len().checked_sub(SUFFIX_LEN);
    let Some(split) = split.filter(|at| line.ends_with("\"}") && line.is_char_boundary(*at)) else {
        return Err("not a complete record".into());
    };
    let (head, tail) = line.split_at(split);
    let mac_hex = tail
        .strip_prefix(",\"mac\":\"")
        .and_then(|t| t.strip_suffix("\"}"))
        .ok_or("no mac at the end")?;
    let mac: [u8; 32] = hex::decode(mac_hex)
        .ok()
        .and_then(|m| m.try_into().ok())
        .ok_or("malformed mac")?;
    let body_text = format!("{head}}}");
    if key.mac(body_text.as_bytes()) != mac {
        return Err("the record was modified (its mac does not match)".into());
    }
    let body: Body = serde_json::from_str(&body_text).map_err(|_| "malformed record")?;
    Ok((body.seq, mac, body))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records that verified, before the first bad one.
    pub good: u64,
    /// The first bad record: its line number (from 1) and why.
    pub first_bad: Option<(u64, String)>,
    /// The `mac` of the last good record.
    pub head: Option<String>,
    /// Lines (from 1) holding an incomplete record that the server noted when it resumed the
    /// chain after it (a write cut short by a crash).
    pub incomplete: Vec<u64>,
}

/// Verifies a log: every record's MAC, `prev` and `seq` link to the one before it. Without
/// `after`, the first record must start a chain (`seq` 0 with the genesis `prev`); a log that
/// continues a chain from an earlier file (after `ENC.AUDIT REOPEN`) verifies only after that
/// file, or with `after`, the head of the chain it continues (kept from `enc_audit_head` or an
/// earlier verification): otherwise the records before it could have been removed unseen.
pub fn verify(
    key: &AuditKey,
    input: impl BufRead,
    after: Option<[u8; 32]>,
) -> std::io::Result<Verification> {
    let mut good = 0u64;
    let mut expected: Option<(u64, [u8; 32])> = None;
    let mut incomplete = Vec::new();
    // A line that is not a record, waiting for the next one to say it was cut short.
    let mut pending: Option<(u64, String)> = None;
    let genesis = key.genesis();
    for (index, line) in input.split(b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let bytes = line?;
        let fail = |line_no: u64, why: String, incomplete: Vec<u64>| {
            Ok(Verification {
                good,
                first_bad: Some((line_no, why)),
                head: expected.map(|e| hex::encode(e.1)),
                incomplete,
            })
        };
        let checked = std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|text| Ok((text, check_line(key, text)?)));
        let (seq, mac, body) = match checked {
            Ok((_, checked)) => checked,
            Err(why) => {
                if pending.is_some() || expected.is_none() {
                    let (line_no, why) = pending.unwrap_or((line_no, why));
                    return fail(line_no, why, incomplete);
                }
                pending = Some((line_no, why));
                continue;
            }
        };
        let prev: Option<[u8; 32]> = hex::decode(&body.prev).ok().and_then(|p| p.try_into().ok());
        if let Some((bad_line, why)) = pending.take() {
            let noted = body.event.event == "audit-resumed"
                && body
                    .event
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with(INCOMPLETE_LINE));
            if !noted {
                return fail(bad_line, why, incomplete);
            }
            incomplete.push(bad_line);
        }
        match expected {
            None => {
                let starts = match after {
                    None => seq == 0 && prev == Some(genesis),
                    Some(head) => prev == Some(head),
                };
                if !starts {
                    return fail(line_no, match (after, prev) {
                        (Some(_), _) => "the log does not continue the chain head given with --after: records \
                                         between them are missing"
                            .into(),
                        (None, Some(p)) => format!(
                            "the log does not start a chain: it continues one whose head was {} (verify it \
                             after the earlier file, or give that head with --after); records before it may be missing",
                            hex::encode(p)
                        ),
                        (None, None) => "the log does not start a chain: records before it are missing".into(),
                    }, incomplete);
                }
            }
            Some((expected_seq, expected_prev)) => {
                if prev != Some(expected_prev) || seq != expected_seq {
                    return fail(line_no, "the chain is broken here: a record before it was removed, reordered or replaced".into(), incomplete);
                }
            }
        }
        expected = Some((seq + 1, mac));
        good += 1;
    }
    if let Some((line_no, why)) = pending {
        return Ok(Verification {
            good,
            first_bad: Some((line_no, why)),
            head: expected.map(|e| hex::encode(e.1)),
            incomplete,
        });
    }
    Ok(Verification {
        good,
        first_bad: None,
        head: expected.map(|e| hex::encode(e.1)),
        incomplete,
    })
}

#[cfg(test)]
mod tests;
