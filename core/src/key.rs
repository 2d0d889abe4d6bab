//! Key types. None of them is `Clone`; each zeroizes its bytes when dropped and prints only
//! its identifier in `Debug`, so that a stray `{:?}` in a log line cannot leak key material.

use std::fmt;
use std::sync::OnceLock;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hkdf::Hkdf;
use hmac::Hmac;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::MasterKeyError;
use crate::xaes::Xaes;

/// Length in bytes of master keys and data keys (AES-256).
pub const KEY_LEN: usize = 32;

/// HKDF salt for every derivation from the master key (docs/FORMAT.md §3).
const HKDF_SALT: &[u8] = b"redis-enc v1";
/// HKDF info label for data keys; followed by the key id (docs/FORMAT.md §3).
const DATA_KEY_INFO: &[u8] = b"redis-enc data key";
/// HKDF info label for the key-encryption key that wraps data keys (docs/FORMAT.md §2.3).
const WRAP_KEY_INFO: &[u8] = b"redis-enc key wrap";
/// HKDF info labels for the blind-index and key-name token keys, derived from a data key
/// (docs/FORMAT.md §8).
const INDEX_KEY_INFO: &[u8] = b"redis-enc blind index";
const TOKEN_KEY_INFO: &[u8] = b"redis-enc key-name token";
/// HKDF info label for the public master-key identifier (docs/FORMAT.md §3).
const MASTER_ID_INFO: &[u8] = b"redis-enc master key id";

/// Number of a keyring inside one server's key store. `0` is always the keyring `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyringId(pub u16);

/// Version of a data key inside a keyring; versions start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(pub u16);

/// Which data key sealed an envelope: stored in clear in its header (docs/FORMAT.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId {
    /// The keyring.
    pub keyring: KeyringId,
    /// The version inside that keyring.
    pub version: KeyVersion,
}

impl fmt::Display for KeyringId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The master key: 32 bytes held outside Redis, from which data keys are derived or by which
/// they are wrapped. It never leaves this type except through [`MasterKey::to_base64`], which
/// exists for `redis-enc keygen`.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl MasterKey {
    /// Makes a new random master key from the operating system's generator.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        MasterKey::from_bytes(bytes)
    }

    /// Decodes one line of base64 (surrounding whitespace ignored). `source` names where the
    /// text came from, for the error message; it never contains the key.
    pub fn from_base64(text: &str, source: &str) -> Result<MasterKey, MasterKeyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.contains(['\n', '\r']) {
            return Err(MasterKeyError::Malformed {
                source: source.to_owned(),
            });
        }
        let decoded =
            Zeroizing::new(
                STANDARD
                    .decode(trimmed)
                    .map_err(|_| MasterKeyError::Malformed {
                        source: source.to_owned(),
                    })?,
            );
        if decoded.len() != KEY_LEN {
            return Err(MasterKeyError::WrongSize {
                source: source.to_owned(),
                len: decoded.len(),
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey::from_bytes(bytes))
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let mut id = [0u8; 8];
        hkdf(bytes.as_ref(), MASTER_ID_INFO, &mut id);
        let id = id.iter().map(|b| format!("{b:02x}")).collect();
        MasterKey { bytes, id }
    }

    /// A public fingerprint of the key (16 hex digits), one-way derived with HKDF: lets an
    /// operator check that two servers hold the same master key without showing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as one line of base64, for writing a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_ref()))
    }

    /// Derives a 32-byte secret for another purpose, named by `label` (docs/FORMAT.md §3).
    pub(crate) fn derive_secret(&self, label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        hkdf(self.bytes.as_ref(), label, out.as_mut());
        out
    }

    /// Derives a 32-byte key-encryption key for wrapping data keys (docs/FORMAT.md §2.3).
    pub(crate) fn derive_wrapping_key(&self) -> Zeroizing<[u8; KEY_LEN]> {
        let mut kek = Zeroizing::new([0u8; KEY_LEN]);
        hkdf(self.bytes.as_ref(), WRAP_KEY_INFO, kek.as_mut());
        kek
    }

    /// Derives the data key `id` with HKDF-SHA256 (docs/FORMAT.md §3).
    pub fn derive_data_key(&self, id: KeyId) -> DataKey {
        let mut info = Vec::with_capacity(DATA_KEY_INFO.len() + 4);
        info.extend_from_slice(DATA_KEY_INFO);
        info.extend_from_slice(&id.keyring.0.to_be_bytes());
        info.extend_from_slice(&id.version.0.to_be_bytes());
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hkdf(self.bytes.as_ref(), &info, bytes.as_mut());
        DataKey::from_bytes(id, &bytes)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

fn hkdf(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm);
    // Output lengths used here are 8, 32 and 64 bytes, far below HKDF-SHA256's 8160-byte limit.
    hk.expand(info, out)
        .expect("HKDF output length is within bounds");
}

/// Sixteen random bytes from the operating system's generator, as lower-case hex: a value only
/// this process knows (the guard marks the refusals it makes with one).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A data key: the AES-256 key that seals and opens envelopes, held as a ready cipher.
///
/// The cipher's AES round keys and its derived keys are zeroized on drop (`crate::xaes`).
pub struct DataKey {
    id: KeyId,
    held: Box<Held>,
}

/// A data key's bytes and cipher, on the heap: moving a [`DataKey`] (into the store, across
/// threads) copies a pointer, not the key, so no copy is left behind where it was.
struct Held {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    cipher: Xaes,
    /// HMAC-SHA256 under the blind-index key (docs/FORMAT.md §8.1), keyed when first needed
    /// and cloned for each token (its state is wiped when dropped).
    index: OnceLock<Hmac<Sha256>>,
    /// The key-name token key, two AES-256 keys for AES-SIV (docs/FORMAT.md §8.2).
    token: OnceLock<Zeroizing<[u8; 2 * KEY_LEN]>>,
}

impl DataKey {
    /// Builds a data key from raw bytes (a copy; the caller wipes its own).
    pub fn from_bytes(id: KeyId, bytes: &[u8; KEY_LEN]) -> DataKey {
        DataKey {
            id,
            held: Box::new(Held {
                bytes: Zeroizing::new(*bytes),
                cipher: Xaes::new(bytes),
                index: OnceLock::new(),
                token: OnceLock::new(),
            }),
        }
    }

    /// A new random data key from the operating system's generator.
    pub fn generate(id: KeyId) -> DataKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        DataKey::from_bytes(id, &bytes)
    }

    /// The raw key, for wrapping it under a master key.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.held.bytes
    }

    /// A copy, for work done away from the store (wrapping it again); wiped when dropped.
    pub(crate) fn duplicate(&self) -> DataKey {
        DataKey::from_bytes(self.id, self.bytes())
    }

    /// The key's check value (FORMAT.md §2.3): 16 bytes of HMAC-SHA256 under the key, as hex.
    /// It commits to the key without revealing it, so a key unwrapped later can be recognised.
    pub fn check(&self) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        // HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.bytes()).expect("any key length");
        mac.update(b"redis-enc key check v1");
        let id = self.id;
        mac.update(&id.keyring.0.to_be_bytes());
        mac.update(&id.version.0.to_be_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Which keyring and version this key is.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// How many subkeys this key has derived (cache misses of its cipher).
    pub fn derivations(&self) -> u64 {
        self.held.cipher.derived()
    }

    /// How many values this key has sealed since this process loaded it.
    pub fn sealed(&self) -> u64 {
        self.held.cipher.sealed()
    }

    /// An HMAC-SHA256 keyed with the blind-index key, HKDF-SHA256 of this key with its own
    /// label, so that a token never tells anything about the data key; a fresh copy of the
    /// keyed state for each token.
    pub(crate) fn index_mac(&self) -> Hmac<Sha256> {
        self.held
            .index
            .get_or_init(|| {
                let mut out = Zeroizing::new([0u8; KEY_LEN]);
                hkdf(self.bytes().as_ref(), INDEX_KEY_INFO, out.as_mut());
                <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(out.as_ref())
                    .expect("HMAC takes keys of any length")
            })
            .clone()
    }

    /// The AES-SIV key that makes key-name tokens, derived likewise with another label.
    pub(crate) fn token_key(&self) -> &[u8; 2 * KEY_LEN] {
        self.held.token.get_or_init(|| {
            let mut out = Zeroizing::new([0u8; 2 * KEY_LEN]);
            hkdf(self.bytes().as_ref(), TOKEN_KEY_INFO, out.as_mut());
            out
        })
    }

    pub(crate) fn cipher(&self) -> &Xaes {
        &self.held.cipher
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("keyring", &self.id.keyring.0)
            .field("version", &self.id.version.0)
            .finish()
    }
}

/// Overwrites the stack just below the caller's frame, where the functions it called left
/// transient copies of keys (values built there before moving to the heap, cipher states).
/// Called after work on raw keys (keyring changes, unwrapping), by the frame that did it, on
/// the thread that did it.
pub fn scrub_stack() {
    scrub::<{ 64 * 1024 / 8 }>();
}

/// Overwrites `WORDS` eight-byte words of the stack below the caller's frame.
#[inline(never)]
pub(crate) fn scrub<const WORDS: usize>() {
    let mut area = [0u64; WORDS];
    area.zeroize();
    std::hint::black_box(&area);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn debug_output_shows_only_the_identifier() {
        let master = MasterKey::from_base64(KEY_B64, "test").unwrap();
        let debug = format!("{master:?}");
        assert_eq!(debug, format!("MasterKey {{ id: \"{}\" }}", master.id()));
        let data = master.derive_data_key(KeyId {
            keyring: KeyringId(0),
            version: KeyVersion(1),
        });
        assert_eq!(format!("{data:?}"), "DataKey { keyring: 0, version: 1 }");
    }

    #[test]
    fn master_key_id_is_stable_and_not_the_key() {
        let master = MasterKey::from_base64(KEY_B64, "test").unwrap();
        assert_eq!(master.id().len(), 16);
        assert_eq!(
            master.id(),
            MasterKey::from_base64(KEY_B64, "test").unwrap().id()
        );
        assert_ne!(master.id(), MasterKey::generate().id());
        assert!(!KEY_B64.contains(master.id()));
    }

    #[test]
    fn malformed_and_wrong_sized_keys_are_refused() {
        assert!(matches!(
            MasterKey::from_base64("not base64!", "file k"),
            Err(MasterKeyError::Malformed { .. })
        ));
        assert!(matches!(
            MasterKey::from_base64("", "file k"),
            Err(MasterKeyError::Malformed { .. })
        ));
        assert_eq!(
            MasterKey::from_base64("AAAA", "file k").unwrap_err(),
            MasterKeyError::WrongSize {
                source: "file k".into(),
                len: 3
            }
        );
        let two_lines = format!("{KEY_B64}\n{KEY_B64}");
        assert!(matches!(
            MasterKey::from_base64(&two_lines, "file k"),
            Err(MasterKeyError::Malformed { .. })
        ));
    }

    #[test]
    fn base64_round_trip() {
        let master = MasterKey::from_base64(&format!("  {KEY_B64}\n"), "test").unwrap();
        assert_eq!(master.to_base64().as_str(), KEY_B64);
    }
}
