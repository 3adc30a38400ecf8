//! Attestations and aggregation: what attesters and aggregators sign.
//!
//! Electra changed the layout: aggregation bits span every committee of the
//! slot and `committee_bits` says which committees are included; the
//! [`Attestation`] and [`AggregateAndProof`] enums carry either layout so
//! one code path serves every fork.

use serde::{Deserialize, Serialize};
use ssz::{Decode as _, Encode as _};
use ssz_derive::{Decode, Encode};
use ssz_types::{BitList, BitVector};
use tree_hash::{Hash256, TreeHash};
use tree_hash_derive::TreeHash;

use crate::error::Error;
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::{CommitteeIndex, Epoch, Root, SignatureBytes, Slot, ValidatorIndex};

/// `Checkpoint`: an epoch boundary block.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct Checkpoint {
    /// The epoch.
    pub epoch: Epoch,
    /// The block root at its start.
    pub root: Root,
}

/// `AttestationData`: the vote an attester signs.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct AttestationData {
    /// The slot attested to.
    pub slot: Slot,
    /// The committee (always 0 from Electra on; the committee moves to `committee_bits`).
    pub index: CommitteeIndex,
    /// LMD-GHOST vote.
    pub beacon_block_root: Root,
    /// FFG source.
    pub source: Checkpoint,
    /// FFG target.
    pub target: Checkpoint,
}

/// `Attestation` before Electra: one committee's aggregation bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AttestationBase<E: EthSpec> {
    /// Which committee members are aggregated.
    pub aggregation_bits: BitList<E::MaxValidatorsPerCommittee>,
    /// The vote.
    pub data: AttestationData,
    /// The aggregate signature.
    pub signature: SignatureBytes,
}

/// `Attestation` from Electra on: bits across all committees of the slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AttestationElectra<E: EthSpec> {
    /// Which members of the included committees are aggregated, committee after committee.
    pub aggregation_bits: BitList<E::MaxValidatorsPerSlot>,
    /// The vote.
    pub data: AttestationData,
    /// The aggregate signature.
    pub signature: SignatureBytes,
    /// Which committees are included.
    pub committee_bits: BitVector<E::MaxCommitteesPerSlot>,
}

/// An attestation in the layout of its fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged, bound = "E: EthSpec")]
pub enum Attestation<E: EthSpec> {
    /// Phase 0 to Deneb.
    Base(AttestationBase<E>),
    /// Electra and later.
    Electra(AttestationElectra<E>),
}

impl<E: EthSpec> Attestation<E> {
    /// The vote.
    pub fn data(&self) -> &AttestationData {
        match self {
            Attestation::Base(a) => &a.data,
            Attestation::Electra(a) => &a.data,
        }
    }

    /// The signature.
    pub fn signature(&self) -> &SignatureBytes {
        match self {
            Attestation::Base(a) => &a.signature,
            Attestation::Electra(a) => &a.signature,
        }
    }

    /// Decodes SSZ in the layout of `fork`.
    pub fn from_ssz_bytes(bytes: &[u8], fork: ForkName) -> Result<Self, Error> {
        let ssz_error = |e: ssz::DecodeError| Error::Ssz {
            container: "Attestation",
            reason: format!("{e:?}"),
        };
        if fork.electra_enabled() {
            AttestationElectra::from_ssz_bytes(bytes)
                .map(Attestation::Electra)
                .map_err(ssz_error)
        } else {
            AttestationBase::from_ssz_bytes(bytes)
                .map(Attestation::Base)
                .map_err(ssz_error)
        }
    }

    /// Decodes JSON in the layout of `fork` (beacon nodes say which in the
    /// `Eth-Consensus-Version` header).
    pub fn from_json_value(value: serde_json::Value, fork: ForkName) -> Result<Self, Error> {
        let json_error = |e: serde_json::Error| Error::Json {
            container: "Attestation",
            reason: e.to_string(),
        };
        if fork.electra_enabled() {
            serde_json::from_value(value)
                .map(Attestation::Electra)
                .map_err(json_error)
        } else {
            serde_json::from_value(value)
                .map(Attestation::Base)
                .map_err(json_error)
        }
    }

    /// The SSZ encoding.
    pub fn as_ssz_bytes(&self) -> Vec<u8> {
        match self {
            Attestation::Base(a) => a.as_ssz_bytes(),
            Attestation::Electra(a) => a.as_ssz_bytes(),
        }
    }

    /// hash_tree_root.
    pub fn tree_hash_root(&self) -> Hash256 {
        match self {
            Attestation::Base(a) => a.tree_hash_root(),
            Attestation::Electra(a) => a.tree_hash_root(),
        }
    }
}

/// `SingleAttestation` (Electra): one validator's attestation as a validator
/// client submits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SingleAttestation {
    /// The attester's committee.
    pub committee_index: CommitteeIndex,
    /// The attester.
    pub attester_index: ValidatorIndex,
    /// The vote.
    pub data: AttestationData,
    /// The attester's signature.
    pub signature: SignatureBytes,
}

/// `AggregateAndProof` before Electra.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AggregateAndProofBase<E: EthSpec> {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The aggregate.
    pub aggregate: AttestationBase<E>,
    /// The aggregator's slot signature that elected it.
    pub selection_proof: SignatureBytes,
}

/// `AggregateAndProof` from Electra on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AggregateAndProofElectra<E: EthSpec> {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The aggregate.
    pub aggregate: AttestationElectra<E>,
    /// The aggregator's slot signature that elected it.
    pub selection_proof: SignatureBytes,
}

/// An aggregate and proof in the layout of its fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged, bound = "E: EthSpec")]
pub enum AggregateAndProof<E: EthSpec> {
    /// Phase 0 to Deneb.
    Base(AggregateAndProofBase<E>),
    /// Electra and later.
    Electra(AggregateAndProofElectra<E>),
}

impl<E: EthSpec> AggregateAndProof<E> {
    /// hash_tree_root.
    pub fn tree_hash_root(&self) -> Hash256 {
        match self {
            AggregateAndProof::Base(a) => a.tree_hash_root(),
            AggregateAndProof::Electra(a) => a.tree_hash_root(),
        }
    }
}

/// `SignedAggregateAndProof` before Electra.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct SignedAggregateAndProofBase<E: EthSpec> {
    /// The aggregate and proof.
    pub message: AggregateAndProofBase<E>,
    /// The aggregator's signature over it.
    pub signature: SignatureBytes,
}

/// `SignedAggregateAndProof` from Electra on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct SignedAggregateAndProofElectra<E: EthSpec> {
    /// The aggregate and proof.
    pub message: AggregateAndProofElectra<E>,
    /// The aggregator's signature over it.
    pub signature: SignatureBytes,
}

/// A validator's partial selection proof for a slot, as a distributed
/// validator's client posts it to `/eth/v1/validator/beacon_committee_selections`
/// (and gets the combined one back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconCommitteeSelection {
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// The slot.
    pub slot: Slot,
    /// The slot signature.
    pub selection_proof: SignatureBytes,
}

/// The sync-committee counterpart of [`BeaconCommitteeSelection`]
/// (`/eth/v1/validator/sync_committee_selections`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCommitteeSelection {
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// The slot.
    pub slot: Slot,
    /// The sync subcommittee.
    #[serde(with = "serde_utils::quoted_u64")]
    pub subcommittee_index: u64,
    /// The selection signature.
    pub selection_proof: SignatureBytes,
}
