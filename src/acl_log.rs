//! Denials the server makes by itself reach the audit log: a user without permission for an
//! `ENC.*` command, or for a PHI key, is stopped by the server's ACL before the module runs.
//! `ACL LOG` is read once a second and, while the audit log is on, each new denial of a PHI key
//! (by name) or of an `ENC.*` command is recorded as `denied`, with the user and the client
//! the server logged. (The module's own denials are recorded when they happen.) `ACL LOG`
//! keeps `acllog-max-len` entries (128 by default): more distinct denials than that within a
//! second are not all seen.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::audit::{self, Access};
use crate::config;
use crate::entry::run_callback;
use crate::rm::{Caller, Ctx, Reply};

/// How often `ACL LOG` is read, in milliseconds.
const PERIOD_MS: i64 = 1000;

/// The count of each `ACL LOG` entry when last read; `None` until the module starts reading.
static SEEN: Mutex<Option<HashMap<Vec<u8>, i64>>> = Mutex::new(None);

/// Starts reading `ACL LOG` (at load). Every entry is new at first: at a server's start the
/// log is empty, and a module loaded later records the denials the server kept from before.
pub fn start(ctx: Ctx) {
    *SEEN.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    ctx.start_timer(PERIOD_MS, Some(on_timer));
}

extern "C" fn on_timer(ctx: *mut redis_module::raw::RedisModuleCtx, _: *mut std::ffi::c_void) {
    run_callback("ACL LOG reading", (), || {
        let ctx = Ctx::new(ctx);
        poll(ctx);
        ctx.start_timer(PERIOD_MS, Some(on_timer));
    });
}

fn poll(ctx: Ctx) {
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    // The counts are followed while the audit log is off too, so that turning it on records
    // the denials from then on, not the old ones.
    let recording = audit::enabled();
    let log = ctx.string(b"LOG");
    let Reply::Array(entries) = ctx.call(c"ACL", c"", &[log.as_ptr()]).read() else {
        return;
    };
    let mut counts = HashMap::with_capacity(entries.len());
    for entry in &entries {
        let text = |name: &[u8]| entry.field(name).map_or(&[][..], Reply::bytes);
        let count = entry.field(b"count").and_then(Reply::int).unwrap_or(0);
        // Redis 7.2+ numbers entries; before, an entry is its reason, context, object and user.
        let identity = match entry.field(b"entry-id").and_then(Reply::int) {
            Some(id) => id.to_be_bytes().to_vec(),
            None => [
                text(b"reason"),
                text(b"context"),
                text(b"object"),
                text(b"username"),
            ]
            .join(&0u8),
        };
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

/// Records one `ACL LOG` entry's new denials, if they concern PHI.
fn record(entry: &Reply, times: i64) {
    let text = |name: &[u8]| entry.field(name).map_or(&[][..], Reply::bytes);
    let (reason, context, object) = (text(b"reason"), text(b"context"), text(b"object"));
    let phi_key = reason == b"key" && config::is_phi_key(object);
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
