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
            let ring = KeyringName::parse(pair[1].as_bytes())
                .map_err(|_| format!("invalid keyring name '{}'", pair[1]))?;
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
