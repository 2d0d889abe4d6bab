//! Blind indexes: the `bi_<field>` token written beside a sealed hash field that an
//! `enc.blind-indexes` rule names, so that a query engine can find equal values without the
//! plaintext (docs/FORMAT.md §8.1).

use redis_enc_core::search::index_token;
use redis_enc_core::KeyringName;

use redis_enc_core::envelope::looks_sealed;

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType, Level, OwnedString};
use crate::settings::{self, INDEX_FIELD_PREFIX};
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

/// The entry to write beside `field` of `key`, sealed under keyring `keyring`'s primary
/// version, when a rule asks for one.
pub fn entry_for(
    state: &State,
    keyring: &KeyringName,
    key: &[u8],
    field: &[u8],
    plaintext: &[u8],
) -> Result<Option<IndexEntry>, CmdError> {
    let Some(bits) = settings::index_bits(key, field) else {
        return Ok(None);
    };
    let data_key = state.keys.primary(keyring)?;
    Ok(Some(IndexEntry {
        field: index_field(field),
        token: index_token(data_key, field, plaintext, bits),
    }))
}

/// The tokens under which `value` is found in `field` of keys like `key`: one per active
/// version of the key's keyring, the primary first.
pub fn query_tokens(
    state: &State,
    keyring: &KeyringName,
    key: &[u8],
    field: &[u8],
    value: &[u8],
) -> Result<Option<Vec<String>>, CmdError> {
    let Some(bits) = settings::index_bits(key, field) else {
        return Ok(None);
    };
    Ok(Some(
        state
            .keys
            .index_keys(keyring)?
            .into_iter()
            .map(|k| index_token(k, field, value, bits))
            .collect(),
    ))
}

/// Whether `value` has the shape of a blind-index token (`v<version>t<hex>`): the only plain
/// bytes the guard lets into a `bi_` field of a PHI key.
pub fn is_token(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"v") else {
        return false;
    };
    let Some(t) = rest.iter().position(|&b| b == b't') else {
        return false;
    };
    let (version, hex) = (&rest[..t], &rest[t + 1..]);
    !version.is_empty()
        && version.len() <= 5
        && version.iter().all(u8::is_ascii_digit)
        && !hex.is_empty()
        && hex.len() <= 16
        && hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Whether `field` is a blind-index field that a rule for `key` writes.
pub fn is_index_field_of(key: &[u8], field: &[u8]) -> bool {
    field
        .strip_prefix(INDEX_FIELD_PREFIX)
        .is_some_and(|source| settings::index_bits(key, source).is_some())
}

/// Hash notification: on a key a rule covers, a sealed field may have been removed, expired
/// or overwritten in plain; once the command is done, its token goes too (where the server
/// runs jobs after notifications: Redis 7.2+, Valkey 8+).
pub fn on_hash_event(ctx: Ctx, _event: &[u8], key: &[u8]) {
    if !settings::any_index_for(key) || ctx.is_replaying() || ctx.is_replica() {
        return;
    }
    let mut data = ctx.selected_db().to_be_bytes().to_vec();
    data.extend_from_slice(key);
    ctx.after_notification(drop_stale_tokens, data);
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
    use super::is_token;

    #[test]
    fn only_token_shapes_pass() {
        for good in [&b"v1t0"[..], b"v12tdeadbeef", b"v65535t0123456789abcdef"] {
            assert!(is_token(good), "{good:?}");
        }
        for bad in [
            &b""[..],
            b"v1t",
            b"vt00",
            b"v1tABC",
            b"v1t0123456789abcdef0",
            b"078-05-1120",
            b"v1x00",
            b"v123456t0",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
