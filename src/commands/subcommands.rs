//! The subcommands of the container commands `ENC.KEYRING`, `ENC.REENCRYPT`, `ENC.PHI` and
//! `ENC.AUDIT`, with their flags, ACL categories, key specs and documentation.

use super::table::{key_spec, one_key};
use super::{dualcontrol, keyring, probes, reencrypt};
use crate::command_entry;
use crate::ffi::command_info::{ArgDoc, CommandDoc, KeySpec, KeyUse};

/// One subcommand of a container command such as `ENC.KEYRING`.
pub(super) struct Subcommand {
    pub(super) name: &'static str,
    pub(super) handler: redis_module::raw::RedisModuleCmdFunc,
    pub(super) flags: &'static str,
    pub(super) acl: &'static str,
    pub(super) summary: &'static str,
    pub(super) arity: i32,
    pub(super) args: Vec<ArgDoc>,
    pub(super) keys: Vec<KeySpec>,
}

pub(super) fn sub_doc(s: &Subcommand) -> CommandDoc {
    CommandDoc {
        summary: s.summary,
        complexity: "O(N) where N is the number of data keys",
        since: "0.1.0",
        arity: s.arity,
        keys: s.keys.clone(),
        args: Vec::new(),
    }
}

pub(super) fn keyring_subcommands() -> Vec<Subcommand> {
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

pub(super) fn reencrypt_subcommands() -> Vec<Subcommand> {
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

pub(super) fn phi_subcommands(phi_category: bool) -> Vec<Subcommand> {
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

pub(super) fn dualcontrol_subcommands() -> Vec<Subcommand> {
    vec![
        Subcommand {
            name: "list",
            handler: command_entry!("enc.dualcontrol|list", dualcontrol::list),
            flags: "admin",
            acl: "admin slow",
            summary: "Lists the requests that wait for a second user's approval (enc.dual-control).",
            arity: 2,
            args: vec![],
            keys: vec![],
        },
        Subcommand {
            name: "approve",
            handler: command_entry!("enc.dualcontrol|approve", dualcontrol::approve),
            flags: "write admin deny-script",
            acl: "admin dangerous slow",
            summary: "Approves another user's request and runs its command as the approver, who must be allowed to run it.",
            arity: 3,
            args: vec![ArgDoc::string("id")],
            keys: vec![],
        },
    ]
}

pub(super) fn audit_subcommands() -> Vec<Subcommand> {
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
