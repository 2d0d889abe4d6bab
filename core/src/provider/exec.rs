//! `exec:PATH [ARGS]`: a helper program that prints the key, run without a shell and killed
//! if it does not finish in time.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;
use zeroize::Zeroizing;

use crate::error::MasterKeyError;
use crate::key::MasterKey;

/// More output than this is not a key.
const MAX_OUTPUT: u64 = 4096;

pub(super) fn fetch(
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> Result<MasterKey, MasterKeyError> {
    let shown = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| MasterKeyError::Exec(format!("cannot start {shown}: {e}")))?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        if let Some(stdout) = stdout {
            // A read error leaves the output short, which the key check then reports.
            let _ = stdout.take(MAX_OUTPUT).read_to_end(&mut out);
        }
        out
    });
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(MasterKeyError::Exec(format!(
                "{shown} did not finish within {} s and was stopped",
                timeout.as_secs()
            )));
        }
        Err(e) => return Err(MasterKeyError::Exec(format!("waiting for {shown}: {e}"))),
    };
    let output = reader
        .join()
        .map_err(|_| MasterKeyError::Exec(format!("reading the output of {shown} failed")))?;
    if !status.success() {
        return Err(MasterKeyError::Exec(format!(
            "{shown} exited with {status}"
        )));
    }
    let source = format!("output of {shown}");
    let text = std::str::from_utf8(&output).map_err(|_| MasterKeyError::Malformed {
        source: source.clone(),
    })?;
    MasterKey::from_base64(text, &source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> (std::path::PathBuf, Vec<String>) {
        ("/bin/sh".into(), vec!["-c".to_owned(), script.to_owned()])
    }

    #[test]
    fn prints_a_key() {
        let key = MasterKey::generate();
        let (program, args) = sh(&format!("echo {}", key.to_base64().as_str()));
        assert_eq!(
            fetch(&program, &args, Duration::from_secs(5)).unwrap().id(),
            key.id()
        );
    }

    #[test]
    fn a_slow_program_is_stopped() {
        let (program, args) = sh("sleep 30");
        let started = std::time::Instant::now();
        let err = fetch(&program, &args, Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_failing_program_is_reported() {
        let (program, args) = sh("exit 3");
        let err = fetch(&program, &args, Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("exited with"), "{err}");
        let err = fetch(
            Path::new("/nonexistent/get-key"),
            &[],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot start"), "{err}");
    }
}
