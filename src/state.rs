//! The module's state while loaded: the keyring and what `INFO enc` says about the master key.

use std::sync::RwLock;

use redis_enc_core::Keyring;

use crate::error::CmdError;

/// Everything a command needs besides its arguments.
pub struct State {
    pub keyring: Keyring,
    /// The master-key provider kind (`file`, `env`, `exec`); never the key or its location.
    pub provider: &'static str,
    /// The master key's public fingerprint.
    pub master_key_id: String,
}

static STATE: RwLock<Option<State>> = RwLock::new(None);

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
