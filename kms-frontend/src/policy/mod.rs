//! Authorization as a pure function: (principal, action, key, request
//! facts) -> [`Decision`]. Key policies are parsed and validated once, when
//! written ([`Policy::parse`]), and kept in evaluated form next to the key
//! in the service's cache together with the key's [`Grant`]s, so a check is
//! a walk over a few in-memory statements.
//!
//! Layout: [`action`] (the KMS actions), `document` (parsing, the default
//! policy), `condition` (operators and condition keys), `glob` (wildcards),
//! [`grant`] (grants and their constraints), `eval` (the decision).
//! Fetching the key and logging the decision are left to `service::authz`.

pub mod action;
mod condition;
mod document;
mod eval;
mod glob;
pub mod grant;

pub use action::Action;
pub use document::{Effect, MAX_POLICY_BYTES, Policy, default_policy_text};
pub use eval::{Basis, Decision, Facts, evaluate};
pub use grant::{Constraints, Grant};

#[cfg(test)]
mod tests;
