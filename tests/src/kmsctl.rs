//! Running the `kmsctl` binary against a [`TestEnv`]: a `Command` whose
//! environment points at the env's frontend exactly as a user would set it
//! for the aws CLI (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_CA_BUNDLE`), with every other `AWS_*`
//! variable removed and `HOME` set to the env's temp directory so no
//! `~/.aws` file of the machine leaks in.

use std::ffi::OsStr;
use std::process::{Command, Output};

use crate::bins::bin_path;
use crate::env::TestEnv;

/// What a kmsctl run printed and how it exited.
#[derive(Debug)]
pub struct KmsctlOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl KmsctlOutput {
    /// The stdout parsed as JSON (for `--json` runs).
    ///
    /// # Panics
    /// When the run failed or stdout is not JSON.
    pub fn json(&self) -> serde_json::Value {
        assert!(self.success, "kmsctl failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("kmsctl stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl From<Output> for KmsctlOutput {
    fn from(o: Output) -> Self {
        Self {
            success: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl TestEnv {
    /// A `kmsctl` command signed as principal `who`, pointed at this env.
    pub fn kmsctl_command(&self, who: &str) -> Command {
        let p = self.principal(who);
        let mut cmd = Command::new(bin_path("kmsctl"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", self.dir())
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_REGION", crate::REGION)
            .env("AWS_ACCESS_KEY_ID", &p.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &p.secret_access_key)
            .env("AWS_CA_BUNDLE", self.ca_path());
        cmd
    }

    /// Runs `kmsctl ARGS` as `who` and waits for it.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn kmsctl<I, S>(&self, who: &str, args: I) -> KmsctlOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kmsctl_command(who)
            .args(args)
            .output()
            .expect("run kmsctl")
            .into()
    }
}
