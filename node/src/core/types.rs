//! The core's vocabulary with its driver: the configuration, the events it
//! takes, the actions it returns, the validator client's requests and the
//! answers to them, and the objects it submits. Everything here is public
//! (the runtime, the validator API and the simulator use it) and re-exported
//! at `phalanx_node::core`.

use std::time::Duration;

use phalanx_consensus::{OperatorIndex, Round, Wire};
use phalanx_eth::api::{AttesterDuty, ProposerDuty, ProposerPreparation, SyncDuty};
use phalanx_eth::attestation::{
    AggregateAndProof, Attestation, AttestationData, BeaconCommitteeSelection, SingleAttestation,
    SyncCommitteeSelection,
};
use phalanx_eth::block_contents::ProducedBlock;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::sync_committee::{
    SignedContributionAndProof, SyncCommitteeContribution, SyncCommitteeMessage,
};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, ExecutionAddress, ForkName, PublicKeyBytes, Root,
    SignatureBytes, Slot, ValidatorIndex,
};

use super::aggregation::AggregateSubmission;
use super::proposer::BlockSubmission;
use crate::duty::Duty;
use crate::error::DropReason;
use crate::parsigex::PartialMessage;
use crate::scheme::{Bls, SignatureScheme};
use crate::tracker::Outcome;
use crate::value::DutyValue;

/// One validator of the cluster: its group key and every operator's share.
#[derive(Clone, Debug)]
pub struct ValidatorKeys<S: SignatureScheme = Bls> {
    /// The group public key (the validator's key on chain).
    pub group: S::PublicKey,
    /// Operator i's public share at index i (share index i + 1).
    pub shares: Vec<S::PublicKey>,
    /// Where its blocks' execution fees must go (from the lock), if fixed.
    pub fee_recipient: Option<ExecutionAddress>,
    /// Its builder registration from the lock, signed by the group key.
    pub registration: Option<SignedValidatorRegistration>,
}

/// What a core needs to know about its cluster and chain.
#[derive(Clone, Debug)]
pub struct CoreConfig<S: SignatureScheme = Bls> {
    /// This operator (its share index is the operator index + 1).
    pub me: OperatorIndex,
    /// The cluster lock's hash: signed into every consensus message, so
    /// that no message of another cluster counts in this one.
    pub lock_hash: [u8; 32],
    /// Partials needed to combine.
    pub threshold: usize,
    /// The cluster's validators.
    pub validators: Vec<ValidatorKeys<S>>,
    /// The network.
    pub network: NetworkConfig,
    /// Genesis, in Unix milliseconds.
    pub genesis_time_ms: u64,
    /// The chain's genesis validators root (signature domains).
    pub genesis_validators_root: Root,
    /// Seeds the randomness of batch verification. In production it must
    /// be unpredictable to the peers (from the operating system): a peer that
    /// knew the batch weights could send partials that cancel out.
    pub seed: [u8; 32],
    /// The graffiti of the cluster's blocks when the validator client asks
    /// for none.
    pub graffiti: Option<Root>,
    /// Whether blocks may come from builders: the validators' registrations
    /// are then submitted every epoch.
    pub builder_api: bool,
    /// Deliberate defects: none in a real node. The simulator's tests switch
    /// them on to prove that its invariants catch a broken node.
    #[doc(hidden)]
    pub defects: Defects,
}

/// Deliberate defects for the simulator's tests: each breaks one of the
/// node's safeguards. A real node runs with none (the default), and no
/// command-line flag or file sets them. Only with the `test-utils` feature
/// can one be switched on; without it this is an empty type and none of
/// the defective code is compiled.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Combine partial signatures one short of the threshold.
    #[cfg(feature = "test-utils")]
    pub combine_below_threshold: bool,
    /// Take partial signatures without verifying them.
    #[cfg(feature = "test-utils")]
    pub skip_partial_checks: bool,
    /// Let the decided-value store (and the slashing check of decided
    /// attestations) take a second, different value for a duty.
    #[cfg(feature = "test-utils")]
    pub accept_second_value: bool,
    /// Check a peer's partials as the node did before it bounded them: no
    /// batch bounds, no allowance per sender, no root refused before
    /// verification, no duty checked against the schedule, and the bad
    /// partials of a batch that does not verify
    /// found by bisection at this node's cost.
    #[cfg(feature = "test-utils")]
    pub bisect_peer_batches: bool,
}

impl Defects {
    /// Whether partials combine one short of the threshold.
    pub(super) fn combines_below_threshold(self) -> bool {
        #[cfg(feature = "test-utils")]
        {
            self.combine_below_threshold
        }
        #[cfg(not(feature = "test-utils"))]
        {
            false
        }
    }

    /// Whether a peer's partials go unbudgeted and a bad batch is bisected.
    pub(super) fn bisects_peer_batches(self) -> bool {
        #[cfg(feature = "test-utils")]
        {
            self.bisect_peer_batches
        }
        #[cfg(not(feature = "test-utils"))]
        {
            false
        }
    }

    /// Whether partials are taken without verifying them.
    pub(super) fn skips_partial_checks(self) -> bool {
        #[cfg(feature = "test-utils")]
        {
            self.skip_partial_checks
        }
        #[cfg(not(feature = "test-utils"))]
        {
            false
        }
    }
}

/// What the driver tells the core.
#[derive(Debug)]
pub enum Event<E: EthSpec> {
    /// Time passed (the driver ticks often; the core does what is due).
    Tick,
    /// The operators this node cannot reach now; replaces
    /// the previous list. A consensus round led by one of them is cut
    /// short (see [`UNREACHABLE_LEADER_TIMEOUT`]).
    Unreachable(Vec<OperatorIndex>),
    /// The beacon node's indices of the cluster's validators (group keys).
    Indices(Vec<(PublicKeyBytes, ValidatorIndex)>),
    /// Looking up indices failed.
    IndicesFailed(String),
    /// The beacon node's duties of the cluster's validators for an epoch.
    Duties {
        /// The epoch.
        epoch: Epoch,
        /// Attester duties (keys are group keys).
        attester: Vec<AttesterDuty>,
        /// Sync-committee duties.
        sync: Vec<SyncDuty>,
    },
    /// The beacon node's proposers of the current epoch (every one; the
    /// core keeps the cluster's), or why there are none.
    Proposers {
        /// The epoch.
        epoch: Epoch,
        /// The duties.
        result: Result<Vec<ProposerDuty>, String>,
    },
    /// The answer to [`Action::FetchBlock`].
    Block {
        /// The duty.
        duty: Duty,
        /// The block, or why there is none.
        result: Result<Box<ProducedBlock<E>>, String>,
    },
    /// The beacon node's chain reorganised in a way that may change the
    /// duties of `epoch` (a `chain_reorg` event, or a new dependent root):
    /// they are resolved again, and the next epoch's.
    Reorg {
        /// The first epoch whose duties may have changed.
        epoch: Epoch,
    },
    /// Resolving an epoch's duties failed; retried a slot later.
    DutiesFailed {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        error: String,
    },
    /// The answer to [`Action::FetchAttestationData`]: data per committee asked.
    AttestationData {
        /// The duty.
        duty: Duty,
        /// Data per committee asked, or why there is none.
        result: Result<Vec<(CommitteeIndex, AttestationData)>, String>,
    },
    /// The answer to [`Action::FetchAggregates`]: an aggregate per committee.
    Aggregates {
        /// The duty.
        duty: Duty,
        /// Aggregates by committee, or why there are none.
        result: Result<Vec<(CommitteeIndex, Attestation<E>)>, String>,
    },
    /// The answer to [`Action::FetchContributions`].
    Contributions {
        /// The duty.
        duty: Duty,
        /// Contributions, or why there are none.
        result: Result<Vec<SyncCommitteeContribution<E>>, String>,
    },
    /// A consensus message from a peer.
    Consensus {
        /// The peer.
        from: OperatorIndex,
        /// The message.
        message: Wire<Duty, DutyValue>,
    },
    /// A timer of [`Action::SetTimer`] fired.
    Timer {
        /// The duty.
        duty: Duty,
        /// The round it was set for.
        round: Round,
    },
    /// A peer's message that did not decode (`what`: `consensus` or
    /// `partial`): a fault, dropped and penalised like any other.
    Undecodable {
        /// The peer.
        from: OperatorIndex,
        /// What it claimed to be.
        what: &'static str,
    },
    /// Partial signatures from a peer.
    Partials {
        /// The peer.
        from: OperatorIndex,
        /// The partials.
        partials: Vec<PartialMessage>,
    },
    /// A request of this operator's validator client.
    Vc {
        /// The driver's reference, returned in [`Action::Reply`].
        id: u64,
        /// The request.
        request: VcRequest<E>,
    },
    /// How a submission of [`Action::Submit`] went.
    Submitted {
        /// The duty.
        duty: Duty,
        /// The validators whose signatures were in it.
        validators: Vec<PublicKeyBytes>,
        /// The beacon node's answer.
        result: Result<(), String>,
    },
}

/// A validator client's request the core answers (the validator API parses
/// HTTP into these; endpoints that need no cluster decision it serves
/// itself).
#[derive(Clone, Debug)]
pub enum VcRequest<E: EthSpec> {
    /// `GET /eth/v1/validator/attestation_data`.
    AttestationData {
        /// The slot.
        slot: Slot,
        /// The committee.
        committee_index: CommitteeIndex,
    },
    /// `POST …/beacon/pool/attestations`, each signed with this operator's share.
    Attestations(Vec<VcAttestation>),
    /// `POST /eth/v1/beacon/pool/sync_committees`.
    SyncMessages(Vec<SyncCommitteeMessage>),
    /// `POST /eth/v1/validator/beacon_committee_selections`: partial
    /// selection proofs in, the cluster's combined ones out.
    BeaconCommitteeSelections(Vec<BeaconCommitteeSelection>),
    /// `POST /eth/v1/validator/sync_committee_selections`.
    SyncCommitteeSelections(Vec<SyncCommitteeSelection>),
    /// `GET …/validator/aggregate_attestation`.
    AggregateAttestation {
        /// The slot.
        slot: Slot,
        /// The root of the attestation data to aggregate.
        data_root: Root,
        /// The committee (v2; v1 names it by the data's index).
        committee_index: Option<CommitteeIndex>,
    },
    /// `POST …/validator/aggregate_and_proofs`, signed with this operator's share.
    AggregateAndProofs(Vec<VcSigned<AggregateAndProof<E>>>),
    /// `GET /eth/v1/validator/sync_committee_contribution`.
    SyncContribution {
        /// The slot.
        slot: Slot,
        /// The subcommittee.
        subcommittee_index: u64,
    },
    /// `POST /eth/v1/validator/contribution_and_proofs`.
    ContributionAndProofs(Vec<SignedContributionAndProof<E>>),
    /// Whether each validator aggregates at its slot, by the cluster's
    /// combined selection proofs (for committee subscriptions).
    Aggregators(Vec<(Slot, ValidatorIndex)>),
    /// `POST /eth/v1/beacon/pool/voluntary_exits`, signed with this
    /// operator's share (from `phalanx exit` or the client's own command).
    VoluntaryExits(Vec<SignedVoluntaryExit>),
    /// `POST /eth/v1/validator/register_validator`.
    Registrations(Vec<SignedValidatorRegistration>),
    /// The lock's fee recipient of each validator (for
    /// `prepare_beacon_proposer`).
    FeeRecipients(Vec<ValidatorIndex>),
    /// `GET /eth/v3/validator/blocks/{slot}` (and v2), with the share's
    /// randao reveal.
    ProduceBlock {
        /// The slot.
        slot: Slot,
        /// The partial randao reveal.
        randao_reveal: SignatureBytes,
        /// The graffiti the client asks for.
        graffiti: Option<Root>,
        /// The client's preference between builder and local payloads.
        builder_boost_factor: Option<u64>,
    },
    /// `POST …/beacon/blocks` or `blinded_blocks`: the client's signature
    /// of the decided block.
    PublishBlock {
        /// The slot.
        slot: Slot,
        /// The root of the block the client signed.
        block_root: Root,
        /// The partial signature.
        signature: SignatureBytes,
    },
}

/// A message and a validator client's partial signature of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcSigned<T> {
    /// The message.
    pub message: T,
    /// The partial signature.
    pub signature: SignatureBytes,
}

/// One attestation as a validator client submits it, in either layout.
#[derive(Clone, Debug)]
pub struct VcAttestation {
    /// The vote.
    pub data: AttestationData,
    /// Who signed: by validator index (Electra's `SingleAttestation`) or
    /// by its index in the committee (the single bit of a phase-0
    /// `Attestation`).
    pub attester: Attester,
    /// The committee (Electra: `committee_index`; before: `data.index`).
    pub committee_index: CommitteeIndex,
    /// The partial signature.
    pub signature: SignatureBytes,
}

/// How an attestation names its attester.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attester {
    /// The validator index.
    Index(ValidatorIndex),
    /// The validator's index in its committee (the beacon API's
    /// `validator_committee_index`).
    ValidatorCommitteeIndex(u64),
}

/// The core's answer to a validator-client request.
#[derive(Clone, Debug, PartialEq)]
pub enum VcResponse<E: EthSpec> {
    /// The decided attestation data.
    AttestationData(AttestationData),
    /// Everything submitted was accepted.
    Accepted,
    /// The combined selection proofs, in request order.
    BeaconCommitteeSelections(Vec<BeaconCommitteeSelection>),
    /// The combined sync selection proofs, in request order.
    SyncCommitteeSelections(Vec<SyncCommitteeSelection>),
    /// The aggregate the cluster decided.
    Aggregate(Box<Attestation<E>>),
    /// The sync-committee contribution the cluster decided.
    Contribution(Box<SyncCommitteeContribution<E>>),
    /// Per query: aggregates or not, or `None` when not known yet.
    Aggregators(Vec<Option<bool>>),
    /// The block the cluster decided.
    Block(Box<ProducedBlock<E>>),
    /// Per index: the lock's fee recipient, or `None` for a validator that
    /// is not the cluster's.
    FeeRecipients(Vec<Option<ExecutionAddress>>),
}

/// A refused request: status, message and per-item failures (as the
/// beacon API's error body carries them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
    /// For list submissions: the index of each refused item in the
    /// request and why.
    pub failures: Vec<(usize, String)>,
}

impl ApiFailure {
    pub(super) fn new(status: u16, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            message: message.into(),
            failures: Vec::new(),
        }
    }
}

/// A combined, verified object for the beacon node.
#[derive(Clone, Debug)]
pub enum Submission<E: EthSpec> {
    /// An attestation (`SingleAttestation` from Electra on).
    Attestation(ForkName, AttestationSubmission<E>),
    /// A sync-committee message.
    SyncMessage(Box<SyncCommitteeMessage>),
    /// A signed aggregate and proof.
    Aggregate(ForkName, AggregateSubmission<E>),
    /// A signed contribution and proof.
    Contribution(Box<SignedContributionAndProof<E>>),
    /// A signed block.
    Block(ForkName, BlockSubmission<E>),
    /// A signed voluntary exit.
    Exit(Box<SignedVoluntaryExit>),
    /// Signed builder registrations.
    Registrations(Vec<SignedValidatorRegistration>),
}

/// An attestation in the layout of its fork (serialized as that layout).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged, bound = "E: EthSpec")]
pub enum AttestationSubmission<E: EthSpec> {
    /// Before Electra.
    Base(Box<Attestation<E>>),
    /// Electra on.
    Single(Box<SingleAttestation>),
}

/// What the core asks its driver to do.
#[derive(Debug)]
pub enum Action<E: EthSpec> {
    /// Look up the validator indices of these group keys.
    ResolveIndices(Vec<PublicKeyBytes>),
    /// Fetch the proposers of the current epoch (beacon nodes know them
    /// only once the epoch has begun).
    ResolveProposers {
        /// The epoch.
        epoch: Epoch,
    },
    /// Fetch attester and sync duties of an epoch for these indices, and
    /// tell the beacon node where their fees go.
    ResolveDuties {
        /// The epoch.
        epoch: Epoch,
        /// The cluster's validators' indices.
        indices: Vec<ValidatorIndex>,
        /// The lock's fee recipients of the validators that have one.
        preparations: Vec<ProposerPreparation>,
    },
    /// Ask the beacon node for attestation data of these committees.
    FetchAttestationData {
        /// The duty.
        duty: Duty,
        /// The committees to ask for (one, index 0, from Electra on).
        committees: Vec<CommitteeIndex>,
    },
    /// Ask the beacon node for the aggregate of each committee's decided
    /// attestation data (by its root).
    FetchAggregates {
        /// The duty.
        duty: Duty,
        /// Committee and attestation data root.
        requests: Vec<(CommitteeIndex, Root)>,
    },
    /// Ask the beacon node for sync-committee contributions of these
    /// subcommittees over `block_root` (its head's root if `None`).
    FetchContributions {
        /// The duty.
        duty: Duty,
        /// The head the cluster's sync messages signed, if known.
        block_root: Option<Root>,
        /// The subcommittees.
        subcommittees: Vec<u64>,
    },
    /// Ask the beacon node for a block with the combined randao reveal.
    FetchBlock {
        /// The duty.
        duty: Duty,
        /// The combined randao reveal.
        randao_reveal: SignatureBytes,
        /// The graffiti.
        graffiti: Option<Root>,
        /// The validator client's builder preference.
        builder_boost_factor: Option<u64>,
    },
    /// Send a consensus message to every peer.
    ConsensusBroadcast(Wire<Duty, DutyValue>),
    /// Send a consensus message to one peer.
    ConsensusSend {
        /// The peer.
        to: OperatorIndex,
        /// The message.
        message: Wire<Duty, DutyValue>,
    },
    /// Fire [`Event::Timer`] after `after` (replacing the duty's timer).
    SetTimer {
        /// The duty.
        duty: Duty,
        /// The round.
        round: Round,
        /// How long from now.
        after: Duration,
    },
    /// The duty needs no timer any more.
    StopTimer(Duty),
    /// Send this node's partials to every peer.
    SendPartials(Vec<PartialMessage>),
    /// Submit to the beacon node.
    Submit {
        /// The duty.
        duty: Duty,
        /// The validator.
        validator: PublicKeyBytes,
        /// The object.
        submission: Submission<E>,
    },
    /// Answer a validator-client request.
    Reply {
        /// The request's reference.
        id: u64,
        /// The answer.
        result: Result<VcResponse<E>, ApiFailure>,
    },
    /// Consensus decided a duty.
    Decided {
        /// The duty.
        duty: Duty,
        /// The round.
        round: u64,
        /// The SHA-256 of the decided value (every node must decide the
        /// same; the simulator checks it).
        value_hash: [u8; 32],
    },
    /// A duty's outcome (once per duty).
    Outcome {
        /// The duty.
        duty: Duty,
        /// Success or the reason for failure.
        outcome: Outcome,
    },
    /// Something a peer sent was dropped.
    Dropped {
        /// The peer.
        from: OperatorIndex,
        /// What it was and why (with a stable label).
        reason: DropReason,
    },
    /// The cluster combined a new builder registration for a validator: it
    /// replaces the lock's, and must outlive a restart.
    Registered(SignedValidatorRegistration),
    /// Slashing protection refused a decided value for a validator.
    Refused {
        /// The duty.
        duty: Duty,
        /// The validator.
        validator: PublicKeyBytes,
        /// Why.
        reason: String,
    },
}

/// How long a round led by an operator this node cannot reach lasts.
pub const UNREACHABLE_LEADER_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest the driver waits between ticks (see [`super::Core::next_tick_ms`]).
pub const HOUSEKEEPING_MS: u64 = 200;

/// How many epochs the partials of an exit or a new builder registration
/// wait for the other operators' after the duty's epoch (about 3.4 hours on
/// mainnet): operators sign these when they get to it, not at a slot.
pub const UNBOUND_EPOCHS: u64 = 32;
