use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::key::{KeyId, KeyringId, MasterKey};

/// The known-answer file, `tests/data/search-v1.json` (docs/FORMAT.md §8.3).
#[derive(Serialize, Deserialize)]
struct VectorFile {
    description: String,
    master_key: String,
    index: Vec<IndexVector>,
    tokens: Vec<TokenVector>,
}

#[derive(Serialize, Deserialize)]
struct IndexVector {
    version: u16,
    pattern: String,
    field: String,
    value: String,
    bits: u8,
    token: String,
}

#[derive(Serialize, Deserialize)]
struct TokenVector {
    version: u16,
    namespace: String,
    value: String,
    token: String,
}

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/search-v1.json");

fn data_key(master: &MasterKey, version: u16) -> DataKey {
    master.derive_data_key(KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(version),
    })
}

const MRN: IndexScope<'static> = IndexScope {
    pattern: b"doc:*",
    field: b"mrn",
};

fn test_key(version: u16) -> DataKey {
    DataKey::from_bytes(
        KeyId {
            keyring: KeyringId(0),
            version: KeyVersion(version),
        },
        &[7u8; 32],
    )
}

#[test]
fn known_answers() {
    let file: VectorFile =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let master = MasterKey::from_base64(&file.master_key, "vectors").unwrap();
    for v in &file.index {
        let key = data_key(&master, v.version);
        let scope = IndexScope {
            pattern: v.pattern.as_bytes(),
            field: v.field.as_bytes(),
        };
        let token = index_token(&key, scope, v.value.as_bytes(), v.bits);
        assert_eq!(token, v.token, "{} {} {}", v.field, v.value, v.bits);
    }
    for v in &file.tokens {
        let key = data_key(&master, v.version);
        let token = tokenize(&key, v.namespace.as_bytes(), v.value.as_bytes()).unwrap();
        assert_eq!(token, v.token, "{} {}", v.namespace, v.value);
        let (ns, value) = detokenize(&key, token.as_bytes()).unwrap();
        assert_eq!(ns, v.namespace.as_bytes());
        assert_eq!(value.as_slice(), v.value.as_bytes());
    }
}

#[test]
fn normalising_trims_collapses_and_lowercases() {
    assert_eq!(&*normalise(b"  Ada \t LOVELACE \n"), b"ada lovelace");
    assert_eq!(&*normalise("ÉMILE".as_bytes()), "émile".as_bytes());
    assert_eq!(&*normalise(b"\xff A"), b"\xff A");
    assert_eq!(&*normalise(b"mrn-0042 x"), b"mrn-0042 x");
    assert_eq!(&*normalise(b"a\tb"), b"a b");
}

#[test]
fn truncation_keeps_the_top_bits_in_hex() {
    let key = test_key(3);
    let full = index_token(&key, MRN, b"42", 64);
    let short = index_token(&key, MRN, b"42", 24);
    assert_eq!(full.len(), "v3t".len() + 16);
    assert_eq!(short.len(), "v3t".len() + 6);
    assert!(full.starts_with(&short));
    // 20 bits: five hex digits, the value below 2^20.
    let twenty = index_token(&key, MRN, b"42", 20);
    let value = u64::from_str_radix(&twenty[3..], 16).unwrap();
    assert!(value < 1 << 20);
    assert_eq!(value, u64::from_str_radix(&full[3..], 16).unwrap() >> 44);
}

#[test]
fn an_edited_token_or_another_key_does_not_open() {
    let key = test_key(1);
    let token = tokenize(&key, b"patient", b"81").unwrap();
    let mut edited = token.clone().into_bytes();
    let last = edited.len() - 2;
    edited[last] = if edited[last] == b'a' { b'b' } else { b'a' };
    assert_eq!(
        detokenize(&key, &edited).unwrap_err(),
        TokenError::DoesNotOpen
    );
    let other = DataKey::from_bytes(key.id(), &[8u8; 32]);
    assert_eq!(
        detokenize(&other, token.as_bytes()).unwrap_err(),
        TokenError::DoesNotOpen
    );
    assert_eq!(
        detokenize(&test_key(2), token.as_bytes()).unwrap_err(),
        TokenError::Malformed
    );
    for bad in [&b"tk1_"[..], b"tk1_!!", b"tk01_aa", b"k1_aa", b"tk_aa", b""] {
        assert!(detokenize(&key, bad).is_err(), "{bad:?}");
    }
    // One spelling per token: no upper-case body, no sign in the version.
    let upper = format!("tk1_{}", token[4..].to_ascii_uppercase());
    assert_eq!(
        detokenize(&key, upper.as_bytes()).unwrap_err(),
        TokenError::Malformed
    );
    let signed = format!("tk+1_{}", &token[4..]);
    assert_eq!(
        detokenize(&key, signed.as_bytes()).unwrap_err(),
        TokenError::Malformed
    );
    assert_eq!(
        tokenize(&key, &[b'n'; 256], b"v").unwrap_err(),
        TokenError::NamespaceTooLong
    );
}

proptest! {
    #[test]
    fn the_ascii_path_normalises_as_unicode_text_does(value in "[ -~\t\n\x0b\x0c\r]{0,40}") {
        let generic = value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        prop_assert_eq!(&*normalise(value.as_bytes()), generic.as_bytes());
    }

    #[test]
    fn tokens_are_deterministic_separated_and_reversible(
        ns in proptest::collection::vec(any::<u8>(), 0..40),
        other_ns in proptest::collection::vec(any::<u8>(), 0..40),
        value in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = test_key(1);
        let token = tokenize(&key, &ns, &value).unwrap();
        prop_assert_eq!(&token, &tokenize(&key, &ns, &value).unwrap());
        if other_ns != ns {
            prop_assert_ne!(&token, &tokenize(&key, &other_ns, &value).unwrap());
        }
        let (back_ns, back) = detokenize(&key, token.as_bytes()).unwrap();
        prop_assert_eq!(back_ns, ns);
        prop_assert_eq!(back.as_slice(), value.as_slice());
        prop_assert!(token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }

    #[test]
    fn index_tokens_are_letters_and_digits_and_ignore_case_and_spacing(
        field in "[a-z_]{1,12}",
        value in "[A-Za-z0-9 ]{0,40}",
        bits in 1u8..=64,
    ) {
        let key = test_key(2);
        let scope = IndexScope { pattern: b"doc:*", field: field.as_bytes() };
        let token = index_token(&key, scope, value.as_bytes(), bits);
        prop_assert!(token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let respaced = format!("  {}  ", value.to_uppercase().replace(' ', "  "));
        prop_assert_eq!(&token, &index_token(&key, scope, respaced.as_bytes(), bits));
        let other = IndexScope { pattern: b"pub:*", field: field.as_bytes() };
        if bits >= 32 {
            prop_assert_ne!(&token, &index_token(&key, other, value.as_bytes(), bits));
        }
        prop_assert_eq!(token.len(), 3 + usize::from(bits).div_ceil(4));
    }
}

/// Prints a vector file for [`known_answers`]; run by hand with `--ignored` when a new format
/// version is made, never to paper over a changed answer.
#[test]
#[ignore]
fn print_vectors() {
    let master_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let master = MasterKey::from_base64(master_b64, "vectors").unwrap();
    let index = [
        (1, "doc:*", "mrn", "MRN-0042", 24),
        (1, "doc:*", "mrn", " mrn-0042 ", 24),
        (2, "doc:*", "mrn", "MRN-0042", 24),
        (1, "pub:*", "mrn", "MRN-0042", 24),
        (1, "doc:*", "patient_name", "Ada Lovelace", 20),
        (1, "doc:*", "patient_name", "Ada Lovelace", 64),
        (1, "doc:*", "patient_name", "", 1),
    ]
    .map(|(version, pattern, field, value, bits)| IndexVector {
        version,
        pattern: pattern.into(),
        field: field.into(),
        value: value.into(),
        bits,
        token: index_token(
            &data_key(&master, version),
            IndexScope {
                pattern: pattern.as_bytes(),
                field: field.as_bytes(),
            },
            value.as_bytes(),
            bits,
        ),
    });
    let tokens = [
        (1, "patient", "81"),
        (1, "patient", "82"),
        (1, "mrn", "81"),
        (2, "patient", "81"),
        (1, "", ""),
    ]
    .map(|(version, namespace, value)| TokenVector {
        version,
        namespace: namespace.into(),
        value: value.into(),
        token: tokenize(
            &data_key(&master, version),
            namespace.as_bytes(),
            value.as_bytes(),
        )
        .unwrap(),
    });
    let file = VectorFile {
        description: "redis-enc blind-index and key-name token known-answer vectors \
                      (docs/FORMAT.md §8.3). master_key is base64; the data keys are default \
                      vN derived from it (keyring 0)."
            .into(),
        master_key: master_b64.into(),
        index: index.into(),
        tokens: tokens.into(),
    };
    println!("{}", serde_json::to_string_pretty(&file).unwrap());
}
