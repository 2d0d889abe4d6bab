//! `ENC.HSETFIELD`, `ENC.HGETFIELD`, `ENC.HGETALL`.

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::{Flags, KeyringName, Location, Plaintext};

use super::string::pairs_and_phi;
use super::{open_for_reader, reply_values, PhiReads, Reader};
use crate::blind;
use crate::error::arity;
use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType, OwnedString};
use crate::phi::{self, Op};
use crate::setopts::Expiry;
use crate::settings;
use crate::state;
use crate::store;

/// `ENC.HSETFIELD key field value [field value ...] [PHI]`: replies with the number of fields
/// added, as HSET does.
pub fn set_fields(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    arity(args, 4, "enc.hsetfield")?;
    for pos in (3..args.len()).step_by(2) {
        ctx.redact(pos);
    }
    let name = args[1];
    let (pairs, phi) = pairs_and_phi(&args[2..]).ok_or(CmdError::WrongArity("enc.hsetfield"))?;
    crate::persist::propagate_if_new(ctx)?;
    phi::check_placement(phi, name)?;
    if let Some(field) = pairs
        .chunks(2)
        .find(|fv| blind::is_index_field_of(name.bytes(), fv[0].bytes()))
    {
        return Err(CmdError::Server(format!(
            "ERR field '{}' holds a blind-index token (enc.blind-indexes), which the module \
             writes itself",
            String::from_utf8_lossy(field[0].bytes())
        )));
    }
    let mut key = ctx.open_write(name);
    if !matches!(key.key_type(), KeyType::Empty | KeyType::Hash) {
        return Err(CmdError::WrongType);
    }
    // A field that holds PHI now is overwritten only as PHI.
    let phi_write = phi::is_phi(phi, name.bytes())
        || phi::flag_matters()
            && pairs
                .chunks(2)
                .any(|fv| key.hash_get(fv[0]).is_some_and(|v| phi::flagged(v.bytes())));
    if phi_write {
        phi::authorize(ctx, Op::Write, name, "ENC.HSETFIELD")?;
    }
    // A PHI field makes the hash PHI: its time to live must be inside the bounds.
    let expiry = if phi_write {
        Some(phi::bounded_expiry(
            Expiry::Keep,
            key.expire_at(),
            crate::clock::now_ms(),
        )?)
    } else {
        None
    };
    let keyring = settings::keyring_for(name.bytes()).unwrap_or_else(KeyringName::default_name);
    let mut tokens = Vec::new();
    let sealed: Vec<OwnedString> = state::with(|s| {
        pairs
            .chunks(2)
            .map(|fv| {
                let (field, value) = (fv[0].bytes(), fv[1].bytes());
                let location = Location::HashField {
                    key: name.bytes(),
                    field,
                };
                if let Some(entry) = blind::entry_for(s, &keyring, name.bytes(), field, value)? {
                    tokens.push((ctx.string(&entry.field), ctx.string(entry.token.as_bytes())));
                }
                Ok(ctx.string(&s.keys.seal(
                    &keyring,
                    Flags { phi: phi_write },
                    &location,
                    value,
                )?))
            })
            .collect()
    })?;
    let fields: Vec<(Arg, &OwnedString)> = pairs.chunks(2).map(|fv| fv[0]).zip(&sealed).collect();
    let added = store::write_fields(ctx, &mut key, name, &fields, &tokens, true);
    drop(key);
    if let Some(expiry) = expiry {
        store::apply_expiry(ctx, name, expiry);
        phi::record(
            ctx,
            Op::Write,
            name.bytes(),
            "ENC.HSETFIELD",
            Some(keyring.as_str().to_owned()),
            None,
        );
    }
    ctx.reply_int(added);
    Ok(())
}

/// `ENC.HGETFIELD key field [field ...]`: an array with one entry per field, nil where the
/// field or the key does not exist.
pub fn get_fields(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    arity(args, 3, "enc.hgetfield")?;
    let name = args[1];
    let key = ctx.open_read(name);
    let reads = PhiReads::default();
    let values: Vec<Option<Plaintext>> = match key.key_type() {
        KeyType::Empty => args[2..].iter().map(|_| None).collect(),
        KeyType::Hash => state::with(|s| {
            args[2..]
                .iter()
                .map(|field| match key.hash_get(*field) {
                    None => Ok(None),
                    Some(stored) => {
                        let location = Location::HashField {
                            key: name.bytes(),
                            field: field.bytes(),
                        };
                        let reader = Reader {
                            ctx,
                            key: name,
                            command: "ENC.HGETFIELD",
                            reads: &reads,
                        };
                        open_for_reader(reader, s, stored.bytes(), &location).map(Some)
                    }
                })
                .collect()
        })?,
        _ => return Err(CmdError::WrongType),
    };
    reads.record(ctx, "ENC.HGETFIELD");
    reply_values(ctx, values);
    Ok(())
}

/// `ENC.HGETALL key`: a map (RESP3) or flat array (RESP2) of every field; sealed fields are
/// opened, plain fields returned as stored.
pub fn get_all(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.hgetall"));
    }
    let name = args[1];
    // Plain fields of a PHI hash are PHI too; the permission comes before anything about the
    // key (its type included) is told.
    if phi::is_phi(false, name.bytes()) {
        phi::authorize(ctx, Op::Read, name, "ENC.HGETALL")?;
    }
    match ctx.open_read(name).key_type() {
        KeyType::Empty | KeyType::Hash => {}
        _ => return Err(CmdError::WrongType),
    }
    let fields = store::all_fields(ctx, name)?;
    let reads = PhiReads::default();
    let opened: Vec<(Vec<u8>, Plaintext)> = state::with(|s| {
        fields
            .into_iter()
            .map(|(field, stored)| {
                let value = if looks_sealed(&stored) {
                    open_for_reader(
                        Reader {
                            ctx,
                            key: name,
                            command: "ENC.HGETALL",
                            reads: &reads,
                        },
                        s,
                        &stored,
                        &Location::HashField {
                            key: name.bytes(),
                            field: &field,
                        },
                    )?
                } else {
                    Plaintext::from(stored)
                };
                Ok((field, value))
            })
            .collect()
    })?;
    reads.record(ctx, "ENC.HGETALL");
    ctx.reply_map(opened.len());
    for (field, value) in opened {
        ctx.reply_bulk(&field);
        ctx.reply_bulk(&value);
    }
    Ok(())
}
