//! kms-frontend: the AWS-KMS-compatible HTTPS front end of hsm-kms.
//!
//! Layout (see ARCHITECTURE.md): `server` accepts TLS connections and routes;
//! `auth` verifies SigV4 and yields a [`principal::Principal`]; `api` decodes
//! the AWS JSON shapes and calls `service`, which holds the KMS operations and
//! talks to hsm-daemon only through `hsm_client`; `store` persists.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod hsm_client;
pub mod isolation;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod principal;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
