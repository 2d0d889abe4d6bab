//! A small JSON-over-HTTPS client for the KMS providers: bounded time, optional CA file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::Agent;

/// How long one KMS request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds an agent, trusting only `ca_file` when given (else the Mozilla roots built into
/// the TLS stack, webpki-roots).
pub fn agent(ca_file: Option<&Path>) -> Result<Agent, String> {
    let mut tls = TlsConfig::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read CA certificate {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| format!("bad CA certificate {}: {e}", path.display()))?;
        tls = tls.root_certs(RootCerts::Specific(Arc::new(vec![cert])));
    }
    let config = Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build();
    Ok(Agent::new_with_config(config))
}

/// POSTs a JSON body with extra headers; returns the status and the JSON reply (or Null).
pub fn post_json(
    agent: &Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Value), String> {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request
        .send(body)
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// POSTs to a KMS and returns its JSON reply, or an error naming `service` and `operation`.
pub fn call_kms(
    agent: &Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    operation: &str,
) -> Result<Value, crate::error::Error> {
    let (status, reply) = post_json(agent, url, headers, body).map_err(crate::error::Error::Kms)?;
    if status != 200 {
        return Err(crate::error::Error::Kms(format!(
            "{service} {operation} answered {status}: {}",
            error_message(&reply)
        )));
    }
    Ok(reply)
}

/// A data key from the base64 a KMS returned; anything but 32 bytes fails closed.
pub fn data_key_from_base64(
    encoded: &str,
    id: crate::key::KeyId,
) -> Result<crate::key::DataKey, crate::error::Error> {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    let decoded = zeroize::Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| crate::error::Error::DecryptFailed)?,
    );
    let bytes: [u8; crate::key::KEY_LEN] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| crate::error::Error::DecryptFailed)?;
    Ok(crate::key::DataKey::from_bytes(
        id,
        zeroize::Zeroizing::new(bytes),
    ))
}

/// The first error message a KMS put in its reply, for an error line (never key material:
/// the replies that carry keys are successful ones, which are not reported).
pub fn error_message(reply: &Value) -> String {
    reply
        .get("errors")
        .and_then(|e| e.get(0))
        .and_then(Value::as_str)
        .or_else(|| reply.get("message").and_then(Value::as_str))
        .or_else(|| reply.get("Message").and_then(Value::as_str))
        .or_else(|| reply.get("__type").and_then(Value::as_str))
        .unwrap_or("no detail")
        .chars()
        .take(200)
        .collect()
}
