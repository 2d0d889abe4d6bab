//! The envelope: how one sealed value is laid out (docs/FORMAT.md §1).
//!
//! ```text
//! offset  size  field
//! 0       1     magic 0xE5
//! 1       1     format version (1)
//! 2       1     algorithm (1 = XAES-256-GCM)
//! 3       1     flags (bit 0 = PHI; other bits must be 0)
//! 4       2     keyring id, big-endian
//! 6       2     key version, big-endian
//! 8       24    nonce, random
//! 32      n     ciphertext
//! 32+n    16    tag
//! ```
//!
//! The associated data binds the 8 header bytes and the value's location: the Redis key name
//! and, for a hash field, the field name (§1.5). Nonces are drawn inside [`seal`]; callers never
//! supply one. The cipher and its nonce policy are in `crate::xaes`.

use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId};
use crate::plaintext::Plaintext;
use crate::xaes::{Prepared, Xaes};

/// First byte of every envelope.
pub const MAGIC: u8 = 0xE5;
/// The format version this module writes (§1.4).
pub const FORMAT_V1: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 8;
/// XAES-256-GCM nonce length in bytes.
pub const NONCE_LEN: usize = crate::xaes::NONCE_LEN;
/// GCM tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Format versions 1..=15 are reserved for redis-enc envelopes; together with the magic they
/// never start valid UTF-8 text (§1.4).
const RESERVED_VERSIONS: std::ops::RangeInclusive<u8> = 1..=15;
/// Largest plaintext GCM accepts (2^36 - 32 bytes).
const MAX_PLAINTEXT: u64 = (1 << 36) - 32;

/// The AEAD that sealed an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// XAES-256-GCM (C2SP), 192-bit random nonces.
    Xaes256Gcm,
}

impl Algorithm {
    fn id(self) -> u8 {
        match self {
            Algorithm::Xaes256Gcm => 1,
        }
    }

    fn from_id(id: u8) -> Option<Algorithm> {
        match id {
            1 => Some(Algorithm::Xaes256Gcm),
            _ => None,
        }
    }

    /// The algorithm's name as `ENC.INSPECT` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Xaes256Gcm => "XAES-256-GCM",
        }
    }
}

/// Envelope flags, authenticated as part of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// The value was written as protected health information.
    pub phi: bool,
}

impl Flags {
    const PHI: u8 = 0b0000_0001;

    fn to_byte(self) -> u8 {
        if self.phi {
            Flags::PHI
        } else {
            0
        }
    }

    fn from_byte(b: u8) -> Option<Flags> {
        if b & !Flags::PHI != 0 {
            return None;
        }
        Some(Flags {
            phi: b & Flags::PHI != 0,
        })
    }
}

/// Where a sealed value lives. The location is authenticated, so a value copied elsewhere
/// does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// The value of a string key.
    Value {
        /// The Redis key name.
        key: &'a [u8],
    },
    /// One field of a hash.
    HashField {
        /// The Redis key name of the hash.
        key: &'a [u8],
        /// The field name.
        field: &'a [u8],
    },
}

impl Location<'_> {
    const VALUE: u8 = 1;
    const HASH_FIELD: u8 = 2;

    /// Calls `f` with the associated data: header, a location tag, then each name with a
    /// 32-bit length (§1.5). Short associated data is built on the stack.
    fn with_associated_data<T>(
        &self,
        header: &[u8; HEADER_LEN],
        f: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (tag, key, field) = match *self {
            Location::Value { key } => (Location::VALUE, key, None),
            Location::HashField { key, field } => (Location::HASH_FIELD, key, Some(field)),
        };
        let len = HEADER_LEN + 1 + 4 + key.len() + field.map_or(0, |f| 4 + f.len());
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let aad = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap[..]
        };
        aad[..HEADER_LEN].copy_from_slice(header);
        aad[HEADER_LEN] = tag;
        let mut at = put_with_len(aad, HEADER_LEN + 1, key)?;
        if let Some(field) = field {
            at = put_with_len(aad, at, field)?;
        }
        debug_assert_eq!(at, len);
        f(aad)
    }
}

/// Writes `bytes` with a 32-bit big-endian length at `at`; returns the offset after them.
fn put_with_len(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<usize, Error> {
    let len = u32::try_from(bytes.len()).map_err(|_| Error::TooLarge)?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    out[at + 4..at + 4 + bytes.len()].copy_from_slice(bytes);
    Ok(at + 4 + bytes.len())
}

/// The clear-text header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The AEAD.
    pub algorithm: Algorithm,
    /// Flags.
    pub flags: Flags,
    /// Which data key sealed the value.
    pub key_id: KeyId,
}

impl Header {
    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let ring = self.key_id.keyring.0.to_be_bytes();
        let version = self.key_id.version.0.to_be_bytes();
        [
            MAGIC,
            FORMAT_V1,
            self.algorithm.id(),
            self.flags.to_byte(),
            ring[0],
            ring[1],
            version[0],
            version[1],
        ]
    }
}

/// Whether `bytes` carry the envelope magic and a reserved format version. A cheap test for
/// "was this written by redis-enc", used before anything is parsed.
pub fn looks_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == MAGIC && RESERVED_VERSIONS.contains(&bytes[1])
}

/// A parsed envelope, borrowing the stored bytes.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    header: Header,
    header_bytes: &'a [u8; HEADER_LEN],
    nonce: &'a [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

impl<'a> Envelope<'a> {
    /// Parses stored bytes (§1.4). Fails with [`Error::NotAnEnvelope`] when the magic is
    /// missing, [`Error::UnsupportedFormat`] for another reserved version, and
    /// [`Error::DecryptFailed`] for anything else that is wrong: too short, an unknown
    /// algorithm, reserved flag bits set.
    pub fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, Error> {
        if !looks_sealed(bytes) {
            return Err(Error::NotAnEnvelope);
        }
        if bytes[1] != FORMAT_V1 {
            return Err(Error::UnsupportedFormat(bytes[1]));
        }
        if bytes.len() < OVERHEAD {
            return Err(Error::DecryptFailed);
        }
        let (header_bytes, rest) = bytes.split_at(HEADER_LEN);
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let header_bytes: &[u8; HEADER_LEN] =
            header_bytes.try_into().map_err(|_| Error::DecryptFailed)?;
        let algorithm = Algorithm::from_id(header_bytes[2]).ok_or(Error::DecryptFailed)?;
        let flags = Flags::from_byte(header_bytes[3]).ok_or(Error::DecryptFailed)?;
        let key_id = KeyId {
            keyring: KeyringId(u16::from_be_bytes([header_bytes[4], header_bytes[5]])),
            version: KeyVersion(u16::from_be_bytes([header_bytes[6], header_bytes[7]])),
        };
        Ok(Envelope {
            header: Header {
                algorithm,
                flags,
                key_id,
            },
            header_bytes,
            nonce: nonce.try_into().map_err(|_| Error::DecryptFailed)?,
            ciphertext,
            tag: tag.try_into().map_err(|_| Error::DecryptFailed)?,
        })
    }

    /// The clear-text header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The envelope's bytes, as stored; equal to what [`Envelope::parse`] was given.
    pub fn to_vec(&self) -> Vec<u8> {
        [
            &self.header_bytes[..],
            &self.nonce[..],
            self.ciphertext,
            &self.tag[..],
        ]
        .concat()
    }

    /// Length of the plaintext this envelope holds.
    pub fn plaintext_len(&self) -> usize {
        self.ciphertext.len()
    }

    /// Authenticates and decrypts. `key` must be the data key named by the header; any
    /// failure is [`Error::DecryptFailed`].
    pub fn open(&self, key: &DataKey, location: &Location<'_>) -> Result<Plaintext, Error> {
        let mut out = Plaintext::from(self.ciphertext);
        self.decrypt_in_place(key, location, &mut out)?;
        Ok(out)
    }

    /// Like [`Envelope::open`], writing the plaintext into `out`, which must be exactly
    /// [`Envelope::plaintext_len`] bytes. On failure `out` is zeroed.
    pub fn open_into(
        &self,
        key: &DataKey,
        location: &Location<'_>,
        out: &mut [u8],
    ) -> Result<(), Error> {
        if out.len() != self.ciphertext.len() {
            out.fill(0);
            return Err(Error::DecryptFailed);
        }
        out.copy_from_slice(self.ciphertext);
        self.decrypt_in_place(key, location, out)
    }

    /// Authenticates and decrypts `buf`, which holds a copy of the ciphertext. On failure
    /// `buf` is zeroed.
    fn decrypt_in_place(
        &self,
        key: &DataKey,
        location: &Location<'_>,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        let opened = if key.id() == self.header.key_id {
            location.with_associated_data(self.header_bytes, |aad| {
                key.cipher()
                    .open(self.nonce, aad, buf, self.tag)
                    .map_err(|_| Error::DecryptFailed)
            })
        } else {
            Err(Error::DecryptFailed)
        };
        if opened.is_err() {
            buf.fill(0);
            return Err(Error::DecryptFailed);
        }
        Ok(())
    }
}

/// Seals `plaintext` for `location` under `key`, with a fresh nonce (§1.3: a random 96-bit
/// prefix shared by at most 2^20 values, then 96 random bits per value).
pub fn seal(
    key: &DataKey,
    flags: Flags,
    location: &Location<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; OVERHEAD + plaintext.len()];
    seal_into(key, flags, location, plaintext, &mut out)?;
    Ok(out)
}

/// Like [`seal`], writing the envelope into `out`, which must be exactly
/// `plaintext.len() + OVERHEAD` bytes (a server-side buffer, so that no copy is made).
pub fn seal_into(
    key: &DataKey,
    flags: Flags,
    location: &Location<'_>,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    seal_parts(key, flags, location, plaintext, out, Xaes::prepare)
}

/// Lays out header, nonce, ciphertext and tag in `out`. The nonce and key are drawn by
/// `prepare` before anything is written, so a failure there (a panicking random generator)
/// cannot leave plaintext in `out`.
fn seal_parts(
    key: &DataKey,
    flags: Flags,
    location: &Location<'_>,
    plaintext: &[u8],
    out: &mut [u8],
    prepare: impl FnOnce(&Xaes) -> Prepared,
) -> Result<(), Error> {
    if plaintext.len() as u64 > MAX_PLAINTEXT || out.len() != plaintext.len() + OVERHEAD {
        return Err(Error::TooLarge);
    }
    let header = Header {
        algorithm: Algorithm::Xaes256Gcm,
        flags,
        key_id: key.id(),
    };
    let header_bytes = header.to_bytes();
    let prepared = prepare(key.cipher());
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    let (nonce_out, rest) = rest.split_at_mut(NONCE_LEN);
    let (body, tag_out) = rest.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    let tag = location
        .with_associated_data(&header_bytes, |aad| {
            prepared.seal(aad, body).map_err(|_| Error::TooLarge)
        })
        .inspect_err(|_| body.fill(0))?;
    head.copy_from_slice(&header_bytes);
    nonce_out.copy_from_slice(prepared.nonce());
    tag_out.copy_from_slice(&tag);
    Ok(())
}

/// Seals with a caller-chosen nonce. Reusing a nonce under one key is catastrophic; this exists
/// only so that the known-answer vectors in `tests/data/` can be checked in both directions.
#[cfg(test)]
pub(crate) fn seal_with_nonce_for_known_answer_tests(
    key: &DataKey,
    flags: Flags,
    location: &Location<'_>,
    plaintext: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; OVERHEAD + plaintext.len()];
    seal_parts(key, flags, location, plaintext, &mut out, |cipher| {
        cipher.prepare_with_nonce(nonce)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests;
