//! RSA key generation on a thread of its own.
//!
//! Generating an RSA-4096 key takes seconds (4.6 s measured for a
//! CreateKey on the 2-core development machine). On the keystore's thread,
//! which also runs the socket I/O, that stalled every other request for as
//! long. So RSA private keys are made here, on a second thread whose stack
//! is locked and undumpable like the keystore's and scrubbed after each
//! key, and only the wrapping happens on the keystore's thread. ECC and
//! HMAC keys take microseconds and stay there.
//!
//! At most [`MAX_QUEUED`] keys are waited for at once; beyond that a request
//! is refused with [`DaemonError::KeystoreBusy`] (the frontend's throttling
//! error), so a flood of RSA requests costs a bounded amount of CPU.

use crate::asym;
use crate::error::DaemonError;
use crate::secure_mem::MemCheck;
use crate::secure_mem::stack;
use protocol::{KeySpec, SecretBytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Keys asked for and not yet handed back, beyond which requests are refused.
pub(crate) const MAX_QUEUED: usize = 4;

type Made = Result<SecretBytes, DaemonError>;

struct Job {
    spec: KeySpec,
    reply: oneshot::Sender<Made>,
}

/// A handle on the key-generation thread; the thread ends when every
/// handle is gone.
#[derive(Clone, Debug)]
pub(crate) struct Keygen {
    jobs: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
}

impl Keygen {
    /// Starts the thread (before the seccomp filter, which allows no new
    /// threads) and returns with the check of its stack.
    ///
    /// # Errors
    /// When the thread cannot be started or cannot find its stack.
    pub(crate) fn spawn() -> std::io::Result<(Self, MemCheck)> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (checked, check) = mpsc::sync_channel(1);
        stack::spawn_locked("keygen", move |locked| {
            let ok = locked.is_ok();
            let _ = checked.send(locked);
            if !ok {
                return;
            }
            while let Ok(job) = rx.recv() {
                // A caller that gave up does not cost a key.
                if job.reply.is_closed() {
                    continue;
                }
                let made = asym::generate(job.spec).map(SecretBytes::from);
                stack::scrub();
                let _ = job.reply.send(made);
            }
            stack::scrub();
        })?;
        let check = check
            .recv()
            .map_err(|_| std::io::Error::other("the keygen thread ended at start"))??;
        let keygen = Self {
            jobs,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        Ok((keygen, check))
    }

    /// An RSA private key of `spec` (PKCS#8 DER), made on the keygen thread.
    ///
    /// # Errors
    /// [`DaemonError::KeystoreBusy`] when [`MAX_QUEUED`] keys are already
    /// waited for; the generation's own error; [`DaemonError::Crypto`] if
    /// the thread is gone.
    pub(crate) async fn generate(&self, spec: KeySpec) -> Made {
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        let _slot = Release(&self.queued);
        if queued >= MAX_QUEUED {
            return Err(DaemonError::KeystoreBusy);
        }
        let (reply, made) = oneshot::channel();
        self.jobs
            .send(Job { spec, reply })
            .map_err(|_| DaemonError::Crypto("keygen thread gone"))?;
        made.await
            .map_err(|_| DaemonError::Crypto("keygen thread gone"))?
    }
}

/// Gives a queue place back when the wait ends, however it ends.
struct Release<'a>(&'a AtomicUsize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn makes_keys_and_refuses_beyond_the_queue() {
        let (keygen, _check) = Keygen::spawn().expect("spawn");
        let der = keygen.generate(KeySpec::Rsa2048).await.expect("key");
        assert!(asym::public_key_der(KeySpec::Rsa2048, der.expose()).is_ok());
        assert_eq!(keygen.queued.load(Ordering::Acquire), 0);

        let waits: Vec<_> = (0..MAX_QUEUED + 2)
            .map(|_| keygen.generate(KeySpec::Rsa2048))
            .collect();
        let results = futures_util::future::join_all(waits).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(DaemonError::KeystoreBusy)))
            .count();
        assert_eq!(busy, 2, "all but {MAX_QUEUED} refused");
        assert!(results.iter().filter(|r| r.is_ok()).count() == MAX_QUEUED);
        assert_eq!(keygen.queued.load(Ordering::Acquire), 0);
    }
}
