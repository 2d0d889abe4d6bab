//! The plaintext guard: with `enc.phi-guard yes`, plain commands that would put plaintext
//! under a key matching `enc.phi-patterns`, move sealed values where they cannot open, or
//! leave a PHI key's time to live outside the bounds are refused.
//!
//! A command filter sees every command (scripts included) before it runs. For commands on keys
//! that match no pattern, the cost is one lookup in a small table of command names, made only
//! while `enc.phi-patterns` is set. A refused command is rewritten to `ENC._REFUSED <reason>`,
//! which answers the error (it is flagged `no-auth` so that its own ACL never hides the reason).
//!
//! The guard acts on primaries only: a replica applies what its primary sends, and AOF loading
//! replays what was accepted, so neither is filtered (DESIGN.md: the guard must let the primary's
//! ciphertext writes through on replicas and during AOF load).

use std::sync::atomic::{AtomicBool, Ordering};

use redis_enc_core::envelope::looks_sealed;

use crate::config;
use crate::entry::run_callback;
use crate::error::CmdError;
use crate::phi;
use crate::rm::{Arg, Ctx, FilterCtx};
use crate::setopts::parse_i64;

static IS_REPLICA: AtomicBool = AtomicBool::new(false);
static LOADING: AtomicBool = AtomicBool::new(false);

pub fn set_replica(value: bool) {
    IS_REPLICA.store(value, Ordering::SeqCst);
}

pub fn set_loading(value: bool) {
    LOADING.store(value, Ordering::SeqCst);
}

/// Why a command was refused; the code travels as the argument of `ENC._REFUSED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Plaintext,
    Move,
    Ttl,
}

impl Refusal {
    fn code(self) -> &'static [u8] {
        match self {
            Refusal::Plaintext => b"plaintext",
            Refusal::Move => b"move",
            Refusal::Ttl => b"ttl",
        }
    }

    fn message(code: &[u8]) -> &'static str {
        match code {
            b"plaintext" => "ERR enc.phi-guard: this would store plaintext under a PHI key; write it with ENC.SET, \
                             ENC.MSET or ENC.HSETFIELD",
            b"move" => "ERR enc.phi-guard: sealed values are bound to their key name; use ENC.RENAME or ENC.COPY \
                        (MOVE between databases is not supported for PHI keys)",
            b"ttl" => "ERR enc.phi-guard: this would leave a PHI key's time to live outside enc.phi-ttl-min / \
                       enc.phi-ttl-max",
            _ => "ERR enc.phi-guard refused the command",
        }
    }
}

/// How a plain command touches keys, for the guard.
#[derive(Clone, Copy)]
enum Shape {
    /// Writes a value under the key at 1; the values at these positions (or every position
    /// from the first, stepping by two) may be envelopes.
    ValueAt(usize),
    /// `HSET key f v [f v ...]` and `HMSET`: every value from 3, step 2.
    FieldValues,
    /// `MSET k v [k v ...]`, `MSETNX`: keys from 1, values from 2, step 2.
    KeyValues,
    /// Any other write to the key at 1 (lists, sets, sorted sets, streams, counters...).
    Write,
    /// Writes to the key at 2 (`BITOP op dest ...`).
    WriteAt2,
    /// Moves or copies the key at 1 to the key at 2.
    Move,
    /// `MOVE key db`.
    MoveDb,
    /// `RESTORE key ttl payload`.
    Restore,
    /// Sets or clears the TTL of the key at 1.
    Ttl,
}

fn shape(command: &[u8]) -> Option<Shape> {
    let mut lower = [0u8; 24];
    if command.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(command) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &lower[..command.len()] {
        b"set" | b"setnx" | b"getset" => Shape::ValueAt(2),
        b"setex" | b"psetex" => Shape::ValueAt(3),
        b"hset" | b"hmset" => Shape::FieldValues,
        b"hsetnx" => Shape::ValueAt(3),
        b"mset" | b"msetnx" => Shape::KeyValues,
        b"append" | b"setrange" | b"incr" | b"incrby" | b"incrbyfloat" | b"decr" | b"decrby"
        | b"setbit" | b"bitfield" | b"hincrby" | b"hincrbyfloat" | b"lpush" | b"rpush"
        | b"lpushx" | b"rpushx" | b"linsert" | b"lset" | b"sadd" | b"zadd" | b"zincrby"
        | b"xadd" | b"geoadd" | b"pfadd" | b"pfmerge" | b"sunionstore" | b"sinterstore"
        | b"sdiffstore" | b"zunionstore" | b"zinterstore" | b"zdiffstore" | b"zrangestore"
        | b"geosearchstore" | b"xsetid" => Shape::Write,
        b"bitop" => Shape::WriteAt2,
        b"rename" | b"renamenx" | b"copy" | b"smove" | b"lmove" | b"rpoplpush" | b"blmove"
        | b"brpoplpush" => Shape::Move,
        b"move" => Shape::MoveDb,
        b"restore" | b"restore-asking" => Shape::Restore,
        b"expire" | b"pexpire" | b"expireat" | b"pexpireat" | b"persist" | b"getex" => Shape::Ttl,
        _ => return None,
    })
}

/// The command filter.
pub extern "C" fn filter(fctx: *mut redis_module::raw::RedisModuleCommandFilterCtx) {
    run_callback("command filter", (), || {
        if !config::phi_guard() || !config::any_phi_patterns() {
            return;
        }
        if IS_REPLICA.load(Ordering::Relaxed) || LOADING.load(Ordering::Relaxed) {
            return;
        }
        let f = FilterCtx::new(fctx);
        let Some(shape) = shape(f.arg(0)) else { return };
        if let Some(refusal) = check(&f, shape) {
            f.replace_all(&[b"ENC._REFUSED", refusal.code()]);
        }
    });
}

fn check(f: &FilterCtx, shape: Shape) -> Option<Refusal> {
    let argc = f.argc();
    let phi_key = |i: usize| i < argc && config::is_phi_key(f.arg(i));
    let sealed_from = |first: usize| (first..argc).step_by(2).all(|i| looks_sealed(f.arg(i)));
    match shape {
        Shape::ValueAt(v) => {
            (phi_key(1) && !(v < argc && looks_sealed(f.arg(v)))).then_some(Refusal::Plaintext)
        }
        Shape::FieldValues => (phi_key(1) && !sealed_from(3)).then_some(Refusal::Plaintext),
        Shape::KeyValues => (1..argc)
            .step_by(2)
            .any(|k| phi_key(k) && !(k + 1 < argc && looks_sealed(f.arg(k + 1))))
            .then_some(Refusal::Plaintext),
        Shape::Write => phi_key(1).then_some(Refusal::Plaintext),
        Shape::WriteAt2 => phi_key(2).then_some(Refusal::Plaintext),
        Shape::Move => (phi_key(1) || phi_key(2)).then_some(Refusal::Move),
        Shape::MoveDb => phi_key(1).then_some(Refusal::Move),
        Shape::Restore => (phi_key(1) && !(argc > 3 && dump_holds_envelope(f.arg(3))))
            .then_some(Refusal::Plaintext),
        Shape::Ttl => (phi_key(1) && ttl_refused(f)).then_some(Refusal::Ttl),
    }
}

/// Whether the TTL the command asks for breaks the PHI bounds.
fn ttl_refused(f: &FilterCtx) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let command = f.arg(0).to_ascii_lowercase();
    let number = |i: usize| {
        if i < f.argc() {
            parse_i64(f.arg(i)).ok()
        } else {
            None
        }
    };
    let ttl_ms = match command.as_slice() {
        b"persist" => None,
        b"expire" => number(2).map(|s| s.saturating_mul(1000)),
        b"pexpire" => number(2),
        b"expireat" => number(2).map(|s| s.saturating_mul(1000).saturating_sub(now)),
        b"pexpireat" => number(2).map(|ms| ms.saturating_sub(now)),
        b"getex" => {
            // GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]; without an option it changes nothing.
            if f.argc() < 3 {
                return false;
            }
            let option = f.arg(2).to_ascii_lowercase();
            match option.as_slice() {
                b"ex" => number(3).map(|s| s.saturating_mul(1000)),
                b"px" => number(3),
                b"exat" => number(3).map(|s| s.saturating_mul(1000).saturating_sub(now)),
                b"pxat" => number(3).map(|ms| ms.saturating_sub(now)),
                b"persist" => None,
                _ => return false,
            }
        }
        _ => return false,
    };
    // A malformed number is left for the command itself to reject; a TTL in the past deletes.
    if matches!(ttl_ms, Some(ms) if ms <= 0) {
        return false;
    }
    if command != b"persist" && command != b"getex" && ttl_ms.is_none() {
        return false;
    }
    phi::ttl_breaks_bounds(ttl_ms)
}

/// Whether a `DUMP` payload is a string whose value is an envelope (RDB string encoding: type
/// 0, then a length in the 6-, 14- or 32-bit form, then the bytes).
fn dump_holds_envelope(payload: &[u8]) -> bool {
    let [0, first, rest @ ..] = payload else {
        return false;
    };
    let (len, body) = match first >> 6 {
        0 => (usize::from(first & 0x3f), rest),
        1 => match rest {
            [b, body @ ..] => ((usize::from(first & 0x3f) << 8) | usize::from(*b), body),
            _ => return false,
        },
        2 if *first == 0x80 && rest.len() >= 4 => (
            u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize,
            &rest[4..],
        ),
        _ => return false,
    };
    body.len() >= len && looks_sealed(&body[..len])
}

/// `ENC._REFUSED code`: the reply of a command the guard refused.
pub fn refused(_ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    let code = args.get(1).map_or(&b""[..], Arg::bytes);
    Err(CmdError::Server(Refusal::message(code).to_owned()))
}

/// Server event: replication role changed.
pub extern "C" fn on_role_change(
    _ctx: *mut redis_module::raw::RedisModuleCtx,
    _event: redis_module::raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::ffi::c_void,
) {
    run_callback("role change", (), || {
        set_replica(subevent == redis_module::raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA);
    });
}

/// Server event: loading started or ended.
pub extern "C" fn on_loading(
    _ctx: *mut redis_module::raw::RedisModuleCtx,
    _event: redis_module::raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::ffi::c_void,
) {
    run_callback("loading", (), || {
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
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_payloads_are_read() {
        let mut envelope = vec![0xe5, 0x01];
        envelope.extend([7u8; 60]);
        let mut payload = vec![0, envelope.len() as u8];
        payload.extend(&envelope);
        payload.extend([10, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(dump_holds_envelope(&payload));
        let mut long = vec![0, 0x40 | 1, 4];
        long.extend([0xe5, 0x01]);
        long.extend([9u8; 258]);
        assert!(dump_holds_envelope(&long));
        assert!(!dump_holds_envelope(&[0, 5, b'h', b'e', b'l', b'l', b'o']));
        assert!(!dump_holds_envelope(&[4, 1, 2]), "hashes are not inspected");
        assert!(!dump_holds_envelope(&[0, 60, 0xe5]), "truncated");
    }

    #[test]
    fn command_table_is_case_insensitive() {
        assert!(matches!(shape(b"HsEt"), Some(Shape::FieldValues)));
        assert!(shape(b"get").is_none());
        assert!(shape(b"a-command-name-longer-than-the-buffer").is_none());
    }
}
