//! Wrapping data keys under a master key (docs/FORMAT.md §2.3).
//!
//! A data key is stored only wrapped: sealed with XAES-256-GCM under a key-encryption key
//! derived from the master key, with associated data naming the keyring and version, so a
//! wrapped key cannot be swapped for another one. Remote KMS providers wrap the same 32 bytes
//! with their own API; the [`Wrapper`] trait is what the keyring sees.

use aead::{inout::InOutBuf, AeadInOut};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::key::{DataKey, KeyId, MasterKey, KEY_LEN};
use crate::keyring::KeyringName;
use crate::xaes::XaesAead;

/// What a wrapped key is bound to.
pub struct WrapContext<'a> {
    /// The keyring's name.
    pub keyring: &'a KeyringName,
    /// Keyring id and version.
    pub id: KeyId,
}

impl WrapContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let name = self.keyring.as_str().as_bytes();
        let mut aad = Vec::with_capacity(32 + name.len());
        aad.extend_from_slice(b"redis-enc wrapped key v1");
        // A keyring name is at most MAX_NAME_LEN (64) bytes.
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&name_len.to_be_bytes());
        aad.extend_from_slice(name);
        aad.extend_from_slice(&self.id.keyring.0.to_be_bytes());
        aad.extend_from_slice(&self.id.version.0.to_be_bytes());
        aad
    }
}

/// Something that wraps and unwraps data keys: the local master key, or a KMS. Shared by the
/// threads that unwrap many keys at once.
pub trait Wrapper: Sync {
    /// Names the wrapping key (`local:<master key id>` for a local master key); stored next to
    /// each wrapped key so that the right wrapper is chosen to unwrap it.
    fn wrapper_id(&self) -> String;
    /// Wraps a data key.
    fn wrap(&self, key: &DataKey, context: &WrapContext<'_>) -> Result<Vec<u8>, Error>;
    /// Unwraps a data key; [`Error::DecryptFailed`] if it was not wrapped by this wrapper.
    fn unwrap(&self, wrapped: &[u8], context: &WrapContext<'_>) -> Result<DataKey, Error>;
    /// Whether this wrapper works in the process (a local master key), not through a KMS.
    fn is_local(&self) -> bool {
        false
    }
    /// Makes a new data key and its wrapped form. A KMS may generate the key itself.
    fn generate(&self, context: &WrapContext<'_>) -> Result<(DataKey, Vec<u8>), Error> {
        let key = DataKey::generate(context.id);
        let wrapped = self.wrap(&key, context)?;
        Ok((key, wrapped))
    }
}

impl WrapContext<'_> {
    /// The associated data bound to a wrapped key (§2.3); KMS providers send it as their
    /// associated data or encryption context.
    pub fn binding(&self) -> Vec<u8> {
        self.associated_data()
    }
}

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Length of a key wrapped by a local master key: nonce, ciphertext, tag.
pub const LOCAL_WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

impl Wrapper for MasterKey {
    fn wrapper_id(&self) -> String {
        format!("local:{}", self.id())
    }

    fn is_local(&self) -> bool {
        true
    }

    fn wrap(&self, key: &DataKey, context: &WrapContext<'_>) -> Result<Vec<u8>, Error> {
        let kek = XaesAead::new(&self.derive_wrapping_key());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(LOCAL_WRAPPED_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(key.bytes());
        let tag = kek
            .encrypt_inout_detached(
                (&nonce).into(),
                &context.associated_data(),
                (&mut out[NONCE_LEN..]).into(),
            )
            .map_err(|_| Error::DecryptFailed)?;
        out.extend_from_slice(tag.as_slice());
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &WrapContext<'_>) -> Result<DataKey, Error> {
        if wrapped.len() != LOCAL_WRAPPED_LEN {
            return Err(Error::DecryptFailed);
        }
        let kek = XaesAead::new(&self.derive_wrapping_key());
        let (nonce, rest) = wrapped.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(KEY_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::DecryptFailed)?;
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::DecryptFailed)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let buffer = InOutBuf::new(ciphertext, bytes.as_mut()).map_err(|_| Error::DecryptFailed)?;
        kek.decrypt_inout_detached(nonce.into(), &context.associated_data(), buffer, tag.into())
            .map_err(|_| Error::DecryptFailed)?;
        Ok(DataKey::from_bytes(context.id, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyVersion, KeyringId};

    #[test]
    fn wrapped_keys_are_bound_to_master_keyring_and_version() {
        let master = MasterKey::generate();
        let name = KeyringName::parse(b"t42").unwrap();
        let id = KeyId {
            keyring: KeyringId(3),
            version: KeyVersion(2),
        };
        let key = DataKey::generate(id);
        let ctx = WrapContext { keyring: &name, id };
        let wrapped = master.wrap(&key, &ctx).unwrap();
        assert_eq!(wrapped.len(), LOCAL_WRAPPED_LEN);
        assert_eq!(master.unwrap(&wrapped, &ctx).unwrap().bytes(), key.bytes());
        assert!(MasterKey::generate().unwrap(&wrapped, &ctx).is_err());
        let other = KeyringName::parse(b"t43").unwrap();
        assert!(master
            .unwrap(
                &wrapped,
                &WrapContext {
                    keyring: &other,
                    id
                }
            )
            .is_err());
        let other_version = KeyId {
            version: KeyVersion(3),
            ..id
        };
        assert!(master
            .unwrap(
                &wrapped,
                &WrapContext {
                    keyring: &name,
                    id: other_version
                }
            )
            .is_err());
        let mut flipped = wrapped.clone();
        flipped[30] ^= 1;
        assert!(master.unwrap(&flipped, &ctx).is_err());
    }
}
