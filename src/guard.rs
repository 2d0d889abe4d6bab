//! The plaintext guard: with `enc.phi-guard yes` and `enc.phi-patterns` set, plain commands
//! that would put plaintext under a PHI key, put there an envelope that does not authenticate
//! under that key (and field), move a sealed value where it cannot open, or leave a PHI key's
//! time to live outside the bounds are refused.
//!
//! A command filter sees every command (scripts and transactions included) before it runs.
//! For commands on keys that match no pattern, the cost is one lookup in a small table of
//! command names. A refused command is rewritten to `ENC._REFUSED <reason>:<token>:<command>:<key> …`:
//! the server then checks authentication first (`NOAUTH`), and `ENC._REFUSED` checks the
//! user's ACL permission for the original command before it answers with the guard's reason,
//! so that neither an unauthenticated client nor a user without permission for the command
//! learns which key names are PHI. Where the server tells a filter who sent a command (Redis
//! 7.2+, Valkey), a command the sender may not run is not rewritten at all and gets the
//! server's own `NOPERM`. A plain write of PHI without a time to live gets
//! `enc.phi-ttl-default` added (`SET … PX`, `RESTORE`'s TTL) when one is set.
//!
//! The guard acts on primaries only: a replica applies what its primary sends, and AOF loading
//! replays what was accepted, so neither is filtered (DESIGN.md: the guard must let the primary's
//! ciphertext writes through on replicas and during AOF load).

use std::sync::atomic::{AtomicBool, Ordering};

use redis_enc_core::envelope::looks_sealed;
use redis_enc_core::Location;

use crate::audit::{self, Access};
use crate::blind;
use crate::config;
use crate::error::CmdError;
use crate::ffi::{self, Arg, Ctx, Denial, FilterCtx};
use crate::phi;
use crate::setopts::{parse_getex, parse_i64, Expiry, SetOptions};
use crate::settings;
use crate::state;

static IS_REPLICA: AtomicBool = AtomicBool::new(false);
static LOADING: AtomicBool = AtomicBool::new(false);

pub fn set_replica(value: bool) {
    IS_REPLICA.store(value, Ordering::SeqCst);
}

pub fn set_loading(value: bool) {
    LOADING.store(value, Ordering::SeqCst);
}

pub use redis_enc_core::policy::Refusal;

mod import;
mod refused;
mod shapes;
pub use import::on_slot_migration;
pub use refused::refused;
use shapes::{arity_ok, shape, Shape};

/// What the guard does with a command.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Refuse(Refusal),
    /// `SET` of PHI without an expiry: add `PX <ms>`.
    AppendPx(i64),
    /// `RESTORE` of PHI without a TTL: set its TTL argument.
    RestoreTtl(i64),
}

/// Rewrites a refused command to `ENC._REFUSED <code>:<token>:<name>:<first argument> <rest>`
/// by replacing its first two arguments, never adding one (see `refused`).
fn refuse_in_place(f: &mut FilterCtx, refusal: Refusal) {
    if f.argc() < 2 {
        // Every command the guard reads names a key; refused without a reason to tell.
        f.replace(0, b"ENC._REFUSED");
        return;
    }
    let mut packed = Vec::new();
    packed.extend_from_slice(refusal.code());
    packed.push(b':');
    packed.extend_from_slice(token().as_bytes());
    packed.push(b':');
    packed.extend_from_slice(f.arg(0));
    packed.push(b':');
    packed.extend_from_slice(f.arg(1));
    f.replace(0, b"ENC._REFUSED");
    f.replace(1, &packed);
}

/// Whether the server runs scripts through the module API (Valkey 9 and later): known once,
/// at load, by the scripting-engine functions the server offers.
static SCRIPTS_THROUGH_MODULE_API: AtomicBool = AtomicBool::new(false);

pub fn set_scripts_through_module_api(value: bool) {
    SCRIPTS_THROUGH_MODULE_API.store(value, Ordering::SeqCst);
}

fn scripts_through_module_api() -> bool {
    SCRIPTS_THROUGH_MODULE_API.load(Ordering::Relaxed)
}

/// The command filter.
pub fn filter(f: &mut FilterCtx) {
    let name = f.arg(0);
    if runs_scripts(name) {
        if let Some(id) = f.client_id() {
            ffi::note_script_caller(id);
        }
    }
    if sets_policy(f, name) {
        // Made by ENC._CONFIG, which knows who asks (a config callback does not).
        f.replace(0, b"ENC._CONFIG");
        return;
    }
    if !phi::guard_active() {
        return;
    }
    import::note(f, name);
    if IS_REPLICA.load(Ordering::Relaxed) || LOADING.load(Ordering::Relaxed) {
        return;
    }
    let Some((shape, arity)) = shape(name) else {
        return;
    };
    if !arity_ok(f.argc(), arity) {
        return;
    }
    let mut verdict = check(f, shape, crate::clock::now_ms());
    // A slot import writes a hash before the `PEXPIREAT` that follows it: its TTLs are the
    // source's, left as they come; what it writes is still checked. Asked only of a TTL
    // verdict.
    if matches!(
        verdict,
        Verdict::AppendPx(_) | Verdict::RestoreTtl(_) | Verdict::Refuse(Refusal::Ttl)
    ) && import::from_importer(f)
    {
        verdict = Verdict::Pass;
    }
    match verdict {
        Verdict::Pass => {}
        // Where scripts call commands through the module API (Valkey 9), a filter that adds
        // arguments to a script's call corrupts the server's heap: such a write is refused.
        Verdict::AppendPx(_) if scripts_through_module_api() => {
            refuse_in_place(f, Refusal::Ttl);
        }
        Verdict::AppendPx(ms) => {
            let at = f.argc();
            f.insert(at, b"PX");
            f.insert(at + 1, ms.to_string().as_bytes());
        }
        Verdict::RestoreTtl(ttl) => f.replace(2, ttl.to_string().as_bytes()),
        Verdict::Refuse(refusal) => {
            // A sender who may not run the command gets the server's own NOPERM.
            if f.sender_may_run() == Some(false) {
                return;
            }
            refuse_in_place(f, refusal);
        }
    }
}

/// The token the filter puts in the refusals it makes, so that `ENC._REFUSED` called by a
/// client (which could name any command) is told from a real refusal.
fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(redis_enc_core::key::random_token)
}

/// Whether a command runs a script (or, `EXEC`, may run one), whose calls the audit log
/// attributes to the client that sent it.
fn runs_scripts(command: &[u8]) -> bool {
    const SCRIPTS: [&[u8]; 7] = [
        b"eval",
        b"evalsha",
        b"eval_ro",
        b"evalsha_ro",
        b"fcall",
        b"fcall_ro",
        b"exec",
    ];
    (4..=10).contains(&command.len()) && SCRIPTS.iter().any(|s| command.eq_ignore_ascii_case(s))
}

/// Whether the command is a `CONFIG SET` of a PHI or audit policy config.
fn sets_policy(f: &FilterCtx, name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"CONFIG")
        && f.arg(1).eq_ignore_ascii_case(b"SET")
        && (2..f.argc())
            .step_by(2)
            .any(|i| config::is_policy(f.arg(i)))
}

/// The TTL a plain write asks for, in milliseconds from now where it names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    /// The key ends without a TTL, and the command has no way to give it one.
    NoneFixed,
    /// The key ends without a TTL unless the guard adds one (`SET`, `RESTORE`).
    NoneAddable,
    /// The key keeps whatever TTL it had (`KEEPTTL`): the guard cannot see it.
    Keep,
    /// This many milliseconds from now (zero or less deletes the key).
    In(i64),
}

/// Applies the PHI TTL bounds to a plain write. With `enc.phi-ttl-min` or `-max` set, PHI
/// must expire; `enc.phi-ttl-default` is added where the command can take it.
fn ttl_verdict(asked: Asked) -> Verdict {
    let bounds = settings::phi_ttl();
    let must_expire = bounds.min > 0 || bounds.max > 0;
    let within = |ms: i64| {
        (bounds.min == 0 || ms >= bounds.min * 1000) && (bounds.max == 0 || ms <= bounds.max * 1000)
    };
    match asked {
        Asked::In(ms) if ms <= 0 || within(ms) => Verdict::Pass,
        Asked::In(_) => Verdict::Refuse(Refusal::Ttl),
        Asked::NoneAddable if bounds.default > 0 && within(bounds.default * 1000) => {
            Verdict::AppendPx(bounds.default * 1000)
        }
        Asked::NoneAddable | Asked::NoneFixed | Asked::Keep if must_expire => {
            Verdict::Refuse(Refusal::Ttl)
        }
        Asked::NoneAddable | Asked::NoneFixed | Asked::Keep => Verdict::Pass,
    }
}

fn check(f: &FilterCtx, shape: Shape, now: i64) -> Verdict {
    let argc = f.argc();
    let phi_key = |i: usize| i < argc && settings::is_phi_key(f.arg(i));
    let refuse = |r: Refusal| Verdict::Refuse(r);
    let value_ok = |key: usize, value: usize| {
        value < argc && authentic(f.arg(value), &Location::Value { key: f.arg(key) })
    };
    match shape {
        Shape::Set => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            if !value_ok(1, 2) {
                return refuse(Refusal::Plaintext);
            }
            let words: Vec<&[u8]> = (3..argc).map(|i| f.arg(i)).collect();
            // Read as the server reads them; what the guard cannot read is refused.
            let Ok(opts) = SetOptions::parse(&words, now) else {
                return refuse(Refusal::Options);
            };
            if opts.phi || opts.keyring.is_some() {
                return refuse(Refusal::Options);
            }
            ttl_verdict(match opts.expiry {
                Expiry::Clear => Asked::NoneAddable,
                Expiry::Keep => Asked::Keep,
                Expiry::In(ms) => Asked::In(ms),
                Expiry::At(at) => Asked::In(at - now),
            })
        }
        Shape::SetEx(seconds) => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            if !value_ok(1, 3) {
                return refuse(Refusal::Plaintext);
            }
            match parse_i64(f.arg(2)) {
                Ok(n) => ttl_verdict(Asked::In(if seconds { n.saturating_mul(1000) } else { n })),
                Err(_) => Verdict::Pass,
            }
        }
        Shape::ValueNoTtl(v) => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            if !value_ok(1, v) {
                return refuse(Refusal::Plaintext);
            }
            ttl_verdict(Asked::NoneFixed)
        }
        Shape::FieldValues => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            let key = f.arg(1);
            let mut all_plain = true;
            let fields_ok = argc > 3
                && (2..argc).step_by(2).all(|i| {
                    let plain = settings::is_plain_field(f.arg(i));
                    all_plain &= plain;
                    i + 1 < argc && (plain || sealed_field_ok(key, f.arg(i), f.arg(i + 1)))
                });
            if !fields_ok {
                return refuse(Refusal::Plaintext);
            }
            // Fields the operator declared plain are not PHI: writing only those leaves the
            // key's TTL to what holds its PHI (`ENC.HSETFIELD` gives the key the default TTL
            // or refuses), since the guard cannot see the TTL the key has.
            if all_plain {
                return Verdict::Pass;
            }
            ttl_verdict(Asked::NoneFixed)
        }
        Shape::KeyValues => {
            let phi: Vec<usize> = (1..argc).step_by(2).filter(|&k| phi_key(k)).collect();
            if phi.is_empty() {
                return Verdict::Pass;
            }
            if !phi.iter().all(|&k| value_ok(k, k + 1)) {
                return refuse(Refusal::Plaintext);
            }
            ttl_verdict(Asked::NoneFixed)
        }
        Shape::CountedKeyValues => {
            let keys = std::str::from_utf8(f.arg(1))
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
                .min(argc);
            refuse_if((0..keys).map(|i| 2 + 2 * i).any(phi_key), Refusal::Options)
        }
        Shape::Write => refuse_if(phi_key(1), Refusal::Plaintext),
        Shape::WriteAt2 => refuse_if(phi_key(2), Refusal::Plaintext),
        Shape::SortStore | Shape::GeoStore => {
            // Every STORE (and STOREDIST) counts: the server takes the last one, and a BY or
            // GET pattern may itself be spelled STORE.
            let stores_phi = (2..argc.saturating_sub(1)).any(|i| {
                let word = f.arg(i);
                (word.eq_ignore_ascii_case(b"STORE")
                    || (shape == Shape::GeoStore && word.eq_ignore_ascii_case(b"STOREDIST")))
                    && phi_key(i + 1)
            });
            refuse_if(
                stores_phi || (shape == Shape::GeoStore && phi_key(1)),
                Refusal::Plaintext,
            )
        }
        Shape::Move => refuse_if(phi_key(1) || phi_key(2), Refusal::Move),
        Shape::MoveDb => refuse_if(phi_key(1), Refusal::Move),
        Shape::Restore => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            if !(argc > 3 && dump_holds_envelope(f.arg(3), f.arg(1))) {
                return refuse(Refusal::Plaintext);
            }
            let Ok(ttl) = parse_i64(f.arg(2)) else {
                return Verdict::Pass;
            };
            let absolute = (4..argc).any(|i| f.arg(i).eq_ignore_ascii_case(b"ABSTTL"));
            let asked = match ttl {
                0 => Asked::NoneAddable,
                at if absolute => Asked::In(at - now),
                ms => Asked::In(ms),
            };
            match ttl_verdict(asked) {
                Verdict::AppendPx(ms) => Verdict::RestoreTtl(if absolute { now + ms } else { ms }),
                other => other,
            }
        }
        Shape::Ttl => {
            if !phi_key(1) {
                return Verdict::Pass;
            }
            match requested_ttl(f, now) {
                Ok(Some(asked)) => ttl_verdict(asked),
                Ok(None) => Verdict::Pass,
                Err(refusal) => refuse(refusal),
            }
        }
        Shape::FieldTtl => refuse_if(phi_key(1), Refusal::Ttl),
    }
}

fn refuse_if(condition: bool, refusal: Refusal) -> Verdict {
    if condition {
        Verdict::Refuse(refusal)
    } else {
        Verdict::Pass
    }
}

/// Whether `stored` is an envelope that opens under `location` with the keys held: a value
/// that only starts like one, or was sealed for another key or field, is plaintext here.
fn authentic(stored: &[u8], location: &Location<'_>) -> bool {
    looks_sealed(stored)
        && state::with(|s| Ok(s.keys.open(stored, location).is_ok())).unwrap_or(false)
}

/// The TTL an `EXPIRE`-family command, `PERSIST` or `GETEX` asks for; `None` when it leaves
/// the TTL alone or its number is malformed (the command itself then fails); options the guard
/// cannot read as the server would are refused.
fn requested_ttl(f: &FilterCtx, now: i64) -> Result<Option<Asked>, Refusal> {
    let command = f.arg(0).to_ascii_lowercase();
    let Ok(number) = parse_i64(f.arg(2)) else {
        return match command.as_slice() {
            b"persist" => Ok(Some(Asked::NoneFixed)),
            b"getex" => getex_ttl(f, now),
            _ => Ok(None),
        };
    };
    Ok(Some(Asked::In(match command.as_slice() {
        b"expire" => number.saturating_mul(1000),
        b"pexpire" => number,
        b"expireat" => number.saturating_mul(1000).saturating_sub(now),
        b"pexpireat" => number.saturating_sub(now),
        b"getex" => return getex_ttl(f, now),
        _ => return Ok(None),
    })))
}

/// `GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]`, read as the server reads it.
fn getex_ttl(f: &FilterCtx, now: i64) -> Result<Option<Asked>, Refusal> {
    let words: Vec<&[u8]> = (2..f.argc()).map(|i| f.arg(i)).collect();
    match parse_getex(&words, now) {
        Ok(None) => Ok(None),
        Ok(Some(Expiry::Clear)) => Ok(Some(Asked::NoneFixed)),
        Ok(Some(Expiry::In(ms))) => Ok(Some(Asked::In(ms))),
        Ok(Some(Expiry::At(at))) => Ok(Some(Asked::In(at - now))),
        Ok(Some(Expiry::Keep)) | Err(_) => Err(Refusal::Options),
    }
}

/// Whether a `DUMP` payload holds only envelopes that open under `key`: a string whose value
/// is one (RDB string encoding: type 0, then a length in the 6-, 14- or 32-bit form, then the
/// bytes), or a hash, at least one field, every value an envelope bound to `key` and its field
/// (what a slot migration moves with `RESTORE-ASKING`).
fn dump_holds_envelope(payload: &[u8], key: &[u8]) -> bool {
    if let Some(value) = redis_enc_core::policy::dump_string(payload) {
        return authentic(value, &Location::Value { key });
    }
    redis_enc_core::policy::dump_hash_all(payload, |field, value| field_ok(key, field, value))
}

/// Whether a hash field may be written under PHI key `key`: a field `enc.phi-plain-fields`
/// names, or one [`sealed_field_ok`] lets through.
fn field_ok(key: &[u8], field: &[u8], value: &[u8]) -> bool {
    settings::is_plain_field(field) || sealed_field_ok(key, field, value)
}

/// A blind-index token where a rule puts one, or an envelope that authenticates there.
fn sealed_field_ok(key: &[u8], field: &[u8], value: &[u8]) -> bool {
    blind::is_token_for(key, field, value) || authentic(value, &Location::HashField { key, field })
}

/// Server event: replication role changed.
pub fn on_role_change(_ctx: Ctx, subevent: u64) {
    set_replica(subevent == redis_module::raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA);
}

/// Server event: loading started or ended.
pub fn on_loading(_ctx: Ctx, subevent: u64) {
    use redis_module::raw::{
        REDISMODULE_SUBEVENT_LOADING_AOF_START, REDISMODULE_SUBEVENT_LOADING_RDB_START,
        REDISMODULE_SUBEVENT_LOADING_REPL_START,
    };
    set_loading(matches!(
        subevent,
        REDISMODULE_SUBEVENT_LOADING_RDB_START
            | REDISMODULE_SUBEVENT_LOADING_AOF_START
            | REDISMODULE_SUBEVENT_LOADING_REPL_START
    ));
}

#[cfg(test)]
mod tests;
