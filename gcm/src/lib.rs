//! AES-256-GCM keys for sealing and opening envelopes.
//!
//! The cipher is `ring`'s (AES-NI, and VAES with VPCLMULQDQ where the CPU has them). `ring`
//! does not wipe its key schedules when they drop, so [`Aes256GcmKey`] keeps the key inside a
//! `MaybeUninit` and zeroizes those bytes itself on drop. This is the only `unsafe` code in the
//! crates that handle key material, and it is one line: reading a value this crate initialised.

#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::mem::MaybeUninit;

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use zeroize::Zeroize;

/// AES-256-GCM key length in bytes.
pub const KEY_LEN: usize = 32;
/// AES-256-GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// AES-256-GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Authentication failed, or the input was longer than AES-256-GCM allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

// `drop` overwrites the key without running a destructor of its own: that is only lossless
// while `LessSafeKey` has none (it owns no heap memory). A `ring` that adds one fails here.
const _: () = assert!(!std::mem::needs_drop::<LessSafeKey>());

/// An AES-256-GCM key, expanded once; its round keys and hash key are zeroized on drop.
pub struct Aes256GcmKey {
    // Always initialised by `new`; only `drop` writes to it, and nothing reads it afterwards.
    key: MaybeUninit<LessSafeKey>,
}

impl Aes256GcmKey {
    /// Expands `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Aes256GcmKey {
        // A 32-byte slice is always a valid AES-256-GCM key.
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256-GCM key");
        Aes256GcmKey {
            key: MaybeUninit::new(LessSafeKey::new(unbound)),
        }
    }

    fn key(&self) -> &LessSafeKey {
        // SAFETY: `key` is initialised in `new` and stays initialised until `drop`, which is
        // the only place it is overwritten.
        #[allow(unsafe_code)]
        unsafe {
            self.key.assume_init_ref()
        }
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Failed> {
        let tag: Tag = self
            .key()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .map_err(|_| Failed)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Authenticates and decrypts `in_out` in place. On failure `in_out` is zeroed, so that
    /// no unauthenticated plaintext is left behind.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Failed> {
        let result = self.key().open_in_place_separate_tag(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            Tag::from(*tag),
            in_out,
            0..,
        );
        if result.is_err() {
            in_out.fill(0);
            return Err(Failed);
        }
        Ok(())
    }
}

impl Drop for Aes256GcmKey {
    fn drop(&mut self) {
        // `LessSafeKey` owns no heap memory and has no destructor of its own, so overwriting
        // it in place loses nothing; the zeroize crate's volatile write keeps this from being
        // optimised away.
        self.key.zeroize();
    }
}

impl fmt::Debug for Aes256GcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aes256GcmKey")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST GCM test vector (gcmEncryptExtIV256.rsp, Count = 0 of Keylen 256, IVlen 96,
    /// PTlen 128, AADlen 128, Taglen 128).
    #[test]
    fn nist_vector() {
        let key: [u8; 32] = hex("92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b")
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex("ac93a1a6145299bde902f21a").try_into().unwrap();
        let plaintext = hex("2d71bcfa914e4ac045b2aa60955fad24");
        let aad = hex("1e0889016f67601c8ebea4943bc23ad6");
        let key = Aes256GcmKey::new(&key);
        let mut buf = plaintext.clone();
        let tag = key.seal_in_place(&nonce, &aad, &mut buf).unwrap();
        assert_eq!(buf, hex("8995ae2e6df3dbf96fac7b7137bae67f"));
        assert_eq!(tag.to_vec(), hex("eca5aa77d51d4a0a14d9c51e1da474ab"));
        key.open_in_place(&nonce, &aad, &mut buf, &tag).unwrap();
        assert_eq!(buf, plaintext);
    }

    #[test]
    fn a_flipped_bit_fails_and_leaves_zeros() {
        let key = Aes256GcmKey::new(&[7u8; 32]);
        let nonce = [1u8; 12];
        let mut buf = b"some plaintext".to_vec();
        let tag = key.seal_in_place(&nonce, b"aad", &mut buf).unwrap();
        let mut bad = buf.clone();
        bad[0] ^= 1;
        assert_eq!(
            key.open_in_place(&nonce, b"aad", &mut bad, &tag),
            Err(Failed)
        );
        assert!(bad.iter().all(|&b| b == 0));
        let mut wrong_aad = buf.clone();
        assert_eq!(
            key.open_in_place(&nonce, b"aae", &mut wrong_aad, &tag),
            Err(Failed)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(
            format!("{:?}", Aes256GcmKey::new(&[9u8; 32])),
            "Aes256GcmKey"
        );
    }
}
