//! AWS Signature Version 4 verification (header form, `AWS4-HMAC-SHA256`).
//!
//! Rebuilds the canonical request the client signed (method, normalized
//! URI path, canonical query, the headers named in `SignedHeaders`, the
//! SHA-256 of the body we received), derives the signing key from the
//! principal's secret, and compares signatures in constant time. Checks the
//! credential scope (date, region, service) and a clock skew of at most five
//! minutes. Derived signing keys are cached per access key id and date (the
//! region is the verifier's own) in a small bounded map. Errors and their messages follow what AWS
//! returns; none contains the secret or the signature we expected.
//!
//! HTTP details (where the body comes from, HTTP/1 vs HTTP/2) are left to
//! `server`, which hands over a [`RequestParts`]: under HTTP/2 the signed
//! `host` is the URI authority, as the AWS SDK signs it.

use super::{AuthError, SIGNATURE_MISMATCH};
use crate::principal::Principal;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;
/// Signing keys by access key id, then date: both looked up as `&str`, so a
/// request allocates nothing to find its key.
type KeyCache = HashMap<String, HashMap<String, Zeroizing<[u8; 32]>>>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// Largest clock difference accepted between the client and us.
const MAX_SKEW: time::Duration = time::Duration::minutes(5);
/// Signing keys kept before the cache is emptied and refilled.
const CACHE_CAPACITY: usize = 64;
const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// One principal's SigV4 credentials.
pub struct Credential {
    /// Shared with every request it signs: verifying copies no string.
    pub principal: Arc<Principal>,
    pub secret: SecretString,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// What the verifier needs of an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// The URI authority (HTTP/2 `:authority`), used for `host` when there
    /// is no `Host` header.
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies SigV4 signatures for one region and service.
pub struct Verifier {
    region: String,
    service: String,
    /// By access key id; principals are added and removed at run time.
    credentials: RwLock<HashMap<String, Arc<Credential>>>,
    cache: Mutex<KeyCache>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("region", &self.region)
            .field("service", &self.service)
            .field(
                "principals",
                &self.credentials.read().map(|c| c.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The region requests must be signed for.
    pub fn region(&self) -> &str {
        &self.region
    }
}

/// The parsed `Authorization` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl Verifier {
    /// A verifier for `region` and `service` (`"kms"` in production).
    pub fn new(region: &str, service: &str, credentials: Vec<Credential>) -> Self {
        let credentials = credentials
            .into_iter()
            .map(|c| (c.principal.access_key_id.clone(), Arc::new(c)))
            .collect();
        Self {
            region: region.to_owned(),
            service: service.to_owned(),
            credentials: RwLock::new(credentials),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a principal's credentials. Refuses (returning them) when the
    /// access key id or the principal ARN is already known.
    ///
    /// # Errors
    /// The credential, given back, on a duplicate.
    pub fn add(&self, credential: Credential) -> Result<(), Box<Credential>> {
        let mut map = self.credentials.write().unwrap_or_else(|e| e.into_inner());
        let dup = map.contains_key(&credential.principal.access_key_id)
            || map
                .values()
                .any(|c| c.principal.arn == credential.principal.arn);
        if dup {
            return Err(Box::new(credential));
        }
        map.insert(
            credential.principal.access_key_id.clone(),
            Arc::new(credential),
        );
        Ok(())
    }

    /// Removes the credentials of the principal `arn`; from now on its
    /// signatures are refused. Returns whether it was known.
    pub fn remove(&self, arn: &str) -> bool {
        let mut map = self.credentials.write().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<String> = map
            .values()
            .filter(|c| c.principal.arn == arn)
            .map(|c| c.principal.access_key_id.clone())
            .collect();
        for id in &ids {
            map.remove(id);
        }
        drop(map);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|id, _| !ids.contains(id));
        !ids.is_empty()
    }

    /// Every known principal, sorted by ARN.
    pub fn principals(&self) -> Vec<Principal> {
        let map = self.credentials.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Principal> = map.values().map(|c| (*c.principal).clone()).collect();
        v.sort_by(|a, b| a.arn.cmp(&b.arn));
        v
    }

    /// Verifies `req` at time `now` and returns who signed it.
    ///
    /// # Errors
    /// [`AuthError`], as AWS would report it.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        now: OffsetDateTime,
    ) -> Result<Arc<Principal>, AuthError> {
        let header = req
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or(AuthError::MissingToken)?;
        let header = header.to_str().map_err(|_| {
            AuthError::Incomplete("Authorization header is not valid ASCII.".into())
        })?;
        let auth = parse_authorization(header)?;

        let signed: Vec<&str> = auth.signed_headers.split(';').collect();
        if signed
            .iter()
            .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
        {
            return Err(AuthError::Incomplete(
                "SignedHeaders must be a ';'-separated list of lowercase header names.".into(),
            ));
        }
        if !signed.contains(&"host") {
            return Err(AuthError::Incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        if !signed.contains(&"x-amz-date") {
            return Err(AuthError::Incomplete(
                "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        let amz_date = req
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AuthError::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a \
                     'Date' header."
                        .into(),
                )
            })?;
        let signed_at = parse_amz_date(amz_date)
            .ok_or_else(|| {
                AuthError::Incomplete(format!(
                    "X-Amz-Date must be in ISO-8601 basic format (YYYYMMDD'T'HHMMSS'Z'), got '{}'.",
                    clip(amz_date)
                ))
            })?
            .assume_utc();

        let credential = self
            .credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(auth.access_key_id)
            .cloned()
            .ok_or(AuthError::UnrecognizedClient)?;

        self.check_scope(&auth, amz_date)?;
        check_clock(signed_at, amz_date, now)?;

        let payload_hash = hex_digest(req.body);
        if let Some(claimed) = req.headers.get("x-amz-content-sha256")
            && claimed.as_bytes() != payload_hash
        {
            return Err(AuthError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }

        let creq = canonical_request(req, &signed, auth.signed_headers, &payload_hash);
        let mut string_to_sign = Vec::with_capacity(160);
        for part in [
            ALGORITHM,
            "\n",
            amz_date,
            "\n",
            auth.date,
            "/",
            &self.region,
            "/",
        ] {
            string_to_sign.extend_from_slice(part.as_bytes());
        }
        for part in [&self.service, "/", TERMINATOR, "\n"] {
            string_to_sign.extend_from_slice(part.as_bytes());
        }
        string_to_sign.extend_from_slice(&hex_digest(&creq));
        let key = self
            .signing_key(&credential, auth.date)
            .ok_or_else(|| AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()))?;
        let expected = hmac(key.as_slice(), &string_to_sign)
            .ok_or_else(|| AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()))?;
        let provided = decode_signature(auth.signature)
            .ok_or_else(|| AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()))?;
        if bool::from(expected.ct_eq(&provided)) {
            Ok(Arc::clone(&credential.principal))
        } else {
            Err(AuthError::InvalidSignature(SIGNATURE_MISMATCH.into()))
        }
    }

    fn check_scope(&self, auth: &Authorization<'_>, amz_date: &str) -> Result<(), AuthError> {
        let day = amz_date.get(..8).unwrap_or_default();
        if auth.date != day {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{day}', from '{amz_date}'.",
                clip(auth.date)
            )));
        }
        let expected = || format!("{day}/{}/{}/{TERMINATOR}", self.region, self.service);
        if auth.region != self.region {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to a valid region, not '{}'. Expected scope: '{}'.",
                clip(auth.region),
                expected()
            )));
        }
        if auth.service != self.service {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{}'. Expected scope: '{}'.",
                self.service,
                expected()
            )));
        }
        if auth.terminator != TERMINATOR {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
                clip(auth.terminator)
            )));
        }
        Ok(())
    }

    /// The signing key for `credential` on `date`, from the cache or derived.
    fn signing_key(&self, credential: &Credential, date: &str) -> Option<Zeroizing<[u8; 32]>> {
        let id = credential.principal.access_key_id.as_str();
        if let Ok(cache) = self.cache.lock()
            && let Some(k) = cache.get(id).and_then(|dates| dates.get(date))
        {
            return Some(k.clone());
        }
        let key = derive_signing_key(
            credential.secret.expose_secret(),
            date,
            &self.region,
            &self.service,
        )?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.values().map(HashMap::len).sum::<usize>() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache
                .entry(id.to_owned())
                .or_default()
                .insert(date.to_owned(), key.clone());
        }
        Some(key)
    }
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, AuthError> {
    let Some(params) = header
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
    else {
        return Err(AuthError::Incomplete(format!(
            "Authorization header must use the {ALGORITHM} algorithm."
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "Authorization header parameter '{}' is not of the form key=value.",
                clip(part)
            )));
        };
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthError::Incomplete(missing.trim_end().to_owned()));
    };
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(missing.trim_end().to_owned()));
    }
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::Incomplete(
            "Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request."
                .into(),
        ));
    };
    if access_key_id.is_empty() {
        return Err(AuthError::Incomplete(
            "Credential must start with an access key id.".into(),
        ));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers,
        signature,
    })
}

fn check_clock(
    signed_at: OffsetDateTime,
    amz_date: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let fmt = |t: OffsetDateTime| t.format(AMZ_DATE).unwrap_or_default();
    if signed_at < now - MAX_SKEW {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            fmt(now - MAX_SKEW),
            fmt(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            fmt(now + MAX_SKEW),
            fmt(now)
        )));
    }
    Ok(())
}

/// The canonical request, as bytes (header values need not be UTF-8).
fn canonical_request(
    req: &RequestParts<'_>,
    signed: &[&str],
    signed_headers: &str,
    payload_hash: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query.unwrap_or_default()).as_bytes());
    out.push(b'\n');
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if *name == "host" {
            match req.headers.get(http::header::HOST) {
                Some(v) => push_trimmed(&mut out, v.as_bytes()),
                None => push_trimmed(&mut out, req.authority.unwrap_or_default().as_bytes()),
            }
        } else {
            for (i, v) in req.headers.get_all(*name).iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_trimmed(&mut out, v.as_bytes());
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash);
    out
}

/// Appends `value` trimmed, with runs of spaces and tabs collapsed to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let mut pending_space = false;
    let mut started = false;
    for b in value {
        if is_ws(b) {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(*b);
            started = true;
        }
    }
}

/// The URI path as AWS normalizes it for services other than S3: dot
/// segments removed, empty segments merged, each segment URI-encoded again.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(seg.as_bytes(), &mut out);
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The query string with each name and value decoded and re-encoded, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&percent_decode(k), &mut ek);
            uri_encode(&percent_decode(v), &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn uri_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = char::from(bytes[i + 1]).to_digit(16);
            let lo = char::from(bytes[i + 2]).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(((hi << 4) | lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn decode_signature(sig: &str) -> Option<[u8; 32]> {
    if sig.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(sig, &mut out).ok()?;
    Some(out)
}

/// The lowercase hex SHA-256 of `data`.
fn hex_digest(data: &[u8]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the digest's length.
    let _ = hex::encode_to_slice(Sha256::digest(data), &mut hex);
    hex
}

/// `X-Amz-Date` (`20260102T030405Z`) parsed. Requests of one second carry
/// the same text, so each thread parses the last one it saw only once.
fn parse_amz_date(text: &str) -> Option<time::PrimitiveDateTime> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, time::PrimitiveDateTime)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((seen, at)) = last.as_ref()
            && seen == text
        {
            return Some(*at);
        }
        let at = time::PrimitiveDateTime::parse(text, AMZ_DATE).ok()?;
        *last = Some((text.to_owned(), at));
        Some(at)
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn derive_signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Option<Zeroizing<[u8; 32]>> {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac(&seed, date.as_bytes())?);
    let k_region = Zeroizing::new(hmac(k_date.as_slice(), region.as_bytes())?);
    let k_service = Zeroizing::new(hmac(k_region.as_slice(), service.as_bytes())?);
    Some(Zeroizing::new(hmac(
        k_service.as_slice(),
        TERMINATOR.as_bytes(),
    )?))
}

/// Client input echoed in an error message, cut short.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
