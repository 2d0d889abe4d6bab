//! `ENC._REFUSED`, the command the guard puts in place of one it refuses: it checks the user's
//! ACL permission for the original command first, then records and replies.

use super::*;

/// `ENC._REFUSED <reason>:<token>:<command>:<first argument> [args...]`: the reply of a command
/// the guard refused, which replaced the command's name and first argument (the filter adds no
/// argument: Valkey 9's scripts call commands through the module API, where an added argument
/// corrupts the server's heap). The original arguments may hold plaintext: they are redacted
/// from SLOWLOG and MONITOR. The user's ACL permission for the original command is checked
/// first, so a user who may not run it learns nothing about the key from the guard. No internal
/// command carries the original arguments (SLOWLOG would show them).
pub fn refused(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    for pos in 1..args.len() {
        ctx.redact(pos);
    }
    let packed = args.get(1).map_or(&[][..], |a| a.bytes());
    let mut parts = packed.splitn(4, |b| *b == b':');
    let (code, token_given, name, first) = (parts.next(), parts.next(), parts.next(), parts.next());
    let refusal = code
        .and_then(Refusal::from_code)
        .unwrap_or(Refusal::Plaintext);
    let from_guard = token_given == Some(token().as_bytes());
    let (Some(name), Some(first)) = (name, first) else {
        return Err(CmdError::Guard(refusal));
    };
    let name_arg = ctx.string(name);
    let first_arg = ctx.string(first);
    let mut rebuilt = vec![name_arg.arg(), first_arg.arg()];
    rebuilt.extend_from_slice(&args[2..]);
    let original = &rebuilt[..];
    let guarded = from_guard
        && original
            .first()
            .and_then(|name| shape(name.bytes()))
            .is_some_and(|(_, arity)| arity_ok(original.len(), arity));
    if !guarded {
        // Called by a client, not made by the guard: nothing to check, record or tell.
        return Err(CmdError::Guard(refusal));
    }
    let name = String::from_utf8_lossy(original[0].bytes()).to_ascii_lowercase();
    match ctx.acl_denial(original) {
        // Not a command the server would run: nothing to check, nothing to tell.
        Err(()) => return Err(CmdError::Guard(refusal)),
        Ok(None) => {}
        Ok(Some(Denial::Command)) => {
            ctx.acl_log(original[0].bytes(), false);
            record_denial(
                ctx,
                &name,
                None,
                "the server's ACL: no permission for the command",
            );
            return Err(CmdError::AclCommand(name));
        }
        Ok(Some(Denial::Key(key))) => {
            ctx.acl_log(&key, true);
            let phi = settings::is_phi_key(&key).then_some(key.as_slice());
            record_denial(
                ctx,
                &name,
                phi,
                "the server's ACL: no permission for the key",
            );
            return Err(CmdError::AclKey);
        }
    }
    let key = original
        .iter()
        .skip(1)
        .map(Arg::bytes)
        .find(|a| settings::is_phi_key(a));
    let why = format!("enc.phi-guard: {}", String::from_utf8_lossy(refusal.code()));
    record_denial(ctx, &name, key, &why);
    Err(CmdError::Guard(refusal))
}

/// Records a refused plain command.
fn record_denial(ctx: Ctx, command: &str, key: Option<&[u8]>, why: &str) {
    audit::record(
        ctx,
        Access {
            event: "denied",
            command: &command.to_ascii_uppercase(),
            key,
            keyring: None,
            version: None,
            outcome: "denied",
            detail: Some(why.to_owned()),
        },
    );
}
