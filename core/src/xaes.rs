//! XAES-256-GCM (C2SP) as envelopes use it: the standard composition of a NIST SP 800-108r1
//! counter-mode KDF over CMAC-AES-256 (RustCrypto `cmac`) and AES-256-GCM (`ring`, through
//! `redis-enc-gcm`), with the derived keys kept for reuse (docs/FORMAT.md §1.3).
//!
//! The 24-byte nonce N splits into N[:12], which with the data key K derives the AES-256-GCM
//! key Kx = CMAC_K(0x00 0x01 'X' 0x00 || N[:12]) || CMAC_K(0x00 0x02 'X' 0x00 || N[:12]),
//! and N[12:], the AES-256-GCM nonce. Deriving and expanding Kx costs more than sealing a
//! short value, so:
//!
//! - a sealer draws a random N[:12] once per [`SEALS_PER_PREFIX`] values; N[12:] is the value's
//!   number under that prefix (4 bytes) and 8 random bytes, so under one Kx no GCM nonce
//!   repeats and at most 2^20 messages are sealed, far inside NIST SP 800-38D's 2^32;
//! - an opener keeps the key it seals under and the last [`CACHED_PREFIXES`] other derived
//!   keys that opened a value, so values sealed in one run open without deriving again.
//!
//! The envelopes are ordinary XAES-256-GCM: any implementation opens them, and this one opens
//! envelopes whose nonces are fully random. The same implementation, behind the RustCrypto
//! `aead` traits ([`XaesAead`]), wraps data keys and seals backup files.

use std::sync::{Arc, Mutex, MutexGuard};

use aes::Aes256;
use cmac::{Cmac, KeyInit, Mac};
use rand::RngCore;
use redis_enc_gcm::Aes256GcmKey;

/// Length of the XAES-256-GCM nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the nonce half that derives the key.
const PREFIX_LEN: usize = 12;
/// Values sealed under one derived key before a sealer draws a new nonce prefix.
pub(crate) const SEALS_PER_PREFIX: u32 = 1 << 20;
/// Derived keys an opener keeps, besides the one it seals under.
pub(crate) const CACHED_PREFIXES: usize = 16;

/// Authentication failed, or the input was too long for AES-256-GCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

/// An XAES-256-GCM key with its derived-key cache.
pub(crate) struct Xaes {
    /// CMAC-AES-256 keyed with K; cloned for each derivation. The `aes` and `cmac` crates
    /// zeroize the round keys and state on drop (feature `zeroize`).
    kdf: Cmac<Aes256>,
    cache: Mutex<Cache>,
}

type Prefix = [u8; PREFIX_LEN];

/// The prefix new values are sealed under.
struct Sealing {
    prefix: Prefix,
    key: Arc<Aes256GcmKey>,
    /// Values sealed under `prefix` so far; it numbers the next one.
    used: u32,
}

#[derive(Default)]
struct Cache {
    sealing: Option<Sealing>,
    /// Keys for other prefixes, most recently used first. A key joins only after it opened a
    /// value, so forged envelopes cannot push real keys out.
    keys: Vec<(Prefix, Arc<Aes256GcmKey>)>,
    derived: u64,
    /// Nonces drawn for sealing since the key was loaded.
    sealed: u64,
}

/// A nonce drawn for one seal, with the key it seals under.
pub(crate) struct Prepared {
    nonce: [u8; NONCE_LEN],
    key: Arc<Aes256GcmKey>,
}

impl Prepared {
    /// The nonce the value is sealed under.
    pub(crate) fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// Encrypts `in_out` in place; returns the tag.
    pub(crate) fn seal(&self, aad: &[u8], in_out: &mut [u8]) -> Result<[u8; 16], Failed> {
        self.key
            .seal_in_place(gcm_nonce(&self.nonce), aad, in_out)
            .map_err(|_| Failed)
    }
}

fn prefix_of(nonce: &[u8; NONCE_LEN]) -> &Prefix {
    nonce[..PREFIX_LEN].try_into().expect("12-byte prefix")
}

fn gcm_nonce(nonce: &[u8; NONCE_LEN]) -> &[u8; 12] {
    nonce[PREFIX_LEN..].try_into().expect("12-byte GCM nonce")
}

impl Xaes {
    pub(crate) fn new(key: &[u8; 32]) -> Xaes {
        Xaes {
            kdf: <Cmac<Aes256> as KeyInit>::new(key.into()),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Kx for one nonce prefix, expanded, on the heap; the stack its derivation used (CMAC
    /// blocks, the key schedule built before it moved) is overwritten. It runs once per
    /// prefix a key seals or opens under, not per value.
    #[inline(never)]
    fn derive(&self, prefix: &Prefix) -> Arc<Aes256GcmKey> {
        let key = self.derive_now(prefix);
        crate::key::scrub::<{ 16 * 1024 / 8 }>();
        key
    }

    /// Kx for one nonce prefix (C2SP XAES-256-GCM, steps 2 to 4).
    #[inline(never)]
    fn derive_now(&self, prefix: &Prefix) -> Arc<Aes256GcmKey> {
        let mut kx = zeroize::Zeroizing::new([0u8; 32]);
        for (counter, half) in [1u8, 2].into_iter().zip(kx.chunks_exact_mut(16)) {
            let mut mac = self.kdf.clone();
            mac.update(&[0x00, counter, b'X', 0x00]);
            mac.update(prefix);
            half.copy_from_slice(&mac.finalize().into_bytes());
        }
        Arc::new(Aes256GcmKey::new(&kx))
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break half-way.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws the nonce for the next seal: the current prefix (a new random one every
    /// [`SEALS_PER_PREFIX`] values), then the value's number under that prefix (4 bytes,
    /// big-endian) and 8 random bytes. Under one prefix no two nonces are equal; nothing is
    /// written anywhere until the nonce and the key exist.
    pub(crate) fn prepare(&self) -> Prepared {
        let mut nonce = [0u8; NONCE_LEN];
        let mut cache = self.lock();
        let fresh = cache
            .sealing
            .as_ref()
            .is_none_or(|s| s.used >= SEALS_PER_PREFIX);
        if fresh {
            let mut prefix = [0u8; PREFIX_LEN];
            rand::thread_rng().fill_bytes(&mut prefix);
            let key = self.derive(&prefix);
            cache.derived += 1;
            cache.sealing = Some(Sealing {
                prefix,
                key,
                used: 0,
            });
        }
        let sealing = cache
            .sealing
            .as_mut()
            .expect("a sealing prefix was just set");
        nonce[..PREFIX_LEN].copy_from_slice(&sealing.prefix);
        nonce[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&sealing.used.to_be_bytes());
        sealing.used += 1;
        let key = Arc::clone(&sealing.key);
        cache.sealed += 1;
        drop(cache);
        rand::thread_rng().fill_bytes(&mut nonce[PREFIX_LEN + 4..]);
        Prepared { nonce, key }
    }

    /// A seal under a caller-chosen nonce (known-answer tests only).
    #[cfg(test)]
    pub(crate) fn prepare_with_nonce(&self, nonce: &[u8; NONCE_LEN]) -> Prepared {
        Prepared {
            nonce: *nonce,
            key: self.derive(prefix_of(nonce)),
        }
    }

    /// Encrypts `in_out` in place under a fresh nonce; returns the nonce and the tag.
    #[cfg(test)]
    pub(crate) fn seal(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; 16]), Failed> {
        let prepared = self.prepare();
        let tag = prepared.seal(aad, in_out)?;
        Ok((prepared.nonce, tag))
    }

    /// Authenticates and decrypts `in_out` in place; on failure `in_out` is zeroed.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), Failed> {
        let prefix = prefix_of(nonce);
        if let Some(key) = self.cached(prefix) {
            return key
                .open_in_place(gcm_nonce(nonce), aad, in_out, tag)
                .map_err(|_| Failed);
        }
        let key = self.derive(prefix);
        let opened = key
            .open_in_place(gcm_nonce(nonce), aad, in_out, tag)
            .map_err(|_| Failed);
        self.lock().derived += 1;
        if opened.is_ok() {
            self.remember(prefix, key);
        }
        opened
    }

    /// Encrypts `in_out` in place under a nonce the caller chose; returns the tag. Only for
    /// the constructions that number their messages themselves under a key of their own (a
    /// wrapped key, a backup file's STREAM), never for a data key's envelopes.
    fn seal_at(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], Failed> {
        let prefix = prefix_of(nonce);
        let key = self.cached(prefix).unwrap_or_else(|| {
            let key = self.derive(prefix);
            self.lock().derived += 1;
            self.remember(prefix, Arc::clone(&key));
            key
        });
        key.seal_in_place(gcm_nonce(nonce), aad, in_out)
            .map_err(|_| Failed)
    }

    /// The derived key kept for `prefix`, moved to the front of the cache.
    fn cached(&self, prefix: &Prefix) -> Option<Arc<Aes256GcmKey>> {
        let mut cache = self.lock();
        match &cache.sealing {
            Some(s) if &s.prefix == prefix => Some(Arc::clone(&s.key)),
            _ => cache.keys.iter().position(|(p, _)| p == prefix).map(|i| {
                cache.keys[..=i].rotate_right(1);
                Arc::clone(&cache.keys[0].1)
            }),
        }
    }

    /// Keeps the derived key for `prefix`, pushing out the least recently used.
    fn remember(&self, prefix: &Prefix, key: Arc<Aes256GcmKey>) {
        let mut cache = self.lock();
        cache.keys.insert(0, (*prefix, key));
        cache.keys.truncate(CACHED_PREFIXES);
    }

    /// How many keys have been derived so far (each a cache miss, or a new sealing prefix).
    pub(crate) fn derived(&self) -> u64 {
        self.lock().derived
    }

    /// How many values this key has sealed since it was loaded.
    pub(crate) fn sealed(&self) -> u64 {
        self.lock().sealed
    }
}

mod aead;
pub(crate) use aead::XaesAead;

#[cfg(test)]
mod tests;
