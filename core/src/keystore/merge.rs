//! Merging an export into a store (docs/FORMAT.md §2.2).
//!
//! An import is planned first and applied only once the whole plan is known to be acceptable:
//! every conflict, every key that would stop opening and every unwrap (a KMS call each) is dealt
//! with before the store changes, and each wrapped key is unwrapped at most once.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::VersionState;
use super::{ExportRing, ExportVersion, ImportReport, KeyStore, Material, Ring, Slot};
use crate::error::{Error, Locked};
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

use super::unwrap::{parse, prefetch, Prefetched, Unlocker, UnwrapJobs};

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
    /// The version gets this key, or is locked for the reason given.
    Set(Result<DataKey, Locked>),
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
        let jobs = self.unwraps_for(blob)?;
        let prefetched = prefetch(&jobs, masters, wrappers);
        self.import_prefetched(blob, masters, wrappers, locking, prefetched)
    }

    /// The keys an import of `blob` would unwrap (versions not held here, or held with another
    /// material), to unwrap with [`prefetch`] away from the store.
    pub fn unwraps_for(&self, blob: &[u8]) -> Result<UnwrapJobs, Error> {
        Ok(UnwrapJobs(self.unwraps_needed(&parse(blob)?)))
    }

    /// [`KeyStore::import`] with the keys unwrapped ahead; a key the store now needs that was
    /// not is unwrapped here.
    pub fn import_prefetched(
        &mut self,
        blob: &[u8],
        masters: &[&MasterKey],
        wrappers: &[&dyn Wrapper],
        locking: Locking,
        prefetched: Prefetched,
    ) -> Result<ImportReport, Error> {
        let doc = parse(blob)?;
        let unlocker = Unlocker {
            masters,
            wrappers,
            done: RefCell::new(prefetched.keys),
        };
        let plans = doc
            .keyrings
            .into_iter()
            .map(|er| self.plan_ring(er, &unlocker))
            .collect::<Result<Vec<_>, Error>>()?;
        if locking == Locking::Refuse {
            for plan in &plans {
                self.check_no_lock(plan)?;
            }
        }
        let mut report = ImportReport {
            unwrap_ms: prefetched.elapsed_ms,
            ..ImportReport::default()
        };
        for plan in plans {
            self.apply(plan, &mut report);
        }
        let locked: Vec<Error> = self
            .rings
            .iter()
            .filter(|r| !r.destroyed)
            .flat_map(|r| r.versions.iter().map(move |(v, slot)| (r, *v, slot)))
            .filter(|(_, _, slot)| slot.state != VersionState::Destroyed)
            .filter_map(|(r, v, slot)| slot.available(&r.name, KeyVersion(v)).err())
            .collect();
        report.versions_locked = locked.len();
        report.first_locked = locked.first().map(Error::to_string);
        Ok(report)
    }

    fn plan_ring(&self, er: ExportRing, unlocker: &Unlocker<'_>) -> Result<RingPlan, Error> {
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
                None => new_version(ev, unlocker, &context),
                Some(slot) => merged_version(slot, ev, unlocker, &context)?,
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
                KeyChoice::Set(key) => key.is_ok(),
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
                locked: None,
                scanned_clear: false,
            });
            slot.state = vp.state;
            slot.created = vp.created;
            slot.material = vp.material;
            if let KeyChoice::Set(key) = vp.key {
                slot.set_key(key);
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
    unlocker: &Unlocker<'_>,
    context: &WrapContext<'_>,
) -> VersionPlan {
    let key = unlocker.unlock(&ev.material, context);
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
    unlocker: &Unlocker<'_>,
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
        // A key locked with the same material stays locked here: the master keys do not
        // change while the server runs, and a KMS that failed is asked again by the module's
        // own thread, not by every import the replication stream or the AOF carries.
        return Ok(plan);
    }
    let derived_here = matches!(slot.material, Material::Derived { .. });
    match &ev.material {
        // The export's `default` v1 was derived from another master key: the export is the
        // truth; if that master key is not held, the key is locked (values fail closed)
        // rather than replaced by a guess.
        Material::Derived { .. } if derived_here => {
            plan.key = KeyChoice::Set(unlocker.unlock(&ev.material, context));
            plan.material = ev.material;
        }
        Material::Wrapped { by, .. } => {
            let candidate = unlocker.unlock(&ev.material, context);
            // Two servers that each made a key for this version hold different keys: merging
            // would lose one. A derived `default` v1 is what every fresh store starts with.
            if let (Some(held), Ok(new), false) = (&slot.key, &candidate, derived_here) {
                if held.bytes() != new.bytes() {
                    return Err(Error::KeyMismatch);
                }
            }
            // Adopt a wrapped form over a derived one, and a newer wrapping (after REWRAP) by
            // the current master key, but only if it opens here or nothing opened before: an
            // import never trades a working key for one it cannot open.
            let adopt = derived_here
                || unlocker
                    .wrappers
                    .first()
                    .is_some_and(|w| &w.wrapper_id() == by);
            if adopt && (candidate.is_ok() || slot.key.is_none()) {
                plan.material = ev.material;
                plan.key = KeyChoice::Set(candidate);
            }
        }
        Material::Derived { .. } => {
            // A wrapped key here, a derived one there: the same key or a conflict.
            let candidate = unlocker.unlock(&ev.material, context);
            if let (Some(held), Ok(new)) = (&slot.key, &candidate) {
                if held.bytes() != new.bytes() {
                    return Err(Error::KeyMismatch);
                }
            }
        }
        Material::None => {}
    }
    Ok(plan)
}
