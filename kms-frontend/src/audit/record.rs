//! One API call as a CloudTrail-shaped KMS event: what is recorded and,
//! above all, what is not.
//!
//! The record is built generically from the call's operation name, its JSON
//! request body and its JSON reply, so a new operation is audited without
//! new code. Request and response fields are copied only from an allow list
//! (`REQUEST_FIELDS`, `RESPONSE_FIELDS`), renamed to CloudTrail's
//! camelCase: plaintexts, ciphertext blobs, data keys, messages, signatures,
//! MACs, import material and grant tokens are never on it, so they never
//! reach the log whatever the operation. The chain fields (`sequence`,
//! `previousHash`) are added by `writer`; the file format is `chain`'s.

use crate::principal::Principal;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// Request fields that may be recorded, as AWS names them. Everything else
/// in a request body is left out.
pub(crate) const REQUEST_FIELDS: &[&str] = &[
    "KeyId",
    "EncryptionContext",
    "EncryptionAlgorithm",
    "KeySpec",
    "NumberOfBytes",
    "KeyUsage",
    "CustomerMasterKeySpec",
    "Origin",
    "MultiRegion",
    "Description",
    "PendingWindowInDays",
    "AliasName",
    "TargetKeyId",
    "SourceKeyId",
    "DestinationKeyId",
    "SourceEncryptionContext",
    "DestinationEncryptionContext",
    "SourceEncryptionAlgorithm",
    "DestinationEncryptionAlgorithm",
    "SigningAlgorithm",
    "MessageType",
    "MacAlgorithm",
    "Limit",
    "DryRun",
    "RotationPeriodInDays",
    "GranteePrincipal",
    "RetiringPrincipal",
    "Operations",
    "GrantId",
    "GrantName",
    "PolicyName",
    "TagKeys",
    "WrappingAlgorithm",
    "WrappingKeySpec",
    "ExpirationModel",
    "ValidTo",
    "BypassPolicyLockoutSafetyCheck",
];

/// Response fields that may be recorded (CloudTrail's `responseElements`).
pub(crate) const RESPONSE_FIELDS: &[&str] = &[
    "KeyId",
    "SourceKeyId",
    "KeyState",
    "DeletionDate",
    "PendingWindowInDays",
    "GrantId",
];

/// The fields of `KeyMetadata` that a CreateKey/DescribeKey record keeps.
const METADATA_FIELDS: &[&str] = &[
    "KeyId",
    "Arn",
    "AWSAccountId",
    "KeyState",
    "KeySpec",
    "KeyUsage",
    "Origin",
    "CreationDate",
    "Enabled",
    "Description",
    "DeletionDate",
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

fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match name {
        "AWSAccountId" => "awsAccountId".to_owned(),
        _ => match chars.next() {
            Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
            None => String::new(),
        },
    }
}

fn pick(object: &Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| object.get(*f).map(|v| (camel(f), v.clone())))
        .collect()
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

pub(crate) fn user_identity(p: &Principal) -> Value {
    let (kind, name) = match p.arn.rsplit_once(":role/") {
        Some((_, name)) => ("AssumedRole", name),
        None => (
            "IAMUser",
            p.arn.rsplit_once(":user/").map_or("", |(_, n)| n),
        ),
    };
    json!({
        "type": kind,
        "principalId": name,
        "arn": p.arn,
        "accountId": p.account_id,
        "accessKeyId": p.access_key_id,
        "userName": name,
    })
}

/// A key ARN for a key id or key ARN; `None` for aliases and junk.
fn key_arn(id: &str, region: &str, account: &str) -> Option<String> {
    if id.starts_with("arn:aws:kms:") && id.contains(":key/") {
        return Some(id.to_owned());
    }
    let is_uuid = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    is_uuid.then(|| format!("arn:aws:kms:{region}:{account}:key/{id}"))
}

/// The `resources` entry of a key ARN; `None` for anything else.
pub(crate) fn key_arn_resource(arn: &str, account: &str) -> Option<Value> {
    (arn.starts_with("arn:aws:kms:") && arn.contains(":key/"))
        .then(|| json!({ "accountId": account, "type": "AWS::KMS::Key", "ARN": arn }))
}

fn resources(
    request: &Map<String, Value>,
    response: &Map<String, Value>,
    region: &str,
    account: &str,
) -> Vec<Value> {
    let mut arns: Vec<String> = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(arn) = v
            .and_then(Value::as_str)
            .and_then(|id| key_arn(id, region, account))
            && !arns.contains(&arn)
        {
            arns.push(arn);
        }
    };
    add(response.get("SourceKeyId"));
    add(response.get("KeyId"));
    add(response.get("KeyMetadata").and_then(|m| m.get("Arn")));
    for f in ["KeyId", "SourceKeyId", "TargetKeyId", "DestinationKeyId"] {
        add(request.get(f));
    }
    arns.iter()
        .filter_map(|arn| key_arn_resource(arn, account))
        .collect()
}

fn object(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The record of one call, as a JSON object (without the chain fields).
pub(crate) fn event(call: &ApiCall<'_>) -> Value {
    let request = object(call.request_body);
    let response = object(call.response_body);
    let account = call.principal.account_id.as_str();
    let request_parameters = pick(&request, REQUEST_FIELDS);
    let mut response_elements = Map::new();
    if call.error_code.is_none() {
        response_elements = pick(&response, RESPONSE_FIELDS);
        if let Some(Value::Object(meta)) = response.get("KeyMetadata") {
            response_elements.insert(
                "keyMetadata".into(),
                Value::Object(pick(meta, METADATA_FIELDS)),
            );
        }
    }
    let error_message = call
        .error_code
        .and(response.get("message"))
        .and_then(Value::as_str)
        .map(|m| m.chars().take(1024).collect::<String>());
    let mut event = json!({
        "eventVersion": "1.08",
        "userIdentity": user_identity(call.principal),
        "eventTime": event_time(call.time),
        "eventSource": "kms.amazonaws.com",
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip.map(|ip| ip.to_string()),
        "userAgent": call.user_agent.map(|ua| ua.chars().take(256).collect::<String>()),
        "requestParameters": if request_parameters.is_empty() { Value::Null } else { Value::Object(request_parameters) },
        "responseElements": if response_elements.is_empty() { Value::Null } else { Value::Object(response_elements) },
        "requestID": call.request_id,
        // From the thread-local CSPRNG: no getrandom(2) per record.
        "eventID": uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(),
        "readOnly": read_only(call.operation),
        "resources": resources(&request, &response, call.region, account),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    if let (Some(code), Value::Object(m)) = (call.error_code, &mut event) {
        m.insert("errorCode".into(), Value::from(code));
        m.insert(
            "errorMessage".into(),
            error_message.map_or(Value::Null, Value::from),
        );
    }
    event
}

/// CloudTrail's time format: `2026-01-02T03:04:05Z`.
pub(crate) fn event_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = event(&call(&p, "Encrypt", req, resp));
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
        let e = event(&c);
        assert_eq!(e["errorCode"], "NotFoundException");
        assert_eq!(e["errorMessage"], "Alias 'alias/x' does not exist");
        assert_eq!(e["readOnly"], false);
        assert_eq!(e["resources"].as_array().map(Vec::len), Some(0));
        assert_eq!(e["responseElements"], Value::Null);
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
