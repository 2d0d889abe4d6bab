//! Module arguments and `enc.*` configs.
//!
//! The load line is `loadmodule libredis_enc.so master-key URI [name value ...]`. `master-key`
//! names where the master key comes from; every other pair sets the initial value of the config
//! `enc.<name>`, which `CONFIG GET/SET` then reach. No config carries key material: Redis 7.0 to
//! 7.4 show module config values in SLOWLOG even when marked sensitive.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use redis_enc_core::KeyringName;
use wildmatch::WildMatch;

use redis_module::raw;

use crate::entry::run_callback;
use crate::rm::{self, Ctx, HeldString};

static ALLOW_PLAINTEXT_READ: AtomicBool = AtomicBool::new(false);

/// `enc.allow-plaintext-read`: `ENC.GET` returns values that are not envelopes as they are,
/// for migrating a dataset to redis-enc. Off by default.
pub fn allow_plaintext_read() -> bool {
    ALLOW_PLAINTEXT_READ.load(Relaxed)
}

struct BoolConfig {
    name: &'static str,
    value: &'static AtomicBool,
    default: bool,
}

static BOOL_CONFIGS: [BoolConfig; 1] = [BoolConfig {
    name: "allow-plaintext-read",
    value: &ALLOW_PLAINTEXT_READ,
    default: false,
}];

/// `enc.keyring-patterns`: `pattern keyring [pattern keyring ...]`. A write without
/// `KEYRING` seals under the keyring of the first pattern its key name matches (`*` and `?`),
/// or under `default`.
struct KeyringPatterns {
    text: HeldString,
    rules: Vec<(WildMatch, KeyringName)>,
}

static KEYRING_PATTERNS: Mutex<Option<KeyringPatterns>> = Mutex::new(None);

/// The keyring a key name maps to by `enc.keyring-patterns`.
pub fn keyring_for(key: &[u8]) -> Option<KeyringName> {
    let guard = KEYRING_PATTERNS.lock().unwrap_or_else(|p| p.into_inner());
    let patterns = guard.as_ref()?;
    if patterns.rules.is_empty() {
        return None;
    }
    let name = String::from_utf8_lossy(key);
    patterns
        .rules
        .iter()
        .find(|(pattern, _)| pattern.matches(&name))
        .map(|(_, ring)| ring.clone())
}

fn parse_keyring_patterns(text: &str) -> Result<Vec<(WildMatch, KeyringName)>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return Err("enc.keyring-patterns takes 'pattern keyring' pairs".into());
    }
    words
        .chunks(2)
        .map(|pair| {
            let ring = KeyringName::parse(pair[1].as_bytes())
                .map_err(|_| format!("invalid keyring name '{}'", pair[1]))?;
            Ok((WildMatch::new(pair[0]), ring))
        })
        .collect()
}

struct StringConfig {
    name: &'static str,
    default: &'static str,
}

static STRING_CONFIGS: [StringConfig; 1] = [StringConfig {
    name: "keyring-patterns",
    default: "",
}];

extern "C" fn get_keyring_patterns(
    _name: *const c_char,
    _privdata: *mut c_void,
) -> *mut raw::RedisModuleString {
    run_callback("CONFIG GET", std::ptr::null_mut(), || {
        let guard = KEYRING_PATTERNS.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .map_or(std::ptr::null_mut(), |p| p.text.as_ptr())
    })
}

extern "C" fn set_keyring_patterns(
    _name: *const c_char,
    new: *mut raw::RedisModuleString,
    _privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", raw::REDISMODULE_ERR as c_int, || {
        let bytes = rm::bytes_of(new);
        let parsed = std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(parse_keyring_patterns);
        match parsed {
            Ok(rules) => {
                let text = HeldString::new(bytes);
                *KEYRING_PATTERNS.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(KeyringPatterns { text, rules });
                raw::REDISMODULE_OK as c_int
            }
            Err(msg) => {
                rm::set_config_error(err, &msg);
                raw::REDISMODULE_ERR as c_int
            }
        }
    })
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
    if args.len() % 2 != 0 {
        return Err("module arguments come in 'name value' pairs, as in 'master-key file:/etc/redis/enc/master.key'".into());
    }
    let mut master_key = None;
    let mut old_master_key = None;
    let mut configs = Vec::new();
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
        let value = String::from_utf8(pair[1].to_vec())
            .map_err(|_| format!("the value of '{name}' is not UTF-8"))?;
        if name == "master-key" {
            if master_key.replace(value).is_some() {
                return Err("'master-key' is given twice".into());
            }
        } else if name == "old-master-key" {
            if old_master_key.replace(value).is_some() {
                return Err("'old-master-key' is given twice".into());
            }
        } else if STRING_CONFIGS.iter().any(|c| c.name == name) {
            configs.push((name, value));
        } else if BOOL_CONFIGS.iter().any(|c| c.name == name) {
            parse_bool(&value).ok_or_else(|| format!("'{name}' takes yes or no"))?;
            configs.push((name, value));
        } else {
            return Err(format!("unknown module argument '{name}'"));
        }
    }
    let master_key = master_key.ok_or_else(|| {
        "no master key configured; add 'master-key file:/path/to/master.key' (or env:NAME, exec:/path/to/program) \
         to the loadmodule line"
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

/// Registers every config with its initial value from the module arguments, then applies the
/// server configuration file's `enc.*` lines.
pub fn register(ctx: Ctx, args: &LoadArgs) -> Result<(), String> {
    for config in &BOOL_CONFIGS {
        let initial = args
            .configs
            .iter()
            .find(|(name, _)| name == config.name)
            .and_then(|(_, v)| parse_bool(v))
            .unwrap_or(config.default);
        config.value.store(initial, Relaxed);
        let privdata = (config.value as *const AtomicBool)
            .cast_mut()
            .cast::<c_void>();
        ctx.register_bool_config(
            config.name,
            initial,
            Some(get_bool),
            Some(set_bool),
            privdata,
        )?;
    }
    for config in &STRING_CONFIGS {
        let initial = args
            .configs
            .iter()
            .find(|(name, _)| name == config.name)
            .map_or(config.default, |(_, v)| v.as_str());
        if config.name == "keyring-patterns" {
            let rules =
                parse_keyring_patterns(initial).map_err(|e| format!("keyring-patterns: {e}"))?;
            let text = HeldString::new(initial.as_bytes());
            *KEYRING_PATTERNS.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(KeyringPatterns { text, rules });
            ctx.register_string_config(
                config.name,
                initial,
                Some(get_keyring_patterns),
                Some(set_keyring_patterns),
            )?;
        }
    }
    if !ctx.load_configs() {
        return Err("the server refused the enc.* configuration".into());
    }
    Ok(())
}

extern "C" fn get_bool(_name: *const c_char, privdata: *mut c_void) -> c_int {
    run_callback("CONFIG GET", 0, || {
        // SAFETY: `privdata` is the &'static AtomicBool registered with this callback.
        let value = unsafe { &*privdata.cast::<AtomicBool>() };
        c_int::from(value.load(Relaxed))
    })
}

extern "C" fn set_bool(
    _name: *const c_char,
    new: c_int,
    privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    run_callback("CONFIG SET", raw::REDISMODULE_ERR as c_int, || {
        // SAFETY: `privdata` is the &'static AtomicBool registered with this callback.
        let value = unsafe { &*privdata.cast::<AtomicBool>() };
        value.store(new != 0, Relaxed);
        raw::REDISMODULE_OK as c_int
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_arguments() {
        let args: Vec<&[u8]> = vec![b"master-key", b"file:/k", b"allow-plaintext-read", b"yes"];
        let parsed = parse_load_args(&args).unwrap();
        assert_eq!(parsed.master_key, "file:/k");
        assert_eq!(
            parsed.configs,
            vec![("allow-plaintext-read".to_owned(), "yes".to_owned())]
        );
        assert!(parse_load_args(&[]).unwrap_err().contains("no master key"));
        assert!(parse_load_args(&[b"master-key"])
            .unwrap_err()
            .contains("pairs"));
        assert!(parse_load_args(&[b"bogus", b"1", b"master-key", b"env:K"])
            .unwrap_err()
            .contains("unknown"));
        assert!(
            parse_load_args(&[b"allow-plaintext-read", b"maybe", b"master-key", b"env:K"]).is_err()
        );
    }
}
