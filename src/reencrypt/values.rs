//! What the re-encryption job does to one key: each sealed string or hash field not under its
//! keyring's primary version is opened and sealed again (or, for `ENCRYPT-PLAINTEXT`, a plain
//! value is sealed), and written back through `store`.

use super::*;

/// A value sealed again, and the blind-index token to write beside it (hash fields only).
pub(super) struct Resealed {
    pub value: Vec<u8>,
    pub token: Option<IndexEntry>,
}

/// What one value should become, if anything.
pub(super) fn transform(
    mode: Mode,
    only: Option<KeyringId>,
    chosen: Option<&KeyringName>,
    stored: &[u8],
    from: &Location<'_>,
    key: &[u8],
) -> Result<Option<Resealed>, CmdError> {
    state::with(|s| match mode {
        Mode::Reseal => {
            if !looks_sealed(stored) {
                return Ok(None);
            }
            let header = *Envelope::parse(stored)?.header();
            let ring = header.key_id.keyring;
            if only.is_some_and(|id| id != ring) || s.keys.primary_of(ring) == Some(header.key_id) {
                return Ok(None);
            }
            let opened = s.keys.open(stored, from)?;
            let name = s
                .keys
                .name_of(ring)
                .ok_or(CmdError::Core(redis_enc_core::Error::UnknownKeyring))?;
            Ok(Some(Resealed {
                value: s
                    .keys
                    .seal(name, opened.header.flags, from, &opened.plaintext)?,
                token: blind::entry_at(s, name, from, &opened.plaintext)?,
            }))
        }
        Mode::EncryptPlaintext => {
            if looks_sealed(stored) {
                return Ok(None);
            }
            let name = chosen
                .cloned()
                .or_else(|| settings::keyring_for(key))
                .unwrap_or_else(KeyringName::default_name);
            let flags = Flags {
                phi: settings::is_phi_key(key),
            };
            Ok(Some(Resealed {
                value: s.keys.seal(&name, flags, from, stored)?,
                token: blind::entry_at(s, &name, from, stored)?,
            }))
        }
    })
}

/// Re-seals what needs it under one key. Returns (values changed, values that failed).
pub(super) fn process_key(
    ctx: Ctx,
    mode: Mode,
    only: Option<KeyringId>,
    chosen: Option<&KeyringName>,
    name: &[u8],
) -> (u64, u64) {
    let name_str = ctx.string(name);
    let arg = crate::ffi::Arg::from_owned(&name_str);
    let mut key = ctx.open_write(arg);
    match key.key_type() {
        KeyType::String => {
            let sealed = transform(
                mode,
                only,
                chosen,
                key.string_value(),
                &Location::Value { key: name },
                name,
            );
            match sealed {
                Ok(Some(sealed)) => {
                    // Rewritten in place: the key, its TTL and its place in the keyspace stay.
                    let content = Content::Resealed(&sealed.value);
                    match store::write_string(
                        ctx,
                        &mut key,
                        KeyType::String,
                        arg,
                        content,
                        Expiry::Keep,
                    ) {
                        Ok(value) => {
                            store::replicate_string(ctx, &key, arg, &value, Expiry::Keep);
                            (1, 0)
                        }
                        Err(_) => (0, 1),
                    }
                }
                Ok(None) => (0, 0),
                Err(_) => (0, 1),
            }
        }
        KeyType::Hash => {
            drop(key);
            let Ok(fields) = crate::store::all_fields(ctx, arg) else {
                return (0, 1);
            };
            let mut key = ctx.open_write(arg);
            let mut failed = 0;
            let mut resealed = Vec::new();
            let mut tokens = Vec::new();
            for (field, stored) in fields {
                let from = Location::HashField {
                    key: name,
                    field: &field,
                };
                match transform(mode, only, chosen, &stored, &from, name) {
                    Ok(Some(sealed)) => {
                        resealed.push((ctx.string(&field), ctx.string(&sealed.value)));
                        if let Some(entry) = sealed.token {
                            tokens.push((
                                ctx.string(&entry.field),
                                ctx.string(entry.token.as_bytes()),
                            ));
                        }
                    }
                    Ok(None) => {}
                    Err(_) => failed += 1,
                }
            }
            let fields: Vec<_> = resealed
                .iter()
                .map(|(f, v)| (crate::ffi::Arg::from_owned(f), v))
                .collect();
            // Notified, so that a query engine indexing the blind-index tokens sees them change.
            store::write_fields(ctx, &mut key, arg, &fields, &tokens, true);
            (fields.len() as u64, failed)
        }
        _ => (0, 0),
    }
}
