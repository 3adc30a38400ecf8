//! Beacon-API response and request shapes that are not consensus containers:
//! genesis, node status, validators, duties, proposer preparation and
//! events. Field names and quoting follow the beacon-APIs specification.

use serde::{Deserialize, Serialize};

use crate::primitives::{
    CommitteeIndex, Epoch, ExecutionAddress, Gwei, PublicKeyBytes, Root, Slot, ValidatorIndex,
    Version,
};

/// The `{"data": …}` envelope of most responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// `GET /eth/v1/beacon/genesis`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Unix seconds of slot 0.
    #[serde(with = "serde_utils::quoted_u64")]
    pub genesis_time: u64,
    /// Binds every signature to this chain.
    pub genesis_validators_root: Root,
    /// The genesis fork version.
    pub genesis_fork_version: Version,
}

/// One entry of `GET /eth/v1/config/fork_schedule`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// The version before this fork.
    pub previous_version: Version,
    /// The version from this fork on.
    pub current_version: Version,
    /// The fork's first epoch.
    pub epoch: Epoch,
}

/// `GET /eth/v1/node/syncing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Syncing {
    /// The head slot.
    pub head_slot: Slot,
    /// Slots behind the network.
    pub sync_distance: Slot,
    /// Whether the node is syncing.
    pub is_syncing: bool,
    /// Whether the head is optimistic (execution not yet verified).
    #[serde(default)]
    pub is_optimistic: bool,
    /// Whether the execution client is offline.
    #[serde(default)]
    pub el_offline: bool,
}

/// `GET /eth/v1/node/version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVersion {
    /// Client name and version, e.g. `Lighthouse/v7.0.0`.
    pub version: String,
}

/// A validator record in the beacon state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    /// The validator's public key.
    pub pubkey: PublicKeyBytes,
    /// Withdrawal credentials.
    pub withdrawal_credentials: Root,
    /// Effective balance.
    pub effective_balance: Gwei,
    /// Whether it was slashed.
    pub slashed: bool,
    /// When it became eligible for activation.
    pub activation_eligibility_epoch: Epoch,
    /// When it was activated.
    pub activation_epoch: Epoch,
    /// When it exits.
    pub exit_epoch: Epoch,
    /// When it may withdraw.
    pub withdrawable_epoch: Epoch,
}

/// One entry of `GET|POST /eth/v1/beacon/states/{state_id}/validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorData {
    /// Its index.
    pub index: ValidatorIndex,
    /// Its balance.
    pub balance: Gwei,
    /// `pending_initialized`, `active_ongoing`, `exited_slashed`, …
    pub status: String,
    /// The record.
    pub validator: ValidatorRecord,
}

/// The body of `POST /eth/v1/beacon/states/{state_id}/validators`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsQuery {
    /// Indices or `0x` public keys.
    pub ids: Vec<String>,
    /// Statuses to keep (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
}

/// A duties response: the duties and the block root they depend on (a
/// change of that root means a reorg changed the duties).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duties<T> {
    /// The block root the duties were computed from.
    #[serde(default)]
    pub dependent_root: Option<Root>,
    /// Whether the node's head is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
    /// The duties.
    pub data: Vec<T>,
}

/// An attester duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttesterDuty {
    /// The validator's public key.
    pub pubkey: PublicKeyBytes,
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// Its committee.
    pub committee_index: CommitteeIndex,
    /// The committee's size.
    #[serde(with = "serde_utils::quoted_u64")]
    pub committee_length: u64,
    /// Committees in the slot.
    #[serde(with = "serde_utils::quoted_u64")]
    pub committees_at_slot: u64,
    /// Its position in the committee.
    #[serde(with = "serde_utils::quoted_u64")]
    pub validator_committee_index: u64,
    /// The slot to attest in.
    pub slot: Slot,
}

/// A proposer duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerDuty {
    /// The proposer's public key.
    pub pubkey: PublicKeyBytes,
    /// The proposer.
    pub validator_index: ValidatorIndex,
    /// The slot to propose in.
    pub slot: Slot,
}

/// A sync-committee duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDuty {
    /// The member's public key.
    pub pubkey: PublicKeyBytes,
    /// The member.
    pub validator_index: ValidatorIndex,
    /// Its positions in the sync committee.
    #[serde(with = "serde_utils::quoted_u64_vec")]
    pub validator_sync_committee_indices: Vec<u64>,
}

/// An entry of `POST /eth/v1/validator/prepare_beacon_proposer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerPreparation {
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// Where its execution fees go.
    pub fee_recipient: ExecutionAddress,
}

/// The `head` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEvent {
    /// The new head's slot.
    pub slot: Slot,
    /// The new head block.
    pub block: Root,
    /// Its post-state.
    pub state: Root,
    /// Whether the head crossed an epoch boundary.
    pub epoch_transition: bool,
    /// Dependent root of the previous epoch's duties.
    #[serde(default)]
    pub previous_duty_dependent_root: Option<Root>,
    /// Dependent root of the current epoch's duties.
    #[serde(default)]
    pub current_duty_dependent_root: Option<Root>,
    /// Whether the head is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// The `block` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    /// The block's slot.
    pub slot: Slot,
    /// The block's root.
    pub block: Root,
    /// Whether it is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// The `chain_reorg` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReorgEvent {
    /// The slot of the new head.
    pub slot: Slot,
    /// How many blocks were replaced.
    #[serde(with = "serde_utils::quoted_u64")]
    pub depth: u64,
    /// The old head block.
    pub old_head_block: Root,
    /// The new head block.
    pub new_head_block: Root,
    /// The old head state.
    pub old_head_state: Root,
    /// The new head state.
    pub new_head_state: Root,
    /// The epoch of the reorg.
    pub epoch: Epoch,
    /// Whether the new head is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// An event from `GET /eth/v1/events`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new head.
    Head(HeadEvent),
    /// A new block.
    Block(BlockEvent),
    /// A reorganisation.
    ChainReorg(ChainReorgEvent),
}
