//! The `ENC.*` commands: their table (flags, key specs, documentation) and what they share.
//!
//! Writing commands redact their plaintext arguments first thing, then validate everything,
//! then write through the low-level key API and replicate the resulting ciphertext write
//! (`SET`, `MSET`, `HSET`, ...), never the `ENC.*` command with its plaintext.

mod coverage;
mod dualcontrol;
mod hash;
mod inspect;
mod keyring;
mod policy_config;
mod probes;
mod reencrypt;
mod relocate;
mod search;
mod string;
mod subcommands;
mod table;

pub use table::register;

use std::cell::RefCell;

use redis_enc_core::{Envelope, Error as CoreError, Location, Plaintext};

use crate::error::CmdError;
use crate::ffi::Arg;
use crate::ffi::Ctx;
use crate::phi::{self, Op};
use crate::settings;
use crate::state::State;
use crate::stats;

/// Who reads a value, for the PHI policy and the audit log.
#[derive(Clone, Copy)]
struct Reader<'a> {
    ctx: Ctx<'a>,
    key: Arg<'a>,
    command: &'a str,
    reads: &'a PhiReads,
}

/// The PHI reads of one command. They are recorded once the command has opened every value
/// it returns: a command that fails returns nothing, and records nothing as read.
#[derive(Default)]
struct PhiReads(RefCell<Vec<PhiRead>>);

/// One PHI value read: its key, keyring and key version.
type PhiRead = (Vec<u8>, Option<String>, Option<u16>);

impl PhiReads {
    fn push(&self, key: &[u8], keyring: Option<String>, version: Option<u16>) {
        self.0.borrow_mut().push((key.to_vec(), keyring, version));
    }

    /// Writes a `phi-read` record for each value read.
    fn record(&self, ctx: Ctx, command: &str) {
        for (key, keyring, version) in self.0.take() {
            phi::record(ctx, Op::Read, &key, command, keyring, version);
        }
    }
}

/// Opens a stored value for a reader. The PHI read permission is checked before anything is
/// decrypted: PHI by key name, or by the envelope's flag (read from the header, which the
/// decryption then authenticates, so a cleared flag makes the value fail to open). Values
/// that are not envelopes are returned as they are only when `enc.allow-plaintext-read` is on.
fn open_for_reader(
    reader: Reader<'_>,
    state: &State,
    stored: &[u8],
    location: &Location<'_>,
) -> Result<Plaintext, CmdError> {
    let Reader {
        ctx,
        key,
        command,
        reads,
    } = reader;
    match Envelope::parse(stored) {
        Ok(envelope) => {
            let header = *envelope.header();
            let phi = phi::is_phi(header.flags.phi, key.bytes());
            if phi {
                phi::authorize(ctx, Op::Read, key, command)?;
            }
            let plaintext = state.keys.open_envelope(&envelope, location)?;
            if phi {
                let keyring = state
                    .keys
                    .name_of(header.key_id.keyring)
                    .map(|n| n.as_str().to_owned());
                reads.push(key.bytes(), keyring, Some(header.key_id.version.0));
            }
            stats::count_opened(1);
            Ok(plaintext)
        }
        Err(CoreError::NotAnEnvelope) if settings::allow_plaintext_read() => {
            if phi::is_phi(false, key.bytes()) {
                phi::authorize(ctx, Op::Read, key, command)?;
                reads.push(key.bytes(), None, None);
            }
            stats::count_plaintext_read();
            Ok(Plaintext::from(stored))
        }
        Err(e) => Err(e.into()),
    }
}

/// Replies with an array of values, nil where a value is absent (as MGET and HMGET do).
fn reply_values(ctx: Ctx, values: Vec<Option<Plaintext>>) {
    ctx.reply_array(values.len());
    for value in values {
        match value {
            Some(v) => ctx.reply_bulk(&v),
            None => ctx.reply_null(),
        }
    }
}
