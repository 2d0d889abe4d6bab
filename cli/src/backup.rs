//! `redis-enc backup`, `verify`, `restore` and `inspect`: encrypted backups (docs/FORMAT.md §7).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use redis_enc_core::backup::{self, BackupWriter};
use redis_enc_core::provider::{Master, Provider};
use redis_enc_core::text::printable;
use redis_enc_core::wrap::Wrapper;
use serde_json::json;

use crate::replication;

/// A progress bar on a terminal, nothing otherwise.
pub(crate) fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn open_master(uri: &str) -> Result<Master, String> {
    if uri.contains("allow-http=yes") {
        eprintln!(
            "warning: the KMS is reached over plain http (allow-http=yes): its credentials and the \
             data keys it wraps travel in clear; use https:// outside a test"
        );
    }
    Provider::parse(uri)
        .and_then(|p| p.open())
        .map_err(|e| format!("master key: {e}"))
}

/// Writes on a thread of its own, so that encryption and disk I/O overlap.
struct ThreadedWriter {
    sender: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<BufWriter<File>>>>,
    pending: Vec<u8>,
}

const BLOCK: usize = 4 << 20;

impl ThreadedWriter {
    fn new(mut out: BufWriter<File>) -> ThreadedWriter {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || {
            for block in receiver {
                out.write_all(&block)?;
            }
            Ok(out)
        });
        ThreadedWriter {
            sender: Some(sender),
            thread: Some(thread),
            pending: Vec::with_capacity(BLOCK),
        }
    }

    fn send_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
        let sender = self
            .sender
            .as_ref()
            .ok_or_else(|| std::io::Error::other("writer closed"))?;
        sender
            .send(block)
            .map_err(|_| std::io::Error::other("the writer thread stopped (disk full?)"))
    }

    /// Waits for every byte to be written and gives the file back.
    fn finish(mut self) -> std::io::Result<BufWriter<File>> {
        self.send_pending()?;
        self.sender = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            _ => Err(std::io::Error::other("the writer thread failed")),
        }
    }
}

impl Write for ThreadedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= BLOCK {
            self.send_pending()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A file written under a temporary name and renamed into place only by `commit`; dropped
/// without `commit`, it is removed.
struct PendingFile {
    temp: PathBuf,
    target: PathBuf,
    file: Option<ThreadedWriter>,
}

impl PendingFile {
    fn create(target: &Path) -> Result<PendingFile, String> {
        if target.exists() {
            return Err(format!(
                "{} exists; remove it or choose another --out",
                target.display()
            ));
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
        let writer = ThreadedWriter::new(BufWriter::with_capacity(1 << 20, file));
        crate::cleanup::remember(&temp);
        Ok(PendingFile {
            temp,
            target: target.to_owned(),
            file: Some(writer),
        })
    }

    fn writer(&mut self) -> &mut ThreadedWriter {
        self.file.as_mut().expect("the file is open until commit")
    }

    fn commit(mut self) -> Result<(), String> {
        let writer = self.file.take().expect("the file is open until commit");
        let buffered = writer
            .finish()
            .map_err(|e| format!("cannot write {}: {e}", self.temp.display()))?;
        let file = buffered
            .into_inner()
            .map_err(|e| format!("cannot write {}: {e}", self.temp.display()))?;
        file.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", self.temp.display()))?;
        // A link fails if the name exists: a file created there while this one was written is
        // never replaced.
        fs::hard_link(&self.temp, &self.target).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} was created while this ran; it was left as it is (remove it or choose another --out)",
                self.target.display()
            ),
            _ => format!("cannot create {}: {e}", self.target.display()),
        })?;
        let _ = fs::remove_file(&self.temp);
        crate::cleanup::forget(&self.temp);
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(writer) = self.file.take() {
            let _ = writer.finish();
        }
        if self.temp.exists() {
            let _ = fs::remove_file(&self.temp);
        }
        crate::cleanup::forget(&self.temp);
    }
}

fn rate(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}

/// `redis-enc backup`.
#[allow(clippy::too_many_arguments)]
pub fn run_backup(
    url: Option<&str>,
    tls: Option<&replication::Tls>,
    rdb: Option<&Path>,
    user: Option<&str>,
    password_file: Option<&Path>,
    master_key: &str,
    out: &Path,
    json: bool,
) -> Result<(), String> {
    let master = open_master(master_key)?;
    let started = Instant::now();
    let mut pending = PendingFile::create(out)?;
    let made = crate::now_unix();
    let (source, plaintext, file_bytes) = match (url, rdb) {
        (Some(url), None) => {
            let target = replication::target(url, user, password_file)?;
            let source = format!("redis://{}:{}", target.host, target.port);
            let mut writer =
                BackupWriter::create(pending.writer(), master.wrapper(), &source, made)
                    .map_err(|e| e.to_string())?;
            let progress = bar(None, "backup");
            replication::snapshot(&target, tls, &mut writer, |n| progress.set_position(n))?;
            progress.finish_and_clear();
            let (plain, written, _) = writer
                .finish()
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            (source, plain, written)
        }
        (None, Some(path)) => {
            let mut input =
                File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let len = input.metadata().map(|m| m.len()).ok();
            let source = format!("rdb:{}", path.display());
            let mut writer =
                BackupWriter::create(pending.writer(), master.wrapper(), &source, made)
                    .map_err(|e| e.to_string())?;
            let progress = bar(len, "backup");
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if n == 0 {
                    break;
                }
                writer
                    .write_all(&buf[..n])
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                total += n as u64;
                progress.set_position(total);
            }
            progress.finish_and_clear();
            let (plain, written, _) = writer
                .finish()
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            (source, plain, written)
        }
        _ => return Err("give exactly one of --url and --rdb".into()),
    };
    pending.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        say!(
            "{}",
            json!({ "ok": true, "out": out.display().to_string(), "source": source, "rdb_bytes": plaintext,
                    "file_bytes": file_bytes, "seconds": seconds, "mb_per_s": rate(plaintext, seconds) })
        );
    } else {
        say!("backup of {source} written to {}", out.display());
        say!(
            "{plaintext} RDB bytes, {file_bytes} file bytes, {seconds:.2} s, {:.1} MB/s",
            rate(plaintext, seconds)
        );
    }
    Ok(())
}

fn unwrappers(master: &Master) -> Vec<&dyn Wrapper> {
    vec![master.wrapper()]
}

/// `redis-enc verify`: checks every chunk and the digest, writing nothing.
pub fn run_verify(input: &Path, master_key: &str, json: bool) -> Result<(), String> {
    let master = open_master(master_key)?;
    let started = Instant::now();
    let file = File::open(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let len = file.metadata().map(|m| m.len()).ok();
    let progress = bar(len, "verify");
    let result = backup::restore(
        BufReader::with_capacity(1 << 20, file),
        std::io::sink(),
        &unwrappers(&master),
        |n| progress.set_position(n),
    );
    progress.finish_and_clear();
    let (header, bytes) = result.map_err(|e| format!("{}: {e}", input.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        say!(
            "{}",
            json!({ "ok": true, "in": input.display().to_string(), "source": header.source, "rdb_bytes": bytes,
                    "seconds": seconds, "mb_per_s": rate(bytes, seconds) })
        );
    } else {
        say!(
            "{}: intact and complete ({bytes} RDB bytes from {})",
            input.display(),
            printable(&header.source)
        );
    }
    Ok(())
}

/// `redis-enc restore`: decrypts and verifies into a temporary file, renamed into place only
/// when the whole backup verified.
pub fn run_restore(input: &Path, master_key: &str, out: &Path, json: bool) -> Result<(), String> {
    let master = open_master(master_key)?;
    let started = Instant::now();
    let file = File::open(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let len = file.metadata().map(|m| m.len()).ok();
    let mut pending = PendingFile::create(out)?;
    let progress = bar(len, "restore");
    let result = backup::restore(
        BufReader::with_capacity(1 << 20, file),
        pending.writer(),
        &unwrappers(&master),
        |n| progress.set_position(n),
    );
    progress.finish_and_clear();
    let (header, bytes) = result.map_err(|e| format!("{}: {e}", input.display()))?;
    pending.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        say!(
            "{}",
            json!({ "ok": true, "in": input.display().to_string(), "out": out.display().to_string(),
                    "source": header.source, "rdb_bytes": bytes, "seconds": seconds, "mb_per_s": rate(bytes, seconds) })
        );
    } else {
        say!(
            "restored {bytes} RDB bytes from {} into {}",
            printable(&header.source),
            out.display()
        );
    }
    Ok(())
}

/// `redis-enc inspect`: the header and sizes, without a key.
pub fn run_inspect(input: &Path, json: bool) -> Result<(), String> {
    let mut file =
        File::open(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (header, raw) =
        backup::read_header(&mut file).map_err(|e| format!("{}: {e}", input.display()))?;
    let (chunks, rdb_bytes) = backup::sizes(file_len, raw.len() as u64);
    if json {
        say!(
            "{}",
            json!({ "format": header.format, "created": header.created, "source": header.source,
                    "key_id": header.wrapped_by, "file_bytes": file_len, "rdb_bytes": rdb_bytes, "chunks": chunks,
                    "chunk_size": header.chunk_size })
        );
    } else {
        say!("format       {}", header.format);
        say!("created      {} (Unix seconds)", header.created);
        // The header of a file not yet verified is anyone's text.
        say!("source       {}", printable(&header.source));
        say!("key id       {}", printable(&header.wrapped_by));
        say!("file bytes   {file_len}");
        say!("rdb bytes    {rdb_bytes}");
        say!("chunks       {chunks} of {} bytes", header.chunk_size);
    }
    Ok(())
}
