//! Merging an export into a store (docs/FORMAT.md §2.2).
//!
//! An import is planned first and applied only once the whole plan is known to be acceptable:
//! every conflict, every key that would stop opening and every unwrap (a KMS call each) is dealt
//! with before the store changes, and each wrapped key is unwrapped at most once.

use std::collections::BTreeMap;

use super::{ExportDoc, ExportRing, ExportVersion, ImportReport, KeyStore, Material, Ring, Slot};
use super::{VersionState, EXPORT_MAGIC};
use crate::error::Error;
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

/// Whether an import may leave a data key this server cannot unwrap where it could before (or
/// a keyring whose primary version it cannot unwrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// Refuse such an import ([`Error::WouldLock`]): what a person asks for by hand.
    Refuse,
    /// Accept it; the keys stay locked (values under them fail closed) until a master key
    /// that opens them is loaded. What the RDB, the AOF and the replication stream carry.
    Allow,
}

/// What becomes of a version's key.
// Boxing the key would leave an unwiped copy on the heap when it moves into its slot.
#[allow(clippy::large_enum_variant)]
enum KeyChoice {
    /// The version keeps the key it holds.
    Keep,
    /// The version gets this key (`None`: locked).
    Set(Option<DataKey>),
}

/// One version after the import.
struct VersionPlan {
    version: u16,
    state: VersionState,
    created: u64,
    material: Material,
    key: KeyChoice,
    /// Whether the version is new to this store.
    new: bool,
    /// Whether it counts in `versions_changed`.
    changed: bool,
}

/// One keyring after the import.
struct RingPlan {
    id: KeyringId,
    name: KeyringName,
    primary: KeyVersion,
    destroyed: bool,
    new: bool,
    versions: Vec<VersionPlan>,
}

impl KeyStore {
    /// Merges an export into this store (§2.2). `masters` are the master keys held (current
    /// first), which unwrap and derive data keys; `wrappers` may add remote KMS wrappers. With
    /// [`Locking::Refuse`], an import that would make a working key unavailable, or leave a
    /// keyring sealing under a key this server cannot unwrap, is refused whole.
    pub fn import(
        &mut self,
        blob: &[u8],
        masters: &[&MasterKey],
        wrappers: &[&dyn Wrapper],
        locking: Locking,
    ) -> Result<ImportReport, Error> {
        let json = blob
            .strip_prefix(EXPORT_MAGIC)
            .ok_or(Error::InvalidExport)?;
        let doc: ExportDoc = serde_json::from_slice(json).map_err(|_| Error::InvalidExport)?;
        doc.validate()?;
        let plans = doc
            .keyrings
            .into_iter()
            .map(|er| self.plan_ring(er, masters, wrappers))
            .collect::<Result<Vec<_>, Error>>()?;
        if locking == Locking::Refuse {
            for plan in &plans {
                self.check_no_lock(plan)?;
            }
        }
        let mut report = ImportReport::default();
        for plan in plans {
            self.apply(plan, &mut report);
        }
        report.versions_locked = self
            .rings
            .iter()
            .flat_map(|r| r.versions.values())
            .filter(|v| v.state != VersionState::Destroyed && v.key.is_none())
            .count();
        Ok(report)
    }

    fn plan_ring(
        &self,
        er: ExportRing,
        masters: &[&MasterKey],
        wrappers: &[&dyn Wrapper],
    ) -> Result<RingPlan, Error> {
        let name = KeyringName::parse(er.name.as_bytes())?;
        let id = KeyringId(er.id);
        let local = self.rings.iter().find(|r| r.id == id || r.name == name);
        if let Some(local) = local {
            if local.id != id || local.name != name {
                return Err(Error::KeyringConflict);
            }
        }
        let mut versions = Vec::with_capacity(er.versions.len());
        for ev in er.versions {
            let context = WrapContext {
                keyring: &name,
                id: KeyId {
                    keyring: id,
                    version: KeyVersion(ev.version),
                },
            };
            let held = local.and_then(|r| r.versions.get(&ev.version));
            versions.push(match held {
                None => new_version(ev, masters, wrappers, &context),
                Some(slot) => merged_version(slot, ev, masters, wrappers, &context)?,
            });
        }
        let destroyed = er.destroyed || local.is_some_and(|r| r.destroyed);
        let primary = KeyVersion(local.map_or(er.primary, |r| r.primary.0.max(er.primary)));
        Ok(RingPlan {
            id,
            name,
            primary,
            destroyed,
            new: local.is_none(),
            versions,
        })
    }

    /// Refuses a plan that makes a working key unavailable or a keyring's primary locked.
    fn check_no_lock(&self, plan: &RingPlan) -> Result<(), Error> {
        if plan.destroyed {
            return Ok(());
        }
        let local = self.rings.iter().find(|r| r.id == plan.id);
        let held = |v: u16| local.and_then(|r| r.versions.get(&v));
        let would_lock = |version: u16| Error::WouldLock {
            keyring: plan.name.clone(),
            version: KeyVersion(version),
        };
        for vp in &plan.versions {
            if vp.state != VersionState::Active {
                continue;
            }
            let available_after = match &vp.key {
                KeyChoice::Keep => held(vp.version).is_some_and(|s| s.key.is_some()),
                KeyChoice::Set(key) => key.is_some(),
            };
            let available_before = held(vp.version).is_some_and(|s| s.key.is_some());
            if available_before && !available_after {
                return Err(would_lock(vp.version));
            }
            if vp.version == plan.primary.0 && !available_after {
                return Err(would_lock(vp.version));
            }
        }
        Ok(())
    }

    fn apply(&mut self, plan: RingPlan, report: &mut ImportReport) {
        if plan.new {
            report.keyrings_added += 1;
            self.rings.push(Ring {
                id: plan.id,
                name: plan.name.clone(),
                primary: plan.primary,
                destroyed: false,
                versions: BTreeMap::new(),
            });
        }
        let Some(ring) = self.rings.iter_mut().find(|r| r.id == plan.id) else {
            return;
        };
        for vp in plan.versions {
            report.versions_changed += usize::from(vp.changed);
            let slot = ring.versions.entry(vp.version).or_insert_with(|| Slot {
                state: vp.state,
                created: vp.created,
                material: Material::None,
                key: None,
                scanned_clear: false,
            });
            slot.state = vp.state;
            slot.created = vp.created;
            slot.material = vp.material;
            if let KeyChoice::Set(key) = vp.key {
                slot.key = key;
            }
            if slot.state == VersionState::Destroyed {
                slot.destroy();
            }
            debug_assert!(!vp.new || vp.changed);
        }
        ring.primary = plan.primary;
        if plan.destroyed && !ring.destroyed {
            ring.destroyed = true;
            for slot in ring.versions.values_mut() {
                slot.destroy();
            }
            report.versions_changed += 1;
        }
    }
}

/// A version this store does not hold yet: its key is unwrapped (or derived) now.
fn new_version(
    ev: ExportVersion,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
    context: &WrapContext<'_>,
) -> VersionPlan {
    let key = unlock(&ev.material, masters, wrappers, context);
    VersionPlan {
        version: ev.version,
        state: ev.state,
        created: ev.created,
        material: ev.material,
        key: KeyChoice::Set(key),
        new: true,
        changed: true,
    }
}

/// A version held here and in the export. States only move forward; the earlier creation time
/// is the true one (a fresh store's derived `default` v1 is created at load).
fn merged_version(
    slot: &Slot,
    ev: ExportVersion,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
    context: &WrapContext<'_>,
) -> Result<VersionPlan, Error> {
    let state = slot.state.max(ev.state);
    let mut plan = VersionPlan {
        version: ev.version,
        state,
        created: slot.created.min(ev.created),
        material: slot.material.clone(),
        key: KeyChoice::Keep,
        new: false,
        changed: ev.state > slot.state,
    };
    if state == VersionState::Destroyed || ev.material == slot.material {
        if slot.key.is_none() && state != VersionState::Destroyed {
            // Perhaps a master key that opens it is held now.
            plan.key = KeyChoice::Set(unlock(&slot.material, masters, wrappers, context));
        }
        return Ok(plan);
    }
    let derived_here = matches!(slot.material, Material::Derived { .. });
    match &ev.material {
        // The export's `default` v1 was derived from another master key: the export is the
        // truth; if that master key is not held, the key is locked (values fail closed)
        // rather than replaced by a guess.
        Material::Derived { .. } if derived_here => {
            plan.key = KeyChoice::Set(unlock(&ev.material, masters, wrappers, context));
            plan.material = ev.material;
        }
        Material::Wrapped { by, .. } => {
            let candidate = unlock(&ev.material, masters, wrappers, context);
            // Two servers that each made a key for this version hold different keys: merging
            // would lose one. A derived `default` v1 is what every fresh store starts with.
            if let (Some(held), Some(new), false) = (&slot.key, &candidate, derived_here) {
                if held.bytes() != new.bytes() {
                    return Err(Error::KeyMismatch);
                }
            }
            // Adopt a wrapped form over a derived one, and a newer wrapping (after REWRAP) by
            // the current master key, but only if it opens here or nothing opened before: an
            // import never trades a working key for one it cannot open.
            let adopt = derived_here || wrappers.first().is_some_and(|w| &w.wrapper_id() == by);
            if adopt && (candidate.is_some() || slot.key.is_none()) {
                plan.material = ev.material;
                plan.key = KeyChoice::Set(candidate);
            } else if slot.key.is_none() {
                plan.key = KeyChoice::Set(unlock(&slot.material, masters, wrappers, context));
            }
        }
        Material::Derived { .. } => {
            // A wrapped key here, a derived one there: the same key or a conflict.
            let candidate = unlock(&ev.material, masters, wrappers, context);
            if let (Some(held), Some(new)) = (&slot.key, &candidate) {
                if held.bytes() != new.bytes() {
                    return Err(Error::KeyMismatch);
                }
            }
        }
        Material::None => {}
    }
    Ok(plan)
}

/// Recovers a key from its material with the first wrapper that can.
fn unlock(
    material: &Material,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
    context: &WrapContext<'_>,
) -> Option<DataKey> {
    match material {
        Material::None => None,
        Material::Derived { from } => masters
            .iter()
            .find(|m| &m.wrapper_id() == from)
            .map(|m| m.derive_data_key(context.id)),
        Material::Wrapped { by, key, check } => {
            let preferred = wrappers.iter().filter(|w| &w.wrapper_id() == by);
            let others = wrappers.iter().filter(|w| &w.wrapper_id() != by);
            // A key that does not match its check value is not the key: a wrong answer from a
            // KMS (or from whoever answered for it) leaves the version locked.
            preferred
                .chain(others)
                .filter_map(|w| w.unwrap(key, context).ok())
                .find(|k| check.as_ref().is_none_or(|c| *c == k.check()))
        }
    }
}
