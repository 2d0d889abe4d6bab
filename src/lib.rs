//! redis-enc: a Redis module that seals values inside Redis.
//!
//! This crate is the server adapter. It parses command arguments, calls the core
//! (`redis-enc-core`: envelope, keys, providers) and writes through the Redis module API.
//!
//! - [`load`]: `RedisModule_OnLoad`: master key, commands, configs, INFO.
//! - [`commands`]: the `ENC.*` commands, their key specs and documentation.
//! - [`setopts`]: `ENC.SET` options.
//! - [`config`], [`pattern`], [`info`], [`state`]: configs and their key-name patterns, the
//!   `INFO enc` section, the loaded keyring.
//! - [`reencrypt`]: the background re-encryption job.
//! - [`phi`], [`audit`]: the PHI policy and the audit log.
//! - [`persist`]: the key store in the RDB and the replication stream.
//! - [`store`]: the one way a sealed string or hash fields reach a key and the replicas.
//! - [`error`]: the one mapping from errors to replies.
//! - [`ffi`], [`command_info`]: the typed layer over the raw module API, the only place with
//!   `unsafe` code; every entry point from Redis runs under `catch_unwind` there.

#![deny(unsafe_code)]

mod acl_log;
mod audit;
mod clock;
mod command_info;
mod commands;
mod config;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod guard;
mod info;
mod kms_retry;
mod load;
mod pattern;
mod persist;
mod phi;
mod reencrypt;
mod setopts;
mod state;
mod store;
