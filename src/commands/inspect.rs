//! `ENC.INSPECT key [field]`: envelope metadata, without decrypting.

use redis_enc_core::envelope::FORMAT_V1;
use redis_enc_core::Envelope;

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType};
use crate::state;

pub fn inspect(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if !(2..=3).contains(&args.len()) {
        return Err(CmdError::WrongArity("enc.inspect"));
    }
    let key = ctx.open_read(args[1]);
    let stored: Vec<u8> = match (key.key_type(), args.get(2)) {
        (KeyType::Empty, _) => {
            ctx.reply_null();
            return Ok(());
        }
        (KeyType::String, None) => key.string_value().to_vec(),
        (KeyType::Hash, Some(field)) => match key.hash_get(*field) {
            Some(value) => value.bytes().to_vec(),
            None => {
                ctx.reply_null();
                return Ok(());
            }
        },
        _ => return Err(CmdError::WrongType),
    };
    let envelope = Envelope::parse(&stored)?;
    let header = *envelope.header();
    let keyring = state::with(|s| Ok(s.keys.label_of(header.key_id.keyring)))?;
    ctx.reply_map(6);
    ctx.reply_field_int(b"format", i64::from(FORMAT_V1));
    ctx.reply_bulk(b"algorithm");
    ctx.reply_bulk(header.algorithm.name().as_bytes());
    ctx.reply_bulk(b"keyring");
    ctx.reply_bulk(keyring.as_bytes());
    ctx.reply_field_int(b"key-version", i64::from(header.key_id.version.0));
    ctx.reply_field_int(b"phi", i64::from(header.flags.phi));
    ctx.reply_field_int(b"plaintext-length", envelope.plaintext_len() as i64);
    Ok(())
}
