//! Attacks on redis-enc's promises, one family per module: what an attacker, a careless
//! operator or an outage tries, against a real server. Each test states the promise it tries
//! to break. Extend a family by adding a case to its table.

#![allow(clippy::unwrap_used)] // a test: a failed step fails it

#[path = "../common/mod.rs"]
mod common;

mod access;
mod audit;
mod guard;
mod junk;
mod keyrings;
mod matrix;
mod persistence;
mod policy;
mod writes;

/// A server whose PHI lives under `patient:*`, with extra module arguments.
pub fn phi_server(binary: Option<&str>, extra: &[&str]) -> common::Server {
    common::phi_server_on(binary, extra)
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
