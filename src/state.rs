//! The module's state while loaded: the master key(s), the key store, and what `INFO enc`
//! says about them.

use std::sync::RwLock;

use redis_enc_core::wrap::Wrapper;
use redis_enc_core::{KeyStore, MasterKey};

use crate::error::CmdError;

/// Everything a command needs besides its arguments.
pub struct State {
    pub keys: KeyStore,
    /// The master key new data keys are wrapped under.
    pub master: MasterKey,
    /// The previous master key, while a master-key rotation is under way (`old-master-key`).
    pub old_master: Option<MasterKey>,
    /// The master-key provider kind (`file`, `env`, `exec`); never the key or its location.
    pub provider: &'static str,
}

impl State {
    /// The master keys held, current first.
    pub fn masters(&self) -> Vec<&MasterKey> {
        std::iter::once(&self.master).chain(self.old_master.as_ref()).collect()
    }

    /// Everything that may unwrap stored data keys, current master key first.
    pub fn unwrappers(&self) -> Vec<&dyn Wrapper> {
        self.masters().into_iter().map(|m| m as &dyn Wrapper).collect()
    }
}

static STATE: RwLock<Option<State>> = RwLock::new(None);

/// Installs the state at load time, replacing any earlier one.
pub fn install(state: State) {
    *STATE.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(state);
}

/// Drops the state (and with it every key) at unload.
pub fn clear() {
    *STATE.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// Runs `f` with the state.
pub fn with<R>(f: impl FnOnce(&State) -> Result<R, CmdError>) -> Result<R, CmdError> {
    let guard = STATE.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    match guard.as_ref() {
        Some(state) => f(state),
        None => Err(CmdError::NotReady),
    }
}

/// Runs `f` with the state, for changes to the key store.
pub fn with_mut<R>(f: impl FnOnce(&mut State) -> Result<R, CmdError>) -> Result<R, CmdError> {
    let mut guard = STATE.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    match guard.as_mut() {
        Some(state) => f(state),
        None => Err(CmdError::NotReady),
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
