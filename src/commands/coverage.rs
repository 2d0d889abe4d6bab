//! `ENC.COVERAGE cursor [COUNT count]`: one `SCAN` step of the selected database, with the
//! values under `enc.phi-patterns` counted as sealed envelopes or plaintext, their keys' times to
//! live held against `enc.phi-ttl-*`, and the envelopes of every key counted by data key
//! version. It replies with counts only: no key name, field name or value leaves the server,
//! and nothing is opened (an envelope is recognised by its header, as `ENC.INSPECT` does). Keys
//! are read without being touched, so their LRU and LFU stay as they were.

use std::collections::HashMap;

use redis_enc_core::{envelope, Envelope, KeyId};

use crate::error::CmdError;
use crate::ffi::{Arg, Ctx, KeyType, Reply};
use crate::{blind, settings, state};

/// What one step counted.
#[derive(Default)]
struct Counts {
    keys: i64,
    phi_keys: i64,
    phi_values_sealed: i64,
    phi_values_plain: i64,
    /// Fields `enc.phi-plain-fields` names and blind-index tokens: plain by policy.
    phi_fields_plain_by_policy: i64,
    /// PHI keys of a type that cannot hold an envelope (lists, sets, ...).
    phi_keys_other_type: i64,
    phi_keys_without_ttl: i64,
    phi_keys_ttl_over_max: i64,
    /// Envelopes under keys outside `enc.phi-patterns`.
    values_sealed_elsewhere: i64,
    versions: HashMap<KeyId, i64>,
}

impl Counts {
    /// Counts `stored` as a value of a PHI key (`phi`) or of another key.
    fn value(&mut self, phi: bool, stored: &[u8]) {
        match Envelope::parse(stored) {
            Ok(e) => {
                *self.versions.entry(e.header().key_id).or_default() += 1;
                if phi {
                    self.phi_values_sealed += 1;
                } else {
                    self.values_sealed_elsewhere += 1;
                }
            }
            Err(_) if phi => self.phi_values_plain += 1,
            Err(_) => {}
        }
    }

    fn key(&mut self, ctx: Ctx, name: &[u8], now_ms: i64, max_ttl_secs: i64) {
        self.keys += 1;
        let phi = settings::is_phi_key(name);
        let owned = ctx.string(name);
        let arg = Arg::from_owned(&owned);
        let key = ctx.open_untouched(arg);
        let kind = key.key_type();
        if phi && kind != KeyType::Empty {
            self.phi_keys += 1;
            match key.expire_at() {
                None => self.phi_keys_without_ttl += 1,
                Some(at) if max_ttl_secs > 0 => {
                    let left_ms = at.saturating_sub(now_ms);
                    if left_ms > max_ttl_secs.saturating_mul(1000) {
                        self.phi_keys_ttl_over_max += 1;
                    }
                }
                Some(_) => {}
            }
        }
        match kind {
            // Shorter than an envelope can be: plaintext, counted without reading it (reading a
            // short string would make the server rewrite it, touching the key).
            KeyType::String if key.value_len() < envelope::OVERHEAD => {
                self.value(phi, b"");
            }
            KeyType::String => self.value(phi, key.string_value()),
            KeyType::Hash => {
                for (field, value) in key.hash_fields() {
                    if phi
                        && (settings::is_plain_field(&field)
                            || blind::is_token_for(name, &field, &value))
                    {
                        self.phi_fields_plain_by_policy += 1;
                    } else {
                        self.value(phi, &value);
                    }
                }
            }
            KeyType::Other if phi => {
                self.phi_keys_other_type += 1;
                self.phi_values_plain += 1;
            }
            KeyType::Other | KeyType::Empty => {}
        }
    }
}

pub fn coverage(ctx: Ctx, args: &[Arg]) -> Result<(), CmdError> {
    let count = match args {
        [_, _] => None,
        [_, _, option, count] if option.bytes().eq_ignore_ascii_case(b"COUNT") => {
            let n = std::str::from_utf8(count.bytes())
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or(CmdError::NotInteger)?;
            if n == 0 {
                return Err(CmdError::Syntax);
            }
            Some([*option, *count])
        }
        [_, _, _, _] => return Err(CmdError::Syntax),
        _ => return Err(CmdError::WrongArity("enc.coverage")),
    };
    let cursor = args[1];
    if std::str::from_utf8(cursor.bytes())
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .is_none()
    {
        return Err(CmdError::Server("ERR invalid cursor".into()));
    }
    let reply = match count {
        Some([option, n]) => ctx.call(c"SCAN", c"", &[cursor, option, n]),
        None => ctx.call(c"SCAN", c"", &[cursor]),
    };
    if reply.is_error() {
        return Err(CmdError::Server(reply.error_text()));
    }
    let Reply::Array(mut parts) = reply.read() else {
        return Err(CmdError::Server("ERR SCAN gave no array".into()));
    };
    let names = match parts.pop() {
        Some(Reply::Array(names)) if parts.len() == 1 => names,
        _ => return Err(CmdError::Server("ERR SCAN gave no key names".into())),
    };
    let next = parts.pop().map(|c| c.bytes().to_vec()).unwrap_or_default();
    let mut counts = Counts::default();
    let now_ms = crate::clock::now_ms();
    let max_ttl = settings::phi_ttl().max;
    for name in &names {
        counts.key(ctx, name.bytes(), now_ms, max_ttl);
    }
    let mut versions: Vec<(String, u16, i64)> = state::with(|s| {
        Ok(counts
            .versions
            .iter()
            .map(|(id, n)| (s.keys.label_of(id.keyring), id.version.0, *n))
            .collect())
    })
    .unwrap_or_default();
    versions.sort();
    ctx.reply_map(11);
    ctx.reply_bulk(b"cursor");
    ctx.reply_bulk(&next);
    for (name, n) in [
        (&b"keys"[..], counts.keys),
        (b"phi-keys", counts.phi_keys),
        (b"phi-values-sealed", counts.phi_values_sealed),
        (b"phi-values-plain", counts.phi_values_plain),
        (
            b"phi-fields-plain-by-policy",
            counts.phi_fields_plain_by_policy,
        ),
        (b"phi-keys-other-type", counts.phi_keys_other_type),
        (b"phi-keys-without-ttl", counts.phi_keys_without_ttl),
        (b"phi-keys-ttl-over-max", counts.phi_keys_ttl_over_max),
        (b"values-sealed-elsewhere", counts.values_sealed_elsewhere),
    ] {
        ctx.reply_field_int(name, n);
    }
    ctx.reply_bulk(b"versions");
    ctx.reply_array(versions.len());
    for (ring, version, n) in versions {
        ctx.reply_array(3);
        ctx.reply_bulk(ring.as_bytes());
        ctx.reply_int(i64::from(version));
        ctx.reply_int(n);
    }
    Ok(())
}
