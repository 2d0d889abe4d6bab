//! Reading what a Redis primary sends a replica that asked for a full copy: reply lines, then
//! the reply to `SYNC` (newlines while the primary prepares the RDB, then `$<length>` and that
//! many bytes, or `$EOF:<40-byte mark>` and bytes up to the mark). Everything read is bounded:
//! what the backup tool reads comes from the network, and may come from something that only
//! pretends to be Redis.

use std::io::{BufRead, Read, Write};

/// The longest reply line read (a status, an error, a bulk length).
pub const MAX_LINE: u64 = 64 * 1024;

/// The most newlines a primary may send before the RDB: it sends one a second while it
/// prepares the RDB, so this is an hour's worth.
pub const MAX_KEEPALIVES: u32 = 3600;

/// One reply line without its line end, control characters made spaces, at most 300
/// characters; a server that sends no end of line within [`MAX_LINE`] bytes is refused.
pub fn reply_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .map_err(|e| format!("reading from the server: {e}"))?;
    if buf.is_empty() {
        return Err("the server closed the connection".into());
    }
    if buf.last() != Some(&b'\n') {
        return Err(format!(
            "the server sent a reply line longer than {MAX_LINE} bytes: not a Redis reply"
        ));
    }
    Ok(crate::text::printable(
        String::from_utf8_lossy(&buf).trim_end(),
    ))
}

/// Reads the reply to `SYNC` and copies the RDB it carries into `out`, calling `progress`
/// with the bytes copied so far; returns how many. The copy holds at most 1 MiB and the mark
/// in memory, whatever the transfer's size.
pub fn read_sync_reply(
    reader: &mut impl BufRead,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let mut keepalives = 0u32;
    let header = loop {
        let l = reply_line(reader)?;
        if !l.is_empty() {
            break l;
        }
        keepalives += 1;
        if keepalives > MAX_KEEPALIVES {
            return Err(format!(
                "the server sent {MAX_KEEPALIVES} empty lines and no snapshot"
            ));
        }
    };
    if let Some(err) = header.strip_prefix('-') {
        return Err(format!("the server refused SYNC: {err}"));
    }
    let spec = header
        .strip_prefix('$')
        .ok_or_else(|| format!("unexpected reply to SYNC: {header}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let write = |out: &mut dyn Write, bytes: &[u8]| {
        out.write_all(bytes)
            .map_err(|e| format!("writing the snapshot: {e}"))
    };
    if let Some(mark) = spec.strip_prefix("EOF:") {
        // Diskless: the RDB ends with the 40-byte mark; hold back that much until it shows.
        let mark = mark.as_bytes();
        if mark.len() != 40 {
            return Err(format!("unexpected reply to SYNC: {header}"));
        }
        let mut held: Vec<u8> = Vec::new();
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("reading the snapshot: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection before the snapshot ended".into());
            }
            held.extend_from_slice(&buf[..n]);
            if held.ends_with(mark) {
                let body = held.len() - mark.len();
                write(out, &held[..body])?;
                total += body as u64;
                progress(total);
                return Ok(total);
            }
            if held.len() > mark.len() {
                let release = held.len() - mark.len();
                write(out, &held[..release])?;
                total += release as u64;
                held.drain(..release);
                progress(total);
            }
        }
    }
    let len: u64 = spec
        .parse()
        .map_err(|_| format!("unexpected reply to SYNC: {header}"))?;
    while total < len {
        let want = usize::try_from(len - total)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = reader
            .read(&mut buf[..want])
            .map_err(|e| format!("reading the snapshot: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before the snapshot ended".into());
        }
        write(out, &buf[..n])?;
        total += n as u64;
        progress(total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(stream: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        read_sync_reply(&mut &stream[..], &mut out, |_| {}).map(|_| out)
    }

    #[test]
    fn both_transfer_forms_are_read() {
        assert_eq!(read(b"\n\n$5\r\nREDIS").unwrap(), b"REDIS");
        let mark = "m".repeat(40);
        let stream = format!("$EOF:{mark}\r\nREDIS0011{mark}");
        assert_eq!(read(stream.as_bytes()).unwrap(), b"REDIS0011");
    }

    #[test]
    fn hostile_streams_are_refused() {
        assert!(read(b"$5\r\nRED")
            .unwrap_err()
            .contains("before the snapshot ended"));
        assert!(read(b"-ERR no\r\n").unwrap_err().contains("refused SYNC"));
        assert!(read(b"$EOF:short\r\nxx")
            .unwrap_err()
            .contains("unexpected"));
        assert!(read(&vec![b'\n'; 4000])
            .unwrap_err()
            .contains("empty lines"));
        assert!(read(&vec![b'x'; 70_000])
            .unwrap_err()
            .contains("longer than"));
    }
}
