//! Denials the server makes by itself reach the audit log: a user without permission for an
//! `ENC.*` command, or for a PHI key, is stopped by the server's ACL before the module runs.
//! `ACL LOG` is read once a second and, while the audit log is on, each new denial of a PHI key
//! (by name) or of an `ENC.*` command is recorded as `denied`, with the user and the client
//! the server logged. (The module's own denials are recorded when they happen.) `ACL LOG`
//! keeps `acllog-max-len` entries (128 by default): more distinct denials than that within a
//! second are not all seen; when that may have happened, an `acl-log-overflow` record says so
//! (from the gap in the entry ids where the server numbers them, Redis 7.2+; elsewhere when
//! every entry read before is gone).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::audit::{self, Access};
use crate::ffi::{Caller, Ctx, Reply, Timer};
use crate::settings;

/// How often `ACL LOG` is read, in milliseconds.
const PERIOD_MS: i64 = 1000;

/// The count of each `ACL LOG` entry when last read; `None` until the module starts reading.
static SEEN: Mutex<Option<HashMap<Vec<u8>, i64>>> = Mutex::new(None);
/// The highest entry id seen (Redis 7.2+ numbers entries).
static LAST_ID: Mutex<Option<i64>> = Mutex::new(None);

/// Starts reading `ACL LOG` (at load). Every entry is new at first: at a server's start the
/// log is empty, and a module loaded later records the denials the server kept from before.
pub fn start(ctx: Ctx) {
    *SEEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    ctx.start_timer(PERIOD_MS, &READ);
}

/// Reads the log every [`PERIOD_MS`].
static READ: Timer = Timer {
    name: "ACL LOG reading",
    run: |ctx| {
        poll(ctx);
        ctx.start_timer(PERIOD_MS, &READ);
    },
};

fn poll(ctx: Ctx) {
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    // The counts are followed while the audit log is off too, so that turning it on records
    // the denials from then on, not the old ones.
    let recording = audit::enabled();
    let log = ctx.string(b"LOG");
    let Reply::Array(entries) = ctx.call(c"ACL", c"", &[log.arg()]).read() else {
        return;
    };
    let identities: Vec<Vec<u8>> = entries.iter().map(identity).collect();
    let all_new = seen
        .as_ref()
        .is_some_and(|s| !s.is_empty() && identities.iter().all(|i| !s.contains_key(i)));
    note_overflow(&entries, all_new, recording);
    let mut counts = HashMap::with_capacity(entries.len());
    for (entry, identity) in entries.iter().zip(identities) {
        let count = entry.field(b"count").and_then(Reply::int).unwrap_or(0);
        if let Some(before) = seen
            .as_ref()
            .map(|s| s.get(&identity).copied().unwrap_or(0))
        {
            // A count below the last one is an entry that was dropped and made again.
            let new = if count >= before {
                count - before
            } else {
                count
            };
            if new > 0 && recording {
                record(entry, new);
            }
        }
        counts.insert(identity, count);
    }
    *seen = Some(counts);
}

/// What identifies an `ACL LOG` entry across reads: its id where the server numbers entries
/// (Redis 7.2+); before, its reason, context, object and user.
fn identity(entry: &Reply) -> Vec<u8> {
    let text = |name: &[u8]| entry.field(name).map_or(&[][..], Reply::bytes);
    match entry.field(b"entry-id").and_then(Reply::int) {
        Some(id) => id.to_be_bytes().to_vec(),
        None => [
            text(b"reason"),
            text(b"context"),
            text(b"object"),
            text(b"username"),
        ]
        .join(&0u8),
    }
}

/// Records that denials may have been pushed out of `ACL LOG` before they were read.
fn note_overflow(entries: &[Reply], all_new: bool, recording: bool) {
    let ids: Vec<i64> = entries
        .iter()
        .filter_map(|e| e.field(b"entry-id").and_then(Reply::int))
        .collect();
    let mut last_id = LAST_ID.lock().unwrap_or_else(|p| p.into_inner());
    let lost = if ids.is_empty() {
        if !recording {
            return;
        }
        // Without ids: every entry seen before is gone (pushed out, or ACL LOG RESET).
        all_new.then_some(None)
    } else {
        let newest = ids.iter().copied().max();
        let oldest_new = ids
            .iter()
            .copied()
            .filter(|id| last_id.is_none_or(|l| *id > l))
            .min();
        let gap = match (*last_id, oldest_new) {
            (Some(last), Some(first)) if first > last + 1 => Some(Some(first - last - 1)),
            _ => None,
        };
        if newest.is_some() {
            *last_id = newest.max(*last_id);
        }
        gap
    };
    if let (Some(count), true) = (lost, recording) {
        audit::record_server(
            "acl-log-overflow",
            Some(match count {
                Some(n) => format!(
                    "{n} ACL LOG entries were pushed out before they were read (raise acllog-max-len)"
                ),
                None => "every ACL LOG entry read before is gone (pushed out by newer ones, or ACL LOG \
                         RESET): denials may be missing (raise acllog-max-len)"
                    .to_owned(),
            }),
        );
    }
}

/// Records one `ACL LOG` entry's new denials, if they concern PHI.
fn record(entry: &Reply, times: i64) {
    let text = |name: &[u8]| entry.field(name).map_or(&[][..], Reply::bytes);
    let (reason, context, object) = (text(b"reason"), text(b"context"), text(b"object"));
    let phi_key = reason == b"key" && settings::is_phi_key(object);
    let enc_command = reason == b"command" && object.starts_with(b"enc.");
    if context == b"module" || !(phi_key || enc_command) {
        return;
    }
    let info = String::from_utf8_lossy(text(b"client-info")).into_owned();
    let field = |name: &str| {
        info.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let caller = Caller {
        user: String::from_utf8_lossy(text(b"username")).into_owned(),
        client_id: field("id").parse().unwrap_or(0),
        addr: field("addr"),
    };
    let command = if enc_command {
        String::from_utf8_lossy(object).to_ascii_uppercase()
    } else {
        field("cmd").to_ascii_uppercase()
    };
    audit::record_as(
        caller,
        Access {
            event: "denied",
            command: &command,
            key: phi_key.then_some(object),
            keyring: None,
            version: None,
            outcome: "denied",
            detail: Some(format!(
                "the server's ACL: no permission for the {} ({} time{}, {})",
                if phi_key { "key" } else { "command" },
                times,
                if times == 1 { "" } else { "s" },
                String::from_utf8_lossy(context)
            )),
        },
    );
}
