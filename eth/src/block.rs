//! Blocks and their bodies, per fork, full and blinded, and the
//! [`BeaconBlock`] / [`BlindedBeaconBlock`] enums that carry any fork's
//! layout through one code path.
//!
//! Every fork from Phase 0 on is here: a node can propose on any chain a
//! validator client can, including test chains that start at Altair.
//! Blinded blocks exist from Bellatrix on (the builder API). Fulu changed
//! no block container, so its variants hold Electra's layout.

use alloy_primitives::FixedBytes;
use serde::{Deserialize, Serialize};
use ssz::{Decode as _, Encode as _};
use ssz_derive::{Decode, Encode};
use ssz_types::typenum::{U1, U128, U16, U2, U33, U8};
use ssz_types::{BitVector, FixedVector, VariableList};
use tree_hash::TreeHash as _;
use tree_hash_derive::TreeHash;

use crate::attestation::{AttestationBase, AttestationData, AttestationElectra};
use crate::error::Error;
use crate::execution::{
    ExecutionPayloadBellatrix, ExecutionPayloadCapella, ExecutionPayloadDeneb,
    ExecutionPayloadHeaderBellatrix, ExecutionPayloadHeaderCapella, ExecutionPayloadHeaderDeneb,
    ExecutionRequests,
};
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::{
    ExecutionAddress, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex,
};
use crate::validator::{DepositData, SignedVoluntaryExit};

/// A KZG commitment to a blob.
pub type KzgCommitment = FixedBytes<48>;

/// `BeaconBlockHeader`: a block with its body replaced by the body's root.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash,
)]
pub struct BeaconBlockHeader {
    /// The block's slot.
    pub slot: Slot,
    /// The proposer.
    pub proposer_index: ValidatorIndex,
    /// The parent block's root.
    pub parent_root: Root,
    /// The post-state root.
    pub state_root: Root,
    /// hash_tree_root of the body.
    pub body_root: Root,
}

/// `SignedBeaconBlockHeader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SignedBeaconBlockHeader {
    /// The header.
    pub message: BeaconBlockHeader,
    /// The proposer's signature.
    pub signature: SignatureBytes,
}

/// `Eth1Data`.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash,
)]
pub struct Eth1Data {
    /// The deposit contract's root.
    pub deposit_root: Root,
    /// Deposits made.
    #[serde(with = "serde_utils::quoted_u64")]
    pub deposit_count: u64,
    /// The execution block voted for.
    pub block_hash: Root,
}

/// `ProposerSlashing`: two signed headers for the same slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct ProposerSlashing {
    /// The first header.
    pub signed_header_1: SignedBeaconBlockHeader,
    /// The conflicting header.
    pub signed_header_2: SignedBeaconBlockHeader,
}

/// `IndexedAttestation` before Electra.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct IndexedAttestationBase<E: EthSpec> {
    /// The attesters, sorted.
    pub attesting_indices: VariableList<ValidatorIndex, E::MaxValidatorsPerCommittee>,
    /// The vote.
    pub data: AttestationData,
    /// The aggregate signature.
    pub signature: SignatureBytes,
}

/// `IndexedAttestation` from Electra on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct IndexedAttestationElectra<E: EthSpec> {
    /// The attesters, sorted.
    pub attesting_indices: VariableList<ValidatorIndex, E::MaxValidatorsPerSlot>,
    /// The vote.
    pub data: AttestationData,
    /// The aggregate signature.
    pub signature: SignatureBytes,
}

/// `AttesterSlashing` before Electra.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AttesterSlashingBase<E: EthSpec> {
    /// The first attestation.
    pub attestation_1: IndexedAttestationBase<E>,
    /// The conflicting attestation.
    pub attestation_2: IndexedAttestationBase<E>,
}

/// `AttesterSlashing` from Electra on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct AttesterSlashingElectra<E: EthSpec> {
    /// The first attestation.
    pub attestation_1: IndexedAttestationElectra<E>,
    /// The conflicting attestation.
    pub attestation_2: IndexedAttestationElectra<E>,
}

/// `Deposit`: deposit data with its Merkle proof (depth 32, plus the length).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct Deposit {
    /// The branch.
    pub proof: FixedVector<Root, U33>,
    /// The deposit.
    pub data: DepositData,
}

/// `SyncAggregate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct SyncAggregate<E: EthSpec> {
    /// Which sync-committee members signed.
    pub sync_committee_bits: BitVector<E::SyncCommitteeSize>,
    /// Their aggregate signature.
    pub sync_committee_signature: SignatureBytes,
}

/// `BLSToExecutionChange`: switching 0x00 credentials to an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct BlsToExecutionChange {
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// The BLS withdrawal key that authorises the change.
    pub from_bls_pubkey: PublicKeyBytes,
    /// The new withdrawal address.
    pub to_execution_address: ExecutionAddress,
}

/// `SignedBLSToExecutionChange`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SignedBlsToExecutionChange {
    /// The change.
    pub message: BlsToExecutionChange,
    /// The withdrawal key's signature.
    pub signature: SignatureBytes,
}

macro_rules! block_body {
    (
        $(#[$meta:meta])* $name:ident,
        attester_slashing: $slashing:ty, max_attester_slashings: $max_slashings:ty,
        attestation: $attestation:ty, max_attestations: $max_attestations:ty,
        { $($fork_fields:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
        #[serde(bound = "E: EthSpec")]
        pub struct $name<E: EthSpec> {
            /// The proposer's randao reveal (its signature over the epoch).
            pub randao_reveal: SignatureBytes,
            /// The eth1 vote.
            pub eth1_data: Eth1Data,
            /// 32 free bytes.
            pub graffiti: Root,
            /// Proposer slashings.
            pub proposer_slashings: VariableList<ProposerSlashing, U16>,
            /// Attester slashings.
            pub attester_slashings: VariableList<$slashing, $max_slashings>,
            /// Attestations.
            pub attestations: VariableList<$attestation, $max_attestations>,
            /// Deposits.
            pub deposits: VariableList<Deposit, U16>,
            /// Voluntary exits.
            pub voluntary_exits: VariableList<SignedVoluntaryExit, U16>,
            $($fork_fields)*
        }
    };
}

block_body!(
    /// `BeaconBlockBody` of Phase 0.
    BeaconBlockBodyPhase0,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {}
);

block_body!(
    /// `BeaconBlockBody` of Altair.
    BeaconBlockBodyAltair,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
    }
);

block_body!(
    /// `BeaconBlockBody` of Bellatrix.
    BeaconBlockBodyBellatrix,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload (empty until the merge completes).
        pub execution_payload: ExecutionPayloadBellatrix,
    }
);

block_body!(
    /// `BlindedBeaconBlockBody` of Bellatrix.
    BlindedBeaconBlockBodyBellatrix,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload's header.
        pub execution_payload_header: ExecutionPayloadHeaderBellatrix,
    }
);

block_body!(
    /// `BeaconBlockBody` of Capella.
    BeaconBlockBodyCapella,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload.
        pub execution_payload: ExecutionPayloadCapella<E>,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
    }
);

block_body!(
    /// `BlindedBeaconBlockBody` of Capella.
    BlindedBeaconBlockBodyCapella,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload's header.
        pub execution_payload_header: ExecutionPayloadHeaderCapella,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
    }
);

block_body!(
    /// `BeaconBlockBody` of Deneb.
    BeaconBlockBodyDeneb,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload.
        pub execution_payload: ExecutionPayloadDeneb<E>,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
        /// Commitments to the block's blobs.
        pub blob_kzg_commitments: VariableList<KzgCommitment, E::MaxBlobCommitmentsPerBlock>,
    }
);

block_body!(
    /// `BlindedBeaconBlockBody` of Deneb.
    BlindedBeaconBlockBodyDeneb,
    attester_slashing: AttesterSlashingBase<E>, max_attester_slashings: U2,
    attestation: AttestationBase<E>, max_attestations: U128,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload's header.
        pub execution_payload_header: ExecutionPayloadHeaderDeneb,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
        /// Commitments to the block's blobs.
        pub blob_kzg_commitments: VariableList<KzgCommitment, E::MaxBlobCommitmentsPerBlock>,
    }
);

block_body!(
    /// `BeaconBlockBody` of Electra, unchanged in Fulu.
    BeaconBlockBodyElectra,
    attester_slashing: AttesterSlashingElectra<E>, max_attester_slashings: U1,
    attestation: AttestationElectra<E>, max_attestations: U8,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload.
        pub execution_payload: ExecutionPayloadDeneb<E>,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
        /// Commitments to the block's blobs.
        pub blob_kzg_commitments: VariableList<KzgCommitment, E::MaxBlobCommitmentsPerBlock>,
        /// Deposits, withdrawals and consolidations requested by the execution layer.
        pub execution_requests: ExecutionRequests<E>,
    }
);

block_body!(
    /// `BlindedBeaconBlockBody` of Electra, unchanged in Fulu.
    BlindedBeaconBlockBodyElectra,
    attester_slashing: AttesterSlashingElectra<E>, max_attester_slashings: U1,
    attestation: AttestationElectra<E>, max_attestations: U8,
    {
        /// The sync committee's aggregate.
        pub sync_aggregate: SyncAggregate<E>,
        /// The execution payload's header.
        pub execution_payload_header: ExecutionPayloadHeaderDeneb,
        /// Withdrawal-credential changes.
        pub bls_to_execution_changes: VariableList<SignedBlsToExecutionChange, U16>,
        /// Commitments to the block's blobs.
        pub blob_kzg_commitments: VariableList<KzgCommitment, E::MaxBlobCommitmentsPerBlock>,
        /// Deposits, withdrawals and consolidations requested by the execution layer.
        pub execution_requests: ExecutionRequests<E>,
    }
);

/// The fee recipient and block hash of a body without a payload (before
/// Bellatrix): zero, as before the merge.
fn no_payload<T>(_body: &T) -> (ExecutionAddress, Root) {
    (ExecutionAddress::ZERO, Root::ZERO)
}

macro_rules! block {
    ($(#[$meta:meta])* $name:ident, $body:ident, payload_ids: $ids:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
        #[serde(bound = "E: EthSpec")]
        pub struct $name<E: EthSpec> {
            /// The slot.
            pub slot: Slot,
            /// The proposer.
            pub proposer_index: ValidatorIndex,
            /// The parent block's root.
            pub parent_root: Root,
            /// The post-state root.
            pub state_root: Root,
            /// The body.
            pub body: $body<E>,
        }

        impl<E: EthSpec> $name<E> {
            /// The header of this block (the body replaced by its root).
            pub fn header(&self) -> BeaconBlockHeader {
                BeaconBlockHeader {
                    slot: self.slot,
                    proposer_index: self.proposer_index,
                    parent_root: self.parent_root,
                    state_root: self.state_root,
                    body_root: self.body.tree_hash_root(),
                }
            }

            /// The execution payload's fee recipient and block hash (zero
            /// before the merge completed on the chain, and before
            /// Bellatrix).
            pub fn fee_recipient_and_block_hash(&self) -> (ExecutionAddress, Root) {
                let ids: fn(&$body<E>) -> (ExecutionAddress, Root) = $ids;
                ids(&self.body)
            }
        }
    };
}

block!(
    /// `BeaconBlock` of Phase 0.
    BeaconBlockPhase0,
    BeaconBlockBodyPhase0,
    payload_ids: no_payload
);
block!(
    /// `BeaconBlock` of Altair.
    BeaconBlockAltair,
    BeaconBlockBodyAltair,
    payload_ids: no_payload
);
block!(
    /// `BeaconBlock` of Bellatrix.
    BeaconBlockBellatrix,
    BeaconBlockBodyBellatrix,
    payload_ids: |b| (b.execution_payload.fee_recipient, b.execution_payload.block_hash)
);
block!(
    /// `BeaconBlock` of Capella.
    BeaconBlockCapella,
    BeaconBlockBodyCapella,
    payload_ids: |b| (b.execution_payload.fee_recipient, b.execution_payload.block_hash)
);
block!(
    /// `BeaconBlock` of Deneb.
    BeaconBlockDeneb,
    BeaconBlockBodyDeneb,
    payload_ids: |b| (b.execution_payload.fee_recipient, b.execution_payload.block_hash)
);
block!(
    /// `BeaconBlock` of Electra and Fulu.
    BeaconBlockElectra,
    BeaconBlockBodyElectra,
    payload_ids: |b| (b.execution_payload.fee_recipient, b.execution_payload.block_hash)
);
block!(
    /// `BlindedBeaconBlock` of Bellatrix.
    BlindedBeaconBlockBellatrix,
    BlindedBeaconBlockBodyBellatrix,
    payload_ids: |b| (
        b.execution_payload_header.fee_recipient,
        b.execution_payload_header.block_hash
    )
);
block!(
    /// `BlindedBeaconBlock` of Capella.
    BlindedBeaconBlockCapella,
    BlindedBeaconBlockBodyCapella,
    payload_ids: |b| (
        b.execution_payload_header.fee_recipient,
        b.execution_payload_header.block_hash
    )
);
block!(
    /// `BlindedBeaconBlock` of Deneb.
    BlindedBeaconBlockDeneb,
    BlindedBeaconBlockBodyDeneb,
    payload_ids: |b| (
        b.execution_payload_header.fee_recipient,
        b.execution_payload_header.block_hash
    )
);
block!(
    /// `BlindedBeaconBlock` of Electra and Fulu.
    BlindedBeaconBlockElectra,
    BlindedBeaconBlockBodyElectra,
    payload_ids: |b| (
        b.execution_payload_header.fee_recipient,
        b.execution_payload_header.block_hash
    )
);

macro_rules! blind {
    ($full_block:ident, $blinded_block:ident, $blinded_body:ident, [$($copied:ident),*]) => {
        impl<E: EthSpec> $full_block<E> {
            /// The blinded form of this block: the payload replaced by its
            /// header. It has the same root, so one signature serves both.
            pub fn to_blinded(&self) -> $blinded_block<E> {
                let body = &self.body;
                $blinded_block {
                    slot: self.slot,
                    proposer_index: self.proposer_index,
                    parent_root: self.parent_root,
                    state_root: self.state_root,
                    body: $blinded_body {
                        randao_reveal: body.randao_reveal,
                        eth1_data: body.eth1_data.clone(),
                        graffiti: body.graffiti,
                        proposer_slashings: body.proposer_slashings.clone(),
                        attester_slashings: body.attester_slashings.clone(),
                        attestations: body.attestations.clone(),
                        deposits: body.deposits.clone(),
                        voluntary_exits: body.voluntary_exits.clone(),
                        sync_aggregate: body.sync_aggregate.clone(),
                        execution_payload_header: body.execution_payload.to_header(),
                        $($copied: body.$copied.clone(),)*
                    },
                }
            }
        }
    };
}

blind!(
    BeaconBlockBellatrix,
    BlindedBeaconBlockBellatrix,
    BlindedBeaconBlockBodyBellatrix,
    []
);
blind!(
    BeaconBlockCapella,
    BlindedBeaconBlockCapella,
    BlindedBeaconBlockBodyCapella,
    [bls_to_execution_changes]
);
blind!(
    BeaconBlockDeneb,
    BlindedBeaconBlockDeneb,
    BlindedBeaconBlockBodyDeneb,
    [bls_to_execution_changes, blob_kzg_commitments]
);
blind!(
    BeaconBlockElectra,
    BlindedBeaconBlockElectra,
    BlindedBeaconBlockBodyElectra,
    [
        bls_to_execution_changes,
        blob_kzg_commitments,
        execution_requests
    ]
);

macro_rules! fork_enum {
    (
        $(#[$meta:meta])* $name:ident, $what:literal,
        [$($fork:ident($block:ident)),*]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
        #[serde(untagged, bound = "E: EthSpec")]
        pub enum $name<E: EthSpec> {
            $(
                #[doc = concat!("In the layout of ", stringify!($fork), ".")]
                $fork($block<E>),
            )*
        }

        impl<E: EthSpec> $name<E> {
            /// The fork whose layout this is.
            pub fn fork_name(&self) -> ForkName {
                match self {
                    $($name::$fork(_) => ForkName::$fork,)*
                }
            }

            /// The block's slot.
            pub fn slot(&self) -> Slot {
                match self {
                    $($name::$fork(b) => b.slot,)*
                }
            }

            /// The proposer's index.
            pub fn proposer_index(&self) -> ValidatorIndex {
                match self {
                    $($name::$fork(b) => b.proposer_index,)*
                }
            }

            /// The proposer's randao reveal.
            pub fn randao_reveal(&self) -> SignatureBytes {
                match self {
                    $($name::$fork(b) => b.body.randao_reveal,)*
                }
            }

            /// The execution payload's fee recipient and block hash (zero
            /// before the merge completed on the chain, and before
            /// Bellatrix).
            pub fn fee_recipient_and_block_hash(&self) -> (ExecutionAddress, Root) {
                match self {
                    $($name::$fork(b) => b.fee_recipient_and_block_hash(),)*
                }
            }

            /// The header; its root equals the block's root.
            pub fn header(&self) -> BeaconBlockHeader {
                match self {
                    $($name::$fork(b) => b.header(),)*
                }
            }

            /// hash_tree_root, the object a proposer signs.
            pub fn tree_hash_root(&self) -> Root {
                match self {
                    $($name::$fork(b) => b.tree_hash_root(),)*
                }
            }

            /// The SSZ encoding.
            pub fn as_ssz_bytes(&self) -> Vec<u8> {
                match self {
                    $($name::$fork(b) => b.as_ssz_bytes(),)*
                }
            }

            /// Decodes SSZ in the layout of `fork`.
            pub fn from_ssz_bytes(bytes: &[u8], fork: ForkName) -> Result<Self, Error> {
                let ssz_error = |e: ssz::DecodeError| Error::Ssz {
                    container: $what,
                    reason: format!("{e:?}"),
                };
                // The full block's list covers every fork.
                #[allow(unreachable_patterns, reason = "one macro for both enums")]
                match fork {
                    $(ForkName::$fork => $block::from_ssz_bytes(bytes).map($name::$fork),)*
                    _ => return Err(Error::NotAtFork { container: $what, fork }),
                }
                .map_err(ssz_error)
            }

            /// Decodes JSON in the layout of `fork` (the `Eth-Consensus-Version` header).
            pub fn from_json_value(value: serde_json::Value, fork: ForkName) -> Result<Self, Error> {
                let json_error = |e: serde_json::Error| Error::Json {
                    container: $what,
                    reason: e.to_string(),
                };
                #[allow(unreachable_patterns, reason = "one macro for both enums")]
                match fork {
                    $(ForkName::$fork => serde_json::from_value(value).map($name::$fork),)*
                    _ => return Err(Error::NotAtFork { container: $what, fork }),
                }
                .map_err(json_error)
            }
        }
    };
}

fork_enum!(
    /// A full block of any fork.
    BeaconBlock,
    "BeaconBlock",
    [
        Phase0(BeaconBlockPhase0),
        Altair(BeaconBlockAltair),
        Bellatrix(BeaconBlockBellatrix),
        Capella(BeaconBlockCapella),
        Deneb(BeaconBlockDeneb),
        Electra(BeaconBlockElectra),
        Fulu(BeaconBlockElectra)
    ]
);

fork_enum!(
    /// A blinded block (payload replaced by its header) of any fork from
    /// Bellatrix on.
    BlindedBeaconBlock,
    "BlindedBeaconBlock",
    [
        Bellatrix(BlindedBeaconBlockBellatrix),
        Capella(BlindedBeaconBlockCapella),
        Deneb(BlindedBeaconBlockDeneb),
        Electra(BlindedBeaconBlockElectra),
        Fulu(BlindedBeaconBlockElectra)
    ]
);

impl<E: EthSpec> BeaconBlock<E> {
    /// The blinded form of this block, with the same root; `None` before
    /// Bellatrix, which has no payload to blind.
    pub fn to_blinded(&self) -> Option<BlindedBeaconBlock<E>> {
        Some(match self {
            BeaconBlock::Phase0(_) | BeaconBlock::Altair(_) => return None,
            BeaconBlock::Bellatrix(b) => BlindedBeaconBlock::Bellatrix(b.to_blinded()),
            BeaconBlock::Capella(b) => BlindedBeaconBlock::Capella(b.to_blinded()),
            BeaconBlock::Deneb(b) => BlindedBeaconBlock::Deneb(b.to_blinded()),
            BeaconBlock::Electra(b) => BlindedBeaconBlock::Electra(b.to_blinded()),
            BeaconBlock::Fulu(b) => BlindedBeaconBlock::Fulu(b.to_blinded()),
        })
    }
}
