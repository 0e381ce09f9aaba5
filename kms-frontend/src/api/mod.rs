//! The wire APIs. Each is thin: decode, call `service`, encode.

pub mod aws_json;
pub mod reply;

pub use reply::AwsReply;
