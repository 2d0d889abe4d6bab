//! Unwrapping the keys an import or a start needs: in parallel under one deadline, each wrapped
//! key at most once, with a KMS outage met once and held for a while (docs/FORMAT.md §2.2).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ExportDoc, KeyStore, Material, VersionState, EXPORT_MAGIC};
use crate::error::{Error, Locked};
use crate::key::{DataKey, KeyId, KeyVersion, KeyringId, MasterKey};
use crate::keyring::KeyringName;
use crate::wrap::{WrapContext, Wrapper};

/// How long unwrapping for one import may take in all; keys not unwrapped by then stay locked
/// (their values fail closed until the retry thread, a restart or an RDB load unwraps them).
pub const UNWRAP_DEADLINE: Duration = Duration::from_secs(60);
/// How many unwraps run at once (each a KMS request with a KMS master key).
pub(super) const UNWRAP_WORKERS: usize = 16;

/// A wrapped key by keyring id, version and wrapped bytes.
pub(super) type WrappedId = (u16, u16, Vec<u8>);
/// A key unwrapped, or why it was not.
pub(super) type Unwrapped = Result<DataKey, Locked>;

/// One key an import needs unwrapped.
#[derive(Clone)]
pub(super) struct UnwrapJob {
    pub(super) id: KeyId,
    pub(super) keyring: KeyringName,
    pub(super) material: Material,
}

/// What unwraps keys during one import: the held master keys and wrappers, and the keys
/// unwrapped ahead of the plan, in parallel.
pub(super) struct Unlocker<'a> {
    pub(super) masters: &'a [&'a MasterKey],
    pub(super) wrappers: &'a [&'a dyn Wrapper],
    /// Unwrapped (or given up) keys by keyring id, version and wrapped bytes.
    pub(super) done: RefCell<HashMap<WrappedId, Unwrapped>>,
}

impl Unlocker<'_> {
    /// A key from its material: unwrapped ahead if it was, else now.
    pub(super) fn unlock(
        &self,
        material: &Material,
        context: &WrapContext<'_>,
    ) -> Result<DataKey, Locked> {
        if let Material::Wrapped { key, .. } = material {
            let id = (context.id.keyring.0, context.id.version.0, key.clone());
            if let Some(found) = self.done.borrow_mut().remove(&id) {
                return found;
            }
        }
        unlock(material, self.masters, self.wrappers, context)
    }
}

/// The keys an import needs unwrapped (see [`KeyStore::unwraps_for`]).
pub struct UnwrapJobs(pub(super) Vec<UnwrapJob>);

impl UnwrapJobs {
    /// Whether there is nothing to unwrap.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first job alone (a probe of whether a KMS answers, before asking for every key),
    /// and the others.
    pub fn split_first(&self) -> (UnwrapJobs, UnwrapJobs) {
        let (first, rest) = self.0.split_at(self.0.len().min(1));
        (UnwrapJobs(first.to_vec()), UnwrapJobs(rest.to_vec()))
    }
}

/// Keys unwrapped for an import, and how long it took.
pub struct Prefetched {
    pub(super) keys: HashMap<WrappedId, Unwrapped>,
    pub(super) elapsed_ms: u64,
}

/// Unwraps every job on up to 16 threads, within [`UNWRAP_DEADLINE`] in all: with a KMS master
/// key, a thousand key versions at 50 ms a request take seconds, not a minute. Needs no store:
/// it runs where the KMS may be waited for.
pub fn prefetch(
    jobs: &UnwrapJobs,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
) -> Prefetched {
    let started = Instant::now();
    let deadline = started + UNWRAP_DEADLINE;
    let jobs = &jobs.0;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(WrappedId, Unwrapped)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..UNWRAP_WORKERS.min(jobs.len()) {
            scope.spawn(|| {
                unwrap_jobs(jobs, &next, deadline, masters, wrappers, &results);
                // The unwrapped keys' transient copies are in this thread's stack.
                crate::key::scrub_stack();
            });
        }
    });
    Prefetched {
        keys: results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .collect(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

impl KeyStore {
    /// The locked keys that trying again may unlock (a KMS that failed, or a deadline that
    /// passed), to unwrap with [`prefetch`] away from the store.
    pub fn retry_jobs(&self) -> UnwrapJobs {
        let mut jobs = Vec::new();
        for ring in self.rings.iter().filter(|r| !r.destroyed) {
            for (v, slot) in &ring.versions {
                let retry = slot.key.is_none()
                    && slot.state != VersionState::Destroyed
                    && slot.locked.as_ref().is_some_and(Locked::may_pass)
                    && matches!(slot.material, Material::Wrapped { .. });
                if retry {
                    jobs.push(UnwrapJob {
                        id: KeyId {
                            keyring: ring.id,
                            version: KeyVersion(*v),
                        },
                        keyring: ring.name.clone(),
                        material: slot.material.clone(),
                    });
                }
            }
        }
        UnwrapJobs(jobs)
    }

    /// Holds the keys `prefetched` unwrapped for versions still locked with the same material;
    /// the others keep (or update) why they are locked. Returns how many were unlocked and how
    /// many stay locked.
    pub fn take_unlocked(&mut self, mut prefetched: Prefetched) -> (usize, usize) {
        let (mut unlocked, mut still) = (0, 0);
        for ring in self.rings.iter_mut().filter(|r| !r.destroyed) {
            for (v, slot) in ring.versions.iter_mut() {
                if slot.key.is_some() || slot.state == VersionState::Destroyed {
                    continue;
                }
                let Material::Wrapped { key, .. } = &slot.material else {
                    still += 1;
                    continue;
                };
                match prefetched.keys.remove(&(ring.id.0, *v, key.clone())) {
                    Some(Ok(found)) => {
                        slot.set_key(Ok(found));
                        unlocked += 1;
                    }
                    Some(Err(why)) => {
                        slot.locked = Some(why);
                        still += 1;
                    }
                    None => still += 1,
                }
            }
        }
        (unlocked, still)
    }
}

/// One unwrapping worker of [`prefetch`]: takes jobs until none are left.
pub(super) fn unwrap_jobs(
    jobs: &[UnwrapJob],
    next: &AtomicUsize,
    deadline: Instant,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
    results: &Mutex<Vec<(WrappedId, Unwrapped)>>,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        let Material::Wrapped { key, .. } = &job.material else {
            continue;
        };
        let context = WrapContext {
            keyring: &job.keyring,
            id: job.id,
        };
        // Past the deadline a key is given up on, not unwrapped later on the caller.
        let found = if Instant::now() < deadline {
            unlock(&job.material, masters, wrappers, &context)
        } else {
            Err(Locked::GivenUp)
        };
        let id = (job.id.keyring.0, job.id.version.0, key.clone());
        results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, found));
    }
}

/// The export document in `blob`, checked.
pub(super) fn parse(blob: &[u8]) -> Result<ExportDoc, Error> {
    let json = blob
        .strip_prefix(EXPORT_MAGIC)
        .ok_or(Error::InvalidExport)?;
    let doc: ExportDoc = serde_json::from_slice(json).map_err(|_| Error::InvalidExport)?;
    doc.validate()?;
    Ok(doc)
}

impl KeyStore {
    /// The wrapped keys an import of `doc` would unwrap: versions not held here, or held with
    /// another material.
    pub(super) fn unwraps_needed(&self, doc: &ExportDoc) -> Vec<UnwrapJob> {
        let mut jobs = Vec::new();
        for er in &doc.keyrings {
            let Ok(keyring) = KeyringName::parse(er.name.as_bytes()) else {
                continue;
            };
            let local = self.rings.iter().find(|r| r.id.0 == er.id);
            for ev in &er.versions {
                let id = KeyId {
                    keyring: KeyringId(er.id),
                    version: KeyVersion(ev.version),
                };
                let held = local.and_then(|r| r.versions.get(&ev.version));
                let wanted = ev.state != VersionState::Destroyed
                    && matches!(ev.material, Material::Wrapped { .. })
                    && held.is_none_or(|slot| slot.material != ev.material);
                if wanted {
                    jobs.push(UnwrapJob {
                        id,
                        keyring: keyring.clone(),
                        material: ev.material.clone(),
                    });
                }
            }
        }
        jobs
    }
}

/// After a KMS request failed as unavailable (unreachable, timed out, 5xx), unwraps through a
/// KMS fail at once, with that failure, for this long: an outage costs one timeout, not one
/// per key and per import the replication stream or the AOF carries. The module's own thread
/// asks again ([`forget_outage`] first).
pub(super) const OUTAGE_HOLD: Duration = Duration::from_secs(30);

/// The last KMS outage seen, and when.
pub(super) static OUTAGE: Mutex<Option<(Instant, String)>> = Mutex::new(None);

pub(super) fn note_outage(why: &str) {
    *OUTAGE.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), why.to_owned()));
}

/// The KMS failure unwraps fail with now, if one was seen within [`OUTAGE_HOLD`].
pub(super) fn outage() -> Option<String> {
    let seen = OUTAGE.lock().unwrap_or_else(|p| p.into_inner());
    seen.as_ref()
        .filter(|(at, _)| at.elapsed() < OUTAGE_HOLD)
        .map(|(_, why)| format!("{why}; not asked again for a while"))
}

/// Lets the next unwrap ask the KMS whatever it did last.
pub fn forget_outage() {
    *OUTAGE.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Recovers a key from its material with the first wrapper that can.
pub(super) fn unlock(
    material: &Material,
    masters: &[&MasterKey],
    wrappers: &[&dyn Wrapper],
    context: &WrapContext<'_>,
) -> Result<DataKey, Locked> {
    match material {
        Material::None => Err(Locked::WrongKey),
        Material::Derived { from } => masters
            .iter()
            .find(|m| &m.wrapper_id() == from)
            .map(|m| m.derive_data_key(context.id))
            .ok_or(Locked::WrongKey),
        Material::Wrapped { by, key, check } => {
            let preferred = wrappers.iter().filter(|w| &w.wrapper_id() == by);
            let others = wrappers.iter().filter(|w| &w.wrapper_id() != by);
            // The most telling failure is reported: a KMS that failed says more than a
            // wrapper that does not hold the key.
            let mut failure = Locked::WrongKey;
            for wrapper in preferred.chain(others) {
                if !wrapper.is_local() {
                    if let Some(why) = outage() {
                        if failure == Locked::WrongKey {
                            failure = Locked::Kms(why);
                        }
                        continue;
                    }
                }
                match wrapper.unwrap(key, context) {
                    // A key that does not match its check value is not the key: a wrong answer
                    // from a KMS (or from whoever answered for it) leaves the version locked.
                    Ok(found) if check.as_ref().is_none_or(|c| *c == found.check()) => {
                        return Ok(found)
                    }
                    Ok(_) => failure = Locked::BadCheck,
                    Err(Error::KmsUnavailable(why)) => {
                        note_outage(&why);
                        if failure == Locked::WrongKey {
                            failure = Locked::Kms(why);
                        }
                    }
                    Err(Error::Kms(why)) if failure == Locked::WrongKey => {
                        failure = Locked::Kms(why);
                    }
                    Err(_) => {}
                }
            }
            Err(failure)
        }
    }
}
