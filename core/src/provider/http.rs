//! A small JSON-over-HTTPS client for the KMS providers: bounded time, optional CA file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;
use zeroize::Zeroizing;

/// A CA bundle larger than this is not one.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// How long one KMS request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds an agent, trusting only `ca_file` when given (else the Mozilla roots built into
/// the TLS stack, webpki-roots).
pub fn agent(ca_file: Option<&Path>) -> Result<Agent, String> {
    let mut tls = TlsConfig::builder();
    if let Some(path) = ca_file {
        let (pem, _) = super::read::small_file(path, MAX_CA_FILE)
            .map_err(|e| format!("cannot read CA certificate {}: {e}", path.display()))?;
        // Every certificate of a bundle, not only the first.
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("bad CA certificate {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", path.display()));
        }
        tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    // Never follow a redirect: the request carries credentials (a Vault token, a signed AWS
    // request), and a redirect could take them anywhere, also from https to http.
    let config = Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build();
    Ok(Agent::new_with_config(config))
}

/// What a KMS answered: the status, a redirect's target, and the JSON reply (or Null).
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub reply: Value,
}

/// POSTs a JSON body with extra headers. The reply body is read into a buffer that is wiped
/// when dropped: a successful one carries key material.
pub fn post_json(
    agent: &Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer, crate::error::Error> {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body).map_err(|e| {
        let why = format!("cannot reach {url}: {}", printable(&e.to_string()));
        // A TLS failure (a certificate the CA does not sign, a name that does not match) is
        // a configuration to fix, not an outage to wait out.
        if is_tls_failure(&e) {
            crate::error::Error::Kms(why)
        } else {
            crate::error::Error::KmsUnavailable(why)
        }
    })?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(printable);
    let text = Zeroizing::new(
        response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_string()
            .unwrap_or_default(),
    );
    Ok(Answer {
        status,
        location,
        reply: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// Whether `address` is reached over plain http (the scheme in any case: `HTTP://` is http).
pub fn is_plain_http(address: &str) -> bool {
    address
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// Whether a request failed in the TLS handshake (ureq reports rustls's errors directly, or
/// inside an I/O error).
fn is_tls_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// The longest KMS reply read.
const MAX_REPLY: u64 = 1024 * 1024;

pub use crate::text::printable;

/// POSTs to a KMS and returns its JSON reply, or an error naming `service` and `operation`.
pub fn call_kms(
    agent: &Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    operation: &str,
) -> Result<Value, crate::error::Error> {
    let answer = post_json(agent, url, headers, body)?;
    if (300..400).contains(&answer.status) {
        return Err(crate::error::Error::Kms(format!(
            "{service} {operation} answered {} redirecting to {}: not followed (a KMS request carries credentials)",
            answer.status,
            answer.location.as_deref().unwrap_or("nowhere")
        )));
    }
    if answer.status != 200 {
        let why = format!(
            "{service} {operation} answered {}: {}",
            answer.status,
            error_message(&answer.reply)
        );
        // A server error or a request to slow down passes (AWS throttles with a 400 whose
        // type says so); anything else is an answer.
        let throttled = error_message(&answer.reply).contains("Throttling")
            || answer
                .reply
                .get("__type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("Throttling"));
        return Err(
            if answer.status >= 500 || answer.status == 429 || throttled {
                crate::error::Error::KmsUnavailable(why)
            } else {
                crate::error::Error::Kms(why)
            },
        );
    }
    Ok(answer.reply)
}

/// A data key from the base64 a KMS returned; anything but 32 bytes fails closed.
pub fn data_key_from_base64(
    encoded: &str,
    id: crate::key::KeyId,
) -> Result<crate::key::DataKey, crate::error::Error> {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    let not_a_key =
        || crate::error::Error::Kms("the key returned is not 32 bytes of base64".into());
    let decoded = zeroize::Zeroizing::new(STANDARD.decode(encoded).map_err(|_| not_a_key())?);
    if decoded.len() != crate::key::KEY_LEN {
        return Err(not_a_key());
    }
    let mut bytes = zeroize::Zeroizing::new([0u8; crate::key::KEY_LEN]);
    bytes.copy_from_slice(&decoded);
    Ok(crate::key::DataKey::from_bytes(id, &bytes))
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
        .map_or_else(|| "no detail".to_owned(), printable)
}
