//! `redis-enc`: the command-line tool of redis-enc.
//!
//! - `redis-enc keygen --out PATH`: writes a new master key file (mode 0600).
//! - `redis-enc key-id --master-key URI`: prints the public fingerprint of a master key, the
//!   same that `INFO enc` shows as `enc_master_key_id`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redis_enc_core::provider::{file::write_new_key_file, Provider};
use redis_enc_core::MasterKey;

#[derive(Parser)]
#[command(
    name = "redis-enc",
    version,
    about = "Key management for the redis-enc Redis module"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new random master key to a file readable only by its owner (mode 0600).
    Keygen {
        /// Where to write the key; an existing file is never replaced.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Print the public fingerprint of a master key (INFO enc shows the loaded one).
    KeyId {
        /// The master key: file:PATH, env:NAME or exec:PATH [ARGS].
        #[arg(long, value_name = "URI")]
        master_key: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("redis-enc: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { out } => {
            let key = MasterKey::generate();
            write_new_key_file(&out, &key)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "wrote a new master key to {} (mode 0600), key id {}",
                out.display(),
                key.id()
            );
            Ok(())
        }
        Command::KeyId { master_key } => {
            let key = Provider::parse(&master_key)
                .and_then(|p| p.fetch())
                .map_err(|e| format!("master key: {e}"))?;
            println!("{}", key.id());
            Ok(())
        }
    }
}
