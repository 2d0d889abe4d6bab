//! Loading and unloading the module.
//!
//! Loading fails closed (DESIGN.md invariant 4): without its master key the module refuses to
//! load, and Redis with it, after one log line that says which source failed and why.

use std::ffi::c_int;

use redis_enc_core::provider::Master;
use redis_enc_core::provider::Provider;

use crate::ffi::{self, Ctx, EventHandler, Level, ServerEvent};
use crate::state::{self, State};
use crate::{commands, config, guard, info, persist};

/// The module's version as Redis shows it in `MODULE LIST` (major × 10000 + minor × 100 + patch).
pub const MODULE_VERSION: c_int = 100;

/// Loads the module with its `loadmodule` arguments; false refuses the load, after one log
/// line that says why.
pub fn on_load(ctx: Ctx, args: &[&[u8]]) -> bool {
    match load(ctx, args) {
        Ok(message) => {
            ctx.log(Level::Notice, &message);
            true
        }
        Err(reason) => {
            ctx.log(
                Level::Warning,
                &format!("redis-enc: refusing to load: {reason}"),
            );
            false
        }
    }
}

fn load(ctx: Ctx, args: &[&[u8]]) -> Result<String, String> {
    let missing = ffi::missing_apis();
    if !missing.is_empty() {
        return Err(format!(
            "this server lacks module API functions {} (Redis 7.0 or later is needed)",
            missing.join(", ")
        ));
    }
    crate::error::explain_missing_keyrings_with(state::why_no_keys);
    crate::error::explain_missing_versions_with(crate::cluster::behind);
    let load_args = config::parse_load_args(args)?;
    let provider =
        Provider::parse(&load_args.master_key).map_err(|e| format!("master key: {e}"))?;
    let master = provider.open().map_err(|e| format!("master key: {e}"))?;
    if let Provider::File(path) = &provider {
        crate::info::remember_key_file(path);
    }
    let plain_http = std::iter::once(&load_args.master_key)
        .chain(&load_args.old_master_key)
        .any(|uri| uri.contains("allow-http=yes"));
    if plain_http {
        ctx.log(
            Level::Warning,
            "redis-enc: the KMS is reached over plain http (allow-http=yes): its credentials and the \
             data keys it wraps travel in clear; use https:// outside a test",
        );
    }
    let old_master = match &load_args.old_master_key {
        Some(uri) => Some(
            Provider::parse(uri)
                .and_then(|p| p.open())
                .map_err(|e| format!("old master key: {e}"))?,
        ),
        None => None,
    };
    let master_key_id = master.id();
    let remote = matches!(master, Master::Remote(_));
    let keys = match State::fresh_keys(&master) {
        Ok(keys) => {
            state::mark_unpropagated(remote);
            keys
        }
        // A KMS that is down at start does not keep the server down: the RDB or the
        // replication stream brings the keyrings (their keys locked until the KMS answers), and
        // a fresh server gets `default`'s first key when the KMS is back.
        Err(e @ redis_enc_core::Error::KmsUnavailable(_)) if remote => {
            ctx.log(
                Level::Warning,
                &format!(
                    "redis-enc: the key management service could not make keyring 'default''s first key: {e}; \
                     starting without it (an RDB, an AOF or a primary brings the keyrings; asked again every few seconds)"
                ),
            );
            state::set_no_default(Some(e.to_string()));
            redis_enc_core::KeyStore::empty()
        }
        Err(e) => return Err(format!("master key: {e}")),
    };
    state::install(State {
        keys,
        master: std::sync::Arc::new(master),
        old_master: old_master.map(std::sync::Arc::new),
        provider: provider.kind(),
    });
    persist::register(ctx)?;
    // Where modules may add ACL categories (Redis 7.4+, Valkey 8+), @phi grants both PHI
    // permissions; everywhere, the subcommands of ENC.PHI grant them one by one.
    let phi_category = ffi::add_acl_category(ctx, c"phi");
    commands::register(ctx, phi_category)?;
    if !ctx.register_filter(guard::filter) {
        return Err("cannot register the PHI guard".into());
    }
    guard::set_replica(ctx.is_replica());
    guard::set_scripts_through_module_api(ctx.scripts_through_module_api());
    let events: [(ServerEvent, EventHandler); 3] = [
        (ServerEvent::ReplicationRoleChanged, guard::on_role_change),
        (ServerEvent::Loading, guard::on_loading),
        (ServerEvent::ForkChild, persist::on_fork),
    ];
    for (event, handle) in events {
        if !ctx.subscribe(event, handle) {
            return Err("cannot follow replication, loading and persistence events".into());
        }
    }
    // Valkey 9's atomic slot migration is refused for the whole server while a loaded module
    // does not declare it handles it.
    if ctx.has_atomic_slot_migration() {
        ctx.declare_atomic_slot_migration();
        if !ctx.subscribe(ServerEvent::AtomicSlotMigration, guard::on_slot_migration) {
            return Err("cannot follow atomic slot migrations".into());
        }
    }
    // A blind-index token goes when its sealed field does (HDEL, a field's expiry, a plain
    // overwrite).
    if !ctx.subscribe_hash_events(crate::blind::on_hash_event) {
        return Err("cannot follow hash keyspace events".into());
    }
    config::register(ctx, &load_args)?;
    if !ctx.register_info(info::write_info) {
        return Err("cannot register the INFO section".into());
    }
    crate::acl_log::start(ctx);
    crate::cluster::start(ctx)?;
    crate::schedule::start(ctx);
    if state::with(|s| Ok(s.held().any_remote())).unwrap_or(false) {
        crate::kms_retry::start();
    }
    Ok(format!(
        "redis-enc {} loaded: master key {master_key_id} from the {} provider",
        env!("CARGO_PKG_VERSION"),
        provider.kind()
    ))
}

pub fn on_unload() -> c_int {
    crate::audit::shutdown();
    state::clear();
    ffi::OK
}
