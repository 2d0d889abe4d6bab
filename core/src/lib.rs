//! The core of redis-enc: everything that does not need a Redis server.
//!
//! - [`envelope`]: the sealed-value format (docs/FORMAT.md §1) and `seal` / `open`.
//! - [`key`]: master and data key types; zeroized on drop, never printed.
//! - [`keystore`]: keyrings of versioned data keys: which key seals, which opens, rotation.
//! - [`keyring`]: keyring names.
//! - [`wrap`]: data keys wrapped under a master key.
//! - [`provider`]: where the master key comes from (`file:`, `env:`, `exec:`).
//! - [`setopts`]: the options of `ENC.SET` and `SET`.
//! - [`audit`]: audit records and their hash chain.
//! - [`evidence`]: the MACs of compliance reports and of backup and restore-drill records.
//! - [`search`]: blind-index tokens and key-name tokens (search without plaintext).
//! - [`backup`]: encrypted backup files; [`rdb`]: whether bytes are a whole RDB file.
//! - [`error`]: the one error type of this layer.
//!
//! The Redis adapter (the loadable module) and the `redis-enc` command-line tool both build on
//! this crate; neither reimplements anything here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod envelope;
pub mod error;
pub mod evidence;
pub mod key;
pub mod keyring;
pub mod keystore;
mod plaintext;
pub mod policy;
pub mod provider;
pub mod rdb;
pub mod search;
pub mod setopts;
pub mod text;
pub mod transfer;
pub mod wrap;
mod xaes;

pub use envelope::{Envelope, Flags, Location};
pub use error::{Error, Locked};
pub use key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};
pub use keyring::KeyringName;
pub use keystore::KeyStore;
pub use plaintext::Plaintext;
