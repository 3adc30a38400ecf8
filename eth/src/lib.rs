//! What a distributed validator must know about Ethereum to sign the right
//! bytes.
//!
//! - [`primitives`]: `Slot`, `Epoch`, indices, roots, versions, key and
//!   signature bytes.
//! - [`preset`]: [`EthSpec`] and the mainnet and minimal presets; containers
//!   with preset-dependent lists are generic over it.
//! - [`fork`]: [`ForkName`], parsed with a clear error for unknown forks.
//! - Containers by concept: [`attestation`], [`sync_committee`],
//!   [`validator`] (deposits, exits, builder registrations), [`block`].
//!   Each has serde JSON exactly as the beacon API writes it, SSZ, and
//!   `hash_tree_root`; enums such as [`attestation::Attestation`] carry the
//!   layout of every fork, decoded by fork name.
//! - [`signing`]: domains and `compute_signing_root`, the bytes each duty signs.

pub mod api;
pub mod attestation;
pub mod block;
pub mod block_contents;
pub mod client;
pub mod config;
pub mod deposit;
mod error;
pub mod execution;
pub mod fork;
pub mod preset;
pub mod primitives;
pub mod signing;
pub mod sync_committee;
pub mod validator;

pub use error::Error;
pub use fork::ForkName;
pub use preset::{EthSpec, MainnetEthSpec, MinimalEthSpec};
pub use primitives::{
    CommitteeIndex, Domain, DomainType, Epoch, ExecutionAddress, Gwei, PublicKeyBytes, Root,
    SignatureBytes, Slot, ValidatorIndex, Version,
};
