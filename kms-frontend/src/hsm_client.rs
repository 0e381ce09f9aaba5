//! STUB, to be replaced by the platform work: the pipelined client of
//! hsm-daemon. The signatures below are the contract `service` codes against.

use protocol::{Request, Response, WireError};
use std::path::PathBuf;

/// Why a call to hsm-daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The daemon is not reachable (not running, socket refused, connection lost).
    #[error("hsm-daemon is unavailable")]
    Unavailable,
    /// The daemon did not answer in time.
    #[error("hsm-daemon did not answer in time")]
    Timeout,
    /// The daemon answered with an error.
    #[error("hsm-daemon refused the request: {0}")]
    Wire(WireError),
    /// The daemon answered with something this client did not expect.
    #[error("unexpected reply from hsm-daemon")]
    Protocol,
}

/// A cheap-to-clone handle on the connection(s) to hsm-daemon.
#[derive(Debug, Clone)]
pub struct HsmClient {
    socket: PathBuf,
}

impl HsmClient {
    /// A client for the daemon at `socket`; connects lazily and reconnects
    /// after a failure.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    /// Sends one request and waits for its reply.
    ///
    /// # Errors
    /// [`HsmError`] as documented on each variant.
    pub async fn call(&self, request: Request) -> Result<Response, HsmError> {
        let _ = (&self.socket, request);
        Err(HsmError::Unavailable)
    }
}
