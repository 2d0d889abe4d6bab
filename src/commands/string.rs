//! `ENC.SET`, `ENC.GET`, `ENC.MSET`, `ENC.MGET`.

use redis_enc_core::envelope::OVERHEAD;
use redis_enc_core::{Flags, KeyringName, Location, Plaintext};

use super::{open_for_reader, reply_values, PhiReads, Reader};
use crate::clock;
use crate::config;
use crate::error::CmdError;
use crate::ffi::entry::arity;
use crate::ffi::{Arg, Ctx, Key, KeyType, OwnedString};
use crate::info;
use crate::phi::{self, Op};
use crate::setopts::{Condition, Expiry, SetOptions};
use crate::state;

/// The largest string value Redis stores (its `proto-max-bulk-len` ceiling for module writes).
const MAX_STRING: usize = 512 * 1024 * 1024;
const NOTIFY_STRING: i32 = redis_module::raw::REDISMODULE_NOTIFY_STRING;
const NOTIFY_GENERIC: i32 = redis_module::raw::REDISMODULE_NOTIFY_GENERIC;

/// `ENC.SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] [PHI] [KEYRING name]`
pub fn set(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    arity(args, 3, "enc.set")?;
    ctx.redact(2);
    crate::persist::propagate_if_new(ctx)?;
    let words: Vec<&[u8]> = args[3..].iter().map(Arg::bytes).collect();
    let opts = SetOptions::parse(&words, clock::now_ms())?;
    let name = args[1];
    phi::check_placement(opts.phi, name)?;
    let mut key = ctx.open_write(name);
    let existing = key.key_type();
    // PHI stays PHI: a value that holds PHI now is overwritten only as PHI.
    let phi_write = phi::is_phi(opts.phi, name.bytes())
        || (phi::flag_matters() && phi::stored_is_phi(ctx, name, &key));
    if phi_write {
        phi::authorize(ctx, Op::Write, name, "ENC.SET")?;
    }
    let reads = PhiReads::default();
    state::with(|state| {
        let old = if opts.get {
            if !ctx.may_read_key(name) {
                return Err(CmdError::NoReadPermission);
            }
            match existing {
                KeyType::Empty => None,
                KeyType::String => Some(open_for_reader(
                    Reader {
                        ctx,
                        key: name,
                        command: "ENC.SET",
                        reads: &reads,
                    },
                    state,
                    key.string_value(),
                    &Location::Value { key: name.bytes() },
                )?),
                _ => return Err(CmdError::WrongType),
            }
        } else {
            None
        };
        let write = match opts.condition {
            Condition::Always => true,
            Condition::IfAbsent => existing == KeyType::Empty,
            Condition::IfPresent => existing != KeyType::Empty,
        };
        let expiry = if write && phi_write {
            phi::bounded_expiry(opts.expiry, key.expire_at(), crate::clock::now_ms())?
        } else {
            opts.expiry
        };
        if write {
            let keyring = opts
                .keyring
                .clone()
                .or_else(|| config::keyring_for(name.bytes()))
                .unwrap_or_else(KeyringName::default_name);
            let seal = Seal {
                keys: &state.keys,
                keyring: &keyring,
                flags: Flags { phi: phi_write },
                plaintext: args[2].bytes(),
            };
            let sealed = write_sealed(ctx, &mut key, existing, name, seal, expiry)?;
            replicate_set(ctx, &key, name, &sealed, expiry);
            if phi_write {
                let version = state.keys.primary(&keyring).map(|k| k.id().version.0).ok();
                phi::record(
                    ctx,
                    Op::Write,
                    name.bytes(),
                    "ENC.SET",
                    Some(keyring.as_str().to_owned()),
                    version,
                );
            }
        }
        reads.record(ctx, "ENC.SET");
        match (opts.get, old) {
            (true, Some(old)) => ctx.reply_bulk(&old),
            (true, None) => ctx.reply_null(),
            (false, _) if write => ctx.reply_ok(),
            (false, _) => ctx.reply_null(),
        }
        Ok(())
    })
}

/// What to seal into a string key.
struct Seal<'a> {
    keys: &'a redis_enc_core::KeyStore,
    keyring: &'a KeyringName,
    flags: Flags,
    plaintext: &'a [u8],
}

/// Replicates a string write as `SET key <ciphertext> [PXAT t]`, with the key's expiry as the
/// write left it.
fn replicate_set(ctx: Ctx, key: &Key, name: Arg, sealed: &OwnedString, expiry: Expiry) {
    match key.expire_at() {
        Some(at) => {
            let pxat = ctx.string(b"PXAT");
            let at = ctx.string(at.to_string().as_bytes());
            ctx.replicate(
                c"SET",
                &[name.as_ptr(), sealed.as_ptr(), pxat.as_ptr(), at.as_ptr()],
            );
            if expiry != Expiry::Keep {
                ctx.notify(NOTIFY_GENERIC, c"expire", name);
            }
        }
        None => ctx.replicate(c"SET", &[name.as_ptr(), sealed.as_ptr()]),
    }
}

/// Seals straight into the key's value (no intermediate copy, no delete and re-insert),
/// applies `expiry` as `SET` does, counts and notifies `set`; returns the stored envelope for
/// the caller to replicate.
fn write_sealed(
    ctx: Ctx,
    key: &mut Key,
    existing: KeyType,
    name: Arg,
    seal: Seal<'_>,
    expiry: Expiry,
) -> Result<OwnedString, CmdError> {
    // Everything that can fail is checked before the stored value is touched: the keyring
    // must have a usable primary key, and the envelope must fit in a Redis string.
    let data_key = seal.keys.primary(seal.keyring)?;
    let len = sealed_len(seal.plaintext)?;
    let previous_expiry = key.expire_at();
    let replaces_other_type = !matches!(existing, KeyType::Empty | KeyType::String);
    if replaces_other_type {
        key.delete();
    }
    let Some(buffer) = key.string_buffer(len) else {
        if replaces_other_type {
            // The old value is gone: the replicas must lose it too.
            ctx.replicate(c"DEL", &[name.as_ptr()]);
        }
        return Err(CmdError::Server("ERR the server refused the write".into()));
    };
    redis_enc_core::envelope::seal_into(
        data_key,
        seal.flags,
        &Location::Value { key: name.bytes() },
        seal.plaintext,
        buffer,
    )?;
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
    info::count_sealed(1);
    ctx.notify(NOTIFY_STRING, c"set", name);
    Ok(sealed)
}

/// The stored length of an envelope for `plaintext`, or `TooLarge` if Redis cannot hold it.
fn sealed_len(plaintext: &[u8]) -> Result<usize, CmdError> {
    let len = plaintext.len() + OVERHEAD;
    if len > MAX_STRING {
        return Err(redis_enc_core::Error::TooLarge.into());
    }
    Ok(len)
}

/// `ENC.GET key`
pub fn get(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.get"));
    }
    let key = ctx.open_read(args[1]);
    let reads = PhiReads::default();
    match key.key_type() {
        KeyType::Empty => ctx.reply_null(),
        KeyType::String => {
            let plaintext = state::with(|s| {
                open_for_reader(
                    Reader {
                        ctx,
                        key: args[1],
                        command: "ENC.GET",
                        reads: &reads,
                    },
                    s,
                    key.string_value(),
                    &Location::Value {
                        key: args[1].bytes(),
                    },
                )
            })?;
            reads.record(ctx, "ENC.GET");
            ctx.reply_bulk(&plaintext);
        }
        _ => return Err(CmdError::WrongType),
    }
    Ok(())
}

/// Splits `field value [field value ...] [PHI]` into pairs and the PHI flag: a trailing `PHI`
/// makes the count odd, so it cannot be a field or a value.
pub(super) fn pairs_and_phi(rest: &[Arg]) -> Option<(&[Arg], bool)> {
    let phi = rest.len() % 2 == 1
        && rest
            .last()
            .is_some_and(|a| a.bytes().eq_ignore_ascii_case(b"PHI"));
    let pairs = if phi { &rest[..rest.len() - 1] } else { rest };
    (pairs.len() % 2 == 0 && !pairs.is_empty()).then_some((pairs, phi))
}

/// `ENC.MSET key value [key value ...]`
pub fn mset(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    arity(args, 3, "enc.mset")?;
    for pos in (2..args.len()).step_by(2) {
        ctx.redact(pos);
    }
    if args.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("enc.mset"));
    }
    let pairs = &args[1..];
    crate::persist::propagate_if_new(ctx)?;
    // PHI keys (by pattern, or holding PHI now) need write permission and get the default time
    // to live; their values are sealed as PHI.
    let now = crate::clock::now_ms();
    let mut phi_expiry = Vec::with_capacity(pairs.len() / 2);
    for kv in pairs.chunks(2) {
        if phi::is_phi(false, kv[0].bytes())
            || (phi::flag_matters() && phi::stored_is_phi(ctx, kv[0], &ctx.open_read(kv[0])))
        {
            phi::authorize(ctx, Op::Write, kv[0], "ENC.MSET")?;
            phi_expiry.push(Some(phi::bounded_expiry(Expiry::Clear, None, now)?));
        } else {
            phi_expiry.push(None);
        }
    }
    let keyrings: Vec<KeyringName> = pairs
        .chunks(2)
        .map(|kv| config::keyring_for(kv[0].bytes()).unwrap_or_else(KeyringName::default_name))
        .collect();
    let mut written: Vec<(Arg, OwnedString, Option<Expiry>)> = Vec::with_capacity(pairs.len() / 2);
    let outcome = state::with(|s| {
        // All or nothing: every keyring must have a usable primary key, and every envelope
        // must fit in a Redis string, before any key changes.
        for (kv, keyring) in pairs.chunks(2).zip(&keyrings) {
            s.keys.primary(keyring)?;
            sealed_len(kv[1].bytes())?;
        }
        for (kv, (keyring, phi_expiry)) in pairs.chunks(2).zip(keyrings.iter().zip(&phi_expiry)) {
            let mut key = ctx.open_write(kv[0]);
            let existing = key.key_type();
            let seal = Seal {
                keys: &s.keys,
                keyring,
                // PHI keys, and only they, have an expiry to apply.
                flags: Flags {
                    phi: phi_expiry.is_some(),
                },
                plaintext: kv[1].bytes(),
            };
            let sealed = write_sealed(ctx, &mut key, existing, kv[0], seal, Expiry::Clear)?;
            written.push((kv[0], sealed, *phi_expiry));
        }
        Ok(())
    });
    // Whatever was written is replicated, also when a later key failed.
    if !written.is_empty() {
        let replicated: Vec<_> = written
            .iter()
            .flat_map(|(name, value, _)| [name.as_ptr(), value.as_ptr()])
            .collect();
        ctx.replicate(c"MSET", &replicated);
    }
    for (name, _, expiry) in &written {
        if let Some(expiry) = expiry {
            apply_phi_expiry(ctx, *name, *expiry);
            phi::record(ctx, Op::Write, name.bytes(), "ENC.MSET", None, None);
        }
    }
    outcome?;
    ctx.reply_ok();
    Ok(())
}

/// Gives a PHI key written without a time to live the default one, replicated as PEXPIREAT.
pub(super) fn apply_phi_expiry(ctx: Ctx, name: Arg, expiry: Expiry) {
    let Expiry::In(ms) = expiry else { return };
    let mut key = ctx.open_write(name);
    key.set_expire_in(ms);
    if let Some(at) = key.expire_at() {
        let at = ctx.string(at.to_string().as_bytes());
        ctx.replicate(c"PEXPIREAT", &[name.as_ptr(), at.as_ptr()]);
        ctx.notify(NOTIFY_GENERIC, c"expire", name);
    }
}

/// `ENC.MGET key [key ...]`: nil for missing keys and keys of other types, as MGET; fails
/// whole if any value cannot be opened.
pub fn mget(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    arity(args, 2, "enc.mget")?;
    let reads = PhiReads::default();
    let values: Vec<Option<Plaintext>> = state::with(|s| {
        args[1..]
            .iter()
            .map(|name| {
                let key = ctx.open_read(*name);
                match key.key_type() {
                    KeyType::String => open_for_reader(
                        Reader {
                            ctx,
                            key: *name,
                            command: "ENC.MGET",
                            reads: &reads,
                        },
                        s,
                        key.string_value(),
                        &Location::Value { key: name.bytes() },
                    )
                    .map(Some),
                    _ => Ok(None),
                }
            })
            .collect()
    })?;
    reads.record(ctx, "ENC.MGET");
    reply_values(ctx, values);
    Ok(())
}
