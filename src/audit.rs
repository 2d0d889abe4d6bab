//! The audit log: PHI reads and writes, denials, keyring operations and `enc.*` config
//! changes, one hash-chained JSON line each (docs/FORMAT.md §5). Values are never recorded.
//!
//! The main thread only gathers each event's facts and queues them, in the order the events
//! happen; a writer thread encodes, chains (HMAC) and writes them, so the event loop neither
//! waits on disk nor spends time on encoding. The writer flushes every batch and fsyncs at most
//! once a second (like `appendfsync everysec`), and on `ENC.AUDIT REOPEN` (log rotation). If a write fails, `enc.audit-fail-closed yes` denies PHI
//! access until a write succeeds again; either way `enc_audit_write_errors` rises and the
//! Redis log says so.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis_enc_core::audit::{AuditKey, Chain, Event, INCOMPLETE_LINE};

use crate::error::CmdError;
use crate::ffi::{Caller, Ctx, Level};
use crate::settings;
use crate::state;

mod writer;
use writer::{failed, position, tail_of, write_loop};

/// The longest key name a record carries as it is; longer ones are recorded as their HMAC.
const MAX_KEY_IN_RECORD: usize = 1024;
/// The longest detail a record carries (config values can be long).
const MAX_DETAIL: usize = 4096;

/// A detail cut to `MAX_DETAIL` bytes at a character boundary, saying how long it was.
fn bounded(detail: &str) -> String {
    if detail.len() <= MAX_DETAIL {
        return detail.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &detail[..end], detail.len())
}

/// How long the writer lets records gather between writes.
const GATHER: Duration = Duration::from_millis(2);
/// How often the writer fsyncs, at most.
const FSYNC_EVERY: Duration = Duration::from_secs(1);

// Nearly every message is an event; boxing them would add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Message {
    Event(Event),
    Reopen,
    Stop,
}

struct Log {
    path: String,
    names: AuditKey,
    sender: Sender<Message>,
    writer: Option<JoinHandle<()>>,
}

impl Log {
    fn send(&self, event: Event) {
        if self.sender.send(Message::Event(event)).is_err() {
            failed();
        }
    }
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);
/// The `mac` of the latest record the writer chained (`enc_audit_head`), and the `seq` of the
/// next one.
static HEAD: Mutex<(u64, String)> = Mutex::new((0, String::new()));
static FAILING: AtomicBool = AtomicBool::new(false);
static WRITE_ERRORS: AtomicU64 = AtomicU64::new(0);
static RECORDS: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);

fn log_guard() -> std::sync::MutexGuard<'static, Option<Log>> {
    LOG.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens (or, with an empty path, closes) the audit log. Called when `enc.audit-log` changes.
pub fn open(path: &str) -> Result<(), String> {
    let mut guard = log_guard();
    if guard.as_ref().is_some_and(|log| log.path == path) {
        // Already writing there: a second writer would start a second chain in the file.
        return Ok(());
    }
    if path.is_empty() {
        if let Some(old) = guard.take() {
            old.send(config_event("audit-log", ""));
            old.send(server_event("audit-stopped", None));
            stop(old);
        }
        return Ok(());
    }
    let (key, names) = state::with(|s| {
        Ok(s.master
            .local()
            .map(|m| (AuditKey::derive(m), AuditKey::derive(m))))
    })
    .map_err(|_| "the module has no master key".to_owned())?
    .ok_or_else(|| "the audit log needs a local master key (file:, env: or exec:)".to_owned())?;
    let mut file = open_file(path)?;
    // The change is recorded in the log in force before it, which then stops.
    let previous = guard.take().map(|old| {
        old.send(config_event("audit-log", path));
        old.send(server_event("audit-stopped", None));
        let from = old.path.clone();
        stop(old);
        from
    });
    let tail = tail_of(path);
    let (chain, event, detail) = match (&tail.last, tail.torn, &previous) {
        // A new file continues the chain of the log it replaces.
        (None, None, Some(from)) => {
            let (seq, head) = position();
            (
                Chain::continuing(key, seq, head),
                "audit-started",
                Some(format!("continues the chain of {from}")),
            )
        }
        (last, torn, _) => {
            let chain = Chain::resume(key, last.as_deref());
            let event = if chain.at_start() {
                "audit-started"
            } else {
                "audit-resumed"
            };
            // A last line cut short (a crash mid-write) is left as it is; records go on from the
            // record before it, on a line of their own.
            let detail = torn.map(|n| {
                format!("{INCOMPLETE_LINE} ({n} bytes: a write cut short); the chain continues after the record before it")
            });
            if torn.is_some() && file.write_all(b"\n").is_err() {
                return Err(format!("cannot write to audit log {path}"));
            }
            (chain, event, detail)
        }
    };
    let (sender, receiver) = mpsc::channel();
    let thread_path = path.to_owned();
    let writer = std::thread::Builder::new()
        .name("redis-enc-audit".into())
        .spawn(move || write_loop(thread_path, file, chain, receiver))
        .map_err(|e| format!("cannot start the audit writer: {e}"))?;
    let log = Log {
        path: path.to_owned(),
        names,
        sender,
        writer: Some(writer),
    };
    log.send(server_event(event, detail));
    *guard = Some(log);
    Ok(())
}

/// Whether the audit log could be opened at `path` (for checking a config change before it is
/// made).
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || log_guard().as_ref().is_some_and(|log| log.path == path) {
        return Ok(());
    }
    open_file(path).map(|_| ())
}

fn stop(mut log: Log) {
    let _ = log.sender.send(Message::Stop);
    if let Some(w) = log.writer.take() {
        let _ = w.join();
    }
}

fn open_file(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open audit log {path}: {e}"))
}

fn server_event(event: &str, detail: Option<String>) -> Event {
    Event {
        event: event.to_owned(),
        time_ms: now_ms(),
        user: String::new(),
        client_id: 0,
        addr: String::new(),
        command: String::new(),
        key: None,
        keyring: None,
        version: None,
        outcome: "ok".to_owned(),
        detail,
    }
}

fn now_ms() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or(0)
}

/// Whether the log is on.
pub fn enabled() -> bool {
    log_guard().is_some()
}

/// With `enc.audit-fail-closed yes`, PHI access is denied while the log cannot be written.
pub fn check_writable(ctx: Ctx) -> Result<(), CmdError> {
    if enabled() && FAILING.load(Ordering::SeqCst) {
        warn_once_if_failing(ctx);
        if settings::audit_fail_closed() {
            return Err(CmdError::AuditUnavailable);
        }
    }
    Ok(())
}

/// One record about a command: what a handler knows.
pub struct Access<'a> {
    pub event: &'a str,
    pub command: &'a str,
    pub key: Option<&'a [u8]>,
    pub keyring: Option<String>,
    pub version: Option<u16>,
    pub outcome: &'a str,
    pub detail: Option<String>,
}

/// Appends a record about the current command, if the log is on.
pub fn record(ctx: Ctx, access: Access<'_>) {
    if !enabled() {
        return;
    }
    record_as(ctx.caller(), access);
    warn_once_if_failing(ctx);
}

/// Appends a record about something `caller` did, if the log is on.
pub fn record_as(caller: Caller, access: Access<'_>) {
    let guard = log_guard();
    let Some(log) = guard.as_ref() else { return };
    let Caller {
        user,
        client_id,
        addr,
    } = caller;
    // A key name longer than a record should carry (anyone who may run a command can send
    // one) is recorded as its HMAC, with its length.
    let long_key = access.key.is_some_and(|k| k.len() > MAX_KEY_IN_RECORD);
    let key = access.key.map(|k| {
        if settings::audit_hash_keys() || k.len() > MAX_KEY_IN_RECORD {
            format!("hmac:{}", log.names.hash_name(k))
        } else {
            String::from_utf8_lossy(k).into_owned()
        }
    });
    let mut detail = access.detail.map(|d| bounded(&d));
    if long_key {
        let note = format!("key name of {} bytes", access.key.map_or(0, <[u8]>::len));
        detail = Some(match detail {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    let event = Event {
        event: access.event.to_owned(),
        time_ms: now_ms(),
        user,
        client_id,
        addr,
        command: access.command.to_owned(),
        key,
        keyring: access.keyring,
        version: access.version,
        outcome: access.outcome.to_owned(),
        detail,
    };
    RECORDS.fetch_add(1, Ordering::Relaxed);
    log.send(event);
}

fn warn_once_if_failing(ctx: Ctx) {
    if FAILING.load(Ordering::SeqCst) {
        if !WARNED.swap(true, Ordering::SeqCst) {
            ctx.log(Level::Warning, "redis-enc: the audit log cannot be written; see enc_audit_write_errors in INFO enc");
        }
    } else {
        WARNED.store(false, Ordering::SeqCst);
    }
}

/// Appends a record of something the server did by itself (no client), if the log is on.
pub fn record_server(event: &str, detail: Option<String>) {
    let guard = log_guard();
    let Some(log) = guard.as_ref() else { return };
    RECORDS.fetch_add(1, Ordering::Relaxed);
    log.send(server_event(event, detail));
}

/// Who is changing configs now (set by `ENC._CONFIG` around the change).
static AUTHOR: Mutex<Option<Caller>> = Mutex::new(None);

/// Runs `f` (a config change) on behalf of `author`, whom its audit records name.
pub fn with_author<R>(author: Caller, f: impl FnOnce() -> R) -> R {
    *AUTHOR.lock().unwrap_or_else(|p| p.into_inner()) = Some(author);
    let result = f();
    *AUTHOR.lock().unwrap_or_else(|p| p.into_inner()) = None;
    result
}

/// Records a change to an `enc.*` config, naming who made it (`ENC._CONFIG`), or none (the
/// configuration file, module arguments).
pub fn config_changed(name: &str, value: &str) {
    let guard = log_guard();
    let Some(log) = guard.as_ref() else { return };
    RECORDS.fetch_add(1, Ordering::Relaxed);
    log.send(config_event(name, value));
}

fn config_event(name: &str, value: &str) -> Event {
    let mut event = server_event("config", Some(bounded(&format!("enc.{name} = {value}"))));
    if let Some(author) = AUTHOR.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        event.user = author.user;
        event.client_id = author.client_id;
        event.addr = author.addr;
        event.command = "CONFIG SET".into();
    }
    event
}

/// Reopens the audit log file at its path (after a rotation moved it away) and records who
/// asked, continuing the chain in the new file.
pub fn reopen(ctx: Ctx, command: &str) -> Result<(), CmdError> {
    let guard = log_guard();
    let Some(log) = guard.as_ref() else {
        return Err(CmdError::Server(
            "ERR the audit log is off (set enc.audit-log)".into(),
        ));
    };
    open_file(&log.path).map_err(|e| CmdError::Server(format!("ERR {e}")))?;
    let _ = log.sender.send(Message::Reopen);
    let Caller {
        user,
        client_id,
        addr,
    } = ctx.caller();
    let mut event = server_event("audit-reopened", None);
    event.user = user;
    event.client_id = client_id;
    event.addr = addr;
    event.command = command.into();
    log.send(event);
    Ok(())
}

/// Figures for `INFO enc`: records, write errors, failing, the chain's head.
pub fn status() -> (bool, u64, u64, bool, String) {
    let guard = log_guard();
    let head = if guard.is_some() {
        position().1
    } else {
        String::new()
    };
    (
        guard.is_some(),
        RECORDS.load(Ordering::Relaxed),
        WRITE_ERRORS.load(Ordering::Relaxed),
        FAILING.load(Ordering::SeqCst),
        head,
    )
}

/// Stops the writer at unload.
pub fn shutdown() {
    if let Some(log) = log_guard().take() {
        stop(log);
    }
}

#[cfg(test)]
mod tests;
