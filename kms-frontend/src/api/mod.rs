//! The wire APIs. Each is thin: decode, call `service`, encode.

pub mod admin;
pub mod aws_json;
pub mod reply;
pub mod rest;

pub use reply::AwsReply;
