//! SigV4 verification cost (`cargo bench -p kms-frontend --bench sigv4`): a
//! GenerateDataKey-sized request signed by the AWS SDK's own signer
//! (`aws-sigv4`), verified by our `Verifier` with its signing-key cache warm
//! (every request after the first of the day) and cold (a fresh verifier,
//! so the four-HMAC key derivation is included).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kms_frontend::auth::{Credential, RequestParts, Verifier};
use kms_frontend::principal::Principal;
use std::hint::black_box;
use std::time::SystemTime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BODY: &[u8] = br#"{"KeyId":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","KeySpec":"AES_256"}"#;

fn verifier() -> Verifier {
    let credential = Credential {
        principal: std::sync::Arc::new(Principal {
            arn: "arn:aws:iam::111122223333:user/bench".to_owned(),
            account_id: "111122223333".to_owned(),
            access_key_id: AKID.to_owned(),
            admin: false,
        }),
        secret: SECRET.to_owned().into(),
    };
    Verifier::new("us-east-1", "kms", vec![credential])
}

fn signed_headers() -> http::HeaderMap {
    let identity = Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kms")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.GenerateDataKey"),
        ("host", "127.0.0.1:4599"),
    ];
    let signable = SignableRequest::new(
        "POST",
        "https://127.0.0.1:4599/",
        headers.iter().copied(),
        SignableBody::Bytes(BODY),
    )
    .expect("signable");
    let mut request = http::Request::builder()
        .method("POST")
        .uri("https://127.0.0.1:4599/")
        .body(())
        .expect("request");
    for (k, v) in headers {
        request.headers_mut().insert(k, v.parse().expect("value"));
    }
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(&mut request);
    request.headers().clone()
}

fn sigv4(c: &mut Criterion) {
    let headers = signed_headers();
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: None,
        headers: &headers,
        authority: None,
        body: BODY,
    };
    let mut g = c.benchmark_group("sigv4");
    g.throughput(Throughput::Elements(1));
    let warm = verifier();
    warm.verify(&parts, time::OffsetDateTime::now_utc())
        .expect("the bench request verifies");
    g.bench_function("verify_cached_signing_key", |b| {
        b.iter(|| warm.verify(black_box(&parts), time::OffsetDateTime::now_utc()))
    });
    g.bench_function("verify_cold_signing_key", |b| {
        b.iter_batched(
            verifier,
            |v| {
                v.verify(black_box(&parts), time::OffsetDateTime::now_utc())
                    .is_ok()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, sigv4);
criterion_main!(benches);
