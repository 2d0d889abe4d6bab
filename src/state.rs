//! The module's state while loaded: the master key(s), the key store, and what `INFO enc`
//! says about them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redis_enc_core::keystore::{ImportReport, Locking, Prefetched, UnwrapJobs};
use redis_enc_core::provider::Master;
use redis_enc_core::wrap::Wrapper;
use redis_enc_core::{KeyStore, MasterKey};

use crate::error::CmdError;

/// Everything a command needs besides its arguments.
pub struct State {
    pub keys: KeyStore,
    /// The master key new data keys are wrapped under.
    pub master: Arc<Master>,
    /// The previous master key, while a master-key rotation is under way (`old-master-key`).
    pub old_master: Option<Arc<Master>>,
    /// The master-key provider kind (`file`, `env`, `exec`); never the key or its location.
    pub provider: &'static str,
}

/// The master keys held, shared with threads that wait on a KMS.
#[derive(Clone)]
pub struct Held {
    pub master: Arc<Master>,
    pub old_master: Option<Arc<Master>>,
}

impl Held {
    /// The local master keys held, current first.
    pub fn masters(&self) -> Vec<&MasterKey> {
        std::iter::once(&self.master)
            .chain(self.old_master.as_ref())
            .filter_map(|m| m.local())
            .collect()
    }

    /// Everything that may unwrap stored data keys, current master key first.
    pub fn unwrappers(&self) -> Vec<&dyn Wrapper> {
        std::iter::once(&self.master)
            .chain(self.old_master.as_ref())
            .map(|m| m.wrapper())
            .collect()
    }

    /// Whether the master key or the previous one is held by a KMS.
    pub fn any_remote(&self) -> bool {
        std::iter::once(&self.master)
            .chain(self.old_master.as_ref())
            .any(|m| matches!(**m, Master::Remote(_)))
    }

    /// Whether the master key is held by a KMS (changes then wait on it).
    pub fn remote(&self) -> bool {
        matches!(*self.master, Master::Remote(_))
    }
}

impl State {
    /// The keys a merge of export `blob` unwraps ([`State::merge`]): every key of the export
    /// when it would replace this store, else those this store lacks.
    pub fn unwraps_for(&self, blob: &[u8], adopt: bool) -> Result<UnwrapJobs, CmdError> {
        Ok(if adopt && is_unpropagated() {
            KeyStore::empty().unwraps_for(blob)?
        } else {
            self.keys.unwraps_for(blob)?
        })
    }

    /// Merges export `blob`, whose keys were unwrapped beforehand (`prefetched`). With `adopt`,
    /// a store that has sealed nothing yet (with a KMS, each server made its own `default` at
    /// load) is replaced by the export instead, unless the export holds no keyring.
    pub fn merge(
        &mut self,
        blob: &[u8],
        locking: Locking,
        prefetched: Prefetched,
        adopt: bool,
    ) -> Result<ImportReport, CmdError> {
        let held = self.held();
        let (masters, unwrappers) = (held.masters(), held.unwrappers());
        if adopt && is_unpropagated() {
            let mut fresh = KeyStore::empty();
            let report =
                fresh.import_prefetched(blob, &masters, &unwrappers, locking, prefetched)?;
            if !fresh.is_empty() {
                self.keys = fresh;
                mark_unpropagated(false);
            }
            return Ok(report);
        }
        Ok(self
            .keys
            .import_prefetched(blob, &masters, &unwrappers, locking, prefetched)?)
    }

    /// The master keys, to hand to a thread.
    pub fn held(&self) -> Held {
        Held {
            master: self.master.clone(),
            old_master: self.old_master.clone(),
        }
    }

    /// A fresh key store for this master key: derived `default` v1 for a local key, a
    /// KMS-generated one (which must then be propagated, see [`mark_unpropagated`]) otherwise.
    pub fn fresh_keys(master: &Master) -> Result<KeyStore, redis_enc_core::Error> {
        match master {
            Master::Local(key) => Ok(KeyStore::new(key, crate::clock::now_secs())),
            Master::Remote(kms) => KeyStore::new_wrapped(kms.as_ref(), crate::clock::now_secs()),
        }
    }
}

static STATE: RwLock<Option<State>> = RwLock::new(None);

/// Why a KMS-backed server holds no `default` key: its KMS could not make one at start (an RDB
/// or the replication stream may still bring the keyrings; `kms_retry` asks again).
static NO_DEFAULT: Mutex<Option<String>> = Mutex::new(None);

pub fn set_no_default(why: Option<String>) {
    *NO_DEFAULT.lock().unwrap_or_else(|p| p.into_inner()) = why;
}

/// Why the KMS could not make `default`'s first key, until it does (or a store arrives).
pub fn no_default() -> Option<String> {
    NO_DEFAULT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Why the store holds no keyring at all, if that is so (not to be called with the state held).
pub fn why_no_keys() -> Option<String> {
    let why = no_default()?;
    with(|s| Ok(s.keys.is_empty()))
        .unwrap_or(false)
        .then_some(why)
}

/// The key store holds keys that neither the RDB nor the replication stream has seen yet (a
/// KMS-generated `default` v1 on a fresh server): the next write propagates it first.
static UNPROPAGATED: AtomicBool = AtomicBool::new(false);

pub fn mark_unpropagated(value: bool) {
    UNPROPAGATED.store(value, Ordering::SeqCst);
}

/// Whether the store holds keys nothing has used or persisted yet (a fresh KMS server before
/// its first sealed write).
pub fn is_unpropagated() -> bool {
    UNPROPAGATED.load(Ordering::SeqCst)
}

/// Whether the store must be propagated before the next sealed write; clears the flag.
pub fn take_unpropagated() -> bool {
    UNPROPAGATED.swap(false, Ordering::SeqCst)
}

/// Installs the state at load time, replacing any earlier one.
pub fn install(state: State) {
    *STATE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(state);
}

/// Drops the state (and with it every key) at unload.
pub fn clear() {
    *STATE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// Runs `f` with the state.
pub fn with<R>(f: impl FnOnce(&State) -> Result<R, CmdError>) -> Result<R, CmdError> {
    let guard = STATE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match guard.as_ref() {
        Some(state) => f(state),
        None => Err(CmdError::NotReady),
    }
}

/// Runs `f` with the state, for changes to the key store.
pub fn with_mut<R>(f: impl FnOnce(&mut State) -> Result<R, CmdError>) -> Result<R, CmdError> {
    let mut guard = STATE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match guard.as_mut() {
        Some(state) => f(state),
        None => Err(CmdError::NotReady),
    }
}
