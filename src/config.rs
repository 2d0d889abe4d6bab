//! Module arguments and `enc.*` configs.
//!
//! The load line is `loadmodule libredis_enc.so master-key URI [name value ...]`. `master-key`
//! (and `old-master-key`, during a master-key rotation) name where master keys come from; every
//! other pair sets the initial value of the config `enc.<name>`, which `CONFIG GET/SET` then
//! reach and the server configuration file may set. No config carries key material: Redis 7.0
//! to 7.4 show module config values in SLOWLOG even when marked sensitive.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::ffi::{ConfigKind, Ctx};
use crate::settings::{
    index_rules, keyring_rules, parse_blind_indexes, parse_keyring_patterns, parse_phi_patterns,
    parse_phi_plain_fields, parse_token_keyring, plain_field_names, ALLOW_PLAINTEXT_READ,
    AUDIT_FAIL_CLOSED, AUDIT_HASH_KEYS, AUDIT_LOG, DUAL_CONTROL, DUAL_CONTROL_WINDOW, PHI_GUARD,
    PHI_REQUIRE_TLS, PHI_TTL_DEFAULT, PHI_TTL_MAX, PHI_TTL_MIN, ROTATE_AFTER, ROTATE_AFTER_VALUES,
};

mod callbacks;
use callbacks::{set_bool_value, set_number_value, set_text_value, HOOKS};

fn set_audit_log(text: &str) -> Result<(), String> {
    crate::audit::open(text)?;
    *AUDIT_LOG.write().unwrap_or_else(|p| p.into_inner()) = text.to_owned();
    Ok(())
}

/// What kind of value a config holds, where it lives, and its default.
enum Kind {
    Bool {
        value: &'static AtomicBool,
        default: bool,
    },
    Number {
        value: &'static AtomicI64,
        default: i64,
        max: i64,
        /// What the number counts, as the refusal of a bad value says it.
        unit: &'static str,
    },
    Text {
        default: &'static str,
        apply: fn(&str) -> Result<(), String>,
    },
}

struct Config {
    name: &'static str,
    kind: Kind,
    /// A PHI or audit policy setting: protected like the server's own `dir` (changeable at
    /// run time only as `enable-protected-configs` allows), every change audited with who made it.
    policy: bool,
}

/// A year, the largest TTL bound accepted.
const MAX_TTL_BOUND: i64 = 366 * 24 * 3600;

static CONFIGS: [Config; 18] = [
    Config {
        name: "allow-plaintext-read",
        kind: Kind::Bool {
            value: &ALLOW_PLAINTEXT_READ,
            default: false,
        },
        policy: true,
    },
    Config {
        name: "keyring-patterns",
        kind: Kind::Text {
            default: "",
            apply: parse_keyring_patterns,
        },
        policy: false,
    },
    Config {
        name: "phi-patterns",
        kind: Kind::Text {
            default: "",
            apply: parse_phi_patterns,
        },
        policy: true,
    },
    Config {
        name: "phi-plain-fields",
        kind: Kind::Text {
            default: "",
            apply: parse_phi_plain_fields,
        },
        policy: true,
    },
    Config {
        name: "blind-indexes",
        kind: Kind::Text {
            default: "",
            apply: parse_blind_indexes,
        },
        policy: true,
    },
    Config {
        name: "token-keyring",
        kind: Kind::Text {
            default: "default",
            apply: parse_token_keyring,
        },
        policy: false,
    },
    Config {
        name: "phi-guard",
        kind: Kind::Bool {
            value: &PHI_GUARD,
            default: true,
        },
        policy: true,
    },
    Config {
        name: "phi-require-tls",
        kind: Kind::Bool {
            value: &PHI_REQUIRE_TLS,
            default: false,
        },
        policy: true,
    },
    Config {
        name: "phi-ttl-min",
        kind: Kind::Number {
            value: &PHI_TTL_MIN,
            default: 0,
            max: MAX_TTL_BOUND,
            unit: "a number of seconds",
        },
        policy: true,
    },
    Config {
        name: "phi-ttl-max",
        kind: Kind::Number {
            value: &PHI_TTL_MAX,
            default: 0,
            max: MAX_TTL_BOUND,
            unit: "a number of seconds",
        },
        policy: true,
    },
    Config {
        name: "phi-ttl-default",
        kind: Kind::Number {
            value: &PHI_TTL_DEFAULT,
            default: 0,
            max: MAX_TTL_BOUND,
            unit: "a number of seconds",
        },
        policy: true,
    },
    Config {
        name: "audit-log",
        kind: Kind::Text {
            default: "",
            apply: set_audit_log,
        },
        policy: true,
    },
    Config {
        name: "audit-hash-keys",
        kind: Kind::Bool {
            value: &AUDIT_HASH_KEYS,
            default: false,
        },
        policy: true,
    },
    Config {
        name: "audit-fail-closed",
        kind: Kind::Bool {
            value: &AUDIT_FAIL_CLOSED,
            default: false,
        },
        policy: true,
    },
    Config {
        name: "keyring-rotate-after",
        kind: Kind::Number {
            value: &ROTATE_AFTER,
            default: 0,
            max: 10 * 366 * 24 * 3600,
            unit: "a number of seconds",
        },
        policy: true,
    },
    Config {
        name: "keyring-rotate-after-values",
        kind: Kind::Number {
            value: &ROTATE_AFTER_VALUES,
            default: 0,
            max: 1 << 62,
            unit: "a number of values",
        },
        policy: true,
    },
    Config {
        name: "dual-control",
        kind: Kind::Bool {
            value: &DUAL_CONTROL,
            default: false,
        },
        policy: true,
    },
    Config {
        name: "dual-control-window",
        kind: Kind::Number {
            value: &DUAL_CONTROL_WINDOW,
            default: 300,
            max: 24 * 3600,
            unit: "a number of seconds",
        },
        policy: true,
    },
];

/// Whether setting policy config `name` from `old` to `new` weakens a control, which under
/// `enc.dual-control` needs a second user's approval: a yes/no control turned off
/// (`allow-plaintext-read` turned on), PHI patterns dropped, a plain field allowed under PHI
/// keys, any blind-index change, the audit log closed or moved, a TTL bound, a rotation schedule or the approval window changed other than by lowering
/// `phi-ttl-max` or a rotation schedule to a non-zero value.
pub fn weakens(name: &[u8], old: &str, new: &str) -> bool {
    let Some(config) = by_full_name(name) else {
        return false;
    };
    if !config.policy || old == new {
        return false;
    }
    match (config.name, &config.kind) {
        ("allow-plaintext-read", _) => parse_bool(new) == Some(true),
        (_, Kind::Bool { .. }) => parse_bool(new) == Some(false),
        ("phi-patterns", _) => {
            let kept: Vec<&str> = new.split_whitespace().collect();
            old.split_whitespace().any(|p| !kept.contains(&p))
        }
        ("audit-log", _) => !old.is_empty(),
        ("phi-plain-fields", _) => {
            let had = plain_field_names(old);
            plain_field_names(new).iter().any(|f| !had.contains(f))
        }
        ("phi-ttl-max" | "keyring-rotate-after" | "keyring-rotate-after-values", _) => {
            let (old, new) = (old.parse().unwrap_or(0i64), new.parse().unwrap_or(0i64));
            !(new > 0 && (old == 0 || new < old))
        }
        _ => true,
    }
}

/// The current text of each text config.
static TEXT_VALUES: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

fn find(name: &str) -> Option<&'static Config> {
    CONFIGS.iter().find(|c| c.name == name)
}

/// The parsed module arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadArgs {
    pub master_key: String,
    /// The previous master key, during a master-key rotation (see docs/OPERATIONS.md).
    pub old_master_key: Option<String>,
    pub configs: Vec<(String, String)>,
}

/// Parses `master-key URI [name value ...]`; the message says what is wrong.
pub fn parse_load_args(args: &[&[u8]]) -> Result<LoadArgs, String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments come in 'name value' pairs, as in 'master-key file:/etc/redis/enc/master.key'".into());
    }
    let mut master_key = None;
    let mut old_master_key = None;
    let mut configs = Vec::new();
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
        let value = String::from_utf8(pair[1].to_vec())
            .map_err(|_| format!("the value of '{name}' is not UTF-8"))?;
        match name.as_str() {
            "master-key" => {
                if master_key.replace(value).is_some() {
                    return Err("'master-key' is given twice".into());
                }
            }
            "old-master-key" => {
                if old_master_key.replace(value).is_some() {
                    return Err("'old-master-key' is given twice".into());
                }
            }
            _ => {
                let config =
                    find(&name).ok_or_else(|| format!("unknown module argument '{name}'"))?;
                check_value(config, &value)?;
                configs.push((name, value));
            }
        }
    }
    let master_key = master_key.ok_or_else(|| {
        "no master key configured; add 'master-key file:/path/to/master.key' (or env:NAME, exec:/path/to/program, \
         vault-transit:URL, aws-kms:KEY-ID) to the loadmodule line"
            .to_owned()
    })?;
    Ok(LoadArgs {
        master_key,
        old_master_key,
        configs,
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn check_value(config: &Config, value: &str) -> Result<(), String> {
    match config.kind {
        Kind::Bool { .. } => parse_bool(value)
            .map(|_| ())
            .ok_or_else(|| format!("'{}' takes yes or no", config.name)),
        Kind::Number { max, unit, .. } => match value.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(()),
            _ => Err(format!("'{}' takes {unit} from 0 to {max}", config.name)),
        },
        Kind::Text { .. } => Ok(()),
    }
}

/// Registers every config with its initial value from the module arguments, then applies the
/// server configuration file's `enc.*` lines.
pub fn register(ctx: Ctx, args: &LoadArgs) -> Result<(), String> {
    for (index, config) in CONFIGS.iter().enumerate() {
        let given = args
            .configs
            .iter()
            .find(|(name, _)| name == config.name)
            .map(|(_, v)| v.as_str());
        let kind = match config.kind {
            Kind::Bool { value, default } => {
                let initial = given.and_then(parse_bool).unwrap_or(default);
                value.store(initial, Relaxed);
                ConfigKind::Bool(initial)
            }
            Kind::Number {
                value,
                default,
                max,
                ..
            } => {
                let initial = given.and_then(|v| v.parse().ok()).unwrap_or(default);
                value.store(initial, Relaxed);
                ConfigKind::Number(initial, max)
            }
            Kind::Text { default, apply } => {
                let initial = given.unwrap_or(default);
                apply(initial).map_err(|e| format!("{}: {e}", config.name))?;
                remember_text(config.name, initial);
                ConfigKind::Text(initial)
            }
        };
        // The callbacks get the config's index in CONFIGS.
        ctx.register_config(config.name, index, config.policy, kind, &HOOKS)?;
    }
    if !ctx.load_configs() {
        return Err("the server refused the enc.* configuration".into());
    }
    Ok(())
}

fn remember_text(name: &'static str, text: &str) {
    let mut values = TEXT_VALUES.lock().unwrap_or_else(|p| p.into_inner());
    values.retain(|(n, _)| *n != name);
    values.push((name, text.to_owned()));
}

/// The config a callback is for, by its index in CONFIGS. An index Redis could not have been
/// given falls back to the first config's type check, which refuses it.
fn config_of(index: usize) -> &'static Config {
    CONFIGS.get(index).unwrap_or(&CONFIGS[0])
}

fn changed(name: &str, value: &str) {
    crate::audit::config_changed(name, value);
}

/// A config by its name as `CONFIG SET` takes it (`enc.phi-guard`, any case).
fn by_full_name(name: &[u8]) -> Option<&'static Config> {
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    find(name.strip_prefix("enc.")?)
}

/// Whether `name` (as `CONFIG SET` takes it) is a policy config: `enc.phi-*`, `enc.audit-*`,
/// `enc.allow-plaintext-read`.
pub fn is_policy(name: &[u8]) -> bool {
    by_full_name(name).is_some_and(|c| c.policy)
}

/// Checks a value as `set_by_name` would take it, without applying it.
pub fn validate_by_name(name: &[u8], value: &str) -> Result<(), String> {
    let config = by_full_name(name).ok_or_else(|| "not an enc.* config".to_owned())?;
    check_value(config, value)?;
    match config.name {
        "keyring-patterns" => keyring_rules(value).map(|_| ()),
        "blind-indexes" => index_rules(value).map(|_| ()),
        "phi-plain-fields" => crate::settings::check_plain_fields(value),
        "token-keyring" => crate::settings::keyring_name(value).map(|_| ()),
        "audit-log" => crate::audit::check_path(value),
        _ => Ok(()),
    }
}

/// Sets a config from its text, as `CONFIG SET` would: validated, applied, audited.
pub fn set_by_name(name: &[u8], value: &str) -> Result<(), String> {
    let config = by_full_name(name).ok_or_else(|| "not an enc.* config".to_owned())?;
    check_value(config, value)?;
    match config.kind {
        Kind::Bool { .. } => set_bool_value(config, parse_bool(value) == Some(true)),
        Kind::Number { .. } => set_number_value(config, value.parse().unwrap_or_default()),
        Kind::Text { .. } => set_text_value(config, value)?,
    }
    Ok(())
}

/// The current value of a config as `CONFIG GET` shows it.
pub fn value_of(name: &[u8]) -> Option<String> {
    let config = by_full_name(name)?;
    Some(match config.kind {
        Kind::Bool { value, .. } => if value.load(Relaxed) { "yes" } else { "no" }.to_owned(),
        Kind::Number { value, .. } => value.load(Relaxed).to_string(),
        Kind::Text { .. } => TEXT_VALUES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(n, _)| *n == config.name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
