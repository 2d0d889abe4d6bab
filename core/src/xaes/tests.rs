use super::*;
use proptest::prelude::*;
use xaes_256_gcm::aead::AeadInOut;
use xaes_256_gcm::Xaes256Gcm;

fn reference(key: &[u8; 32]) -> Xaes256Gcm {
    Xaes256Gcm::new_from_slice(key).unwrap()
}

/// C2SP XAES-256-GCM test vector 1 (key 0x01 × 32, nonce "ABCDEFGHIJKLMNOPQRSTUVWX").
#[test]
fn c2sp_vector() {
    let x = Xaes::new(&[1u8; 32]);
    let nonce: [u8; 24] = *b"ABCDEFGHIJKLMNOPQRSTUVWX";
    let mut buf = b"XAES-256-GCM".to_vec();
    let tag = x.prepare_with_nonce(&nonce).seal(b"", &mut buf).unwrap();
    let mut sealed = buf.clone();
    sealed.extend_from_slice(&tag);
    assert_eq!(
        hex::encode(&sealed),
        "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"
    );
    x.open(&nonce, b"", &mut buf, &tag).unwrap();
    assert_eq!(buf, b"XAES-256-GCM");
}

proptest! {
    /// Both directions against the `xaes-256-gcm` crate.
    #[test]
    fn agrees_with_the_reference_crate(
        key in any::<[u8; 32]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let ours = Xaes::new(&key);
        let theirs = reference(&key);
        let mut buf = plaintext.clone();
        let (nonce, tag) = ours.seal(&aad, &mut buf).unwrap();
        let mut opened = buf.clone();
        theirs.decrypt_inout_detached(
            (&nonce).into(), &aad, (&mut opened[..]).into(), (&tag).into()).unwrap();
        prop_assert_eq!(&opened, &plaintext);

        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let mut buf = plaintext.clone();
        let tag = theirs
            .encrypt_inout_detached((&nonce).into(), &aad, (&mut buf[..]).into())
            .unwrap();
        ours.open(&nonce, &aad, &mut buf, &tag.into()).unwrap();
        prop_assert_eq!(&buf, &plaintext);
    }
}

#[test]
fn a_prefix_seals_a_bounded_number_of_values_and_every_nonce_differs() {
    let x = Xaes::new(&[3u8; 32]);
    let mut nonces = std::collections::HashSet::new();
    let mut prefixes = std::collections::HashSet::new();
    for _ in 0..1000 {
        let (nonce, _) = x.seal(b"", &mut [0u8; 4]).unwrap();
        prefixes.insert(nonce[..12].to_vec());
        assert!(nonces.insert(nonce));
    }
    assert_eq!(prefixes.len(), 1, "one prefix per run of values");
    assert_eq!(x.derived(), 1);
    // Values under one prefix are numbered: no GCM nonce repeats under it.
    let numbers: std::collections::HashSet<[u8; 4]> = nonces
        .iter()
        .map(|n| n[12..16].try_into().unwrap())
        .collect();
    assert_eq!(numbers.len(), nonces.len());
    // Exhaust the prefix: the next value gets a new one.
    x.lock().sealing.as_mut().unwrap().used = SEALS_PER_PREFIX;
    let (nonce, _) = x.seal(b"", &mut [0u8; 4]).unwrap();
    assert!(!prefixes.contains(&nonce[..12]));
    assert_eq!(x.derived(), 2);
}

#[test]
fn sealing_keys_are_not_shared_between_data_keys_or_runs() {
    let a = Xaes::new(&[4u8; 32]);
    let b = Xaes::new(&[4u8; 32]);
    let (na, _) = a.seal(b"", &mut [0u8; 4]).unwrap();
    let (nb, _) = b.seal(b"", &mut [0u8; 4]).unwrap();
    assert_ne!(na[..12], nb[..12], "each key object draws its own prefix");
}

#[test]
fn the_cache_keeps_the_most_recent_prefixes() {
    let x = Xaes::new(&[5u8; 32]);
    let theirs = reference(&[5u8; 32]);
    let mut sealed = Vec::new();
    for i in 0..(u8::try_from(CACHED_PREFIXES).unwrap() + 4) {
        let nonce = [i; 24];
        let mut buf = vec![i; 8];
        let tag = theirs
            .encrypt_inout_detached((&nonce).into(), b"", (&mut buf[..]).into())
            .unwrap();
        sealed.push((nonce, buf, tag));
    }
    for (nonce, buf, tag) in &sealed {
        x.open(nonce, b"", &mut buf.clone(), &(*tag).into())
            .unwrap();
    }
    let derived = x.derived();
    assert_eq!(derived, sealed.len() as u64);
    // The newest CACHED_PREFIXES open without deriving again; the oldest needs a derivation.
    for (nonce, buf, tag) in &sealed[4..] {
        x.open(nonce, b"", &mut buf.clone(), &(*tag).into())
            .unwrap();
    }
    assert_eq!(x.derived(), derived);
    let (nonce, buf, tag) = &sealed[0];
    x.open(nonce, b"", &mut buf.clone(), &(*tag).into())
        .unwrap();
    assert_eq!(x.derived(), derived + 1);
    assert!(x.lock().keys.len() <= CACHED_PREFIXES);
}

/// Envelopes that do not open (forged, or under another key) are not cached: they cannot
/// push out the keys of real values or the key values are sealed under.
#[test]
fn failed_opens_leave_the_cache_alone() {
    let x = Xaes::new(&[8u8; 32]);
    let (nonce, tag) = x.seal(b"", &mut [1u8; 8]).unwrap();
    let sealing_prefix = nonce[..12].to_vec();
    for i in 0..(u8::try_from(CACHED_PREFIXES).unwrap() * 2) {
        let forged = [i; 24];
        assert_eq!(x.open(&forged, b"", &mut [0u8; 8], &[0u8; 16]), Err(Failed));
    }
    assert!(x.lock().keys.is_empty());
    let derived = x.derived();
    let (again, _) = x.seal(b"", &mut [1u8; 8]).unwrap();
    assert_eq!(again[..12], sealing_prefix[..]);
    assert_eq!(x.derived(), derived, "the sealing key was kept");
    let _ = tag;
}

#[test]
fn a_wrong_tag_fails_and_zeroes_the_buffer() {
    let x = Xaes::new(&[6u8; 32]);
    let mut buf = b"secret".to_vec();
    let (nonce, mut tag) = x.seal(b"a", &mut buf).unwrap();
    tag[0] ^= 1;
    assert_eq!(x.open(&nonce, b"a", &mut buf, &tag), Err(Failed));
    assert!(buf.iter().all(|&b| b == 0));
}

proptest! {
    /// The `aead` face (key wrapping, backup STREAM) agrees with the reference crate both
    /// ways, including several messages under one nonce prefix, as a STREAM sends them.
    #[test]
    fn the_aead_face_agrees_with_the_reference_crate(
        key in any::<[u8; 32]>(),
        prefix in any::<[u8; 19]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        plaintext in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let ours = XaesAead::new(&key);
        let theirs = reference(&key);
        for counter in 0u8..3 {
            let mut nonce = [0u8; 24];
            nonce[..19].copy_from_slice(&prefix);
            nonce[22] = counter;
            let mut buf = plaintext.clone();
            let tag = ours
                .encrypt_inout_detached((&nonce).into(), &aad, (&mut buf[..]).into())
                .unwrap();
            let mut theirs_buf = plaintext.clone();
            let theirs_tag = theirs
                .encrypt_inout_detached((&nonce).into(), &aad, (&mut theirs_buf[..]).into())
                .unwrap();
            prop_assert_eq!(&buf, &theirs_buf);
            prop_assert_eq!(tag.as_slice(), theirs_tag.as_slice());
            let mut forged = buf.clone();
            if let Some(b) = forged.first_mut() { *b ^= 1; }
            let forged_tag = tag;
            if !plaintext.is_empty() {
                prop_assert!(ours
                    .decrypt_inout_detached((&nonce).into(), &aad, (&mut forged[..]).into(), &forged_tag)
                    .is_err());
            }
            ours.decrypt_inout_detached((&nonce).into(), &aad, (&mut buf[..]).into(), &tag)
                .unwrap();
            prop_assert_eq!(&buf, &plaintext);
        }
    }
}
