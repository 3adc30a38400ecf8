//! Cluster artifacts and key generation.
//!
//! - [`definition`]: `cluster-definition.json`, what operators agree to
//!   create, identified by its hash.
//! - [`lock`]: `cluster-lock.json`, the definition with every validator's
//!   group key, public shares, deposit data and builder registration,
//!   signed by every operator and by every share; [`ClusterLock::verify`]
//!   checks all of it.
//! - [`dealer`]: a trusted-dealer cluster for tests, devnets and migrations
//!   (`--split-existing-keys`).
//! - [`files`]: an operator's folder — lock, share keystores (EIP-2335) with
//!   password files, deposit data, slashing-protection history.
//! - [`combine`]: rebuild full validator keys from t operators' folders.

pub mod ceremony;
pub mod combine;
pub mod dealer;
pub mod definition;
mod error;
pub mod files;
pub mod lock;
pub mod runner;

pub use definition::ClusterDefinition;
pub use error::DkgError;
pub use lock::ClusterLock;
