//! What one `kmsctl bench` connection sends: each request is signed afresh
//! by [`Signer`] at its own time, as an SDK does (the day's signing key and
//! each call's body hash are computed once per run), and its head (`host`,
//! `content-type`, `x-amz-target`, `x-amz-date`, `Authorization` and the
//! session token if any, in that order) is built straight into a
//! `HeaderMap`: no request builder and no header parsing per request.
//! Sending and timing are `conn`'s.

use super::Call;
use super::sign::{AMZ_JSON, Signer, payload_hash};
use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use http_body_util::Full;
use std::time::{SystemTime, UNIX_EPOCH};

const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// One connection's signer and calls.
#[derive(Debug)]
pub(crate) struct Requests {
    signer: Signer,
    host: HeaderValue,
    /// `host` as text, as the signer takes it.
    host_text: String,
    calls: Vec<Prepared>,
}

/// One call: its target, body and body hash, fixed for the run.
#[derive(Debug)]
struct Prepared {
    target: &'static str,
    body: Bytes,
    /// Hex SHA-256 of `body`.
    body_hash: String,
}

impl Requests {
    /// Requests to `host` (the `Host` header) for `calls`, signed by `signer`.
    pub(crate) fn new(signer: Signer, host: &str, calls: &[Call]) -> anyhow::Result<Self> {
        let calls = calls
            .iter()
            .map(|c| Prepared {
                target: c.target,
                body: c.body.clone(),
                body_hash: payload_hash(&c.body),
            })
            .collect();
        Ok(Self {
            signer,
            host: HeaderValue::from_str(host)
                .with_context(|| format!("{host:?} is not a valid Host header"))?,
            host_text: host.to_owned(),
            calls,
        })
    }

    /// How many calls there are (at least one).
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Call `i` as a signed `POST /`, at the current time.
    pub(crate) fn request(&mut self, i: usize) -> anyhow::Result<Request<Full<Bytes>>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs();
        self.request_at(i, now)
    }

    fn request_at(&mut self, i: usize, unix_secs: u64) -> anyhow::Result<Request<Full<Bytes>>> {
        let call = &self.calls[i];
        let at = i64::try_from(unix_secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .context("the clock is out of range")?;
        let signed = self
            .signer
            .sign(at, &self.host_text, call.target, &call.body_hash);
        let mut head = HeaderMap::with_capacity(6);
        head.insert(header::HOST, self.host.clone());
        head.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        head.insert(X_AMZ_TARGET, HeaderValue::from_static(call.target));
        head.insert(X_AMZ_DATE, HeaderValue::try_from(signed.amz_date)?);
        head.insert(
            header::AUTHORIZATION,
            HeaderValue::try_from(signed.authorization)?,
        );
        if let Some(token) = signed.session_token {
            head.insert(
                X_AMZ_SECURITY_TOKEN,
                HeaderValue::try_from(token).context("the session token is not a header")?,
            );
        }
        let mut request = Request::new(Full::new(call.body.clone()));
        *request.method_mut() = Method::POST;
        *request.headers_mut() = head;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(token: Option<&str>) -> Requests {
        let settings = super::super::sign::tests::settings(token);
        let calls = [
            Call {
                target: "TrentService.Encrypt",
                body: Bytes::from_static(br#"{"KeyId":"k","Plaintext":"AAAA"}"#),
            },
            Call {
                target: "TrentService.GenerateDataKey",
                body: Bytes::from_static(br#"{"KeyId":"k","KeySpec":"AES_256"}"#),
            },
        ];
        Requests::new(Signer::new(&settings), "127.0.0.1:4443", &calls).expect("requests")
    }

    /// What the signer gives for call `i` at `secs`, as (header, value).
    fn fresh(token: Option<&str>, i: usize, secs: u64) -> Vec<(String, String)> {
        head(&requests(token).request_at(i, secs).expect("request"))
    }

    fn head(r: &Request<Full<Bytes>>) -> Vec<(String, String)> {
        r.headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_owned()))
            .collect()
    }

    /// Within a second a request carries exactly what a fresh signature
    /// gives; the next second (and the next call) is signed anew.
    #[test]
    fn each_request_carries_the_signature_of_its_second() {
        const T: u64 = 1_790_000_123;
        for token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN")] {
            let mut r = requests(token);
            for (i, secs) in [
                (0, T),
                (0, T),
                (1, T),
                (0, T),
                (0, T + 1),
                (1, T + 1),
                (0, T),
            ] {
                let request = r.request_at(i, secs).expect("request");
                assert_eq!(request.method(), Method::POST);
                assert_eq!(request.uri(), "/");
                assert_eq!(head(&request), fresh(token, i, secs), "call {i} at {secs}");
            }
            let names: Vec<String> = fresh(token, 0, T).into_iter().map(|(k, _)| k).collect();
            let mut expected = vec![
                "host",
                "content-type",
                "x-amz-target",
                "x-amz-date",
                "authorization",
            ];
            if token.is_some() {
                expected.push("x-amz-security-token");
            }
            assert_eq!(names, expected);
        }
        assert_ne!(fresh(None, 0, T), fresh(None, 0, T + 1));
        assert_ne!(fresh(None, 0, T), fresh(None, 1, T));
    }
}
