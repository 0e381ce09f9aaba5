//! The service's notion of "now", injectable so deletion windows and
//! rotation periods can be tested without waiting days.
//!
//! [`SystemClock`] is the default. [`ManualClock`] is set by in-process
//! tests. [`OffsetFileClock`] adds an offset read from a file to the system
//! time; it exists only in debug builds (`cfg(debug_assertions)`), and the
//! config key that turns it on (`dev_clock_offset_file`) is refused by a
//! release build, so a production frontend cannot be made to travel in time.
//! Nothing here reaches the network: moving time needs write access to the
//! file the operator named.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time, in Unix seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock tests set and advance by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: i64) -> Self {
        Self(AtomicI64::new(now))
    }

    /// Moves the clock forward (or back) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Development clock: system time plus the whole number of seconds written
/// in a file (missing or unreadable file: no offset). Debug builds only.
#[cfg(debug_assertions)]
#[derive(Debug)]
pub struct OffsetFileClock {
    path: std::path::PathBuf,
}

#[cfg(debug_assertions)]
impl OffsetFileClock {
    /// A clock offset by the number in `path`, re-read at every call.
    pub fn new(path: std::path::PathBuf) -> Self {
        Self { path }
    }

    fn offset(&self) -> i64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0)
    }
}

#[cfg(debug_assertions)]
impl Clock for OffsetFileClock {
    fn now(&self) -> i64 {
        SystemClock.now().saturating_add(self.offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100);
        assert_eq!(c.now(), 100);
        c.advance(86_400);
        assert_eq!(c.now(), 86_500);
        c.set(5);
        assert_eq!(c.now(), 5);
    }

    #[cfg(debug_assertions)] // the clock exists only in debug builds
    #[test]
    fn offset_file_clock_adds_the_file_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("offset");
        let c = OffsetFileClock::new(path.clone());
        let base = SystemClock.now();
        assert!((c.now() - base).abs() < 5);
        std::fs::write(&path, "864000\n").expect("write");
        assert!((c.now() - base - 864_000).abs() < 5);
        std::fs::write(&path, "garbage").expect("write");
        assert!((c.now() - base).abs() < 5);
    }
}
