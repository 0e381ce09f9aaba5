//! SigV4 verification on arbitrary requests: the `Authorization` header
//! parser, the credential scope and date checks and the canonical request
//! builder (`kms_frontend::auth::Verifier::verify`, what every request
//! meets first). The input is an HTTP/1.1 request as text (request line,
//! headers, blank line, body), as the seed corpus holds real ones signed by
//! the AWS SDK for Rust. The clock is set to the request's own `x-amz-date`
//! so mutations get past the skew check to the signature comparison.
//! Properties: never panics; a request verifies only as the one configured
//! principal; no error message repeats the secret.
#![no_main]

use kms_frontend::auth::{Credential, RequestParts, Verifier};
use kms_frontend::principal::Principal;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use time::macros::format_description;

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        Verifier::new(
            "us-east-1",
            "kms",
            vec![Credential {
                principal: std::sync::Arc::new(Principal {
                    arn: "arn:aws:iam::111122223333:user/fuzz".into(),
                    account_id: "111122223333".into(),
                    access_key_id: ACCESS_KEY_ID.into(),
                    admin: false,
                }),
                secret: SECRET.to_owned().into(),
            }],
        )
    })
}

/// Splits `data` at the first `\r\n\r\n` or `\n\n`: (head, body).
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in data.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&data[..i], &data[i + 2..]);
        }
        if w == b"\r\n" && data.get(i + 2..i + 4) == Some(b"\r\n") {
            return (&data[..i], &data[i + 4..]);
        }
    }
    (data, &[])
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_head(data);
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut lines = head.lines();
    let Some(request_line) = lines.next() else {
        return;
    };
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim_start()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let now = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| {
            time::PrimitiveDateTime::parse(
                d,
                format_description!("[year][month][day]T[hour][minute][second]Z"),
            )
            .ok()
        })
        .map_or(time::OffsetDateTime::UNIX_EPOCH, |t| t.assume_utc());
    let req = RequestParts {
        method,
        path,
        query,
        headers: &headers,
        authority: None,
        body,
    };
    match verifier().verify(&req, now) {
        Ok(p) => assert_eq!(p.access_key_id, ACCESS_KEY_ID),
        Err(e) => {
            let msg = e.to_string();
            // The error may echo what the request itself said (e.g. a
            // "secret" sent as the access key id), never the stored secret.
            let sent = data.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(
                sent || !msg.contains(SECRET),
                "error message repeats the secret"
            );
            assert!(!e.aws_name().is_empty());
        }
    }
});
