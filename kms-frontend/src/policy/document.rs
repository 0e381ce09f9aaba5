//! Key policy documents: parsed and validated once, when written, into the
//! evaluated form [`Policy`] that `eval` walks. A refusal carries the reason
//! (it becomes MalformedPolicyDocumentException). Accepted: `Version`
//! (2012-10-17 or 2008-10-17), `Id`, and `Statement` (one object or a
//! list) with `Sid`, `Effect`, `Principal` or `NotPrincipal`, `Action` or
//! `NotAction`, `Resource`, `Condition`. `NotResource` is refused rather
//! than silently misread.

use super::condition::{self, Condition};
use serde_json::{Map, Value};

/// Largest key policy AWS accepts: 32 KiB.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One entry of `Principal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalPattern {
    /// `"*"` or `{"AWS": "*"}`.
    Any,
    /// An account: `arn:aws:iam::ACCOUNT:root` or a bare 12-digit id. It
    /// delegates to the account's own permissions (admins; key owners).
    Account(String),
    /// A user or role ARN, compared exactly.
    Arn(String),
    /// A `Service`/`Federated` principal: accepted, never matches here.
    Never,
}

/// A statement in evaluated form.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principals: Vec<PrincipalPattern>,
    pub not_principal: bool,
    /// Lower-cased `kms:...` patterns (`*` allowed).
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// A parsed key policy and the exact text it came from.
#[derive(Debug, Clone)]
pub struct Policy {
    text: String,
    pub(crate) statements: Vec<Statement>,
}

impl Policy {
    /// The document as written (GetKeyPolicy returns it verbatim).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Parses and validates `text`.
    ///
    /// # Errors
    /// The reason the document is malformed, for the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "The key policy is {} bytes; the largest allowed is {MAX_POLICY_BYTES} bytes",
                text.len()
            ));
        }
        if text.trim().is_empty() {
            return Err("The key policy is empty".into());
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "The key policy is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let Value::Object(doc) = doc else {
            return Err("The key policy must be a JSON object".into());
        };
        for k in doc.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!("Unknown policy element '{k}'"));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(v) => {
                return Err(format!("Version {v} is not valid; use \"2012-10-17\""));
            }
        }
        if doc.get("Id").is_some_and(|v| !v.is_string()) {
            return Err("Id must be a string".into());
        }
        let statements: Vec<&Value> = match doc.get("Statement") {
            None => return Err("The key policy has no Statement".into()),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(_) => return Err("Statement must be an object or a list of objects".into()),
        };
        if statements.is_empty() {
            return Err("The key policy has no Statement".into());
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(i + 1, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            statements,
        })
    }
}

/// A string or list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    if list.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    list.into_iter()
        .map(|x| match x {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!(
                "{what} must be a non-empty string or a list of them"
            )),
        })
        .collect()
}

fn aws_principal(p: &str) -> Result<PrincipalPattern, String> {
    if p == "*" {
        return Ok(PrincipalPattern::Any);
    }
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(PrincipalPattern::Account(p.to_owned()));
    }
    let bad = || format!("Policy contains a statement with one or more invalid principals: {p}");
    let rest = p
        .strip_prefix("arn:aws:iam::")
        .or_else(|| p.strip_prefix("arn:aws:sts::"))
        .ok_or_else(bad)?;
    let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if resource == "root" {
        return Ok(PrincipalPattern::Account(account.to_owned()));
    }
    let named = ["user/", "role/", "assumed-role/"]
        .iter()
        .any(|k| resource.strip_prefix(k).is_some_and(|n| !n.is_empty()));
    if !named || p.contains('*') {
        return Err(bad());
    }
    Ok(PrincipalPattern::Arn(p.to_owned()))
}

fn parse_principal(v: &Value) -> Result<Vec<PrincipalPattern>, String> {
    match v {
        Value::String(s) if s == "*" => Ok(vec![PrincipalPattern::Any]),
        Value::Object(m) if !m.is_empty() => {
            let mut out = Vec::new();
            for (kind, vals) in m {
                let vals = strings(vals, "Principal")?;
                match kind.as_str() {
                    "AWS" => {
                        for p in vals {
                            out.push(aws_principal(&p)?);
                        }
                    }
                    "Service" | "Federated" | "CanonicalUser" => {
                        out.push(PrincipalPattern::Never);
                    }
                    _ => return Err(format!("Unknown principal type '{kind}'")),
                }
            }
            Ok(out)
        }
        _ => Err(
            "Principal must be \"*\" or an object like {\"AWS\": \"arn:aws:iam::ACCOUNT:root\"}"
                .into(),
        ),
    }
}

fn parse_action(a: &str) -> Result<String, String> {
    if a == "*" {
        return Ok("*".into());
    }
    match a.split_once(':') {
        Some((svc, name)) if !svc.is_empty() && !name.is_empty() => Ok(a.to_ascii_lowercase()),
        _ => Err(format!(
            "Action '{a}' is not valid; use service:action, e.g. kms:Encrypt or kms:*"
        )),
    }
}

fn parse_statement(n: usize, v: &Value) -> Result<Statement, String> {
    let Value::Object(s) = v else {
        return Err(format!("Statement {n} must be an object"));
    };
    let at = |m: String| format!("Statement {n}: {m}");
    check_fields(s).map_err(at)?;
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(x)) => Some(x.clone()),
        Some(_) => return Err(at("Sid must be a string".into())),
    };
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(_) => return Err(at("Effect must be \"Allow\" or \"Deny\"".into())),
        None => return Err(at("Effect is missing".into())),
    };
    let (principals, not_principal) = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), None) => (parse_principal(p).map_err(at)?, false),
        (None, Some(p)) => (parse_principal(p).map_err(at)?, true),
        (None, None) => {
            return Err(at("Policy contains a statement with no principal".into()));
        }
        (Some(_), Some(_)) => return Err(at("use either Principal or NotPrincipal".into())),
    };
    let (actions, not_action) = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => (strings(a, "Action").map_err(at)?, false),
        (None, Some(a)) => (strings(a, "NotAction").map_err(at)?, true),
        (None, None) => return Err(at("Action is missing".into())),
        (Some(_), Some(_)) => return Err(at("use either Action or NotAction".into())),
    };
    let actions = actions
        .iter()
        .map(|a| parse_action(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(at)?;
    let resources = match s.get("Resource") {
        Some(r) => strings(r, "Resource").map_err(at)?,
        None => return Err(at("Resource is missing; use \"*\"".into())),
    };
    let conditions = match s.get("Condition") {
        Some(c) => condition::parse_block(c).map_err(at)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principals,
        not_principal,
        actions,
        not_action,
        resources,
        conditions,
    })
}

fn check_fields(s: &Map<String, Value>) -> Result<(), String> {
    for k in s.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Principal" | "NotPrincipal" | "Action" | "NotAction"
            | "Resource" | "Condition" => {}
            "NotResource" => return Err("NotResource is not supported; use Resource".into()),
            other => return Err(format!("unknown element '{other}'")),
        }
    }
    Ok(())
}

/// The default key policy AWS documents: the account may do everything
/// with the key, which delegates to the account's own permissions.
pub fn default_policy_text(account_id: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:aws:iam::{account_id}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}
