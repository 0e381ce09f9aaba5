//! The same service through boto3 (botocore's own SigV4 signer and HTTP/1.1):
//! runs `tests/boto3_smoke.py`; skipped with a message when python3 or boto3
//! is missing.

use std::process::Command;

use hsm_kms_tests::TestEnv;

fn boto3_available() -> bool {
    Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn boto3_smoke() {
    if !boto3_available() {
        eprintln!("SKIPPED boto3_smoke: python3 with boto3 is not installed");
        return;
    }
    let env = TestEnv::start();
    let p = env.principal("alice");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("boto3_smoke.py");
    let out = Command::new("python3")
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KMS_ENDPOINT", env.endpoint())
        .env("KMS_CA", env.ca_path())
        .env("KMS_ACCESS_KEY_ID", &p.access_key_id)
        .env("KMS_SECRET_ACCESS_KEY", &p.secret_access_key)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 smoke failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
