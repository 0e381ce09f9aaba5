//! Unit tests of the policy parser and evaluator.

use super::*;
use crate::principal::Principal;
use std::collections::BTreeMap;
use std::sync::Arc;

const ACCT: &str = "111122223333";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn user(name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCT}:user/{name}"),
        account_id: ACCT.into(),
        access_key_id: format!("AKIA{name}"),
        admin: false,
    }
}

fn facts<'a>(p: &'a Principal, action: Action, ctx: Option<&'a [(String, String)]>) -> Facts<'a> {
    Facts {
        principal: p,
        account_allows: false,
        action,
        key_arn: KEY,
        context: ctx,
        grant_operations: None,
    }
}

fn policy(statements: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
    ))
    .unwrap_or_else(|e| panic!("parse: {e}"))
}

fn allowed(p: &Policy, f: &Facts<'_>) -> bool {
    evaluate(p, &[], f).allowed
}

fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn default_policy_allows_the_account_only_through_its_own_permissions() {
    let p = Policy::parse(&default_policy_text(ACCT)).expect("default parses");
    let alice = user("alice");
    let mut f = facts(&alice, Action::Encrypt, None);
    assert!(!allowed(&p, &f), "account root without account permission");
    f.account_allows = true;
    let d = evaluate(&p, &[], &f);
    assert!(d.allowed);
    assert_eq!(d.decided_by(), "Sid Enable IAM User Permissions");
    let mut other = user("mallory");
    other.account_id = "999999999999".into();
    let mut f = facts(&other, Action::Encrypt, None);
    f.account_allows = true;
    assert!(!allowed(&p, &f), "another account");
}

#[test]
fn explicit_deny_wins_over_allow() {
    let p = policy(
        r#"{"Sid":"all","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
           {"Sid":"nodec","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*"}"#,
    );
    let bob = user("bob");
    let d = evaluate(&p, &[], &facts(&bob, Action::Decrypt, None));
    assert!(!d.allowed);
    assert_eq!(
        d.basis,
        Basis::Statement {
            sid: Some("nodec".into()),
            index: 2
        }
    );
    assert!(allowed(&p, &facts(&bob, Action::Encrypt, None)));
    assert!(allowed(&p, &facts(&user("alice"), Action::Decrypt, None)));
}

#[test]
fn action_wildcards_are_case_insensitive() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/bob"]},"Action":["KMS:generatedatakey*","kms:Describe?ey"],"Resource":"*"}"#,
    );
    let bob = user("bob");
    assert!(allowed(&p, &facts(&bob, Action::GenerateDataKey, None)));
    assert!(allowed(
        &p,
        &facts(&bob, Action::GenerateDataKeyWithoutPlaintext, None)
    ));
    assert!(allowed(&p, &facts(&bob, Action::DescribeKey, None)));
    assert!(!allowed(&p, &facts(&bob, Action::Encrypt, None)));
    assert!(!allowed(
        &p,
        &facts(&user("carol"), Action::GenerateDataKey, None)
    ));
}

#[test]
fn not_principal_and_not_action() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"},
           {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#,
    );
    assert!(allowed(&p, &facts(&user("bob"), Action::Encrypt, None)));
    assert!(!allowed(&p, &facts(&user("bob"), Action::Decrypt, None)));
    assert!(!allowed(
        &p,
        &facts(&user("bob"), Action::PutKeyPolicy, None)
    ));
    assert!(allowed(
        &p,
        &facts(&user("alice"), Action::PutKeyPolicy, None)
    ));
}

#[test]
fn resource_must_match_the_key() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/other"}"#,
    );
    assert!(!allowed(&p, &facts(&user("bob"), Action::Encrypt, None)));
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:*:111122223333:key/*"}"#,
    );
    assert!(allowed(&p, &facts(&user("bob"), Action::Encrypt, None)));
}

#[test]
fn encryption_context_conditions() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*",
            "Condition":{"StringEquals":{"kms:EncryptionContext:Dept":"IT"},
                         "StringLike":{"kms:EncryptionContext:Project":"alpha-*"}}}"#,
    );
    let bob = user("bob");
    let good = ctx(&[("Dept", "IT"), ("Project", "alpha-7")]);
    let wrong = ctx(&[("Dept", "HR"), ("Project", "alpha-7")]);
    let partial = ctx(&[("Dept", "IT")]);
    assert!(allowed(&p, &facts(&bob, Action::Decrypt, Some(&good))));
    assert!(!allowed(&p, &facts(&bob, Action::Decrypt, Some(&wrong))));
    assert!(!allowed(&p, &facts(&bob, Action::Decrypt, Some(&partial))));
    assert!(!allowed(&p, &facts(&bob, Action::Decrypt, None)));
}

#[test]
fn string_not_equals_holds_when_key_absent() {
    let p = policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotEquals":{"kms:CallerAccount":"111122223333"}}},
           {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotEquals":{"kms:EncryptionContext:Tier":"secret"}}}"#,
    );
    let bob = user("bob");
    assert!(allowed(&p, &facts(&bob, Action::Encrypt, None)));
    let secret = ctx(&[("Tier", "secret")]);
    assert!(!allowed(&p, &facts(&bob, Action::Encrypt, Some(&secret))));
    let mut foreign = user("x");
    foreign.account_id = "999999999999".into();
    assert!(!allowed(&p, &facts(&foreign, Action::Encrypt, None)));
}

#[test]
fn set_qualifiers_on_context_keys() {
    let all = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}}"#,
    );
    let any = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["a"]}}}"#,
    );
    let bob = user("bob");
    let ab = ctx(&[("a", "1"), ("b", "2")]);
    let ac = ctx(&[("a", "1"), ("c", "2")]);
    let c = ctx(&[("c", "2")]);
    assert!(allowed(&all, &facts(&bob, Action::Encrypt, Some(&ab))));
    assert!(!allowed(&all, &facts(&bob, Action::Encrypt, Some(&ac))));
    assert!(
        allowed(&all, &facts(&bob, Action::Encrypt, None)),
        "empty set"
    );
    assert!(allowed(&any, &facts(&bob, Action::Encrypt, Some(&ac))));
    assert!(!allowed(&any, &facts(&bob, Action::Encrypt, Some(&c))));
    assert!(!allowed(&any, &facts(&bob, Action::Encrypt, None)));
}

#[test]
fn grant_operations_and_bool_conditions() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:CreateGrant","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","Encrypt"]},
                         "Bool":{"kms:GrantIsForAWSResource":false}}}"#,
    );
    let bob = user("bob");
    let ok = [Action::Decrypt];
    let too_much = [Action::Decrypt, Action::CreateGrant];
    let mut f = facts(&bob, Action::CreateGrant, None);
    f.grant_operations = Some(&ok);
    assert!(allowed(&p, &f));
    f.grant_operations = Some(&too_much);
    assert!(!allowed(&p, &f));
}

#[test]
fn grants_allow_exactly_their_operations_under_constraints() {
    let bob = user("bob");
    let g = Arc::new(Grant {
        grant_id: "g1".into(),
        key_id: "k".into(),
        name: None,
        grantee: bob.arn.clone(),
        retiring: None,
        operations: vec![Action::Decrypt],
        constraints: Some(Constraints {
            equals: None,
            subset: Some(BTreeMap::from([("app".into(), "web".into())])),
        }),
        issuing: "x".into(),
        creation_date: 0,
        token: "t".into(),
    });
    let p = Policy::parse(&default_policy_text(ACCT)).expect("default");
    let web = ctx(&[("app", "web"), ("x", "y")]);
    let cli = ctx(&[("app", "cli")]);
    let grants = [g];
    let d = evaluate(&p, &grants, &facts(&bob, Action::Decrypt, Some(&web)));
    assert!(d.allowed);
    assert_eq!(d.basis, Basis::Grant("g1".into()));
    assert!(!evaluate(&p, &grants, &facts(&bob, Action::Decrypt, Some(&cli))).allowed);
    assert!(!evaluate(&p, &grants, &facts(&bob, Action::Encrypt, Some(&web))).allowed);
    assert!(
        !evaluate(
            &p,
            &grants,
            &facts(&user("carol"), Action::Decrypt, Some(&web))
        )
        .allowed
    );
    let eq = Constraints {
        equals: Some(BTreeMap::from([("app".into(), "web".into())])),
        subset: None,
    };
    assert!(eq.hold(&ctx(&[("app", "web")])));
    assert!(!eq.hold(&web), "equals refuses extra pairs");
}

#[test]
fn explicit_deny_beats_a_grant() {
    let bob = user("bob");
    let g = Arc::new(Grant {
        grant_id: "g1".into(),
        key_id: "k".into(),
        name: None,
        grantee: bob.arn.clone(),
        retiring: None,
        operations: vec![Action::Encrypt],
        constraints: None,
        issuing: "x".into(),
        creation_date: 0,
        token: "t".into(),
    });
    let p = policy(r#"{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*"}"#);
    assert!(!evaluate(&p, &[g], &facts(&bob, Action::Encrypt, None)).allowed);
}

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        (r#"{"Version":"2012-10-17"}"#, "no Statement"),
        (r#"{"Statement":[]}"#, "no Statement"),
        (r#"{"Version":"2020-01-01","Statement":[]}"#, "Version"),
        (r#"{"Bogus":1,"Statement":[]}"#, "Unknown policy element"),
        (
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
            "Effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
            "no principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}"#,
            "Action is missing",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*"}]}"#,
            "Resource is missing",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}]}"#,
            "service:action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}]}"#,
            "invalid principals",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}]}"#,
            "invalid principals",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"a":"1"}}}]}"#,
            "not supported",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"a":"maybe"}}}]}"#,
            "true or false",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","NotResource":"*"}]}"#,
            "NotResource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Extra":1}]}"#,
            "unknown element",
        ),
    ];
    for (doc, reason) in cases {
        match Policy::parse(doc) {
            Ok(_) => panic!("accepted {doc}"),
            Err(e) => assert!(e.contains(reason), "{doc}: {e} lacks {reason}"),
        }
    }
    let big = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}]}}"#,
        "a".repeat(MAX_POLICY_BYTES)
    );
    assert!(Policy::parse(&big).expect_err("too big").contains("32768"));
}

#[test]
fn parsed_policy_keeps_its_text_verbatim() {
    let text = default_policy_text("123456789012");
    let p = Policy::parse(&text).expect("parses");
    assert_eq!(p.text(), text);
    let single = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}}"#;
    assert!(Policy::parse(single).is_ok());
}
