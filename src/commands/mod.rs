//! The `ENC.*` commands: their table (flags, key specs, documentation) and what they share.
//!
//! Writing commands redact their plaintext arguments first thing, then validate everything,
//! then write through the low-level key API and replicate the resulting ciphertext write
//! (`SET`, `MSET`, `HSET`, ...), never the `ENC.*` command with its plaintext.

mod hash;
mod inspect;
mod keyring;
mod policy_config;
mod probes;
mod reencrypt;
mod relocate;
mod string;

use std::cell::RefCell;

use redis_enc_core::{Envelope, Error as CoreError, Location, Plaintext};

use crate::command_entry;
use crate::error::CmdError;
use crate::ffi::command_info::{ArgDoc, CommandDoc, KeySpec, KeyUse};
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

fn key_spec(key_use: KeyUse, first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec {
        key_use,
        first,
        last,
        step,
    }
}

fn one_key(key_use: KeyUse) -> Vec<KeySpec> {
    vec![key_spec(key_use, 1, 0, 1)]
}

fn set_doc() -> CommandDoc {
    CommandDoc {
        summary:
            "Seals a value and stores it in a string key; options mean what they mean for SET.",
        complexity: "O(N) where N is the length of the value",
        since: "0.1.0",
        arity: -3,
        keys: one_key(KeyUse::Overwrite),
        args: vec![
            ArgDoc::key("key", 0),
            ArgDoc::string("value"),
            ArgDoc::one_of("condition", vec![ArgDoc::token("NX"), ArgDoc::token("XX")]).optional(),
            ArgDoc::token("GET").optional(),
            ArgDoc::one_of(
                "expiration",
                vec![
                    ArgDoc::integer("seconds").after("EX"),
                    ArgDoc::integer("milliseconds").after("PX"),
                    ArgDoc::unix_time("unix-time-seconds").after("EXAT"),
                    ArgDoc::unix_time("unix-time-milliseconds").after("PXAT"),
                    ArgDoc::token("KEEPTTL"),
                ],
            )
            .optional(),
            ArgDoc::token("PHI").optional(),
            ArgDoc::string("keyring").after("KEYRING").optional(),
        ],
    }
}

/// One row of the command table.
struct Command {
    name: &'static str,
    handler: redis_module::raw::RedisModuleCmdFunc,
    flags: &'static str,
    /// ACL categories, set on servers where modules can set them (Redis 7.2+, Valkey).
    acl: &'static str,
    doc: CommandDoc,
}

fn table() -> Vec<Command> {
    let read_one = one_key(KeyUse::Read);
    vec![
        Command {
            name: "enc._refused",
            handler: command_entry!("enc._refused", crate::guard::refused),
            flags: "fast",
            // Every category a plain write can be granted by, so that a user who may run the
            // refused command sees the guard's reason (it checks that permission itself).
            acl: "keyspace read write string hash list set sortedset stream bitmap hyperloglog geo fast",
            doc: CommandDoc {
                summary: "The reply of a plain command that enc.phi-guard refused; not for direct use.",
                complexity: "O(1)",
                since: "0.1.0",
                arity: -1,
                keys: Vec::new(),
                args: vec![
                    ArgDoc::string("reason").optional(),
                    ArgDoc::string("token").optional(),
                    ArgDoc::string("command").optional(),
                    ArgDoc::string("arg").optional().multiple(),
                ],
            },
        },
        Command {
            name: "enc._config",
            handler: command_entry!("enc._config", policy_config::set),
            flags: "admin deny-script allow-loading allow-stale",
            acl: "admin dangerous slow",
            doc: CommandDoc {
                summary: "A CONFIG SET of an enc.* policy config, made knowing who made it; not for direct use.",
                complexity: "O(N) where N is the number of configs set",
                since: "0.1.0",
                arity: -4,
                keys: Vec::new(),
                args: vec![
                    ArgDoc::token("SET"),
                    ArgDoc::block("data", vec![ArgDoc::string("parameter"), ArgDoc::string("value")]).multiple(),
                ],
            },
        },
        Command { name: "enc.set", handler: command_entry!("enc.set", string::set), flags: "write deny-oom", acl: "write string slow", doc: set_doc() },
        Command {
            name: "enc.get",
            handler: command_entry!("enc.get", string::get),
            flags: "readonly fast", acl: "read string fast",
            doc: CommandDoc {
                summary: "Opens the sealed value of a string key and returns the plaintext.",
                complexity: "O(N) where N is the length of the value",
                since: "0.1.0",
                arity: 2,
                keys: read_one.clone(),
                args: vec![ArgDoc::key("key", 0)],
            },
        },
        Command {
            name: "enc.mset",
            handler: command_entry!("enc.mset", string::mset),
            flags: "write deny-oom", acl: "write string slow",
            doc: CommandDoc {
                summary: "Seals and stores several values at once, as MSET does.",
                complexity: "O(N) where N is the total length of the values",
                since: "0.1.0",
                arity: -3,
                keys: vec![key_spec(KeyUse::Overwrite, 1, -1, 2)],
                args: vec![ArgDoc::block("data", vec![ArgDoc::key("key", 0), ArgDoc::string("value")]).multiple()],
            },
        },
        Command {
            name: "enc.mget",
            handler: command_entry!("enc.mget", string::mget),
            flags: "readonly fast", acl: "read string fast",
            doc: CommandDoc {
                summary: "Opens the sealed values of several string keys, as MGET does.",
                complexity: "O(N) where N is the total length of the values",
                since: "0.1.0",
                arity: -2,
                keys: vec![key_spec(KeyUse::Read, 1, -1, 1)],
                args: vec![ArgDoc::key("key", 0).multiple()],
            },
        },
        Command {
            name: "enc.hsetfield",
            handler: command_entry!("enc.hsetfield", hash::set_fields),
            flags: "write deny-oom fast", acl: "write hash fast",
            doc: CommandDoc {
                summary: "Seals hash fields; the other fields of the hash stay as they are.",
                complexity: "O(N) where N is the total length of the values",
                since: "0.1.0",
                arity: -4,
                keys: one_key(KeyUse::Update),
                args: vec![
                    ArgDoc::key("key", 0),
                    ArgDoc::block("data", vec![ArgDoc::string("field"), ArgDoc::string("value")]).multiple(),
                    ArgDoc::token("PHI").optional(),
                ],
            },
        },
        Command {
            name: "enc.hgetfield",
            handler: command_entry!("enc.hgetfield", hash::get_fields),
            flags: "readonly fast", acl: "read hash fast",
            doc: CommandDoc {
                summary: "Opens the named sealed hash fields; replies with an array, as HMGET does.",
                complexity: "O(N) where N is the total length of the values",
                since: "0.1.0",
                arity: -3,
                keys: read_one.clone(),
                args: vec![ArgDoc::key("key", 0), ArgDoc::string("field").multiple()],
            },
        },
        Command {
            name: "enc.hgetall",
            handler: command_entry!("enc.hgetall", hash::get_all),
            flags: "readonly", acl: "read hash slow",
            doc: CommandDoc {
                summary: "Returns every field of a hash, sealed fields opened and plain fields as stored.",
                complexity: "O(N) where N is the size of the hash",
                since: "0.1.0",
                arity: 2,
                keys: read_one.clone(),
                args: vec![ArgDoc::key("key", 0)],
            },
        },
        Command {
            name: "enc.rename",
            handler: command_entry!("enc.rename", relocate::rename),
            flags: "write", acl: "write keyspace slow",
            doc: CommandDoc {
                summary: "Renames a key, re-sealing its sealed values for the new name.",
                complexity: "O(N) where N is the size of the value",
                since: "0.1.0",
                arity: 3,
                keys: vec![key_spec(KeyUse::ReadDelete, 1, 0, 1), key_spec(KeyUse::Overwrite, 2, 0, 1)],
                args: vec![ArgDoc::key("key", 0), ArgDoc::key("newkey", 1)],
            },
        },
        Command {
            name: "enc.copy",
            handler: command_entry!("enc.copy", relocate::copy),
            flags: "write deny-oom", acl: "write keyspace slow",
            doc: CommandDoc {
                summary: "Copies a key, re-sealing its sealed values for the destination name.",
                complexity: "O(N) where N is the size of the value",
                since: "0.1.0",
                arity: -3,
                keys: vec![key_spec(KeyUse::Read, 1, 0, 1), key_spec(KeyUse::Overwrite, 2, 0, 1)],
                args: vec![
                    ArgDoc::key("source", 0),
                    ArgDoc::key("destination", 1),
                    ArgDoc::token("REPLACE").optional(),
                ],
            },
        },
        Command {
            name: "enc.inspect",
            handler: command_entry!("enc.inspect", inspect::inspect),
            flags: "readonly fast", acl: "read keyspace fast",
            doc: CommandDoc {
                summary: "Shows the envelope metadata of a sealed value without decrypting it.",
                complexity: "O(1)",
                since: "0.1.0",
                arity: -2,
                keys: one_key(KeyUse::ReadMetadata),
                args: vec![ArgDoc::key("key", 0), ArgDoc::string("field").optional()],
            },
        },
    ]
}

/// One subcommand of a container command such as `ENC.KEYRING`.
struct Subcommand {
    name: &'static str,
    handler: redis_module::raw::RedisModuleCmdFunc,
    flags: &'static str,
    acl: &'static str,
    summary: &'static str,
    arity: i32,
    args: Vec<ArgDoc>,
    keys: Vec<KeySpec>,
}

fn sub_doc(s: &Subcommand) -> CommandDoc {
    CommandDoc {
        summary: s.summary,
        complexity: "O(N) where N is the number of data keys",
        since: "0.1.0",
        arity: s.arity,
        keys: s.keys.clone(),
        args: Vec::new(),
    }
}

fn keyring_subcommands() -> Vec<Subcommand> {
    let change = "write admin";
    let cats = "admin dangerous slow";
    vec![
        Subcommand {
            name: "list",
            handler: command_entry!("enc.keyring|list", keyring::list),
            flags: "",
            acl: "slow",
            summary: "Lists the keyrings.",
            arity: 2,
            args: vec![],
            keys: vec![],
        },
        Subcommand {
            name: "info",
            handler: command_entry!("enc.keyring|info", keyring::info),
            flags: "",
            acl: "slow",
            summary: "Shows a keyring's versions, their states and creation times.",
            arity: 3,
            args: vec![ArgDoc::string("name")],
            keys: vec![],
        },
        Subcommand {
            name: "create",
            handler: command_entry!("enc.keyring|create", keyring::create),
            flags: change,
            acl: cats,
            summary: "Creates a keyring with a random version 1.",
            arity: 3,
            args: vec![ArgDoc::string("name")],
            keys: vec![],
        },
        Subcommand {
            name: "rotate",
            handler: command_entry!("enc.keyring|rotate", keyring::rotate),
            flags: change,
            acl: cats,
            summary: "Adds a new random version to a keyring and makes it primary.",
            arity: -2,
            args: vec![ArgDoc::string("name").optional()],
            keys: vec![],
        },
        Subcommand {
            name: "retire",
            handler: command_entry!("enc.keyring|retire", keyring::retire),
            flags: change,
            acl: cats,
            summary: "Retires a version: it no longer opens values.",
            arity: 4,
            args: vec![ArgDoc::string("name"), ArgDoc::integer("version")],
            keys: vec![],
        },
        Subcommand {
            name: "destroy",
            handler: command_entry!("enc.keyring|destroy", keyring::destroy),
            flags: change,
            acl: cats,
            summary: "Destroys a version or a whole keyring (crypto-shredding).",
            arity: -3,
            args: vec![
                ArgDoc::string("name"),
                ArgDoc::integer("version").optional(),
                ArgDoc::token("FORCE").optional(),
            ],
            keys: vec![],
        },
        Subcommand {
            name: "rewrap",
            handler: command_entry!("enc.keyring|rewrap", keyring::rewrap),
            flags: change,
            acl: cats,
            summary: "Wraps every data key under the current master key; no stored value changes.",
            arity: 2,
            args: vec![],
            keys: vec![],
        },
        Subcommand {
            name: "export",
            handler: command_entry!("enc.keyring|export", keyring::export),
            flags: "admin",
            acl: cats,
            summary: "Returns every keyring, keys wrapped, as one blob.",
            arity: 2,
            args: vec![],
            keys: vec![],
        },
        Subcommand {
            name: "import",
            handler: command_entry!("enc.keyring|import", keyring::import),
            flags: change,
            acl: cats,
            summary: "Merges an exported blob into this server's keyrings; FORCE accepts keys this server cannot unwrap.",
            arity: -3,
            args: vec![ArgDoc::string("blob"), ArgDoc::token("FORCE").optional()],
            keys: vec![],
        },
    ]
}

fn reencrypt_subcommands() -> Vec<Subcommand> {
    vec![
        Subcommand {
            name: "start",
            handler: command_entry!("enc.reencrypt|start", reencrypt::start),
            flags: "write admin",
            acl: "admin dangerous slow",
            summary: "Starts re-sealing values under their keyring's primary version (or sealing plain values with ENCRYPT-PLAINTEXT).",
            arity: -2,
            args: vec![
                ArgDoc::token("ENCRYPT-PLAINTEXT").optional(),
                ArgDoc::string("name").after("KEYRING").optional(),
                ArgDoc::string("pattern").after("MATCH").optional(),
                ArgDoc::integer("keys-per-second").after("RATE").optional(),
            ],
            keys: vec![],
        },
        Subcommand { name: "status", handler: command_entry!("enc.reencrypt|status", reencrypt::status), flags: "", acl: "slow", summary: "Shows the progress of the re-encryption job.", arity: 2, args: vec![] , keys: vec![] },
        Subcommand { name: "stop", handler: command_entry!("enc.reencrypt|stop", reencrypt::stop), flags: "admin", acl: "admin dangerous slow", summary: "Stops the re-encryption job.", arity: 2, args: vec![] , keys: vec![] },
    ]
}

fn phi_subcommands(phi_category: bool) -> Vec<Subcommand> {
    // The PHI permissions belong to @phi and to no other category: a user built from @fast,
    // @read or any other category must not hold them. Where modules cannot add a category
    // (Redis 7.0–7.2), they are in none and are granted by name.
    let acl = if phi_category { "phi" } else { "" };
    vec![
        Subcommand {
            name: "read",
            handler: command_entry!("enc.phi|read", probes::permission_probe),
            flags: "readonly fast",
            acl,
            summary: "The permission to read PHI plaintext under a key; grant it with +enc.phi|read (or +@phi). Replies OK.",
            arity: 3,
            args: vec![ArgDoc::key("key", 0)],
            keys: one_key(KeyUse::Read),
        },
        Subcommand {
            name: "write",
            handler: command_entry!("enc.phi|write", probes::permission_probe),
            flags: "write fast",
            acl,
            summary: "The permission to write PHI under a key; grant it with +enc.phi|write (or +@phi). Replies OK.",
            arity: 3,
            args: vec![ArgDoc::key("key", 0)],
            keys: vec![key_spec(KeyUse::Update, 2, 0, 1)],
        },
    ]
}

fn audit_subcommands() -> Vec<Subcommand> {
    vec![Subcommand {
        name: "reopen",
        handler: command_entry!("enc.audit|reopen", probes::audit_reopen),
        flags: "admin",
        acl: "admin dangerous slow",
        summary: "Reopens the audit log file after rotation; the hash chain continues.",
        arity: 2,
        args: vec![],
        keys: vec![],
    }]
}

/// Creates every command.
pub fn register(ctx: Ctx, phi_category: bool) -> Result<(), String> {
    for c in table() {
        let legacy = legacy_key_range(&c.doc.keys);
        ctx.create_command(c.name, c.handler, c.flags, c.acl, legacy, &c.doc.to_raw())?;
    }
    for (parent, summary, subs) in [
        (
            "enc.keyring",
            c"Manages keyrings and their data key versions.",
            keyring_subcommands(),
        ),
        (
            "enc.reencrypt",
            c"Re-seals stored values in the background.",
            reencrypt_subcommands(),
        ),
        (
            "enc.phi",
            c"Permissions to read and write PHI, granted with ACL.",
            phi_subcommands(phi_category),
        ),
        ("enc.audit", c"Manages the audit log.", audit_subcommands()),
    ] {
        ctx.create_container(parent, summary)?;
        for mut sub in subs {
            // The key spec of a subcommand counts the subcommand name: its key is at index 2.
            for k in &mut sub.keys {
                k.first = 2;
            }
            let mut doc = sub_doc(&sub);
            doc.args = std::mem::take(&mut sub.args);
            ctx.create_subcommand(
                parent,
                sub.name,
                sub.handler,
                sub.flags,
                sub.acl,
                &doc.to_raw(),
            )?;
        }
    }
    Ok(())
}

/// The first/last/step triple for servers that read only the legacy range.
fn legacy_key_range(keys: &[KeySpec]) -> (i32, i32, i32) {
    match keys {
        [] => (0, 0, 0),
        [only] => (
            only.first,
            if only.last == 0 {
                only.first
            } else {
                only.last
            },
            only.step,
        ),
        [first, .., last] => (first.first, last.first, 1),
    }
}
