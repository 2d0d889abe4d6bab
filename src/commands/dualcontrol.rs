//! `ENC.DUALCONTROL LIST|APPROVE`: the requests that dual control holds (see `dual`).

use super::{keyring, policy_config};
use crate::dual;
use crate::error::CmdError;
use crate::ffi::{AclCheck, Arg, Ctx};

/// `ENC.DUALCONTROL LIST`: every request still in its window, oldest first.
pub fn list(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.dualcontrol|list"));
    }
    let pending = dual::pending();
    let now = crate::clock::now_secs();
    ctx.reply_array(pending.len());
    for r in pending {
        ctx.reply_map(5);
        ctx.reply_bulk(b"id");
        ctx.reply_bulk(r.id.as_bytes());
        ctx.reply_bulk(b"command");
        ctx.reply_bulk(r.command().as_bytes());
        ctx.reply_bulk(b"requested-by");
        ctx.reply_bulk(r.requester.user.as_bytes());
        ctx.reply_field_int(b"age", now.saturating_sub(r.made) as i64);
        ctx.reply_field_int(
            b"expires-in",
            (r.made as i64 + crate::settings::dual_control_window()) - now as i64,
        );
    }
    Ok(())
}

/// `ENC.DUALCONTROL APPROVE id`: runs the request's command as the caller, who must be
/// another user than the one who made it and be allowed to run that command.
pub fn approve(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 3 {
        return Err(CmdError::WrongArity("enc.dualcontrol|approve"));
    }
    let request = dual::find(ctx, args[2].bytes())?;
    let original: Vec<&[u8]> = request.argv.iter().map(Vec::as_slice).collect();
    if let AclCheck::Denied = ctx.acl_check(&original, request.permission.as_bytes()) {
        return Err(CmdError::AclCommand(request.permission.to_owned()));
    }
    // A CONFIG SET runs as the filter would have rewritten it.
    let mut argv = request.argv.clone();
    let run: fn(Ctx, &[Arg]) -> Result<(), CmdError> = match request.permission {
        "enc.keyring|retire" => keyring::retire,
        "enc.keyring|destroy" => keyring::destroy,
        "enc.keyring|rewrap" => keyring::rewrap,
        "enc.keyring|import" => keyring::import,
        _ => {
            argv[0] = b"ENC._CONFIG".to_vec();
            policy_config::set
        }
    };
    let strings: Vec<_> = argv.iter().map(|a| ctx.string(a)).collect();
    let args: Vec<Arg> = strings.iter().map(|s| s.arg()).collect();
    dual::run_approved(ctx, &request, || run(ctx, &args))
}
