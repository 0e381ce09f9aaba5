//! The wire APIs. Each is thin: decode, call `service`, encode.

pub mod reply;

pub use reply::AwsReply;
