//! The plain commands the guard knows: where each keeps its keys and values, and its arity.

/// How a plain command touches keys, for the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// `SET key value [options]`.
    Set,
    /// `SETEX key seconds value` (`true`) and `PSETEX key ms value`.
    SetEx(bool),
    /// Writes the value at this position under the key at 1, without a time to live
    /// (`SETNX`, `GETSET`).
    ValueNoTtl(usize),
    /// `HSET key f v [f v ...]`, `HMSET`, `HSETNX key f v`: field/value pairs from 2.
    FieldValues,
    /// `MSET k v [k v ...]`, `MSETNX`: keys from 1, values from 2, step 2.
    KeyValues,
    /// `MSETEX numkeys k v [k v ...] [options]` (Valkey 9.1): refused when a key is PHI
    /// (write PHI with `ENC.MSET`).
    CountedKeyValues,
    /// Any other write to the key at 1 (lists, sets, sorted sets, streams, counters...).
    Write,
    /// Writes to the key at 2 (`BITOP op dest ...`, `XGROUP CREATE key ...`).
    WriteAt2,
    /// `SORT key ... STORE dest`.
    SortStore,
    /// `GEORADIUS[BYMEMBER] key ... [STORE|STOREDIST dest]`: reads the key at 1.
    GeoStore,
    /// Moves or copies the key at 1 to the key at 2.
    Move,
    /// `MOVE key db`.
    MoveDb,
    /// `RESTORE key ttl payload [REPLACE] [ABSTTL] ...`.
    Restore,
    /// Sets or clears the TTL of the key at 1.
    Ttl,
    /// Sets, clears or writes with hash-field TTLs (`HEXPIRE`, `HPERSIST`, `HSETEX`, ...):
    /// the key's own TTL bounds PHI; fields are sealed with `ENC.HSETFIELD`.
    FieldTtl,
}

/// The guard's table: how each plain write touches keys, and its arity (as `COMMAND INFO`
/// gives it: negative means "at least"). A command whose argument count breaks its arity is
/// left for the server to reject.
pub(super) fn shape(command: &[u8]) -> Option<(Shape, i32)> {
    let mut lower = [0u8; 24];
    if command.len() > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(command) {
        *d = s.to_ascii_lowercase();
    }
    let write = Shape::Write;
    Some(match &lower[..command.len()] {
        b"set" => (Shape::Set, -3),
        b"setex" => (Shape::SetEx(true), 4),
        b"psetex" => (Shape::SetEx(false), 4),
        b"setnx" | b"getset" => (Shape::ValueNoTtl(2), 3),
        b"hset" | b"hmset" => (Shape::FieldValues, -4),
        b"hsetnx" => (Shape::FieldValues, 4),
        b"mset" | b"msetnx" => (Shape::KeyValues, -3),
        b"msetex" => (Shape::CountedKeyValues, -4),
        // Redis 8's vector sets: elements and their attributes are plaintext.
        b"vadd" => (write, -4),
        b"vsetattr" => (write, 4),
        // Module commands that store text under their key: RediSearch's suggestions, and
        // RedisJSON's writes (the query engine and JSON of Redis 8 and Redis Stack).
        b"ft.sugadd" => (write, -4),
        b"json.set" | b"json.merge" | b"json.arrinsert" => (write, -4),
        b"json.arrappend" | b"json.strappend" => (write, -3),
        b"json.numincrby" | b"json.nummultby" => (write, 4),
        b"incr" | b"decr" => (write, 2),
        b"append" | b"incrby" | b"incrbyfloat" | b"decrby" => (write, 3),
        b"setrange" | b"setbit" | b"hincrby" | b"hincrbyfloat" | b"lset" | b"zincrby" => (write, 4),
        b"bitfield" | b"pfadd" | b"pfmerge" => (write, -2),
        b"lpush" | b"rpush" | b"lpushx" | b"rpushx" | b"sadd" | b"sunionstore" | b"sinterstore"
        | b"sdiffstore" | b"xsetid" => (write, -3),
        b"zadd" | b"zunionstore" | b"zinterstore" | b"zdiffstore" => (write, -4),
        b"linsert" => (write, 5),
        b"xadd" | b"geoadd" | b"zrangestore" => (write, -5),
        b"geosearchstore" => (write, -8),
        b"bitop" => (Shape::WriteAt2, -4),
        // XGROUP CREATE key ... MKSTREAM makes a stream; every subcommand names its key at 2.
        b"xgroup" => (Shape::WriteAt2, -2),
        b"sort" => (Shape::SortStore, -2),
        b"georadius" => (Shape::GeoStore, -6),
        b"georadiusbymember" => (Shape::GeoStore, -5),
        b"rename" | b"renamenx" | b"rpoplpush" | b"move" => {
            let shape = if command.eq_ignore_ascii_case(b"move") {
                Shape::MoveDb
            } else {
                Shape::Move
            };
            (shape, 3)
        }
        b"copy" => (Shape::Move, -3),
        b"smove" | b"brpoplpush" => (Shape::Move, 4),
        b"lmove" => (Shape::Move, 5),
        b"blmove" => (Shape::Move, 6),
        b"restore" | b"restore-asking" => (Shape::Restore, -4),
        b"expire" | b"pexpire" | b"expireat" | b"pexpireat" => (Shape::Ttl, -3),
        b"persist" => (Shape::Ttl, 2),
        b"getex" => (Shape::Ttl, -2),
        b"hexpire" | b"hpexpire" | b"hexpireat" | b"hpexpireat" | b"hsetex" => {
            (Shape::FieldTtl, -6)
        }
        b"hpersist" | b"hgetex" => (Shape::FieldTtl, -5),
        _ => return None,
    })
}

/// Whether `argc` arguments (the command name included) satisfy `arity`.
pub(super) fn arity_ok(argc: usize, arity: i32) -> bool {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}
