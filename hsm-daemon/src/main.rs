//! `hsm-daemon`: the software HSM process.
//!
//! `init` creates the state directory and a master key. `serve` runs, in this
//! order: arguments -> validated config -> process hardening -> master key
//! into locked memory (checked with the kernel) -> keystore actor -> socket
//! server -> wait for SIGTERM/SIGINT -> drain, wipe, remove the socket. It
//! prints `READY unix:PATH` on stdout once listening; logs go to stderr. The
//! runtime is tokio's `current_thread`: the work per request is microseconds,
//! so cross-thread wake-ups would cost more than they save.

mod config;
mod crypto;
mod error;
mod handlers;
mod hardening;
mod keyfile;
mod keystore;
mod secure_mem;
mod server;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use config::{ServeArgs, ServeConfig};
use secure_mem::KeySlab;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// Slots of locked memory: one for the master key, the rest cache CMKs.
const KEY_SLOTS: u32 = 1025;

#[derive(Debug, Parser)]
#[command(name = "hsm-daemon", version, about = "Software HSM for hsm-kms")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create the state directory (0700) and a new master key (0600).
    Init {
        /// Directory to create the master key in.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
    },
    /// Serve the HSM protocol on a Unix socket.
    Serve(ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Cmd::Init { state_dir } => init(state_dir),
        Cmd::Serve(args) => serve(args),
    };
    if let Err(e) = result {
        eprintln!("hsm-daemon: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn init(state_dir: PathBuf) -> anyhow::Result<()> {
    let path = keyfile::init(&state_dir)?;
    info!(path = %path.display(), "master key created");
    println!("master key created at {}", path.display());
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = ServeConfig::from_args(args)?;
    hardening::apply().context("hardening the process")?;

    let mut slab = KeySlab::new(KEY_SLOTS).context("mapping key memory")?;
    let master = slab.alloc().context("no slot for the master key")?;
    let slot = slab
        .key_mut(master)
        .context("master key slot out of range")?;
    keyfile::load_into(&cfg.master_key, slot)?;
    let check = slab
        .verify()
        .context("reading /proc/self to check key memory")?;
    if check.is_ok() {
        info!(
            vm_lck_kb = check.vm_lck_kb,
            "key memory is locked and excluded from core dumps"
        );
    } else if cfg.allow_unlocked_memory {
        warn!(
            ?check,
            "!!! KEY MEMORY IS NOT LOCKED OR NOT EXCLUDED FROM DUMPS; \
             --allow-unlocked-memory is for development only !!!"
        );
    } else {
        bail!(
            "key memory is not locked and undumpable ({check:?}); raise RLIMIT_MEMLOCK \
             (e.g. LimitMEMLOCK= in systemd) or, for development only, pass \
             --allow-unlocked-memory"
        );
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(cfg, keystore::Keystore::new(slab, master)))
}

async fn run(cfg: ServeConfig, keystore: keystore::Keystore) -> anyhow::Result<()> {
    let (handle, keystore_task) = keystore.spawn();
    let listener = server::bind(&cfg)?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server_task = tokio::spawn(server::serve(
        listener,
        cfg.allow_uids.clone(),
        handle,
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
    // Every handle is gone now, so the actor ends and wipes the key memory.
    if let Err(e) = keystore_task.await {
        warn!(error = %e, "keystore task ended abnormally");
    }
    server::remove_socket(&cfg.socket);
    info!("stopped");
    Ok(())
}
