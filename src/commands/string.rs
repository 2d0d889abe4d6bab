//! `ENC.SET`, `ENC.GET`, `ENC.MSET`, `ENC.MGET`.

use redis_enc_core::{Flags, KeyringName, Location, Plaintext};

use super::{open_for_reader, reply_values, PhiReads, Reader};
use crate::clock;
use crate::error::arity;
use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType, OwnedString};
use crate::phi::{self, Op};
use crate::setopts::{Condition, Expiry, SetOptions};
use crate::settings;
use crate::state;
use crate::store::{self, Content};

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
                .or_else(|| settings::keyring_for(name.bytes()))
                .unwrap_or_else(KeyringName::default_name);
            let content = Content::Seal {
                key: state.keys.primary(&keyring)?,
                flags: Flags { phi: phi_write },
                plaintext: args[2].bytes(),
            };
            let sealed = store::write_string(ctx, &mut key, existing, name, content, expiry)?;
            store::replicate_string(ctx, &key, name, &sealed, expiry);
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
pub(super) fn pairs_and_phi<'a, 'b>(rest: &'a [Arg<'b>]) -> Option<(&'a [Arg<'b>], bool)> {
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
        .map(|kv| settings::keyring_for(kv[0].bytes()).unwrap_or_else(KeyringName::default_name))
        .collect();
    let mut written: Vec<(Arg, OwnedString)> = Vec::with_capacity(pairs.len() / 2);
    let outcome = state::with(|s| {
        // All or nothing: every keyring must have a usable primary key, and every envelope
        // must fit in a Redis string, before any key changes.
        for (kv, keyring) in pairs.chunks(2).zip(&keyrings) {
            s.keys.primary(keyring)?;
            store::sealed_len(kv[1].bytes())?;
        }
        for (kv, (keyring, phi_expiry)) in pairs.chunks(2).zip(keyrings.iter().zip(&phi_expiry)) {
            let mut key = ctx.open_write(kv[0]);
            let existing = key.key_type();
            let content = Content::Seal {
                key: s.keys.primary(keyring)?,
                // PHI keys, and only they, have an expiry to apply.
                flags: Flags {
                    phi: phi_expiry.is_some(),
                },
                plaintext: kv[1].bytes(),
            };
            let sealed =
                store::write_string(ctx, &mut key, existing, kv[0], content, Expiry::Clear)?;
            written.push((kv[0], sealed));
        }
        Ok(())
    });
    // Whatever was written is replicated, also when a later key failed.
    store::replicate_strings(ctx, &written);
    for ((name, _), expiry) in written.iter().zip(&phi_expiry) {
        if let Some(expiry) = expiry {
            store::apply_expiry(ctx, *name, *expiry);
            phi::record(ctx, Op::Write, name.bytes(), "ENC.MSET", None, None);
        }
    }
    outcome?;
    ctx.reply_ok();
    Ok(())
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
