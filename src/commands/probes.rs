//! `ENC.PHI READ|WRITE` and `ENC.AUDIT REOPEN`.

use crate::audit;
use crate::error::CmdError;
use crate::ffi::{Arg, Ctx};

/// `ENC.PHI READ key` / `ENC.PHI WRITE key`: reply OK. They exist to be granted with ACL
/// (`+enc.phi|read`, `+enc.phi|write`); running one tells a user whether they hold it.
pub fn permission_probe(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 3 {
        return Err(CmdError::WrongArity("enc.phi"));
    }
    ctx.reply_ok();
    Ok(())
}

/// `ENC.AUDIT REOPEN`
pub fn audit_reopen(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    if args.len() != 2 {
        return Err(CmdError::WrongArity("enc.audit|reopen"));
    }
    audit::reopen(ctx, "ENC.AUDIT REOPEN")?;
    ctx.reply_ok();
    Ok(())
}
