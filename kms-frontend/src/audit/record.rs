//! One API call as a CloudTrail-shaped KMS event: what is recorded and,
//! above all, what is not.
//!
//! The record is built generically from the call's operation name, its JSON
//! request body and its JSON reply, so a new operation is audited without
//! new code. Request and response fields are copied only from an allow list
//! (`REQUEST_FIELDS`, `RESPONSE_FIELDS`), renamed to CloudTrail's
//! camelCase: plaintexts, ciphertext blobs, data keys, messages, signatures,
//! MACs, import material and grant tokens are never on it, so they never
//! reach the log whatever the operation. The bodies are read as objects of
//! raw JSON values (nothing is built for a field that is not kept; a kept
//! one is parsed, so it is written compactly) and the record is serialized
//! straight from borrowed, typed fields: building a
//! record through `serde_json::Value` cost a fifth of the frontend's CPU
//! (BENCHMARKS.md). The chain fields (`sequence`, `previousHash`) are added
//! by `writer`; the file format is `chain`'s.

use super::AuditError;
use crate::principal::Principal;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::{Borrow, Cow};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;
use time::OffsetDateTime;
use time::macros::format_description;

/// Request fields that may be recorded, as AWS names them. Everything else
/// in a request body is left out.
pub(crate) const REQUEST_FIELDS: &[(&str, &str)] = &[
    ("KeyId", "keyId"),
    ("EncryptionContext", "encryptionContext"),
    ("EncryptionAlgorithm", "encryptionAlgorithm"),
    ("KeySpec", "keySpec"),
    ("NumberOfBytes", "numberOfBytes"),
    ("KeyUsage", "keyUsage"),
    ("CustomerMasterKeySpec", "customerMasterKeySpec"),
    ("Origin", "origin"),
    ("MultiRegion", "multiRegion"),
    ("Description", "description"),
    ("PendingWindowInDays", "pendingWindowInDays"),
    ("AliasName", "aliasName"),
    ("TargetKeyId", "targetKeyId"),
    ("SourceKeyId", "sourceKeyId"),
    ("DestinationKeyId", "destinationKeyId"),
    ("SourceEncryptionContext", "sourceEncryptionContext"),
    (
        "DestinationEncryptionContext",
        "destinationEncryptionContext",
    ),
    ("SourceEncryptionAlgorithm", "sourceEncryptionAlgorithm"),
    (
        "DestinationEncryptionAlgorithm",
        "destinationEncryptionAlgorithm",
    ),
    ("SigningAlgorithm", "signingAlgorithm"),
    ("MessageType", "messageType"),
    ("MacAlgorithm", "macAlgorithm"),
    ("Limit", "limit"),
    ("DryRun", "dryRun"),
    ("RotationPeriodInDays", "rotationPeriodInDays"),
    ("GranteePrincipal", "granteePrincipal"),
    ("RetiringPrincipal", "retiringPrincipal"),
    ("Operations", "operations"),
    ("GrantId", "grantId"),
    ("GrantName", "grantName"),
    ("PolicyName", "policyName"),
    ("TagKeys", "tagKeys"),
    ("WrappingAlgorithm", "wrappingAlgorithm"),
    ("WrappingKeySpec", "wrappingKeySpec"),
    ("ExpirationModel", "expirationModel"),
    ("ValidTo", "validTo"),
    (
        "BypassPolicyLockoutSafetyCheck",
        "bypassPolicyLockoutSafetyCheck",
    ),
];

/// Response fields that may be recorded (CloudTrail's `responseElements`).
pub(crate) const RESPONSE_FIELDS: &[(&str, &str)] = &[
    ("KeyId", "keyId"),
    ("SourceKeyId", "sourceKeyId"),
    ("KeyState", "keyState"),
    ("DeletionDate", "deletionDate"),
    ("PendingWindowInDays", "pendingWindowInDays"),
    ("GrantId", "grantId"),
];

/// The fields of `KeyMetadata` that a CreateKey/DescribeKey record keeps.
const METADATA_FIELDS: &[(&str, &str)] = &[
    ("KeyId", "keyId"),
    ("Arn", "arn"),
    ("AWSAccountId", "awsAccountId"),
    ("KeyState", "keyState"),
    ("KeySpec", "keySpec"),
    ("KeyUsage", "keyUsage"),
    ("Origin", "origin"),
    ("CreationDate", "creationDate"),
    ("Enabled", "enabled"),
    ("Description", "description"),
    ("DeletionDate", "deletionDate"),
];

/// Everything the audit record of one call is built from.
#[derive(Debug)]
pub struct ApiCall<'a> {
    pub request_id: &'a str,
    pub time: OffsetDateTime,
    /// The `X-Amz-Target` operation, e.g. `Encrypt`.
    pub operation: &'a str,
    pub principal: &'a Principal,
    pub region: &'a str,
    pub source_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
    /// The raw JSON request body (only allow-listed fields are read).
    pub request_body: &'a [u8],
    /// The raw JSON reply body (only allow-listed fields are read).
    pub response_body: &'a [u8],
    /// The AWS error name on failure.
    pub error_code: Option<&'a str>,
}

/// A field name as it appears in a JSON body; borrowed unless escaped.
#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl Borrow<str> for Name<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A JSON object's top-level fields, each value kept as its raw JSON text:
/// reading a body for its record allocates no value it does not keep.
type RawObject<'a> = BTreeMap<Name<'a>, &'a RawValue>;

/// The object in `body`, or no fields when it is not one.
fn object(body: &[u8]) -> RawObject<'_> {
    serde_json::from_slice(body).unwrap_or_default()
}

/// A string field's value (unescaped).
fn string_field(object: &RawObject<'_>, field: &str) -> Option<String> {
    object
        .get(field)
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
}

/// A recorded value: a kept field's value (parsed, so it is written
/// compactly: a body's own line breaks never reach the one-line record), or
/// picked fields of a nested object.
#[derive(Serialize)]
#[serde(untagged)]
enum Element {
    Value(serde_json::Value),
    Object(Picked),
}

/// Allow-listed fields under their CloudTrail names, serialized as an object.
#[derive(Default)]
pub(crate) struct Picked(Vec<(&'static str, Element)>);

impl Serialize for Picked {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The allow-listed fields of `object`, in the allow list's order. A body
/// has a few fields and the lists dozens, so the body's fields are looked
/// up in the list, not the other way round.
fn pick(object: &RawObject<'_>, fields: &[(&str, &'static str)]) -> Picked {
    let mut kept: Vec<(usize, &'static str, Element)> = object
        .iter()
        .filter_map(|(name, raw)| {
            let at = fields.iter().position(|(aws, _)| *aws == name.0)?;
            let value = serde_json::from_str(raw.get()).ok()?;
            Some((at, fields[at].1, Element::Value(value)))
        })
        .collect();
    kept.sort_unstable_by_key(|(at, _, _)| *at);
    Picked(kept.into_iter().map(|(_, name, v)| (name, v)).collect())
}

/// Whether CloudTrail marks the operation read-only: it changes no key
/// (crypto operations, Describe/List/Get).
pub(crate) fn read_only(operation: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Describe",
        "List",
        "Get",
        "Generate",
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "Sign",
        "Verify",
    ];
    PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// CloudTrail's `userIdentity`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserIdentity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    principal_id: &'a str,
    arn: &'a str,
    account_id: &'a str,
    access_key_id: &'a str,
    user_name: &'a str,
}

/// A principal's `userIdentity`, already serialized: it is the same in every
/// record of that principal, so each thread serializes it once for each of
/// the last [`IDENTITIES_KEPT`] principals it saw.
#[derive(Clone)]
pub(crate) struct IdentityJson(Rc<RawValue>);

impl Serialize for IdentityJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Serialized identities kept per thread.
const IDENTITIES_KEPT: usize = 16;

pub(crate) fn identity_json(p: &Principal) -> IdentityJson {
    type Kept = Vec<((String, String, String), IdentityJson)>;
    thread_local! {
        static KEPT: RefCell<Kept> = const { RefCell::new(Vec::new()) };
    }
    KEPT.with_borrow_mut(|kept| {
        let same = |(arn, account, akid): &(String, String, String)| {
            *arn == p.arn && *account == p.account_id && *akid == p.access_key_id
        };
        if let Some((_, json)) = kept.iter().find(|(who, _)| same(who)) {
            return json.clone();
        }
        let text = serde_json::to_string(&user_identity(p)).unwrap_or_else(|_| "null".into());
        let json = IdentityJson(Rc::from(
            RawValue::from_string(text).unwrap_or_else(|_| RawValue::NULL.to_owned()),
        ));
        if kept.len() == IDENTITIES_KEPT {
            kept.remove(0);
        }
        let who = (p.arn.clone(), p.account_id.clone(), p.access_key_id.clone());
        kept.push((who, json.clone()));
        json
    })
}

pub(crate) fn user_identity(p: &Principal) -> UserIdentity<'_> {
    let (kind, name) = match p.arn.rsplit_once(":role/") {
        Some((_, name)) => ("AssumedRole", name),
        None => (
            "IAMUser",
            p.arn.rsplit_once(":user/").map_or("", |(_, n)| n),
        ),
    };
    UserIdentity {
        kind,
        principal_id: name,
        arn: &p.arn,
        account_id: &p.account_id,
        access_key_id: &p.access_key_id,
        user_name: name,
    }
}

/// A key ARN for a key id or key ARN; `None` for aliases and junk.
fn key_arn(id: &str, region: &str, account: &str) -> Option<String> {
    if id.starts_with("arn:aws:kms:") && id.contains(":key/") {
        return Some(id.to_owned());
    }
    let is_uuid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    is_uuid.then(|| format!("arn:aws:kms:{region}:{account}:key/{id}"))
}

/// One entry of a record's `resources`.
#[derive(Serialize)]
pub(crate) struct Resource<'a> {
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ARN")]
    arn: Cow<'a, str>,
}

/// The `resources` entry of a key ARN; `None` for anything else.
pub(crate) fn key_arn_resource<'a>(
    arn: impl Into<Cow<'a, str>>,
    account: &'a str,
) -> Option<Resource<'a>> {
    let arn = arn.into();
    (arn.starts_with("arn:aws:kms:") && arn.contains(":key/")).then_some(Resource {
        account_id: account,
        kind: "AWS::KMS::Key",
        arn,
    })
}

fn resources<'a>(
    request: &RawObject<'_>,
    response: &RawObject<'_>,
    metadata: Option<&RawObject<'_>>,
    region: &str,
    account: &'a str,
) -> Vec<Resource<'a>> {
    let mut arns: Vec<String> = Vec::new();
    let mut add = |id: Option<String>| {
        if let Some(arn) = id.and_then(|id| key_arn(&id, region, account))
            && !arns.contains(&arn)
        {
            arns.push(arn);
        }
    };
    add(string_field(response, "SourceKeyId"));
    add(string_field(response, "KeyId"));
    add(metadata.and_then(|m| string_field(m, "Arn")));
    for f in ["KeyId", "SourceKeyId", "TargetKeyId", "DestinationKeyId"] {
        add(string_field(request, f));
    }
    arns.into_iter()
        .filter_map(|arn| key_arn_resource(arn, account))
        .collect()
}

/// `s` cut to at most `n` characters.
pub(crate) fn clip(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A fresh `eventID` (a v4 UUID from the thread-local CSPRNG: no
/// getrandom(2) per record).
pub(crate) fn event_id() -> uuid::fmt::Hyphenated {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
}

/// The fields every record of a call starts with.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Head<'a> {
    event_version: &'static str,
    user_identity: IdentityJson,
    event_time: String,
    event_source: &'static str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<IpAddr>,
}

/// The head of a record of `call` made at `time`.
pub(crate) fn head<'a>(call: &ApiCall<'a>, time: OffsetDateTime) -> Head<'a> {
    Head {
        event_version: "1.08",
        user_identity: identity_json(call.principal),
        event_time: event_time(time),
        event_source: "kms.amazonaws.com",
        event_name: call.operation,
        aws_region: call.region,
        source_ip_address: call.source_ip,
    }
}

/// The fields every record of a call ends with (before any error).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tail<'a> {
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
}

/// The tail of a record of `event_type` for `call`.
pub(crate) fn tail<'a>(call: &ApiCall<'a>, event_type: &'static str) -> Tail<'a> {
    Tail {
        event_type,
        management_event: true,
        recipient_account_id: &call.principal.account_id,
        event_category: "Management",
    }
}

/// The record of one call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    user_agent: Option<&'a str>,
    request_parameters: Option<Picked>,
    response_elements: Option<Picked>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: uuid::fmt::Hyphenated,
    read_only: bool,
    resources: Vec<Resource<'a>>,
    #[serde(flatten)]
    tail: Tail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    /// Present (possibly null) exactly when `error_code` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<Option<String>>,
}

/// Serializes a record into a fresh buffer.
pub(crate) fn to_bytes<T: Serialize>(event: &T) -> Result<Vec<u8>, AuditError> {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, event)
        .map_err(|e| AuditError::Corrupt(format!("cannot serialize an audit record: {e}")))?;
    Ok(out)
}

/// The record of one call, as a serialized JSON object (without the chain
/// fields).
///
/// # Errors
/// The record cannot be serialized (not expected: every field is a string,
/// number or JSON already parsed).
pub(crate) fn event(call: &ApiCall<'_>) -> Result<Vec<u8>, AuditError> {
    let request = object(call.request_body);
    let response = object(call.response_body);
    // Read once: its `Arn` is a resource, its fields response elements.
    let metadata = response
        .get("KeyMetadata")
        .map(|raw| object(raw.get().as_bytes()));
    let account = call.principal.account_id.as_str();
    let request_parameters = pick(&request, REQUEST_FIELDS);
    let mut response_elements = Picked::default();
    if call.error_code.is_none() {
        response_elements = pick(&response, RESPONSE_FIELDS);
        if let Some(meta) = metadata.as_ref().filter(|m| !m.is_empty()) {
            response_elements
                .0
                .push(("keyMetadata", Element::Object(pick(meta, METADATA_FIELDS))));
        }
    }
    let error_message = call
        .error_code
        .map(|_| string_field(&response, "message").map(|m| clip(&m, 1024).to_owned()));
    let event = Event {
        head: head(call, call.time),
        user_agent: call.user_agent.map(|ua| clip(ua, 256)),
        request_parameters: (!request_parameters.0.is_empty()).then_some(request_parameters),
        response_elements: (!response_elements.0.is_empty()).then_some(response_elements),
        request_id: call.request_id,
        event_id: event_id(),
        read_only: read_only(call.operation),
        resources: resources(&request, &response, metadata.as_ref(), call.region, account),
        tail: tail(call, "AwsApiCall"),
        error_code: call.error_code,
        error_message,
    };
    to_bytes(&event)
}

/// CloudTrail's time format: `2026-01-02T03:04:05Z`. Every record of a
/// second has the same text, so each thread formats a second once.
pub(crate) fn event_time(t: OffsetDateTime) -> String {
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let second = t.unix_timestamp();
    LAST.with_borrow_mut(|(at, text)| {
        if *at != second {
            let t = t.to_offset(time::UtcOffset::UTC);
            *text = t
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                ))
                .unwrap_or_default();
            *at = second;
        }
        text.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(call: &ApiCall<'_>) -> Value {
        serde_json::from_slice(&event(call).expect("serializes")).expect("one JSON object")
    }

    fn principal() -> Principal {
        Principal {
            arn: "arn:aws:iam::111122223333:user/alice".into(),
            account_id: "111122223333".into(),
            access_key_id: "AKIAALICE".into(),
            admin: false,
        }
    }

    fn call<'a>(p: &'a Principal, op: &'a str, req: &'a [u8], resp: &'a [u8]) -> ApiCall<'a> {
        ApiCall {
            request_id: "rid",
            time: OffsetDateTime::UNIX_EPOCH,
            operation: op,
            principal: p,
            region: "us-east-1",
            source_ip: None,
            user_agent: Some("ua"),
            request_body: req,
            response_body: resp,
            error_code: None,
        }
    }

    #[test]
    fn keeps_allowed_fields_and_drops_secrets() {
        let p = principal();
        let req = br#"{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","Plaintext":"c2VjcmV0","EncryptionContext":{"a":"b"},"GrantTokens":["t"]}"#;
        let resp = br#"{"CiphertextBlob":"YmxvYg==","KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","Plaintext":"ZGs="}"#;
        let e = parsed(&call(&p, "Encrypt", req, resp));
        let text = e.to_string();
        assert!(!text.contains("c2VjcmV0") && !text.contains("YmxvYg==") && !text.contains("ZGs="));
        assert!(!text.contains("GrantTokens") && !text.contains("grantTokens"));
        assert_eq!(e["requestParameters"]["encryptionContext"]["a"], "b");
        assert_eq!(e["eventName"], "Encrypt");
        assert_eq!(e["eventTime"], "1970-01-01T00:00:00Z");
        assert_eq!(e["readOnly"], true);
        assert_eq!(e["userIdentity"]["accessKeyId"], "AKIAALICE");
        assert_eq!(e["resources"].as_array().map(Vec::len), Some(1));
        assert_eq!(e["resources"][0]["type"], "AWS::KMS::Key");
        assert!(e.get("errorCode").is_none());
    }

    #[test]
    fn failure_carries_error_code_and_message() {
        let p = principal();
        let mut c = call(
            &p,
            "DisableKey",
            b"{\"KeyId\":\"alias/x\"}",
            br#"{"__type":"NotFoundException","message":"Alias 'alias/x' does not exist"}"#,
        );
        c.error_code = Some("NotFoundException");
        let e = parsed(&c);
        assert_eq!(e["errorCode"], "NotFoundException");
        assert_eq!(e["errorMessage"], "Alias 'alias/x' does not exist");
        assert_eq!(e["readOnly"], false);
        assert_eq!(e["resources"].as_array().map(Vec::len), Some(0));
        assert_eq!(e["responseElements"], Value::Null);
    }

    #[test]
    fn reads_escaped_names_and_picks_key_metadata() {
        let p = principal();
        let req = br#"{"Key\u0049d":"1234abcd-12ab-34cd-56ef-1234567890ab", "Description" : "caf\u00e9"}"#;
        let resp = br#"{"KeyMetadata":{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","Arn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","KeyState":"Enabled","Policy":"not recorded","Enabled":true}}"#;
        let e = parsed(&call(&p, "DescribeKey", req, resp));
        assert_eq!(
            e["requestParameters"]["keyId"],
            "1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert_eq!(e["requestParameters"]["description"], "caf\u{e9}");
        let meta = &e["responseElements"]["keyMetadata"];
        assert_eq!(meta["keyState"], "Enabled");
        assert_eq!(meta["enabled"], true);
        assert!(meta.get("policy").is_none() && meta.get("Policy").is_none());
        // The request's key id and the metadata's ARN name the same key.
        assert_eq!(e["resources"].as_array().map(Vec::len), Some(1));
        assert_eq!(e["sourceIPAddress"], Value::Null);
        assert!(e.get("errorMessage").is_none());
    }

    #[test]
    fn a_pretty_printed_request_still_makes_one_line() {
        let p = principal();
        let req = b"{\n  \"KeyId\" : \"alias/x\",\n  \"EncryptionContext\": {\n    \"a\": \"line\\nbreak\"\n  }\n}";
        let bytes = event(&call(&p, "Encrypt", req, b"{}")).expect("serializes");
        assert!(
            !bytes.contains(&b'\n'),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let e: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            e["requestParameters"]["encryptionContext"]["a"],
            "line\nbreak"
        );
    }

    #[test]
    fn bodies_that_are_not_objects_record_no_fields() {
        let p = principal();
        for body in [&b""[..], b"[1,2]", b"{\"KeyId\":", b"\"x\""] {
            let e = parsed(&call(&p, "Encrypt", body, body));
            assert_eq!(e["requestParameters"], Value::Null);
            assert_eq!(e["responseElements"], Value::Null);
            assert_eq!(e["resources"], serde_json::json!([]));
        }
    }

    #[test]
    fn user_agent_and_error_message_are_clipped_by_characters() {
        let p = principal();
        let ua = "é".repeat(300);
        let message = format!("{{\"__type\":\"X\",\"message\":\"{}\"}}", "ü".repeat(2000));
        let mut c = call(&p, "Encrypt", b"{}", message.as_bytes());
        c.user_agent = Some(&ua);
        c.error_code = Some("X");
        let e = parsed(&c);
        assert_eq!(
            e["userAgent"].as_str().map(|s| s.chars().count()),
            Some(256)
        );
        assert_eq!(
            e["errorMessage"].as_str().map(|s| s.chars().count()),
            Some(1024)
        );
    }

    #[test]
    fn read_only_follows_cloudtrail() {
        for op in [
            "Encrypt",
            "Decrypt",
            "GenerateDataKey",
            "DescribeKey",
            "ListAliases",
            "GetKeyPolicy",
        ] {
            assert!(read_only(op), "{op}");
        }
        for op in [
            "CreateKey",
            "EnableKey",
            "ScheduleKeyDeletion",
            "CreateAlias",
            "PutKeyPolicy",
        ] {
            assert!(!read_only(op), "{op}");
        }
    }
}
