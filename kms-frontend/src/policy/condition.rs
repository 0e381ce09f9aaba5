//! Policy conditions: parsing one `Condition` block into its evaluated form
//! and testing it against the request's condition keys. Operators:
//! StringEquals, StringNotEquals, StringEqualsIgnoreCase,
//! StringNotEqualsIgnoreCase, StringLike, StringNotLike and Bool, each with
//! the `ForAnyValue:` / `ForAllValues:` set qualifiers and the `IfExists`
//! suffix. Keys: `kms:EncryptionContext:<key>`, `kms:EncryptionContextKeys`,
//! `kms:CallerAccount`, `kms:GrantOperations`, `kms:GrantIsForAWSResource`;
//! any other key is accepted and is absent from every request, as AWS
//! treats a key it does not supply.

use super::eval::Facts;
use super::glob;
use serde_json::Value;

/// How values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    EqualsIgnoreCase,
    Like,
    Bool,
}

/// Which request values must satisfy the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// A condition key the evaluator knows how to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// `kms:EncryptionContext:<key>`: the context key is compared exactly.
    Context(String),
    ContextKeys,
    CallerAccount,
    GrantOperations,
    GrantIsForAwsResource,
    /// A key this service never supplies.
    Other,
}

/// One (operator, key, values) test.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    op: Op,
    negated: bool,
    qualifier: Qualifier,
    if_exists: bool,
    key: Key,
    /// Lower-cased for the IgnoreCase operators and Bool.
    values: Vec<String>,
}

fn parse_key(name: &str) -> Key {
    const CONTEXT: &str = "kms:encryptioncontext:";
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(CONTEXT) {
        return Key::Context(name[CONTEXT.len()..].to_owned());
    }
    match lower.as_str() {
        "kms:encryptioncontextkeys" => Key::ContextKeys,
        "kms:calleraccount" => Key::CallerAccount,
        "kms:grantoperations" => Key::GrantOperations,
        "kms:grantisforawsresource" => Key::GrantIsForAwsResource,
        _ => Key::Other,
    }
}

fn parse_op(name: &str) -> Result<(Op, bool, Qualifier, bool), String> {
    let (qualifier, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else {
        (Qualifier::Single, name)
    };
    let (rest, if_exists) = match rest.strip_suffix("IfExists") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (op, negated) = match rest {
        "StringEquals" => (Op::Equals, false),
        "StringNotEquals" => (Op::Equals, true),
        "StringEqualsIgnoreCase" => (Op::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Op::EqualsIgnoreCase, true),
        "StringLike" => (Op::Like, false),
        "StringNotLike" => (Op::Like, true),
        "Bool" => (Op::Bool, false),
        _ => {
            return Err(format!(
                "Condition operator '{name}' is not supported; use StringEquals, \
                 StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, \
                 StringLike, StringNotLike or Bool, optionally with ForAnyValue:/ForAllValues: \
                 and IfExists"
            ));
        }
    };
    Ok((op, negated, qualifier, if_exists))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a statement's `Condition` object.
pub(crate) fn parse_block(block: &Value) -> Result<Vec<Condition>, String> {
    let Value::Object(ops) = block else {
        return Err("Condition must be an object of operators".into());
    };
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let (op, negated, qualifier, if_exists) = parse_op(op_name)?;
        let Value::Object(keys) = keys else {
            return Err(format!(
                "Condition operator '{op_name}' must map condition keys to values"
            ));
        };
        if keys.is_empty() {
            return Err(format!(
                "Condition operator '{op_name}' names no condition key"
            ));
        }
        for (key_name, vals) in keys {
            if key_name.is_empty() {
                return Err("A condition key must not be empty".into());
            }
            let raw: Vec<&Value> = match vals {
                Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            if raw.is_empty() {
                return Err(format!("Condition key '{key_name}' has no values"));
            }
            let mut values = Vec::with_capacity(raw.len());
            for v in raw {
                let Some(s) = scalar(v) else {
                    return Err(format!(
                        "Condition key '{key_name}' values must be strings, numbers or booleans"
                    ));
                };
                let s = match op {
                    Op::Bool => {
                        let l = s.to_ascii_lowercase();
                        if l != "true" && l != "false" {
                            return Err(format!(
                                "Bool condition on '{key_name}' needs true or false, not '{s}'"
                            ));
                        }
                        l
                    }
                    Op::EqualsIgnoreCase => s.to_lowercase(),
                    _ => s,
                };
                values.push(s);
            }
            out.push(Condition {
                op,
                negated,
                qualifier,
                if_exists,
                key: parse_key(key_name),
                values,
            });
        }
    }
    Ok(out)
}

impl Condition {
    /// Whether one request value matches any of the policy's values.
    fn value_matches(&self, v: &str) -> bool {
        match self.op {
            Op::Equals => self.values.iter().any(|p| p == v),
            Op::EqualsIgnoreCase => {
                let l = v.to_lowercase();
                self.values.contains(&l)
            }
            Op::Like => self.values.iter().any(|p| glob::matches(p, v)),
            Op::Bool => self.values.iter().any(|p| p.eq_ignore_ascii_case(v)),
        }
    }

    /// One request value passes: matches (or, negated, matches none).
    fn passes(&self, v: &str) -> bool {
        self.value_matches(v) != self.negated
    }

    /// Evaluates the condition against the request.
    pub(crate) fn holds(&self, facts: &Facts<'_>) -> bool {
        let values = facts.values(&self.key);
        let Some(values) = values.filter(|v| !v.is_empty()) else {
            // Absent key: IfExists and ForAllValues hold; negated
            // single-valued operators hold; everything else fails.
            return self.if_exists
                || self.qualifier == Qualifier::ForAllValues
                || (self.qualifier == Qualifier::Single && self.negated);
        };
        match self.qualifier {
            Qualifier::ForAllValues => values.iter().all(|v| self.passes(v)),
            Qualifier::ForAnyValue => values.iter().any(|v| self.passes(v)),
            Qualifier::Single if self.negated => values.iter().all(|v| !self.value_matches(v)),
            Qualifier::Single => values.iter().any(|v| self.value_matches(v)),
        }
    }
}
