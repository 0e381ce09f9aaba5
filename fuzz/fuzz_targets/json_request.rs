//! The AWS JSON 1.1 entry point on arbitrary requests:
//! `kms_frontend::api::aws_json::dispatch` (decode the body into the typed
//! request of the `X-Amz-Target` operation, validate, authorize, run the
//! service) over a real SQLite store seeded with four keys (symmetric,
//! disabled symmetric, HMAC, P-256) and an alias owned by the caller. No
//! hsm-daemon is behind the client, so an operation that gets through every
//! check meets "hsm-daemon is unavailable".
//!
//! Input: the operation name (`Encrypt`, ...), a newline, the JSON body, as
//! in the seed corpus of bodies sent by the AWS SDK for Rust.
//!
//! Properties: never panics; every reply is 200 or an AWS-shaped error
//! (`{"__type", "message"}`, with the `x-amzn-ErrorType` name); the only
//! server error is the daemon being unavailable (any other 5xx means an
//! input reached an internal failure).
//!
//! The store keeps what successful writes made (aliases, tags, grants,
//! policies), so a run is not fully deterministic; a crash input replays
//! against a fresh store.
#![no_main]

use kms_frontend::api::aws_json::dispatch;
use kms_frontend::hsm_client::HsmClient;
use kms_frontend::principal::Principal;
use kms_frontend::service::{Kms, KmsSettings};
use kms_frontend::store::{KeyRow, KeyState, SqliteStore, Store, VersionRow};
use libfuzzer_sys::fuzz_target;
use protocol::KeyToken;
use std::sync::OnceLock;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
/// (key id, spec, usage, state)
const KEYS: [(&str, &str, &str, KeyState); 4] = [
    ("11111111-1111-4111-8111-111111111111", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", KeyState::Enabled),
    ("22222222-2222-4222-8222-222222222222", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", KeyState::Disabled),
    ("33333333-3333-4333-8333-333333333333", "HMAC_256", "GENERATE_VERIFY_MAC", KeyState::Enabled),
    ("44444444-4444-4444-8444-444444444444", "ECC_NIST_P256", "SIGN_VERIFY", KeyState::Enabled),
];

struct World {
    runtime: tokio::runtime::Runtime,
    kms: Kms,
    principal: Principal,
    _dir: tempfile::TempDir,
}

fn alice() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
        account_id: ACCOUNT.into(),
        access_key_id: "AKIDEXAMPLE".into(),
        admin: false,
    }
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        // tmpfs when there is one: the store syncs every commit.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("tempdir");
        let db = dir.path().join("kms.db");
        let principal = alice();
        {
            let store = SqliteStore::open(&db).expect("store");
            for (id, spec, usage, state) in KEYS {
                let key = KeyRow {
                    key_id: id.into(),
                    arn: format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}"),
                    owner_arn: principal.arn.clone(),
                    description: "fuzz".into(),
                    key_spec: spec.into(),
                    key_usage: usage.into(),
                    origin: "AWS_KMS".into(),
                    key_state: state,
                    creation_date: 1_700_000_000,
                    enabled: state == KeyState::Enabled,
                    deletion_date: None,
                    pending_window_days: None,
                    current_version: 1,
                };
                let version = VersionRow {
                    key_id: id.into(),
                    version: 1,
                    token: KeyToken(vec![7; 40]),
                    created_at: 1_700_000_000,
                    rotation_type: None,
                };
                store.insert_key(&key, &version).expect("seed key");
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let hsm = HsmClient::new(dir.path().join("no-daemon.sock"));
        let kms = runtime
            .block_on(Kms::open(
                KmsSettings {
                    db_path: db,
                    region: REGION.into(),
                    account_id: ACCOUNT.into(),
                },
                hsm,
            ))
            .expect("open the KMS");
        runtime
            .block_on(kms.create_alias(&principal, "alias/fuzz", KEYS[0].0))
            .expect("seed alias");
        World {
            runtime,
            kms,
            principal,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(op) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default();
    let target = format!("TrentService.{}", op.trim_end_matches('\r'));
    let w = world();
    let reply = w
        .runtime
        .block_on(dispatch(&w.kms, &w.principal, "fuzz", &target, body));
    if reply.status == 200 {
        assert!(reply.error_type.is_none());
        if !reply.body.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&reply.body).expect("200 body is JSON");
        }
        return;
    }
    assert!(
        (400..600).contains(&reply.status),
        "status {}",
        reply.status
    );
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("error body is JSON");
    let name = reply.error_type.expect("an error names its type");
    assert_eq!(v["__type"], name);
    let message = v["message"].as_str().expect("an error has a message");
    if reply.status >= 500 {
        assert_eq!(
            (name, message),
            ("KMSInternalException", "hsm-daemon is unavailable"),
            "a server error other than the missing daemon"
        );
    }
});
