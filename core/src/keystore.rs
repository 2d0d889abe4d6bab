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

    /// How keyring `id` is shown in replies: its name, or `#id` when this server does not hold
    /// it.
    pub fn label_of(&self, id: KeyringId) -> String {
        self.name_of(id)
            .map_or_else(|| format!("#{id}"), |n| n.as_str().to_owned())
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
}

pub mod changes;
pub use changes::{PrimaryInUse, Sealing};
mod epoch;
mod export;
mod seal;
use export::{ExportDoc, ExportRing, ExportVersion};
mod lifecycle;
mod merge;
mod unwrap;
pub use epoch::Epoch;
pub use merge::Locking;
pub use unwrap::{forget_outage, prefetch, Prefetched, UnwrapJobs, UNWRAP_DEADLINE};

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
    /// Makes `version` the one that seals; the old primary may now hold values a full
    /// re-encryption has not moved.
    fn make_primary(&mut self, version: KeyVersion) {
        if let Some(old) = self.versions.get_mut(&self.primary.0) {
            old.scanned_clear = false;
        }
        self.primary = version;
    }

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
