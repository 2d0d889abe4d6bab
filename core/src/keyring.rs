//! Keyring names, and what opening a value gives.

use crate::Plaintext;

use crate::envelope::Header;
use crate::error::Error;

/// Longest keyring name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A valid keyring name: 1 to 64 printable ASCII characters without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyringName(String);

impl KeyringName {
    /// The keyring every server has.
    pub fn default_name() -> KeyringName {
        KeyringName("default".to_owned())
    }

    /// Parses a name given by a user.
    pub fn parse(bytes: &[u8]) -> Result<KeyringName, Error> {
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_NAME_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(Error::InvalidKeyringName);
        }
        // Every byte is ASCII, so this is valid UTF-8.
        Ok(KeyringName(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value opened from its envelope.
pub struct Opened {
    /// The envelope's header.
    pub header: Header,
    /// The plaintext, zeroized when dropped.
    pub plaintext: Plaintext,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_names_are_validated() {
        assert!(KeyringName::parse(b"tenant:42").is_ok());
        assert_eq!(KeyringName::parse(b""), Err(Error::InvalidKeyringName));
        assert_eq!(
            KeyringName::parse(b"has space"),
            Err(Error::InvalidKeyringName)
        );
        assert_eq!(
            KeyringName::parse(&[b'a'; 65]),
            Err(Error::InvalidKeyringName)
        );
        assert_eq!(KeyringName::parse(b"\xff"), Err(Error::InvalidKeyringName));
    }
}
