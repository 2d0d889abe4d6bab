//! `redis-enc`: the command-line tool of redis-enc.
//!
//! - `redis-enc keygen --out PATH`: writes a new master key file (mode 0600).
//! - `redis-enc backup|verify|restore|inspect`: encrypted backups.
//! - `redis-enc audit verify`: checks an audit log's hash chain.
//! - `redis-enc cluster check --seed HOST:PORT`: every cluster node's keyring epoch.
//! - `redis-enc key-id --master-key URI`: prints the public fingerprint of a master key, the
//!   same that `INFO enc` shows as `enc_master_key_id`.
//! - `redis-enc report --url URL`: evidence for an auditor, mapped to HIPAA 164.312;
//!   `redis-enc report verify FILE` checks its MAC.
//! - `redis-enc record`: records a restore drill for the report.

/// `println!` that handles a closed or full standard output: a reader that went away (`| head`)
/// ends the program quietly with the status a broken pipe gives (141); any other failure says
/// so and exits 1. What was already done (a key or backup file written) stays done.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

mod backup;
mod cleanup;
mod cluster;
mod records;
mod replication;
mod report;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redis_enc_core::provider::{file::write_new_key_file, Provider};
use redis_enc_core::MasterKey;

#[derive(Parser)]
#[command(
    name = "redis-enc",
    version,
    about = "Keys, encrypted backups and audit-log checks for the redis-enc Redis module"
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
    /// Back up a live server (over the replication protocol) or an RDB file, encrypted as it streams.
    Backup {
        /// The server to snapshot, as redis://[user[:password]@]HOST:PORT.
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "rdb",
            required_unless_present = "rdb"
        )]
        url: Option<String>,
        /// Encrypt an existing RDB file instead.
        #[arg(long, value_name = "PATH")]
        rdb: Option<PathBuf>,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        tls: TlsArgs,
        /// The master key that wraps the backup's file key.
        #[arg(long, value_name = "URI")]
        master_key: String,
        /// The backup file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
        /// Append a record of this backup to this file, for `redis-enc report --records`.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// Check every chunk of a backup without writing plaintext anywhere; exit 0 only if intact.
    Verify {
        /// The backup file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The master key the backup was made with.
        #[arg(long, value_name = "URI")]
        master_key: String,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
        /// Append a record of this verification to this file, for `redis-enc report --records`.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// Decrypt and verify a backup into an RDB file, written only if the whole backup verifies.
    Restore {
        /// The backup file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The master key the backup was made with.
        #[arg(long, value_name = "URI")]
        master_key: String,
        /// The RDB file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
    },
    /// Show a backup's header and sizes (no key needed).
    Inspect {
        /// The backup file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the key-name token of each value (the arguments, or each line of standard input),
    /// as ENC.TOKENIZE makes it.
    Tokenize {
        #[command(flatten)]
        keys: TokenKeyArgs,
        /// The namespace, as ENC.TOKENIZE's first argument.
        #[arg(long)]
        namespace: String,
        /// Values; none: one per line of standard input.
        values: Vec<String>,
    },
    /// Print the value of each key-name token (the arguments, or each line of standard input).
    Detokenize {
        #[command(flatten)]
        keys: TokenKeyArgs,
        /// Tokens; none: one per line of standard input.
        tokens: Vec<String>,
    },
    /// Redis Cluster tools.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Measure a server (or with --cluster every node) against the encryption, access, audit and
    /// backup controls, mapped to HIPAA 164.312; write JSON and HTML evidence, signed with a MAC.
    /// Exit 0 when every check passes, 1 when one fails, 2 when no report could be made.
    Report(Box<ReportArgs>),
    /// Append a restore drill's record (what scripts/restore-drill.sh --record does), for
    /// `redis-enc report --records`.
    Record {
        /// The records file to append to (created with mode 0600).
        #[arg(long, value_name = "FILE")]
        record: PathBuf,
        /// The master key whose derived key signs the record.
        #[arg(long, value_name = "URI")]
        master_key: String,
        /// What is recorded.
        #[arg(long, value_parser = ["restore-drill"])]
        kind: String,
        /// How it ended.
        #[arg(long, value_parser = ["ok", "failed"])]
        result: String,
        /// How long it took, in seconds.
        #[arg(long, value_name = "SECONDS")]
        seconds: f64,
        /// Facts to keep with it, as a JSON object (no PHI: key counts, timings).
        #[arg(long, value_name = "JSON", default_value = "{}")]
        detail: String,
    },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
    /// The server, as redis://[user[:password]@]HOST:PORT (with --cluster, any node).
    #[arg(long, value_name = "URL", required = true)]
    url: Option<String>,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Read every node of the cluster the URL's server belongs to.
    #[arg(long)]
    cluster: bool,
    /// The master key (file:, env: or exec:): signs the report, verifies the audit log and
    /// the records. Without it the report is not signed.
    #[arg(long, value_name = "URI")]
    master_key: Option<String>,
    /// The audit log to verify and count (several files, oldest first, as one chain); in a
    /// cluster, each node's as ADDRESS=FILE (HOST:PORT as CLUSTER NODES names it).
    #[arg(long = "audit-log", value_name = "[ADDRESS=]FILE")]
    audit_log: Vec<String>,
    /// A records file of backups, verifications and restore drills (--record of backup,
    /// verify and scripts/restore-drill.sh).
    #[arg(long, value_name = "FILE")]
    records: Vec<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The oldest a keyring's primary version may be (90d, 12h, 30m, 45s; default: the servers'
    /// enc.keyring-rotate-after, else 365d).
    #[arg(long, value_name = "AGE")]
    max_key_age: Option<String>,
    /// The oldest the last verified backup may be.
    #[arg(long, value_name = "AGE", default_value = "7d")]
    max_backup_age: String,
    /// The oldest the last restore drill may be.
    #[arg(long, value_name = "AGE", default_value = "90d")]
    max_drill_age: String,
    /// Keys per ENC.COVERAGE step.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    scan_count: u32,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Check a report's MAC (its JSON file or its HTML page); exit 0 only if nothing was edited.
    Verify {
        /// The report: the JSON file or the HTML page.
        file: PathBuf,
        /// The master key the report was signed under.
        #[arg(long, value_name = "URI")]
        master_key: String,
    },
}

/// How to authenticate to a server.
#[derive(clap::Args)]
struct AuthArgs {
    /// The ACL user to authenticate as.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// A file holding the password (never give it on the command line).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

/// A node of a cluster, and how to reach every node.
#[derive(clap::Args)]
struct SeedArgs {
    /// A node of the cluster: HOST:PORT or redis://[user[:password]@]HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    seed: String,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

impl AuthArgs {
    /// The server at `addr` (HOST:PORT or a redis:// URL), reached as these options say.
    fn target(&self, addr: &str) -> Result<replication::Target, String> {
        replication::target(addr, self.user.as_deref(), self.password_file.as_deref())
    }
}

impl SeedArgs {
    fn target(&self) -> Result<replication::Target, String> {
        self.auth.target(&self.seed)
    }
}

/// TLS to a server.
#[derive(clap::Args)]
struct TlsArgs {
    /// Connect with TLS.
    #[arg(long)]
    tls: bool,
    /// The CA certificate (PEM) to trust for the server (default: the Mozilla roots).
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_ca_cert: Option<PathBuf>,
    /// A client certificate (PEM), for servers with tls-auth-clients yes.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_key: Option<PathBuf>,
    /// The name to check the server's certificate against (default: the URL's host).
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_server_name: Option<String>,
}

impl TlsArgs {
    /// The TLS settings, when `--tls` is given.
    fn settings(self) -> Option<replication::Tls> {
        self.tls.then_some(replication::Tls {
            ca_cert: self.tls_ca_cert,
            cert: self.tls_cert,
            key: self.tls_key,
            server_name: self.tls_server_name,
        })
    }
}

/// Where the token key comes from.
#[derive(clap::Args)]
struct TokenKeyArgs {
    /// The server's master key: file:PATH, env:NAME, exec:PATH [ARGS], or a KMS URI.
    #[arg(long, value_name = "URI")]
    master_key: String,
    /// The server's keyrings, as ENC.KEYRING EXPORT replies (needed with a KMS master key, or
    /// once keyrings changed); without it, the keyring default derived from a local key.
    #[arg(long, value_name = "FILE")]
    keyrings: Option<PathBuf>,
    /// The keyring whose key makes the tokens (the server's enc.token-keyring).
    #[arg(long, value_name = "NAME", default_value = "default")]
    keyring: String,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// List every node with its keyring epoch and digest; exit non-zero if a node does not
    /// answer or holds other keyrings than the rest.
    Check {
        #[command(flatten)]
        node: SeedArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start ENC.REENCRYPT on every primary (each re-seals its own keys, every database), or
    /// with --status report every primary's job; --wait follows the jobs to their end.
    Reencrypt {
        #[command(flatten)]
        node: SeedArgs,
        /// Only report every primary's job; start nothing.
        #[arg(long)]
        status: bool,
        /// Seal values that are not envelopes instead (needs --match).
        #[arg(long, conflicts_with = "status")]
        encrypt_plaintext: bool,
        /// Only values of this keyring.
        #[arg(long, value_name = "NAME", conflicts_with = "status")]
        keyring: Option<String>,
        /// Only keys whose name matches this pattern (* and ?).
        #[arg(long = "match", value_name = "PATTERN", conflicts_with = "status")]
        pattern: Option<String>,
        /// About this many keys scanned per second, on each primary.
        #[arg(long, value_name = "KEYS", conflicts_with = "status")]
        rate: Option<u64>,
        /// Wait until every primary's job ends, showing progress; exit 1 unless all end done
        /// with no value failed.
        #[arg(long)]
        wait: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check an audit log's hash chain: report the good records and the first bad one.
    Verify {
        /// The audit log (several files, oldest first, verify as one chain).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The master key the server used: file:PATH, env:NAME or exec:PATH [ARGS].
        #[arg(long, value_name = "URI")]
        master_key: String,
        /// The chain head the first file continues (from enc_audit_head or an earlier
        /// verification), when the files before it are gone.
        #[arg(long, value_name = "MAC")]
        after: Option<String>,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Ends the program after standard output failed.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("redis-enc: cannot write to standard output: {e}");
    std::process::exit(1);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cleanup::install();
    if let Command::Report(args) = cli.command {
        return report(*args);
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("redis-enc: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `redis-enc report`: 0 when every check passes, 1 when one fails (or `verify` finds an edit),
/// 2 when no report could be made.
fn report(args: ReportArgs) -> ExitCode {
    if let Some(ReportCommand::Verify { file, master_key }) = args.command {
        return match report::verify(&file, &master_key) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("redis-enc: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let made = (|| {
        let url = args.url.clone().unwrap_or_default();
        let target = args.auth.target(&url)?;
        let options = report::Options {
            url,
            target,
            tls: args.tls.settings(),
            cluster: args.cluster,
            master_key: args.master_key,
            audit_logs: args.audit_log,
            records: args.records,
            json: args.json,
            html: args.html,
            max_key_age: args
                .max_key_age
                .as_deref()
                .map(report::parse_age)
                .transpose()?,
            max_backup_age: report::parse_age(&args.max_backup_age)?,
            max_drill_age: report::parse_age(&args.max_drill_age)?,
            scan_count: args.scan_count,
        };
        report::run(&options)
    })();
    match made {
        Ok(report::Outcome::Passed) => ExitCode::SUCCESS,
        Ok(report::Outcome::Failed) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("redis-enc: no report: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs `what` and appends its record to `record`, if given, whether it succeeded or not.
fn recorded(
    record: Option<&std::path::Path>,
    master_key: &str,
    kind: &str,
    detail: serde_json::Value,
    what: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let result = what();
    if let Some(path) = record {
        let mut detail = detail;
        if let Err(e) = &result {
            detail["error"] = serde_json::json!(e);
        }
        records::append(
            path,
            master_key,
            &records::Record {
                kind,
                ok: result.is_ok(),
                seconds: started.elapsed().as_secs_f64(),
                detail,
            },
        )?;
    }
    result
}

/// Seconds since the Unix epoch.
fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `redis-enc audit verify`: exit 0 only when every record verifies.
fn audit_verify(
    files: &[PathBuf],
    master_key: &str,
    after: Option<&str>,
    json: bool,
) -> Result<(), String> {
    use std::io::Read;
    let after = after
        .map(|head| {
            hex::decode(head)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| "--after takes a chain head: 64 hex digits".to_owned())
        })
        .transpose()?;
    let key = Provider::parse(master_key)
        .and_then(|p| p.fetch())
        .map_err(|e| format!("master key: {e}"))?;
    let mut text = Vec::new();
    for f in files {
        let mut file =
            std::fs::File::open(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        file.read_to_end(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
    }
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    let result = redis_enc_core::audit::verify(
        &redis_enc_core::audit::AuditKey::derive(&key),
        std::io::Cursor::new(text),
        after,
    )
    .map_err(|e| format!("cannot read the log: {e}"))?;
    if json {
        let bad = result
            .first_bad
            .as_ref()
            .map(|(line, why)| serde_json::json!({ "line": line, "reason": why }));
        say!(
            "{}",
            serde_json::json!({
                "good": result.good,
                "first_bad": bad,
                "head": result.head,
                "incomplete": result.incomplete,
            })
        );
    } else {
        say!("{} record(s) verified", result.good);
        if let Some(head) = &result.head {
            say!("chain head {head}");
        }
        for line in &result.incomplete {
            say!("warning: line {line} holds a record cut short (a crash mid-write); the server resumed the chain after it");
        }
    }
    if result.good == 0 && result.first_bad.is_none() {
        return Err("the audit log holds no records".into());
    }
    match result.first_bad {
        None => Ok(()),
        Some((line, why)) => {
            if !json {
                say!("first bad record: line {line}: {why}");
            }
            Err(format!("the audit log failed verification at line {line}"))
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { out } => {
            let key = MasterKey::generate();
            write_new_key_file(&out, &key)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            say!(
                "wrote a new master key to {} (mode 0600), key id {}",
                out.display(),
                key.id()
            );
            Ok(())
        }
        Command::Backup {
            url,
            rdb,
            auth,
            tls,
            master_key,
            out,
            json,
            record,
        } => {
            let source = match (&url, &rdb) {
                (Some(url), _) => replication::shown(url),
                (None, Some(rdb)) => file_name(rdb),
                (None, None) => String::new(),
            };
            recorded(
                record.as_deref(),
                &master_key,
                records::BACKUP,
                serde_json::json!({ "source": source, "file": file_name(&out) }),
                || {
                    backup::run_backup(
                        url.as_deref(),
                        tls.settings().as_ref(),
                        rdb.as_deref(),
                        auth.user.as_deref(),
                        auth.password_file.as_deref(),
                        &master_key,
                        &out,
                        json,
                    )
                },
            )
        }
        Command::Verify {
            input,
            master_key,
            json,
            record,
        } => recorded(
            record.as_deref(),
            &master_key,
            records::BACKUP_VERIFIED,
            serde_json::json!({
                "file": file_name(&input),
                "bytes": std::fs::metadata(&input).map_or(0, |m| m.len()),
            }),
            || backup::run_verify(&input, &master_key, json),
        ),
        Command::Record {
            record,
            master_key,
            kind,
            result,
            seconds,
            detail,
        } => {
            let detail: serde_json::Value = serde_json::from_str(&detail)
                .ok()
                .filter(serde_json::Value::is_object)
                .ok_or("--detail takes a JSON object")?;
            records::append(
                &record,
                &master_key,
                &records::Record {
                    kind: &kind,
                    ok: result == "ok",
                    seconds,
                    detail,
                },
            )?;
            say!("recorded the {kind} ({result}) in {}", record.display());
            Ok(())
        }
        // main() takes `report` before it calls run(): its exit status has three values.
        Command::Report(_) => unreachable!("redis-enc report is run by main"),
        Command::Restore {
            input,
            master_key,
            out,
            json,
        } => backup::run_restore(&input, &master_key, &out, json),
        Command::Inspect { input, json } => backup::run_inspect(&input, json),
        Command::Tokenize {
            keys,
            namespace,
            values,
        } => tokens::run_tokenize(
            &keys.master_key,
            keys.keyrings.as_deref(),
            &keys.keyring,
            &namespace,
            values,
        ),
        Command::Detokenize { keys, tokens } => tokens::run_detokenize(
            &keys.master_key,
            keys.keyrings.as_deref(),
            &keys.keyring,
            tokens,
        ),
        Command::Cluster {
            command: ClusterCommand::Check { node, json },
        } => cluster::run_check(&node.target()?, node.tls.settings().as_ref(), json),
        Command::Cluster {
            command:
                ClusterCommand::Reencrypt {
                    node,
                    status,
                    encrypt_plaintext,
                    keyring,
                    pattern,
                    rate,
                    wait,
                    json,
                },
        } => {
            let start = (!status).then_some(cluster::Start {
                encrypt_plaintext,
                keyring,
                pattern,
                rate,
            });
            cluster::run_reencrypt(
                &node.target()?,
                node.tls.settings().as_ref(),
                start.as_ref(),
                wait,
                json,
            )
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    files,
                    master_key,
                    after,
                    json,
                },
        } => audit_verify(&files, &master_key, after.as_deref(), json),
        Command::KeyId { master_key } => {
            let key = Provider::parse(&master_key)
                .and_then(|p| p.fetch())
                .map_err(|e| format!("master key: {e}"))?;
            say!("{}", key.id());
            Ok(())
        }
    }
}
