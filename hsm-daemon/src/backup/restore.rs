//! `hsm-daemon restore`: M shares and `backup.hkb` back into a master key
//! file in a new state directory.
//!
//! Order matters, so that every refusal happens before any secret is
//! rebuilt and nothing is ever overwritten: an existing master key in the
//! target is refused first; then the backup file is parsed (its trailer names
//! corruption); each share is checked on its own (length, magic, check), then
//! against the backup (same id, same M and N, the check the backup recorded
//! for that index); duplicates are dropped; fewer than M distinct shares is
//! refused naming M. Only then is the backup key interpolated (into locked
//! memory), the master key opened (the GCM tag proves the shares were the
//! right ones) and written as the key file it came from was: a format 1
//! backup as `init` writes a key file (format 1), a format 2 backup as a
//! completed master-key rotation writes one (format 2: the generation, its
//! key and the audit seed, through `keyfile::encode`, the rotation's writer,
//! under a fresh salt), sealed under the operator secret (or plain with
//! `--dev-plain-key`), 0600, `O_EXCL`, in a 0700 directory. Finally the new
//! file is read back through `keyfile::unseal_into`, the loader `serve`
//! uses, and compared with what the backup held.

use super::format::{self, MAX_BACKUP_LEN, SHARE_LEN, ShareFile, Version};
use super::{
    BackupError, LockedKey, harden, key_file_slab, payload_of, read_bounded, sync_dir, version_for,
    write_new,
};
use crate::config::RestoreArgs;
use crate::error::StartupError;
use crate::keyfile;
use crate::seal::{self, KdfParams, SealParams};
use crate::secret::{self, Secret};
use crate::secure_mem::KEY_LEN;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;
use tracing::{info, warn};
use zeroize::Zeroizing;

/// How the restored key is stored.
#[allow(clippy::large_enum_variant)] // reason: one value, made once; boxing would only copy the secret again
enum Protection {
    Sealed(Secret, KdfParams),
    DevPlain,
}

fn protection(args: &RestoreArgs) -> Result<Protection, BackupError> {
    let source = secret::resolve(args.secret.secret_file.clone(), args.secret.secret_fd)?;
    match (source, args.secret.dev_plain_key) {
        (Some(_), true) => Err(BackupError::Usage(
            "give either an operator secret or --dev-plain-key, not both".into(),
        )),
        (None, false) => Err(BackupError::Usage(format!(
            "restore needs the operator secret that will seal the restored master key: \
             --secret-file PATH, --secret-fd N or $CREDENTIALS_DIRECTORY/{} \
             (or --dev-plain-key for development)",
            secret::CREDENTIAL_NAME
        ))),
        (None, true) => Ok(Protection::DevPlain),
        (Some(source), false) => {
            let params = KdfParams {
                m_kib: args.kdf_memory_kib,
                t: args.kdf_iterations,
                p: args.kdf_parallelism,
            }
            .check()
            .map_err(|e| BackupError::Usage(e.to_string()))?;
            Ok(Protection::Sealed(secret::read(&source)?, params))
        }
    }
}

/// Reads and checks every share against the backup; returns the distinct
/// ones, in index order.
fn checked_shares(
    args: &RestoreArgs,
    header: &format::BackupHeader,
) -> Result<Vec<ShareFile>, BackupError> {
    let mut chosen: Vec<ShareFile> = Vec::with_capacity(args.shares.len());
    for path in &args.shares {
        let bytes = read_bounded(path, SHARE_LEN, "share file")?;
        let share = format::parse_share(&bytes).map_err(|source| BackupError::File {
            path: path.clone(),
            source,
        })?;
        if share.id != header.id {
            return Err(BackupError::OtherBackup {
                path: path.clone(),
                share: share.id,
                backup: header.id,
                backup_path: args.backup.clone(),
            });
        }
        if (share.m, share.n) != (header.m, header.n) {
            return Err(BackupError::SplitMismatch {
                path: path.clone(),
                share_m: share.m,
                share_n: share.n,
                m: header.m,
                n: header.n,
            });
        }
        let index = share.point.x;
        let recorded = usize::from(index)
            .checked_sub(1)
            .and_then(|i| header.checks.get(i))
            .ok_or(BackupError::AlteredShare {
                path: path.clone(),
                index,
            })?;
        if !bool::from(recorded.ct_eq(&share.check)) {
            return Err(BackupError::AlteredShare {
                path: path.clone(),
                index,
            });
        }
        if chosen.iter().any(|s| s.point.x == index) {
            info!(path = %path.display(), index, "share given twice; counted once");
            continue;
        }
        chosen.push(share);
    }
    chosen.sort_by_key(|s| s.point.x);
    if chosen.len() < usize::from(header.m) {
        let given = if chosen.is_empty() {
            "none".to_owned()
        } else {
            let list: Vec<String> = chosen.iter().map(|s| s.point.x.to_string()).collect();
            format!("share {}", list.join(", "))
        };
        return Err(BackupError::TooFew {
            id: header.id,
            need: header.m,
            n: header.n,
            have: chosen.len(),
            given,
        });
    }
    Ok(chosen)
}

/// Creates `state_dir` (0700) like `init` and the master key file in it.
fn install(state_dir: &Path, contents: &[u8]) -> Result<PathBuf, BackupError> {
    keyfile::create_state_dir(state_dir)?;
    let path = keyfile::path_in(state_dir);
    write_new(&path, contents).map_err(|e| match e {
        BackupError::Exists(p) => StartupError::KeyExists(p).into(),
        other => other,
    })?;
    sync_dir(state_dir)?;
    Ok(path)
}

/// A format 1 key file (as `init` writes it) holding `master`.
fn key_file_v1(
    protection: &Protection,
    master: &[u8; KEY_LEN],
    key_path: &Path,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    match protection {
        Protection::DevPlain => {
            let mut contents = Zeroizing::new(Vec::with_capacity(keyfile::MAGIC.len() + KEY_LEN));
            contents.extend_from_slice(keyfile::MAGIC);
            contents.extend_from_slice(master);
            Ok(contents)
        }
        Protection::Sealed(secret, params) => {
            let sealed = seal::seal(secret.expose(), *params, master).map_err(|source| {
                StartupError::Seal {
                    path: key_path.to_owned(),
                    source,
                }
            })?;
            Ok(Zeroizing::new(sealed.to_vec()))
        }
    }
}

/// A format 2 key file, as a completed master-key rotation writes it
/// (`keyfile::encode`), holding the generation, key and audit seed of the
/// format 2 `payload`; sealed under a key derived from the operator secret
/// with a fresh salt.
fn key_file_v2(
    protection: &Protection,
    payload: &[u8],
    key_path: &Path,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let (generation, master, seed) = format::split_payload_v2(payload).ok_or_else(|| {
        BackupError::Usage("the backup's payload is not a format 2 payload".into())
    })?;
    let seal_err = |source| {
        BackupError::from(StartupError::Seal {
            path: key_path.to_owned(),
            source,
        })
    };
    match protection {
        Protection::DevPlain => {
            keyfile::encode(None, seed, &[(generation, master)]).map_err(seal_err)
        }
        Protection::Sealed(secret, params) => {
            let mut salt = [0u8; seal::SALT_LEN];
            crate::crypto::fill_random(&mut salt).map_err(|_| BackupError::Rng)?;
            let sealing = SealParams { kdf: *params, salt };
            let mut kek = LockedKey::new("sealing key")?;
            seal::derive_kek(secret.expose(), sealing, kek.get_mut()?).map_err(seal_err)?;
            keyfile::encode(Some((kek.get()?, sealing)), seed, &[(generation, master)])
                .map_err(seal_err)
        }
    }
}

/// Runs `hsm-daemon restore`: prints where the key went and which shares
/// rebuilt it.
///
/// # Errors
/// [`BackupError`] naming the file at fault and what is wrong with it.
pub(crate) fn restore(args: RestoreArgs) -> Result<(), BackupError> {
    harden()?;
    let key_path = keyfile::path_in(&args.state_dir);
    if key_path.symlink_metadata().is_ok() {
        return Err(StartupError::KeyExists(key_path).into());
    }
    let protection = protection(&args)?;
    let wrapped = read_bounded(&args.backup, MAX_BACKUP_LEN, "backup file")?;
    let header = format::parse_backup(&wrapped).map_err(|source| BackupError::File {
        path: args.backup.clone(),
        source,
    })?;
    let shares = checked_shares(&args, &header)?;
    let used: Vec<String> = shares.iter().map(|s| s.point.x.to_string()).collect();

    let mut backup_key = LockedKey::new("backup key")?;
    {
        let points: Vec<_> = shares.iter().map(|s| &s.point).collect();
        super::shamir::combine(&points, header.m, backup_key.get_mut()?)?;
    }
    drop(shares);
    let mut payload = LockedKey::with_len("backup payload", header.version.payload_len())?;
    format::open_backup(&wrapped, backup_key.get()?, payload.bytes_mut()?).map_err(|source| {
        BackupError::File {
            path: args.backup.clone(),
            source,
        }
    })?;
    drop(backup_key);

    if matches!(protection, Protection::DevPlain) {
        warn!(
            "!!! --dev-plain-key: the restored master key is stored UNSEALED; anyone who can \
             read the state directory has it. Development only !!!"
        );
    }
    let contents = match header.version {
        Version::One => key_file_v1(&protection, payload.get()?, &key_path)?,
        Version::Two => key_file_v2(&protection, payload.bytes()?, &key_path)?,
    };
    let path = install(&args.state_dir, &contents)?;
    drop(contents);

    // Read the file back the way `serve` will, and compare with the backup.
    let same = {
        let (secret, dev_plain) = match &protection {
            Protection::Sealed(s, _) => (Some(s), false),
            Protection::DevPlain => (None, true),
        };
        let mut slab = key_file_slab()?;
        match keyfile::unseal_into(&path, secret, dev_plain, &mut slab) {
            Ok((_, keys, _))
                if keys.previous.is_none() && version_for(&slab, &keys)? == header.version =>
            {
                let back = payload_of(&slab, &keys, header.version)?;
                bool::from(back.bytes()?.ct_eq(payload.bytes()?))
            }
            _ => false,
        }
    };
    drop(payload);
    drop(protection);
    crate::secure_mem::stack::scrub();
    if !same {
        let _ = std::fs::remove_file(&path);
        return Err(BackupError::Verify(path));
    }
    info!(backup_id = %header.id, path = %path.display(), shares = ?used, "master key restored");
    if header.version == Version::Two {
        println!(
            "the restored key file is in format 2 (as after a master-key rotation); the audit \
             signing key is the original's"
        );
    }
    println!(
        "master key restored at {} from backup {} (shares {})",
        path.display(),
        header.id,
        used.join(", ")
    );
    Ok(())
}
