//! One authorization check, as every request makes it: evaluate a key's
//! parsed policy and grants for (principal, action, key, context).
//! `cargo bench -p kms-frontend --bench policy` prints the time per check.

use criterion::{Criterion, criterion_group, criterion_main};
use kms_frontend::policy::{
    Action, Constraints, Facts, Grant, Policy, default_policy_text, evaluate,
};
use kms_frontend::principal::Principal;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn user(name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::111122223333:user/{name}"),
        account_id: "111122223333".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        admin: false,
    }
}

/// A policy of six statements with conditions, none of which allows
/// carol, so her check walks all of them and ends at her grant.
fn busy_policy() -> Policy {
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"deny-hr","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:dept":"HR"}}},
 {"Sid":"bob-use","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/bob","arn:aws:iam::111122223333:role/app"]},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"},
 {"Sid":"grants","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}},
 {"Sid":"ctx","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/dave"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:project":"alpha-*"},"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["project","dept"]}}},
 {"Sid":"acct","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringNotEquals":{"kms:CallerAccount":"111122223333"}}}
]}"#,
    )
    .expect("policy parses")
}

fn grant(grantee: &str, id: &str) -> Arc<Grant> {
    Arc::new(Grant {
        grant_id: id.into(),
        key_id: "k".into(),
        name: None,
        grantee: grantee.into(),
        retiring: None,
        operations: vec![Action::Encrypt, Action::Decrypt],
        constraints: Some(Constraints {
            equals: None,
            subset: Some(BTreeMap::from([("app".into(), "web".into())])),
        }),
        issuing: "x".into(),
        creation_date: 0,
        token: "t".into(),
    })
}

fn bench(c: &mut Criterion) {
    let context: Vec<(String, String)> = vec![
        ("app".into(), "web".into()),
        ("dept".into(), "IT".into()),
        ("project".into(), "alpha-7".into()),
    ];
    let default = Policy::parse(&default_policy_text("111122223333")).expect("default");
    let alice = user("alice");
    c.bench_function("authorize: default policy, owner Encrypt", |b| {
        b.iter(|| {
            let f = Facts {
                principal: black_box(&alice),
                account_allows: true,
                action: Action::Encrypt,
                key_arn: KEY,
                context: Some(&context),
                grant_operations: None,
            };
            black_box(evaluate(&default, &[], &f))
        })
    });
    let busy = busy_policy();
    let carol = user("carol");
    let grants: Vec<Arc<Grant>> = (0..9)
        .map(|i| {
            grant(
                &format!("arn:aws:iam::111122223333:user/g{i}"),
                &format!("{i:064}"),
            )
        })
        .chain(std::iter::once(grant(&carol.arn, &"c".repeat(64))))
        .collect();
    c.bench_function(
        "authorize: 6-statement policy + 10 grants, allowed by the last grant",
        |b| {
            b.iter(|| {
                let f = Facts {
                    principal: black_box(&carol),
                    account_allows: false,
                    action: Action::Decrypt,
                    key_arn: KEY,
                    context: Some(&context),
                    grant_operations: None,
                };
                black_box(evaluate(&busy, &grants, &f))
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
