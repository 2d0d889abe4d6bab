//! `ENC.REENCRYPT START`, `STATUS`, `STOP`: the re-encryption job (`crate::reencrypt`) as
//! commands.

use redis_enc_core::KeyringName;
use wildmatch::WildMatch;

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx};
use crate::reencrypt::{self, phase_name, Mode, Request};
use crate::setopts::parse_i64;

/// `ENC.REENCRYPT START [ENCRYPT-PLAINTEXT] [KEYRING name] [MATCH pattern] [RATE n]`
pub fn start(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    let mut request = Request {
        mode: Mode::Reseal,
        keyring: None,
        pattern: None,
        rate: None,
    };
    let mut i = 2;
    while i < args.len() {
        let word = args[i].bytes().to_ascii_uppercase();
        let value = args.get(i + 1).map(|a| a.bytes());
        match (word.as_slice(), value) {
            (b"ENCRYPT-PLAINTEXT", _) => {
                request.mode = Mode::EncryptPlaintext;
                i += 1;
                continue;
            }
            (b"KEYRING", Some(v)) => request.keyring = Some(KeyringName::parse(v)?),
            (b"MATCH", Some(v)) => {
                request.pattern = Some(WildMatch::new(&String::from_utf8_lossy(v)));
            }
            (b"RATE", Some(v)) => {
                let n = u64::try_from(parse_i64(v)?).map_err(|_| CmdError::NotInteger)?;
                if n == 0 {
                    return Err(CmdError::NotInteger);
                }
                request.rate = Some(n);
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    reencrypt::begin(ctx, request)?;
    ctx.reply_ok();
    Ok(())
}

/// `ENC.REENCRYPT STATUS`
pub fn status(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.reencrypt|status"));
    }
    let Some(p) = reencrypt::progress() else {
        ctx.reply_map(1);
        ctx.reply_bulk(b"state");
        ctx.reply_bulk(b"idle");
        return Ok(());
    };
    ctx.reply_map(7);
    ctx.reply_bulk(b"state");
    ctx.reply_bulk(phase_name(p.phase).as_bytes());
    ctx.reply_bulk(b"mode");
    ctx.reply_bulk(if p.mode == Mode::Reseal {
        b"reseal" as &[u8]
    } else {
        b"encrypt-plaintext"
    });
    ctx.reply_field_int(b"keys-scanned", p.keys_scanned as i64);
    ctx.reply_field_int(b"values-resealed", p.values_resealed as i64);
    ctx.reply_field_int(b"values-failed", p.values_failed as i64);
    ctx.reply_field_int(b"elapsed-ms", p.elapsed_ms as i64);
    ctx.reply_field_int(b"databases-done", p.databases_done as i64);
    Ok(())
}

/// `ENC.REENCRYPT STOP`
pub fn stop(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.reencrypt|stop"));
    }
    reencrypt::end(ctx)?;
    ctx.reply_ok();
    Ok(())
}
