//! Master-key providers: where the master key comes from at load time.
//!
//! A provider is named by a URI: `file:PATH`, `env:NAME` or `exec:PATH [ARGS]`. The URI names
//! a place, never the key; key material never travels through a command or a config value.

mod env;
mod exec;
pub mod file;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::MasterKeyError;
use crate::key::MasterKey;

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
}

impl Provider {
    /// Parses a URI.
    pub fn parse(uri: &str) -> Result<Provider, MasterKeyError> {
        let (scheme, rest) = uri.split_once(':').unwrap_or((uri, ""));
        match scheme {
            "file" if !rest.is_empty() => Ok(Provider::File(PathBuf::from(rest))),
            "env" if !rest.is_empty() => Ok(Provider::Env(rest.to_owned())),
            "file" | "env" => Err(MasterKeyError::Incomplete(scheme.to_owned())),
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
        }
    }

    /// Fetches the master key.
    pub fn fetch(&self) -> Result<MasterKey, MasterKeyError> {
        match self {
            Provider::File(path) => file::fetch(path),
            Provider::Env(name) => env::fetch(name),
            Provider::Exec { program, args } => exec::fetch(program, args, EXEC_TIMEOUT),
        }
    }
}
