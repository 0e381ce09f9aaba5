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

use super::AuditError;
use super::record::{
    ApiCall, Head, Resource, Tail, event_id, head, key_arn_resource, read_only, tail, to_bytes,
};
use crate::service::authz::{Authorization, DecisionSink, Reason};
use serde::Serialize;
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

/// The `authorization` object of a decision record.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizationElement<'a> {
    action: &'a str,
    resource: &'a str,
    decision: &'static str,
    reason: &'static str,
    /// Present (possibly null) when a policy statement decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_sid: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_id: Option<&'a str>,
}

fn authorization(a: &Authorization) -> AuthorizationElement<'_> {
    let (statement_sid, statement_index, grant_id) = match &a.reason {
        Reason::Statement { sid, index } => (Some(sid.as_deref()), Some(*index), None),
        Reason::Grant(id) | Reason::GrantExceeded(id) | Reason::RetiringPrincipal(id) => {
            (None, None, Some(id.as_str()))
        }
        Reason::NoAllow
        | Reason::Administrator
        | Reason::NotAdministrator
        | Reason::SamePrincipal => (None, None, None),
    };
    AuthorizationElement {
        action: &a.action,
        resource: &a.resource,
        decision: if a.allowed { "Allow" } else { "Deny" },
        reason: reason_name(a),
        statement_sid,
        statement_index,
        grant_id,
    }
}

/// The record of one decision.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionEvent<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: uuid::fmt::Hyphenated,
    read_only: bool,
    resources: Vec<Resource<'a>>,
    authorization: AuthorizationElement<'a>,
    #[serde(flatten)]
    tail: Tail<'a>,
}

/// The record of one decision made while serving `call`, as a serialized
/// JSON object (without the chain fields).
///
/// # Errors
/// The record cannot be serialized (not expected).
pub(crate) fn event(call: &ApiCall<'_>, d: &Decided) -> Result<Vec<u8>, AuditError> {
    let account = call.principal.account_id.as_str();
    let event = DecisionEvent {
        head: head(call, d.time),
        request_id: call.request_id,
        event_id: event_id(),
        read_only: read_only(call.operation),
        resources: key_arn_resource(d.authorization.resource.as_str(), account)
            .into_iter()
            .collect(),
        authorization: authorization(&d.authorization),
        tail: tail(call, DECISION_EVENT_TYPE),
    };
    to_bytes(&event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;
    use serde_json::Value;

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
        serde_json::from_slice(&event(&call, d).expect("serializes")).expect("one JSON object")
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
