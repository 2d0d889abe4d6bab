//! Files that must not outlive the tool: the temporary output of `backup` and `restore` (a
//! restore's is the plaintext RDB). They are removed on every exit path: the normal ones by
//! their owners, Ctrl-C, SIGTERM and SIGHUP here, before the tool exits with the status the
//! shell gives a signal (128 + its number).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Starts the thread that cleans up on a signal.
pub fn install() {
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
            for path in pending.iter() {
                let _ = std::fs::remove_file(path);
            }
            std::process::exit(128 + signal);
        }
    });
}

/// A file to remove if the tool is stopped by a signal.
pub fn remember(path: &Path) {
    PENDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.to_owned());
}

/// A file no longer to remove (committed, or removed already).
pub fn forget(path: &Path) {
    PENDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| p != path);
}
