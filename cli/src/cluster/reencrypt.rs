//! `redis-enc cluster reencrypt`: starts `ENC.REENCRYPT` on every primary of a cluster (each
//! scans its own keys, every database), or reports every primary's job; `--wait` follows the
//! jobs to their end with a progress display.

use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::json;

use super::{field, listed, Listed, TIMEOUT};
use crate::replication::{self, Target, Tls};

/// What to start (`None`: report only).
pub struct Start {
    pub encrypt_plaintext: bool,
    pub keyring: Option<String>,
    pub pattern: Option<String>,
    pub rate: Option<u64>,
}

impl Start {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["ENC.REENCRYPT".to_owned(), "START".to_owned()];
        if self.encrypt_plaintext {
            args.push("ENCRYPT-PLAINTEXT".into());
        }
        for (word, value) in [
            ("KEYRING", self.keyring.clone()),
            ("MATCH", self.pattern.clone()),
            ("RATE", self.rate.map(|r| r.to_string())),
        ] {
            if let Some(value) = value {
                args.extend([word.to_owned(), value]);
            }
        }
        args
    }
}

/// One primary's job, from `INFO enc`.
#[derive(Default, Clone)]
struct Job {
    state: String,
    scanned: u64,
    resealed: u64,
    failed: u64,
}

fn job(node: &Listed, like: &Target, tls: Option<&Tls>) -> Result<Job, String> {
    let mut con = replication::connect(&node.target(like), tls, TIMEOUT)?;
    let info = String::from_utf8_lossy(&con.bulk(&["INFO", "enc"])?).into_owned();
    let count = |name: &str| field(&info, name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Job {
        state: field(&info, "enc_reencrypt_state")
            .ok_or("INFO enc has no enc_reencrypt_state: is the module loaded?")?
            .to_owned(),
        scanned: count("enc_reencrypt_keys_scanned"),
        resealed: count("enc_reencrypt_values_resealed"),
        failed: count("enc_reencrypt_values_failed"),
    })
}

/// Starts the job on every primary (with `start`), optionally waits for every job to end, and
/// reports; `Err` names what is wrong after the report is printed.
pub fn run(
    seed: &Target,
    tls: Option<&Tls>,
    start: Option<&Start>,
    wait: bool,
    json: bool,
) -> Result<(), String> {
    let mut con = replication::connect(seed, tls, TIMEOUT)?;
    let nodes = String::from_utf8_lossy(&con.bulk(&["CLUSTER", "NODES"])?).into_owned();
    let primaries: Vec<Listed> = listed(&nodes)
        .0
        .into_iter()
        .filter(|n| n.role == "primary")
        .collect();
    if primaries.is_empty() {
        return Err("the seed listed no primary".into());
    }
    let mut wrong = Vec::new();
    if let Some(start) = start {
        let args = start.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for n in &primaries {
            let started = replication::connect(&n.target(seed), tls, TIMEOUT)
                .and_then(|mut c| c.status(&args));
            if let Err(why) = started {
                wrong.push(format!("{}: {why}", n.addr()));
            }
        }
    }
    let mut jobs: Vec<Result<Job, String>>;
    let bar = if wait && !json {
        crate::backup::bar(None, "re-encrypting")
    } else {
        ProgressBar::hidden()
    };
    loop {
        jobs = primaries.iter().map(|n| job(n, seed, tls)).collect();
        let running = jobs
            .iter()
            .filter(|j| j.as_ref().is_ok_and(|j| j.state == "running"))
            .count();
        if !wait || running == 0 {
            break;
        }
        let scanned: u64 = jobs.iter().flatten().map(|j| j.scanned).sum();
        bar.set_message(format!(
            "re-encrypting: {running} of {} primaries running, {scanned} keys scanned",
            primaries.len()
        ));
        bar.tick();
        std::thread::sleep(Duration::from_millis(500));
    }
    bar.finish_and_clear();
    let ok: Vec<Job> = jobs.iter().flatten().cloned().collect();
    if json {
        let list: Vec<_> = primaries
            .iter()
            .zip(&jobs)
            .map(|(n, j)| match j {
                Ok(j) => json!({
                    "addr": n.addr(), "state": j.state, "keys-scanned": j.scanned,
                    "values-resealed": j.resealed, "values-failed": j.failed,
                }),
                Err(why) => json!({ "addr": n.addr(), "error": why }),
            })
            .collect();
        say!("{}", json!({ "primaries": list, "errors": wrong }));
    } else {
        say!(
            "{:<22} {:<8} {:>12} {:>15} {:>13}",
            "PRIMARY",
            "STATE",
            "KEYS-SCANNED",
            "VALUES-RESEALED",
            "VALUES-FAILED"
        );
        for (n, j) in primaries.iter().zip(&jobs) {
            match j {
                Ok(j) => say!(
                    "{:<22} {:<8} {:>12} {:>15} {:>13}",
                    n.addr(),
                    j.state,
                    j.scanned,
                    j.resealed,
                    j.failed
                ),
                Err(why) => say!("{:<22} no answer: {why}", n.addr()),
            }
        }
        say!(
            "{:<22} {:<8} {:>12} {:>15} {:>13}",
            "TOTAL",
            "",
            ok.iter().map(|j| j.scanned).sum::<u64>(),
            ok.iter().map(|j| j.resealed).sum::<u64>(),
            ok.iter().map(|j| j.failed).sum::<u64>()
        );
    }
    let silent = jobs.iter().filter(|j| j.is_err()).count();
    if silent > 0 {
        wrong.push(format!("{silent} primary(ies) did not answer"));
    }
    let failed: u64 = ok.iter().map(|j| j.failed).sum();
    if wait && failed > 0 {
        wrong.push(format!("{failed} value(s) could not be re-sealed"));
    }
    if wait && ok.iter().any(|j| j.state != "done") {
        wrong.push("not every primary's job ended done".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}
