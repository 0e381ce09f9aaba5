//! SigV4 verification against the public AWS test suite
//! (aws-sig-v4-test-suite: AKIDEXAMPLE, service "service", 2015-08-30) and
//! against signatures made by the `aws-sigv4` crate the AWS SDK uses.

use super::*;
use http::{HeaderMap, HeaderName, HeaderValue};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_DATE: &str = "20150830T123600Z";
const ARN: &str = "arn:aws:iam::111122223333:user/dev";

fn suite_now() -> OffsetDateTime {
    time::PrimitiveDateTime::parse(SUITE_DATE, AMZ_DATE)
        .expect("date")
        .assume_utc()
}

fn verifier(region: &str, service: &str) -> Verifier {
    Verifier::new(
        region,
        service,
        vec![Credential {
            principal: Arc::new(Principal {
                arn: ARN.into(),
                account_id: "111122223333".into(),
                access_key_id: AKID.into(),
                admin: false,
            }),
            secret: SecretString::from(SECRET.to_owned()),
        }],
    )
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn authz(signed: &str, sig: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/service/aws4_request, \
         SignedHeaders={signed}, Signature={sig}"
    )
}

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    extra: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signed: &'static str,
    sig: &'static str,
}

const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: VANILLA,
    },
    Vector {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: None,
        extra: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"Param1=value1",
        signed: "content-type;host;x-amz-date",
        sig: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: None,
        extra: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: b"",
        signed: "host;my-header1;my-header2;x-amz-date",
        sig: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        path: "/",
        query: None,
        extra: &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        body: b"",
        signed: "host;my-header1;x-amz-date",
        sig: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: Some("Param2=value2&Param1=value1"),
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "post-vanilla-query",
        method: "POST",
        path: "/",
        query: Some("Param1=value1"),
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "normalize-path/get-relative",
        method: "GET",
        path: "/example/..",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: VANILLA,
    },
    Vector {
        name: "normalize-path/get-relative-relative",
        method: "GET",
        path: "/example1/example2/../..",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: VANILLA,
    },
    Vector {
        name: "normalize-path/get-slash-dot-slash",
        method: "GET",
        path: "/./",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: VANILLA,
    },
    Vector {
        name: "normalize-path/get-slash",
        method: "GET",
        path: "//",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: VANILLA,
    },
    Vector {
        name: "normalize-path/get-slash-pointless-dot",
        method: "GET",
        path: "/./example",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    },
    Vector {
        name: "normalize-path/get-slashes",
        method: "GET",
        path: "//example//",
        query: None,
        extra: &[],
        body: b"",
        signed: "host;x-amz-date",
        sig: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    },
];

fn suite_request(v: &Vector, sig: &str) -> HeaderMap {
    let mut pairs = vec![
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
    ];
    pairs.extend_from_slice(v.extra);
    let mut h = headers(&pairs);
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&authz(v.signed, sig)).expect("authz"),
    );
    h
}

fn parts<'a>(v: &'a Vector, h: &'a HeaderMap) -> RequestParts<'a> {
    RequestParts {
        method: v.method,
        path: v.path,
        query: v.query,
        headers: h,
        authority: None,
        body: v.body,
    }
}

#[test]
fn accepts_aws_test_suite_vectors() {
    let verifier = verifier("us-east-1", "service");
    for v in VECTORS {
        let h = suite_request(v, v.sig);
        let got = verifier.verify(&parts(v, &h), suite_now());
        assert_eq!(
            got.map(|p| p.arn.clone()).as_deref(),
            Ok(ARN),
            "vector {}",
            v.name
        );
    }
}

#[test]
fn rejects_bad_signature_on_every_vector() {
    let verifier = verifier("us-east-1", "service");
    for v in VECTORS {
        let mut bad = v.sig.to_owned();
        bad.replace_range(0..1, if bad.starts_with('0') { "1" } else { "0" });
        let h = suite_request(v, &bad);
        let err = verifier
            .verify(&parts(v, &h), suite_now())
            .expect_err(v.name);
        assert_eq!(err, AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()));
        assert!(!err.to_string().contains(v.sig), "leaks expected signature");
    }
}

#[test]
fn rejects_tampered_body() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[2];
    let h = suite_request(v, v.sig);
    let mut p = parts(v, &h);
    p.body = b"Param1=value2";
    assert!(matches!(
        verifier.verify(&p, suite_now()),
        Err(AuthError::InvalidSignature(_))
    ));
}

#[test]
fn host_from_authority_under_http2() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let mut h = suite_request(v, v.sig);
    h.remove(http::header::HOST);
    let mut p = parts(v, &h);
    assert!(verifier.verify(&p, suite_now()).is_err());
    p.authority = Some("example.amazonaws.com");
    assert!(verifier.verify(&p, suite_now()).is_ok());
}

#[test]
fn content_sha256_header_must_match() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let mut h = suite_request(v, v.sig);
    h.insert("x-amz-content-sha256", HeaderValue::from_static("abcd"));
    let err = verifier
        .verify(&parts(v, &h), suite_now())
        .expect_err("mismatch");
    assert_eq!(err.aws_name(), "InvalidSignatureException");
}

#[test]
fn missing_authorization_is_missing_token() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let mut h = suite_request(v, v.sig);
    h.remove(http::header::AUTHORIZATION);
    let err = verifier
        .verify(&parts(v, &h), suite_now())
        .expect_err("no auth");
    assert_eq!(err, AuthError::MissingToken);
    assert_eq!(err.aws_name(), "MissingAuthenticationTokenException");
}

#[test]
fn malformed_authorization_is_incomplete() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    for bad in [
        "AWS4-HMAC-SHA256",
        "Basic Zm9vOmJhcg==",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830, SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 garbage",
    ] {
        let mut h = suite_request(v, v.sig);
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(bad));
        let err = verifier.verify(&parts(v, &h), suite_now()).expect_err(bad);
        assert_eq!(
            err.aws_name(),
            "IncompleteSignatureException",
            "{bad}: {err}"
        );
    }
    let mut h = suite_request(v, v.sig);
    h.remove("x-amz-date");
    let err = verifier
        .verify(&parts(v, &h), suite_now())
        .expect_err("no date");
    assert_eq!(err.aws_name(), "IncompleteSignatureException");
}

#[test]
fn unknown_access_key_is_unrecognized_client() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let mut h = suite_request(v, v.sig);
    let a = authz(v.signed, v.sig).replace(AKID, "AKIDOTHER");
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&a).expect("v"),
    );
    let err = verifier
        .verify(&parts(v, &h), suite_now())
        .expect_err("unknown");
    assert_eq!(err, AuthError::UnrecognizedClient);
}

#[test]
fn wrong_scope_names_expected_scope() {
    let v = &VECTORS[0];
    let h = suite_request(v, v.sig);
    let err = verifier("eu-west-1", "service")
        .verify(&parts(v, &h), suite_now())
        .expect_err("region");
    assert_eq!(err.aws_name(), "InvalidSignatureException");
    assert!(
        err.to_string()
            .contains("20150830/eu-west-1/service/aws4_request"),
        "{err}"
    );
    let err = verifier("us-east-1", "kms")
        .verify(&parts(v, &h), suite_now())
        .expect_err("service");
    assert!(err.to_string().contains("'kms'"), "{err}");
}

#[test]
fn rejects_expired_and_future_dates() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let h = suite_request(v, v.sig);
    let later = suite_now() + time::Duration::minutes(10);
    let err = verifier.verify(&parts(v, &h), later).expect_err("expired");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z \
         (20150830T124600Z - 5 min.)"
    );
    let earlier = suite_now() - time::Duration::minutes(10);
    let err = verifier.verify(&parts(v, &h), earlier).expect_err("future");
    assert!(err.to_string().contains("is still later than"), "{err}");
    let slightly = suite_now() + time::Duration::minutes(4);
    assert!(verifier.verify(&parts(v, &h), slightly).is_ok());
}

#[test]
fn signing_key_cache_is_bounded_and_consistent() {
    let verifier = verifier("us-east-1", "service");
    let v = &VECTORS[0];
    let h = suite_request(v, v.sig);
    for _ in 0..3 {
        assert!(verifier.verify(&parts(v, &h), suite_now()).is_ok());
    }
    let cache = verifier.cache.lock().expect("lock");
    assert_eq!(cache.len(), 1);
}

#[test]
fn canonical_uri_normalizes() {
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("//example//"), "/example/");
    assert_eq!(canonical_uri("/a/b/../c/./d"), "/a/c/d");
    assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
    assert_eq!(canonical_query("b=2&a=%41&c"), "a=A&b=2&c=");
}

/// Signs like the AWS SDK does (aws-sigv4 crate, HTTP/2 style with the host
/// only in the authority, no x-amz-content-sha256) and verifies with ours.
#[test]
fn verifies_what_aws_sigv4_signs() {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };

    let now = OffsetDateTime::now_utc();
    let verifier = verifier("us-west-2", "kms");
    let identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let body = br#"{"KeyId":"alias/x","Plaintext":"aGVsbG8="}"#;
    for checksum in [
        PayloadChecksumKind::NoHeader,
        PayloadChecksumKind::XAmzSha256,
    ] {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = checksum;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-west-2")
            .name("kms")
            .time(now.into())
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let base = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.Encrypt"),
            ("content-length", "42"),
            ("x-amz-user-agent", "aws-sdk-rust/1.0  api/kms"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "https://localhost:4599/",
            base.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut h = headers(&base);
        for (k, v) in instructions.headers() {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("n"),
                HeaderValue::from_str(v).expect("v"),
            );
        }
        let p = RequestParts {
            method: "POST",
            path: "/",
            query: None,
            headers: &h,
            authority: Some("localhost:4599"),
            body,
        };
        let principal = verifier
            .verify(&p, now)
            .expect("aws-sigv4 signature verifies");
        assert_eq!(principal.access_key_id, AKID);
        let tampered = RequestParts { body: b"{}", ..p };
        assert!(verifier.verify(&tampered, now).is_err());
    }
}
