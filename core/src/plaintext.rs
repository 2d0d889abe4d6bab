//! Opened plaintext, wiped when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};

use zeroize::Zeroize;

/// The plaintext of an opened value. Its bytes are zeroed when it drops, with the `zeroize`
/// crate's bulk fill for byte slices (a `Zeroizing<Vec<u8>>` wipes byte by byte, which costs
/// several microseconds for a 16 KiB value). `Debug` shows only the length.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    /// `len` zero bytes, to decrypt into.
    pub fn zeroed(len: usize) -> Plaintext {
        Plaintext(vec![0u8; len])
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Plaintext {
    fn from(bytes: Vec<u8>) -> Plaintext {
        Plaintext(bytes)
    }
}

impl From<&[u8]> for Plaintext {
    fn from(bytes: &[u8]) -> Plaintext {
        Plaintext(bytes.to_vec())
    }
}

impl Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Plaintext {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // Whole capacity: a vector built elsewhere may hold bytes beyond its length.
        self.0.resize(self.0.capacity(), 0);
        self.0.as_mut_slice().zeroize();
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(
            format!("{:?}", Plaintext::from(&b"secret"[..])),
            "Plaintext(6 bytes)"
        );
    }

    #[test]
    fn derefs_to_its_bytes() {
        let mut p = Plaintext::zeroed(3);
        p.copy_from_slice(b"abc");
        assert_eq!(&p[..], b"abc");
    }
}
