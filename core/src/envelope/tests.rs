use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::key::{KeyVersion, KeyringId, MasterKey};

fn data_key() -> DataKey {
    MasterKey::generate().derive_data_key(KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(1),
    })
}

const LOC: Location<'static> = Location::Value { key: b"patient:81" };

#[test]
fn overhead_is_48_bytes() {
    let key = data_key();
    for len in [0usize, 1, 64, 1024] {
        let sealed = seal(&key, Flags::default(), &LOC, &vec![7u8; len]).unwrap();
        assert_eq!(sealed.len(), len + 48);
    }
    assert_eq!(OVERHEAD, 48);
}

#[test]
fn nonces_differ_between_seals() {
    let key = data_key();
    let a = seal(&key, Flags::default(), &LOC, b"same").unwrap();
    let b = seal(&key, Flags::default(), &LOC, b"same").unwrap();
    assert_ne!(a[8..32], b[8..32]);
    assert_ne!(a, b);
}

#[test]
fn a_value_does_not_open_at_another_location() {
    let key = data_key();
    let sealed = seal(&key, Flags::default(), &LOC, b"secret").unwrap();
    let env = Envelope::parse(&sealed).unwrap();
    for other in [
        Location::Value { key: b"patient:82" },
        Location::HashField {
            key: b"patient:81",
            field: b"",
        },
        Location::HashField {
            key: b"patient",
            field: b":81",
        },
    ] {
        assert_eq!(env.open(&key, &other).unwrap_err(), Error::DecryptFailed);
    }
    let field = Location::HashField {
        key: b"h",
        field: b"ssn",
    };
    let sealed = seal(&key, Flags::default(), &field, b"secret").unwrap();
    let env = Envelope::parse(&sealed).unwrap();
    assert!(env.open(&key, &field).is_ok());
    assert_eq!(
        env.open(
            &key,
            &Location::HashField {
                key: b"h",
                field: b"dob"
            }
        )
        .unwrap_err(),
        Error::DecryptFailed
    );
    assert_eq!(
        env.open(
            &key,
            &Location::HashField {
                key: b"g",
                field: b"ssn"
            }
        )
        .unwrap_err(),
        Error::DecryptFailed
    );
}

/// What opening gives after one byte of the envelope at `index` is flipped.
fn open_flipped(
    key: &DataKey,
    sealed: &[u8],
    index: usize,
    mask: u8,
) -> Result<crate::Plaintext, Error> {
    let mut tampered = sealed.to_vec();
    tampered[index] ^= mask;
    let env = Envelope::parse(&tampered)?;
    if env.header().key_id != key.id() {
        return Err(Error::UnknownKey {
            keyring: env.header().key_id.keyring,
            name: None,
            version: env.header().key_id.version,
        });
    }
    env.open(key, &LOC)
}

#[test]
fn every_flipped_bit_fails() {
    let key = data_key();
    let sealed = seal(&key, Flags::default(), &LOC, b"a record of some length").unwrap();
    for index in 0..sealed.len() {
        for bit in 0..8 {
            let err = open_flipped(&key, &sealed, index, 1 << bit).unwrap_err();
            match index {
                0 => assert_eq!(err, Error::NotAnEnvelope),
                1 => assert!(matches!(
                    err,
                    Error::NotAnEnvelope | Error::UnsupportedFormat(_)
                )),
                4..=7 => assert!(matches!(err, Error::UnknownKey { .. })),
                _ => assert_eq!(err, Error::DecryptFailed, "byte {index} bit {bit}"),
            }
        }
    }
}

#[test]
fn truncated_or_extended_envelopes_fail() {
    let key = data_key();
    let sealed = seal(&key, Flags::default(), &LOC, b"value").unwrap();
    for len in 2..sealed.len() {
        let r = Envelope::parse(&sealed[..len]).and_then(|e| e.open(&key, &LOC));
        assert_eq!(r.unwrap_err(), Error::DecryptFailed, "length {len}");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        Envelope::parse(&longer)
            .unwrap()
            .open(&key, &LOC)
            .unwrap_err(),
        Error::DecryptFailed
    );
}

#[test]
fn plaintext_is_never_taken_for_an_envelope() {
    for text in ["", "a", "hello world", "幸福", "\u{e5}", "{\"json\":1}"] {
        assert_eq!(
            Envelope::parse(text.as_bytes()).unwrap_err(),
            Error::NotAnEnvelope,
            "{text:?}"
        );
    }
    assert_eq!(
        Envelope::parse(&[MAGIC, 2, 1, 0]).unwrap_err(),
        Error::UnsupportedFormat(2)
    );
}

#[test]
fn a_wrong_key_fails_like_a_flipped_bit() {
    let sealed = seal(&data_key(), Flags::default(), &LOC, b"value").unwrap();
    let env = Envelope::parse(&sealed).unwrap();
    assert_eq!(
        env.open(&data_key(), &LOC).unwrap_err(),
        Error::DecryptFailed
    );
}

proptest! {
    #[test]
    fn seal_open_round_trip(plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
                            key_name in proptest::collection::vec(any::<u8>(), 0..64),
                            field in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
                            phi in any::<bool>()) {
        let key = data_key();
        let loc = match &field {
            Some(f) => Location::HashField { key: &key_name, field: f },
            None => Location::Value { key: &key_name },
        };
        let sealed = seal(&key, Flags { phi }, &loc, &plaintext).unwrap();
        let env = Envelope::parse(&sealed).unwrap();
        prop_assert_eq!(env.header().flags.phi, phi);
        prop_assert_eq!(env.plaintext_len(), plaintext.len());
        let opened = env.open(&key, &loc).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn parse_then_serialize_is_the_identity(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(env) = Envelope::parse(&bytes) {
            let serialized = env.to_vec();
            prop_assert_eq!(&serialized, &bytes);
            let again = Envelope::parse(&serialized).unwrap();
            prop_assert_eq!(again.header(), env.header());
        }
    }
}

/// The known-answer file, `tests/data/envelope-v1.json` (docs/FORMAT.md §1.6).
#[derive(Serialize, Deserialize)]
struct VectorFile {
    description: String,
    master_key: String,
    vectors: Vec<Vector>,
    negative: Vec<Negative>,
}

#[derive(Serialize, Deserialize)]
struct Vector {
    name: String,
    key: String,
    field: Option<String>,
    phi: bool,
    plaintext: String,
    nonce: String,
    envelope: String,
}

#[derive(Serialize, Deserialize)]
struct Negative {
    name: String,
    key: String,
    field: Option<String>,
    envelope: String,
    error: String,
}

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/envelope-v1.json"
);

fn location<'a>(key: &'a [u8], field: &'a Option<Vec<u8>>) -> Location<'a> {
    match field {
        Some(f) => Location::HashField { key, field: f },
        None => Location::Value { key },
    }
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::NotAnEnvelope => "NotAnEnvelope",
        Error::UnsupportedFormat(_) => "UnsupportedFormat",
        Error::UnknownKey { .. } => "UnknownKey",
        Error::DecryptFailed => "DecryptFailed",
        _ => "Other",
    }
}

fn keyring_of(file: &VectorFile) -> crate::KeyStore {
    crate::KeyStore::new(
        &MasterKey::from_base64(&file.master_key, "vectors").unwrap(),
        0,
    )
}

#[test]
fn known_answer_vectors_in_both_directions() {
    let file: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let ring = keyring_of(&file);
    let key = ring
        .get(KeyId {
            keyring: KeyringId(0),
            version: KeyVersion(1),
        })
        .unwrap();
    assert!(file.vectors.len() >= 4);
    for v in &file.vectors {
        let name = hex::decode(&v.key).unwrap();
        let field = v.field.as_ref().map(|f| hex::decode(f).unwrap());
        let loc = location(&name, &field);
        let plaintext = hex::decode(&v.plaintext).unwrap();
        let nonce: [u8; NONCE_LEN] = hex::decode(&v.nonce).unwrap().try_into().unwrap();
        let expected = hex::decode(&v.envelope).unwrap();
        let sealed = seal_with_nonce_for_known_answer_tests(
            key,
            Flags { phi: v.phi },
            &loc,
            &plaintext,
            &nonce,
        )
        .unwrap();
        assert_eq!(hex::encode(&sealed), v.envelope, "seal: {}", v.name);
        assert_eq!(
            ring.open(&expected, &loc).unwrap().plaintext.as_slice(),
            plaintext.as_slice(),
            "open: {}",
            v.name
        );
    }
    assert!(file.negative.len() >= 6);
    for n in &file.negative {
        let name = hex::decode(&n.key).unwrap();
        let field = n.field.as_ref().map(|f| hex::decode(f).unwrap());
        let err = ring
            .open(&hex::decode(&n.envelope).unwrap(), &location(&name, &field))
            .err()
            .expect(&n.name);
        assert_eq!(error_name(&err), n.error, "{}", n.name);
    }
}

/// Regenerates the known-answer file. Run only when the format changes (it never silently
/// does): `cargo test -p redis-enc-core -- --ignored write_known_answer_vectors`.
#[test]
#[ignore]
fn write_known_answer_vectors() {
    let master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned();
    let master = MasterKey::from_base64(&master_key, "vectors").unwrap();
    let key = master.derive_data_key(KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(1),
    });
    // (name, key, field, phi, plaintext)
    type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>, bool, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("empty value", b"k", None, false, vec![]),
        (
            "short text",
            b"patient:81",
            None,
            false,
            b"{\"name\":\"Ada\"}".to_vec(),
        ),
        ("phi flag", b"patient:81", None, true, b"record".to_vec()),
        (
            "binary with NUL bytes",
            b"bin\x00key",
            None,
            false,
            vec![0, 1, 0, 255, 0],
        ),
        (
            "hash field",
            b"patient:81",
            Some(b"ssn"),
            true,
            b"078-05-1120".to_vec(),
        ),
        ("one block and a byte", b"k", None, false, vec![0x41; 17]),
    ];
    let mut vectors = Vec::new();
    let mut sealed_values = Vec::new();
    for (i, (name, k, field, phi, plaintext)) in cases.into_iter().enumerate() {
        let nonce = [u8::try_from(i).unwrap() + 1; NONCE_LEN];
        let field_vec = field.map(<[u8]>::to_vec);
        let loc = location(k, &field_vec);
        let sealed =
            seal_with_nonce_for_known_answer_tests(&key, Flags { phi }, &loc, &plaintext, &nonce)
                .unwrap();
        sealed_values.push((k.to_vec(), field_vec.clone(), sealed.clone()));
        vectors.push(Vector {
            name: name.to_owned(),
            key: hex::encode(k),
            field: field_vec.map(hex::encode),
            phi,
            plaintext: hex::encode(&plaintext),
            nonce: hex::encode(nonce),
            envelope: hex::encode(&sealed),
        });
    }
    let (k, _, base) = sealed_values[1].clone();
    let (hk, hf, hash_sealed) = sealed_values[4].clone();
    let neg =
        |name: &str, key: &[u8], field: Option<Vec<u8>>, env: Vec<u8>, error: &str| Negative {
            name: name.to_owned(),
            key: hex::encode(key),
            field: field.map(hex::encode),
            envelope: hex::encode(env),
            error: error.to_owned(),
        };
    let flip = |i: usize| {
        let mut e = base.clone();
        e[i] ^= 0x01;
        e
    };
    let negative = vec![
        neg(
            "flipped ciphertext bit",
            &k,
            None,
            flip(33),
            "DecryptFailed",
        ),
        neg(
            "flipped tag bit",
            &k,
            None,
            flip(base.len() - 1),
            "DecryptFailed",
        ),
        neg("flipped nonce bit", &k, None, flip(8), "DecryptFailed"),
        neg("flipped PHI flag", &k, None, flip(3), "DecryptFailed"),
        neg("unknown algorithm", &k, None, flip(2), "DecryptFailed"),
        neg(
            "truncated",
            &k,
            None,
            base[..base.len() - 1].to_vec(),
            "DecryptFailed",
        ),
        neg(
            "shorter than the overhead",
            &k,
            None,
            base[..20].to_vec(),
            "DecryptFailed",
        ),
        neg(
            "appended byte",
            &k,
            None,
            [base.clone(), vec![0]].concat(),
            "DecryptFailed",
        ),
        neg(
            "wrong key name (moved value)",
            b"patient:82",
            None,
            base.clone(),
            "DecryptFailed",
        ),
        neg(
            "hash field read as a string value",
            &hk,
            None,
            hash_sealed.clone(),
            "DecryptFailed",
        ),
        neg(
            "wrong field name",
            &hk,
            Some(b"dob".to_vec()),
            hash_sealed.clone(),
            "DecryptFailed",
        ),
        neg(
            "field under another key",
            b"patient:82",
            hf.clone(),
            hash_sealed,
            "DecryptFailed",
        ),
        neg("unknown key version", &k, None, flip(7), "UnknownKey"),
        neg(
            "unknown format version",
            &k,
            None,
            [vec![MAGIC, 2], base[2..].to_vec()].concat(),
            "UnsupportedFormat",
        ),
        neg(
            "plaintext",
            &k,
            None,
            b"plain text".to_vec(),
            "NotAnEnvelope",
        ),
        neg("empty", &k, None, vec![], "NotAnEnvelope"),
    ];
    let file = VectorFile {
        description: "redis-enc envelope format v1 known-answer vectors (docs/FORMAT.md §1.6). \
                      Hex strings; master_key is base64; the data key is default v1 derived from it."
            .to_owned(),
        master_key,
        vectors,
        negative,
    };
    std::fs::write(VECTORS, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
}
