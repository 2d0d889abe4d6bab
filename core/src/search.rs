//! Search without plaintext (docs/FORMAT.md §8).
//!
//! - Blind-index tokens: an HMAC-SHA256 of a field's normalised value under a key derived from
//!   the data key version, truncated on purpose to a few bits so that equal values meet and
//!   some unequal ones do too. A query engine indexes the token next to the sealed field.
//! - Key-name tokens: AES-SIV (RFC 5297) of a value under another key derived from a data key
//!   version: the same value always gives the same token, and the key reverses it.
//!
//! Both keys come from the data key by HKDF with their own labels; neither is the data key.

use std::fmt::Write as _;

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::BASE32_NOPAD;
use hmac::Mac;
use zeroize::Zeroizing;

use crate::key::{DataKey, KeyVersion};

/// Blind-index tokens are at most this many bits (and at least one).
pub const MAX_INDEX_BITS: u8 = 64;
/// The first byte a namespace takes in a token's plaintext is its length.
pub const MAX_NAMESPACE_LEN: usize = 255;
/// Associated data of every key-name token.
const TOKEN_AD: &[u8] = b"redis-enc token v1";

/// What a value becomes before it is indexed: UTF-8 text is trimmed, inner runs of white space
/// become one space and letters are lower-cased, so that `" Ada  LOVELACE"` and
/// `"ada lovelace"` meet; other bytes are taken as they are.
pub fn normalise(value: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    if value.is_ascii() {
        // Already normal (the common case: an identifier): no copy.
        let normal = value
            .iter()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() || *b == b' ')
            && !value.starts_with(b" ")
            && !value.ends_with(b" ")
            && !value.windows(2).any(|w| w == b"  ");
        if normal {
            return Cow::Borrowed(value);
        }
        let mut out = Vec::with_capacity(value.len());
        for word in value
            .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
            .filter(|w| !w.is_empty())
        {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend(word.iter().map(u8::to_ascii_lowercase));
        }
        return Cow::Owned(out);
    }
    Cow::Owned(match std::str::from_utf8(value) {
        Ok(text) => text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
            .into_bytes(),
        Err(_) => value.to_vec(),
    })
}

/// Where a blind index applies: the key pattern of its rule and the field. Tokens of one
/// field under two rules differ, so that a rule over keys anyone may write (`pub:*`) cannot
/// tell the tokens of a rule over PHI keys (`doc:*`).
#[derive(Debug, Clone, Copy)]
pub struct IndexScope<'a> {
    /// The rule's key pattern, as configured.
    pub pattern: &'a [u8],
    /// The sealed field.
    pub field: &'a [u8],
}

/// The blind-index token of `value` in `scope` under data key `key`, truncated to `bits`:
/// `v<version>t<hex>` (lower-case letters and digits only).
pub fn index_token(key: &DataKey, scope: IndexScope<'_>, value: &[u8], bits: u8) -> String {
    let bits = bits.clamp(1, MAX_INDEX_BITS);
    let mut mac = key.index_mac();
    for part in [scope.pattern, scope.field] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(part);
    }
    mac.update(&normalise(value));
    let digest = mac.finalize().into_bytes();
    let mut top = [0u8; 8];
    top.copy_from_slice(&digest[..8]);
    let truncated = u64::from_be_bytes(top) >> (64 - u32::from(bits));
    let width = usize::from(bits).div_ceil(4);
    let mut token = String::with_capacity(8 + width);
    // Writing to a String cannot fail.
    let _ = write!(
        token,
        "v{}t{truncated:0width$x}",
        key.id().version.0,
        width = width
    );
    token
}

/// Why a key-name token cannot be made or reversed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The namespace is longer than [`MAX_NAMESPACE_LEN`] bytes.
    NamespaceTooLong,
    /// Not a token of this format.
    Malformed,
    /// The key does not open the token: another key, or an edited token.
    DoesNotOpen,
}

/// The key version a key-name token names, if it is one (`tk<version>_…`).
pub fn token_version(token: &[u8]) -> Option<KeyVersion> {
    let rest = token.strip_prefix(b"tk")?;
    let end = rest.iter().position(|&b| b == b'_')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(KeyVersion)
}

/// The key-name token of `value` in `namespace` under data key `key`:
/// `tk<version>_<base32 of the SIV output, lower case>`.
pub fn tokenize(key: &DataKey, namespace: &[u8], value: &[u8]) -> Result<String, TokenError> {
    let ns_len = u8::try_from(namespace.len()).map_err(|_| TokenError::NamespaceTooLong)?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(1 + namespace.len() + value.len()));
    plaintext.push(ns_len);
    plaintext.extend_from_slice(namespace);
    plaintext.extend_from_slice(value);
    let sealed = siv(key)
        .encrypt(token_headers(key).iter(), &plaintext)
        .map_err(|_| TokenError::Malformed)?;
    Ok(format!(
        "tk{}_{}",
        key.id().version.0,
        BASE32_NOPAD.encode(&sealed).to_ascii_lowercase()
    ))
}

/// Reverses [`tokenize`]: the namespace and the value.
pub fn detokenize(
    key: &DataKey,
    token: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), TokenError> {
    if token_version(token) != Some(key.id().version) {
        return Err(TokenError::Malformed);
    }
    let start = token
        .iter()
        .position(|&b| b == b'_')
        .ok_or(TokenError::Malformed)?;
    let body = &token[start + 1..];
    // One spelling per token: lower-case base32 only.
    if !body
        .iter()
        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(b))
    {
        return Err(TokenError::Malformed);
    }
    let body = body.to_ascii_uppercase();
    let sealed = BASE32_NOPAD
        .decode(&body)
        .map_err(|_| TokenError::Malformed)?;
    let plaintext = Zeroizing::new(
        siv(key)
            .decrypt(token_headers(key).iter(), &sealed)
            .map_err(|_| TokenError::DoesNotOpen)?,
    );
    let (&ns_len, rest) = plaintext.split_first().ok_or(TokenError::DoesNotOpen)?;
    let ns_len = usize::from(ns_len);
    if rest.len() < ns_len {
        return Err(TokenError::DoesNotOpen);
    }
    Ok((
        rest[..ns_len].to_vec(),
        Zeroizing::new(rest[ns_len..].to_vec()),
    ))
}

fn siv(key: &DataKey) -> Aes256Siv {
    let derived = key.token_key();
    Aes256Siv::new(derived.into())
}

/// The token's associated data: the label, then the keyring and version of the key.
fn token_headers(key: &DataKey) -> [Vec<u8>; 1] {
    let id = key.id();
    let mut ad = TOKEN_AD.to_vec();
    ad.extend_from_slice(&id.keyring.0.to_be_bytes());
    ad.extend_from_slice(&id.version.0.to_be_bytes());
    [ad]
}

#[cfg(test)]
mod tests;
