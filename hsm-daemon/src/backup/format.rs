//! The backup file formats, byte for byte (ARCHITECTURE.md documents them
//! too), and the AES-256-GCM wrap of the key material under the backup key.
//!
//! ```text
//! backup.hkb:  "HKMSBK01" or "HKMSBK02" | backup id (16) | threshold m (1)
//!              | shares n (1) | check of share 1..n (n x 32)    <- GCM AAD
//!              | nonce (12) | AES-256-GCM(payload) | tag (16)
//!              | SHA-256 of all the bytes before (32)
//! payload, format 1: master key (32)              a key file as `init` writes it
//! payload, format 2: generation u32 BE (4) | master key (32) | audit seed (32)
//!                                                 a key file a rotation wrote
//! share-K-of-N.hks:
//!              "HKMSSH01" | backup id (16) | index K (1) | threshold m (1)
//!              | shares n (1) | y (32) | check = SHA-256 of the 59 bytes before
//! ```
//!
//! A share's check catches a corrupted share by itself; the backup file
//! lists every share's check, so a share that was altered (check recomputed)
//! or comes from another split is named before any interpolation. The
//! backup's trailing SHA-256 names a corrupted backup file; a deliberate
//! change (trailer recomputed) still fails the GCM tag, whose AAD binds the
//! format, backup id, m, n and the share checks. Nothing here touches files
//! or holds the master key beyond the caller's buffers.

use super::shamir::SharePoint;
use crate::secure_mem::KEY_LEN;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// First bytes of a backup file, format 1.
pub(crate) const BACKUP_MAGIC: &[u8; 8] = b"HKMSBK01";
/// First bytes of a backup file, format 2.
pub(crate) const BACKUP_MAGIC_V2: &[u8; 8] = b"HKMSBK02";
/// First bytes of a share file.
pub(crate) const SHARE_MAGIC: &[u8; 8] = b"HKMSSH01";
/// Length of a backup id.
pub(crate) const ID_LEN: usize = 16;
/// Length of a share check (SHA-256).
pub(crate) const CHECK_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const BACKUP_HEAD: usize = BACKUP_MAGIC.len() + ID_LEN + 2;
const SHARE_BODY: usize = SHARE_MAGIC.len() + ID_LEN + 3 + KEY_LEN;
/// Exact length of a share file.
pub(crate) const SHARE_LEN: usize = SHARE_BODY + CHECK_LEN;
/// Length of a format 2 payload: generation, master key, audit seed.
pub(crate) const PAYLOAD_V2_LEN: usize = 4 + 2 * KEY_LEN;
/// Largest backup file (format 2, 255 shares).
pub(crate) const MAX_BACKUP_LEN: usize = backup_len(Version::Two, 255);

/// What a backup file carries, named by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// One master key of generation 1 (its audit seed derives from it).
    One,
    /// A generation number, its master key and the audit seed.
    Two,
}

impl Version {
    /// Length of the sealed payload.
    pub(crate) const fn payload_len(self) -> usize {
        match self {
            Self::One => KEY_LEN,
            Self::Two => PAYLOAD_V2_LEN,
        }
    }

    const fn magic(self) -> &'static [u8; 8] {
        match self {
            Self::One => BACKUP_MAGIC,
            Self::Two => BACKUP_MAGIC_V2,
        }
    }
}

/// Exact length of a backup file of `version` with `n` shares.
pub(crate) const fn backup_len(version: Version, n: u8) -> usize {
    BACKUP_HEAD + (n as usize) * CHECK_LEN + NONCE_LEN + version.payload_len() + TAG_LEN + CHECK_LEN
}

/// Lays out a format 2 payload into `out` (`PAYLOAD_V2_LEN` bytes).
pub(crate) fn encode_payload_v2(
    generation: u32,
    master: &[u8; KEY_LEN],
    audit_seed: &[u8; KEY_LEN],
    out: &mut [u8],
) -> Result<(), FormatError> {
    let out = out.get_mut(..PAYLOAD_V2_LEN).ok_or(FormatError::Cipher)?;
    out[..4].copy_from_slice(&generation.to_be_bytes());
    out[4..4 + KEY_LEN].copy_from_slice(master);
    out[4 + KEY_LEN..].copy_from_slice(audit_seed);
    Ok(())
}

/// The parts of a format 2 payload: generation, master key, audit seed.
/// `None` unless `payload` is exactly `PAYLOAD_V2_LEN` bytes.
pub(crate) fn split_payload_v2(payload: &[u8]) -> Option<(u32, &[u8; KEY_LEN], &[u8; KEY_LEN])> {
    if payload.len() != PAYLOAD_V2_LEN {
        return None;
    }
    let (generation, keys) = payload.split_at(4);
    let (master, seed) = keys.split_at(KEY_LEN);
    Some((
        u32::from_be_bytes(generation.try_into().ok()?),
        master.try_into().ok()?,
        seed.try_into().ok()?,
    ))
}

/// A backup id, shown as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackupId(pub(crate) [u8; ID_LEN]);

impl std::fmt::Display for BackupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why a file does not parse or open. Never carries key or share bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FormatError {
    #[error("not a backup file (bad magic, expected HKMSBK01 or HKMSBK02)")]
    BackupMagic,
    #[error("not a share file (bad magic, expected HKMSSH01)")]
    ShareMagic,
    #[error("wrong size for a {what} ({got} bytes, expected {expected}): truncated or padded")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("corrupted: its integrity check does not match its contents")]
    Corrupted,
    #[error("names an impossible split (share {index}, threshold {m}, {n} shares)")]
    Params { index: u8, m: u8, n: u8 },
    #[error("names master-key generation 0, which no key file holds: altered")]
    Generation,
    #[error(
        "does not open with the key rebuilt from the shares: the backup file was altered, \
         or the shares were altered or are not the ones made with it"
    )]
    WrongKey,
    #[error("encryption failed")]
    Cipher,
}

fn sha256(bytes: &[u8]) -> [u8; CHECK_LEN] {
    Sha256::digest(bytes).into()
}

/// A parsed share file.
#[derive(Debug)]
pub(crate) struct ShareFile {
    pub(crate) id: BackupId,
    pub(crate) m: u8,
    pub(crate) n: u8,
    pub(crate) point: SharePoint,
    pub(crate) check: [u8; CHECK_LEN],
}

/// Encodes one share; returns the file bytes and the share's check.
pub(crate) fn encode_share(
    id: BackupId,
    m: u8,
    n: u8,
    point: &SharePoint,
) -> (Zeroizing<[u8; SHARE_LEN]>, [u8; CHECK_LEN]) {
    let mut out = Zeroizing::new([0u8; SHARE_LEN]);
    out[..8].copy_from_slice(SHARE_MAGIC);
    out[8..24].copy_from_slice(&id.0);
    out[24] = point.x;
    out[25] = m;
    out[26] = n;
    out[27..SHARE_BODY].copy_from_slice(point.y.as_ref());
    let check = sha256(&out[..SHARE_BODY]);
    out[SHARE_BODY..].copy_from_slice(&check);
    (out, check)
}

/// Parses a share file, checking its length, magic, integrity check and
/// that its index, threshold and count describe a possible split.
///
/// # Errors
/// [`FormatError`] naming what is wrong.
pub(crate) fn parse_share(bytes: &[u8]) -> Result<ShareFile, FormatError> {
    if bytes.len() != SHARE_LEN {
        return Err(FormatError::Length {
            what: "share file",
            got: bytes.len(),
            expected: SHARE_LEN,
        });
    }
    if bytes.get(..8) != Some(SHARE_MAGIC.as_slice()) {
        return Err(FormatError::ShareMagic);
    }
    let (body, stored) = bytes.split_at(SHARE_BODY);
    let check = sha256(body);
    if !bool::from(check.ct_eq(stored)) {
        return Err(FormatError::Corrupted);
    }
    let (index, m, n) = (body[24], body[25], body[26]);
    if index == 0 || index > n || m < 2 || m > n {
        return Err(FormatError::Params { index, m, n });
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&body[8..24]);
    let mut point = SharePoint {
        x: index,
        y: Zeroizing::new([0u8; KEY_LEN]),
    };
    point.y.copy_from_slice(&body[27..SHARE_BODY]);
    Ok(ShareFile {
        id: BackupId(id),
        m,
        n,
        point,
        check,
    })
}

/// The public part of a backup file.
#[derive(Debug)]
pub(crate) struct BackupHeader {
    pub(crate) version: Version,
    pub(crate) id: BackupId,
    pub(crate) m: u8,
    pub(crate) n: u8,
    /// The check of share `k` is at `k - 1`.
    pub(crate) checks: Vec<[u8; CHECK_LEN]>,
}

/// Seals `payload` (of `header.version`'s length) under `backup_key` into a
/// backup file naming `checks`.
///
/// # Errors
/// A payload of the wrong length, an RNG or cipher failure.
pub(crate) fn seal_backup(
    header: &BackupHeader,
    backup_key: &[u8; KEY_LEN],
    payload: &[u8],
) -> Result<Vec<u8>, FormatError> {
    if payload.len() != header.version.payload_len() {
        return Err(FormatError::Cipher);
    }
    let mut out = Vec::with_capacity(backup_len(header.version, header.n));
    out.extend_from_slice(header.version.magic());
    out.extend_from_slice(&header.id.0);
    out.extend_from_slice(&[header.m, header.n]);
    for c in &header.checks {
        out.extend_from_slice(c);
    }
    let aad_len = out.len();
    let mut nonce = [0u8; NONCE_LEN];
    crate::crypto::fill_random(&mut nonce).map_err(|_| FormatError::Cipher)?;
    let mut body = Zeroizing::new([0u8; PAYLOAD_V2_LEN]);
    let body = &mut body[..payload.len()];
    body.copy_from_slice(payload);
    let cipher = Aes256Gcm::new_from_slice(backup_key).map_err(|_| FormatError::Cipher)?;
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &out[..aad_len], body)
        .map_err(|_| FormatError::Cipher)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(body);
    out.extend_from_slice(&tag);
    let trailer = sha256(&out);
    out.extend_from_slice(&trailer);
    Ok(out)
}

/// Parses a backup file's header, checking its length, magic, trailing
/// integrity check and parameters. The key is opened by [`open_backup`].
///
/// # Errors
/// [`FormatError`] naming what is wrong.
pub(crate) fn parse_backup(bytes: &[u8]) -> Result<BackupHeader, FormatError> {
    let version = match bytes.get(..8) {
        Some(m) if m == BACKUP_MAGIC.as_slice() => Version::One,
        Some(m) if m == BACKUP_MAGIC_V2.as_slice() => Version::Two,
        _ => return Err(FormatError::BackupMagic),
    };
    let (m, n) = match bytes.get(BACKUP_HEAD - 2..BACKUP_HEAD) {
        Some(&[m, n]) => (m, n),
        _ => {
            return Err(FormatError::Length {
                what: "backup file",
                got: bytes.len(),
                expected: backup_len(version, 2),
            });
        }
    };
    if bytes.len() != backup_len(version, n) {
        return Err(FormatError::Length {
            what: "backup file",
            got: bytes.len(),
            expected: backup_len(version, n),
        });
    }
    let (body, stored) = bytes.split_at(bytes.len() - CHECK_LEN);
    if !bool::from(sha256(body).ct_eq(stored)) {
        return Err(FormatError::Corrupted);
    }
    if m < 2 || m > n {
        return Err(FormatError::Params { index: 0, m, n });
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&bytes[8..24]);
    let checks = bytes[BACKUP_HEAD..BACKUP_HEAD + usize::from(n) * CHECK_LEN]
        .chunks_exact(CHECK_LEN)
        .map(|c| {
            let mut a = [0u8; CHECK_LEN];
            a.copy_from_slice(c);
            a
        })
        .collect();
    Ok(BackupHeader {
        version,
        id: BackupId(id),
        m,
        n,
        checks,
    })
}

/// Opens the payload of a backup file with `backup_key`, straight into
/// `out` (which must have the length of the file's version's payload), and
/// checks that a format 2 payload names a real generation.
///
/// # Errors
/// [`FormatError::WrongKey`] when the tag does not verify (`out` is left
/// zeroed), or a shape error as in [`parse_backup`].
pub(crate) fn open_backup(
    bytes: &[u8],
    backup_key: &[u8; KEY_LEN],
    out: &mut [u8],
) -> Result<Version, FormatError> {
    let header = parse_backup(bytes)?;
    let payload_len = header.version.payload_len();
    if out.len() != payload_len {
        return Err(FormatError::Length {
            what: "backup payload",
            got: out.len(),
            expected: payload_len,
        });
    }
    let aad_len = BACKUP_HEAD + usize::from(header.n) * CHECK_LEN;
    let (aad, rest) = bytes.split_at(aad_len);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (body, rest) = rest.split_at(payload_len);
    let tag = &rest[..TAG_LEN];
    let cipher = Aes256Gcm::new_from_slice(backup_key).map_err(|_| FormatError::Cipher)?;
    out.copy_from_slice(body);
    let opened =
        cipher.decrypt_in_place_detached(Nonce::from_slice(nonce), aad, out, Tag::from_slice(tag));
    if opened.is_err() {
        out.zeroize();
        return Err(FormatError::WrongKey);
    }
    if header.version == Version::Two
        && split_payload_v2(out).is_none_or(|(g, _, _)| g < protocol::token::FIRST_GENERATION)
    {
        out.zeroize();
        return Err(FormatError::Generation);
    }
    Ok(header.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes, and any single-byte change to valid files: an error
        /// or a value, never a panic, never a wrong key accepted.
        #[test]
        fn parsers_never_panic(
            junk in proptest::collection::vec(any::<u8>(), 0..400),
            at in any::<usize>(),
            flip in 1u8..,
        ) {
            let _ = parse_share(&junk);
            let _ = parse_backup(&junk);
            let mut out = [0u8; KEY_LEN];
            let _ = open_backup(&junk, &[0u8; KEY_LEN], &mut out);

            let (share, _) = encode_share(BackupId([1; ID_LEN]), 2, 3, &point(1, 5));
            let mut s = *share;
            s[at % SHARE_LEN] ^= flip;
            prop_assert!(parse_share(&s).is_err());

            let header = BackupHeader {
                version: Version::One,
                id: BackupId([2; ID_LEN]),
                m: 2,
                n: 2,
                checks: vec![[0; CHECK_LEN]; 2],
            };
            let key = [7u8; KEY_LEN];
            let mut file = seal_backup(&header, &key, &[9u8; KEY_LEN]).expect("seal");
            let len = file.len();
            file[at % len] ^= flip;
            prop_assert!(open_backup(&file, &key, &mut out).is_err());
        }
    }

    fn point(x: u8, b: u8) -> SharePoint {
        SharePoint {
            x,
            y: Zeroizing::new([b; KEY_LEN]),
        }
    }

    #[test]
    fn share_round_trip_and_corruption_named() {
        let id = BackupId([3u8; ID_LEN]);
        let (bytes, check) = encode_share(id, 3, 5, &point(2, 0x77));
        let s = parse_share(bytes.as_ref()).expect("parse");
        assert_eq!((s.id, s.m, s.n, s.point.x, s.check), (id, 3, 5, 2, check));
        assert_eq!(*s.point.y, [0x77u8; KEY_LEN]);
        for at in [0, 9, 24, 30, SHARE_LEN - 1] {
            let mut bad = *bytes;
            bad[at] ^= 1;
            let err = parse_share(&bad).expect_err("flipped");
            let want = if at < 8 {
                FormatError::ShareMagic
            } else {
                FormatError::Corrupted
            };
            assert_eq!(err, want, "byte {at}");
        }
        assert!(matches!(
            parse_share(&bytes[..SHARE_LEN - 1]),
            Err(FormatError::Length { .. })
        ));
    }

    #[test]
    fn share_with_impossible_split_is_refused_even_with_a_valid_check() {
        let (bytes, _) = encode_share(BackupId([0; ID_LEN]), 6, 5, &point(1, 1));
        assert!(matches!(
            parse_share(bytes.as_ref()),
            Err(FormatError::Params { m: 6, n: 5, .. })
        ));
    }

    #[test]
    fn backup_round_trip_wrong_key_and_tampering() {
        let header = BackupHeader {
            version: Version::One,
            id: BackupId([9; ID_LEN]),
            m: 2,
            n: 3,
            checks: vec![[1; CHECK_LEN], [2; CHECK_LEN], [3; CHECK_LEN]],
        };
        let key = [0x11u8; KEY_LEN];
        let master = [0x42u8; KEY_LEN];
        let file = seal_backup(&header, &key, &master).expect("seal");
        assert_eq!(file.len(), backup_len(Version::One, 3));
        assert!(!file.windows(KEY_LEN).any(|w| w == master), "key in clear");
        let parsed = parse_backup(&file).expect("parse");
        assert_eq!((parsed.id, parsed.m, parsed.n), (header.id, 2, 3));
        assert_eq!(parsed.checks, header.checks);
        let mut out = [0u8; KEY_LEN];
        open_backup(&file, &key, &mut out).expect("open");
        assert_eq!(out, master);

        let mut out = [0u8; KEY_LEN];
        assert_eq!(
            open_backup(&file, &[0x12u8; KEY_LEN], &mut out),
            Err(FormatError::WrongKey)
        );
        assert_eq!(out, [0u8; KEY_LEN]);

        // A flipped byte anywhere after the magic: the trailer names it.
        let mut flipped = file.clone();
        flipped[40] ^= 1;
        assert_eq!(parse_backup(&flipped).err(), Some(FormatError::Corrupted));
        // The same with the trailer recomputed (a deliberate change to an
        // AAD field): the GCM tag refuses it.
        for at in [8, 24, 25, 30, backup_len(Version::One, 3) - 40] {
            let mut forged = file.clone();
            forged[at] ^= 1;
            let body_len = forged.len() - CHECK_LEN;
            let t = sha256(&forged[..body_len]);
            forged[body_len..].copy_from_slice(&t);
            let r = open_backup(&forged, &key, &mut out);
            assert!(
                matches!(
                    r,
                    Err(FormatError::WrongKey
                        | FormatError::Length { .. }
                        | FormatError::Params { .. })
                ),
                "byte {at}: {r:?}"
            );
        }
    }

    #[test]
    fn format_two_round_trips_generation_key_and_seed() {
        let header = BackupHeader {
            version: Version::Two,
            id: BackupId([4; ID_LEN]),
            m: 2,
            n: 2,
            checks: vec![[5; CHECK_LEN]; 2],
        };
        let key = [0x21u8; KEY_LEN];
        let (master, seed) = ([0x42u8; KEY_LEN], [0x43u8; KEY_LEN]);
        let mut payload = [0u8; PAYLOAD_V2_LEN];
        encode_payload_v2(7, &master, &seed, &mut payload).expect("encode");
        let file = seal_backup(&header, &key, &payload).expect("seal");
        assert_eq!(file.len(), backup_len(Version::Two, 2));
        assert_eq!(&file[..8], BACKUP_MAGIC_V2);
        assert!(!file.windows(KEY_LEN).any(|w| w == master || w == seed));
        assert_eq!(parse_backup(&file).expect("parse").version, Version::Two);
        let mut out = [0u8; PAYLOAD_V2_LEN];
        assert_eq!(open_backup(&file, &key, &mut out), Ok(Version::Two));
        let (g, m, s) = split_payload_v2(&out).expect("split");
        assert_eq!((g, *m, *s), (7, master, seed));
        // A format 1 sized buffer is refused, not half-filled.
        let mut short = [0u8; KEY_LEN];
        assert!(matches!(
            open_backup(&file, &key, &mut short),
            Err(FormatError::Length { .. })
        ));
        // Generation 0 inside a valid seal is refused.
        encode_payload_v2(0, &master, &seed, &mut payload).expect("encode");
        let zero = seal_backup(&header, &key, &payload).expect("seal");
        assert_eq!(
            open_backup(&zero, &key, &mut out),
            Err(FormatError::Generation)
        );
        // The magic is in the AAD: relabelling a format 2 file as format 1
        // fails on the length, and with the trailer recomputed, too.
        let mut relabelled = file.clone();
        relabelled[..8].copy_from_slice(BACKUP_MAGIC);
        assert!(parse_backup(&relabelled).is_err());
    }
}
