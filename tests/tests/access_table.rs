//! Table-driven authorization: principal x operation x key policy / grant,
//! against the real server through the AWS SDK. Each row asserts success or
//! the exact AWS error code; every AccessDeniedException must name the
//! caller, the action and the key in AWS's message form.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, GrantConstraints, GrantOperation};
use hsm_kms_tests::{TestEnv, err_info, key_arn, ops};
use std::collections::HashMap;

const ACCT: &str = "111122223333";

fn user(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{name}")
}

fn root_statement() -> String {
    format!(
        r#"{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"kms:*","Resource":"*"}}"#
    )
}

fn policy(statements: &[String]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Encrypt,
    Decrypt,
    DescribeKey,
    GenerateDataKey,
    GetKeyPolicy,
    PutKeyPolicy,
    CreateGrant,
    ListGrants,
    EnableKey,
    /// ReEncrypt from the principal's own key to the case's key.
    ReEncryptTo,
    /// ReEncrypt from the case's key to the principal's own key.
    ReEncryptFrom,
}

impl Op {
    fn action(self) -> &'static str {
        match self {
            Op::Encrypt => "Encrypt",
            Op::Decrypt => "Decrypt",
            Op::DescribeKey => "DescribeKey",
            Op::GenerateDataKey => "GenerateDataKey",
            Op::GetKeyPolicy => "GetKeyPolicy",
            Op::PutKeyPolicy => "PutKeyPolicy",
            Op::CreateGrant => "CreateGrant",
            Op::ListGrants => "ListGrants",
            Op::EnableKey => "EnableKey",
            Op::ReEncryptTo => "ReEncryptTo",
            Op::ReEncryptFrom => "ReEncryptFrom",
        }
    }
}

const OK: Option<&str> = None;
const DENIED: Option<&str> = Some("AccessDeniedException");

struct Case {
    who: &'static str,
    op: Op,
    key: &'static str,
    ctx: &'static [(&'static str, &'static str)],
    expect: Option<&'static str>,
}

const fn case(
    who: &'static str,
    op: Op,
    key: &'static str,
    ctx: &'static [(&'static str, &'static str)],
    expect: Option<&'static str>,
) -> Case {
    Case {
        who,
        op,
        key,
        ctx,
        expect,
    }
}

const IT: &[(&str, &str)] = &[("dept", "IT")];
const HR: &[(&str, &str)] = &[("dept", "HR")];
const WEB: &[(&str, &str)] = &[("app", "web")];
const WEB_X: &[(&str, &str)] = &[("app", "web"), ("x", "y")];
const CLI: &[(&str, &str)] = &[("app", "cli")];
const NONE: &[(&str, &str)] = &[];

/// Keys: `default` (alice, default policy), `bobenc` (policy lets bob
/// Encrypt/GenerateDataKey*/DescribeKey), `denybob` (everyone kms:*, bob
/// denied Decrypt), `ctx` (bob may Decrypt only with dept=IT), `granted`
/// (grants: bob Decrypt; carol Encrypt+Decrypt with app=web in context),
/// `noroot` (only carol, no account statement), `adminkey` (admin's own),
/// `missing` (does not exist).
const CASES: &[Case] = &[
    case("alice", Op::Encrypt, "default", NONE, OK),
    case("alice", Op::Decrypt, "default", NONE, OK),
    case("alice", Op::DescribeKey, "default", NONE, OK),
    case("alice", Op::GetKeyPolicy, "default", NONE, OK),
    case("alice", Op::CreateGrant, "default", NONE, OK),
    case("alice", Op::ReEncryptTo, "default", NONE, OK),
    case("bob", Op::Encrypt, "default", NONE, DENIED),
    case("bob", Op::Decrypt, "default", NONE, DENIED),
    case("bob", Op::DescribeKey, "default", NONE, DENIED),
    case("bob", Op::GenerateDataKey, "default", NONE, DENIED),
    case("bob", Op::GetKeyPolicy, "default", NONE, DENIED),
    case("bob", Op::PutKeyPolicy, "default", NONE, DENIED),
    case("bob", Op::CreateGrant, "default", NONE, DENIED),
    case("bob", Op::ListGrants, "default", NONE, DENIED),
    case("bob", Op::EnableKey, "default", NONE, DENIED),
    case("bob", Op::ReEncryptTo, "default", NONE, DENIED),
    case("bob", Op::ReEncryptFrom, "default", NONE, DENIED),
    case("admin", Op::Encrypt, "default", NONE, OK),
    case("admin", Op::Decrypt, "default", NONE, OK),
    case("admin", Op::GetKeyPolicy, "default", NONE, OK),
    case("bob", Op::Encrypt, "bobenc", NONE, OK),
    case("bob", Op::GenerateDataKey, "bobenc", NONE, OK),
    case("bob", Op::DescribeKey, "bobenc", NONE, OK),
    case("bob", Op::ReEncryptTo, "bobenc", NONE, DENIED),
    case("bob", Op::Decrypt, "bobenc", NONE, DENIED),
    case("bob", Op::GetKeyPolicy, "bobenc", NONE, DENIED),
    case("carol", Op::Encrypt, "bobenc", NONE, DENIED),
    case("alice", Op::Decrypt, "bobenc", NONE, OK),
    case("bob", Op::Encrypt, "denybob", NONE, OK),
    case("bob", Op::Decrypt, "denybob", NONE, DENIED),
    case("carol", Op::Decrypt, "denybob", NONE, OK),
    case("alice", Op::Decrypt, "denybob", NONE, OK),
    case("bob", Op::Decrypt, "ctx", IT, OK),
    case("bob", Op::Decrypt, "ctx", HR, DENIED),
    case("bob", Op::Decrypt, "ctx", NONE, DENIED),
    case("bob", Op::Encrypt, "ctx", HR, OK),
    case("bob", Op::Decrypt, "granted", NONE, OK),
    case("bob", Op::Encrypt, "granted", NONE, DENIED),
    case("bob", Op::DescribeKey, "granted", NONE, DENIED),
    case("bob", Op::CreateGrant, "granted", NONE, DENIED),
    case("carol", Op::Encrypt, "granted", WEB, OK),
    case("carol", Op::Encrypt, "granted", WEB_X, OK),
    case("carol", Op::Decrypt, "granted", WEB, OK),
    case("carol", Op::Decrypt, "granted", CLI, DENIED),
    case("carol", Op::Encrypt, "granted", NONE, DENIED),
    case("carol", Op::GenerateDataKey, "granted", WEB, DENIED),
    case("alice", Op::Encrypt, "noroot", NONE, DENIED),
    case("alice", Op::GetKeyPolicy, "noroot", NONE, DENIED),
    case("admin", Op::DescribeKey, "noroot", NONE, DENIED),
    case("carol", Op::Encrypt, "noroot", NONE, OK),
    case("carol", Op::GetKeyPolicy, "noroot", NONE, OK),
    case("bob", Op::Encrypt, "noroot", NONE, DENIED),
    case("alice", Op::Encrypt, "adminkey", NONE, DENIED),
    case("admin", Op::Encrypt, "adminkey", NONE, OK),
    case(
        "bob",
        Op::Encrypt,
        "missing",
        NONE,
        Some("NotFoundException"),
    ),
];

struct World {
    keys: HashMap<&'static str, String>,
    /// Each principal's own key (for ReEncrypt).
    own: HashMap<&'static str, String>,
    /// Who can encrypt under each key (to make Decrypt inputs).
    encryptor: HashMap<&'static str, &'static str>,
}

async fn setup(env: &TestEnv) -> World {
    let alice = env.client("alice");
    let admin = env.client("admin");
    let mut keys = HashMap::new();
    keys.insert("default", ops::create_key(&alice).await);
    let bobenc = policy(&[
        root_statement(),
        format!(
            r#"{{"Sid":"bob-enc","Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":["kms:Encrypt","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}}"#,
            user("bob")
        ),
    ]);
    let denybob = policy(&[
        root_statement(),
        r#"{"Sid":"everyone","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}"#.into(),
        format!(
            r#"{{"Sid":"no-bob-decrypt","Effect":"Deny","Principal":{{"AWS":"{}"}},"Action":"kms:Decrypt","Resource":"*"}}"#,
            user("bob")
        ),
    ]);
    let ctx = policy(&[
        root_statement(),
        format!(
            r#"{{"Sid":"bob-it","Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:dept":"IT"}}}}}}"#,
            user("bob")
        ),
        format!(
            r#"{{"Sid":"bob-enc","Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"kms:Encrypt","Resource":"*"}}"#,
            user("bob")
        ),
    ]);
    let noroot = policy(&[format!(
        r#"{{"Sid":"carol-only","Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"kms:*","Resource":"*"}}"#,
        user("carol")
    )]);
    for (name, doc, bypass) in [
        ("bobenc", bobenc, false),
        ("denybob", denybob, false),
        ("ctx", ctx, false),
        ("noroot", noroot, true),
    ] {
        let out = alice
            .create_key()
            .policy(doc)
            .bypass_policy_lockout_safety_check(bypass)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateKey {name}: {e:?}"));
        keys.insert(name, out.key_metadata().expect("meta").key_id().to_owned());
    }
    let granted = ops::create_key(&alice).await;
    alice
        .create_grant()
        .key_id(&granted)
        .grantee_principal(user("bob"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("grant bob Decrypt");
    alice
        .create_grant()
        .key_id(&granted)
        .grantee_principal(user("carol"))
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "web")
                .build(),
        )
        .send()
        .await
        .expect("grant carol Encrypt+Decrypt with app=web");
    keys.insert("granted", granted);
    keys.insert("adminkey", ops::create_key(&admin).await);
    keys.insert("missing", "0b0e3a1c-1d2f-4a3b-9c8d-7e6f5a4b3c2d".to_owned());
    let mut own = HashMap::new();
    for who in ["alice", "bob", "carol", "admin"] {
        own.insert(who, ops::create_key(&env.client(who)).await);
    }
    let encryptor = HashMap::from([
        ("default", "alice"),
        ("bobenc", "alice"),
        ("denybob", "alice"),
        ("ctx", "alice"),
        ("granted", "alice"),
        ("noroot", "carol"),
        ("adminkey", "admin"),
    ]);
    World {
        keys,
        own,
        encryptor,
    }
}

async fn blob_under(env: &TestEnv, w: &World, key: &str, ctx: &[(&str, &str)]) -> Vec<u8> {
    let who = w.encryptor[key];
    ops::encrypt(&env.client(who), &w.keys[key], b"table", ctx).await
}

/// Runs one case; `Ok(())` or the error (code, message).
async fn run(env: &TestEnv, w: &World, c: &Case) -> Result<(), (Option<String>, Option<String>)> {
    let client: Client = env.client(c.who);
    let key = w.keys[c.key].clone();
    fn e<E: aws_sdk_kms::error::ProvideErrorMetadata, R>(
        r: Result<
            R,
            aws_sdk_kms::error::SdkError<
                E,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >,
    ) -> Result<(), (Option<String>, Option<String>)> {
        r.map(drop).map_err(|e| {
            let i = err_info(&e);
            (i.code, i.message)
        })
    }
    let with_ctx = |mut m: HashMap<String, String>| {
        for (k, v) in c.ctx {
            m.insert((*k).to_owned(), (*v).to_owned());
        }
        m
    };
    let ctx = with_ctx(HashMap::new());
    match c.op {
        Op::Encrypt => e(client
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .set_encryption_context(Some(ctx))
            .send()
            .await),
        Op::Decrypt => {
            let blob = if c.key == "missing" {
                return Err((Some("skip".into()), None));
            } else {
                blob_under(env, w, c.key, c.ctx).await
            };
            e(client
                .decrypt()
                .ciphertext_blob(Blob::new(blob))
                .set_encryption_context(Some(ctx))
                .send()
                .await)
        }
        Op::DescribeKey => e(client.describe_key().key_id(&key).send().await),
        Op::GenerateDataKey => e(client
            .generate_data_key()
            .key_id(&key)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(ctx))
            .send()
            .await),
        Op::GetKeyPolicy => e(client
            .get_key_policy()
            .key_id(&key)
            .policy_name("default")
            .send()
            .await),
        Op::PutKeyPolicy => e(client
            .put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(policy(&[root_statement()]))
            .send()
            .await),
        Op::CreateGrant => e(client
            .create_grant()
            .key_id(&key)
            .grantee_principal(user("carol"))
            .operations(GrantOperation::Encrypt)
            .send()
            .await),
        Op::ListGrants => e(client.list_grants().key_id(&key).send().await),
        Op::EnableKey => e(client.enable_key().key_id(&key).send().await),
        Op::ReEncryptTo => {
            let src = ops::encrypt(&client, &w.own[c.who], b"re", &[]).await;
            e(client
                .re_encrypt()
                .ciphertext_blob(Blob::new(src))
                .destination_key_id(&key)
                .set_destination_encryption_context(Some(ctx))
                .send()
                .await)
        }
        Op::ReEncryptFrom => {
            let src = blob_under(env, w, c.key, c.ctx).await;
            e(client
                .re_encrypt()
                .ciphertext_blob(Blob::new(src))
                .set_source_encryption_context(Some(ctx))
                .destination_key_id(&w.own[c.who])
                .send()
                .await)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principal_operation_policy_grant_table() {
    assert!(CASES.len() >= 40, "the table needs at least 40 cases");
    let env = TestEnv::start();
    let w = setup(&env).await;
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let got = run(&env, &w, c).await;
        let label = format!("#{i} {} {:?} on {} ctx {:?}", c.who, c.op, c.key, c.ctx);
        match (c.expect, got) {
            (None, Ok(())) => {}
            (Some(code), Err((Some(got), message))) if got == code => {
                if code == "AccessDeniedException" {
                    let m = message.unwrap_or_default();
                    let arn = env.principal(c.who).arn.clone();
                    let expected = format!(
                        "User: {arn} is not authorized to perform: kms:{} on resource: {}",
                        c.op.action(),
                        key_arn(&w.keys[c.key])
                    );
                    if !m.starts_with(&expected) {
                        failures.push(format!(
                            "{label}: message {m:?} does not start with {expected:?}"
                        ));
                    }
                }
            }
            (want, got) => failures.push(format!("{label}: expected {want:?}, got {got:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n"),
        env.logs()
    );
}
