//! `scripts/bench --ceiling`'s fixture, `kms-frontend/examples/
//! transport_ceiling.rs`, driven as the script drives it: started from a
//! frontend config, it prints the frontend's `READY` line (with the dev CA
//! it made), and `kmsctl bench` runs each operation of the ceiling table
//! against it over HTTPS (after the bench's own CreateKey and, for Decrypt,
//! Encrypt) with no error. It answers without checking signatures: it is
//! not a KMS, so nothing here is about access.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hsm_kms_tests::bins::{bin_path, example_path};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the fixture when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_ceiling_answers_every_operation_of_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let (akid, secret) = (
        "AKIACEILINGTEST23456",
        "c3VyZWx5LW5vdC1hLXJlYWwtc2VjcmV0LWtleQ00",
    );
    let config = dir.path().join("frontend.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{state}\"\nhsm_socket = \"{sock}\"\n\
             region = \"us-east-1\"\naccount_id = \"111122223333\"\n\
             [[principals]]\narn = \"arn:aws:iam::111122223333:user/bench\"\n\
             access_key_id = \"{akid}\"\nsecret_access_key = \"{secret}\"\n",
            state = dir.path().join("frontend").display(),
            sock = dir.path().join("hsm.sock").display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(example_path("transport_ceiling"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).unwrap();
    let (url, ca) = ready
        .trim()
        .strip_prefix("READY ")
        .and_then(|rest| rest.split_once(" ca="))
        .unwrap_or_else(|| panic!("not a READY line with a CA: {ready:?}"));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    for op in ["generate-data-key", "encrypt", "decrypt"] {
        let out = Command::new(bin_path("kmsctl"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_ACCESS_KEY_ID", akid)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", url)
            .env("AWS_CA_BUNDLE", ca)
            .args(["--json", "bench", "--op", op, "--requests", "40"])
            .args(["--connections", "2", "--threads", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{op}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], 40, "{op}: {v}");
        assert_eq!(v["errors"], serde_json::json!({}), "{op}: {v}");
    }
}
