//! The one way a sealed value reaches a key and the replicas. `ENC.SET`, `ENC.MSET`,
//! `ENC.HSETFIELD`, `ENC.RENAME`, `ENC.COPY` and the re-encryption job write strings and hash
//! fields here: everything that can fail is checked before the stored value is touched, and
//! whatever is written is replicated, as the plain command that has the same effect
//! (`SET … [PXAT]`, `MSET`, `DEL`, `HSET`, `PEXPIREAT`).

use redis_enc_core::envelope::OVERHEAD;
use redis_enc_core::{DataKey, Flags, Location};

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, Key, KeyType, OwnedString};
use crate::setopts::Expiry;
use crate::stats;

/// The largest string value Redis stores (its `proto-max-bulk-len` ceiling for module writes).
const MAX_STRING: usize = 512 * 1024 * 1024;
const NOTIFY_STRING: i32 = redis_module::raw::REDISMODULE_NOTIFY_STRING;
const NOTIFY_GENERIC: i32 = redis_module::raw::REDISMODULE_NOTIFY_GENERIC;

/// What to put into a string key.
pub enum Content<'a> {
    /// A command's value, sealed straight into the key (no intermediate copy).
    Seal {
        /// The primary key of the value's keyring.
        key: &'a DataKey,
        flags: Flags,
        plaintext: &'a [u8],
    },
    /// An envelope already sealed for this key (the re-encryption job's), written in place.
    /// Not a write a client made: no keyspace notification.
    Resealed(&'a [u8]),
    /// A value sealed again for this key by `ENC.RENAME` or `ENC.COPY`.
    Moved(&'a [u8]),
}

/// A key's content, sealed again for the key it moves to.
pub enum Moved {
    String(Vec<u8>),
    /// The hash's fields, and the blind-index tokens the destination's rules ask for.
    Hash {
        fields: Vec<FieldValue>,
        tokens: Vec<FieldValue>,
    },
}

/// The stored length of an envelope for `plaintext`, or `TooLarge` if Redis cannot hold it.
pub fn sealed_len(plaintext: &[u8]) -> Result<usize, CmdError> {
    let len = plaintext.len() + OVERHEAD;
    if len > MAX_STRING {
        return Err(redis_enc_core::Error::TooLarge.into());
    }
    Ok(len)
}

/// Writes `content` into string key `name` (open for writing, holding `existing`), replacing a
/// value of another type as `SET` does, and applies `expiry` as `SET` does; counts the value
/// sealed and notifies `set` for a command's write. Returns the stored envelope, for the caller
/// to replicate with [`replicate_string`] or [`replicate_strings`].
pub fn write_string<'a>(
    ctx: Ctx<'a>,
    key: &mut Key<'_>,
    existing: KeyType,
    name: Arg<'_>,
    content: Content<'_>,
    expiry: Expiry,
) -> Result<OwnedString<'a>, CmdError> {
    // Everything that can fail is checked before the stored value is touched: the envelope
    // must fit in a Redis string (the caller found the keyring's primary key).
    let len = match &content {
        Content::Seal { plaintext, .. } => sealed_len(plaintext)?,
        Content::Resealed(sealed) | Content::Moved(sealed) => sealed.len(),
    };
    let previous_expiry = key.expire_at();
    let replaces_other_type = !matches!(existing, KeyType::Empty | KeyType::String);
    if replaces_other_type {
        key.delete();
    }
    let Some(buffer) = key.string_buffer(len) else {
        if replaces_other_type {
            // The old value is gone: the replicas must lose it too.
            ctx.replicate(c"DEL", &[name]);
        }
        return Err(CmdError::Server("ERR the server refused the write".into()));
    };
    let by_command = !matches!(content, Content::Resealed(_));
    match content {
        Content::Seal {
            key: data_key,
            flags,
            plaintext,
        } => redis_enc_core::envelope::seal_into(
            data_key,
            flags,
            &Location::Value { key: name.bytes() },
            plaintext,
            buffer,
        )?,
        Content::Resealed(sealed) | Content::Moved(sealed) => buffer.copy_from_slice(sealed),
    }
    let sealed = ctx.string(key.string_value());
    match expiry {
        // SET replaces a value of another type and, with KEEPTTL, keeps its time to live.
        Expiry::Keep => {
            if let (true, Some(at)) = (replaces_other_type, previous_expiry) {
                key.set_expire_at(at);
            }
        }
        Expiry::Clear => {
            if previous_expiry.is_some() {
                key.persist();
            }
        }
        Expiry::In(ms) => key.set_expire_in(ms),
        Expiry::At(unix_ms) => key.set_expire_at(unix_ms),
    }
    stats::count_sealed(1);
    if by_command {
        ctx.notify(NOTIFY_STRING, c"set", name);
    }
    Ok(sealed)
}

/// Replicates a string write as `SET key <envelope> [PXAT t]`, with the key's expiry as the
/// write left it; notifies `expire` when the write set one.
pub fn replicate_string(ctx: Ctx, key: &Key, name: Arg, sealed: &OwnedString, expiry: Expiry) {
    match key.expire_at() {
        Some(at) => {
            let pxat = ctx.string(b"PXAT");
            let at = ctx.string(at.to_string().as_bytes());
            ctx.replicate(c"SET", &[name, sealed.arg(), pxat.arg(), at.arg()]);
            if expiry != Expiry::Keep {
                ctx.notify(NOTIFY_GENERIC, c"expire", name);
            }
        }
        None => ctx.replicate(c"SET", &[name, sealed.arg()]),
    }
}

/// Replicates string writes that cleared any expiry as one `MSET`.
pub fn replicate_strings(ctx: Ctx, written: &[(Arg, OwnedString)]) {
    if written.is_empty() {
        return;
    }
    let args: Vec<_> = written
        .iter()
        .flat_map(|(name, value)| [*name, value.arg()])
        .collect();
    ctx.replicate(c"MSET", &args);
}

/// Sets sealed hash fields of `name` (open for writing, empty or a hash), and the blind-index
/// tokens beside them (`tokens`), and replicates them as one `HSET`; counts the sealed ones,
/// notifies `hset` for a command's write (`notify`). Returns how many sealed fields were
/// added, as `HSET` counts.
pub fn write_fields(
    ctx: Ctx,
    key: &mut Key,
    name: Arg,
    fields: &[(Arg, &OwnedString)],
    tokens: &[(OwnedString, OwnedString)],
    notify: bool,
) -> i64 {
    if fields.is_empty() {
        return 0;
    }
    let mut added = 0;
    let mut replicated = Vec::with_capacity((fields.len() + tokens.len()) * 2 + 1);
    replicated.push(name);
    for (field, value) in fields {
        if !key.hash_set(*field, value) {
            added += 1;
        }
        replicated.push(*field);
        replicated.push(value.arg());
    }
    for (field, token) in tokens {
        key.hash_set(field.arg(), token);
        replicated.push(field.arg());
        replicated.push(token.arg());
    }
    stats::count_sealed(fields.len() as u64);
    if notify {
        crate::blind::notify_own_write(ctx, name);
    }
    ctx.replicate(c"HSET", &replicated);
    added
}

/// Puts `moved` at `name`, replacing whatever is there, expiring at `at` (Unix ms) or never:
/// replicated as `SET … [PXAT]`, or as `DEL`, `HSET` and `PEXPIREAT` for a hash.
pub fn put_moved(ctx: Ctx, name: Arg, moved: Moved, at: Option<i64>) -> Result<(), CmdError> {
    let mut key = ctx.open_write(name);
    let existing = key.key_type();
    match moved {
        Moved::String(value) => {
            let expiry = at.map_or(Expiry::Clear, Expiry::At);
            let content = Content::Moved(&value);
            let sealed = write_string(ctx, &mut key, existing, name, content, expiry)?;
            replicate_string(ctx, &key, name, &sealed, expiry);
        }
        Moved::Hash { fields, tokens } => {
            if existing != KeyType::Empty {
                key.delete();
                ctx.replicate(c"DEL", &[name]);
                ctx.notify(NOTIFY_GENERIC, c"del", name);
            }
            let owned = |pairs: &[FieldValue]| -> Vec<_> {
                pairs
                    .iter()
                    .map(|(f, v)| (ctx.string(f), ctx.string(v)))
                    .collect()
            };
            let (values, tokens) = (owned(&fields), owned(&tokens));
            let fields: Vec<_> = values
                .iter()
                .map(|(f, v)| (Arg::from_owned(f), v))
                .collect();
            write_fields(ctx, &mut key, name, &fields, &tokens, true);
            if let Some(at) = at {
                key.set_expire_at(at);
                let at = ctx.string(at.to_string().as_bytes());
                ctx.replicate(c"PEXPIREAT", &[name, at.arg()]);
                ctx.notify(NOTIFY_GENERIC, c"expire", name);
            }
        }
    }
    Ok(())
}

/// Gives a key written without a time to live the PHI default one (`expiry`, when it is
/// `In`), replicated as `PEXPIREAT`.
pub fn apply_expiry(ctx: Ctx, name: Arg, expiry: Expiry) {
    let Expiry::In(ms) = expiry else { return };
    let mut key = ctx.open_write(name);
    key.set_expire_in(ms);
    if let Some(at) = key.expire_at() {
        let at = ctx.string(at.to_string().as_bytes());
        ctx.replicate(c"PEXPIREAT", &[name, at.arg()]);
        ctx.notify(NOTIFY_GENERIC, c"expire", name);
    }
}

/// One hash field and its stored value.
pub type FieldValue = (Vec<u8>, Vec<u8>);

/// Every field and stored value of a hash, read with `HGETALL`.
pub fn all_fields(ctx: Ctx, name: Arg) -> Result<Vec<FieldValue>, CmdError> {
    let reply = ctx.call(c"HGETALL", c"", &[name]);
    if reply.is_error() {
        return Err(CmdError::Server(reply.error_text()));
    }
    let mut flat = reply.string_elements().into_iter();
    let mut fields = Vec::new();
    while let (Some(f), Some(v)) = (flat.next(), flat.next()) {
        fields.push((f, v));
    }
    Ok(fields)
}
