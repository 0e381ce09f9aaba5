//! The master key file, `STATE/master.key`: which formats exist, how
//! `init` makes one, how `serve` loads it into locked slots, and how a
//! master-key rotation writes it again.
//!
//! Four formats, told apart by magic and length:
//!
//! ```text
//! HKMSSK01  sealed, one key (generation 1)           what `init` writes
//! HKMSMK01  plain (development), one key (generation 1)
//! HKMSSK02  sealed (`seal`), body below              written by a rotation
//! HKMSMK02  plain: magic | count u8 | body
//! body = audit seed(32) | count x (generation u32 BE | key(32)), current first
//! ```
//!
//! `count` is 1, or 2 while a rotation is in progress (current, previous).
//! The audit seed is the seed of the audit signing key (`audit_key`): for
//! a format 1 file it is derived from the (generation 1) master key, and a
//! rotation carries it into every later file, so the audit public key never
//! changes. The plain formats are only made or accepted with
//! `--dev-plain-key` and always logged as a warning.
//!
//! `init` creates the state directory (0700) and a format 1 file (0600,
//! `O_EXCL`, so an existing key is never overwritten). A rotation replaces
//! the file atomically through [`KeyFile::replace`] (`keyfile/replace`).
//! Permission policy for `serve` is in `config`; what the keystore does with
//! the keys is `keystore`'s.

mod replace;

pub(crate) use replace::KeyFile;

use crate::error::StartupError;
use crate::seal::{self, KdfParams, SEALED_LEN, SealParams};
use crate::secret::Secret;
use crate::secure_mem::{KEY_LEN, KeySlab, Slot};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// First bytes of a plain master key file, format 1.
pub(crate) const MAGIC: &[u8; 8] = b"HKMSMK01";
/// First bytes of a plain master key file, format 2.
pub(crate) const MAGIC_V2: &[u8; 8] = b"HKMSMK02";
/// Exact length of a plain master key file of format 1.
pub(crate) const FILE_LEN: u64 = (MAGIC.len() + KEY_LEN) as u64;
/// One generation in a format 2 body: number and key.
const ENTRY_LEN: usize = 4 + KEY_LEN;
/// Most generations a file holds (current and, during a rotation, previous).
pub(crate) const MAX_KEYS: u8 = 2;

/// Length of a format 2 body holding `count` generations.
pub(crate) const fn body_len(count: u8) -> usize {
    KEY_LEN + count as usize * ENTRY_LEN
}

/// Length of the longest format 2 body.
pub(crate) const MAX_BODY_LEN: usize = body_len(MAX_KEYS);

/// How the master key is (to be) stored.
#[derive(Debug)]
pub(crate) enum Protection<'a> {
    /// Sealed under the operator secret.
    Sealed(&'a Secret, KdfParams),
    /// The plain development format.
    DevPlain,
}
/// Name of the file inside the state directory.
pub(crate) const FILE_NAME: &str = "master.key";

/// Path of the master key inside `state_dir`.
pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Creates `state_dir` (0700) if needed, and refuses one that is group- or
/// other-accessible (what `init` and `restore` both need before writing a
/// master key into it).
///
/// # Errors
/// The directory being group/other-accessible; any I/O failure.
pub(crate) fn create_state_dir(state_dir: &Path) -> Result<(), StartupError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|e| StartupError::io(state_dir, e))?;
    let meta = std::fs::metadata(state_dir).map_err(|e| StartupError::io(state_dir, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StartupError::LoosePermissions {
            path: state_dir.to_owned(),
            mode,
            fix: 0o700,
        });
    }
    Ok(())
}

/// Creates `state_dir` (0700) if needed and a fresh master key in it (0600).
///
/// # Errors
/// [`StartupError::KeyExists`] when a key is already there; the directory
/// being group/other-accessible; any I/O or RNG failure.
pub(crate) fn init(state_dir: &Path, protection: &Protection<'_>) -> Result<PathBuf, StartupError> {
    create_state_dir(state_dir)?;
    let path = path_in(state_dir);
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(StartupError::KeyExists(path));
        }
        Err(e) => return Err(StartupError::io(&path, e)),
    };
    let mut contents = Zeroizing::new([0u8; MAGIC.len() + KEY_LEN]);
    contents[..MAGIC.len()].copy_from_slice(MAGIC);
    let made = crate::crypto::fill_random(&mut contents[MAGIC.len()..])
        .map_err(|_| StartupError::Rng)
        .and_then(|()| match protection {
            Protection::DevPlain => Ok(None),
            Protection::Sealed(secret, params) => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                key.copy_from_slice(&contents[MAGIC.len()..]);
                seal::seal(secret.expose(), *params, &key)
                    .map(Some)
                    .map_err(|source| StartupError::Seal {
                        path: path.clone(),
                        source,
                    })
            }
        });
    let sealed = match made {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let bytes: &[u8] = match &sealed {
        Some(s) => s.as_ref(),
        None => contents.as_ref(),
    };
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Do not leave a half-written key behind for the next `init` to refuse.
        let _ = std::fs::remove_file(&path);
        return Err(StartupError::io(&path, e));
    }
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StartupError::io(state_dir, e))?;
    Ok(path)
}

/// The format of a master key file, from its length and magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Sealed,
    Plain,
}

/// Largest file [`load`] reads.
const MAX_FILE: usize = seal::MAX_SEALED_V2;

fn read_file(path: &Path) -> Result<(Zeroizing<[u8; MAX_FILE + 1]>, usize), StartupError> {
    let mut file = File::open(path).map_err(|e| StartupError::io(path, e))?;
    let mut buf = Zeroizing::new([0u8; MAX_FILE + 1]);
    let mut len = 0;
    while let Some(room) = buf.get_mut(len..).filter(|r| !r.is_empty()) {
        match file.read(room) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(StartupError::io(path, e)),
        }
    }
    Ok((buf, len))
}

fn format_of(path: &Path, bytes: &[u8]) -> Result<Format, StartupError> {
    let bad = |what| StartupError::BadKeyFile {
        path: path.to_owned(),
        what,
    };
    match bytes.get(..8) {
        Some(m) if m == seal::MAGIC.as_slice() => {
            if bytes.len() == SEALED_LEN {
                Ok(Format::Sealed)
            } else {
                Err(bad(
                    "truncated or padded sealed master key file (expected 96 bytes)",
                ))
            }
        }
        Some(m) if m == seal::MAGIC_V2.as_slice() => match seal::seal_params(bytes) {
            Ok(_) => Ok(Format::Sealed),
            Err(_) => Err(bad(
                "truncated, padded or damaged sealed master key file of format 2 \
                 (expected 133 or 169 bytes)",
            )),
        },
        Some(m) if m == MAGIC.as_slice() => {
            if bytes.len() as u64 == FILE_LEN {
                Ok(Format::Plain)
            } else {
                Err(bad(
                    "wrong size for a master key file (expected 40 bytes: HKMSMK01 + 32-byte key)",
                ))
            }
        }
        Some(m) if m == MAGIC_V2.as_slice() => match bytes.get(8) {
            Some(&n) if (1..=MAX_KEYS).contains(&n) && bytes.len() == 9 + body_len(n) => {
                Ok(Format::Plain)
            }
            _ => Err(bad(
                "wrong size for a plain master key file of format 2 (expected 77 or 113 bytes)",
            )),
        },
        _ => Err(bad(
            "not a master key file (bad magic, expected HKMSSK01/02 sealed or HKMSMK01/02 plain)",
        )),
    }
}

/// Checks the file's length and magic without using the key.
///
/// # Errors
/// [`StartupError::BadKeyFile`] or an I/O error.
pub(crate) fn check(path: &Path) -> Result<Format, StartupError> {
    let (buf, len) = read_file(path)?;
    format_of(path, buf.get(..len).unwrap_or_default())
}

/// One master-key generation, held in a locked slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) number: u32,
    pub(crate) slot: Slot,
}

/// The master keys as loaded: the current generation, the previous one
/// while a rotation is in progress, the audit seed, and the file they are
/// written back to (`None` only in unit tests, which persist nothing).
#[derive(Debug)]
pub(crate) struct MasterKeys {
    pub(crate) current: Generation,
    pub(crate) previous: Option<Generation>,
    pub(crate) audit_seed: Slot,
    pub(crate) file: Option<KeyFile>,
}

/// How a file is sealed again: the sealing key (derived at start-up from
/// the operator secret, kept in a locked slot) and the file's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealing {
    pub(crate) kek: Slot,
    pub(crate) params: SealParams,
}

fn alloc_key(slab: &mut KeySlab) -> Result<Slot, StartupError> {
    slab.alloc(KEY_LEN).ok_or(StartupError::BadKeyFile {
        path: PathBuf::new(),
        what: "no locked slot left for the master keys",
    })
}

/// Fills a fresh slot with `bytes` (32 of them).
fn slot_with(slab: &mut KeySlab, bytes: &[u8]) -> Result<Slot, StartupError> {
    let slot = alloc_key(slab)?;
    if let Some(k) = slab.key_mut(slot) {
        k.copy_from_slice(bytes.get(..KEY_LEN).unwrap_or(&[0u8; KEY_LEN]));
    }
    Ok(slot)
}

/// Reads a format 2 body into slots.
fn keys_from_body(
    path: &Path,
    slab: &mut KeySlab,
    body: &[u8],
    count: u8,
) -> Result<(Generation, Option<Generation>, Slot), StartupError> {
    let bad = |what| StartupError::BadKeyFile {
        path: path.to_owned(),
        what,
    };
    let seed = slot_with(slab, body.get(..KEY_LEN).unwrap_or_default())?;
    let mut gens = Vec::with_capacity(usize::from(count));
    for entry in body
        .get(KEY_LEN..body_len(count))
        .unwrap_or_default()
        .chunks_exact(ENTRY_LEN)
    {
        let (number, key) = entry.split_at(4);
        let number = u32::from_be_bytes(number.try_into().unwrap_or_default());
        gens.push(Generation {
            number,
            slot: slot_with(slab, key)?,
        });
    }
    match gens.as_slice() {
        [c] if c.number >= protocol::token::FIRST_GENERATION => Ok((*c, None, seed)),
        [c, p] if p.number >= protocol::token::FIRST_GENERATION && c.number > p.number => {
            Ok((*c, Some(*p), seed))
        }
        _ => Err(bad(
            "names impossible master-key generations (0, or not newest first)",
        )),
    }
}

/// Loads the master keys of `state_dir` into `slab`: unseals (or, for a
/// plain file with `dev_plain`, reads) `master.key` of either format
/// ([`unseal_into`]), keeping the sealing key for later rotations, and opens
/// the directory for [`KeyFile::replace`]. A temporary file left by a
/// rotation that crashed before its rename is removed (the rename is what
/// commits a new file).
///
/// # Errors
/// As [`unseal_into`], or an I/O error opening the directory.
pub(crate) fn load(
    state_dir: &Path,
    secret: Option<&Secret>,
    dev_plain: bool,
    slab: &mut KeySlab,
) -> Result<(Format, MasterKeys), StartupError> {
    let (format, mut keys, sealing) = unseal_into(&path_in(state_dir), secret, dev_plain, slab)?;
    keys.file = Some(KeyFile::open(state_dir, sealing)?);
    Ok((format, keys))
}

/// Unseals (or, for a plain file with `dev_plain`, reads) the key file at
/// `path`, of either format, into slots of `slab`, touching nothing on
/// disk: what [`load`] does before opening the directory, and what `backup`
/// and `restore` use. The keys come back with `file: None`, with the
/// sealing key (in a slot of `slab`) for a sealed file.
///
/// # Errors
/// [`StartupError::BadKeyFile`], a plain file without `dev_plain`, a sealed
/// file without a secret, a wrong secret, too few slots, or an I/O error.
pub(crate) fn unseal_into(
    path: &Path,
    secret: Option<&Secret>,
    dev_plain: bool,
    slab: &mut KeySlab,
) -> Result<(Format, MasterKeys, Option<Sealing>), StartupError> {
    let path = path.to_owned();
    let (buf, len) = read_file(&path)?;
    let bytes = buf.get(..len).unwrap_or_default();
    let format = format_of(&path, bytes)?;
    let (current, previous, audit_seed, sealing) = match (format, secret) {
        (Format::Plain, _) if !dev_plain => {
            return Err(StartupError::BadKeyFile {
                path,
                what: "is a plain (unsealed) development master key; pass --dev-plain-key to use it \
                       (development only) or create a sealed one with `hsm-daemon init --secret-file`",
            });
        }
        (Format::Plain, _) => {
            if bytes.get(..8) == Some(MAGIC.as_slice()) {
                let (current, seed) = first_generation(slab, &bytes[MAGIC.len()..])?;
                (current, None, seed, None)
            } else {
                let count = bytes.get(8).copied().unwrap_or_default();
                let (c, p, seed) = keys_from_body(&path, slab, &bytes[9..], count)?;
                (c, p, seed, None)
            }
        }
        (Format::Sealed, None) => {
            return Err(StartupError::Secret(format!(
                "{} is sealed: give the operator secret with --secret-file PATH, --secret-fd N or \
                 $CREDENTIALS_DIRECTORY/{}",
                path.display(),
                crate::secret::CREDENTIAL_NAME
            )));
        }
        (Format::Sealed, Some(secret)) => {
            let seal_err = |source| StartupError::Seal {
                path: path.clone(),
                source,
            };
            let params = seal::seal_params(bytes).map_err(seal_err)?;
            let kek = alloc_key(slab)?;
            let kek_bytes = slab.key_mut(kek).ok_or(StartupError::Rng)?;
            seal::derive_kek(secret.expose(), params, kek_bytes).map_err(seal_err)?;
            let kek_bytes = *slab.key(kek).ok_or(StartupError::Rng)?;
            let kek_bytes = Zeroizing::new(kek_bytes);
            let mut body = Zeroizing::new([0u8; MAX_BODY_LEN]);
            let opened = seal::open_with(&kek_bytes, bytes, body.as_mut_slice());
            let (c, p, seed) = match opened {
                Ok(None) => {
                    let (c, seed) = first_generation(slab, &body[..KEY_LEN])?;
                    (c, None, seed)
                }
                Ok(Some(count)) => keys_from_body(&path, slab, body.as_slice(), count)?,
                Err(e) => {
                    slab.release(kek);
                    return Err(seal_err(e));
                }
            };
            (c, p, seed, Some(Sealing { kek, params }))
        }
    };
    Ok((
        format,
        MasterKeys {
            current,
            previous,
            audit_seed,
            file: None,
        },
        sealing,
    ))
}

/// A format 1 key: generation 1, and the audit seed derived from it.
fn first_generation(slab: &mut KeySlab, key: &[u8]) -> Result<(Generation, Slot), StartupError> {
    let slot = slot_with(slab, key)?;
    let mut master = Zeroizing::new([0u8; KEY_LEN]);
    master.copy_from_slice(slab.key(slot).ok_or(StartupError::Rng)?);
    let seed = alloc_key(slab)?;
    let out = slab.key_mut(seed).ok_or(StartupError::Rng)?;
    crate::audit_key::seed_from_master(&master, out).map_err(|_| StartupError::Rng)?;
    Ok((
        Generation {
            number: protocol::token::FIRST_GENERATION,
            slot,
        },
        seed,
    ))
}

/// The bytes of a format 2 file holding `generations` (current first) and
/// the audit seed, sealed with `sealing` (`kek` its key) or plain.
///
/// # Errors
/// A sealing failure (RNG, cipher) or a wrong number of generations.
pub(crate) fn encode(
    sealing: Option<(&[u8; KEY_LEN], SealParams)>,
    audit_seed: &[u8; KEY_LEN],
    generations: &[(u32, &[u8; KEY_LEN])],
) -> Result<Zeroizing<Vec<u8>>, seal::SealError> {
    let count = u8::try_from(generations.len())
        .ok()
        .filter(|n| (1..=MAX_KEYS).contains(n))
        .ok_or(seal::SealError::Count(0))?;
    let mut body = Zeroizing::new([0u8; MAX_BODY_LEN]);
    body[..KEY_LEN].copy_from_slice(audit_seed);
    for (i, (number, key)) in generations.iter().enumerate() {
        let at = KEY_LEN + i * ENTRY_LEN;
        body[at..at + 4].copy_from_slice(&number.to_be_bytes());
        body[at + 4..at + ENTRY_LEN].copy_from_slice(*key);
    }
    let body = &body[..body_len(count)];
    match sealing {
        Some((kek, params)) => seal::seal_v2(kek, params, count, body).map(Zeroizing::new),
        None => {
            let mut out = Zeroizing::new(Vec::with_capacity(9 + body.len()));
            out.extend_from_slice(MAGIC_V2);
            out.push(count);
            out.extend_from_slice(body);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure_mem::SizeClass;

    fn slab() -> KeySlab {
        KeySlab::new(&[SizeClass {
            bytes: KEY_LEN,
            slots: 8,
        }])
        .expect("slab")
    }

    fn key(slab: &KeySlab, slot: Slot) -> [u8; KEY_LEN] {
        *slab.key(slot).expect("slot")
    }

    fn secret_in(dir: &Path, name: &str, text: &[u8]) -> Secret {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        crate::secret::read(&crate::secret::SecretSource::File(path)).expect("secret")
    }

    const FAST: KdfParams = KdfParams {
        m_kib: 8 * 1024,
        t: 1,
        p: 1,
    };

    #[test]
    fn init_creates_tight_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let path = init(&dir, &Protection::DevPlain).expect("init");
        let dmode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        let fmode = std::fs::metadata(&path).expect("file").permissions().mode() & 0o777;
        assert_eq!((dmode, fmode), (0o700, 0o600));
        assert_eq!(check(&path).expect("valid"), Format::Plain);
        let mut s = slab();
        assert!(
            load(&dir, None, false, &mut s).is_err(),
            "plain needs the flag"
        );
        let (_, keys) = load(&dir, None, true, &mut s).expect("load");
        assert_eq!(keys.current.number, 1);
        assert!(keys.previous.is_none());
        assert_ne!(key(&s, keys.current.slot), [0; KEY_LEN]);
        let before = std::fs::read(&path).expect("read");
        assert!(matches!(
            init(&dir, &Protection::DevPlain),
            Err(StartupError::KeyExists(_))
        ));
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn sealed_key_needs_the_right_secret_and_is_never_overwritten() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let secret = secret_in(tmp.path(), "secret", b"operator secret\n");
        let path = init(&dir, &Protection::Sealed(&secret, FAST)).expect("init");
        assert_eq!(check(&path).expect("valid"), Format::Sealed);
        let mut s = slab();
        assert!(load(&dir, None, true, &mut s).is_err(), "needs a secret");
        let (_, keys) = load(&dir, Some(&secret), false, &mut s).expect("unseal");
        assert_ne!(key(&s, keys.current.slot), [0; KEY_LEN]);
        let before = std::fs::read(&path).expect("read");
        let wrong = secret_in(tmp.path(), "wrong", b"not it");
        let err = load(&dir, Some(&wrong), false, &mut slab()).expect_err("wrong secret");
        assert!(err.to_string().contains("secret is wrong"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), before, "untouched");
    }

    #[test]
    fn format_one_audit_seed_is_derived_from_the_master_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        init(&dir, &Protection::DevPlain).expect("init");
        let mut s = slab();
        let (_, keys) = load(&dir, None, true, &mut s).expect("load");
        let mut derived = [0u8; KEY_LEN];
        crate::audit_key::seed_from_master(&key(&s, keys.current.slot), &mut derived)
            .expect("derive");
        assert_eq!(key(&s, keys.audit_seed), derived);
    }

    #[test]
    fn format_two_round_trips_sealed_and_plain() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let secret = secret_in(tmp.path(), "secret", b"operator secret");
        init(&dir, &Protection::Sealed(&secret, FAST)).expect("init");
        let mut s = slab();
        let (_, keys) = load(&dir, Some(&secret), false, &mut s).expect("unseal");
        let file = keys.file.as_ref().expect("file");
        let sealing = file.sealing.expect("sealed");
        let kek = key(&s, sealing.kek);
        let (seed, old, new) = (
            key(&s, keys.audit_seed),
            key(&s, keys.current.slot),
            [7u8; 32],
        );
        let bytes =
            encode(Some((&kek, sealing.params)), &seed, &[(2, &new), (1, &old)]).expect("encode");
        assert_eq!(bytes.len(), 169);
        assert!(
            !bytes
                .windows(KEY_LEN)
                .any(|w| w == old || w == new || w == seed)
        );
        file.replace(&bytes).expect("replace");
        let mut s2 = slab();
        let (format, again) = load(&dir, Some(&secret), false, &mut s2).expect("load v2");
        assert_eq!(format, Format::Sealed);
        assert_eq!(again.current.number, 2);
        assert_eq!(key(&s2, again.current.slot), new);
        let prev = again.previous.expect("previous");
        assert_eq!((prev.number, key(&s2, prev.slot)), (1, old));
        assert_eq!(key(&s2, again.audit_seed), seed);
        // Completed: one generation left, 133 bytes.
        let bytes = encode(Some((&kek, sealing.params)), &seed, &[(2, &new)]).expect("encode");
        assert_eq!(bytes.len(), 133);
        file.replace(&bytes).expect("replace");
        let (_, once) = load(&dir, Some(&secret), false, &mut slab()).expect("load");
        assert!(once.previous.is_none());
        // Wrong secret on format 2, and a flipped count byte, are refused.
        let wrong = secret_in(tmp.path(), "wrong", b"nope");
        assert!(load(&dir, Some(&wrong), false, &mut slab()).is_err());
        let mut altered = bytes.to_vec();
        altered[36] = 2;
        std::fs::write(path_in(&dir), &altered).expect("write");
        assert!(
            check(&path_in(&dir)).is_err(),
            "count disagrees with length"
        );
        // Plain format 2.
        let plain = encode(None, &seed, &[(3, &new), (2, &old)]).expect("plain");
        assert_eq!(plain.len(), 113);
        std::fs::write(path_in(&dir), plain.as_slice()).expect("write");
        let mut s3 = slab();
        let (format, p) = load(&dir, None, true, &mut s3).expect("plain v2");
        assert_eq!(format, Format::Plain);
        assert_eq!((p.current.number, key(&s3, p.current.slot)), (3, new));
        assert!(p.file.expect("file").sealing.is_none());
    }

    #[test]
    fn refuses_generations_out_of_order() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        init(&dir, &Protection::DevPlain).expect("init");
        let bad = encode(None, &[1; 32], &[(1, &[2; 32]), (2, &[3; 32])]).expect("encode");
        std::fs::write(path_in(&dir), bad.as_slice()).expect("write");
        let err = load(&dir, None, true, &mut slab()).expect_err("older first");
        assert!(err.to_string().contains("generations"), "{err}");
    }

    #[test]
    fn refuses_wrong_size_and_magic() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join(FILE_NAME);
        std::fs::write(&path, b"HKMSMK01short").expect("write");
        assert!(matches!(check(&path), Err(StartupError::BadKeyFile { .. })));
        std::fs::write(&path, b"HKMSSK01short").expect("write");
        let err = check(&path).expect_err("truncated sealed");
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, b"HKMSSK02short").expect("write");
        let err = check(&path).expect_err("truncated sealed v2");
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, b"HKMSMK02\x01short").expect("write");
        assert!(check(&path).is_err());
        std::fs::write(&path, [0u8; 40]).expect("write");
        let err = check(&path).expect_err("bad magic");
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
