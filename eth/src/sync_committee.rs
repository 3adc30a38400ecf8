//! Sync-committee messages and contributions.

use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use ssz_types::BitVector;
use tree_hash_derive::TreeHash;

use crate::preset::EthSpec;
use crate::primitives::{Root, SignatureBytes, Slot, ValidatorIndex};

/// `SyncCommitteeMessage`: a member's signature over the head block root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SyncCommitteeMessage {
    /// The slot.
    pub slot: Slot,
    /// The head block root signed.
    pub beacon_block_root: Root,
    /// The member.
    pub validator_index: ValidatorIndex,
    /// The member's signature.
    pub signature: SignatureBytes,
}

/// `SyncCommitteeContribution`: an aggregate of one subcommittee's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct SyncCommitteeContribution<E: EthSpec> {
    /// The slot.
    pub slot: Slot,
    /// The head block root signed.
    pub beacon_block_root: Root,
    /// Which subcommittee.
    #[serde(with = "serde_utils::quoted_u64")]
    pub subcommittee_index: u64,
    /// Which subcommittee members are aggregated.
    pub aggregation_bits: BitVector<E::SyncSubcommitteeSize>,
    /// The aggregate signature.
    pub signature: SignatureBytes,
}

/// `ContributionAndProof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct ContributionAndProof<E: EthSpec> {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The contribution.
    pub contribution: SyncCommitteeContribution<E>,
    /// The signature that elected the aggregator.
    pub selection_proof: SignatureBytes,
}

/// `SignedContributionAndProof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct SignedContributionAndProof<E: EthSpec> {
    /// The contribution and proof.
    pub message: ContributionAndProof<E>,
    /// The aggregator's signature over it.
    pub signature: SignatureBytes,
}

/// `SyncAggregatorSelectionData`: what a contribution aggregator's selection proof signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SyncAggregatorSelectionData {
    /// The slot.
    pub slot: Slot,
    /// The subcommittee.
    #[serde(with = "serde_utils::quoted_u64")]
    pub subcommittee_index: u64,
}
