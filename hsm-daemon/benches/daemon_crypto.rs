//! The crypto of each hsm-daemon operation, in-process (`cargo bench -p
//! hsm-daemon`): the daemon's own `crypto/mod.rs` compiled into this bench (it
//! is a binary crate), so these are the exact functions the keystore thread
//! runs for CreateKey (wrap a token), a cache miss (unwrap a token),
//! Encrypt (seal), Decrypt (open), GenerateDataKey (random + seal) and
//! GenerateRandom. What is *not* here: the keystore's thread hop, slab and
//! cache, and the socket; `kms-frontend`'s `hsm_socket` bench measures those
//! end to end. The bare AES-256-GCM seal of 32 bytes is the "AES alone"
//! reference that BENCHMARKS.md compares request rates against.

//!
//! Cargo compiles bench targets with `cfg(test)`, so the included files
//! bring their unit-test modules along (compiled, never run here); that is
//! why `crypto` is a `crypto/mod.rs` file: loaded by `#[path]`, a file's own
//! submodules are looked up beside it, which only a `mod.rs` file agrees
//! with. (Until 2026-11-23 this bench was gated on `cfg(not(test))` and so
//! ran nothing under `cargo bench`.)

#![allow(dead_code, unreachable_pub, unused_imports)]

#[rustfmt::skip]
#[path = "../src/error.rs"]
mod error;
mod secure_mem {
    pub(crate) const KEY_LEN: usize = 32;
}
/// `error.rs` names the sealing error in one of its start-up variants.
mod seal {
    #[derive(Debug, thiserror::Error)]
    #[error("sealing is not part of this benchmark")]
    pub(crate) struct SealError;
}
#[rustfmt::skip]
#[path = "../src/crypto/mod.rs"]
mod crypto;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::{KeyRef, KeySpec};
use std::hint::black_box;

const KEY_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn ops(c: &mut Criterion) {
    let master = [1u8; 32];
    let cmk = [2u8; 32];
    let token =
        crypto::wrap_token(&master, 1, KEY_ID, 1, KeySpec::SymmetricDefault, &cmk).expect("wrap");
    let key = KeyRef {
        key_id: KEY_ID.to_owned(),
        version: 1,
        token: token.clone(),
    };
    let context: Vec<(String, String)> = Vec::new();
    let plaintext = [0x5au8; 32];
    let blob = crypto::seal(&cmk, KEY_ID, 1, &plaintext, &context).expect("seal");

    let mut g = c.benchmark_group("daemon_crypto");
    g.throughput(Throughput::Elements(1));
    g.bench_function("create_key_wrap_token", |b| {
        b.iter(|| {
            crypto::wrap_token(
                &master,
                1,
                KEY_ID,
                1,
                KeySpec::SymmetricDefault,
                black_box(&cmk),
            )
        })
    });
    g.bench_function("cache_miss_unwrap_token", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            crypto::unwrap_token(
                &master,
                black_box(&key),
                KeySpec::SymmetricDefault,
                &mut out,
            )
        })
    });
    g.bench_function("encrypt_seal_32B", |b| {
        b.iter(|| crypto::seal(&cmk, KEY_ID, 1, black_box(&plaintext), &context))
    });
    g.bench_function("decrypt_open_32B", |b| {
        b.iter(|| crypto::open(&cmk, &key, black_box(&blob), &context))
    });
    g.bench_function("generate_data_key_random_and_seal", |b| {
        b.iter(|| {
            let mut dk = [0u8; 32];
            crypto::fill_random(&mut dk).expect("random");
            crypto::seal(&cmk, KEY_ID, 1, black_box(&dk), &context)
        })
    });
    g.bench_function("generate_random_32B", |b| {
        b.iter(|| {
            let mut r = [0u8; 32];
            crypto::fill_random(&mut r).expect("random");
            r
        })
    });
    // The reference: AES-256-GCM on 32 bytes with a ready key schedule.
    let gcm = Aes256Gcm::new_from_slice(&cmk).expect("key");
    g.bench_function("aes256gcm_seal_32B_alone", |b| {
        let nonce = Nonce::from([3u8; 12]);
        b.iter(|| {
            let mut buf = plaintext;
            gcm.encrypt_in_place_detached(&nonce, b"", black_box(&mut buf))
        })
    });
    g.bench_function("aes256gcm_key_schedule", |b| {
        b.iter(|| Aes256Gcm::new_from_slice(black_box(&cmk)))
    });
    g.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
