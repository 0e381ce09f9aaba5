//! `kmsctl`'s admin subcommands against the real server, configured only
//! through the aws CLI's environment variables (endpoint, region, keys, CA
//! bundle): create, describe, list, aliases, disable/enable, schedule and
//! cancel deletion, with `--json` and human output, AWS errors reported on
//! stderr with a non-zero exit, and credentials read from `~/.aws` files.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hsm_kms_tests::{TestEnv, key_arn};

fn create(env: &TestEnv, who: &str) -> String {
    let out = env.kmsctl(who, ["create-key", "--description", "cli key", "--json"]);
    let v = out.json();
    v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
}

#[test]
fn admin_subcommands_drive_the_key_lifecycle() {
    let env = TestEnv::start();
    let id = create(&env, "alice");

    let d = env.kmsctl("alice", ["describe-key", &id, "--json"]).json();
    assert_eq!(d["KeyMetadata"]["Arn"], key_arn(&id));
    assert_eq!(d["KeyMetadata"]["Description"], "cli key");
    assert_eq!(d["KeyMetadata"]["KeyState"], "Enabled");

    let human = env.kmsctl("alice", ["describe-key", &id]);
    assert!(human.success, "{}", human.stderr);
    assert!(human.stdout.contains(&key_arn(&id)), "{}", human.stdout);
    assert!(human.stdout.contains("Enabled"), "{}", human.stdout);

    let listed = env.kmsctl("alice", ["list-keys", "--json"]).json();
    let ids: Vec<&str> = listed["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    let table = env.kmsctl("alice", ["list-keys"]);
    assert!(table.stdout.contains(&id), "{}", table.stdout);

    let out = env.kmsctl("alice", ["create-alias", "alias/cli", &id]);
    assert!(out.success, "{}", out.stderr);
    let aliases = env.kmsctl("alice", ["list-aliases", "--json"]).json();
    assert!(
        aliases["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["AliasName"] == "alias/cli" && a["TargetKeyId"] == id.as_str()),
        "{aliases}"
    );
    let by_alias = env
        .kmsctl("alice", ["describe-key", "alias/cli", "--json"])
        .json();
    assert_eq!(by_alias["KeyMetadata"]["KeyId"], id.as_str());

    assert!(env.kmsctl("alice", ["disable-key", &id]).success);
    let d = env.kmsctl("alice", ["describe-key", &id, "--json"]).json();
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
    assert!(env.kmsctl("alice", ["enable-key", &id]).success);
    let d = env.kmsctl("alice", ["describe-key", &id, "--json"]).json();
    assert_eq!(d["KeyMetadata"]["KeyState"], "Enabled");

    let s = env
        .kmsctl(
            "alice",
            [
                "schedule-key-deletion",
                &id,
                "--pending-window-in-days",
                "7",
                "--json",
            ],
        )
        .json();
    assert_eq!(s["KeyState"], "PendingDeletion");
    assert_eq!(s["PendingWindowInDays"], 7);
    assert!(env.kmsctl("alice", ["cancel-key-deletion", &id]).success);
    let d = env.kmsctl("alice", ["describe-key", &id, "--json"]).json();
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");

    let out = env.kmsctl("alice", ["delete-alias", "alias/cli"]);
    assert!(out.success, "{}", out.stderr);
    let aliases = env.kmsctl("alice", ["list-aliases", "--json"]).json();
    assert!(
        aliases["Aliases"].as_array().unwrap().is_empty(),
        "{aliases}"
    );
}

#[test]
fn aws_errors_are_reported_with_their_code_and_exit_non_zero() {
    let env = TestEnv::start();
    let id = create(&env, "alice");
    let out = env.kmsctl("bob", ["describe-key", &id]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("AccessDeniedException"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let out = env.kmsctl(
        "alice",
        ["describe-key", "11111111-2222-3333-4444-555555555555"],
    );
    assert!(!out.success);
    assert!(out.stderr.contains("NotFoundException"), "{}", out.stderr);
}

#[test]
fn wrong_secret_is_rejected_by_the_server() {
    let env = TestEnv::start();
    let out = env
        .kmsctl_command("alice")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args(["list-keys"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("InvalidSignatureException"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}

#[test]
fn credentials_and_region_come_from_aws_profile_files() {
    let env = TestEnv::start();
    let p = env.principal("alice");
    let aws = env.dir().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n\n\
             [ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            p.access_key_id, p.secret_access_key
        ),
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile ops]\nregion = {}\nendpoint_url = {}\nca_bundle = {}\n",
            hsm_kms_tests::REGION,
            env.endpoint(),
            env.ca_path().display()
        ),
    )
    .unwrap();
    let out = env
        .kmsctl_command("alice")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_PROFILE", "ops")
        .args(["create-key", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn untrusted_server_certificate_is_refused() {
    let env = TestEnv::start();
    // Another env's dev CA did not sign this server's certificate.
    let other = TestEnv::start();
    let out = env
        .kmsctl_command("alice")
        .env("AWS_CA_BUNDLE", other.ca_path())
        .args(["list-keys"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ConnectionError"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
