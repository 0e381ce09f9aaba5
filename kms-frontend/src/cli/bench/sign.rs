//! SigV4 for `kmsctl bench`'s one request shape (`POST /`, JSON 1.1, the
//! headers `content-type`, `host`, `x-amz-date`, `x-amz-target` and the
//! session token if any), at a load generator's cost: the signing key is
//! derived once per day and each call's payload hash once per run, so a
//! request costs one canonical request, two SHA-256 and one HMAC. The other
//! kmsctl commands sign with the `aws-sigv4` crate; a test checks that both
//! produce the same `Authorization` for the same request and time, so this
//! signer does not share a bug with the server's verifier either.

use super::super::profile::Settings;
use hmac::Mac as _;
use secrecy::ExposeSecret;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;
use zeroize::Zeroizing;

type HmacSha256 = hmac::Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "kms";
pub(crate) const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// What signs one run's requests (one per connection: the day's key, the
/// second's `x-amz-date` and the text buffers are kept inside).
pub(crate) struct Signer {
    access_key_id: String,
    secret: Zeroizing<String>,
    session_token: Option<String>,
    region: String,
    /// `YYYYMMDD`, its signing key and its credential scope.
    day_key: Option<(String, Zeroizing<[u8; 32]>, String)>,
    /// The unix second last signed at and its `x-amz-date`.
    second: Option<(i64, String)>,
    /// The canonical request and the string to sign, reused.
    canonical: String,
    string_to_sign: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The headers a signed request carries besides `content-type`, `host`
/// and `x-amz-target`.
pub(crate) struct Signed {
    pub amz_date: String,
    pub authorization: String,
    pub session_token: Option<String>,
}

/// Hex SHA-256 of a body: computed once per call kind.
pub(crate) fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Appends the lowercase hex of `bytes` to `out`, without an allocation.
fn push_hex(out: &mut String, bytes: &[u8; 32]) {
    let mut hex = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input's length, and hex
    // digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut hex);
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

impl Signer {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            access_key_id: settings.access_key_id.clone(),
            secret: Zeroizing::new(settings.secret_access_key.expose_secret().to_owned()),
            session_token: settings
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            region: settings.region.clone(),
            day_key: None,
            second: None,
            canonical: String::with_capacity(384),
            string_to_sign: String::with_capacity(192),
        }
    }

    /// The signing key of `day`, derived once per day (with the day's
    /// credential scope, [`Self::scope`]).
    fn key_for(&mut self, day: &str) -> [u8; 32] {
        if self.day_key.as_ref().is_none_or(|(d, _, _)| d != day) {
            let mut seed = Zeroizing::new(format!("AWS4{}", self.secret.as_str()));
            let k_date = Zeroizing::new(hmac(seed.as_bytes(), day.as_bytes()));
            seed.clear();
            let k_region = Zeroizing::new(hmac(&*k_date, self.region.as_bytes()));
            let k_service = Zeroizing::new(hmac(&*k_region, SERVICE.as_bytes()));
            let key = Zeroizing::new(hmac(&*k_service, b"aws4_request"));
            let scope = format!("{day}/{}/{SERVICE}/aws4_request", self.region);
            self.day_key = Some((day.to_owned(), key, scope));
        }
        self.day_key.as_ref().map_or([0; 32], |(_, key, _)| **key)
    }

    /// The credential scope of the day last signed for.
    fn scope(&self) -> &str {
        self.day_key.as_ref().map_or("", |(_, _, scope)| scope)
    }

    /// `x-amz-date` of `now` (UTC), formatted once per second.
    fn amz_date(&mut self, now: OffsetDateTime) -> String {
        let second = now.unix_timestamp();
        if self.second.as_ref().is_none_or(|(s, _)| *s != second) {
            let text = now
                .to_offset(time::UtcOffset::UTC)
                .format(format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .unwrap_or_default();
            self.second = Some((second, text));
        }
        self.second
            .as_ref()
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    }

    /// Signs `POST /` to `host` with `target` and a body whose hex SHA-256
    /// is `body_hash`, at `now`.
    pub(crate) fn sign(
        &mut self,
        now: OffsetDateTime,
        host: &str,
        target: &str,
        body_hash: &str,
    ) -> Signed {
        let amz_date = self.amz_date(now);
        let day = amz_date.get(..8).unwrap_or_default();
        let token = self.session_token.as_deref();
        let signed_headers = if token.is_some() {
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        } else {
            "content-type;host;x-amz-date;x-amz-target"
        };
        let canonical = &mut self.canonical;
        canonical.clear();
        for part in [
            "POST\n/\n\ncontent-type:",
            AMZ_JSON,
            "\nhost:",
            host,
            "\nx-amz-date:",
            &amz_date,
            "\n",
        ] {
            canonical.push_str(part);
        }
        if let Some(t) = token {
            for part in ["x-amz-security-token:", t, "\n"] {
                canonical.push_str(part);
            }
        }
        for part in [
            "x-amz-target:",
            target,
            "\n\n",
            signed_headers,
            "\n",
            body_hash,
        ] {
            canonical.push_str(part);
        }
        let canonical_hash: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();

        let mut string_to_sign = std::mem::take(&mut self.string_to_sign);
        let key = self.key_for(day);
        let scope = self.scope();
        string_to_sign.clear();
        for part in [ALGORITHM, "\n", &amz_date, "\n", scope, "\n"] {
            string_to_sign.push_str(part);
        }
        push_hex(&mut string_to_sign, &canonical_hash);
        let signature = hmac(&key, string_to_sign.as_bytes());

        let mut authorization = String::with_capacity(
            ALGORITHM.len() + self.access_key_id.len() + scope.len() + signed_headers.len() + 112,
        );
        for part in [
            ALGORITHM,
            " Credential=",
            &self.access_key_id,
            "/",
            scope,
            ", SignedHeaders=",
            signed_headers,
            ", Signature=",
        ] {
            authorization.push_str(part);
        }
        push_hex(&mut authorization, &signature);
        self.string_to_sign = string_to_sign;
        Signed {
            amz_date,
            authorization,
            session_token: self.session_token.clone(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cli::client::KmsClient;
    use http::Request;
    use secrecy::SecretString;

    /// Example credentials (the AWS SigV4 test suite's), with `token` if any.
    pub(in crate::cli::bench) fn settings(token: Option<&str>) -> Settings {
        Settings {
            endpoint: "https://127.0.0.1:4443".to_owned(),
            region: "eu-west-3".to_owned(),
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(SecretString::from),
            ca_bundle: None,
        }
    }

    /// The same request signed by `aws-sigv4` (what the SDKs use) and by
    /// this signer at the same instant carries the same headers.
    #[test]
    fn matches_aws_sigv4() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        for token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN")] {
            let settings = settings(token);
            let client = KmsClient::new(&settings).expect("client");
            let body = br#"{"KeyId":"alias/bench","Plaintext":"AAAA"}"#;
            let target = "TrentService.Encrypt";
            let when = OffsetDateTime::from_unix_timestamp(1_790_000_123).expect("time");
            let mut signer = Signer::new(&settings);
            // The second signature comes from the cached day key, the third
            // from the next day's.
            for at in [when, when, when + time::Duration::days(1)] {
                let mut request = Request::post("/")
                    .header("host", "127.0.0.1:4443")
                    .header("content-type", AMZ_JSON)
                    .header("x-amz-target", target)
                    .body(())
                    .expect("request");
                client
                    .sign_at(
                        &mut request,
                        "https://127.0.0.1:4443/",
                        &[("content-type", AMZ_JSON), ("x-amz-target", target)],
                        body,
                        at.into(),
                    )
                    .expect("aws-sigv4 signs");
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let ours = signer.sign(at, "127.0.0.1:4443", target, &payload_hash(body));
                assert_eq!(Some(ours.authorization), header("authorization"));
                assert_eq!(Some(ours.amz_date), header("x-amz-date"));
                assert_eq!(ours.session_token, header("x-amz-security-token"));
            }
        }
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let signer = Signer::new(&settings(Some("TOKEN")));
        let shown = format!("{signer:?}");
        assert!(!shown.contains("wJalr") && !shown.contains("TOKEN"));
    }
}
