//! Sealing and opening with the store's keys: the primary key of a keyring seals; the key an
//! envelope names opens, if the store holds it and can use it.

use super::*;

impl KeyStore {
    /// The key that opens envelopes naming `id`.
    pub fn get(&self, id: KeyId) -> Result<&DataKey, Error> {
        let unknown = || Error::UnknownKey {
            keyring: id.keyring,
            name: self.name_of(id.keyring).cloned(),
            version: id.version,
        };
        let ring = self
            .rings
            .iter()
            .find(|r| r.id == id.keyring)
            .ok_or_else(unknown)?;
        if ring.destroyed {
            return Err(Error::KeyringDestroyed(ring.name.clone()));
        }
        let slot = ring.versions.get(&id.version.0).ok_or_else(unknown)?;
        match slot.state {
            VersionState::Destroyed => Err(Error::KeyDestroyed {
                keyring: ring.name.clone(),
                version: id.version,
            }),
            VersionState::Retired => Err(Error::KeyRetired {
                keyring: ring.name.clone(),
                version: id.version,
            }),
            VersionState::Active => slot.available(&ring.name, id.version),
        }
    }

    /// Seals under the primary key of keyring `name`.
    pub fn seal(
        &self,
        name: &KeyringName,
        flags: Flags,
        location: &Location<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        envelope::seal(self.primary(name)?, flags, location, plaintext)
    }

    /// Opens a parsed envelope.
    pub fn open_envelope(
        &self,
        envelope: &Envelope<'_>,
        location: &Location<'_>,
    ) -> Result<crate::Plaintext, Error> {
        envelope.open(self.get(envelope.header().key_id)?, location)
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

impl KeyStore {
    /// The keys whose blind-index tokens find values of keyring `name`: every active version
    /// this store holds, the primary first, then newest to oldest. Values not re-encrypted
    /// since a rotation carry their old version's token, so a query asks for each.
    pub fn index_keys(&self, name: &KeyringName) -> Result<Vec<&DataKey>, Error> {
        let ring = self.ring(name)?;
        let primary = self.primary(name)?;
        let older = ring
            .versions
            .iter()
            .rev()
            .filter(|(v, slot)| **v != ring.primary.0 && slot.state == VersionState::Active)
            .filter_map(|(_, slot)| slot.key.as_ref());
        Ok(std::iter::once(primary).chain(older).collect())
    }

    /// The key that makes key-name tokens for keyring `name`: its oldest active version, so
    /// that a rotation does not change the tokens (and so the key names) of values already
    /// stored; retiring that version moves tokens to the next one.
    pub fn token_key(&self, name: &KeyringName) -> Result<&DataKey, Error> {
        let ring = self.ring(name)?;
        let (version, slot) = ring
            .versions
            .iter()
            .find(|(_, slot)| slot.state == VersionState::Active)
            .ok_or_else(|| Error::KeyringDestroyed(ring.name.clone()))?;
        slot.available(&ring.name, KeyVersion(*version))
    }
}
