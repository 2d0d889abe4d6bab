//! `ENC.RENAME` and `ENC.COPY`: a sealed value is bound to its key name (and field), so moving
//! it means opening it under the old name and sealing it again under the new one. Values of
//! other types, and plain values, move as `RENAME` and `COPY` would move them.

use std::ffi::CStr;

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::{Error as CoreError, Location};

use super::hash::{all_fields, FieldValue};
use crate::error::CmdError;
use crate::info;
use crate::phi::{self, Op};
use crate::rm::{Arg, Ctx, KeyType};
use crate::state::{self, State};

/// A key's content, re-sealed for its destination.
enum Moved {
    String(Vec<u8>),
    Hash(Vec<FieldValue>),
}

/// What the source key holds.
enum Source {
    Missing,
    /// A type redis-enc never seals: moved by the server's own command.
    Other,
    /// A string or hash, re-sealed, with the source's expiry and whether it is PHI.
    Resealed(Moved, Option<i64>, bool),
}

/// Opens a stored value at `from` and seals it again at `to`, in the same keyring and with the
/// same flags. Bytes that are not an envelope are returned as they are.
fn reseal(
    state: &State,
    stored: &[u8],
    from: &Location<'_>,
    to: &Location<'_>,
    phi_seen: &mut bool,
) -> Result<Vec<u8>, CmdError> {
    if !looks_sealed(stored) {
        return Ok(stored.to_vec());
    }
    let mut opened = state.keys.open(stored, from)?;
    // A value that was PHI where it lived stays PHI wherever it goes.
    opened.header.flags.phi |= *phi_seen;
    *phi_seen |= opened.header.flags.phi;
    let keyring = state
        .keys
        .name_of(opened.header.key_id.keyring)
        .ok_or(CoreError::UnknownKeyring)?;
    let sealed = state
        .keys
        .seal(keyring, opened.header.flags, to, &opened.plaintext)?;
    info::count_opened(1);
    info::count_sealed(1);
    Ok(sealed)
}

/// Reads `src` and re-seals its content for `dst`.
fn read_for(ctx: Ctx, src: Arg, dst: Arg) -> Result<Source, CmdError> {
    crate::persist::propagate_if_new(ctx)?;
    let key = ctx.open_read(src);
    let ttl = key.expire_at();
    let mut phi = phi::is_phi(false, src.bytes()) || phi::is_phi(false, dst.bytes());
    let moved = match key.key_type() {
        KeyType::Empty => return Ok(Source::Missing),
        KeyType::Other => return Ok(Source::Other),
        KeyType::String => state::with(|s| {
            let from = Location::Value { key: src.bytes() };
            let to = Location::Value { key: dst.bytes() };
            Ok(Moved::String(reseal(
                s,
                key.string_value(),
                &from,
                &to,
                &mut phi,
            )?))
        })?,
        KeyType::Hash => {
            drop(key);
            let fields = all_fields(ctx, src)?;
            state::with(|s| {
                fields
                    .into_iter()
                    .map(|(field, stored)| {
                        let from = Location::HashField {
                            key: src.bytes(),
                            field: &field,
                        };
                        let to = Location::HashField {
                            key: dst.bytes(),
                            field: &field,
                        };
                        let value = reseal(s, &stored, &from, &to, &mut phi)?;
                        Ok((field, value))
                    })
                    .collect::<Result<Vec<_>, CmdError>>()
                    .map(Moved::Hash)
            })?
        }
    };
    Ok(Source::Resealed(moved, ttl, phi))
}

/// Moving PHI needs read permission on the source and write permission on the destination.
fn authorize_move(ctx: Ctx, src: Arg, dst: Arg, command: &str) -> Result<(), CmdError> {
    phi::authorize(ctx, Op::Read, src, command)?;
    phi::authorize(ctx, Op::Write, dst, command)?;
    phi::record(ctx, Op::Read, src.bytes(), command, None, None);
    phi::record(ctx, Op::Write, dst.bytes(), command, None, None);
    Ok(())
}

/// Runs a write through the server with replication of exactly that write.
fn write(ctx: Ctx, cmd: &CStr, args: &[&[u8]]) -> Result<(), CmdError> {
    let owned: Vec<_> = args.iter().map(|a| ctx.string(a)).collect();
    let ptrs: Vec<_> = owned.iter().map(|s| s.as_ptr()).collect();
    let reply = ctx.call(cmd, c"!", &ptrs);
    if reply.is_error() {
        return Err(CmdError::Server(reply.error_text()));
    }
    Ok(())
}

/// Writes `moved` at `dst`, replacing what is there, with the source's expiry.
fn store(ctx: Ctx, dst: &[u8], moved: Moved, ttl: Option<i64>) -> Result<(), CmdError> {
    match moved {
        Moved::String(value) => match ttl {
            Some(at) => write(
                ctx,
                c"SET",
                &[dst, &value, b"PXAT", at.to_string().as_bytes()],
            ),
            None => write(ctx, c"SET", &[dst, &value]),
        },
        Moved::Hash(fields) => {
            write(ctx, c"DEL", &[dst])?;
            let mut args: Vec<&[u8]> = vec![dst];
            for (f, v) in &fields {
                args.push(f);
                args.push(v);
            }
            write(ctx, c"HSET", &args)?;
            match ttl {
                Some(at) => write(ctx, c"PEXPIREAT", &[dst, at.to_string().as_bytes()]),
                None => Ok(()),
            }
        }
    }
}

/// `ENC.RENAME key newkey`
pub fn rename(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 3 {
        return Err(CmdError::WrongArity("enc.rename"));
    }
    let (src, dst) = (args[1], args[2]);
    let source = read_for(ctx, src, dst)?;
    if matches!(source, Source::Missing) {
        return Err(CmdError::NoSuchKey);
    }
    if src.bytes() == dst.bytes() {
        ctx.reply_ok();
        return Ok(());
    }
    match source {
        Source::Missing => {}
        Source::Other => write(ctx, c"RENAME", &[src.bytes(), dst.bytes()])?,
        Source::Resealed(moved, ttl, phi) => {
            if phi {
                authorize_move(ctx, src, dst, "ENC.RENAME")?;
            }
            store(ctx, dst.bytes(), moved, ttl)?;
            write(ctx, c"DEL", &[src.bytes()])?;
        }
    }
    ctx.reply_ok();
    Ok(())
}

/// `ENC.COPY source destination [REPLACE]`: 1 if copied, 0 if not, as COPY.
pub fn copy(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if !(3..=4).contains(&args.len()) {
        return Err(CmdError::WrongArity("enc.copy"));
    }
    let replace = match args.get(3) {
        None => false,
        Some(word) if word.bytes().eq_ignore_ascii_case(b"REPLACE") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let (src, dst) = (args[1], args[2]);
    if src.bytes() == dst.bytes() {
        return Err(CmdError::Server(
            "ERR source and destination objects are the same".into(),
        ));
    }
    let source = read_for(ctx, src, dst)?;
    let destination_taken = ctx.open_read(dst).key_type() != KeyType::Empty;
    if matches!(source, Source::Missing) || (destination_taken && !replace) {
        ctx.reply_int(0);
        return Ok(());
    }
    match source {
        Source::Missing => {}
        Source::Other => {
            let mut call: Vec<&[u8]> = vec![src.bytes(), dst.bytes()];
            if replace {
                call.push(b"REPLACE");
            }
            write(ctx, c"COPY", &call)?;
        }
        Source::Resealed(moved, ttl, phi) => {
            if phi {
                authorize_move(ctx, src, dst, "ENC.COPY")?;
            }
            store(ctx, dst.bytes(), moved, ttl)?
        }
    }
    ctx.reply_int(1);
    Ok(())
}
