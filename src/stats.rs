//! Counters of sealed and opened values and of errors by kind, for `INFO enc`. A leaf: any
//! layer may count.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::{CmdError, ErrorKind};

static SEALED: AtomicU64 = AtomicU64::new(0);
static OPENED: AtomicU64 = AtomicU64::new(0);
static OPEN_FAILURES: AtomicU64 = AtomicU64::new(0);
static PLAINTEXT_READS: AtomicU64 = AtomicU64::new(0);

/// Errors counted by kind, at [`ErrorKind::index`].
static ERRORS: [AtomicU64; ErrorKind::ALL.len()] =
    [const { AtomicU64::new(0) }; ErrorKind::ALL.len()];

pub fn count_sealed(n: u64) {
    SEALED.fetch_add(n, Relaxed);
}

pub fn count_opened(n: u64) {
    OPENED.fetch_add(n, Relaxed);
}

pub fn count_plaintext_read() {
    PLAINTEXT_READS.fetch_add(1, Relaxed);
}

pub fn count_internal_error() {
    crate::ffi::entry::count_internal_error();
}

pub fn count_error(e: &CmdError) {
    if e.is_open_failure() {
        OPEN_FAILURES.fetch_add(1, Relaxed);
    }
    ERRORS[e.kind().index()].fetch_add(1, Relaxed);
}

/// The counters at one moment.
pub struct Snapshot {
    pub sealed: u64,
    pub opened: u64,
    pub open_failures: u64,
    pub plaintext_reads: u64,
    pub internal_errors: u64,
    /// Errors by kind, in a fixed order.
    pub errors: Vec<(&'static str, u64)>,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        sealed: SEALED.load(Relaxed),
        opened: OPENED.load(Relaxed),
        open_failures: OPEN_FAILURES.load(Relaxed),
        plaintext_reads: PLAINTEXT_READS.load(Relaxed),
        internal_errors: crate::ffi::entry::internal_errors(),
        errors: ErrorKind::ALL
            .iter()
            .zip(ERRORS.iter())
            .map(|(kind, count)| (kind.name(), count.load(Relaxed)))
            .collect(),
    }
}

impl crate::ffi::entry::Failure for CmdError {
    fn reply_text(&self) -> String {
        CmdError::reply_text(self).into_owned()
    }

    fn count(&self) {
        count_error(self);
    }
}
