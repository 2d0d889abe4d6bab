//! Every keyring a server holds, with their versioned data keys (docs/FORMAT.md §2).
//!
//! A keyring has one primary version (new writes), older active versions (they still open),
//! retired versions (they refuse to open, like Vault's `min_decryption_version`) and destroyed
//! versions (the key is gone: crypto-shredding). States only move forward, so merging two
//! exports of the same keyrings is order-independent: that is how changes travel to replicas,
//! the AOF and other shards.
//!
//! Version 1 of `default` is derived from the master key (§3) so that values sealed before any
//! keyring existed keep opening; every other data key is random and stored wrapped (§2.3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::envelope::{self, Envelope, Flags, Location};
use crate::error::{Error, Locked};
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};
use crate::keyring::{KeyringName, Opened};
use crate::wrap::{WrapContext, Wrapper};

/// Prefix of an export (§2.1).
const EXPORT_MAGIC: &[u8] = b"redis-enc keyring v1\n";

/// Where a version stands. The order is the order states move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Opens values; the primary version also seals new ones.
    Active,
    /// Refuses to open; kept so it can be destroyed later.
    Retired,
    /// The key is gone.
    Destroyed,
}

impl VersionState {
    /// The state's name, as `ENC.KEYRING INFO` shows it.
    pub fn name(self) -> &'static str {
        match self {
            VersionState::Active => "active",
            VersionState::Retired => "retired",
            VersionState::Destroyed => "destroyed",
        }
    }
}

/// How a version's key material is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Material {
    /// Derived from the master key named by `from` (only `default` version 1).
    Derived { from: String },
    /// Wrapped by the wrapper named `by`. `check` commits to the key (FORMAT.md §2.3): a key
    /// a wrapper unwraps is used only if it matches, so a KMS (or whoever answers for it) that
    /// returns some other 32 bytes is caught. Keys made before checks existed have none.
    Wrapped {
        by: String,
        #[serde(with = "b64")]
        key: Vec<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    /// Destroyed.
    None,
}

impl Drop for Material {
    /// A wrapped key and the master key together are the key: the module's copies of the
    /// wrapped form are wiped too (a destroyed version's above all).
    fn drop(&mut self) {
        if let Material::Wrapped { key, .. } = self {
            key.zeroize();
        }
    }
}

struct Slot {
    state: VersionState,
    created: u64,
    material: Material,
    key: Option<DataKey>,
    /// Why `key` is not held, when it is not.
    locked: Option<Locked>,
    /// A full re-encryption of the keyring finished after this version stopped being primary.
    scanned_clear: bool,
}

struct Ring {
    id: KeyringId,
    name: KeyringName,
    primary: KeyVersion,
    destroyed: bool,
    versions: BTreeMap<u16, Slot>,
}

/// Summary of one version, for `ENC.KEYRING INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version.
    pub version: KeyVersion,
    /// Its state.
    pub state: VersionState,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Whether it is the primary.
    pub primary: bool,
    /// Whether this server holds the key in memory (false if it could not be unwrapped).
    pub available: bool,
    /// What protects it: `derived:local:<master key id>`, `local:<master key id>`, a KMS key
    /// (`vault-transit:...`, `aws-kms:...`), or `none`.
    pub wrapped_by: String,
}

/// Summary of one keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringInfo {
    /// Its id inside envelopes.
    pub id: KeyringId,
    /// Its name.
    pub name: KeyringName,
    /// The primary version.
    pub primary: KeyVersion,
    /// Every version.
    pub versions: Vec<VersionInfo>,
}

/// What an import changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Keyrings added.
    pub keyrings_added: usize,
    /// Versions added or whose state moved forward.
    pub versions_changed: usize,
    /// Versions (in the whole store, after the import) whose key none of the held master keys
    /// could unwrap.
    pub versions_locked: usize,
    /// Why the first of them is locked (an error's text), if one is.
    pub first_locked: Option<String>,
    /// How long unwrapping the keys took, in milliseconds.
    pub unwrap_ms: u64,
}

/// All keyrings of one server.
pub struct KeyStore {
    rings: Vec<Ring>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.rings
                    .iter()
                    .map(|r| (r.name.as_str(), r.primary.0, r.versions.len())),
            )
            .finish()
    }
}

fn default_id() -> KeyId {
    KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(1),
    }
}

impl KeyStore {
    /// A new store: keyring `default` whose version 1 is derived from `master`.
    pub fn new(master: &MasterKey, now: u64) -> KeyStore {
        let mut versions = BTreeMap::new();
        versions.insert(
            1,
            Slot {
                state: VersionState::Active,
                created: now,
                material: Material::Derived {
                    from: master.wrapper_id(),
                },
                key: Some(master.derive_data_key(default_id())),
                locked: None,
                scanned_clear: false,
            },
        );
        KeyStore {
            rings: vec![Ring {
                id: KeyringId(0),
                name: KeyringName::default_name(),
                primary: KeyVersion(1),
                destroyed: false,
                versions,
            }],
        }
    }

    /// A store with no keyring, to import a whole exported store into.
    pub fn empty() -> KeyStore {
        KeyStore { rings: Vec::new() }
    }

    /// A new store for a master key held by a KMS: keyring `default` with a random version 1
    /// generated through `wrapper`.
    pub fn new_wrapped(wrapper: &dyn Wrapper, now: u64) -> Result<KeyStore, Error> {
        let name = KeyringName::default_name();
        let (key, wrapped) = wrapper.generate(&WrapContext {
            keyring: &name,
            id: default_id(),
        })?;
        let mut versions = BTreeMap::new();
        versions.insert(1, Slot::wrapped(wrapper.wrapper_id(), wrapped, key, now));
        Ok(KeyStore {
            rings: vec![Ring {
                id: KeyringId(0),
                name,
                primary: KeyVersion(1),
                destroyed: false,
                versions,
            }],
        })
    }

    /// Whether the store holds no keyring at all (a KMS-backed server whose KMS could not make
    /// `default`'s first key at start).
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    fn ring(&self, name: &KeyringName) -> Result<&Ring, Error> {
        self.rings
            .iter()
            .find(|r| &r.name == name && !r.destroyed)
            .ok_or(Error::UnknownKeyring)
    }

    fn ring_mut(&mut self, name: &KeyringName) -> Result<&mut Ring, Error> {
        self.rings
            .iter_mut()
            .find(|r| &r.name == name && !r.destroyed)
            .ok_or(Error::UnknownKeyring)
    }

    /// The name of keyring `id`, if this server holds it (destroyed keyrings included).
    pub fn name_of(&self, id: KeyringId) -> Option<&KeyringName> {
        self.rings.iter().find(|r| r.id == id).map(|r| &r.name)
    }

    /// The primary key of keyring `name`.
    pub fn primary(&self, name: &KeyringName) -> Result<&DataKey, Error> {
        let ring = self.ring(name)?;
        let slot = &ring.versions[&ring.primary.0];
        slot.available(&ring.name, ring.primary)
    }

    /// The identifier of keyring `id`'s primary key, if the keyring exists.
    pub fn primary_of(&self, id: KeyringId) -> Option<KeyId> {
        self.rings
            .iter()
            .find(|r| r.id == id && !r.destroyed)
            .map(|r| KeyId {
                keyring: id,
                version: r.primary,
            })
    }

    /// How many XAES-256-GCM subkeys the held data keys have derived: one per nonce prefix a
    /// value was sealed or opened under that was not in a key's cache (`INFO`).
    pub fn key_derivations(&self) -> u64 {
        self.rings
            .iter()
            .flat_map(|r| r.versions.values())
            .filter_map(|slot| slot.key.as_ref())
            .map(DataKey::derivations)
            .sum()
    }

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

    /// Creates keyring `name` with a random version 1.
    pub fn create(
        &mut self,
        name: &KeyringName,
        wrapper: &dyn Wrapper,
        now: u64,
    ) -> Result<KeyringId, Error> {
        let id = self.next_keyring(name)?;
        self.add_made(changes::make_key(wrapper, name, id)?, now)?;
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
        self.add_made(changes::make_key(wrapper, name, id)?, now)
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

    /// Every keyring, destroyed ones excluded.
    pub fn list(&self) -> Vec<KeyringInfo> {
        self.rings
            .iter()
            .filter(|r| !r.destroyed)
            .map(Ring::info)
            .collect()
    }

    /// One keyring.
    pub fn info(&self, name: &KeyringName) -> Result<KeyringInfo, Error> {
        self.ring(name).map(Ring::info)
    }

    /// The keyring whose name matches, or `None`.
    pub fn id_of(&self, name: &KeyringName) -> Option<KeyringId> {
        self.ring(name).ok().map(|r| r.id)
    }

    /// The whole store, keys wrapped, as one blob (§2.1): for the RDB, replication, and
    /// `ENC.KEYRING EXPORT`. The buffer, which holds the wrapped keys, is wiped when dropped.
    pub fn export(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let doc = ExportDoc {
            keyrings: self
                .rings
                .iter()
                .map(|r| ExportRing {
                    id: r.id.0,
                    name: r.name.as_str().to_owned(),
                    primary: r.primary.0,
                    destroyed: r.destroyed,
                    versions: r
                        .versions
                        .iter()
                        .map(|(v, s)| ExportVersion {
                            version: *v,
                            state: s.state,
                            created: s.created,
                            material: s.material.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut out = zeroize::Zeroizing::new(EXPORT_MAGIC.to_vec());
        // Serializing plain data to JSON cannot fail.
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&doc).unwrap_or_default());
        out.extend_from_slice(&json);
        out
    }
}

pub mod changes;
mod merge;
pub use merge::{forget_outage, prefetch, Locking, Prefetched, UnwrapJobs, UNWRAP_DEADLINE};

impl Slot {
    fn wrapped(by: String, key: Vec<u8>, data_key: DataKey, now: u64) -> Slot {
        Slot {
            state: VersionState::Active,
            created: now,
            material: Material::Wrapped {
                by,
                key,
                check: Some(data_key.check()),
            },
            key: Some(data_key),
            locked: None,
            scanned_clear: false,
        }
    }

    /// The key, or why it is not held.
    fn available(&self, keyring: &KeyringName, version: KeyVersion) -> Result<&DataKey, Error> {
        self.key.as_ref().ok_or_else(|| Error::KeyUnavailable {
            keyring: keyring.clone(),
            version,
            why: self.locked.clone().unwrap_or(Locked::WrongKey),
        })
    }

    /// Holds `key`, or records why it could not be had.
    fn set_key(&mut self, key: Result<DataKey, Locked>) {
        (self.key, self.locked) = match key {
            Ok(key) => (Some(key), None),
            Err(why) => (None, Some(why)),
        };
    }

    fn destroy(&mut self) {
        self.state = VersionState::Destroyed;
        self.material = Material::None;
        self.key = None;
    }
}

impl Ring {
    fn info(&self) -> KeyringInfo {
        KeyringInfo {
            id: self.id,
            name: self.name.clone(),
            primary: self.primary,
            versions: self
                .versions
                .iter()
                .map(|(v, s)| VersionInfo {
                    version: KeyVersion(*v),
                    state: s.state,
                    created: s.created,
                    primary: *v == self.primary.0,
                    available: s.key.is_some(),
                    wrapped_by: match &s.material {
                        Material::Derived { from } => format!("derived:{from}"),
                        Material::Wrapped { by, .. } => by.clone(),
                        Material::None => "none".to_owned(),
                    },
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportDoc {
    keyrings: Vec<ExportRing>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRing {
    id: u16,
    name: String,
    primary: u16,
    destroyed: bool,
    versions: Vec<ExportVersion>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportVersion {
    version: u16,
    state: VersionState,
    created: u64,
    material: Material,
}

impl ExportDoc {
    fn validate(&self) -> Result<(), Error> {
        // Each keyring id and name once, each version of a keyring once.
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for r in &self.keyrings {
            let mut versions = std::collections::HashSet::new();
            if !ids.insert(r.id)
                || !names.insert(r.name.as_str())
                || !r.versions.iter().all(|v| versions.insert(v.version))
            {
                return Err(Error::InvalidExport);
            }
        }
        for r in &self.keyrings {
            let has_primary = r.versions.iter().any(|v| v.version == r.primary);
            let derived_ok = r.versions.iter().all(|v| {
                !matches!(v.material, Material::Derived { .. }) || (r.id == 0 && v.version == 1)
            });
            let destroyed_ok = r
                .versions
                .iter()
                .all(|v| (v.state == VersionState::Destroyed) == (v.material == Material::None));
            let primary_active = r
                .versions
                .iter()
                .any(|v| v.version == r.primary && v.state == VersionState::Active);
            // A live keyring seals with its primary; `default` always exists.
            let live = r.destroyed || primary_active;
            let default_kept = r.id != 0 || (!r.destroyed && r.name == "default");
            if r.versions.is_empty()
                || !has_primary
                || !derived_ok
                || !destroyed_ok
                || !live
                || !default_kept
                || r.versions.iter().any(|v| v.version == 0)
            {
                return Err(Error::InvalidExport);
            }
        }
        Ok(())
    }
}

mod b64 {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
