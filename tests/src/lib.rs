//! Black-box test harness for hsm-kms: starts the real `hsm-daemon` and
//! `kms-frontend` binaries on a private temp directory (`env`), builds AWS SDK
//! clients that trust only the frontend's dev CA (`client`), sends raw signed
//! HTTPS requests the SDK would not send (`raw`), scans process memory
//! through `/proc` (`memscan`), and looks for a workload's secrets in bytes
//! where they must not be (`leaks`). The suites live in `tests/tests/`; they know the
//! binaries only through ARCHITECTURE.md's contract.

pub mod admin;
pub mod bins;
pub mod client;
pub mod daemon;
pub mod env;
pub mod errors;
pub mod kmsctl;
pub mod leaks;
pub mod memscan;
pub mod ops;
pub mod raw;
pub mod sealed;

pub use admin::CreatedPrincipal;
pub use client::ClientOptions;
pub use env::{EnvOptions, Principal, TestEnv};
pub use errors::{ErrInfo, err_info};
pub use kmsctl::KmsctlOutput;
pub use raw::{RawRequest, RawResponse};

/// The account every test principal belongs to.
pub const ACCOUNT_ID: &str = "111122223333";
/// The region the frontend is configured for.
pub const REGION: &str = "us-east-1";

/// The key ARN AWS returns for `key_id` in our account and region.
pub fn key_arn(key_id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}")
}

/// The alias ARN for `alias_name` (which starts with `alias/`).
pub fn alias_arn(alias_name: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias_name}")
}

/// True when running as root; otherwise prints why `test` is skipped.
/// Reading another process's memory, running the daemon as another user and
/// probing its socket as `nobody` need root.
pub fn running_as_root(test: &str) -> bool {
    let root = nix::unistd::getuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: needs root");
    }
    root
}
