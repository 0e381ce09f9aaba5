//! Authorization decisions in the audit log: the per-request [`Collector`]
//! (the `service::authz::DecisionSink` of one request) and the record each
//! decision becomes.
//!
//! A decision record is shaped like the API-call record of the same call
//! (same `requestID`, `eventName`, `userIdentity`, `eventSource`) with
//! `"eventType": "AwsApiCallAuthorization"` and an `authorization` object:
//! `action` (`kms:Encrypt`, `hsm-kms-admin:CreatePrincipal`), `resource`,
//! `decision` (`Allow` or `Deny`), `reason` (see [`reason_name`]) and, when
//! they decided it, `statementSid`/`statementIndex` or `grantId`. It carries
//! nothing from the request body: no encryption context, no parameters.
//! Writing the records, before the call's own record, is `Auditor`'s.

use super::record::{ApiCall, event_time, key_arn_resource, read_only, user_identity};
use crate::service::authz::{Authorization, DecisionSink, Reason};
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use time::OffsetDateTime;

/// `eventType` of decision records.
pub const DECISION_EVENT_TYPE: &str = "AwsApiCallAuthorization";

/// One decision and when it was made.
#[derive(Debug, Clone)]
pub struct Decided {
    pub time: OffsetDateTime,
    pub authorization: Authorization,
}

/// Collects the decisions of one request, in the order they are made.
#[derive(Debug, Default)]
pub struct Collector {
    decisions: Mutex<Vec<Decided>>,
}

impl Collector {
    /// The decisions so far, leaving the collector empty.
    pub fn take(&self) -> Vec<Decided> {
        std::mem::take(&mut *self.decisions.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl DecisionSink for Collector {
    fn record(&self, decision: &Authorization) {
        self.decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Decided {
                time: OffsetDateTime::now_utc(),
                authorization: decision.clone(),
            });
    }
}

/// The `reason` of a decision record: `PolicyAllow`, `ExplicitDeny` (a
/// policy statement), `GrantAllow`, `GrantExceeded`, `NoAllow` (implicit
/// deny), `Administrator`, `NotAdministrator`, `RetiringPrincipal`,
/// `SamePrincipal`.
pub fn reason_name(a: &Authorization) -> &'static str {
    match (&a.reason, a.allowed) {
        (Reason::Statement { .. }, true) => "PolicyAllow",
        (Reason::Statement { .. }, false) => "ExplicitDeny",
        (Reason::Grant(_), _) => "GrantAllow",
        (Reason::GrantExceeded(_), _) => "GrantExceeded",
        (Reason::NoAllow, _) => "NoAllow",
        (Reason::Administrator, _) => "Administrator",
        (Reason::NotAdministrator, _) => "NotAdministrator",
        (Reason::RetiringPrincipal(_), _) => "RetiringPrincipal",
        (Reason::SamePrincipal, _) => "SamePrincipal",
    }
}

fn authorization(a: &Authorization) -> Value {
    let mut m = Map::new();
    m.insert("action".into(), Value::from(a.action.as_str()));
    m.insert("resource".into(), Value::from(a.resource.as_str()));
    m.insert(
        "decision".into(),
        Value::from(if a.allowed { "Allow" } else { "Deny" }),
    );
    m.insert("reason".into(), Value::from(reason_name(a)));
    match &a.reason {
        Reason::Statement { sid, index } => {
            m.insert(
                "statementSid".into(),
                sid.as_deref().map_or(Value::Null, Value::from),
            );
            m.insert("statementIndex".into(), Value::from(*index));
        }
        Reason::Grant(id) | Reason::GrantExceeded(id) | Reason::RetiringPrincipal(id) => {
            m.insert("grantId".into(), Value::from(id.as_str()));
        }
        Reason::NoAllow
        | Reason::Administrator
        | Reason::NotAdministrator
        | Reason::SamePrincipal => {}
    }
    Value::Object(m)
}

/// The record of one decision made while serving `call`, as a JSON object
/// (without the chain fields).
pub(crate) fn event(call: &ApiCall<'_>, d: &Decided) -> Value {
    let account = call.principal.account_id.as_str();
    let resources: Vec<Value> = key_arn_resource(&d.authorization.resource, account)
        .into_iter()
        .collect();
    json!({
        "eventVersion": "1.08",
        "userIdentity": user_identity(call.principal),
        "eventTime": event_time(d.time),
        "eventSource": "kms.amazonaws.com",
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip.map(|ip| ip.to_string()),
        "requestID": call.request_id,
        "eventID": uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string(),
        "readOnly": read_only(call.operation),
        "resources": resources,
        "authorization": authorization(&d.authorization),
        "eventType": DECISION_EVENT_TYPE,
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn principal() -> Principal {
        Principal {
            arn: "arn:aws:iam::111122223333:user/bob".into(),
            account_id: "111122223333".into(),
            access_key_id: "AKIABOB".into(),
            admin: false,
        }
    }

    fn decided(allowed: bool, reason: Reason) -> Decided {
        Decided {
            time: OffsetDateTime::UNIX_EPOCH,
            authorization: Authorization {
                principal: "arn:aws:iam::111122223333:user/bob".into(),
                action: "kms:Encrypt".into(),
                resource: KEY.into(),
                allowed,
                reason,
            },
        }
    }

    fn record(d: &Decided) -> Value {
        let p = principal();
        let call = ApiCall {
            request_id: "rid",
            time: OffsetDateTime::UNIX_EPOCH,
            operation: "Encrypt",
            principal: &p,
            region: "us-east-1",
            source_ip: None,
            user_agent: Some("ua"),
            request_body:
                br#"{"KeyId":"k","EncryptionContext":{"secret-ish":"v"},"Plaintext":"cA=="}"#,
            response_body: b"{}",
            error_code: None,
        };
        event(&call, d)
    }

    #[test]
    fn explicit_deny_names_the_statement_and_carries_no_request_values() {
        let e = record(&decided(
            false,
            Reason::Statement {
                sid: Some("DenyBob".into()),
                index: 2,
            },
        ));
        assert_eq!(e["eventType"], DECISION_EVENT_TYPE);
        assert_eq!(e["eventName"], "Encrypt");
        assert_eq!(e["requestID"], "rid");
        assert_eq!(
            e["userIdentity"]["arn"],
            "arn:aws:iam::111122223333:user/bob"
        );
        let a = &e["authorization"];
        assert_eq!(a["decision"], "Deny");
        assert_eq!(a["reason"], "ExplicitDeny");
        assert_eq!(a["statementSid"], "DenyBob");
        assert_eq!(a["statementIndex"], 2);
        assert_eq!(a["action"], "kms:Encrypt");
        assert_eq!(a["resource"], KEY);
        assert_eq!(e["resources"][0]["ARN"], KEY);
        let text = e.to_string();
        assert!(!text.contains("secret-ish") && !text.contains("cA=="));
        assert!(e.get("requestParameters").is_none() && e.get("errorCode").is_none());
    }

    #[test]
    fn reasons_tell_allow_statement_grant_and_implicit_deny_apart() {
        let allow = record(&decided(
            true,
            Reason::Statement {
                sid: None,
                index: 1,
            },
        ));
        assert_eq!(allow["authorization"]["decision"], "Allow");
        assert_eq!(allow["authorization"]["reason"], "PolicyAllow");
        assert_eq!(allow["authorization"]["statementSid"], Value::Null);
        let grant = record(&decided(true, Reason::Grant("g1".into())));
        assert_eq!(grant["authorization"]["reason"], "GrantAllow");
        assert_eq!(grant["authorization"]["grantId"], "g1");
        let none = record(&decided(false, Reason::NoAllow));
        assert_eq!(none["authorization"]["reason"], "NoAllow");
        assert_eq!(none["authorization"]["decision"], "Deny");
        assert!(none["authorization"].get("grantId").is_none());
    }

    #[test]
    fn collector_keeps_decisions_in_order_and_empties_on_take() {
        let c = Collector::default();
        c.record(&decided(true, Reason::Grant("a".into())).authorization);
        c.record(&decided(false, Reason::NoAllow).authorization);
        let got = c.take();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].authorization.reason, Reason::Grant("a".into()));
        assert!(c.take().is_empty());
    }
}
