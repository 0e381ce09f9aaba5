//! Envelope file encryption throughput (`cargo bench -p kms-frontend --bench
//! envelope`): `kmsctl encrypt`'s streaming AWS Encryption SDK v2 writer
//! (suite 0x0478, 4096-byte frames) and its reader, on 1 MiB and 16 MiB
//! in memory, with the data key already in hand (the one GenerateDataKey
//! call per file is measured by `kmsctl bench`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kms_frontend::cli::esdk::header::{EncryptedDataKey, Header};
use kms_frontend::cli::esdk::{self, keys, stream};
use std::collections::BTreeMap;
use std::hint::black_box;

fn header(data_key: &[u8; 32]) -> Header {
    let message_id = [7u8; esdk::MESSAGE_ID_LEN];
    Header {
        suite: esdk::SUITE_COMMIT_KEY,
        message_id,
        commitment: keys::commitment_key(data_key, &message_id),
        context: BTreeMap::from([("purpose".to_owned(), "bench".to_owned())]),
        edks: vec![EncryptedDataKey {
            provider_id: esdk::PROVIDER_AWS_KMS.to_owned(),
            provider_info: b"arn:aws:kms:us-east-1:111122223333:key/bench".to_vec(),
            ciphertext: vec![1u8; 180],
        }],
        frame_len: 4096,
    }
}

fn envelope(c: &mut Criterion) {
    let data_key = [3u8; 32];
    let header = header(&data_key);
    let mut g = c.benchmark_group("envelope");
    g.sample_size(20);
    for mib in [1usize, 16] {
        let plaintext = vec![0x5au8; mib << 20];
        g.throughput(Throughput::Bytes(plaintext.len() as u64));
        g.bench_function(format!("encrypt_{mib}MiB"), |b| {
            let mut out = Vec::with_capacity(plaintext.len() + (64 << 10));
            b.iter(|| {
                out.clear();
                stream::encrypt(
                    &mut black_box(&plaintext[..]),
                    &mut out,
                    &header,
                    &data_key,
                    &mut |_| {},
                )
                .expect("encrypt")
            })
        });
        let mut message = Vec::new();
        stream::encrypt(
            &mut &plaintext[..],
            &mut message,
            &header,
            &data_key,
            &mut |_| {},
        )
        .expect("encrypt");
        g.bench_function(format!("decrypt_{mib}MiB"), |b| {
            let mut out = Vec::with_capacity(plaintext.len());
            b.iter(|| {
                out.clear();
                let mut input = &message[..];
                let (h, raw, tag) = Header::read(&mut input).expect("header");
                stream::decrypt_body(&mut input, &mut out, &h, &raw, &tag, &data_key, &mut |_| {})
                    .expect("decrypt")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
