//! XAES-256-GCM behind the RustCrypto `aead` traits, for the constructions built on it rather
//! than on envelopes: a data key wrapped under a master key (one message under a key of its
//! own) and a backup file's STREAM (`aead-stream`, one nonce prefix for the whole file, so one
//! derivation for all its chunks).

use aead::array::Array;
use aead::consts::{U16, U24};
use aead::inout::InOutBuf;
use aead::{AeadCore, AeadInOut, Nonce, Tag, TagPosition};

use super::{Xaes, NONCE_LEN};

/// An XAES-256-GCM key for messages whose nonces the caller numbers.
pub(crate) struct XaesAead(Xaes);

impl XaesAead {
    pub(crate) fn new(key: &[u8; 32]) -> XaesAead {
        XaesAead(Xaes::new(key))
    }
}

impl AeadCore for XaesAead {
    type NonceSize = U24;
    type TagSize = U16;
    const TAG_POSITION: TagPosition = TagPosition::Postfix;
}

fn nonce_of(nonce: &Nonce<XaesAead>) -> &[u8; NONCE_LEN] {
    nonce.as_ref()
}

impl AeadInOut for XaesAead {
    fn encrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> aead::Result<Tag<Self>> {
        let in_out = buffer.into_out_with_copied_in();
        let tag = self
            .0
            .seal_at(nonce_of(nonce), associated_data, in_out)
            .map_err(|_| aead::Error)?;
        Ok(Array(tag))
    }

    fn decrypt_inout_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &Tag<Self>,
    ) -> aead::Result<()> {
        let in_out = buffer.into_out_with_copied_in();
        self.0
            .open(nonce_of(nonce), associated_data, in_out, tag.as_ref())
            .map_err(|_| aead::Error)
    }
}
