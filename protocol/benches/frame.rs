//! Frame encode/decode cost (`cargo bench -p protocol`): an Encrypt request
//! with 32 bytes of plaintext and a realistic key token, and the Ciphertext
//! reply, through `encode_frame` and `FrameCodec` as both processes use them.

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::{
    FrameCodec, KeyRef, KeyToken, Request, RequestFrame, Response, ResponseFrame, SecretBytes,
    encode_frame,
};
use std::hint::black_box;
use tokio_util::codec::Decoder;

fn encrypt_request() -> RequestFrame {
    RequestFrame {
        id: 123_456,
        request_id: [0x5a; 16],
        request: Request::Encrypt {
            key: KeyRef {
                key_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned(),
                version: 1,
                token: KeyToken(vec![7u8; 80]),
            },
            plaintext: SecretBytes::new(vec![0x5a; 32]),
            context: vec![("purpose".to_owned(), "bench".to_owned())],
        },
    }
}

fn ciphertext_reply() -> ResponseFrame {
    ResponseFrame {
        id: 123_456,
        result: Ok(Response::Ciphertext {
            blob: vec![9u8; 140],
        }),
    }
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1));
    let request = encrypt_request();
    let reply = ciphertext_reply();
    g.bench_function("encode_encrypt_request", |b| {
        b.iter(|| encode_frame(black_box(&request)))
    });
    g.bench_function("encode_ciphertext_reply", |b| {
        b.iter(|| encode_frame(black_box(&reply)))
    });
    let req_bytes = encode_frame(&request).expect("encode");
    let reply_bytes = encode_frame(&reply).expect("encode");
    g.bench_function("decode_encrypt_request", |b| {
        let mut codec = FrameCodec::<ResponseFrame, RequestFrame>::new();
        b.iter(|| {
            let mut buf = BytesMut::from(&req_bytes[..]);
            codec.decode(&mut buf).expect("decode").expect("frame")
        })
    });
    g.bench_function("decode_ciphertext_reply", |b| {
        let mut codec = FrameCodec::<RequestFrame, ResponseFrame>::new();
        b.iter(|| {
            let mut buf = BytesMut::from(&reply_bytes[..]);
            codec.decode(&mut buf).expect("decode").expect("frame")
        })
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
