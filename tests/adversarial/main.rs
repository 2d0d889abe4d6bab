//! Attacks on redis-enc's promises, one family per module: what an attacker, a careless
//! operator or an outage tries, against a real server. Each test states the promise it tries
//! to break. Extend a family by adding a case to its table.

#[path = "../common/mod.rs"]
mod common;

mod keyrings;
mod persistence;
mod writes;
