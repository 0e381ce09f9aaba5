//! Aliases through the real `aws-sdk-kms`: Create/Update/Delete/ListAliases,
//! their documented errors, pagination, tenant separation and a CreateAlias
//! race.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;
use hsm_kms_tests::ops::{create_key, decrypt, encrypt};
use hsm_kms_tests::{TestEnv, alias_arn, assert_err};

#[tokio::test]
async fn aliases_create_update_delete_list() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let k1 = create_key(&c).await;
    let k2 = create_key(&c).await;
    c.create_alias()
        .alias_name("alias/app")
        .target_key_id(&k1)
        .send()
        .await
        .expect("CreateAlias");
    assert_err!(
        c.create_alias()
            .alias_name("alias/app")
            .target_key_id(&k2)
            .send()
            .await,
        "AlreadyExistsException"
    );
    assert_err!(
        c.create_alias()
            .alias_name("no-prefix")
            .target_key_id(&k1)
            .send()
            .await,
        "InvalidAliasNameException"
    );
    assert_err!(
        c.create_alias()
            .alias_name("alias/to-nowhere")
            .target_key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
            .send()
            .await,
        "NotFoundException"
    );
    // Encrypt through the alias, decrypt without a KeyId.
    let blob = encrypt(&c, "alias/app", b"via alias", &[]).await;
    assert_eq!(&blob[2..2 + usize::from(blob[1])], k1.as_bytes());

    let list = c.list_aliases().send().await.expect("ListAliases");
    let mine: HashMap<String, String> = list
        .aliases()
        .iter()
        .filter(|a| !a.alias_name().unwrap_or("").starts_with("alias/aws/"))
        .map(|a| {
            (
                a.alias_name().unwrap().to_owned(),
                a.target_key_id().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(mine, HashMap::from([("alias/app".to_owned(), k1.clone())]));
    let entry = list
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/app"))
        .unwrap();
    assert_eq!(entry.alias_arn(), Some(alias_arn("alias/app").as_str()));

    c.update_alias()
        .alias_name("alias/app")
        .target_key_id(&k2)
        .send()
        .await
        .expect("UpdateAlias");
    let m = c.describe_key().key_id("alias/app").send().await.unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), k2);
    let by_key = c.list_aliases().key_id(&k2).send().await.unwrap();
    let names: Vec<_> = by_key
        .aliases()
        .iter()
        .map(|a| a.alias_name().unwrap())
        .collect();
    assert_eq!(names, ["alias/app"]);
    let by_key1 = c.list_aliases().key_id(&k1).send().await.unwrap();
    assert!(by_key1.aliases().is_empty(), "{:?}", by_key1.aliases());
    assert_err!(
        c.update_alias()
            .alias_name("alias/unknown")
            .target_key_id(&k2)
            .send()
            .await,
        "NotFoundException"
    );

    c.delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .expect("DeleteAlias");
    assert_err!(
        c.delete_alias().alias_name("alias/app").send().await,
        "NotFoundException"
    );
    assert_err!(
        c.describe_key().key_id("alias/app").send().await,
        "NotFoundException"
    );
    // The key itself is untouched, and the old blob still decrypts.
    assert_eq!(decrypt(&c, &blob, &[]).await, b"via alias");
}

#[tokio::test]
async fn list_aliases_paginates() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let id = create_key(&c).await;
    let names = ["alias/p1", "alias/p2", "alias/p3"];
    for n in names {
        c.create_alias()
            .alias_name(n)
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
    let p1 = c.list_aliases().key_id(&id).limit(2).send().await.unwrap();
    assert_eq!(p1.aliases().len(), 2);
    assert!(p1.truncated());
    let p2 = c
        .list_aliases()
        .key_id(&id)
        .limit(2)
        .marker(p1.next_marker().expect("NextMarker"))
        .send()
        .await
        .unwrap();
    assert_eq!(p2.aliases().len(), 1);
    assert!(!p2.truncated());
    let mut all: Vec<&str> = p1
        .aliases()
        .iter()
        .chain(p2.aliases())
        .map(|a| a.alias_name().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, names);
}

#[tokio::test]
async fn denies_cross_tenant_alias() {
    let env = TestEnv::start();
    let alice = env.client("alice");
    let bob = env.client("bob");
    let id = create_key(&alice).await;
    let bob_key = create_key(&bob).await;
    alice
        .create_alias()
        .alias_name("alias/alices")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    assert_err!(
        bob.delete_alias().alias_name("alias/alices").send().await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.update_alias()
            .alias_name("alias/alices")
            .target_key_id(&bob_key)
            .send()
            .await,
        "AccessDeniedException"
    );
    assert_err!(
        bob.encrypt()
            .key_id("alias/alices")
            .plaintext(Blob::new(b"x"))
            .send()
            .await,
        "AccessDeniedException"
    );
    let bobs = bob.list_aliases().send().await.unwrap();
    assert!(
        bobs.aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/alices")),
        "bob sees alice's alias: {:?}",
        bobs.aliases()
    );
    let m = alice
        .describe_key()
        .key_id("alias/alices")
        .send()
        .await
        .unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), id, "alias unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_alias_has_one_winner() {
    let env = TestEnv::start();
    let c = env.client("alice");
    let mut keys = Vec::new();
    for _ in 0..4 {
        keys.push(create_key(&c).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let c = c.clone();
        let key = keys[i % keys.len()].clone();
        tasks.spawn(async move {
            let res = c
                .create_alias()
                .alias_name("alias/contended")
                .target_key_id(&key)
                .send()
                .await;
            match res {
                Ok(_) => Some(key),
                Err(e) => {
                    let info = hsm_kms_tests::err_info(&e);
                    assert_eq!(
                        info.code.as_deref(),
                        Some("AlreadyExistsException"),
                        "{e:?}"
                    );
                    None
                }
            }
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        winners.extend(r.unwrap());
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one CreateAlias wins: {winners:?}"
    );
    let m = c
        .describe_key()
        .key_id("alias/contended")
        .send()
        .await
        .unwrap();
    assert_eq!(m.key_metadata().unwrap().key_id(), winners[0]);
}
