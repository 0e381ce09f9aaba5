//! `hsm-daemon backup` and `restore`: the master key, wrapped under a fresh
//! backup key that is split M-of-N with Shamir's scheme, so no single file
//! (and no fewer than M share holders) can recover it.
//!
//! `backup` unseals the master key file exactly as `serve` does (same
//! permission checks, same secret sources, `keyfile::unseal_into`), refuses
//! one that holds two generations (a master-key rotation in progress), draws
//! a 256-bit backup key and a 16-byte backup id from the OS RNG, seals what
//! the key file holds under the backup key (`format`: format 1, the one
//! key, for a file as `init` wrote it; format 2, generation, key and audit
//! seed, once a rotation has run), splits the backup key (`shamir`) and writes
//! `backup.hkb` and `share-K-of-N.hks` into the output directory, each 0600
//! and `O_EXCL`. `restore` (in `restore`) goes the other way into a new state
//! directory. Both run without the socket or the sandbox, make the process
//! non-dumpable without core files first, and keep the master key and the
//! backup key only in locked, undumpable pages (`secure_mem`), wiped when the
//! command ends. The file formats are `format`'s; the arithmetic is blahaj's.

mod format;
mod restore;
mod shamir;

pub(crate) use restore::restore;

use crate::config::BackupArgs;
use crate::error::StartupError;
use crate::secure_mem::{KEY_LEN, KeySlab, SizeClass, Slot};
use crate::{keyfile, secret};
use format::{BackupHeader, BackupId, FormatError, Version};
use shamir::ShamirError;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Name of the wrapped master key inside the output directory.
pub(crate) const BACKUP_FILE: &str = "backup.hkb";

/// Why `backup` or `restore` stopped. Shown to the operator; never carries
/// key or share bytes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: FormatError },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: larger than any {what} ({max} bytes at most)", path.display())]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        max: usize,
    },
    #[error("{} already exists; refusing to overwrite it (choose another --out directory)", .0.display())]
    Exists(PathBuf),
    #[error("secret sharing: {0}")]
    Shamir(#[from] ShamirError),
    #[error(
        "{}: this share belongs to backup {share}, not to backup {backup} ({}); use the shares made with that backup",
        path.display(),
        backup_path.display()
    )]
    OtherBackup {
        path: PathBuf,
        share: BackupId,
        backup: BackupId,
        backup_path: PathBuf,
    },
    #[error(
        "{}: share {index} does not match the check the backup recorded for it: it was altered or replaced",
        path.display()
    )]
    AlteredShare { path: PathBuf, index: u8 },
    #[error(
        "{}: says threshold {share_m} of {share_n} shares, but the backup is {m} of {n}: the share or the backup was altered",
        path.display()
    )]
    SplitMismatch {
        path: PathBuf,
        share_m: u8,
        share_n: u8,
        m: u8,
        n: u8,
    },
    #[error(
        "not enough shares: backup {id} needs {need} distinct shares of {n}, {have} given ({given}); \
         pass at least {need} --share files"
    )]
    TooFew {
        id: BackupId,
        need: u8,
        n: u8,
        have: usize,
        given: String,
    },
    #[error(
        "{}: a master-key rotation is in progress (generation {previous} to {current}), so the file \
         holds two master keys; finish it first with `kmsctl rotate-master-key` (run it again until \
         it reports completion), then back up",
        path.display()
    )]
    RotationInProgress {
        path: PathBuf,
        current: u32,
        previous: u32,
    },
    #[error("{}: the restored master key file does not read back as the restored key; removed it", .0.display())]
    Verify(PathBuf),
    #[error("locked key memory: {0}")]
    Memory(nix::Error),
    #[error("hardening the process: {0}")]
    Hardening(nix::Error),
    #[error("the OS RNG failed")]
    Rng,
}

impl BackupError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A 32-byte key (or another short secret) in its own locked, undumpable
/// page, wiped on drop.
struct LockedKey {
    slab: KeySlab,
    slot: Slot,
}

impl std::fmt::Debug for LockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedKey([REDACTED])")
    }
}

/// A locked slab of `slots` slots of `bytes` bytes. Memory that the kernel
/// would not lock is used anyway (this is a one-shot command, not the
/// server) but warned about.
fn locked_slab(what: &str, bytes: usize, slots: u32) -> Result<KeySlab, BackupError> {
    let slab = KeySlab::new(&[SizeClass { bytes, slots }]).map_err(BackupError::Memory)?;
    match slab.verify() {
        Ok(check) if check.is_ok() => {}
        other => warn!(
            ?other,
            "memory for the {what} is not locked or not excluded from core dumps \
             (raise RLIMIT_MEMLOCK); going on, the process is not dumpable"
        ),
    }
    Ok(slab)
}

/// Memory for a master key file's keys as `keyfile::unseal_into` loads
/// them: sealing key, two generations, audit seed, with room to spare.
fn key_file_slab() -> Result<KeySlab, BackupError> {
    locked_slab("master keys", KEY_LEN, 6)
}

impl LockedKey {
    /// A zeroed key slot.
    fn new(what: &str) -> Result<Self, BackupError> {
        Self::with_len(what, KEY_LEN)
    }

    /// A zeroed slot of `len` bytes.
    fn with_len(what: &str, len: usize) -> Result<Self, BackupError> {
        let mut slab = locked_slab(what, len, 1)?;
        let slot = slab
            .alloc(len)
            .ok_or(BackupError::Memory(nix::Error::ENOMEM))?;
        Ok(Self { slab, slot })
    }

    fn bytes(&self) -> Result<&[u8], BackupError> {
        self.slab
            .bytes(self.slot)
            .ok_or(BackupError::Memory(nix::Error::EINVAL))
    }

    fn bytes_mut(&mut self) -> Result<&mut [u8], BackupError> {
        self.slab
            .bytes_mut(self.slot)
            .ok_or(BackupError::Memory(nix::Error::EINVAL))
    }

    fn get(&self) -> Result<&[u8; KEY_LEN], BackupError> {
        self.slab
            .key(self.slot)
            .ok_or(BackupError::Memory(nix::Error::EINVAL))
    }

    fn get_mut(&mut self) -> Result<&mut [u8; KEY_LEN], BackupError> {
        self.slab
            .key_mut(self.slot)
            .ok_or(BackupError::Memory(nix::Error::EINVAL))
    }
}

/// No core file, not dumpable (no ptrace by others), private umask: set
/// before any key is read.
fn harden() -> Result<(), BackupError> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(BackupError::Hardening)?;
    nix::sys::prctl::set_dumpable(false).map_err(BackupError::Hardening)
}

/// Reads at most `max` bytes of `path` into a zeroizing buffer that never
/// reallocates.
fn read_bounded(
    path: &Path,
    max: usize,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io(path, e))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(max + 1));
    file.take((max + 1) as u64)
        .read_to_end(&mut buf)
        .map_err(|e| BackupError::io(path, e))?;
    if buf.len() > max {
        return Err(BackupError::TooLarge {
            path: path.to_owned(),
            what,
            max,
        });
    }
    Ok(buf)
}

/// Creates `path` (mode 0600, `O_EXCL`) with `bytes`, synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => BackupError::Exists(path.to_owned()),
            _ => BackupError::io(path, e),
        })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(BackupError::io(path, e));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(dir, e))
}

/// Checks `2 <= m <= n <= 255`, with a message for each way it can fail.
fn check_split(m: u32, n: u32) -> Result<(u8, u8), BackupError> {
    if m < 2 {
        return Err(BackupError::Usage(format!(
            "--threshold {m}: a threshold below 2 would let a single share restore the master \
             key; use 2 or more"
        )));
    }
    if n > 255 {
        return Err(BackupError::Usage(format!(
            "--shares {n}: at most 255 shares"
        )));
    }
    if m > n {
        return Err(BackupError::Usage(format!(
            "--threshold {m} is more than --shares {n}: the backup could never be restored"
        )));
    }
    let m = u8::try_from(m).map_err(|_| BackupError::Usage("--threshold too large".into()))?;
    let n = u8::try_from(n).map_err(|_| BackupError::Usage("--shares too large".into()))?;
    Ok((m, n))
}

/// The backup format that carries `keys` (loaded into `slab`) exactly:
/// format 1 when they are what `init` writes (generation 1, the audit seed
/// derived from the key, as a format 1 key file implies), else format 2.
fn version_for(slab: &KeySlab, keys: &keyfile::MasterKeys) -> Result<Version, BackupError> {
    let missing = || BackupError::Memory(nix::Error::EINVAL);
    if keys.current.number != protocol::token::FIRST_GENERATION {
        return Ok(Version::Two);
    }
    let master = slab.key(keys.current.slot).ok_or_else(missing)?;
    let seed = slab.key(keys.audit_seed).ok_or_else(missing)?;
    let mut derived = LockedKey::new("audit seed")?;
    crate::audit_key::seed_from_master(master, derived.get_mut()?).map_err(|_| BackupError::Rng)?;
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        derived.get()?.as_slice(),
        seed.as_slice(),
    )) {
        Ok(Version::One)
    } else {
        Ok(Version::Two)
    }
}

/// The payload of `version` for the current generation of `keys` (loaded
/// into `slab`), in locked memory.
fn payload_of(
    slab: &KeySlab,
    keys: &keyfile::MasterKeys,
    version: Version,
) -> Result<LockedKey, BackupError> {
    let missing = || BackupError::Memory(nix::Error::EINVAL);
    let master = slab.key(keys.current.slot).ok_or_else(missing)?;
    let mut payload = LockedKey::with_len("backup payload", version.payload_len())?;
    match version {
        Version::One => payload.bytes_mut()?.copy_from_slice(master),
        Version::Two => {
            let seed = slab.key(keys.audit_seed).ok_or_else(missing)?;
            format::encode_payload_v2(keys.current.number, master, seed, payload.bytes_mut()?)
                .map_err(|_| missing())?;
        }
    }
    Ok(payload)
}

/// The file name of share `k` of `n`.
pub(crate) fn share_file_name(k: u8, n: u8) -> String {
    format!("share-{k}-of-{n}.hks")
}

/// Restores from the files about to be written, with the first M and the
/// last M shares, and compares with `master`: a backup that cannot be
/// restored must fail now, not on the day it is needed.
fn self_check(
    wrapped: &[u8],
    shares: &[Zeroizing<[u8; format::SHARE_LEN]>],
    m: u8,
    payload: &[u8],
) -> Result<(), BackupError> {
    let failed = || {
        BackupError::Usage(
            "self-check failed: the new backup does not restore the master key; nothing written"
                .into(),
        )
    };
    let parsed = shares
        .iter()
        .map(|s| format::parse_share(s.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| failed())?;
    let m_us = usize::from(m);
    for pick in [&parsed[..m_us], &parsed[parsed.len() - m_us..]] {
        let points: Vec<_> = pick.iter().map(|s| &s.point).collect();
        let mut key = LockedKey::new("backup key")?;
        shamir::combine(&points, m, key.get_mut()?)?;
        let mut back = LockedKey::with_len("backup payload", payload.len())?;
        format::open_backup(wrapped, key.get()?, back.bytes_mut()?).map_err(|_| failed())?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(back.bytes()?, payload)) {
            return Err(failed());
        }
    }
    Ok(())
}

/// Runs `hsm-daemon backup`: prints the backup id and the files written.
///
/// # Errors
/// [`BackupError`] naming what is wrong and, where it applies, the fix.
pub(crate) fn backup(args: BackupArgs) -> Result<(), BackupError> {
    let (m, n) = check_split(args.threshold, args.shares)?;
    harden()?;
    crate::config::check_private(&args.state_dir, true)?;
    let key_path = keyfile::path_in(&args.state_dir);
    crate::config::check_private(&key_path, false)?;
    let format = keyfile::check(&key_path)?;
    let source = secret::resolve(args.secret.secret_file, args.secret.secret_fd)?;

    let mut paths = vec![args.out.join(BACKUP_FILE)];
    paths.extend((1..=n).map(|k| args.out.join(share_file_name(k, n))));
    if let Some(p) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        return Err(BackupError::Exists(p.clone()));
    }

    let mut slab = key_file_slab()?;
    let (_, keys, _) = {
        let secret = source.as_ref().map(secret::read).transpose()?;
        keyfile::unseal_into(
            &key_path,
            secret.as_ref(),
            args.secret.dev_plain_key,
            &mut slab,
        )?
    };
    if let Some(previous) = keys.previous {
        return Err(BackupError::RotationInProgress {
            path: key_path,
            current: keys.current.number,
            previous: previous.number,
        });
    }
    let version = version_for(&slab, &keys)?;
    let generation = keys.current.number;
    let payload = payload_of(&slab, &keys, version)?;
    drop(slab);
    if format == keyfile::Format::Plain {
        warn!("backing up a plain (unsealed) development master key");
    }
    let mut backup_key = LockedKey::new("backup key")?;
    crate::crypto::fill_random(backup_key.get_mut()?).map_err(|_| BackupError::Rng)?;
    let mut id = [0u8; format::ID_LEN];
    crate::crypto::fill_random(&mut id).map_err(|_| BackupError::Rng)?;
    let id = BackupId(id);

    let (shares, checks): (Vec<_>, Vec<_>) = shamir::split(backup_key.get()?, m, n)?
        .iter()
        .map(|p| format::encode_share(id, m, n, p))
        .unzip();
    let header = BackupHeader {
        version,
        id,
        m,
        n,
        checks,
    };
    let wrapped =
        format::seal_backup(&header, backup_key.get()?, payload.bytes()?).map_err(|source| {
            BackupError::File {
                path: paths[0].clone(),
                source,
            }
        })?;
    drop(backup_key);
    self_check(&wrapped, &shares, m, payload.bytes()?)?;
    drop(payload);
    // The key schedules and copies made while sealing were on this stack.
    crate::secure_mem::stack::scrub();

    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.out)
        .map_err(|e| BackupError::io(&args.out, e))?;
    let contents = std::iter::once(wrapped.as_slice()).chain(shares.iter().map(|s| s.as_slice()));
    let mut written: Vec<&Path> = Vec::with_capacity(paths.len());
    for (path, bytes) in paths.iter().zip(contents) {
        if let Err(e) = write_new(path, bytes) {
            // All or nothing: a partial set of shares is worse than none.
            for done in written {
                let _ = std::fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    sync_dir(&args.out)?;
    info!(backup_id = %id, generation, threshold = m, shares = n, out = %args.out.display(), "backup written");
    let what = match version {
        Version::One => "master key".to_owned(),
        Version::Two => format!("master key (generation {generation}) and audit seed"),
    };
    println!(
        "backup {id}: {what} wrapped in {}; {n} shares, any {m} of which restore it:",
        paths[0].display()
    );
    for p in &paths[1..] {
        println!("  {}", p.display());
    }
    println!("hand each share to a different holder; keep no two together with the backup file");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_check_catches_a_backup_that_would_not_restore() {
        let key = [0x31u8; KEY_LEN];
        let master = [0x42u8; KEY_LEN];
        let id = BackupId([5; format::ID_LEN]);
        let (shares, checks): (Vec<_>, Vec<_>) = shamir::split(&key, 2, 3)
            .expect("split")
            .iter()
            .map(|p| format::encode_share(id, 2, 3, p))
            .unzip();
        let header = BackupHeader {
            version: Version::One,
            id,
            m: 2,
            n: 3,
            checks,
        };
        let wrapped = format::seal_backup(&header, &key, &master).expect("seal");
        self_check(&wrapped, &shares, 2, &master).expect("good backup");
        let msg = self_check(&wrapped, &shares, 2, &[0x43u8; KEY_LEN])
            .expect_err("other master")
            .to_string();
        assert!(msg.contains("self-check failed"), "{msg}");
        let other = format::seal_backup(&header, &[0x32u8; KEY_LEN], &master).expect("seal");
        assert!(
            self_check(&other, &shares, 2, &master).is_err(),
            "other key"
        );
    }

    #[test]
    fn split_parameters_are_checked_with_clear_messages() {
        let msg = check_split(1, 5).expect_err("m=1").to_string();
        assert!(msg.contains("single share"), "{msg}");
        let msg = check_split(0, 5).expect_err("m=0").to_string();
        assert!(msg.contains("below 2"), "{msg}");
        let msg = check_split(6, 5).expect_err("m>n").to_string();
        assert!(msg.contains("more than --shares 5"), "{msg}");
        let msg = check_split(3, 256).expect_err("n>255").to_string();
        assert!(msg.contains("at most 255"), "{msg}");
        assert_eq!(check_split(2, 2).expect("2 of 2"), (2, 2));
        assert_eq!(check_split(255, 255).expect("255"), (255, 255));
    }
}
