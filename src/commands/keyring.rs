//! `ENC.KEYRING LIST|INFO|CREATE|ROTATE|RETIRE|DESTROY|REWRAP|EXPORT|IMPORT`.
//!
//! Every change is propagated as `ENC.KEYRING IMPORT <export>` (see `persist`), so replicas,
//! the AOF and later RDBs follow.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use redis_enc_core::key::scrub_stack;
use redis_enc_core::keystore::{changes, prefetch, KeyringInfo, Locking, Sealing};
use redis_enc_core::{Error as CoreError, KeyId, KeyVersion, KeyringName};

use crate::audit::{self, Access};
use crate::error::CmdError;
use crate::error::Handler;
use crate::ffi::{Arg, Blocked, Caller, Ctx, Outcome};
use crate::setopts::parse_i64;
use crate::state::{self, Held};
use crate::{cluster, dual, persist};

mod blocking;
use blocking::{change, scrubbed};

fn keyring_name(arg: Option<&Arg>) -> Result<KeyringName, CmdError> {
    Ok(KeyringName::parse(arg.ok_or(CmdError::Syntax)?.bytes())?)
}

fn version(arg: Option<&Arg>) -> Result<KeyVersion, CmdError> {
    let n = parse_i64(arg.ok_or(CmdError::Syntax)?.bytes())?;
    u16::try_from(n)
        .ok()
        .filter(|v| *v > 0)
        .map(KeyVersion)
        .ok_or(CmdError::NotInteger)
}

/// After a keyring change: the store goes to replicas and the AOF, and, in a cluster, to
/// every node.
fn propagate(ctx: Ctx) -> Result<(), CmdError> {
    persist::propagate(ctx)?;
    cluster::announce(ctx);
    Ok(())
}

/// Records a keyring operation in the audit log.
fn audited(
    caller: Caller,
    operation: &str,
    keyring: Option<&KeyringName>,
    version: Option<KeyVersion>,
    detail: Option<String>,
) {
    audit::record_as(
        caller,
        Access {
            event: "keyring",
            command: &format!("ENC.KEYRING {operation}"),
            key: None,
            keyring: keyring.map(|k| k.as_str().to_owned()),
            version: version.map(|v| v.0),
            outcome: "ok",
            detail,
        },
    );
}

/// The command as it was sent.
fn argv(args: &[Arg]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.bytes().to_vec()).collect()
}

fn exact(args: &[Arg], min: usize, max: usize, name: &'static str) -> Result<(), CmdError> {
    if args.len() < min || args.len() > max {
        return Err(CmdError::WrongArity(name));
    }
    Ok(())
}

/// `ENC.KEYRING LIST`: the names of every keyring.
pub fn list(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 2, 2, "enc.keyring|list")?;
    let names: Vec<String> = state::with(|s| {
        Ok(s.keys
            .list()
            .into_iter()
            .map(|k| k.name.as_str().to_owned())
            .collect())
    })?;
    ctx.reply_array(names.len());
    for n in names {
        ctx.reply_bulk(n.as_bytes());
    }
    Ok(())
}

/// `ENC.KEYRING INFO name`
pub fn info(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 3, 3, "enc.keyring|info")?;
    let name = keyring_name(args.get(2))?;
    let info: KeyringInfo = state::with(|s| Ok(s.keys.info(&name)?))?;
    ctx.reply_map(4);
    ctx.reply_bulk(b"name");
    ctx.reply_bulk(info.name.as_str().as_bytes());
    ctx.reply_field_int(b"id", i64::from(info.id.0));
    ctx.reply_field_int(b"primary", i64::from(info.primary.0));
    ctx.reply_bulk(b"versions");
    ctx.reply_array(info.versions.len());
    for v in info.versions {
        ctx.reply_map(6);
        ctx.reply_field_int(b"version", i64::from(v.version.0));
        ctx.reply_bulk(b"state");
        ctx.reply_bulk(v.state.name().as_bytes());
        ctx.reply_field_int(b"primary", i64::from(v.primary));
        ctx.reply_field_int(b"created", v.created as i64);
        ctx.reply_field_int(b"available", i64::from(v.available));
        ctx.reply_bulk(b"wrapped-by");
        ctx.reply_bulk(v.wrapped_by.as_bytes());
    }
    Ok(())
}

/// `ENC.KEYRING CREATE name`
pub fn create(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    scrubbed(ctx, args, create_now)
}

fn create_now(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 3, 3, "enc.keyring|create")?;
    let name = keyring_name(args.get(2))?;
    // `default` comes first, as keyring 0: a server whose KMS could not make it yet makes it
    // when the KMS answers, and until then makes no other keyring.
    if let Some(why) = state::why_no_keys() {
        return Err(CmdError::NoKeyringYet(why));
    }
    let id = state::with(|s| Ok(s.keys.next_keyring(&name)?))?;
    add_key(ctx, name, id, "CREATE", |_| Outcome::Ok)
}

/// `ENC.KEYRING ROTATE [name]`: replies with the new primary version.
pub fn rotate(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    scrubbed(ctx, args, rotate_now)
}

fn rotate_now(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 2, 3, "enc.keyring|rotate")?;
    let name = match args.get(2) {
        Some(_) => keyring_name(args.get(2))?,
        None => KeyringName::default_name(),
    };
    let id = state::with(|s| Ok(s.keys.next_version(&name)?))?;
    add_key(ctx, name, id, "ROTATE", |v| Outcome::Int(i64::from(v.0)))
}

/// Makes the key `id` of keyring `name` and adds it as the keyring's primary.
fn add_key(
    ctx: Ctx,
    name: KeyringName,
    id: KeyId,
    operation: &'static str,
    reply: fn(KeyVersion) -> Outcome,
) -> Result<(), CmdError> {
    let caller = ctx.caller();
    let for_kms = name.clone();
    change(
        ctx,
        move |held| Ok(changes::make_key(held.master.wrapper(), &for_kms, id)?),
        move |ctx, made| {
            // In a cluster a new version seals once every node holds it (two-phase).
            let sealing = if ctx.in_cluster() {
                Sealing::WhenHeld
            } else {
                Sealing::Now
            };
            let now = crate::clock::now_secs();
            let v = state::with_mut(|s| Ok(s.keys.add_made(made, now, sealing)?))?;
            propagate(ctx)?;
            audited(caller, operation, Some(&name), Some(v), None);
            Ok(reply(v))
        },
    )
}

/// `ENC.KEYRING RETIRE name version`
pub fn retire(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    exact(args, 4, 4, "enc.keyring|retire")?;
    let name = keyring_name(args.get(2))?;
    let v = version(args.get(3))?;
    dual::require_second(ctx, argv(args), "enc.keyring|retire")?;
    state::with_mut(|s| Ok(s.keys.retire(&name, v)?))?;
    propagate(ctx)?;
    audited(ctx.caller(), "RETIRE", Some(&name), Some(v), None);
    ctx.reply_ok();
    Ok(())
}

/// `ENC.KEYRING DESTROY name [version] [FORCE]`: `FORCE` is needed whenever values may still
/// be sealed under what is destroyed (a whole keyring, or a version no completed re-encryption
/// has moved values away from).
pub fn destroy(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    exact(args, 3, 5, "enc.keyring|destroy")?;
    let name = keyring_name(args.get(2))?;
    let mut rest = &args[3..];
    let force = rest
        .last()
        .is_some_and(|a| a.bytes().eq_ignore_ascii_case(b"FORCE"));
    if force {
        rest = &rest[..rest.len() - 1];
    }
    let v = match rest {
        [] => None,
        [one] => Some(version(Some(one))?),
        _ => return Err(CmdError::Syntax),
    };
    // Checked before dual control, so that a DESTROY that would be refused is refused now,
    // not after approval; nothing changes the store between here and the destroy.
    if !force && state::with(|s| Ok(s.keys.destroy_would_shred(&name, v)?))? {
        return Err(CmdError::NeedsForce);
    }
    dual::require_second(ctx, argv(args), "enc.keyring|destroy")?;
    state::with_mut(|s| Ok(s.keys.destroy(&name, v)?))?;
    propagate(ctx)?;
    audited(
        ctx.caller(),
        "DESTROY",
        Some(&name),
        v,
        force.then(|| "FORCE".to_owned()),
    );
    ctx.reply_ok();
    Ok(())
}

/// `ENC.KEYRING REWRAP`: wraps every data key under the current master key; no stored value
/// changes. Replies with the number of keys wrapped.
pub fn rewrap(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    scrubbed(ctx, args, rewrap_now)
}

fn rewrap_now(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 2, 2, "enc.keyring|rewrap")?;
    dual::require_second(ctx, argv(args), "enc.keyring|rewrap")?;
    let keys = state::with(|s| Ok(s.keys.to_rewrap()?))?;
    let caller = ctx.caller();
    change(
        ctx,
        move |held| Ok(changes::rewrap_keys(held.master.wrapper(), &keys)?),
        move |ctx, rewrapped| {
            let n = state::with_mut(|s| Ok(s.keys.set_wrappings(rewrapped)))?;
            propagate(ctx)?;
            audited(caller, "REWRAP", None, None, Some(format!("{n} keys")));
            Ok(Outcome::Int(n as i64))
        },
    )
}

/// `ENC.KEYRING EXPORT`: every keyring, keys wrapped, as one opaque blob.
pub fn export(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 2, 2, "enc.keyring|export")?;
    let blob = state::with(|s| Ok(s.keys.export()))?;
    audited(ctx.caller(), "EXPORT", None, None, None);
    ctx.reply_bulk(&blob);
    Ok(())
}

/// `ENC.KEYRING IMPORT blob [FORCE]`: merges an export; replies with what changed. An import
/// that would leave a working key, or a keyring's primary, locked (an export made under
/// another master key) needs `FORCE`; what the primary propagates, and the AOF replays, is
/// applied as it is.
pub fn import(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    cluster::may_change_keyrings(ctx)?;
    scrubbed(ctx, args, import_now)
}

fn import_now(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    exact(args, 3, 4, "enc.keyring|import")?;
    let force = match args.get(3) {
        None => false,
        Some(word) if word.bytes().eq_ignore_ascii_case(b"FORCE") => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let locking = if force || ctx.is_server_itself() {
        Locking::Allow
    } else {
        Locking::Refuse
    };
    let blob = args[2].bytes().to_vec();
    let jobs = state::with(|s| s.unwraps_for(&blob, true))?;
    // An export can retire and destroy versions: under dual control an import waits too.
    dual::require_second(ctx, argv(args), "enc.keyring|import")?;
    let caller = ctx.caller();
    change(
        ctx,
        move |held| Ok(prefetch(&jobs, &held.masters(), &held.unwrappers())),
        move |ctx, prefetched| {
            // In a cluster an imported newer primary waits, as a rotation's does, until every
            // node holds it.
            let hold = ctx.in_cluster() && !ctx.is_server_itself();
            let report = state::with_mut(|s| {
                let before = s.keys.primary_versions();
                let report = s.merge(&blob, locking, prefetched, true)?;
                if hold {
                    s.keys.hold_new_primaries(&before);
                }
                Ok(report)
            })?;
            propagate(ctx)?;
            audited(
                caller,
                "IMPORT",
                None,
                None,
                Some(format!(
                    "{} versions changed{}",
                    report.versions_changed,
                    if force { ", FORCE" } else { "" }
                )),
            );
            Ok(Outcome::Fields(vec![
                (&b"keyrings-added"[..], report.keyrings_added as i64),
                (b"versions-changed", report.versions_changed as i64),
                (b"versions-locked", report.versions_locked as i64),
            ]))
        },
    )
}
