//! `ENC.RENAME` and `ENC.COPY`: a sealed value is bound to its key name (and field), so moving
//! it means opening it under the old name and sealing it again under the new one.
//!
//! A move that involves PHI (a source or destination under `enc.phi-patterns`, or a value
//! with the PHI flag) is a PHI read of the source and a PHI write of the destination: both
//! permissions are checked before anything is decrypted, every string value or hash field is
//! sealed as PHI at the destination (plain ones included), the destination's time to live is
//! held to the PHI bounds, and the move is audited. Values of other types cannot be sealed,
//! so they do not move to or from a PHI key. Everything is checked before the first write.

use std::ffi::CStr;

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::{Error as CoreError, Flags, KeyringName, Location};

use crate::blind::{self, IndexEntry};
use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType};
use crate::phi::{self, Op};
use crate::setopts::Expiry;
use crate::settings;
use crate::state::{self, State};
use crate::stats;
use crate::store::{self, all_fields, Moved};

/// What the source key holds.
enum Source {
    Missing,
    /// A type redis-enc never seals: moved by the server's own command.
    Other,
    /// A string or hash, re-sealed, with the expiry the destination gets.
    Resealed(Moved, Option<Expiry>),
}

/// Opens a stored value at `from` and seals it again at `to`, in the same keyring with the
/// same flags (`phi` added). Bytes that are not an envelope stay as they are, unless `phi`:
/// then they are sealed, so that no plaintext arrives under a PHI key.
///
/// A hash field sealed at `to` comes with the blind-index entry a rule for the destination
/// asks for.
fn reseal(
    state: &State,
    stored: &[u8],
    from: &Location<'_>,
    to: &Location<'_>,
    phi: bool,
    dst: &[u8],
) -> Result<(Vec<u8>, Option<IndexEntry>), CmdError> {
    if !looks_sealed(stored) {
        if !phi {
            return Ok((stored.to_vec(), None));
        }
        let keyring = settings::keyring_for(dst).unwrap_or_else(KeyringName::default_name);
        stats::count_sealed(1);
        let sealed = state.keys.seal(&keyring, Flags { phi }, to, stored)?;
        return Ok((sealed, blind::entry_at(state, &keyring, to, stored)?));
    }
    let mut opened = state.keys.open(stored, from)?;
    opened.header.flags.phi |= phi;
    let keyring = state
        .keys
        .name_of(opened.header.key_id.keyring)
        .ok_or(CoreError::UnknownKeyring)?;
    let sealed = state
        .keys
        .seal(keyring, opened.header.flags, to, &opened.plaintext)?;
    stats::count_opened(1);
    stats::count_sealed(1);
    Ok((
        sealed,
        blind::entry_at(state, keyring, to, &opened.plaintext)?,
    ))
}

/// Whether the source of a move is PHI (by name or flag) and whether the destination is (by
/// name); `None` if the source does not exist.
fn phi_ends(ctx: Ctx, src: Arg, dst: Arg) -> Option<(KeyType, bool, bool)> {
    let key = ctx.open_read(src);
    let kind = key.key_type();
    if kind == KeyType::Empty {
        return None;
    }
    let src_phi = phi::is_phi(false, src.bytes()) || phi::stored_is_phi(ctx, src, &key);
    Some((kind, src_phi, phi::is_phi(false, dst.bytes())))
}

/// Checks a PHI move before anything is decrypted or written: both permissions (reading PHI
/// where the source is PHI, writing PHI at the destination), placement, types, and the
/// destination's time to live.
fn authorize_move(
    ctx: Ctx,
    (src, src_phi): (Arg, bool),
    dst: Arg,
    kind: KeyType,
    command: &str,
) -> Result<Expiry, CmdError> {
    if src_phi {
        phi::authorize(ctx, Op::Read, src, command)?;
    }
    phi::authorize(ctx, Op::Write, dst, command)?;
    phi::check_placement(true, dst)?;
    if kind == KeyType::Other {
        return Err(CmdError::Server(
            "ERR redis-enc seals strings and hashes only: a value of another type does not move to or from \
             a PHI key"
                .into(),
        ));
    }
    phi::bounded_expiry(
        Expiry::Keep,
        ctx.open_read(src).expire_at(),
        crate::clock::now_ms(),
    )
}

/// Reads `src` and re-seals its content for `dst`.
fn read_for(ctx: Ctx, src: Arg, dst: Arg, command: &str) -> Result<Source, CmdError> {
    crate::persist::propagate_if_new(ctx)?;
    let Some((kind, src_phi, dst_phi)) = phi_ends(ctx, src, dst) else {
        return Ok(Source::Missing);
    };
    let phi = src_phi || dst_phi;
    let expiry = if phi {
        Some(authorize_move(ctx, (src, src_phi), dst, kind, command)?)
    } else {
        None
    };
    let moved = match kind {
        KeyType::Empty => return Ok(Source::Missing),
        KeyType::Other => return Ok(Source::Other),
        KeyType::String => {
            let key = ctx.open_read(src);
            state::with(|s| {
                let from = Location::Value { key: src.bytes() };
                let to = Location::Value { key: dst.bytes() };
                let (sealed, _) = reseal(s, key.string_value(), &from, &to, phi, dst.bytes())?;
                Ok(Moved::String(sealed))
            })?
        }
        KeyType::Hash => {
            // The source's blind-index tokens are made again for the destination's rules.
            let fields: Vec<_> = all_fields(ctx, src)?
                .into_iter()
                .filter(|(field, _)| {
                    !blind::is_index_field_of(src.bytes(), field)
                        && !blind::is_index_field_of(dst.bytes(), field)
                })
                .collect();
            state::with(|s| {
                let mut moved = Vec::with_capacity(fields.len());
                let mut tokens = Vec::new();
                for (field, stored) in fields {
                    let from = Location::HashField {
                        key: src.bytes(),
                        field: &field,
                    };
                    let to = Location::HashField {
                        key: dst.bytes(),
                        field: &field,
                    };
                    let (value, entry) = reseal(s, &stored, &from, &to, phi, dst.bytes())?;
                    moved.push((field, value));
                    tokens.extend(entry.map(|e| (e.field, e.token.into_bytes())));
                }
                Ok(Moved::Hash {
                    fields: moved,
                    tokens,
                })
            })?
        }
    };
    let expiry = match expiry {
        Some(expiry) => expiry,
        None => match ctx.open_read(src).expire_at() {
            Some(at) => Expiry::At(at),
            None => Expiry::Clear,
        },
    };
    if src_phi {
        phi::record(ctx, Op::Read, src.bytes(), command, None, None);
    }
    if phi {
        phi::record(ctx, Op::Write, dst.bytes(), command, None, None);
    }
    Ok(Source::Resealed(moved, Some(expiry)))
}

/// Runs a write through the server with replication of exactly that write.
fn write(ctx: Ctx, cmd: &CStr, args: &[&[u8]]) -> Result<(), CmdError> {
    let owned: Vec<_> = args.iter().map(|a| ctx.string(a)).collect();
    let ptrs: Vec<_> = owned.iter().map(|s| s.arg()).collect();
    let reply = ctx.call(cmd, c"!", &ptrs);
    if reply.is_error() {
        return Err(CmdError::Server(reply.error_text()));
    }
    Ok(())
}

/// Writes `moved` at `dst`, replacing what is there, with its expiry: the source's, or for
/// PHI the one the bounds give (`KEEPTTL` of the source's).
fn store(ctx: Ctx, src: Arg, dst: Arg, moved: Moved, expiry: Expiry) -> Result<(), CmdError> {
    let at = match expiry {
        Expiry::At(at) => Some(at),
        Expiry::In(ms) => Some(crate::clock::now_ms() + ms),
        Expiry::Keep => ctx.open_read(src).expire_at(),
        Expiry::Clear => None,
    };
    store::put_moved(ctx, dst, moved, at)
}

/// `ENC.RENAME key newkey`
pub fn rename(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 3 {
        return Err(CmdError::WrongArity("enc.rename"));
    }
    let (src, dst) = (args[1], args[2]);
    if src.bytes() == dst.bytes() {
        if ctx.open_read(src).key_type() == KeyType::Empty {
            return Err(CmdError::NoSuchKey);
        }
        ctx.reply_ok();
        return Ok(());
    }
    match read_for(ctx, src, dst, "ENC.RENAME")? {
        Source::Missing => return Err(CmdError::NoSuchKey),
        Source::Other => write(ctx, c"RENAME", &[src.bytes(), dst.bytes()])?,
        Source::Resealed(moved, expiry) => {
            store(ctx, src, dst, moved, expiry.unwrap_or(Expiry::Clear))?;
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
    let destination_taken = ctx.open_read(dst).key_type() != KeyType::Empty;
    if ctx.open_read(src).key_type() == KeyType::Empty || (destination_taken && !replace) {
        ctx.reply_int(0);
        return Ok(());
    }
    match read_for(ctx, src, dst, "ENC.COPY")? {
        Source::Missing => {
            ctx.reply_int(0);
            return Ok(());
        }
        Source::Other => {
            let mut call: Vec<&[u8]> = vec![src.bytes(), dst.bytes()];
            if replace {
                call.push(b"REPLACE");
            }
            write(ctx, c"COPY", &call)?;
        }
        Source::Resealed(moved, expiry) => {
            store(ctx, src, dst, moved, expiry.unwrap_or(Expiry::Clear))?;
        }
    }
    ctx.reply_int(1);
    Ok(())
}
