//! `aws-kms:`: data keys generated and wrapped by AWS KMS (`GenerateDataKey`, `Encrypt`,
//! `Decrypt`), with an encryption context naming the keyring and version. The KMS key never
//! leaves KMS. Requests are signed with SigV4 by the `aws-sigv4` crate.
//!
//! URI: `aws-kms:KEY-ID-OR-ARN[?region=REGION][&endpoint=URL][&allow-http=yes]`. Credentials come from
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`; the region
//! from `region=` or `AWS_REGION`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::http;
use crate::error::{Error, MasterKeyError};
use crate::key::DataKey;
use crate::wrap::{WrapContext, Wrapper};

/// Where the KMS key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Key id, alias or ARN.
    pub key_id: String,
    /// AWS region.
    pub region: String,
    /// The KMS endpoint (`https://kms.REGION.amazonaws.com` unless overridden).
    pub endpoint: String,
}

impl AwsConfig {
    /// Parses what follows `aws-kms:`.
    pub fn parse(rest: &str) -> Result<AwsConfig, MasterKeyError> {
        let bad = |why: String| {
            MasterKeyError::Kms(format!(
                "aws-kms: {why}; use aws-kms:KEY-ID[?region=R][&endpoint=URL]"
            ))
        };
        // An ARN contains ':' but never '?'.
        let (key_id, query) = rest.split_once('?').unwrap_or((rest, ""));
        if key_id.is_empty() {
            return Err(bad("no key id".into()));
        }
        let (mut region, mut endpoint) = (std::env::var("AWS_REGION").ok(), None);
        let mut allow_http = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("region", v)) => region = Some(v.to_owned()),
                Some(("endpoint", v)) => endpoint = Some(v.trim_end_matches('/').to_owned()),
                Some(("allow-http", "yes")) => allow_http = true,
                _ => {
                    return Err(bad(format!(
                        "unknown option '{pair}' (region, endpoint, allow-http=yes)"
                    )))
                }
            }
        }
        if let Some(url) = endpoint.as_deref() {
            let lower = url.to_ascii_lowercase();
            let host = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                return Err(bad(format!(
                    "the endpoint '{}' is not an http:// or https:// address with a host",
                    http::printable(url)
                )));
            }
        }
        if endpoint.as_deref().is_some_and(http::is_plain_http) && !allow_http {
            return Err(bad(
                "the endpoint is plain http: signed requests and data keys would travel in clear; \
                 use https://, or add allow-http=yes"
                    .into(),
            ));
        }
        let region =
            region.ok_or_else(|| bad("no region: add ?region=R or set AWS_REGION".into()))?;
        let endpoint = endpoint.unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        Ok(AwsConfig {
            key_id: key_id.to_owned(),
            region,
            endpoint,
        })
    }
}

/// A KMS key reachable with the process's credentials.
pub struct AwsKms {
    config: AwsConfig,
    identity: Identity,
    agent: ureq::Agent,
}

impl AwsKms {
    /// Reads the credentials and prepares the client; does not contact KMS.
    pub fn connect(config: AwsConfig) -> Result<AwsKms, MasterKeyError> {
        let var = |name: &str| std::env::var(name).ok();
        let (Some(access), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(MasterKeyError::Kms(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        };
        let identity = Credentials::new(
            access,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )
        .into();
        let agent = http::agent(None).map_err(MasterKeyError::Kms)?;
        Ok(AwsKms {
            config,
            identity,
            agent,
        })
    }

    fn call(&self, operation: &str, body: Value) -> Result<Value, Error> {
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        let target = format!("TrentService.{operation}");
        let base_headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.config.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::Kms(format!("cannot sign the request: {e}")))?
            .into();
        let url = format!("{}/", self.config.endpoint);
        let signable = SignableRequest::new(
            "POST",
            &url,
            base_headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| Error::Kms(format!("cannot sign the request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| Error::Kms(format!("cannot sign the request: {e}")))?
            .into_parts();
        let mut headers: Vec<(&str, &str)> = base_headers.to_vec();
        headers.extend(instructions.headers());
        http::call_kms(&self.agent, &url, &headers, &body, "KMS", operation)
    }

    fn encryption_context(context: &WrapContext<'_>) -> Value {
        json!({
            "redis-enc-keyring": context.keyring.as_str(),
            "redis-enc-keyring-id": context.id.keyring.0.to_string(),
            "redis-enc-version": context.id.version.0.to_string(),
        })
    }

    fn key_from(reply: &Value, context: &WrapContext<'_>) -> Result<DataKey, Error> {
        let encoded = reply["Plaintext"]
            .as_str()
            .ok_or_else(|| Error::Kms("KMS reply has no Plaintext".into()))?;
        http::data_key_from_base64(encoded, context.id)
    }

    fn blob(reply: &Value) -> Result<Vec<u8>, Error> {
        let encoded = reply["CiphertextBlob"]
            .as_str()
            .ok_or_else(|| Error::Kms("KMS reply has no CiphertextBlob".into()))?;
        STANDARD
            .decode(encoded)
            .map_err(|_| Error::Kms("KMS reply has a malformed CiphertextBlob".into()))
    }
}

impl Wrapper for AwsKms {
    fn wrapper_id(&self) -> String {
        format!("aws-kms:{}", self.config.key_id)
    }

    fn wrap(&self, key: &DataKey, context: &WrapContext<'_>) -> Result<Vec<u8>, Error> {
        let plaintext = Zeroizing::new(STANDARD.encode(key.bytes()));
        let reply = self.call(
            "Encrypt",
            json!({ "KeyId": self.config.key_id, "Plaintext": plaintext.as_str(), "EncryptionContext": Self::encryption_context(context) }),
        )?;
        Self::blob(&reply)
    }

    fn unwrap(&self, wrapped: &[u8], context: &WrapContext<'_>) -> Result<DataKey, Error> {
        let reply = self.call(
            "Decrypt",
            json!({ "KeyId": self.config.key_id, "CiphertextBlob": STANDARD.encode(wrapped), "EncryptionContext": Self::encryption_context(context) }),
        )?;
        Self::key_from(&reply, context)
    }

    fn generate(&self, context: &WrapContext<'_>) -> Result<(DataKey, Vec<u8>), Error> {
        let reply = self.call(
            "GenerateDataKey",
            json!({ "KeyId": self.config.key_id, "KeySpec": "AES_256", "EncryptionContext": Self::encryption_context(context) }),
        )?;
        Ok((
            Self::key_from(&reply, context)
                .map_err(|_| Error::Kms("KMS returned no usable data key".into()))?,
            Self::blob(&reply)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        let c = AwsConfig::parse("arn:aws:kms:eu-west-1:111122223333:key/abc?region=eu-west-1")
            .unwrap();
        assert_eq!(c.key_id, "arn:aws:kms:eu-west-1:111122223333:key/abc");
        assert_eq!(c.endpoint, "https://kms.eu-west-1.amazonaws.com");
        let c = AwsConfig::parse(
            "alias/redis?region=us-east-1&endpoint=http://127.0.0.1:5000/&allow-http=yes",
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:5000");
        assert!(AwsConfig::parse("?region=x").is_err());
        assert!(AwsConfig::parse("k?bogus=1&region=x").is_err());
        for plain in ["http://127.0.0.1:5000", "HTTP://127.0.0.1:5000", "hTTp://h"] {
            let uri = format!("k?region=x&endpoint={plain}");
            assert!(AwsConfig::parse(&uri).is_err(), "{uri}");
        }
        for odd in [
            "//127.0.0.1:5000",
            "127.0.0.1:5000",
            "https://",
            "https:///x",
            "ftp://h",
        ] {
            let uri = format!("k?region=x&endpoint={odd}&allow-http=yes");
            assert!(AwsConfig::parse(&uri).is_err(), "{uri}");
        }
    }
}
