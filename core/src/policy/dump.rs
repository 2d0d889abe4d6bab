//! What the guard reads of a `DUMP` payload, as the server loads it: a plain string's value
//! (RDB type 0), and the fields of a hash (RDB types 4, a hash table, and 16, a listpack), so
//! that the guard can let `RESTORE` of a PHI value through when the string, or every value of
//! the hash, is an envelope bound to that key (and field): a slot migration moves keys with
//! `DUMP` and `RESTORE-ASKING`. Anything else, or anything this reader is unsure of, is `None`,
//! and the guard refuses: a refusal is the safe side. The payload comes from a client: any
//! bytes are read without a panic and without allocating much more than they hold.

/// RDB object types.
const STRING: u8 = 0;
const HASH: u8 = 4;
const HASH_LISTPACK: u8 = 16;
/// A payload ends with the RDB version (2 bytes) and a CRC-64 (8 bytes), which the server
/// checks before it loads the object.
const FOOTER: usize = 10;

/// The value of a `DUMP` payload of a plain-encoded string (RDB string encoding: type 0, then
/// a length, then the bytes); `None` for any other payload (an integer or compressed string
/// included) or a truncated one.
pub fn dump_string(payload: &[u8]) -> Option<&[u8]> {
    let (&STRING, rest) = payload.split_first()? else {
        return None;
    };
    let mut r = Reader(rest);
    match r.len_or_encoding()? {
        Len::Plain(n) => r.take(n),
        Len::Encoded(_) => None,
    }
}

/// Whether `payload` is a hash payload (with a valid checksum) of at least one field, every
/// field-value pair of which `accept` accepts. Pairs are read and given to `accept` one at a
/// time, and reading stops at the first refused, so a forged payload costs no more than its
/// own size: nothing is collected, and the checksum is checked before anything is parsed.
pub fn dump_hash_all(payload: &[u8], mut accept: impl FnMut(&[u8], &[u8]) -> bool) -> bool {
    let mut pairs = 0usize;
    let all = read_hash(payload, &mut |field, value| {
        pairs += 1;
        accept(field, value)
    });
    all.is_some() && pairs > 0
}

/// The checksum at the end of a `DUMP` payload: CRC-64 (Jones, as Redis computes it) of the
/// rest, little-endian.
fn checksum_ok(payload: &[u8]) -> bool {
    let Some(split) = payload.len().checked_sub(8) else {
        return false;
    };
    let (body, crc) = payload.split_at(split);
    let crc64 = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);
    crc.try_into()
        .is_ok_and(|c: [u8; 8]| u64::from_le_bytes(c) == crc64.checksum(body))
}

type Visit<'v> = dyn FnMut(&[u8], &[u8]) -> bool + 'v;

fn read_hash(payload: &[u8], visit: &mut Visit) -> Option<()> {
    if !checksum_ok(payload) {
        return None;
    }
    let body = payload.get(..payload.len().checked_sub(FOOTER)?)?;
    let (&kind, rest) = body.split_first()?;
    let mut r = Reader(rest);
    match kind {
        HASH => {
            let n = r.length()?;
            for _ in 0..n {
                let field = r.string()?;
                let value = r.string()?;
                visit(&field, &value).then_some(())?;
            }
            Some(())
        }
        HASH_LISTPACK => listpack_pairs(&r.string()?, visit),
        _ => None,
    }
}

/// An RDB length, or the special encoding of a string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn len_or_encoding(&mut self) -> Option<Len> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(
                    self.take(4)?.try_into().ok()?,
                ))),
                0x81 => Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
                _ => return None,
            },
            _ => Len::Encoded(b & 0x3f),
        })
    }

    fn length(&mut self) -> Option<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Some(n),
            Len::Encoded(_) => None,
        }
    }

    /// A string: plain, an integer (written back in decimal, as the server reads it), or
    /// LZF-compressed.
    fn string(&mut self) -> Option<Vec<u8>> {
        Some(match self.len_or_encoding()? {
            Len::Plain(n) => self.take(n)?.to_vec(),
            Len::Encoded(0) => i8::from_le_bytes(self.take(1)?.try_into().ok()?)
                .to_string()
                .into_bytes(),
            Len::Encoded(1) => i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                .to_string()
                .into_bytes(),
            Len::Encoded(2) => i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                .to_string()
                .into_bytes(),
            Len::Encoded(3) => {
                let compressed = self.length()?;
                let plain = self.length()?;
                let data = self.take(compressed)?;
                // LZF expands a byte to at most about 33 (a back-reference of 3 bytes copies
                // up to 264): a larger claim is a lie, refused before anything is allocated.
                if plain > compressed.saturating_mul(100) {
                    return None;
                }
                let out = lzf_rust::decompress_into_vec(data, usize::try_from(plain).ok()?).ok()?;
                if out.len() as u64 != plain {
                    return None;
                }
                out
            }
            Len::Encoded(_) => return None,
        })
    }
}

/// How many bytes a listpack entry's back-length takes, for an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// A little-endian integer of `bits` bits, sign-extended, in decimal.
fn int_text(bytes: &[u8], bits: u32) -> Vec<u8> {
    let mut raw = 0u64;
    for (i, byte) in bytes.iter().enumerate() {
        raw |= u64::from(*byte) << (8 * i);
    }
    let shift = 64 - bits;
    (i64::from_ne_bytes((raw << shift).to_ne_bytes()) >> shift)
        .to_string()
        .into_bytes()
}

/// One listpack entry at the start of `lp`: its value (integers in decimal) and its length
/// without the back-length.
fn listpack_entry(lp: &[u8]) -> Option<(Vec<u8>, usize)> {
    let b = *lp.first()?;
    let string = |header: usize, len: usize| -> Option<(Vec<u8>, usize)> {
        Some((
            lp.get(header..header.checked_add(len)?)?.to_vec(),
            header + len,
        ))
    };
    if b & 0x80 == 0 {
        return Some(((b & 0x7f).to_string().into_bytes(), 1));
    }
    if b & 0xc0 == 0x80 {
        return string(1, usize::from(b & 0x3f));
    }
    if b & 0xe0 == 0xc0 {
        return Some((int_text(&[*lp.get(1)?, b & 0x1f], 13), 2));
    }
    if b & 0xf0 == 0xe0 {
        return string(2, (usize::from(b & 0x0f) << 8) | usize::from(*lp.get(1)?));
    }
    match b {
        0xf0 => {
            let len = u32::from_le_bytes(lp.get(1..5)?.try_into().ok()?);
            string(5, usize::try_from(len).ok()?)
        }
        0xf1 => Some((int_text(lp.get(1..3)?, 16), 3)),
        0xf2 => Some((int_text(lp.get(1..4)?, 24), 4)),
        0xf3 => Some((int_text(lp.get(1..5)?, 32), 5)),
        0xf4 => Some((int_text(lp.get(1..9)?, 64), 9)),
        _ => None,
    }
}

/// The pairs of a listpack: total bytes (4, little-endian) equal to its length, an element
/// count (2), the entries, each followed by its back-length, and the end byte 0xFF last.
fn listpack_pairs(lp: &[u8], visit: &mut Visit) -> Option<()> {
    let total = u32::from_le_bytes(lp.get(..4)?.try_into().ok()?);
    if usize::try_from(total).ok()? != lp.len() || lp.last() != Some(&0xff) {
        return None;
    }
    let count = u16::from_le_bytes(lp.get(4..6)?.try_into().ok()?);
    let end = lp.len() - 1;
    let mut entries = 0usize;
    let mut field: Option<Vec<u8>> = None;
    let mut at = 6;
    while at < end {
        let (value, len) = listpack_entry(&lp[at..end])?;
        at += len + backlen_size(len);
        entries += 1;
        match field.take() {
            None => field = Some(value),
            Some(f) => visit(&f, &value).then_some(())?,
        }
    }
    if at != end || field.is_some() || (count != u16::MAX && usize::from(count) != entries) {
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_footer(mut body: Vec<u8>) -> Vec<u8> {
        body.extend_from_slice(&[10, 0]);
        let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    /// Every pair of a payload, or `None` if it is not read as a hash.
    fn dump_hash(payload: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut pairs = Vec::new();
        read_hash(payload, &mut |f, v| {
            pairs.push((f.to_vec(), v.to_vec()));
            true
        })?;
        Some(pairs)
    }

    /// A listpack of `entries` (already encoded, each with its back-length).
    fn listpack(entries: &[&[u8]], count: u16) -> Vec<u8> {
        let body: Vec<u8> = entries.concat();
        let total = u32::try_from(6 + body.len() + 1).unwrap();
        let mut lp = total.to_le_bytes().to_vec();
        lp.extend_from_slice(&count.to_le_bytes());
        lp.extend_from_slice(&body);
        lp.push(0xff);
        lp
    }

    fn rdb_string(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(bytes.len()).unwrap()];
        assert!(bytes.len() < 64);
        out.extend_from_slice(bytes);
        out
    }

    fn listpack_payload(lp: &[u8]) -> Vec<u8> {
        with_footer([vec![HASH_LISTPACK], rdb_string(lp)].concat())
    }

    #[test]
    fn a_listpack_hash_reads_strings_and_integer_fields() {
        // "ab" (6-bit string), 7 (7-bit uint), -2 (13-bit int), "xyz", 300 (16-bit int), "q".
        let lp = listpack(
            &[
                &[0x82, b'a', b'b', 3],
                &[0x07, 1],
                &[0xdf, 0xfe, 2],
                &[0x83, b'x', b'y', b'z', 4],
                &[0xf1, 0x2c, 0x01, 3],
                &[0x81, b'q', 2],
            ],
            6,
        );
        assert_eq!(
            dump_hash(&listpack_payload(&lp)).unwrap(),
            vec![
                (b"ab".to_vec(), b"7".to_vec()),
                (b"-2".to_vec(), b"xyz".to_vec()),
                (b"300".to_vec(), b"q".to_vec()),
            ]
        );
    }

    #[test]
    fn a_hash_table_reads_plain_integer_and_compressed_strings() {
        let mut payload = vec![HASH, 2];
        payload.extend(rdb_string(b"f"));
        payload.extend(rdb_string(b"v"));
        payload.extend([0xc0, 0xfb]); // the field -5, as an 8-bit integer
                                      // "abcabcabc" in LZF: 3 literals, then a back-reference copying 6 bytes from 3 back.
        payload.extend([0xc3, 6, 9, 2, b'a', b'b', b'c', 0x80, 2]);
        assert_eq!(
            dump_hash(&with_footer(payload)).unwrap(),
            vec![
                (b"f".to_vec(), b"v".to_vec()),
                (b"-5".to_vec(), b"abcabcabc".to_vec())
            ]
        );
    }

    #[test]
    fn anything_unsure_is_refused() {
        let two = [&[0x81, b'a', 2][..], &[0x81, b'b', 2][..]];
        let good = listpack_payload(&listpack(&two, 2));
        assert!(dump_hash(&good).is_some());
        let lp = listpack(&two, 2);
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            good[..good.len() - 11].to_vec(),
            // A string payload, a set, a ziplist hash.
            with_footer(vec![0, 1, b'x']),
            with_footer(vec![2, 0]),
            with_footer(vec![13, 0]),
            // A wrong element count, an odd number of entries, a wrong total.
            listpack_payload(&listpack(&two[..1], 1)),
            listpack_payload(&listpack(&two, 3)),
            listpack_payload(&lp[..lp.len() - 1]),
            // An entry running past the end.
            listpack_payload(&listpack(&[&[0x85, b'a', 2]], 1)),
            // A compressed string claiming far more than it can hold.
            with_footer(vec![
                HASH, 1, 0xc3, 1, 0x80, 0, 0, 0x40, 0, 0, b'a', 1, b'v',
            ]),
            // More pairs claimed than present.
            with_footer(vec![HASH, 3, 1, b'f', 1, b'v']),
        ];
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(dump_hash(case), None, "case {i}");
        }
        // A wrong checksum, an empty hash.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(dump_hash(&bad), None);
        assert!(!dump_hash_all(&with_footer(vec![HASH, 0]), |_, _| true));
        assert!(dump_hash_all(&good, |_, _| true));
    }

    #[test]
    fn reading_stops_at_the_first_refused_pair() {
        let entries: Vec<[u8; 2]> = (0..20u8).map(|i| [i, 1]).collect();
        let refs: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
        let payload = listpack_payload(&listpack(&refs, 20));
        let mut seen = 0;
        assert!(!dump_hash_all(&payload, |_, _| {
            seen += 1;
            false
        }));
        assert_eq!(seen, 1);
    }
}
