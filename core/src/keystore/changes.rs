//! Keyring changes in two steps, for keys a KMS makes or wraps: what a change needs is read
//! from the store, the KMS work is done without it (off the server's main thread), and the
//! result is added back only if the store did not change meanwhile. With a local master key
//! the steps run back to back (`create`, `rotate`, `rewrap` in `keystore.rs`).

use std::collections::BTreeMap;

use super::{KeyStore, Material, Ring, Slot, VersionState};
use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

/// When a new version starts sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// At once: it becomes the primary.
    Now,
    /// Once every server holds it (a cluster): it waits beside the primary.
    WhenHeld,
}

/// A keyring's primary version in use (see [`KeyStore::primaries_in_use`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryInUse {
    /// The keyring's name.
    pub keyring: KeyringName,
    /// The keyring's id and its primary version.
    pub id: KeyId,
    /// Unix seconds.
    pub created: u64,
    /// Values this process sealed under it.
    pub sealed: u64,
}

/// A key made for a keyring change: a new keyring's version 1, or a keyring's next version.
pub struct MadeKey {
    keyring: KeyringName,
    key: DataKey,
    wrapped: Vec<u8>,
    by: String,
}

impl MadeKey {
    /// The keyring the key is for.
    pub fn keyring(&self) -> &KeyringName {
        &self.keyring
    }
}

/// Every held key wrapped again, ready to replace the stored wrappings.
pub struct Rewrapped {
    by: String,
    keys: Vec<(KeyId, Vec<u8>, String)>,
}

/// Copies of the held keys to wrap again (wiped when dropped).
pub struct ToRewrap(Vec<(KeyringName, DataKey)>);

/// Makes the key for `id` of `keyring` with `wrapper` (a KMS call with a KMS master key).
pub fn make_key(wrapper: &dyn Wrapper, keyring: &KeyringName, id: KeyId) -> Result<MadeKey, Error> {
    let (key, wrapped) = wrapper.generate(&WrapContext { keyring, id })?;
    Ok(MadeKey {
        keyring: keyring.clone(),
        key,
        wrapped,
        by: wrapper.wrapper_id(),
    })
}

/// Wraps every key of `keys` with `wrapper` (a KMS call each with a KMS master key).
pub fn rewrap_keys(wrapper: &dyn Wrapper, keys: &ToRewrap) -> Result<Rewrapped, Error> {
    let wrapped = keys
        .0
        .iter()
        .map(|(keyring, key)| {
            let context = WrapContext {
                keyring,
                id: key.id(),
            };
            Ok((key.id(), wrapper.wrap(key, &context)?, key.check()))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Rewrapped {
        by: wrapper.wrapper_id(),
        keys: wrapped,
    })
}

impl KeyStore {
    /// Where `CREATE name` would put the new keyring's version 1.
    pub fn next_keyring(&self, name: &KeyringName) -> Result<KeyId, Error> {
        if self.rings.iter().any(|r| &r.name == name) {
            return Err(Error::KeyringExists);
        }
        let last = self.rings.iter().map(|r| r.id.0).max().unwrap_or(0);
        Ok(KeyId {
            keyring: KeyringId(last.checked_add(1).ok_or(Error::LimitReached)?),
            version: KeyVersion(1),
        })
    }

    /// Where `ROTATE name` would put the keyring's next version.
    pub fn next_version(&self, name: &KeyringName) -> Result<KeyId, Error> {
        let ring = self.ring(name)?;
        let last = ring.versions.keys().next_back().copied().unwrap_or(0);
        Ok(KeyId {
            keyring: ring.id,
            version: KeyVersion(last.checked_add(1).ok_or(Error::LimitReached)?),
        })
    }

    /// Adds a made key: a new keyring, or the next version of one, made primary now or, with
    /// [`Sealing::WhenHeld`], held beside the primary until [`KeyStore::promote_held`]. Refused
    /// if the store changed since the key was asked for (another change took its place).
    pub fn add_made(
        &mut self,
        made: MadeKey,
        now: u64,
        sealing: Sealing,
    ) -> Result<KeyVersion, Error> {
        let id = made.key.id();
        let slot = Slot::wrapped(made.by, made.wrapped, made.key, now);
        if id.version == KeyVersion(1) && self.rings.iter().all(|r| r.id != id.keyring) {
            if self.next_keyring(&made.keyring)? != id {
                return Err(Error::Refused("the keyrings changed meanwhile; try again"));
            }
            let mut versions = BTreeMap::new();
            versions.insert(1, slot);
            self.rings.push(Ring {
                id: id.keyring,
                name: made.keyring,
                primary: id.version,
                destroyed: false,
                versions,
            });
            return Ok(id.version);
        }
        if self.next_version(&made.keyring)? != id {
            return Err(Error::Refused("the keyring changed meanwhile; try again"));
        }
        let ring = self.ring_mut(&made.keyring)?;
        ring.versions.insert(id.version.0, slot);
        if sealing == Sealing::Now {
            ring.make_primary(id.version);
        }
        Ok(id.version)
    }

    /// Versions held beside their keyring's primary that would seal if promoted: the newest
    /// active, available version above each primary.
    pub fn held_for_promotion(&self) -> Vec<(KeyringName, KeyVersion)> {
        self.rings
            .iter()
            .filter(|r| !r.destroyed)
            .filter_map(|r| {
                r.versions
                    .range(r.primary.0 + 1..)
                    .rev()
                    .find(|(_, s)| s.state == VersionState::Active && s.key.is_some())
                    .map(|(v, _)| (r.name.clone(), KeyVersion(*v)))
            })
            .collect()
    }

    /// Each keyring's primary version, for scheduled rotation: when it was made and how many
    /// values this process sealed under it. Keyrings with a version held beside their primary
    /// (a rotation under way) and destroyed ones are left out.
    pub fn primaries_in_use(&self) -> Vec<PrimaryInUse> {
        self.rings
            .iter()
            .filter(|r| !r.destroyed && r.versions.keys().next_back() == Some(&r.primary.0))
            .filter_map(|r| {
                let slot = r.versions.get(&r.primary.0)?;
                Some(PrimaryInUse {
                    keyring: r.name.clone(),
                    id: KeyId {
                        keyring: r.id,
                        version: r.primary,
                    },
                    created: slot.created,
                    sealed: slot.key.as_ref().map_or(0, DataKey::sealed),
                })
            })
            .collect()
    }

    /// Each keyring's id and primary version.
    pub fn primary_versions(&self) -> Vec<(KeyringId, KeyVersion)> {
        self.rings.iter().map(|r| (r.id, r.primary)).collect()
    }

    /// After an import: a keyring whose primary moved above what `before` names goes back to
    /// that version, if it is still active and held, so that the new one waits beside it until
    /// [`KeyStore::promote_held`] (a cluster's two-phase rotation).
    pub fn hold_new_primaries(&mut self, before: &[(KeyringId, KeyVersion)]) {
        for ring in self.rings.iter_mut().filter(|r| !r.destroyed) {
            let Some((_, old)) = before.iter().find(|(id, _)| *id == ring.id) else {
                continue;
            };
            let usable = ring
                .versions
                .get(&old.0)
                .is_some_and(|s| s.state == VersionState::Active && s.key.is_some());
            if ring.primary > *old && usable {
                ring.primary = *old;
            }
        }
    }

    /// Makes each version [`KeyStore::held_for_promotion`] names its keyring's primary; returns
    /// them.
    pub fn promote_held(&mut self) -> Vec<(KeyringName, KeyVersion)> {
        let promoted = self.held_for_promotion();
        for (name, version) in &promoted {
            if let Some(ring) = self.rings.iter_mut().find(|r| &r.name == name) {
                ring.make_primary(*version);
            }
        }
        promoted
    }

    /// Copies of every key that is not destroyed, to wrap again; fails if one is locked.
    pub fn to_rewrap(&self) -> Result<ToRewrap, Error> {
        let mut keys = Vec::new();
        for ring in &self.rings {
            for (v, slot) in &ring.versions {
                if slot.state == VersionState::Destroyed {
                    continue;
                }
                let key = slot.available(&ring.name, KeyVersion(*v))?;
                keys.push((ring.name.clone(), key.duplicate()));
            }
        }
        Ok(ToRewrap(keys))
    }

    /// Stores the new wrappings; a version destroyed meanwhile keeps none. Returns how many.
    pub fn set_wrappings(&mut self, rewrapped: Rewrapped) -> usize {
        let mut count = 0;
        for (id, key, check) in rewrapped.keys {
            let slot = self
                .rings
                .iter_mut()
                .find(|r| r.id == id.keyring)
                .and_then(|r| r.versions.get_mut(&id.version.0));
            if let Some(slot) = slot.filter(|s| s.state != VersionState::Destroyed) {
                slot.material = Material::Wrapped {
                    by: rewrapped.by.clone(),
                    key,
                    check: Some(check),
                };
                count += 1;
            }
        }
        count
    }
}
