//! Checking that bytes are a whole RDB file, as they stream: the magic and version at the
//! start (`REDIS` and four digits; Valkey 9 and later write `VALKEY` and three), and at the end the end-of-file opcode (0xFF) followed by
//! the CRC-64 (Jones, as Redis computes it) of everything before the checksum. A checksum of 0
//! means the server was set not to compute one (`rdbchecksum no`); the opcode is still checked.
//! A backup of a truncated or foreign stream would otherwise be reported intact, and restored.

use crc::{Crc, Digest, Table, CRC_64_REDIS};

/// Slice-by-16 tables: about five times the byte-at-a-time table's speed, so that checking a
/// backup's RDB costs less than decrypting it.
type Tables = Table<16>;

static CRC64: Crc<u64, Tables> = Crc::<u64, Tables>::new(&CRC_64_REDIS);

/// The length of the checksum at the end.
const CHECKSUM: usize = 8;

/// An RDB file, fed in pieces.
pub struct RdbCheck {
    digest: Digest<'static, u64, Tables>,
    head: Vec<u8>,
    /// The last bytes seen, not yet in the digest (the checksum, at the end).
    held: Vec<u8>,
    /// The last byte that went into the digest.
    last: Option<u8>,
}

impl Default for RdbCheck {
    fn default() -> Self {
        RdbCheck {
            digest: CRC64.digest(),
            head: Vec::with_capacity(9),
            held: Vec::with_capacity(2 * CHECKSUM),
            last: None,
        }
    }
}

impl RdbCheck {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        if self.head.len() < 9 {
            let take = (9 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        if bytes.len() >= CHECKSUM {
            // Release what was held, and all but the last 8 bytes of this piece.
            self.release_held();
            let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM);
            self.digest.update(body);
            if let Some(b) = body.last() {
                self.last = Some(*b);
            }
            self.held.extend_from_slice(tail);
        } else {
            self.held.extend_from_slice(bytes);
            if self.held.len() > CHECKSUM {
                let release = self.held.len() - CHECKSUM;
                let released: Vec<u8> = self.held.drain(..release).collect();
                self.digest.update(&released);
                self.last = released.last().copied().or(self.last);
            }
        }
    }

    fn release_held(&mut self) {
        if !self.held.is_empty() {
            self.digest.update(&self.held);
            self.last = self.held.last().copied();
            self.held.clear();
        }
    }

    /// Whether what was fed is a whole RDB file; the error says what is wrong.
    pub fn finish(self) -> Result<(), &'static str> {
        let digits = |from: usize| self.head[from..].iter().all(u8::is_ascii_digit);
        let magic_ok = self.head.len() == 9
            && ((self.head.starts_with(b"REDIS") && digits(5))
                || (self.head.starts_with(b"VALKEY") && digits(6)));
        if !magic_ok {
            return Err("it does not start like an RDB file");
        }
        if self.held.len() != CHECKSUM || self.last != Some(0xff) {
            return Err("it does not end like an RDB file (cut short?)");
        }
        let stored = u64::from_le_bytes(self.held.try_into().unwrap_or([0; CHECKSUM]));
        if stored != 0 && stored != self.digest.finalize() {
            return Err("its checksum does not match (damaged in transit?)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdb(body: &[u8], checksum: bool) -> Vec<u8> {
        rdb_with(b"REDIS0010", body, checksum)
    }

    fn rdb_with(magic: &[u8], body: &[u8], checksum: bool) -> Vec<u8> {
        let mut file = magic.to_vec();
        file.extend_from_slice(body);
        file.push(0xff);
        let sum = if checksum { CRC64.checksum(&file) } else { 0 };
        file.extend_from_slice(&sum.to_le_bytes());
        file
    }

    fn check_in_pieces(bytes: &[u8], piece: usize) -> Result<(), &'static str> {
        let mut check = RdbCheck::default();
        for chunk in bytes.chunks(piece.max(1)) {
            check.update(chunk);
        }
        check.finish()
    }

    #[test]
    fn whole_files_pass_in_any_pieces_and_damaged_ones_fail() {
        let good = rdb(b"\xfa\x09redis-ver\x067.0.15\xfe\x00", true);
        for piece in [1, 3, 8, 9, 64, 4096] {
            assert_eq!(check_in_pieces(&good, piece), Ok(()), "pieces of {piece}");
        }
        assert_eq!(
            check_in_pieces(&rdb(b"x", false), 5),
            Ok(()),
            "rdbchecksum no"
        );
        let valkey9 = rdb_with(b"VALKEY080", b"\xfe\x00", true);
        assert_eq!(check_in_pieces(&valkey9, 4), Ok(()), "Valkey 9's magic");
        for foreign in [&b"VALKEYX80"[..], b"REDIS001x", b"KEYDB0010"] {
            let file = rdb_with(foreign, b"\xfe\x00", true);
            assert!(check_in_pieces(&file, 4).is_err(), "{foreign:?}");
        }
        let mut flipped = good.clone();
        flipped[12] ^= 1;
        assert!(check_in_pieces(&flipped, 7)
            .unwrap_err()
            .contains("checksum"));
        assert!(check_in_pieces(&good[..good.len() - 3], 7)
            .unwrap_err()
            .contains("end"));
        assert!(check_in_pieces(b"junk that is no rdb at all", 4)
            .unwrap_err()
            .contains("start"));
        assert!(check_in_pieces(b"", 4).is_err());
    }
}
