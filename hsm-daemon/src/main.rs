//! `hsm-daemon`: the software HSM process.
//!
//! `init` creates the state directory and a master key. `serve` runs, in this
//! order: arguments -> validated config -> process hardening -> master key
//! into locked memory (checked with the kernel) -> keystore thread -> socket
//! server -> wait for SIGTERM/SIGINT -> drain, wipe, remove the socket. It
//! prints `READY unix:PATH` on stdout once listening; logs go to stderr. The
//! runtime is tokio's `current_thread`, run on the keystore's thread (locked
//! stack, see `keystore`) while the main thread waits: the work per request
//! is microseconds, so cross-thread wake-ups would cost more than they save.

mod asym;
mod audit_key;
mod backup;
mod config;
mod crypto;
mod error;
mod handlers;
mod hardening;
mod keyfile;
mod keygen;
mod keystore;
mod sandbox;
mod seal;
mod secret;
mod secure_mem;
mod server;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use config::{ServeArgs, ServeConfig};
use secure_mem::{KeySlab, MemCheck, SizeClass};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// Locked key memory: 32-byte slots for the master keys (current, previous
/// during a rotation), the audit seed, the sealing key and cached AES CMKs,
/// and larger classes for variable-size material (HMAC and EC keys; RSA
/// private keys in DER, up to about 2.5 KB for RSA-4096).
const SLAB_CLASSES: [SizeClass; 3] = [
    SizeClass {
        bytes: secure_mem::KEY_LEN,
        slots: 1028,
    },
    SizeClass {
        bytes: 256,
        slots: 64,
    },
    SizeClass {
        bytes: 4096,
        slots: 64,
    },
];

#[derive(Debug, Parser)]
#[command(name = "hsm-daemon", version, about = "Software HSM for hsm-kms")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Log format on stderr: `human` lines or one JSON object per line.
    /// The level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create the state directory (0700) and a new master key (0600),
    /// sealed under the operator secret.
    Init(InitArgs),
    /// Serve the HSM protocol on a Unix socket.
    Serve(ServeArgs),
    /// Export the master key wrapped under a fresh backup key split into N
    /// Shamir shares, M of which restore it.
    Backup(config::BackupArgs),
    /// Restore a master key into a new state directory from a backup and at
    /// least M of its shares.
    Restore(config::RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory to create the master key in.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    #[command(flatten)]
    secret: config::SecretArgs,
    /// Argon2id memory cost in KiB (stored in the sealed file).
    #[arg(long, value_name = "KIB", default_value_t = seal::KdfParams::DEFAULT.m_kib)]
    kdf_memory_kib: u32,
    /// Argon2id passes (stored in the sealed file).
    #[arg(long, value_name = "N", default_value_t = seal::KdfParams::DEFAULT.t)]
    kdf_iterations: u32,
    /// Argon2id lanes (stored in the sealed file).
    #[arg(long, value_name = "N", default_value_t = seal::KdfParams::DEFAULT.p)]
    kdf_parallelism: u32,
}

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Cmd::Init(args) => init(args),
        Cmd::Serve(args) => serve(args),
        Cmd::Backup(args) => backup::backup(args).map_err(Into::into),
        Cmd::Restore(args) => backup::restore(args).map_err(Into::into),
    };
    if let Err(e) = result {
        eprintln!("hsm-daemon: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn warn_dev_plain() {
    warn!(
        "!!! --dev-plain-key: the master key is stored UNSEALED; anyone who can read the \
         state directory has it. Development only !!!"
    );
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let source = secret::resolve(args.secret.secret_file, args.secret.secret_fd)?;
    let path = match (source, args.secret.dev_plain_key) {
        (Some(_), true) => bail!("give either an operator secret or --dev-plain-key, not both"),
        (None, false) => bail!(
            "init needs the operator secret that will seal the master key: --secret-file PATH, \
             --secret-fd N or $CREDENTIALS_DIRECTORY/{} (or --dev-plain-key for development)",
            secret::CREDENTIAL_NAME
        ),
        (None, true) => {
            warn_dev_plain();
            keyfile::init(&args.state_dir, &keyfile::Protection::DevPlain)?
        }
        (Some(source), false) => {
            let params = seal::KdfParams {
                m_kib: args.kdf_memory_kib,
                t: args.kdf_iterations,
                p: args.kdf_parallelism,
            }
            .check()?;
            let secret = secret::read(&source)?;
            keyfile::init(
                &args.state_dir,
                &keyfile::Protection::Sealed(&secret, params),
            )?
        }
    };
    info!(path = %path.display(), "master key created");
    println!("master key created at {}", path.display());
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = ServeConfig::from_args(args)?;
    hardening::drop_privileges(cfg.user.as_deref()).context("dropping privileges")?;
    hardening::apply().context("hardening the process")?;

    let mut slab = KeySlab::new(&SLAB_CLASSES).context("mapping key memory")?;
    let secret = cfg.secret.as_ref().map(secret::read).transpose()?;
    let (format, keys) = keyfile::load(
        &cfg.state_dir,
        secret.as_ref(),
        cfg.dev_plain_key,
        &mut slab,
    )?;
    drop(secret);
    // The derived sealing key and its cipher state were on this stack.
    secure_mem::stack::scrub();
    match format {
        keyfile::Format::Sealed => info!("master key unsealed"),
        keyfile::Format::Plain => warn_dev_plain(),
    }
    info!(
        generation = keys.current.number,
        rotation_in_progress = keys.previous.is_some(),
        "master key generation"
    );
    let state_fd = keys.file.as_ref().map(keyfile::KeyFile::dir_fd);
    let check = slab
        .verify()
        .context("reading /proc/self to check key memory")?;
    require_locked(&cfg, "key memory", check)?;
    let socket_dir = cfg
        .socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_owned();
    // Started before the sandbox, which allows no new threads.
    let (keygen, keygen_check) = keygen::Keygen::spawn().context("starting the keygen thread")?;
    require_locked(&cfg, "keygen thread stack", keygen_check)?;
    match sandbox::landlock(&cfg.state_dir, &socket_dir).context("landlock")? {
        sandbox::LandlockOutcome::Full => info!(
            state_dir = %cfg.state_dir.display(),
            socket_dir = %socket_dir.display(),
            "landlock: fully enforced (state dir: read, and master.key replacement; socket dir; no TCP)"
        ),
        sandbox::LandlockOutcome::Partial => {
            warn!("landlock: partially enforced (older kernel ABI): filesystem confinement only")
        }
        sandbox::LandlockOutcome::Unsupported => {
            warn!("landlock: NOT enforced (the kernel does not support it); seccomp still applies")
        }
    }
    // The runtime runs on the keystore's thread, whose stack is locked, so
    // requests reach the keystore without a hop between threads.
    let keystore_thread = keystore::Keystore::new(slab, keys)
        .spawn(move |stack_check, handle| {
            require_locked(&cfg, "keystore thread stack", stack_check)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, Box::pin(run(cfg, handle, keygen, state_fd)))
        })
        .context("starting the keystore thread")?;
    let result = match keystore_thread.join() {
        Ok(result) => result.context("locking the keystore thread's stack")?,
        Err(_) => bail!("keystore thread ended abnormally"),
    };
    info!("stopped");
    result
}

/// Refuses to go on when `what` is not locked and undumpable, unless the
/// development flag allows it (loudly).
fn require_locked(cfg: &ServeConfig, what: &str, check: MemCheck) -> anyhow::Result<()> {
    if check.is_ok() {
        info!(
            vm_lck_kb = check.vm_lck_kb,
            "{what} is locked and excluded from core dumps"
        );
    } else if cfg.allow_unlocked_memory {
        warn!(
            ?check,
            "!!! {what} IS NOT LOCKED OR NOT EXCLUDED FROM DUMPS; \
             --allow-unlocked-memory is for development only !!!"
        );
    } else {
        bail!(
            "{what} is not locked and undumpable ({check:?}); raise RLIMIT_MEMLOCK \
             (e.g. LimitMEMLOCK= in systemd) or, for development only, pass \
             --allow-unlocked-memory"
        );
    }
    Ok(())
}

async fn run(
    cfg: ServeConfig,
    handle: keystore::KeystoreHandle,
    keygen: keygen::Keygen,
    state_fd: Option<std::os::fd::RawFd>,
) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let listener = server::bind(&cfg)?;
    sandbox::seccomp(state_fd).context("installing the seccomp filter")?;
    info!("seccomp: allow-list installed on every thread (anything else kills the process)");
    #[cfg(debug_assertions)]
    if cfg.debug_forbidden_syscall {
        sandbox::attempt_forbidden_syscall();
        bail!("the forbidden syscall was allowed: seccomp is not working");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server_task = tokio::task::spawn_local(server::serve(
        listener,
        cfg.allow_uids.clone(),
        handle,
        keygen,
        stopped,
    ));
    info!(
        socket = %cfg.socket.display(),
        allow_uids = ?cfg.allow_uids,
        "listening"
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY unix:{}", cfg.socket.display()).context("writing READY")?;
        out.flush().context("flushing READY")?;
    }
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        _ = sigint.recv() => info!("SIGINT: shutting down"),
    }
    let _ = stop.send(true);
    if let Err(e) = server_task.await {
        warn!(error = %e, "server task ended abnormally");
    }
    server::remove_socket(&cfg.socket);
    Ok(())
}
