//! The `INFO enc` section: counters of sealed and opened values and of errors by kind, and
//! which master-key provider is in use (never the key).

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use redis_module::raw;

use crate::config;
use crate::error::CmdError;
use crate::ffi::entry::run_callback;
use crate::ffi::InfoCtx;
use crate::{reencrypt, state};

static SEALED: AtomicU64 = AtomicU64::new(0);
static OPENED: AtomicU64 = AtomicU64::new(0);
static OPEN_FAILURES: AtomicU64 = AtomicU64::new(0);
static PLAINTEXT_READS: AtomicU64 = AtomicU64::new(0);
static INTERNAL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Error kinds counted, by the name [`CmdError::kind`] gives them.
const ERROR_KINDS: [&str; 18] = [
    "syntax",
    "wrongtype",
    "nokey",
    "noperm",
    "server",
    "not_envelope",
    "decrypt_failed",
    "unknown_key",
    "unsupported_format",
    "retired_or_destroyed",
    "key_unavailable",
    "kms",
    "phi_ttl",
    "phi_placement",
    "phi_tls",
    "guard",
    "audit_unavailable",
    "other",
];
static ERRORS: [AtomicU64; ERROR_KINDS.len()] = [const { AtomicU64::new(0) }; ERROR_KINDS.len()];

pub fn count_sealed(n: u64) {
    SEALED.fetch_add(n, Relaxed);
}

pub fn count_opened(n: u64) {
    OPENED.fetch_add(n, Relaxed);
}

pub fn count_plaintext_read() {
    PLAINTEXT_READS.fetch_add(1, Relaxed);
}

pub fn count_internal_error() {
    INTERNAL_ERRORS.fetch_add(1, Relaxed);
}

pub fn count_error(e: &CmdError) {
    if e.is_open_failure() {
        OPEN_FAILURES.fetch_add(1, Relaxed);
    }
    if let Some(i) = ERROR_KINDS.iter().position(|k| *k == e.kind()) {
        ERRORS[i].fetch_add(1, Relaxed);
    }
}

/// The callback Redis calls for `INFO`.
pub extern "C" fn info_callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    run_callback("INFO", (), || write_info(&InfoCtx::new(ctx)));
}

fn write_info(info: &InfoCtx) {
    info.section("");
    let (provider, master_key_id) = state::with(|s| {
        Ok((
            s.provider,
            s.master
                .local()
                .map_or_else(|| s.master.id(), |k| k.id().to_owned()),
        ))
    })
    .unwrap_or(("none", String::new()));
    info.field_str("provider", provider);
    info.field_str("master_key_id", &master_key_id);
    info.field_str("envelope_format", "1");
    info.field_str("algorithm", "XAES-256-GCM");
    info.field_str(
        "allow_plaintext_read",
        if config::allow_plaintext_read() {
            "yes"
        } else {
            "no"
        },
    );
    info.field_u64("values_sealed", SEALED.load(Relaxed));
    info.field_u64("values_opened", OPENED.load(Relaxed));
    info.field_u64("open_failures", OPEN_FAILURES.load(Relaxed));
    info.field_u64("plaintext_reads", PLAINTEXT_READS.load(Relaxed));
    for (kind, count) in ERROR_KINDS.iter().zip(ERRORS.iter()) {
        info.field_u64(&format!("errors_{kind}"), count.load(Relaxed));
    }
    info.field_u64("errors_internal", INTERNAL_ERRORS.load(Relaxed));
    let (on, records, write_errors, failing, head) = crate::audit::status();
    info.field_str("audit_log", if on { "on" } else { "off" });
    info.field_u64("audit_records", records);
    info.field_u64("audit_write_errors", write_errors);
    info.field_str("audit_failing", if failing { "yes" } else { "no" });
    info.field_str("audit_head", &head);
    let (keyrings, derivations) =
        state::with(|s| Ok((s.keys.list().len() as u64, s.keys.key_derivations())))
            .unwrap_or((0, 0));
    info.field_u64("keyrings", keyrings);
    info.field_u64("key_derivations", derivations);
    match reencrypt::progress() {
        Some(p) => {
            info.field_str("reencrypt_state", reencrypt::phase_name(p.phase));
            info.field_u64("reencrypt_keys_scanned", p.keys_scanned);
            info.field_u64("reencrypt_values_resealed", p.values_resealed);
            info.field_u64("reencrypt_values_failed", p.values_failed);
        }
        None => info.field_str("reencrypt_state", "idle"),
    }
}
