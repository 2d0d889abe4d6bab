//! Search without plaintext: `ENC.BLINDINDEX`, `ENC.TOKENIZE`, `ENC.DETOKENIZE`
//! (docs/FORMAT.md §8).

use redis_enc_core::search::{detokenize, token_version, tokenize, TokenError};
use redis_enc_core::{KeyId, KeyringName};

use crate::blind;
use crate::error::CmdError;
use crate::ffi::{Arg, Ctx};
use crate::phi::{self, Op};
use crate::settings;
use crate::state;

/// `ENC.BLINDINDEX key field value`: the tokens under which `value` is found in the
/// blind index of `field` of keys like `key`, one per active key version, the primary first.
/// An equality oracle over every key of the rule, so it needs the PHI read permission on `key`
/// and on the rule's pattern taken as a key name, and is audited.
pub fn blind_index(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 4 {
        return Err(CmdError::WrongArity("enc.blindindex"));
    }
    ctx.redact(3);
    let (key, field, value) = (args[1], args[2].bytes(), args[3].bytes());
    phi::authorize(ctx, Op::Read, key, "ENC.BLINDINDEX")?;
    let rule = settings::index_of(key.bytes(), field).ok_or_else(|| {
        CmdError::Server(format!(
            "ERR no enc.blind-indexes rule covers field '{}' of that key",
            String::from_utf8_lossy(field)
        ))
    })?;
    // A token finds every key of its rule: the permission must cover the rule's pattern (as a
    // key name), not one key of it only.
    let pattern = ctx.string(rule.pattern.as_bytes());
    phi::authorize(ctx, Op::Read, Arg::from_owned(&pattern), "ENC.BLINDINDEX")?;
    let keyring = settings::keyring_for(key.bytes()).unwrap_or_else(KeyringName::default_name);
    let tokens = state::with(|s| blind::query_tokens(s, &keyring, &rule, field, value))?;
    phi::record(
        ctx,
        Op::Read,
        key.bytes(),
        "ENC.BLINDINDEX",
        Some(keyring.as_str().to_owned()),
        None,
    );
    ctx.reply_array(tokens.len());
    for token in tokens {
        ctx.reply_bulk(token.as_bytes());
    }
    Ok(())
}

/// `ENC.TOKENIZE namespace value`: the deterministic token of `value` in `namespace`, under
/// the oldest active version of `enc.token-keyring`.
pub fn tokenize_value(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 3 {
        return Err(CmdError::WrongArity("enc.tokenize"));
    }
    ctx.redact(2);
    let keyring = settings::token_keyring();
    let token = state::with(|s| {
        let key = s.keys.token_key(&keyring)?;
        tokenize(key, args[1].bytes(), args[2].bytes()).map_err(token_error)
    })?;
    ctx.reply_bulk(token.as_bytes());
    Ok(())
}

/// `ENC.DETOKENIZE token`: the value a token stands for. Re-identifies, so it needs the PHI
/// read permission on the token's namespace taken as a key name, and is audited.
pub fn detokenize_value(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.detokenize"));
    }
    let token = args[1].bytes();
    let version = token_version(token).ok_or(token_error(TokenError::Malformed))?;
    let keyring = settings::token_keyring();
    let (namespace, value) = state::with(|s| {
        let ring = s
            .keys
            .id_of(&keyring)
            .ok_or(CmdError::Core(redis_enc_core::Error::UnknownKeyring))?;
        let key = s.keys.get(KeyId {
            keyring: ring,
            version,
        })?;
        detokenize(key, token).map_err(token_error)
    })?;
    let namespace_arg = ctx.string(&namespace);
    phi::authorize(
        ctx,
        Op::Read,
        Arg::from_owned(&namespace_arg),
        "ENC.DETOKENIZE",
    )?;
    phi::record(
        ctx,
        Op::Read,
        &namespace,
        "ENC.DETOKENIZE",
        Some(keyring.as_str().to_owned()),
        Some(version.0),
    );
    ctx.reply_bulk(&value);
    Ok(())
}

fn token_error(e: TokenError) -> CmdError {
    CmdError::Server(
        match e {
            TokenError::NamespaceTooLong => "ERR a token namespace is at most 255 bytes",
            TokenError::Malformed => "ERR not a redis-enc token (tk<version>_<lower-case base32>)",
            TokenError::DoesNotOpen => {
                "ERR the token does not open: another key made it, or it was changed"
            }
        }
        .into(),
    )
}
