//! Shamir secret sharing of the 32-byte backup key: a thin wrapper over the
//! `blahaj` crate (GF(256), one polynomial per byte; a maintained fork of
//! `sharks`), so the field arithmetic is not ours.
//!
//! What this module adds: fixed-size zeroizing share values (no `Vec` of
//! secret bytes outlives a call; blahaj's own shares and field elements wipe
//! themselves on drop), the OS RNG for the polynomial coefficients, share
//! indices `1..=n` (share `k` is the polynomial at `x = k`), and checks that
//! keep blahaj from ever interpolating over fewer than `m` distinct points.
//! File formats, and why a share belongs to a backup, are `format`'s.

use crate::secure_mem::KEY_LEN;
use blahaj::{Share, Sharks};
use rand_sys::rand_core::UnwrapErr;
use rand_sys::rngs::SysRng;
use zeroize::Zeroizing;

/// One share of the backup key: the point `(x, y)`, `y` one byte per key byte.
pub(crate) struct SharePoint {
    pub(crate) x: u8,
    pub(crate) y: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for SharePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharePoint")
            .field("x", &self.x)
            .field("y", &"[REDACTED]")
            .finish()
    }
}

/// Why splitting or combining failed. Never carries share bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ShamirError {
    #[error("threshold {m} and share count {n}: need 2 <= threshold <= shares <= 255")]
    Params { m: u8, n: u8 },
    #[error("{have} distinct shares given, {need} needed")]
    TooFew { have: usize, need: u8 },
    #[error("share index 0 is not a valid share")]
    IndexZero,
    #[error("the secret sharing library failed: {0}")]
    Library(&'static str),
}

fn check_params(m: u8, n: u8) -> Result<(), ShamirError> {
    if m >= 2 && m <= n {
        Ok(())
    } else {
        Err(ShamirError::Params { m, n })
    }
}

/// Splits `secret` into `n` shares, any `m` of which rebuild it. Share `k`
/// (1-based) has `x == k`. Coefficients come from the OS RNG.
///
/// # Errors
/// [`ShamirError::Params`] unless `2 <= m <= n`.
///
/// # Panics
/// If the OS RNG fails mid-split (`UnwrapErr`); the caller has just drawn the
/// backup key from the same RNG, so this does not happen in practice.
pub(crate) fn split(secret: &[u8; KEY_LEN], m: u8, n: u8) -> Result<Vec<SharePoint>, ShamirError> {
    check_params(m, n)?;
    let mut rng = UnwrapErr(SysRng);
    let mut out = Vec::with_capacity(usize::from(n));
    for share in Sharks(m).dealer_rng(secret, &mut rng).take(usize::from(n)) {
        // Exact capacity (x byte + 32): the Vec never grows, so wiping it
        // wipes the only copy.
        let bytes = Zeroizing::new(Vec::from(&share));
        let (x, y) = bytes
            .split_first()
            .ok_or(ShamirError::Library("empty share"))?;
        let mut point = SharePoint {
            x: *x,
            y: Zeroizing::new([0u8; KEY_LEN]),
        };
        if y.len() != KEY_LEN {
            return Err(ShamirError::Library("share of the wrong length"));
        }
        point.y.copy_from_slice(y);
        out.push(point);
    }
    let expected = (1..=n).collect::<Vec<u8>>();
    if out.iter().map(|p| p.x).collect::<Vec<u8>>() != expected {
        return Err(ShamirError::Library("unexpected share indices"));
    }
    Ok(out)
}

/// Rebuilds the secret from `points` (distinct `x`, already checked against
/// the backup) into `out`.
///
/// # Errors
/// [`ShamirError::TooFew`] with fewer than `m` distinct indices,
/// [`ShamirError::IndexZero`], or a library failure. `out` is untouched.
pub(crate) fn combine(
    points: &[&SharePoint],
    m: u8,
    out: &mut [u8; KEY_LEN],
) -> Result<(), ShamirError> {
    if m < 2 {
        return Err(ShamirError::Params { m, n: m });
    }
    if points.iter().any(|p| p.x == 0) {
        return Err(ShamirError::IndexZero);
    }
    let mut xs: Vec<u8> = points.iter().map(|p| p.x).collect();
    xs.sort_unstable();
    xs.dedup();
    // blahaj interpolates over every share it is given: duplicates would
    // give a wrong secret, so the caller must have removed them.
    if xs.len() != points.len() {
        return Err(ShamirError::Library("duplicate share indices"));
    }
    if xs.len() < usize::from(m) {
        return Err(ShamirError::TooFew {
            have: xs.len(),
            need: m,
        });
    }
    let mut shares = Vec::with_capacity(points.len());
    for p in points {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN + 1]);
        bytes[0] = p.x;
        bytes[1..].copy_from_slice(p.y.as_ref());
        shares.push(Share::try_from(bytes.as_slice()).map_err(ShamirError::Library)?);
    }
    let sharks = Sharks(m);
    let secret = Zeroizing::new(
        sharks
            .recover(&shares)
            .map_err(|_| ShamirError::Library("interpolation refused the shares"))?,
    );
    if secret.len() != KEY_LEN {
        return Err(ShamirError::Library("recovered secret of the wrong length"));
    }
    out.copy_from_slice(&secret);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(points: &'a [SharePoint], pick: &[usize]) -> Vec<&'a SharePoint> {
        pick.iter().map(|&i| &points[i]).collect()
    }

    #[test]
    fn any_m_of_n_rebuild_the_secret_and_fewer_do_not() {
        let secret = [0xA5u8; KEY_LEN];
        let points = split(&secret, 3, 5).expect("split");
        assert_eq!(
            points.iter().map(|p| p.x).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for pick in [[0, 1, 2], [0, 2, 4], [4, 3, 1], [1, 2, 3]] {
            let mut out = [0u8; KEY_LEN];
            combine(&refs(&points, &pick), 3, &mut out).expect("combine");
            assert_eq!(out, secret, "{pick:?}");
        }
        let mut out = [0u8; KEY_LEN];
        assert_eq!(
            combine(&refs(&points, &[0, 4]), 3, &mut out),
            Err(ShamirError::TooFew { have: 2, need: 3 })
        );
        assert_eq!(out, [0u8; KEY_LEN]);
        // Two shares of a 3-of-5 split, interpolated as if 2 were enough,
        // give something else: the threshold is real.
        combine(&refs(&points, &[0, 4]), 2, &mut out).expect("2-point line");
        assert_ne!(out, secret);
    }

    #[test]
    fn parameters_outside_two_to_n_are_refused() {
        let s = [1u8; KEY_LEN];
        assert!(matches!(split(&s, 1, 5), Err(ShamirError::Params { .. })));
        assert!(matches!(split(&s, 6, 5), Err(ShamirError::Params { .. })));
        assert_eq!(split(&s, 255, 255).expect("max").len(), 255);
    }

    #[test]
    fn share_debug_is_redacted() {
        let points = split(&[9u8; KEY_LEN], 2, 2).expect("split");
        let shown = format!("{:?}", points[0]);
        assert!(
            shown.contains("REDACTED") && !shown.contains(", 9"),
            "{shown}"
        );
    }
}
