//! A key store's epoch: how far its keyrings have moved, and a digest that names exactly where
//! they stand. Two servers with the same digest hold the same keyrings, versions, states and
//! keys (by their check values), however each holds or wrapped them. Keyring changes only move forward
//! (a version is added, a state advances), and each step raises the epoch, so a server with a
//! lower epoch is behind; equal epochs with different digests mean the stores diverged.

use sha2::{Digest, Sha256};

use super::{KeyStore, Material, VersionState};

/// Where a key store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    /// Keyrings, versions, the steps their states took and their primaries, counted.
    pub number: u64,
    /// SHA-256 over the keyrings, their primaries, and each version's state and key check.
    pub digest: [u8; 32],
}

impl Epoch {
    /// The digest's first 16 hex digits, as `INFO enc` shows it.
    pub fn short_digest(&self) -> String {
        hex::encode(&self.digest[..8])
    }
}

fn steps(state: VersionState) -> u8 {
    match state {
        VersionState::Active => 1,
        VersionState::Retired => 2,
        VersionState::Destroyed => 3,
    }
}

impl KeyStore {
    /// This store's epoch.
    pub fn epoch(&self) -> Epoch {
        let mut number = 0u64;
        let mut digest = Sha256::new();
        digest.update(b"redis-enc keyring epoch v1");
        let mut rings: Vec<_> = self.rings.iter().collect();
        rings.sort_by_key(|r| r.id.0);
        for ring in rings {
            // A primary only moves up, so it counts too: promoting a held version is a step.
            number += 1 + u64::from(ring.destroyed) + u64::from(ring.primary.0);
            digest.update(ring.id.0.to_be_bytes());
            let name = ring.name.as_str().as_bytes();
            digest.update((name.len() as u64).to_be_bytes());
            digest.update(name);
            digest.update(ring.primary.0.to_be_bytes());
            digest.update([u8::from(ring.destroyed)]);
            for (version, slot) in &ring.versions {
                number += u64::from(steps(slot.state));
                digest.update(version.to_be_bytes());
                digest.update([steps(slot.state)]);
                // The key's check value names the key, however it is held or wrapped: the one
                // stored with a wrapped key (a key unwrapped is used only if it matches), else
                // computed from the key held.
                let check = match (&slot.key, &slot.material) {
                    (_, Material::None) => "none".to_owned(),
                    (_, Material::Wrapped { check: Some(c), .. }) => c.clone(),
                    (Some(key), _) => key.check(),
                    (None, Material::Wrapped { check: None, .. }) => "unchecked".to_owned(),
                    (None, Material::Derived { from }) => format!("derived:{from}"),
                };
                digest.update((check.len() as u64).to_be_bytes());
                digest.update(check.as_bytes());
            }
        }
        Epoch {
            number,
            digest: digest.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::MasterKey;
    use crate::keyring::KeyringName;
    use crate::keystore::Locking;

    #[test]
    fn every_change_raises_the_epoch_and_an_import_reaches_the_same_digest() {
        let master = MasterKey::generate();
        let mut a = KeyStore::new(&master, 1);
        let mut b = KeyStore::new(&master, 1);
        assert_eq!(
            a.epoch(),
            b.epoch(),
            "the same master key derives the same default"
        );
        let name = KeyringName::parse(b"cards").unwrap();
        let mut last = a.epoch();
        a.create(&name, &master, 2).unwrap();
        let created = a.epoch();
        assert!(created.number > last.number);
        last = created;
        let v2 = a.rotate(&name, &master, 3).unwrap();
        assert!(a.epoch().number > last.number);
        last = a.epoch();
        a.retire(&name, crate::key::KeyVersion(1)).unwrap();
        assert!(a.epoch().number > last.number);
        last = a.epoch();
        a.destroy(&name, Some(crate::key::KeyVersion(1))).unwrap();
        assert!(a.epoch().number > last.number);
        assert_ne!(a.epoch().digest, b.epoch().digest);
        let export = a.export();
        b.import(&export, &[&master], &[&master], Locking::Refuse)
            .unwrap();
        assert_eq!(a.epoch(), b.epoch());
        // Wrapping again changes the wrapped bytes, not where the store stands.
        a.rewrap(&master).unwrap();
        assert_eq!(a.epoch(), b.epoch());
        let _ = v2;
    }
}
