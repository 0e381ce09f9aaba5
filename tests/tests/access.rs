//! Access control beyond the table: grants that stop working at once when
//! revoked or retired, grant tokens and Name idempotence, malformed
//! policies refused with the reason, the policy lockout safety check,
//! ListKeys visibility, the admin API and `kmsctl principal`, principals'
//! secrets never stored in the clear, and decisions that survive a restart.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::GrantOperation;
use hsm_kms_tests::{TestEnv, assert_err, ops};

const ACCT: &str = "111122223333";

fn user(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{name}")
}

fn only(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"only","Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

async fn decrypt_as(env: &TestEnv, who: &str, blob: &[u8]) -> Result<(), String> {
    env.client(who)
        .decrypt()
        .ciphertext_blob(Blob::new(blob.to_vec()))
        .send()
        .await
        .map(drop)
        .map_err(|e| hsm_kms_tests::err_info(&e).code.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_or_retired_grant_stops_working_at_once() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let blob = ops::encrypt(&alice, &key, b"shared", &[]).await;
    assert_eq!(
        decrypt_as(&env, "bob", &blob).await,
        Err("AccessDeniedException".into())
    );

    let g = alice
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("bob"))
        .retiring_principal(user("carol"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("CreateGrant");
    let (id, token) = (g.grant_id().expect("id"), g.grant_token().expect("token"));
    // The token is usable at once, and so is the grant without it.
    env.client("bob")
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .grant_tokens(token)
        .send()
        .await
        .expect("Decrypt with the new grant token");
    assert_eq!(decrypt_as(&env, "bob", &blob).await, Ok(()));
    // Decrypt only: no Encrypt.
    assert_err!(
        env.client("bob")
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await,
        "AccessDeniedException"
    );
    // ListGrants shows it; ListRetirableGrants shows it to carol only.
    let listed = alice
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .expect("ListGrants");
    assert_eq!(listed.grants().len(), 1);
    assert_eq!(listed.grants()[0].grant_id(), Some(id));
    assert_eq!(
        listed.grants()[0].grantee_principal(),
        Some(user("bob").as_str())
    );
    let retirable = env
        .client("carol")
        .list_retirable_grants()
        .retiring_principal(user("carol"))
        .send()
        .await
        .expect("ListRetirableGrants");
    assert_eq!(retirable.grants().len(), 1);
    assert_err!(
        env.client("bob")
            .list_retirable_grants()
            .retiring_principal(user("carol"))
            .send()
            .await,
        "AccessDeniedException"
    );
    // The grantee (without RetireGrant in the grant) may not retire it.
    assert_err!(
        env.client("bob")
            .retire_grant()
            .grant_token(token)
            .send()
            .await,
        "AccessDeniedException"
    );
    // The retiring principal retires it by token: bob loses access at once.
    env.client("carol")
        .retire_grant()
        .grant_token(token)
        .send()
        .await
        .expect("RetireGrant");
    assert_eq!(
        decrypt_as(&env, "bob", &blob).await,
        Err("AccessDeniedException".into())
    );
    assert_err!(
        env.client("carol")
            .retire_grant()
            .grant_token(token)
            .send()
            .await,
        "InvalidGrantTokenException"
    );

    // A second grant, revoked by the key's owner.
    let g2 = alice
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("bob"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("CreateGrant 2");
    assert_eq!(decrypt_as(&env, "bob", &blob).await, Ok(()));
    assert_err!(
        env.client("bob")
            .revoke_grant()
            .key_id(&key)
            .grant_id(g2.grant_id().expect("id"))
            .send()
            .await,
        "AccessDeniedException"
    );
    alice
        .revoke_grant()
        .key_id(&key)
        .grant_id(g2.grant_id().expect("id"))
        .send()
        .await
        .expect("RevokeGrant");
    assert_eq!(
        decrypt_as(&env, "bob", &blob).await,
        Err("AccessDeniedException".into())
    );
    assert_err!(
        alice
            .revoke_grant()
            .key_id(&key)
            .grant_id(g2.grant_id().expect("id"))
            .send()
            .await,
        "NotFoundException"
    );
    assert_err!(
        alice
            .revoke_grant()
            .key_id(&key)
            .grant_id("nope")
            .send()
            .await,
        "InvalidGrantIdException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_grant_validates_and_name_is_idempotent() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let make = || {
        alice
            .create_grant()
            .key_id(&key)
            .grantee_principal(user("bob"))
            .operations(GrantOperation::Encrypt)
            .name("app-1")
    };
    let a = make().send().await.expect("first");
    let b = make().send().await.expect("same name, same parameters");
    assert_eq!(a.grant_id(), b.grant_id());
    assert_eq!(a.grant_token(), b.grant_token());
    let c = make()
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("same name, other operations");
    assert_ne!(a.grant_id(), c.grant_id());
    assert_err!(
        alice
            .create_grant()
            .key_id(&key)
            .grantee_principal("bob")
            .operations(GrantOperation::Encrypt)
            .send()
            .await,
        "InvalidArnException"
    );
    assert_err!(
        alice
            .create_grant()
            .key_id(&key)
            .grantee_principal(user("bob"))
            .operations(GrantOperation::DescribeKey)
            .constraints(
                aws_sdk_kms::types::GrantConstraints::builder()
                    .encryption_context_equals("a", "b")
                    .build()
            )
            .send()
            .await,
        "ValidationException"
    );
    // A grantee with CreateGrant may pass on no more than it holds.
    alice
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("bob"))
        .operations(GrantOperation::CreateGrant)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("grant bob CreateGrant+Decrypt");
    env.client("bob")
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("carol"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("bob passes on Decrypt");
    assert_err!(
        env.client("bob")
            .create_grant()
            .key_id(&key)
            .grantee_principal(user("carol"))
            .operations(GrantOperation::Encrypt)
            .send()
            .await,
        "AccessDeniedException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_policies_are_rejected_with_the_reason() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let cases = [
        ("{not json", "not valid JSON"),
        (r#"{"Statement":[]}"#, "no Statement"),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
            "no principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Perhaps","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
            "Effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01"}}}]}"#,
            "DateLessThan",
        ),
    ];
    for (doc, reason) in cases {
        let info = assert_err!(
            alice
                .put_key_policy()
                .key_id(&key)
                .policy_name("default")
                .policy(doc)
                .send()
                .await,
            "MalformedPolicyDocumentException"
        );
        let m = info.message.unwrap_or_default();
        assert!(m.contains(reason), "{doc}: message {m:?} lacks {reason:?}");
    }
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#,
        "s".repeat(33 * 1024)
    );
    let info = assert_err!(
        alice
            .put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(&big)
            .send()
            .await,
        "MalformedPolicyDocumentException"
    );
    assert!(info.message.unwrap_or_default().contains("32768"));
    // Nothing changed: the default policy is still there.
    let p = alice
        .get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .expect("get");
    assert!(
        p.policy()
            .expect("policy")
            .contains("Enable IAM User Permissions")
    );
    // CreateKey with a bad policy creates nothing.
    let before = alice
        .list_keys()
        .send()
        .await
        .expect("ListKeys")
        .keys()
        .len();
    assert_err!(
        alice.create_key().policy("[]").send().await,
        "MalformedPolicyDocumentException"
    );
    let after = alice
        .list_keys()
        .send()
        .await
        .expect("ListKeys")
        .keys()
        .len();
    assert_eq!(before, after);
    let names = alice
        .list_key_policies()
        .key_id(&key)
        .send()
        .await
        .expect("ListKeyPolicies");
    assert_eq!(names.policy_names(), ["default".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_policy_is_refused_unless_bypassed() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let info = assert_err!(
        alice
            .put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(only(&user("carol")))
            .send()
            .await,
        "MalformedPolicyDocumentException"
    );
    assert!(
        info.message
            .unwrap_or_default()
            .contains("will not allow you to update the key policy")
    );
    assert_err!(
        alice.create_key().policy(only(&user("carol"))).send().await,
        "MalformedPolicyDocumentException"
    );
    // Still alice's: the refused policy changed nothing.
    ops::encrypt(&alice, &key, b"x", &[]).await;
    alice
        .put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(only(&user("carol")))
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .expect("PutKeyPolicy with BypassPolicyLockoutSafetyCheck");
    assert_err!(
        alice
            .get_key_policy()
            .key_id(&key)
            .policy_name("default")
            .send()
            .await,
        "AccessDeniedException"
    );
    let got = env
        .client("carol")
        .get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .expect("carol reads it");
    assert_eq!(got.policy(), Some(only(&user("carol")).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_shows_only_keys_the_caller_may_see() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let own = ops::create_key(&alice).await;
    let shared = ops::create_key(&alice).await;
    let bobs = ops::create_key(&env.client("bob")).await;
    alice
        .create_grant()
        .key_id(&shared)
        .grantee_principal(user("bob"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("grant");
    alice
        .create_alias()
        .alias_name("alias/alice-own")
        .target_key_id(&own)
        .send()
        .await
        .expect("alias");
    let ids = |out: aws_sdk_kms::operation::list_keys::ListKeysOutput| -> Vec<String> {
        out.keys()
            .iter()
            .filter_map(|k| k.key_id().map(str::to_owned))
            .collect()
    };
    let bob_sees = ids(env
        .client("bob")
        .list_keys()
        .send()
        .await
        .expect("bob ListKeys"));
    assert!(bob_sees.contains(&shared) && bob_sees.contains(&bobs));
    assert!(!bob_sees.contains(&own), "bob must not see alice's key");
    let admin_sees = ids(env
        .client("admin")
        .list_keys()
        .send()
        .await
        .expect("admin ListKeys"));
    for k in [&own, &shared, &bobs] {
        assert!(admin_sees.contains(k), "administrator sees every key");
    }
    let bob_aliases = env
        .client("bob")
        .list_aliases()
        .send()
        .await
        .expect("bob ListAliases");
    assert!(
        bob_aliases
            .aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/alice-own"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_manages_principals_and_secrets_are_not_stored_in_the_clear() {
    let env = TestEnv::start();
    let dave = env.create_principal("dave", false).await;
    assert_eq!(dave.arn, user("dave"));
    let d = env.client_for(&dave);
    let key = ops::create_key(&d).await;
    ops::encrypt(&d, &key, b"dave", &[]).await;
    // Only administrators manage principals.
    let r = env
        .admin_call("bob", "CreatePrincipal", serde_json::json!({"Name": "eve"}))
        .await;
    assert_eq!(r.error_type().as_deref(), Some("AccessDeniedException"));
    let r = env
        .admin_call(
            "admin",
            "CreatePrincipal",
            serde_json::json!({"Name": "dave"}),
        )
        .await;
    assert_eq!(r.error_type().as_deref(), Some("AlreadyExistsException"));
    let r = env
        .admin_call(
            "admin",
            "CreatePrincipal",
            serde_json::json!({"Name": "bad name!"}),
        )
        .await;
    assert_eq!(r.error_type().as_deref(), Some("ValidationException"));
    let list = env
        .admin_call("admin", "ListPrincipals", serde_json::json!({}))
        .await
        .json();
    let names: Vec<(String, String)> = list["Principals"]
        .as_array()
        .expect("Principals")
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().unwrap_or("").to_owned(),
                p["Source"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(names.contains(&("dave".into(), "api".into())));
    assert!(names.contains(&("alice".into(), "config".into())));
    // The secret is not in the database file in the clear.
    let db = std::fs::read(env.db_path()).expect("read kms.db");
    let wal = std::fs::read(env.db_path().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            memchr::memmem::find(bytes, dave.secret_access_key.as_bytes()).is_none(),
            "secret access key found in the clear on disk"
        );
    }
    assert!(memchr::memmem::find(&[db, wal].concat(), dave.access_key_id.as_bytes()).is_some());
    // Config principals cannot be deleted at run time; dave can.
    let r = env
        .admin_call(
            "admin",
            "DeletePrincipal",
            serde_json::json!({"Name": "alice"}),
        )
        .await;
    assert_eq!(
        r.error_type().as_deref(),
        Some("UnsupportedOperationException")
    );
    let r = env
        .admin_call(
            "admin",
            "DeletePrincipal",
            serde_json::json!({"Name": "dave"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_err!(d.list_keys().send().await, "UnrecognizedClientException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_cmk_access_shares_a_key_through_a_grant() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let r = env
        .admin_call(
            "alice",
            "GrantCmkAccess",
            serde_json::json!({"KeyId": key, "Principal": "bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let first = r.json()["GrantId"].as_str().expect("GrantId").to_owned();
    let again = env
        .admin_call(
            "alice",
            "GrantCmkAccess",
            serde_json::json!({"KeyId": key, "Principal": "bob"}),
        )
        .await
        .json();
    assert_eq!(again["GrantId"], first.as_str());
    let bob = env.client("bob");
    let blob = ops::encrypt(&bob, &key, b"shared", &[]).await;
    assert_eq!(ops::decrypt(&alice, &blob, &[]).await, b"shared");
    assert_err!(
        bob.disable_key().key_id(&key).send().await,
        "AccessDeniedException"
    );
    // carol cannot share alice's key.
    let r = env
        .admin_call(
            "carol",
            "GrantCmkAccess",
            serde_json::json!({"KeyId": key, "Principal": "carol"}),
        )
        .await;
    assert_eq!(r.error_type().as_deref(), Some("AccessDeniedException"));
    let grants = alice
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .expect("ListGrants");
    assert_eq!(grants.grants()[0].name(), Some("grantCmkAccess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmsctl_principal_create_list_delete() {
    let env = TestEnv::start();
    let out = env.kmsctl("admin", ["principal", "create", "frank", "--admin"]);
    assert!(out.success, "{}", out.stderr);
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_ACCESS_KEY_ID="))
        .expect("AWS_ACCESS_KEY_ID line")
        .to_owned();
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_SECRET_ACCESS_KEY="))
        .expect("AWS_SECRET_ACCESS_KEY line")
        .to_owned();
    let frank = hsm_kms_tests::CreatedPrincipal {
        arn: user("frank"),
        access_key_id: id,
        secret_access_key: secret,
    };
    // frank is an administrator: he sees alice's key.
    let key = ops::create_key(&env.client("alice")).await;
    ops::encrypt(&env.client_for(&frank), &key, b"f", &[]).await;
    let list = env.kmsctl("admin", ["principal", "list"]);
    assert!(
        list.success && list.stdout.contains("frank"),
        "{}",
        list.stdout
    );
    let denied = env.kmsctl("bob", ["principal", "list"]);
    assert!(
        !denied.success && denied.stderr.contains("AccessDenied"),
        "{}",
        denied.stderr
    );
    let del = env.kmsctl("admin", ["principal", "delete", "frank"]);
    assert!(del.success, "{}", del.stderr);
    assert!(
        !env.kmsctl("admin", ["principal", "list"])
            .stdout
            .contains("frank")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_a_restart() {
    let mut env = TestEnv::start();
    let alice = env.client("alice");
    let key = ops::create_key(&alice).await;
    let locked = ops::create_key(&alice).await;
    let blob = ops::encrypt(&alice, &key, b"persist", &[]).await;
    alice
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("bob"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("grant bob");
    let carol_grant = alice
        .create_grant()
        .key_id(&key)
        .grantee_principal(user("carol"))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("grant carol");
    alice
        .revoke_grant()
        .key_id(&key)
        .grant_id(carol_grant.grant_id().expect("id"))
        .send()
        .await
        .expect("revoke carol");
    alice
        .put_key_policy()
        .key_id(&locked)
        .policy_name("default")
        .policy(only(&user("carol")))
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .expect("carol-only policy");
    let dave = env.create_principal("dave", false).await;

    env.restart_frontend().await;

    assert_eq!(
        decrypt_as(&env, "bob", &blob).await,
        Ok(()),
        "bob's grant survives"
    );
    assert_eq!(
        decrypt_as(&env, "carol", &blob).await,
        Err("AccessDeniedException".into()),
        "carol's revoked grant stays revoked"
    );
    let alice = env.client("alice");
    assert_err!(
        alice.describe_key().key_id(&locked).send().await,
        "AccessDeniedException"
    );
    env.client("carol")
        .describe_key()
        .key_id(&locked)
        .send()
        .await
        .expect("carol still may");
    let d = env.client_for(&dave);
    ops::create_key(&d).await;
    assert_err!(
        d.describe_key().key_id(&key).send().await,
        "AccessDeniedException"
    );
}
