//! Which data key seals new values and which one opens a stored envelope.
//!
//! In this version a server holds one keyring, `default` (id 0), with one data key, version 1,
//! derived from the master key with HKDF (docs/FORMAT.md §3). Named keyrings with rotated
//! versions keep the same interface: [`Keyring::seal`] picks the primary key of the named
//! keyring and [`Keyring::open`] the key the envelope names.

use zeroize::Zeroizing;

use crate::envelope::{self, Envelope, Flags, Header, Location};
use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};

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
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// The data keys one server holds.
#[derive(Debug)]
pub struct Keyring {
    rings: Vec<(KeyringId, KeyringName, DataKey)>,
}

impl Keyring {
    /// The keyring derived from `master`: `default` with data key version 1.
    pub fn derived_from(master: &MasterKey) -> Keyring {
        let id = KeyId {
            keyring: KeyringId(0),
            version: KeyVersion(1),
        };
        Keyring {
            rings: vec![(
                id.keyring,
                KeyringName::default_name(),
                master.derive_data_key(id),
            )],
        }
    }

    /// The key new values in keyring `name` are sealed with.
    pub fn primary(&self, name: &KeyringName) -> Result<&DataKey, Error> {
        self.rings
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, key)| key)
            .ok_or(Error::UnknownKeyring)
    }

    /// The key with identifier `id`.
    pub fn get(&self, id: KeyId) -> Result<&DataKey, Error> {
        self.rings
            .iter()
            .find(|(_, _, key)| key.id() == id)
            .map(|(_, _, key)| key)
            .ok_or(Error::UnknownKey {
                keyring: id.keyring,
                version: id.version,
            })
    }

    /// The name of keyring `id`, if this server holds it.
    pub fn name_of(&self, id: KeyringId) -> Option<&KeyringName> {
        self.rings
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, n, _)| n)
    }

    /// Seals `plaintext` under the primary key of keyring `name`.
    pub fn seal(
        &self,
        name: &KeyringName,
        flags: Flags,
        location: &Location<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        envelope::seal(self.primary(name)?, flags, location, plaintext)
    }

    /// Parses and opens stored bytes.
    pub fn open(&self, stored: &[u8], location: &Location<'_>) -> Result<Opened, Error> {
        let envelope = Envelope::parse(stored)?;
        let key = self.get(envelope.header().key_id)?;
        let plaintext = envelope.open(key, location)?;
        Ok(Opened {
            header: *envelope.header(),
            plaintext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::derived_from(&MasterKey::generate())
    }

    #[test]
    fn seal_then_open_through_the_keyring() {
        let ring = keyring();
        let loc = Location::Value { key: b"patient:81" };
        let sealed = ring
            .seal(
                &KeyringName::default_name(),
                Flags { phi: true },
                &loc,
                b"record",
            )
            .unwrap();
        let opened = ring.open(&sealed, &loc).unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"record");
        assert!(opened.header.flags.phi);
        assert_eq!(opened.header.key_id.version, KeyVersion(1));
    }

    #[test]
    fn unknown_keyring_and_unknown_key_are_named() {
        let ring = keyring();
        let loc = Location::Value { key: b"k" };
        let other = KeyringName::parse(b"tenant-42").unwrap();
        assert_eq!(
            ring.seal(&other, Flags::default(), &loc, b"x").unwrap_err(),
            Error::UnknownKeyring
        );
        let mut sealed = ring
            .seal(&KeyringName::default_name(), Flags::default(), &loc, b"x")
            .unwrap();
        sealed[7] = 9;
        assert_eq!(
            ring.open(&sealed, &loc).err(),
            Some(Error::UnknownKey {
                keyring: KeyringId(0),
                version: KeyVersion(9)
            })
        );
    }

    #[test]
    fn a_different_master_key_fails_closed() {
        let loc = Location::Value { key: b"k" };
        let sealed = keyring()
            .seal(&KeyringName::default_name(), Flags::default(), &loc, b"x")
            .unwrap();
        assert_eq!(
            keyring().open(&sealed, &loc).err(),
            Some(Error::DecryptFailed)
        );
    }

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
