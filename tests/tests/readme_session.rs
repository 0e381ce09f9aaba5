//! The README's promise, checked: `scripts/dev-up` starts the pair on a fresh
//! state directory and the README's `aws kms` session works with the real aws
//! CLI, then works again after dev-up is restarted on the same state.
//! Runs `scripts/smoke-aws-cli` against the debug binaries this suite built;
//! skipped with a message where the aws CLI is not installed.

use std::path::Path;
use std::process::Command;

#[test]
fn readme_aws_cli_session_works_against_dev_up() {
    if Command::new("aws").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the aws CLI is not installed (.ci/run installs it)");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(repo.join("scripts/smoke-aws-cli"))
        .env("HSM_KMS_PROFILE", "debug")
        .env("HSM_KMS_NO_BUILD", "1")
        .output()
        .expect("scripts/smoke-aws-cli runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("smoke-aws-cli: ok"),
        "smoke-aws-cli failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
