//! The values of the `enc.*` configs, as every layer reads them; `config` registers the configs
//! with the server and sets these values. A leaf: it depends on nothing in the module but key
//! patterns.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::RwLock;

use redis_enc_core::KeyringName;

use crate::pattern::KeyPattern;

pub(crate) static ALLOW_PLAINTEXT_READ: AtomicBool = AtomicBool::new(false);
pub(crate) static PHI_GUARD: AtomicBool = AtomicBool::new(true);
pub(crate) static PHI_REQUIRE_TLS: AtomicBool = AtomicBool::new(false);
pub(crate) static AUDIT_HASH_KEYS: AtomicBool = AtomicBool::new(false);
pub(crate) static AUDIT_FAIL_CLOSED: AtomicBool = AtomicBool::new(false);
pub(crate) static PHI_TTL_MIN: AtomicI64 = AtomicI64::new(0);
pub(crate) static PHI_TTL_MAX: AtomicI64 = AtomicI64::new(0);
pub(crate) static PHI_TTL_DEFAULT: AtomicI64 = AtomicI64::new(0);
pub(crate) static KEYRING_RULES: RwLock<Vec<(KeyPattern, KeyringName)>> = RwLock::new(Vec::new());
pub(crate) static PHI_PATTERNS: RwLock<Vec<KeyPattern>> = RwLock::new(Vec::new());
/// Whether `PHI_PATTERNS` is non-empty: the command filter's first, lock-free test.
pub(crate) static ANY_PHI_PATTERNS: AtomicBool = AtomicBool::new(false);
pub(crate) static AUDIT_LOG: RwLock<String> = RwLock::new(String::new());
pub(crate) static ROTATE_AFTER: AtomicI64 = AtomicI64::new(0);
pub(crate) static ROTATE_AFTER_VALUES: AtomicI64 = AtomicI64::new(0);

/// `enc.keyring-rotate-after` and `enc.keyring-rotate-after-values`: rotate a keyring whose
/// primary version is that many seconds old, or sealed that many values (0: never).
pub fn rotation_schedule() -> (u64, u64) {
    (
        ROTATE_AFTER.load(Relaxed).max(0) as u64,
        ROTATE_AFTER_VALUES.load(Relaxed).max(0) as u64,
    )
}

pub(crate) static DUAL_CONTROL: AtomicBool = AtomicBool::new(false);
pub(crate) static DUAL_CONTROL_WINDOW: AtomicI64 = AtomicI64::new(300);

/// `enc.dual-control`: destroying keys, rewrapping them and weakening a PHI or audit control
/// need a second user's approval.
pub fn dual_control() -> bool {
    DUAL_CONTROL.load(Relaxed)
}

/// `enc.dual-control-window`: seconds a request waits for its approval.
pub fn dual_control_window() -> i64 {
    DUAL_CONTROL_WINDOW.load(Relaxed)
}

/// `enc.allow-plaintext-read`: `ENC.GET` returns values that are not envelopes as they are,
/// for migrating a dataset to redis-enc. Off by default.
pub fn allow_plaintext_read() -> bool {
    ALLOW_PLAINTEXT_READ.load(Relaxed)
}

/// `enc.phi-guard`: refuse plain writes that would put plaintext under a PHI-pattern key.
pub fn phi_guard() -> bool {
    PHI_GUARD.load(Relaxed)
}

/// `enc.phi-require-tls`: PHI is read and written only over TLS (or a unix socket).
pub fn phi_require_tls() -> bool {
    PHI_REQUIRE_TLS.load(Relaxed)
}

/// `enc.audit-hash-keys`: the audit log records an HMAC of each key name, not the name.
pub fn audit_hash_keys() -> bool {
    AUDIT_HASH_KEYS.load(Relaxed)
}

/// `enc.audit-fail-closed`: deny PHI access while the audit log cannot be written.
pub fn audit_fail_closed() -> bool {
    AUDIT_FAIL_CLOSED.load(Relaxed)
}

pub use redis_enc_core::policy::TtlBounds;

pub fn phi_ttl() -> TtlBounds {
    TtlBounds {
        min: PHI_TTL_MIN.load(Relaxed),
        max: PHI_TTL_MAX.load(Relaxed),
        default: PHI_TTL_DEFAULT.load(Relaxed),
    }
}

/// The keyring a key name maps to by `enc.keyring-patterns`.
pub fn keyring_for(key: &[u8]) -> Option<KeyringName> {
    let rules = KEYRING_RULES.read().unwrap_or_else(|p| p.into_inner());
    if rules.is_empty() {
        return None;
    }
    rules
        .iter()
        .find(|(pattern, _)| pattern.matches(key))
        .map(|(_, ring)| ring.clone())
}

/// Whether `enc.phi-patterns` is set at all (the cheap test the guard makes first).
pub fn any_phi_patterns() -> bool {
    ANY_PHI_PATTERNS.load(Relaxed)
}

/// Whether a key name matches `enc.phi-patterns`.
pub fn is_phi_key(key: &[u8]) -> bool {
    let patterns = PHI_PATTERNS.read().unwrap_or_else(|p| p.into_inner());
    if patterns.is_empty() {
        return false;
    }
    patterns.iter().any(|p| p.matches(key))
}

pub(crate) fn keyring_rules(text: &str) -> Result<Vec<(KeyPattern, KeyringName)>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err("enc.keyring-patterns takes 'pattern keyring' pairs".into());
    }
    words
        .chunks(2)
        .map(|pair| {
            let ring = keyring_name(pair[1])?;
            Ok((KeyPattern::new(pair[0]), ring))
        })
        .collect()
}

pub(crate) fn parse_keyring_patterns(text: &str) -> Result<(), String> {
    let rules = keyring_rules(text)?;
    *KEYRING_RULES.write().unwrap_or_else(|p| p.into_inner()) = rules;
    Ok(())
}

pub(crate) fn parse_phi_patterns(text: &str) -> Result<(), String> {
    let patterns: Vec<KeyPattern> = text.split_whitespace().map(KeyPattern::new).collect();
    ANY_PHI_PATTERNS.store(!patterns.is_empty(), Relaxed);
    *PHI_PATTERNS.write().unwrap_or_else(|p| p.into_inner()) = patterns;
    Ok(())
}

/// One rule of `enc.blind-indexes`: sealed field `field` of keys matching `pattern` gets a
/// blind-index token of `bits` bits in field `bi_<field>`.
pub(crate) struct IndexRule {
    pub pattern: KeyPattern,
    /// The pattern as configured: part of every token of the rule.
    pub source: String,
    pub field: Vec<u8>,
    pub bits: u8,
}

/// The rule that indexes a field: its pattern as configured, and its bits.
pub struct IndexOf {
    pub pattern: String,
    pub bits: u8,
}

pub(crate) static BLIND_INDEXES: RwLock<Vec<IndexRule>> = RwLock::new(Vec::new());
/// Whether `BLIND_INDEXES` is non-empty: the write path's first, lock-free test.
static ANY_BLIND_INDEXES: AtomicBool = AtomicBool::new(false);
pub(crate) static PHI_PLAIN_FIELDS: RwLock<Vec<Vec<u8>>> = RwLock::new(Vec::new());
/// `enc.token-keyring`, parsed; `None` until set (then `default`).
static TOKEN_KEYRING: RwLock<Option<KeyringName>> = RwLock::new(None);

/// The prefix of the field that holds a sealed field's blind-index token.
pub const INDEX_FIELD_PREFIX: &[u8] = b"bi_";

/// The rule that keeps a blind index of `field` for keys like `key`, if one does (the first
/// that matches).
pub fn index_of(key: &[u8], field: &[u8]) -> Option<IndexOf> {
    if !ANY_BLIND_INDEXES.load(Relaxed) {
        return None;
    }
    let rules = BLIND_INDEXES.read().unwrap_or_else(|p| p.into_inner());
    rules
        .iter()
        .find(|r| r.field == field && r.pattern.matches(key))
        .map(|r| IndexOf {
            pattern: r.source.clone(),
            bits: r.bits,
        })
}

/// Whether any blind-index rule covers keys like `key` (the notification's first test).
pub fn any_index_for(key: &[u8]) -> bool {
    ANY_BLIND_INDEXES.load(Relaxed)
        && BLIND_INDEXES
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|r| r.pattern.matches(key))
}

/// The fields whose blind index a rule keeps for keys like `key`.
pub fn indexed_fields(key: &[u8]) -> Vec<Vec<u8>> {
    let rules = BLIND_INDEXES.read().unwrap_or_else(|p| p.into_inner());
    let mut fields: Vec<Vec<u8>> = rules
        .iter()
        .filter(|r| r.pattern.matches(key))
        .map(|r| r.field.clone())
        .collect();
    fields.dedup();
    fields
}

/// `enc.phi-plain-fields`: hash fields that may be written in plain under PHI keys.
pub fn is_plain_field(field: &[u8]) -> bool {
    PHI_PLAIN_FIELDS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|f| f == field)
}

/// `enc.token-keyring`: the keyring whose key makes key-name tokens.
pub fn token_keyring() -> KeyringName {
    TOKEN_KEYRING
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(KeyringName::default_name)
}

/// Parses `enc.blind-indexes`: comma-separated `PATTERN FIELD BITS` rules.
pub(crate) fn index_rules(text: &str) -> Result<Vec<IndexRule>, String> {
    let max = redis_enc_core::search::MAX_INDEX_BITS;
    text.split(',')
        .filter(|rule| !rule.trim().is_empty())
        .map(|rule| {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let [pattern, field, bits] = words[..] else {
                return Err(format!(
                    "enc.blind-indexes takes comma-separated 'pattern field bits' rules, not '{}'",
                    rule.trim()
                ));
            };
            let bits = bits
                .parse::<u8>()
                .ok()
                .filter(|b| (1..=max).contains(b))
                .ok_or_else(|| format!("blind-index bits must be 1 to {max}, not '{bits}'"))?;
            if field.as_bytes().starts_with(INDEX_FIELD_PREFIX) {
                return Err(format!(
                    "field '{field}' starts with bi_, which names blind-index fields"
                ));
            }
            Ok(IndexRule {
                pattern: KeyPattern::new(pattern),
                source: pattern.to_owned(),
                field: field.as_bytes().to_vec(),
                bits,
            })
        })
        .collect()
}

pub(crate) fn parse_blind_indexes(text: &str) -> Result<(), String> {
    let rules = index_rules(text)?;
    ANY_BLIND_INDEXES.store(!rules.is_empty(), Relaxed);
    *BLIND_INDEXES.write().unwrap_or_else(|p| p.into_inner()) = rules;
    Ok(())
}

/// The names in `enc.phi-plain-fields` (separated by commas or spaces).
pub(crate) fn plain_field_names(text: &str) -> Vec<&str> {
    text.split([',', ' ', '\t'])
        .filter(|f| !f.is_empty())
        .collect()
}

/// Checks `enc.phi-plain-fields`: a blind-index field is never a plain one (the guard lets
/// only tokens into those).
pub(crate) fn check_plain_fields(text: &str) -> Result<(), String> {
    match plain_field_names(text)
        .into_iter()
        .find(|f| f.as_bytes().starts_with(INDEX_FIELD_PREFIX))
    {
        Some(f) => Err(format!(
            "field '{f}' starts with bi_, which names blind-index fields"
        )),
        None => Ok(()),
    }
}

pub(crate) fn parse_phi_plain_fields(text: &str) -> Result<(), String> {
    check_plain_fields(text)?;
    let fields = plain_field_names(text)
        .into_iter()
        .map(|f| f.as_bytes().to_vec())
        .collect();
    *PHI_PLAIN_FIELDS.write().unwrap_or_else(|p| p.into_inner()) = fields;
    Ok(())
}

/// A keyring name as a config gives it.
pub(crate) fn keyring_name(text: &str) -> Result<KeyringName, String> {
    KeyringName::parse(text.as_bytes()).map_err(|_| format!("invalid keyring name '{text}'"))
}

pub(crate) fn parse_token_keyring(text: &str) -> Result<(), String> {
    let name = keyring_name(text)?;
    *TOKEN_KEYRING.write().unwrap_or_else(|p| p.into_inner()) = Some(name);
    Ok(())
}
