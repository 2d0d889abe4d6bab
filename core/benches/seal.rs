//! Seal and open against the raw AEAD they are built on, at 64 B, 1 KiB and 16 KiB: the
//! envelope (header, associated data, nonce draw, allocation) should add little.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::RngCore;
use redis_enc_core::envelope::{seal, Envelope, Flags, Location};
use redis_enc_core::{KeyId, KeyVersion, KeyringId, MasterKey};
use xaes_256_gcm::aead::{AeadInOut, KeyInit};
use xaes_256_gcm::Xaes256Gcm;

fn benches(c: &mut Criterion) {
    let key = MasterKey::generate().derive_data_key(KeyId {
        keyring: KeyringId(0),
        version: KeyVersion(1),
    });
    let raw = Xaes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let location = Location::Value { key: b"patient:81" };
    let mut group = c.benchmark_group("envelope");
    for size in [64usize, 1024, 16384] {
        let plaintext = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, p| {
            b.iter(|| seal(&key, Flags::default(), &location, p).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("raw-encrypt", size), &plaintext, |b, p| {
            b.iter(|| {
                let mut nonce = [0u8; 24];
                rand::thread_rng().fill_bytes(&mut nonce);
                let mut buf = p.clone();
                raw.encrypt_inout_detached(
                    (&nonce).into(),
                    b"patient:81",
                    buf.as_mut_slice().into(),
                )
                .unwrap();
                buf
            })
        });
        let sealed = seal(&key, Flags::default(), &location, &plaintext).unwrap();
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| Envelope::parse(s).unwrap().open(&key, &location).unwrap())
        });
        let nonce = [1u8; 24];
        let mut ct = plaintext.clone();
        let tag = raw
            .encrypt_inout_detached((&nonce).into(), b"patient:81", ct.as_mut_slice().into())
            .unwrap();
        group.bench_with_input(BenchmarkId::new("raw-decrypt", size), &ct, |b, ct| {
            b.iter(|| {
                let mut out = vec![0u8; ct.len()];
                raw.decrypt_inout_detached(
                    (&nonce).into(),
                    b"patient:81",
                    xaes_256_gcm::aead::inout::InOutBuf::new(ct, &mut out).unwrap(),
                    &tag,
                )
                .unwrap();
                out
            })
        });
    }
    group.finish();
}

criterion_group!(seal_benches, benches);
criterion_main!(seal_benches);
