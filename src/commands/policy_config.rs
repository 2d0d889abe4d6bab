//! `ENC._CONFIG SET name value [name value ...]`: a `CONFIG SET` of a PHI or audit policy
//! config, rewritten by the command filter so that the change is made knowing who made it.
//!
//! The policy configs are registered as protected (like the server's `dir`): the server
//! refuses to change them at run time unless `enable-protected-configs` allows it. Here the
//! same rule is applied to the real client (the server's own check would see the module's
//! internal client), the user's ACL permission for `CONFIG SET` is checked, and every change is audited with the ACL user, client id and address, in the
//! log that was in force before the change.

use crate::audit;
use crate::config;
use crate::error::CmdError;
use crate::ffi::{AclCheck, Arg, Ctx};

pub fn set(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() < 4
        || !args.len().is_multiple_of(2)
        || !args[1].bytes().eq_ignore_ascii_case(b"SET")
    {
        return Err(CmdError::WrongArity("config|set"));
    }
    // Neither a primary's replication stream nor the AOF carries CONFIG SET: one arriving there
    // comes from a primary that is not redis-enc's (attached with REPLICAOF) and changes nothing.
    if ctx.is_server_itself() {
        return Err(CmdError::Server(
            "ERR a CONFIG SET of an enc.* policy config from the replication stream or the AOF \
             is refused: set it on this server"
                .into(),
        ));
    }
    let mut original: Vec<&[u8]> = vec![b"CONFIG"];
    original.extend(args[1..].iter().map(Arg::bytes));
    if let AclCheck::Denied = ctx.acl_check(&original, b"config|set") {
        audit::record(
            ctx,
            audit::Access {
                event: "denied",
                command: "CONFIG SET",
                key: None,
                keyring: None,
                version: None,
                outcome: "denied",
                detail: Some("the server's ACL: no permission for config|set".into()),
            },
        );
        return Err(CmdError::AclCommand("config|set".into()));
    }
    let pairs: Vec<(&[u8], String)> = args[2..]
        .chunks(2)
        .map(|pair| {
            let value = String::from_utf8(pair[1].bytes().to_vec())
                .map_err(|_| config_error(pair[0].bytes(), "not UTF-8"))?;
            Ok((pair[0].bytes(), value))
        })
        .collect::<Result<_, CmdError>>()?;
    if let Some((other, _)) = pairs
        .iter()
        .find(|(name, _)| config::value_of(name).is_none())
    {
        return Err(CmdError::Server(format!(
            "ERR set enc.* policy configs in a CONFIG SET of their own (not with '{}')",
            String::from_utf8_lossy(other)
        )));
    }
    if let Some((name, _)) = pairs.iter().find(|(name, _)| config::is_policy(name)) {
        if !protected_configs_allowed(ctx) {
            audit::record(
                ctx,
                audit::Access {
                    event: "denied",
                    command: "CONFIG SET",
                    key: None,
                    keyring: None,
                    version: None,
                    outcome: "denied",
                    detail: Some(format!(
                        "{} is protected (enable-protected-configs)",
                        String::from_utf8_lossy(name)
                    )),
                },
            );
            return Err(config_error(name, "can't set protected config"));
        }
    }
    // All or nothing, as CONFIG SET: every value is checked first, and if applying one still
    // fails, the ones applied before it are set back.
    for (name, value) in &pairs {
        config::validate_by_name(name, value).map_err(|why| config_error(name, &why))?;
    }
    let before: Vec<String> = pairs
        .iter()
        .map(|(name, _)| config::value_of(name).unwrap_or_default())
        .collect();
    if pairs
        .iter()
        .zip(&before)
        .any(|((name, value), old)| config::weakens(name, old, value))
    {
        let argv = original.iter().map(|a| a.to_vec()).collect();
        crate::dual::require_second(ctx, argv, "config|set")?;
    }
    let author = ctx.caller();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if let Err(why) = audit::with_author(author.clone(), || config::set_by_name(name, value)) {
            for ((name, _), old) in pairs[..i].iter().zip(&before).rev() {
                let _ = audit::with_author(author.clone(), || config::set_by_name(name, old));
            }
            return Err(config_error(name, &why));
        }
    }
    ctx.reply_ok();
    Ok(())
}

/// The server's own wording for a refused `CONFIG SET`.
fn config_error(name: &[u8], why: &str) -> CmdError {
    CmdError::Server(format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
        String::from_utf8_lossy(name)
    ))
}

/// Whether `enable-protected-configs` lets this client change a protected config: `yes`, or
/// `local` for a client on the loopback address or a unix socket.
fn protected_configs_allowed(ctx: Ctx) -> bool {
    let setting = ctx
        .config_get(b"enable-protected-configs")
        .unwrap_or_default();
    match setting.to_ascii_lowercase().as_slice() {
        b"yes" => true,
        b"local" => ctx.is_local_client(),
        _ => false,
    }
}
