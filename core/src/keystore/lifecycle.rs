//! Keyring lifecycle: create, rotate, retire, destroy, and rewrapping every key under another
//! master key. Each change is made whole or not at all.

use super::*;

impl KeyStore {
    /// Creates keyring `name` with a random version 1.
    pub fn create(
        &mut self,
        name: &KeyringName,
        wrapper: &dyn Wrapper,
        now: u64,
    ) -> Result<KeyringId, Error> {
        let id = self.next_keyring(name)?;
        self.add_made(changes::make_key(wrapper, name, id)?, now, Sealing::Now)?;
        Ok(id.keyring)
    }

    /// Adds a new random version to keyring `name` and makes it primary.
    pub fn rotate(
        &mut self,
        name: &KeyringName,
        wrapper: &dyn Wrapper,
        now: u64,
    ) -> Result<KeyVersion, Error> {
        let id = self.next_version(name)?;
        self.add_made(changes::make_key(wrapper, name, id)?, now, Sealing::Now)
    }

    /// Retires a version that is not the primary: it stops opening values.
    pub fn retire(&mut self, name: &KeyringName, version: KeyVersion) -> Result<(), Error> {
        let ring = self.ring_mut(name)?;
        if ring.primary == version {
            return Err(Error::Refused(
                "the primary version cannot be retired; rotate first",
            ));
        }
        let slot = ring
            .versions
            .get_mut(&version.0)
            .ok_or(Error::UnknownVersion)?;
        if slot.state == VersionState::Destroyed {
            return Err(Error::Refused("that version is already destroyed"));
        }
        slot.state = VersionState::Retired;
        Ok(())
    }

    /// Whether destroying `version` (or the whole keyring, with `None`) could shred values a
    /// re-encryption has not moved away. Destroying then needs `FORCE`.
    pub fn destroy_would_shred(
        &self,
        name: &KeyringName,
        version: Option<KeyVersion>,
    ) -> Result<bool, Error> {
        let ring = self.ring(name)?;
        match version {
            None => Ok(true),
            Some(v) => {
                let slot = ring.versions.get(&v.0).ok_or(Error::UnknownVersion)?;
                Ok(slot.state != VersionState::Destroyed && !slot.scanned_clear)
            }
        }
    }

    /// Destroys a version (not the primary) or, with `None`, the whole keyring (not `default`).
    pub fn destroy(
        &mut self,
        name: &KeyringName,
        version: Option<KeyVersion>,
    ) -> Result<(), Error> {
        let ring = self.ring_mut(name)?;
        match version {
            Some(v) => {
                if ring.primary == v {
                    return Err(Error::Refused(
                        "the primary version cannot be destroyed; rotate first",
                    ));
                }
                let slot = ring.versions.get_mut(&v.0).ok_or(Error::UnknownVersion)?;
                slot.destroy();
            }
            None => {
                if ring.id == KeyringId(0) {
                    return Err(Error::Refused(
                        "the default keyring cannot be destroyed; destroy its versions instead",
                    ));
                }
                ring.destroyed = true;
                for slot in ring.versions.values_mut() {
                    slot.destroy();
                }
            }
        }
        Ok(())
    }

    /// Records that a full re-encryption of keyring `id`, started while `primary_at_start` was
    /// primary, finished: no value is left under the versions before it (as far as this
    /// server's data goes). A version rotated away during the job is not cleared.
    pub fn mark_scanned(&mut self, id: KeyringId, primary_at_start: KeyVersion) {
        if let Some(ring) = self.rings.iter_mut().find(|r| r.id == id) {
            for (v, slot) in ring.versions.iter_mut() {
                if *v < primary_at_start.0 {
                    slot.scanned_clear = true;
                }
            }
        }
    }

    /// Wraps every held data key under `wrapper` (and turns derived keys into wrapped ones).
    /// Touches no stored value. Returns how many keys were wrapped.
    pub fn rewrap(&mut self, wrapper: &dyn Wrapper) -> Result<usize, Error> {
        let keys = self.to_rewrap()?;
        let rewrapped = changes::rewrap_keys(wrapper, &keys)?;
        Ok(self.set_wrappings(rewrapped))
    }
}
