//! `exec:PATH [ARGS]`: a helper program that prints the key, run without a shell.
//!
//! The program gets what `file:` gets: it must be a regular file owned by root or by the
//! server's user, and neither it nor any directory above it may be writable by group or others
//! (a root-owned sticky directory such as `/tmp` excepted: no one else can replace what it
//! holds), since whoever can replace the program chooses the master key. It runs with an empty environment but `PATH=/usr/local/bin:/usr/bin:/bin`, so no
//! secret of the server's environment (`VAULT_TOKEN`, AWS credentials, an `env:` key) reaches
//! it. It runs in a process group of its own; the first line it prints is read, and the whole
//! fetch is bounded by one deadline: when it passes, or when the program has exited, the group
//! is killed, so a child it leaves behind neither delays the start nor outlives it (a program
//! that leaves its process group, by `setsid`, is beyond reach: only its output is not waited
//! for).

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use zeroize::Zeroizing;

use crate::error::MasterKeyError;
use crate::key::MasterKey;

/// More output than this is not a key.
const MAX_OUTPUT: u64 = 4096;

/// The only environment the program gets.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub(super) fn fetch(
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> Result<MasterKey, MasterKeyError> {
    let shown = program.display().to_string();
    // What runs is the file that was checked, named without links: a link swapped in between
    // cannot choose the program.
    let checked =
        check_program(program).map_err(|why| MasterKeyError::Exec(format!("{shown}: {why}")))?;
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(&checked)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| MasterKeyError::Exec(format!("cannot start {shown}: {e}")))?;
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let kill_group = || {
        let _ = killpg(group, Signal::SIGKILL);
    };
    let stdout = child.stdout.take();
    let (sender, receiver) = mpsc::channel();
    // The reader stops at the first newline: a child left behind holding the pipe open does
    // not keep it waiting for an end of file.
    std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        if let Some(stdout) = stdout {
            let mut byte = [0u8; 1];
            let mut bounded = stdout.take(MAX_OUTPUT);
            while let Ok(1) = bounded.read(&mut byte) {
                out.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
        }
        let _ = sender.send(out);
    });
    let output = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let status = loop {
        match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => break Some(code),
            Ok(WaitStatus::Signaled(..)) => break Some(-1),
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    kill_group();
    let Some(code) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(MasterKeyError::Exec(format!(
            "{shown} did not finish within {} s and was stopped",
            timeout.as_secs()
        )));
    };
    if code != 0 {
        return Err(MasterKeyError::Exec(format!(
            "{shown} exited with status {code}"
        )));
    }
    let Ok(output) = output else {
        return Err(MasterKeyError::Exec(format!(
            "{shown} printed no key within {} s",
            timeout.as_secs()
        )));
    };
    let source = format!("output of {shown}");
    let text = std::str::from_utf8(&output).map_err(|_| MasterKeyError::Malformed {
        source: source.clone(),
    })?;
    MasterKey::from_base64(text, &source)
}

/// The rules a program that chooses the master key must meet (as `file:` has for a key file),
/// along the path as given (the directories that hold a link to it) and along the path it
/// resolves to. Returns the resolved path, which is what runs.
fn check_program(program: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(program).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let resolved = program.canonicalize().map_err(|e| e.to_string())?;
    let given = std::path::absolute(program).map_err(|e| e.to_string())?;
    check_owners(given.parent())?;
    check_owners(Some(&resolved))?;
    Ok(resolved)
}

/// Refuses a path of which `from` or a directory above it could be replaced by another user.
fn check_owners(from: Option<&Path>) -> Result<(), String> {
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let mut path = from.map(Path::to_path_buf);
    while let Some(p) = path {
        let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!(
                "{} is owned by uid {}, neither root nor the server's user",
                p.display(),
                meta.uid()
            ));
        }
        // A root-owned sticky directory (`/tmp`) lets no one else replace what it holds.
        let sticky_root_dir =
            meta.is_dir() && meta.uid() == 0 && meta.permissions().mode() & 0o1000 != 0;
        if meta.permissions().mode() & 0o022 != 0 && !sticky_root_dir {
            return Err(format!(
                "{} can be written by group or others (mode {:o}): whoever can replace the program chooses the master key",
                p.display(),
                meta.permissions().mode() & 0o7777
            ));
        }
        path = p.parent().map(Path::to_path_buf);
    }
    Ok(())
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
        assert!(err.to_string().contains("exited with status 3"), "{err}");
        let err = fetch(
            Path::new("/nonexistent/get-key"),
            &[],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    /// A program that leaves a child behind, or starts a daemon in its group, neither delays
    /// the fetch beyond the first line nor outlives it.
    #[test]
    fn children_left_behind_do_not_hold_the_start() {
        let key = MasterKey::generate();
        let (program, args) = sh(&format!(
            "(sleep 30 &); sleep 30 & echo {}",
            key.to_base64().as_str()
        ));
        let started = std::time::Instant::now();
        assert_eq!(
            fetch(&program, &args, Duration::from_secs(5)).unwrap().id(),
            key.id()
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let (program, args) = sh("sleep 30 & sleep 30");
        let started = std::time::Instant::now();
        assert!(fetch(&program, &args, Duration::from_millis(500)).is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// The program sees none of the server's environment.
    #[test]
    fn the_program_gets_a_clean_environment() {
        std::env::set_var("REDIS_ENC_TEST_SECRET", "leak");
        let (program, args) = sh(
            "test -z \"$REDIS_ENC_TEST_SECRET$HOME\" || exit 9; echo AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        );
        assert!(fetch(&program, &args, Duration::from_secs(5)).is_ok());
    }

    /// A program anyone could replace is refused before it runs.
    #[test]
    fn a_replaceable_program_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("get-key");
        std::fs::write(&program, "#!/bin/sh\necho x\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = fetch(&program, &[], Duration::from_secs(5)).unwrap_err();
        assert!(
            err.to_string()
                .contains("can be written by group or others"),
            "{err}"
        );
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = fetch(&program, &[], Duration::from_secs(5)).unwrap_err();
        assert!(
            err.to_string()
                .contains("can be written by group or others"),
            "{err}"
        );
        // In a private directory under the sticky /tmp, it runs (and prints no key).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = fetch(&program, &[], Duration::from_secs(5)).unwrap_err();
        assert!(!err.to_string().contains("can be written"), "{err}");
        // A link to it from a directory anyone can write to: whoever swaps the link chooses.
        let open_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(open_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let link = open_dir.path().join("link");
        std::os::unix::fs::symlink(&program, &link).unwrap();
        let err = fetch(&link, &[], Duration::from_secs(5)).unwrap_err();
        assert!(
            err.to_string()
                .contains("can be written by group or others"),
            "{err}"
        );
    }
}
