//! `kms-frontend --config FILE`: args -> config -> state dir -> TLS ->
//! hsm_client -> service -> bind -> `READY` line -> server until
//! SIGTERM/SIGINT -> final audit digest. Logs go to stderr (human or JSON
//! per `log_format`; level from `RUST_LOG`, else `log_level`, else `info`);
//! stdout carries the `READY https://127.0.0.1:PORT [ca=PATH]` line, then
//! the audit records if `[audit] stdout = true`.

/// mimalloc: fewer cycles per allocation than glibc under many threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use kms_frontend::audit::Auditor;
use kms_frontend::auth::{Credential, Verifier};
use kms_frontend::config::Config;
use kms_frontend::hsm_client::{HsmClient, HsmClientSettings};
use kms_frontend::principal::Principal;
use kms_frontend::server::{self, App, ServerSettings};
use kms_frontend::service::{Kms, KmsSettings};
use kms_frontend::tls;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The AWS-KMS-compatible HTTPS front end of hsm-kms.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kms-frontend: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    kms_frontend::logging::init(config.log_format, config.log_level.as_deref());
    match run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("kms-frontend: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    ensure_state_dir(&config.state_dir)?;
    if let Some(dir) = &config.hsm_state_dir {
        kms_frontend::isolation::check_daemon_state_dir(dir);
    }
    let tls = tls::load(&config).context("cannot set up TLS")?;
    let hsm = HsmClient::with_settings(
        config.hsm_socket.clone(),
        HsmClientSettings {
            pool_size: config.hsm_connections,
            ..HsmClientSettings::default()
        },
    );
    let kms = Kms::open(
        KmsSettings {
            db_path: config.state_dir.join("kms.db"),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        },
        hsm.clone(),
    )
    .await
    .context("cannot open the KMS state")?;
    let kms = with_dev_clock(kms, &config)?;
    let _scheduler = kms.spawn_scheduler(std::time::Duration::from_secs(
        config.scheduler_interval_secs,
    ));

    let credentials = std::mem::take(&mut config.principals)
        .into_iter()
        .map(|p| Credential {
            principal: Arc::new(Principal {
                arn: p.arn,
                account_id: config.account_id.clone(),
                access_key_id: p.access_key_id,
                admin: p.admin,
            }),
            secret: p.secret_access_key,
        })
        .collect();
    let verifier = Verifier::new(&config.region, "kms", credentials);
    let audit_settings = config.audit.settings(&config.state_dir);
    let audit_dir = audit_settings.dir.clone();
    let audit = Auditor::start(audit_settings, hsm.clone())
        .with_context(|| format!("cannot open the audit log in {}", audit_dir.display()))?;
    let settings = ServerSettings {
        max_body_bytes: config.max_body_bytes,
        max_connections: config.max_connections,
        request_timeout: std::time::Duration::from_secs(config.request_timeout_secs),
        wallet_root_key: config.wallet_root_key.clone(),
        ..ServerSettings::default()
    };
    let app = Arc::new(App {
        kms,
        verifier,
        hsm,
        audit: audit.clone(),
        settings,
    });

    load_runtime_principals(&app).await?;

    let addr = config.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let port = listener.local_addr().context("no local address")?.port();
    let mut ready = format!("READY https://127.0.0.1:{port}");
    if let Some(ca) = &tls.dev_ca {
        ready.push_str(&format!(" ca={}", ca.display()));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}").context("cannot write the READY line")?;
        out.flush().context("cannot flush stdout")?;
    }
    tracing::info!(%addr, port, "listening");

    server::serve(listener, tls.config, app, shutdown_signal()).await;
    audit.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Debug builds: the clock offset file of `dev_clock_offset_file`
/// (config validation refuses it in release builds).
#[cfg(debug_assertions)]
fn with_dev_clock(kms: Kms, config: &Config) -> anyhow::Result<Kms> {
    match &config.dev_clock_offset_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "development clock offset file in use");
            let clock = kms_frontend::service::clock::OffsetFileClock::new(path.clone());
            Ok(kms.with_clock(Arc::new(clock))?)
        }
        None => Ok(kms),
    }
}

#[cfg(not(debug_assertions))]
fn with_dev_clock(kms: Kms, _config: &Config) -> anyhow::Result<Kms> {
    Ok(kms)
}

/// Adds the principals made through the admin API (their secrets opened by
/// hsm-daemon) to the verifier. While the daemon is unreachable this keeps
/// trying in the background, so the frontend still starts and the config's
/// principals work meanwhile; any other failure refuses to start.
async fn load_runtime_principals(app: &Arc<App>) -> anyhow::Result<()> {
    use kms_frontend::error::KmsError;
    let add = |app: &App, loaded: Vec<kms_frontend::service::principals::PrincipalSecret>| {
        let n = loaded.len();
        for p in loaded {
            let arn = p.principal.arn.clone();
            if app
                .verifier
                .add(Credential {
                    principal: Arc::new(p.principal),
                    secret: p.secret,
                })
                .is_err()
            {
                tracing::warn!(principal = %arn, "stored principal clashes with the config; skipped");
            }
        }
        if n > 0 {
            tracing::info!(count = n, "runtime principals loaded");
        }
    };
    match app.kms.load_principals().await {
        Ok(loaded) => {
            add(app, loaded);
            Ok(())
        }
        Err(KmsError::HsmUnavailable | KmsError::DependencyTimeout) => {
            tracing::warn!("hsm-daemon unavailable: runtime principals load in the background");
            let app = Arc::clone(app);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    match app.kms.load_principals().await {
                        Ok(loaded) => {
                            add(&app, loaded);
                            break;
                        }
                        Err(KmsError::HsmUnavailable | KmsError::DependencyTimeout) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "cannot load runtime principals");
                            break;
                        }
                    }
                }
            });
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("cannot load runtime principals: {e}")),
    }
}

/// Creates the state directory (0700) if missing; refuses one that group
/// or others can access.
fn ensure_state_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create state_dir {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot read state_dir {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "state_dir {} is accessible to group or others (mode {:o}); chmod 700 it",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
