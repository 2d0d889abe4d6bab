//! `env:NAME`: the key in an environment variable of the Redis process.

use zeroize::Zeroizing;

use crate::error::MasterKeyError;
use crate::key::MasterKey;

pub(super) fn fetch(name: &str) -> Result<MasterKey, MasterKeyError> {
    let value = Zeroizing::new(
        std::env::var(name).map_err(|_| MasterKeyError::EnvMissing(name.to_owned()))?,
    );
    MasterKey::from_base64(&value, &format!("environment variable {name}"))
}
