//! Attacks on redis-enc's promises, one family per module: what an attacker, a careless
//! operator or an outage tries, against a real server. Each test states the promise it tries
//! to break. Extend a family by adding a case to its table.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod guard;
mod keyrings;
mod persistence;
mod writes;

use std::sync::Arc;

use common::{write_key, Options, Server};

/// A server whose PHI lives under `patient:*`, with extra module arguments, on `binary`
/// (`redis-server` by default).
pub fn phi_server(binary: Option<&str>, extra: &[&str]) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("master.key");
    write_key(&key);
    let mut args = vec![
        "master-key".to_owned(),
        format!("file:{}", key.display()),
        "phi-patterns".to_owned(),
        "patient:*".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::with(Options {
        module_args: Some(args),
        dir: Some(dir),
        binary: binary.map(str::to_owned),
        ..Options::default()
    })
}

/// The servers the ACL-dependent attacks run on: Redis 7.0 (modules cannot add ACL
/// categories) and Valkey 8 (they can, and a command filter can tell who sent a command).
pub fn acl_servers() -> Vec<Option<&'static str>> {
    let mut servers = vec![None];
    if common::have("valkey-server") {
        servers.push(Some("valkey-server"));
    }
    servers
}
