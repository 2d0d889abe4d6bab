//! Master-key providers: where the master key comes from at load time.
//!
//! A provider is named by a URI: `file:PATH`, `env:NAME`, `exec:PATH [ARGS]` hold the key
//! locally; `vault-transit:...` and `aws-kms:...` leave it in a KMS that wraps data keys. The
//! URI names a place, never the key; key material never travels through a command or a config
//! value.

#[cfg(feature = "aws-kms")]
pub mod aws;
mod env;
mod exec;
pub mod file;
#[cfg(feature = "http")]
mod http;
pub mod read;
#[cfg(feature = "vault-transit")]
pub mod vault;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::MasterKeyError;
use crate::key::MasterKey;
use crate::wrap::Wrapper;

/// How long an `exec:` program may run before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed master-key URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `file:PATH`: base64 of 32 bytes on one line, in a file readable only by its owner.
    File(PathBuf),
    /// `env:NAME`: base64 of 32 bytes in an environment variable.
    Env(String),
    /// `exec:PATH [ARGS]`: a program, run without a shell, that prints the base64 key.
    Exec {
        /// Absolute path of the program.
        program: PathBuf,
        /// Its arguments, split on whitespace.
        args: Vec<String>,
    },
    /// `vault-transit:...`: HashiCorp Vault / OpenBao Transit holds the master key.
    #[cfg(feature = "vault-transit")]
    VaultTransit(vault::VaultConfig),
    /// `aws-kms:...`: AWS KMS holds the master key.
    #[cfg(feature = "aws-kms")]
    AwsKms(aws::AwsConfig),
}

/// A master key as the module holds it: the key itself, or a handle to a KMS that holds it.
pub enum Master {
    /// The 32 bytes, from `file:`, `env:` or `exec:`.
    Local(MasterKey),
    /// A KMS key that never leaves the KMS.
    Remote(Box<dyn Wrapper + Send + Sync>),
}

impl Master {
    /// What wraps data keys.
    pub fn wrapper(&self) -> &dyn Wrapper {
        match self {
            Master::Local(key) => key,
            Master::Remote(kms) => kms.as_ref(),
        }
    }

    /// The local key, if this is one.
    pub fn local(&self) -> Option<&MasterKey> {
        match self {
            Master::Local(key) => Some(key),
            Master::Remote(_) => None,
        }
    }

    /// A public identifier: `local:<fingerprint>` or the KMS key.
    pub fn id(&self) -> String {
        self.wrapper().wrapper_id()
    }
}

/// The error for a KMS URI given to a build without its provider.
#[cfg(not(all(feature = "vault-transit", feature = "aws-kms")))]
fn without_feature(scheme: &str) -> MasterKeyError {
    MasterKeyError::Kms(format!(
        "{scheme}: this build was made without the {scheme} feature"
    ))
}

impl Provider {
    /// Parses a URI.
    pub fn parse(uri: &str) -> Result<Provider, MasterKeyError> {
        let (scheme, rest) = uri.split_once(':').unwrap_or((uri, ""));
        match scheme {
            "file" if !rest.is_empty() => Ok(Provider::File(PathBuf::from(rest))),
            "env" if !rest.is_empty() => Ok(Provider::Env(rest.to_owned())),
            "file" | "env" => Err(MasterKeyError::Incomplete(scheme.to_owned())),
            #[cfg(feature = "vault-transit")]
            "vault-transit" => Ok(Provider::VaultTransit(vault::VaultConfig::parse(rest)?)),
            #[cfg(feature = "aws-kms")]
            "aws-kms" => Ok(Provider::AwsKms(aws::AwsConfig::parse(rest)?)),
            #[cfg(not(feature = "vault-transit"))]
            "vault-transit" => Err(without_feature(scheme)),
            #[cfg(not(feature = "aws-kms"))]
            "aws-kms" => Err(without_feature(scheme)),
            "exec" => {
                let mut words = rest.split_whitespace();
                let program = words.next().map(PathBuf::from);
                match program {
                    Some(program) if program.is_absolute() => Ok(Provider::Exec {
                        program,
                        args: words.map(str::to_owned).collect(),
                    }),
                    _ => Err(MasterKeyError::Exec(
                        "exec: needs an absolute program path, as in exec:/usr/local/bin/get-key"
                            .to_owned(),
                    )),
                }
            }
            _ => Err(MasterKeyError::UnknownScheme(scheme.to_owned())),
        }
    }

    /// The provider's kind, as `INFO enc` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Provider::File(_) => "file",
            Provider::Env(_) => "env",
            Provider::Exec { .. } => "exec",
            #[cfg(feature = "vault-transit")]
            Provider::VaultTransit(_) => "vault-transit",
            #[cfg(feature = "aws-kms")]
            Provider::AwsKms(_) => "aws-kms",
        }
    }

    /// Opens the master key: fetches a local key, or connects to the KMS (without a request).
    pub fn open(&self) -> Result<Master, MasterKeyError> {
        match self {
            #[cfg(feature = "vault-transit")]
            Provider::VaultTransit(config) => Ok(Master::Remote(Box::new(
                vault::VaultTransit::connect(config.clone())?,
            ))),
            #[cfg(feature = "aws-kms")]
            Provider::AwsKms(config) => Ok(Master::Remote(Box::new(aws::AwsKms::connect(
                config.clone(),
            )?))),
            _ => self.fetch().map(Master::Local),
        }
    }

    /// Fetches a local master key (`file:`, `env:`, `exec:`).
    pub fn fetch(&self) -> Result<MasterKey, MasterKeyError> {
        match self {
            Provider::File(path) => file::fetch(path),
            Provider::Env(name) => env::fetch(name),
            Provider::Exec { program, args } => exec::fetch(program, args, EXEC_TIMEOUT),
            #[cfg(any(feature = "vault-transit", feature = "aws-kms"))]
            _ => Err(MasterKeyError::Kms(
                "a KMS keeps its master key; this command needs a local key (file:, env:, exec:)"
                    .into(),
            )),
        }
    }
}
