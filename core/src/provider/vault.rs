//! `vault-transit:`: data keys wrapped by HashiCorp Vault's or OpenBao's Transit engine. The
//! master key never leaves Vault: this module sends a data key to `encrypt` and gets it back
//! from `decrypt`, with the keyring and version as associated data.
//!
//! URI: `vault-transit:https://vault.example:8200/MOUNT/KEY[?token-file=PATH][&ca-cert=PATH][&namespace=NS][&allow-http=yes]`.
//! The token comes from `token-file` or the `VAULT_TOKEN` environment variable.

use std::path::PathBuf;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::http;
use crate::error::{Error, MasterKeyError};
use crate::key::DataKey;
use crate::wrap::{WrapContext, Wrapper};

/// Where the Transit key is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// `https://host:port`.
    pub address: String,
    /// The Transit mount path, such as `transit`.
    pub mount: String,
    /// The Transit key's name.
    pub key: String,
    /// A file holding the token; else `VAULT_TOKEN`.
    pub token_file: Option<PathBuf>,
    /// CA certificate to trust for the Vault server.
    pub ca_cert: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
}

/// `http://` is refused unless `allow-http=yes` says the plain channel is wanted (a local test
/// server, a sidecar on loopback): the token and the data keys travel over it.
fn check_scheme(address: &str, allow_http: bool) -> Result<(), String> {
    if http::is_plain_http(address) && !allow_http {
        return Err(format!(
            "{address} is plain http: the token and data keys would travel in clear; use https://, or add allow-http=yes"
        ));
    }
    Ok(())
}

impl VaultConfig {
    /// Parses what follows `vault-transit:`.
    pub fn parse(rest: &str) -> Result<VaultConfig, MasterKeyError> {
        let bad = |why: &str| {
            MasterKeyError::Kms(format!(
                "vault-transit: {why}; use vault-transit:https://HOST:PORT/MOUNT/KEY"
            ))
        };
        let (url, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (scheme, after) = url
            .split_once("://")
            .ok_or_else(|| bad("no http:// or https:// address"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the address must be http:// or https://"));
        }
        let (host, path) = after
            .split_once('/')
            .ok_or_else(|| bad("no mount and key in the path"))?;
        let (mount, key) = path
            .trim_end_matches('/')
            .rsplit_once('/')
            .ok_or_else(|| bad("no key name in the path"))?;
        if host.is_empty() || mount.is_empty() || key.is_empty() {
            return Err(bad("empty host, mount or key"));
        }
        let mut allow_http = false;
        let mut config = VaultConfig {
            address: format!("{scheme}://{host}"),
            mount: mount.to_owned(),
            key: key.to_owned(),
            token_file: None,
            ca_cert: None,
            namespace: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("token-file", v)) => config.token_file = Some(PathBuf::from(v)),
                Some(("ca-cert", v)) => config.ca_cert = Some(PathBuf::from(v)),
                Some(("namespace", v)) => config.namespace = Some(v.to_owned()),
                Some(("allow-http", "yes")) => allow_http = true,
                _ => {
                    return Err(bad(&format!(
                        "unknown option '{pair}' (token-file, ca-cert, namespace, allow-http=yes)"
                    )))
                }
            }
        }
        check_scheme(&config.address, allow_http).map_err(|why| bad(&why))?;
        Ok(config)
    }
}

/// A token file is one token; anything much longer is not one.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// A connected Transit key.
pub struct VaultTransit {
    config: VaultConfig,
    token: Zeroizing<String>,
    agent: ureq::Agent,
}

impl VaultTransit {
    /// Reads the token and prepares the client; does not contact Vault.
    pub fn connect(config: VaultConfig) -> Result<VaultTransit, MasterKeyError> {
        let token = match &config.token_file {
            Some(path) => {
                let unreadable = |e: String| {
                    MasterKeyError::Kms(format!(
                        "cannot read Vault token file {}: {e}",
                        path.display()
                    ))
                };
                let (bytes, _) =
                    super::read::small_file(path, MAX_TOKEN_FILE).map_err(unreadable)?;
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| unreadable("not UTF-8".into()))?;
                Zeroizing::new(text.trim().to_owned())
            }
            None => Zeroizing::new(std::env::var("VAULT_TOKEN").map_err(|_| {
                MasterKeyError::Kms(
                    "no Vault token: set VAULT_TOKEN or add ?token-file=PATH".into(),
                )
            })?),
        };
        let agent = http::agent(config.ca_cert.as_deref()).map_err(MasterKeyError::Kms)?;
        Ok(VaultTransit {
            config,
            token,
            agent,
        })
    }

    fn call(&self, operation: &str, body: Value) -> Result<Value, Error> {
        let url = format!(
            "{}/v1/{}/{operation}/{}",
            self.config.address, self.config.mount, self.config.key
        );
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        let mut headers = vec![
            ("X-Vault-Token", self.token.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(ns) = &self.config.namespace {
            headers.push(("X-Vault-Namespace", ns.as_str()));
        }
        http::call_kms(&self.agent, &url, &headers, &body, "Vault", operation)
    }
}

impl Wrapper for VaultTransit {
    fn wrapper_id(&self) -> String {
        format!(
            "vault-transit:{}/{}/{}",
            self.config.address, self.config.mount, self.config.key
        )
    }

    fn wrap(&self, key: &DataKey, context: &WrapContext<'_>) -> Result<Vec<u8>, Error> {
        let plaintext = Zeroizing::new(STANDARD.encode(key.bytes()));
        let reply = self.call(
            "encrypt",
            json!({ "plaintext": plaintext.as_str(), "associated_data": STANDARD.encode(context.binding()) }),
        )?;
        let ciphertext = reply["data"]["ciphertext"]
            .as_str()
            .ok_or_else(|| Error::Kms("Vault encrypt reply has no ciphertext".into()))?;
        Ok(ciphertext.as_bytes().to_vec())
    }

    fn unwrap(&self, wrapped: &[u8], context: &WrapContext<'_>) -> Result<DataKey, Error> {
        let ciphertext = std::str::from_utf8(wrapped).map_err(|_| Error::DecryptFailed)?;
        if !ciphertext.starts_with("vault:") {
            return Err(Error::DecryptFailed);
        }
        let reply = self.call(
            "decrypt",
            json!({ "ciphertext": ciphertext, "associated_data": STANDARD.encode(context.binding()) }),
        )?;
        let encoded = reply["data"]["plaintext"]
            .as_str()
            .ok_or_else(|| Error::Kms("Vault decrypt reply has no plaintext".into()))?;
        http::data_key_from_base64(encoded, context.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        let c = VaultConfig::parse(
            "https://vault:8200/transit/redis-enc?token-file=/t&ca-cert=/ca.pem",
        )
        .unwrap();
        assert_eq!(c.address, "https://vault:8200");
        assert_eq!((c.mount.as_str(), c.key.as_str()), ("transit", "redis-enc"));
        assert_eq!(c.token_file, Some(PathBuf::from("/t")));
        let nested =
            VaultConfig::parse("http://127.0.0.1:8200/kms/transit/k?allow-http=yes").unwrap();
        assert_eq!(
            (nested.mount.as_str(), nested.key.as_str()),
            ("kms/transit", "k")
        );
        for bad in [
            "vault:8200/transit/k",
            "ftp://h/t/k",
            "http://h/k",
            "http://h/t/k?bogus=1",
            "http://127.0.0.1:8200/transit/k",
            "HTTP://127.0.0.1:8200/transit/k",
            "Http://127.0.0.1:8200/transit/k",
        ] {
            assert!(VaultConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
