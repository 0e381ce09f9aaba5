//! The key policy parser and validator (`kms_frontend::policy::Policy::parse`,
//! what CreateKey and PutKeyPolicy run on a client's document) on arbitrary
//! text, and evaluation of whatever it accepts against a few requests.
//! Properties: never panics; an accepted policy keeps its text verbatim;
//! evaluation of an accepted policy never panics and names the request it
//! decided.
#![no_main]

use kms_frontend::policy::{Action, Facts, Policy, evaluate};
use kms_frontend::principal::Principal;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111";

fn user(name: &str, account: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{account}:user/{name}"),
        account_id: account.into(),
        access_key_id: "AKIDEXAMPLE".into(),
        admin: false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    assert_eq!(policy.text(), text);
    let context = vec![
        ("dept".to_owned(), "eng".to_owned()),
        ("project".to_owned(), "alpha-1".to_owned()),
    ];
    let principals = [user("bob", "111122223333"), user("eve", "444455556666")];
    let grant_ops = [Action::Decrypt, Action::Encrypt];
    for principal in &principals {
        for (action, ctx, ops) in [
            (Action::Decrypt, Some(context.as_slice()), None),
            (Action::Encrypt, None, None),
            (Action::CreateGrant, None, Some(grant_ops.as_slice())),
            (Action::PutKeyPolicy, None, None),
        ] {
            for account_allows in [false, true] {
                let facts = Facts {
                    principal,
                    account_allows,
                    action,
                    key_arn: KEY,
                    context: ctx,
                    grant_operations: ops,
                };
                let d = evaluate(&policy, &[], &facts);
                assert_eq!(d.principal, principal.arn);
                assert_eq!(d.action, action);
                let _ = d.decided_by();
            }
        }
    }
});
