//! The audit log's writer thread: it takes events from the main thread, chains them, writes
//! them in batches and syncs the file; and how a log is resumed from its last lines.

use super::*;

/// The end of an existing log: its last complete line (to continue its chain), however long it
/// is, and the length of a last line cut short (no newline after it), if there is one. The file
/// is read backwards in blocks.
pub(super) struct Tail {
    pub(super) last: Option<String>,
    pub(super) torn: Option<usize>,
}

pub(super) fn tail_of(path: &str) -> Tail {
    let empty = Tail {
        last: None,
        torn: None,
    };
    let Ok(mut file) = File::open(path) else {
        return empty;
    };
    let Ok(meta) = file.metadata() else {
        return empty;
    };
    if !meta.is_file() || meta.len() == 0 {
        return empty;
    }
    let mut last_byte = [0u8; 1];
    let torn = file.seek(SeekFrom::End(-1)).is_ok()
        && file.read_exact(&mut last_byte).is_ok()
        && last_byte[0] != b'\n';
    let mut lines = last_lines(&mut file, meta.len(), if torn { 2 } else { 1 });
    let torn = torn.then(|| lines.pop().map_or(0, |l| l.len()));
    Tail {
        last: lines.pop().and_then(|l| String::from_utf8(l).ok()),
        torn,
    }
}

/// The last `n` non-empty lines of a file of `len` bytes, oldest first.
pub(super) fn last_lines(file: &mut File, len: u64, n: usize) -> Vec<Vec<u8>> {
    const BLOCK: u64 = 64 * 1024;
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        let content = trim_newlines(&tail);
        let starts = content.iter().filter(|b| **b == b'\n').count();
        if starts >= n || pos == 0 {
            let lines: Vec<Vec<u8>> = content
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            let skip = lines.len().saturating_sub(n);
            return lines.into_iter().skip(skip).collect();
        }
        let from = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; usize::try_from(pos - from).unwrap_or(0)];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut block).is_err() {
            return Vec::new();
        }
        block.extend_from_slice(&tail);
        tail = block;
        pos = from;
    }
}

pub(super) fn trim_newlines(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|b| *b != b'\n').map_or(0, |i| i + 1);
    &bytes[..end]
}

pub(super) fn write_loop(path: String, file: File, chain: Chain, receiver: Receiver<Message>) {
    // A panic here must not take the server down; the log is then reported failing.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write_messages(&path, file, chain, &receiver)
    }));
    if outcome.is_err() {
        WRITE_ERRORS.fetch_add(1, Ordering::Relaxed);
        FAILING.store(true, Ordering::SeqCst);
    }
}

pub(super) fn failed() {
    WRITE_ERRORS.fetch_add(1, Ordering::Relaxed);
    FAILING.store(true, Ordering::SeqCst);
}

/// Writes messages in order; a record is only counted as written once `write_all` and `flush`
/// succeeded, and only a successful write clears the failing state.
pub(super) fn write_messages(
    path: &str,
    mut file: File,
    mut chain: Chain,
    receiver: &Receiver<Message>,
) {
    let mut last_sync = Instant::now();
    let mut dirty = false;
    loop {
        let first = match receiver.recv_timeout(FSYNC_EVERY) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if dirty {
                    if file.sync_data().is_err() {
                        failed();
                    }
                    dirty = false;
                    last_sync = Instant::now();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = file.sync_all();
                return;
            }
        };
        // Take whatever else is queued, keeping the order of lines and reopen requests.
        let mut messages = vec![first];
        while let Ok(m) = receiver.try_recv() {
            messages.push(m);
        }
        let mut batch = String::new();
        for message in messages {
            match message {
                Message::Event(event) => {
                    batch.push_str(&chain.append(event));
                    batch.push('\n');
                }
                Message::Reopen | Message::Stop => {
                    flush_batch(&mut file, &mut batch, &mut dirty);
                    let _ = file.sync_all();
                    if let Message::Stop = message {
                        // Where the chain ends: a log that replaces this one continues from here.
                        set_position(chain.seq(), chain.head());
                        return;
                    }
                    match open_file(path) {
                        Ok(f) => file = f,
                        Err(_) => failed(),
                    }
                }
            }
        }
        // Written first, then published: the head INFO shows is always in the file.
        flush_batch(&mut file, &mut batch, &mut dirty);
        set_position(chain.seq(), chain.head());
        // Let records gather for a moment: one write for many, and no wake-up per record.
        std::thread::sleep(GATHER);
        if dirty && last_sync.elapsed() >= FSYNC_EVERY {
            if file.sync_data().is_err() {
                failed();
            }
            last_sync = Instant::now();
            dirty = false;
        }
    }
}

pub(super) fn set_position(seq: u64, head: String) {
    *HEAD.lock().unwrap_or_else(|p| p.into_inner()) = (seq, head);
}

/// Where the last log's chain stands: the next `seq` and the head.
pub(super) fn position() -> (u64, String) {
    HEAD.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub(super) fn flush_batch(file: &mut File, batch: &mut String, dirty: &mut bool) {
    if batch.is_empty() {
        return;
    }
    match file.write_all(batch.as_bytes()).and_then(|_| file.flush()) {
        Ok(()) => {
            FAILING.store(false, Ordering::SeqCst);
            *dirty = true;
        }
        Err(_) => failed(),
    }
    batch.clear();
}
