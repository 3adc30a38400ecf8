//! What a distributed validator must know about Ethereum to sign the right
//! bytes.
//!
//! - [`primitives`]: `Slot`, `Epoch`, indices, roots, versions, key and
//!   signature bytes.
//! - [`preset`]: [`EthSpec`] and the mainnet and minimal presets; containers
//!   with preset-dependent lists are generic over it.
//! - [`fork`]: [`ForkName`], parsed with a clear error for unknown forks.
//! - Containers by concept: [`attestation`], [`sync_committee`],
//!   [`validator`] (deposits, exits, builder registrations), [`execution`]
//!   (payloads, withdrawals, execution requests), [`block`] (full and
//!   blinded, per fork) and [`block_contents`] (what block production
//!   returns and publication takes). Each has serde JSON exactly as the
//!   beacon API writes it, SSZ, and `hash_tree_root`; enums such as
//!   [`block::BeaconBlock`] carry the layout of every fork, decoded by fork
//!   name.
//! - [`pool`]: attestations and sync-committee messages pooled into
//!   aggregates and contributions, the signature combined by the caller.
//! - [`signing`]: domains and `compute_signing_root`, the bytes each duty signs.
//! - [`deposit`]: withdrawal credentials and launchpad deposit data.
//! - [`config`]: network configurations (config.yaml, `/eth/v1/config/spec`,
//!   built-in mainnet, hoodi and sepolia); [`devnet`] builds a devnet's.
//! - [`client`]: the beacon-node client with fallback, and [`api`], the
//!   beacon-API shapes it exchanges that are not consensus containers.

pub mod api;
pub mod attestation;
pub mod block;
pub mod block_contents;
pub mod client;
pub mod config;
pub mod deposit;
pub mod devnet;
mod error;
pub mod execution;
pub mod fork;
pub mod interchange;
pub mod pool;
pub mod preset;
pub mod primitives;
pub mod selection;
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
