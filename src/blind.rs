//! Blind indexes: the `bi_<field>` token written beside a sealed hash field that an
//! `enc.blind-indexes` rule names, so that a query engine can find equal values without the
//! plaintext (docs/FORMAT.md §8.1).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::search::{index_token, IndexScope};
use redis_enc_core::{KeyringName, Location};

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType, Level, OwnedString};
use crate::settings::{self, IndexOf, INDEX_FIELD_PREFIX};
use crate::state::State;

/// A blind-index field and its token.
pub struct IndexEntry {
    pub field: Vec<u8>,
    pub token: String,
}

/// The name of the field holding `field`'s token.
pub fn index_field(field: &[u8]) -> Vec<u8> {
    [INDEX_FIELD_PREFIX, field].concat()
}

/// The entry to write beside a value sealed at `location` under keyring `keyring`'s primary
/// version: for a hash field a rule names; `None` for anything else.
pub fn entry_at(
    state: &State,
    keyring: &KeyringName,
    location: &Location<'_>,
    plaintext: &[u8],
) -> Result<Option<IndexEntry>, CmdError> {
    match location {
        Location::HashField { key, field } => entry_for(state, keyring, key, field, plaintext),
        Location::Value { .. } => Ok(None),
    }
}

/// The entry to write beside `field` of `key`, sealed under keyring `keyring`'s primary
/// version, when a rule asks for one.
pub fn entry_for(
    state: &State,
    keyring: &KeyringName,
    key: &[u8],
    field: &[u8],
    plaintext: &[u8],
) -> Result<Option<IndexEntry>, CmdError> {
    let Some(rule) = settings::index_of(key, field) else {
        return Ok(None);
    };
    let data_key = state.keys.primary(keyring)?;
    let scope = IndexScope {
        pattern: rule.pattern.as_bytes(),
        field,
    };
    Ok(Some(IndexEntry {
        field: index_field(field),
        token: index_token(data_key, scope, plaintext, rule.bits),
    }))
}

/// The tokens under which `value` is found in `field` under `rule`: one per active version of
/// `keyring` (the keyring of the keys the rule covers), the primary first.
pub fn query_tokens(
    state: &State,
    keyring: &KeyringName,
    rule: &IndexOf,
    field: &[u8],
    value: &[u8],
) -> Result<Vec<String>, CmdError> {
    let scope = IndexScope {
        pattern: rule.pattern.as_bytes(),
        field,
    };
    Ok(state
        .keys
        .index_keys(keyring)?
        .into_iter()
        .map(|k| index_token(k, scope, value, rule.bits))
        .collect())
}

/// The version and value of a blind-index token (`v<version>t<hex>`) of `bits` bits, if
/// `value` is one: exactly the digits the rule's width gives, the value below 2^bits.
fn parse_token(value: &[u8], bits: u8) -> Option<(u16, u64)> {
    let rest = value.strip_prefix(b"v")?;
    let t = rest.iter().position(|&b| b == b't')?;
    let (version, hex) = (&rest[..t], &rest[t + 1..]);
    let digits_ok = |d: &[u8], f: fn(&u8) -> bool| !d.is_empty() && d.iter().all(f);
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if !digits_ok(version, u8::is_ascii_digit)
        || version[0] == b'0'
        || !digits_ok(hex, lower_hex)
        || hex.len() != usize::from(bits).div_ceil(4)
    {
        return None;
    }
    let version = std::str::from_utf8(version).ok()?.parse().ok()?;
    let n = u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
    (bits == 64 || n >> bits == 0).then_some((version, n))
}

/// Whether `value` could be the token the module writes in `bi_<field>` of `key`: a rule
/// covers the field, the value has that rule's width, and names an active version of the
/// key's keyring. The only plain bytes the guard lets into a `bi_` field of a PHI key.
pub fn is_token_for(key: &[u8], field: &[u8], value: &[u8]) -> bool {
    let Some(source) = field.strip_prefix(INDEX_FIELD_PREFIX) else {
        return false;
    };
    let Some(rule) = settings::index_of(key, source) else {
        return false;
    };
    let Some((version, _)) = parse_token(value, rule.bits) else {
        return false;
    };
    let keyring = settings::keyring_for(key).unwrap_or_else(KeyringName::default_name);
    // The key store is asked last, only of a value shaped like this rule's token.
    crate::state::with(|s| {
        Ok(s.keys
            .index_keys(&keyring)
            .is_ok_and(|keys| keys.iter().any(|k| k.id().version.0 == version)))
    })
    .unwrap_or(false)
}

/// Whether `field` is a blind-index field that a rule for `key` writes.
pub fn is_index_field_of(key: &[u8], field: &[u8]) -> bool {
    field
        .strip_prefix(INDEX_FIELD_PREFIX)
        .is_some_and(|source| settings::index_of(key, source).is_some())
}

/// Set while the module raises the notification of its own hash write, whose tokens are
/// current by construction: the job after it would find nothing to do. Main thread only.
static OWN_WRITE: AtomicBool = AtomicBool::new(false);

/// Raises `hset` for a hash the module wrote (sealed fields and their tokens), for the query
/// engine and other subscribers, without the stale-token job.
pub fn notify_own_write(ctx: Ctx, name: Arg) {
    OWN_WRITE.store(true, Relaxed);
    ctx.notify(redis_module::raw::REDISMODULE_NOTIFY_HASH, c"hset", name);
    OWN_WRITE.store(false, Relaxed);
}

/// Hash notification: on a key a rule covers, a sealed field may have been removed, expired
/// or overwritten in plain; its token goes too, in a job after the notification where the
/// server runs such jobs (Redis 7.2+, Valkey 8+). Redis 7.0 has none: there a write made in
/// the notification is propagated *before* the command that raised it, which is safe only
/// when that command cannot have written the token itself, so only `hdel` is followed there,
/// at once (an `HDEL` of the token field first, then the client's `HDEL`, reach the same state).
pub fn on_hash_event(ctx: Ctx, event: &[u8], key: &[u8]) {
    let jobs = ctx.has_post_notification_jobs();
    if OWN_WRITE.load(Relaxed)
        || !jobs && event != b"hdel"
        || !settings::any_index_for(key)
        || ctx.is_replaying()
        || ctx.is_replica()
    {
        return;
    }
    let mut data = ctx.selected_db().to_be_bytes().to_vec();
    data.extend_from_slice(key);
    if jobs {
        ctx.after_notification(drop_stale_tokens, data);
    } else {
        drop_stale_tokens(ctx, &data);
    }
}

/// Removes the tokens of the rule-covered fields of a key that no longer hold an envelope,
/// as one replicated `HDEL`.
fn drop_stale_tokens(ctx: Ctx, data: &[u8]) {
    let Some((db, key)) = data.split_first_chunk::<4>() else {
        return;
    };
    if !ctx.select_db(i32::from_be_bytes(*db)) {
        return;
    }
    let name = ctx.string(key);
    let handle = ctx.open_read(Arg::from_owned(&name));
    if handle.key_type() != KeyType::Hash {
        return;
    }
    let stale: Vec<OwnedString> = settings::indexed_fields(key)
        .into_iter()
        .filter(|field| {
            let sealed = handle
                .hash_get(Arg::from_owned(&ctx.string(field)))
                .is_some_and(|v| looks_sealed(v.bytes()));
            !sealed
                && handle
                    .hash_get(Arg::from_owned(&ctx.string(&index_field(field))))
                    .is_some()
        })
        .map(|field| ctx.string(&index_field(&field)))
        .collect();
    drop(handle);
    if stale.is_empty() {
        return;
    }
    let args: Vec<Arg> = std::iter::once(&name)
        .chain(&stale)
        .map(Arg::from_owned)
        .collect();
    let reply = ctx.call(c"HDEL", c"!", &args);
    if reply.is_error() {
        ctx.log(
            Level::Warning,
            &format!(
                "redis-enc: cannot remove a stale blind-index token: {}",
                reply.error_text()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_token;

    #[test]
    fn only_tokens_of_the_rules_width_pass() {
        assert_eq!(parse_token(b"v1tabcde", 20), Some((1, 0xabcde)));
        assert_eq!(parse_token(b"v12t0f", 5), Some((12, 0x0f)));
        assert_eq!(parse_token(b"v2tffffffffffffffff", 64), Some((2, u64::MAX)));
        for (bad, bits) in [
            (&b""[..], 24),
            (b"v1t", 24),
            (b"vt000000", 24),
            (b"v01t000000", 24),
            (b"v+1t000000", 24),
            (b"v1tABCDEF", 24),
            (b"v1tdeadbeefcafebabe", 24),
            (b"v1t00000", 24),
            (b"v1t3f", 5),
            (b"078-05-1120", 24),
            (b"v1x000000", 24),
            (b"v99999999t000000", 24),
        ] {
            assert_eq!(parse_token(bad, bits), None, "{bad:?}");
        }
    }
}
