//! The command table: every `ENC.*` command's name, flags, ACL categories, key specs and
//! documentation, and their registration.

use super::subcommands::{
    audit_subcommands, dualcontrol_subcommands, keyring_subcommands, phi_subcommands,
    reencrypt_subcommands, sub_doc,
};
use super::{coverage, hash, inspect, policy_config, relocate, search, string};
use crate::command_entry;
use crate::ffi::command_info::{ArgDoc, CommandDoc, KeySpec, KeyUse};
use crate::ffi::Ctx;

pub(super) fn key_spec(key_use: KeyUse, first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec {
        key_use,
        first,
        last,
        step,
    }
}

pub(super) fn one_key(key_use: KeyUse) -> Vec<KeySpec> {
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
                    ArgDoc::string("reason:token:command:first-argument").optional(),
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
            name: "enc.blindindex",
            handler: command_entry!("enc.blindindex", search::blind_index),
            flags: "readonly fast", acl: "read hash fast",
            doc: CommandDoc {
                summary: "Returns the blind-index tokens under which a value of a sealed hash field is found, one per active key version.",
                complexity: "O(V) where V is the number of active key versions",
                since: "0.1.0",
                arity: 4,
                keys: one_key(KeyUse::ReadMetadata),
                args: vec![ArgDoc::key("key", 0), ArgDoc::string("field"), ArgDoc::string("value")],
            },
        },
        Command {
            name: "enc.tokenize",
            handler: command_entry!("enc.tokenize", search::tokenize_value),
            flags: "readonly fast", acl: "read fast",
            doc: CommandDoc {
                summary: "Returns the deterministic, reversible token of a value, for use in key names.",
                complexity: "O(N) where N is the length of the value",
                since: "0.1.0",
                arity: 3,
                keys: Vec::new(),
                args: vec![ArgDoc::string("namespace"), ArgDoc::string("value")],
            },
        },
        Command {
            name: "enc.detokenize",
            handler: command_entry!("enc.detokenize", search::detokenize_value),
            flags: "readonly fast", acl: "read fast",
            doc: CommandDoc {
                summary: "Returns the value a token stands for; needs the PHI read permission on its namespace.",
                complexity: "O(N) where N is the length of the token",
                since: "0.1.0",
                arity: 2,
                keys: Vec::new(),
                args: vec![ArgDoc::string("token")],
            },
        },
        Command {
            name: "enc.coverage",
            handler: command_entry!("enc.coverage", coverage::coverage),
            // Step by step beside SCAN it tells which named key is sealed: for operators only.
            flags: "readonly", acl: "admin dangerous slow",
            doc: CommandDoc {
                summary: "One SCAN step that counts PHI values sealed and in plaintext, PHI keys without a time to live, and envelopes per key version; replies with counts only.",
                complexity: "O(N) for each call, where N is the number of keys the step returns, plus the fields of each hash among them",
                since: "0.1.0",
                arity: -2,
                keys: Vec::new(),
                args: vec![ArgDoc::integer("cursor"), ArgDoc::integer("count").after("COUNT").optional()],
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
        (
            "enc.dualcontrol",
            c"Requests that wait for a second user's approval.",
            dualcontrol_subcommands(),
        ),
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
