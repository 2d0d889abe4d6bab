//! The `INFO enc` section: the counters of `stats`, which master-key provider is in use (never
//! the key), the audit log's and the re-encryption job's state.

use crate::ffi::InfoCtx;
use crate::settings;
use crate::{cluster, reencrypt, state, stats};

/// The master key's file (`file:` provider), whose mode and owner `INFO enc` shows; never its
/// path or contents.
static KEY_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

pub fn remember_key_file(path: &std::path::Path) {
    let _ = KEY_FILE.set(path.to_owned());
}

/// Writes the `INFO enc` section.
pub fn write_info(info: &InfoCtx) {
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
    if let Some(meta) = KEY_FILE.get().and_then(|p| std::fs::metadata(p).ok()) {
        use std::os::unix::fs::MetadataExt;
        info.field_str(
            "master_key_file_mode",
            &format!("{:04o}", meta.mode() & 0o7777),
        );
        info.field_u64("master_key_file_uid", u64::from(meta.uid()));
        if let Ok(me) = std::fs::metadata("/proc/self") {
            info.field_u64("server_uid", u64::from(me.uid()));
        }
    }
    info.field_str("envelope_format", "1");
    info.field_str("algorithm", "XAES-256-GCM");
    info.field_str(
        "allow_plaintext_read",
        if settings::allow_plaintext_read() {
            "yes"
        } else {
            "no"
        },
    );
    let counts = stats::snapshot();
    info.field_u64("values_sealed", counts.sealed);
    info.field_u64("values_opened", counts.opened);
    info.field_u64("open_failures", counts.open_failures);
    info.field_u64("plaintext_reads", counts.plaintext_reads);
    for (kind, count) in counts.errors {
        info.field_u64(&format!("errors_{kind}"), count);
    }
    info.field_u64("errors_internal", counts.internal_errors);
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
    if let Ok(epoch) = state::with(|s| Ok(s.keys.epoch())) {
        info.field_u64("keyring_epoch", epoch.number);
        info.field_str("keyring_digest", &epoch.short_digest());
    }
    if let Some(c) = cluster::status() {
        info.field_str(
            "cluster_keyring_authority",
            c.authority.as_deref().unwrap_or("none"),
        );
        if let Some(ready) = c.ready {
            info.field_str(
                "cluster_keyring_changes",
                if ready { "ready" } else { "waiting" },
            );
        }
        info.field_u64("cluster_keyring_peers", c.peers as u64);
        info.field_u64("cluster_keyring_peers_differing", c.peers_differing as u64);
        info.field_u64("cluster_keyring_conflicts", c.conflicts);
        info.field_str(
            "cluster_keyring_held",
            &if c.held.is_empty() {
                "none".to_owned()
            } else {
                c.held.join(",")
            },
        );
        if let Some(n) = c.lagging {
            info.field_u64("cluster_keyring_nodes_lagging", n as u64);
        }
        info.field_u64("cluster_keyring_behind", u64::from(c.behind.is_some()));
    }
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
