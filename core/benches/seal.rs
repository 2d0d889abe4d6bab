//! Seal and open against the raw AEAD they are built on, at 64 B, 1 KiB and 16 KiB: the
//! envelope (header, associated data, nonce draw, key derivation) should add little.
//!
//! - `raw-encrypt` / `raw-decrypt`: AES-256-GCM with an expanded key, the floor.
//! - `seal` / `open`: the envelope; values sealed in one run share a derived key.
//! - `open-uncached`: every value under a nonce prefix the opener has not seen, so each open
//!   derives and expands its key (XAES-256-GCM's full per-message cost).
//! - `xaes-crate-encrypt`: the `xaes-256-gcm` crate, which derives a key for every message.
// A benchmark, like a test: a failed step may stop it.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::RngCore;
use redis_enc_core::envelope::{seal, seal_into, Envelope, Flags, Location, OVERHEAD};
use redis_enc_core::{KeyId, KeyVersion, KeyringId, MasterKey};
use redis_enc_gcm::Aes256GcmKey;
use xaes_256_gcm::aead::{AeadInOut, KeyInit};
use xaes_256_gcm::Xaes256Gcm;

const AAD: &[u8] = b"patient:81";

fn benches(c: &mut Criterion) {
    let master = MasterKey::generate();
    let id = KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(1),
    };
    let key = master.derive_data_key(id);
    let raw = Aes256GcmKey::new(&[7u8; 32]);
    let xaes_crate = Xaes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let location = Location::Value { key: AAD };
    let mut group = c.benchmark_group("envelope");
    for size in [64usize, 1024, 16384] {
        let plaintext = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        // Both write into a buffer that exists already, as the server seals into the value.
        let mut out = vec![0u8; size + OVERHEAD];
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, p| {
            b.iter(|| seal_into(&key, Flags::default(), &location, p, &mut out).unwrap())
        });
        let mut buf = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("raw-encrypt", size), &plaintext, |b, p| {
            b.iter(|| {
                let mut nonce = [0u8; 12];
                rand::thread_rng().fill_bytes(&mut nonce);
                buf.copy_from_slice(p);
                raw.seal_in_place(&nonce, AAD, &mut buf).unwrap()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("xaes-crate-encrypt", size),
            &plaintext,
            |b, p| {
                b.iter(|| {
                    let mut nonce = [0u8; 24];
                    rand::thread_rng().fill_bytes(&mut nonce);
                    buf.copy_from_slice(p);
                    xaes_crate
                        .encrypt_inout_detached((&nonce).into(), AAD, buf.as_mut_slice().into())
                        .unwrap()
                })
            },
        );
        let sealed = seal(&key, Flags::default(), &location, &plaintext).unwrap();
        // Both write into a buffer that exists already, as the server opens into its own.
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| {
                Envelope::parse(s)
                    .unwrap()
                    .open_into(&key, &location, &mut buf)
                    .unwrap()
            })
        });
        // Each sealer draws its own nonce prefix: 64 sealers give 64 prefixes, more than an
        // opener keeps, so opening them in turn derives a key every time.
        let uncached: Vec<Vec<u8>> = (0..64)
            .map(|_| {
                let sealer = master.derive_data_key(id);
                seal(&sealer, Flags::default(), &location, &plaintext).unwrap()
            })
            .collect();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("open-uncached", size), |b| {
            b.iter(|| {
                next = (next + 1) % uncached.len();
                Envelope::parse(&uncached[next])
                    .unwrap()
                    .open_into(&key, &location, &mut buf)
                    .unwrap()
            })
        });
        let nonce = [1u8; 12];
        let mut ct = plaintext.clone();
        let tag = raw.seal_in_place(&nonce, AAD, &mut ct).unwrap();
        group.bench_with_input(BenchmarkId::new("raw-decrypt", size), &ct, |b, ct| {
            b.iter(|| {
                buf.copy_from_slice(ct);
                raw.open_in_place(&nonce, AAD, &mut buf, &tag).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(seal_benches, benches);
criterion_main!(seal_benches);
