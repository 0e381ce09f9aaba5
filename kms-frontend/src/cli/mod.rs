//! `kmsctl`, the command-line client of hsm-kms. This module owns the
//! top-level argument parsing and dispatch only: each group of subcommands
//! lives in its own module (`admin` for the key and alias calls, `files` for
//! envelope encryption of files, `wrap` for key wrapping), all of them talking to the server through the shared
//! [`client::KmsClient`] configured by [`profile::Settings`] exactly like the
//! aws CLI (environment, `~/.aws` files). Output is human-readable by
//! default and the server's JSON with `--json`.

pub mod admin;
pub mod audit;
pub mod bench;
pub mod client;
pub mod envelope;
pub mod esdk;
pub mod files;
pub mod master_key;
pub mod output;
pub mod principal;
pub mod profile;
pub mod wrap;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options every subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Endpoint URL (default: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the profile's endpoint_url).
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE or "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// PEM file of CA certificates to trust instead of the system roots (default: AWS_CA_BUNDLE).
    #[arg(long, global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// Print the server's JSON reply instead of human-readable output.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    /// A client for the resolved endpoint and credentials.
    pub fn client(&self) -> anyhow::Result<client::KmsClient> {
        client::KmsClient::new(&self.settings()?)
    }

    /// The resolved endpoint, region and credentials.
    pub fn settings(&self) -> anyhow::Result<profile::Settings> {
        let overrides = profile::Overrides {
            endpoint: self.endpoint_url.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            ca_bundle: self.ca_bundle.clone(),
        };
        profile::Settings::resolve(&overrides, &profile::process_env)
    }
}

/// kmsctl: the hsm-kms command-line client.
#[derive(Debug, Parser)]
#[command(name = "kmsctl", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand group. Groups added by other features append a variant
/// here and a module beside `admin`.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Encrypt a file under a KMS key (AWS Encryption SDK message format).
    Encrypt(files::EncryptArgs),
    /// Decrypt a file made by `encrypt` or by an AWS Encryption SDK.
    Decrypt(files::DecryptArgs),
    /// Load-test a KMS endpoint: ops/s, latency percentiles, errors by type.
    Bench(bench::BenchArgs),
    /// Wrap key material under a KMS key (AES-KWP, RFC 5649, inside the HSM).
    WrapKey(wrap::WrapArgs),
    /// Unwrap key material made by `wrap-key`.
    UnwrapKey(wrap::UnwrapArgs),
    /// Manage principals (administrators) and share keys.
    #[command(subcommand)]
    Principal(principal::PrincipalCommand),
    /// Read the audit log offline: filter and print records, or `verify`
    /// the hash chain and digest signatures.
    Audit(audit::AuditArgs),
    /// Rotate hsm-daemon's master key and rewrap every stored key token
    /// (administrators; resumable: run it again after an interruption).
    RotateMasterKey(master_key::RotateArgs),
    /// Show the master-key generation and how many tokens a rotation has left.
    MasterKeyStatus,
}

/// Parses the command line, runs the command and maps the outcome to an
/// exit code (errors are printed as `kmsctl: ...` on stderr).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Bench(bench::BenchArgs {
        threads: Some(n), ..
    }) = &cli.command
    {
        builder.worker_threads(usize::from(*n));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kmsctl: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmsctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Admin(cmd) => admin::run(&cli.global, cmd).await,
        Command::Encrypt(args) => files::encrypt(&cli.global, args).await,
        Command::Decrypt(args) => files::decrypt(&cli.global, args).await,
        Command::Bench(args) => bench::run(&cli.global, args).await,
        Command::WrapKey(args) => wrap::wrap(&cli.global, args).await,
        Command::UnwrapKey(args) => wrap::unwrap(&cli.global, args).await,
        Command::Principal(cmd) => principal::run(&cli.global, cmd).await,
        Command::Audit(args) => audit::run(args, cli.global.json),
        Command::RotateMasterKey(args) => master_key::rotate(&cli.global, args).await,
        Command::MasterKeyStatus => master_key::status(&cli.global).await,
    }
}
