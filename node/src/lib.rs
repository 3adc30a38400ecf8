//! The distributed-validator node.
//!
//! [`runtime`] drives the pipeline with tokio, libp2p and HTTP and serves
//! the [`api`] (the validator API) to the operator's validator client.
//! [`error`] holds the node's errors.
//!
//! The pipeline's decisions live in one sans-IO state machine, [`core`],
//! built from these parts:
//!
//! - [`duty`]: a duty is a type in a slot, the consensus instance key.
//! - [`timing`]: when each duty starts and its deadline, in one place.
//! - [`value`]: the unsigned data consensus agrees on, as SSZ bytes.
//! - [`dutydb`]: every decided value (attestation data, aggregates,
//!   contributions, blocks); a second, different attestation for the same
//!   duty and validator is refused.
//! - [`parsigdb`]: partial signatures per duty, validator and signing root,
//!   released once at the threshold; [`parsigex`] carries them between nodes.
//! - [`qbft`]: consensus messages signed with the node key and checked
//!   against the lock's operators; the consensus protocol's size limit.
//! - [`sigagg`]: threshold partials combined and verified under the group
//!   key before anything is broadcast.
//! - [`tracker`]: every duty's outcome by its deadline, with the precise
//!   reason it failed.
//! - [`slashing`]: the persistent slashing-protection database of the
//!   cluster's group keys, with EIP-3076 import and export. The node checks
//!   every value it lets its validator client sign against it, so no
//!   restart or bug can make the cluster sign a slashable pair.
//!
//! # Vocabulary
//!
//! Each name has one meaning throughout the crate:
//!
//! - *operator*: a member of the cluster, named by its
//!   [`OperatorIndex`](phalanx_consensus::OperatorIndex), its place in the
//!   lock's list of operators, from 0. Its share index is the operator index
//!   + 1.
//! - *validator index*: the beacon chain's index of a validator
//!   ([`phalanx_eth::ValidatorIndex`]).
//! - *cluster index*: a validator's place in the lock's list of the
//!   cluster's validators, from 0 (`cluster_index` in the core).
//! - *validator committee index*: a validator's place in its beacon
//!   committee, as the beacon API's `validator_committee_index`
//!   ([`core::Attester::ValidatorCommitteeIndex`]).
//! - *committee index*: which committee of a slot
//!   ([`phalanx_eth::CommitteeIndex`]).
//! - *request index*: an item's place in a validator client's list
//!   submission, by which a refusal names it.

pub mod api;
pub mod core;
pub mod duty;
pub mod dutydb;
pub mod error;
pub mod parsigdb;
pub mod parsigex;
pub mod qbft;
pub mod runtime;
pub mod scheme;
pub mod sigagg;
pub mod slashing;
pub mod timing;
pub mod tracker;
pub mod value;
