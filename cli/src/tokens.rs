//! `redis-enc tokenize` and `redis-enc detokenize`: the module's key-name tokens
//! (docs/FORMAT.md §8.2), made and reversed away from the server for batch jobs.

use std::io::{BufRead, Write};
use std::path::Path;

use redis_enc_core::keystore::Locking;
use redis_enc_core::provider::Provider;
use redis_enc_core::search::{detokenize, token_version, tokenize};
use redis_enc_core::{KeyId, KeyStore, KeyringName};

/// The keyrings the tokens come from: an export (`ENC.KEYRING EXPORT`, saved to a file)
/// opened with the master key, or, with a local master key and no export, the keyring
/// `default` whose version 1 the key derives (what a server with that key starts with).
fn keystore(master_key: &str, keyrings: Option<&Path>) -> Result<KeyStore, String> {
    let master = Provider::parse(master_key)
        .and_then(|p| p.open())
        .map_err(|e| format!("master key: {e}"))?;
    let Some(path) = keyrings else {
        let local = master.local().ok_or(
            "a KMS master key holds no keyring by itself: pass --keyrings FILE (the reply of \
             ENC.KEYRING EXPORT)",
        )?;
        return Ok(KeyStore::new(local, 0));
    };
    let blob = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut store = KeyStore::empty();
    let masters: Vec<_> = master.local().into_iter().collect();
    store
        .import(&blob, &masters, &[master.wrapper()], Locking::Allow)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(store)
}

/// The values to work on: the arguments, or else the lines of standard input.
fn inputs(args: Vec<String>) -> Box<dyn Iterator<Item = Result<Vec<u8>, String>>> {
    if !args.is_empty() {
        return Box::new(args.into_iter().map(|a| Ok(a.into_bytes())));
    }
    Box::new(std::io::stdin().lock().split(b'\n').map(|line| {
        line.map(|mut l| {
            if l.last() == Some(&b'\r') {
                l.pop();
            }
            l
        })
        .map_err(|e| format!("cannot read standard input: {e}"))
    }))
}

fn emit(out: &mut impl Write, bytes: &[u8]) {
    if let Err(e) = out.write_all(bytes).and_then(|()| out.write_all(b"\n")) {
        crate::stdout_failed(e);
    }
}

/// Prints the token of each value in `namespace`, one per line.
pub fn run_tokenize(
    master_key: &str,
    keyrings: Option<&Path>,
    keyring: &str,
    namespace: &str,
    values: Vec<String>,
) -> Result<(), String> {
    let store = keystore(master_key, keyrings)?;
    let name = KeyringName::parse(keyring.as_bytes()).map_err(|e| e.to_string())?;
    let key = store.token_key(&name).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, value) in inputs(values).enumerate() {
        let token = tokenize(key, namespace.as_bytes(), &value?)
            .map_err(|_| "a namespace is at most 255 bytes".to_owned())
            .map_err(|e| format!("value {}: {e}", n + 1))?;
        emit(&mut out, token.as_bytes());
    }
    out.flush().map_err(|e| format!("cannot write: {e}"))
}

/// Prints the value of each token, one per line (a value holding a newline is ambiguous in
/// this output; such values need the server's `ENC.DETOKENIZE`).
pub fn run_detokenize(
    master_key: &str,
    keyrings: Option<&Path>,
    keyring: &str,
    tokens: Vec<String>,
) -> Result<(), String> {
    let store = keystore(master_key, keyrings)?;
    let name = KeyringName::parse(keyring.as_bytes()).map_err(|e| e.to_string())?;
    let ring = store
        .id_of(&name)
        .ok_or_else(|| format!("no keyring '{keyring}'"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, token) in inputs(tokens).enumerate() {
        let token = token?;
        let fail = |why: String| format!("token {}: {why}", n + 1);
        let version = token_version(&token)
            .ok_or_else(|| fail("not a redis-enc token (tk<version>_<base32>)".into()))?;
        let key = store
            .get(KeyId {
                keyring: ring,
                version,
            })
            .map_err(|e| fail(e.to_string()))?;
        let (_, value) =
            detokenize(key, &token).map_err(|_| fail("does not open under this key".into()))?;
        emit(&mut out, &value);
    }
    out.flush().map_err(|e| format!("cannot write: {e}"))
}
