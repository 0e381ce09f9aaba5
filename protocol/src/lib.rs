//! The contract between `kms-frontend` and `hsm-daemon`.
//!
//! Both processes compile against this crate and nothing else of each other.
//! It owns the frame format ([`frame`]), the messages ([`message`]), the
//! error enum that may cross the socket ([`error`]) and the public headers of
//! ciphertext blobs ([`blob`]), of wrapped keys ([`wrapped`]) and of key
//! tokens ([`token`], the master-key generation), which the
//! frontend reads to route a Decrypt or UnwrapKey and the daemon writes and
//! authenticates. It performs no I/O of its own:
//! the codec plugs into whatever stream the caller owns.
//!
//! A connection is: client sends [`ClientHello`], server answers
//! [`ServerHello`] (or a [`WireError::UnsupportedVersion`] and closes), then
//! any number of [`RequestFrame`]s and [`ResponseFrame`]s in both directions
//! at once. Replies carry the id of their request and may come back in any
//! order.

pub mod algorithms;
pub mod blob;
pub mod error;
pub mod frame;
pub mod message;
pub mod token;
pub mod wrapped;

pub use algorithms::{
    EncryptionAlgorithm, MAX_MESSAGE_LEN, MacAlgorithm, MessageType, SigningAlgorithm,
};
pub use error::{InvalidReason, WireError};
pub use frame::{FrameCodec, FrameError, MAX_FRAME_LEN, decode_body, encode_frame};
pub use message::{
    AUDIT_DIGEST_CONTEXT, ClientHello, DataKeySpec, EncryptionContext, KeyRef, KeySpec, KeyToken,
    MAX_PLAINTEXT_LEN, MAX_RANDOM_LEN, MAX_WRAP_MATERIAL_LEN, PROTOCOL_VERSION, Request,
    RequestFrame, Response, ResponseFrame, SecretBytes, ServerHello, StatusInfo,
};
