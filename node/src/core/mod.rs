//! The duty pipeline of one node as a single sans-IO state machine.
//!
//! [`Core::handle`] takes the time and one [`Event`] (a clock tick, a
//! beacon-node answer, a peer's consensus message or partial signatures, a
//! request of the own validator client) and returns [`Action`]s for the
//! driver: calls to make, messages to send, timers to set, replies to give.
//! The real node drives it with tokio, libp2p and HTTP (`runtime`); the
//! simulator drives the very same code in virtual time.
//!
//! Per duty: the scheduler part starts it at its time (from the `timing`
//! module), the fetcher asks the beacon node for its unsigned data,
//! consensus decides one value for all its validators, the decided value is
//! checked against slashing protection and stored, the validator client
//! signs it with its share, partials are verified, exchanged and combined,
//! the combined signature is verified under the group key and submitted.
//! The tracker gives every duty an outcome by its deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::time::Duration;

use phalanx_consensus::{
    self as qbft, Committee, Engine, LeaderSelection, OperatorIndex, Parts, RotatingLeader, Round,
    RoundTimeout, Signer, Validity, Value as _, Verifier, Wire,
};
use phalanx_crypto::threshold::ShareIndex;
use phalanx_eth::api::{AttesterDuty, ProposerDuty, ProposerPreparation, SyncDuty};
use phalanx_eth::attestation::{
    AggregateAndProof, Attestation, AttestationBase, AttestationData, BeaconCommitteeSelection,
    SingleAttestation, SyncCommitteeSelection,
};
use phalanx_eth::block_contents::ProducedBlock;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::signing::{
    compute_signing_root, DOMAIN_BEACON_ATTESTER, DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE,
    DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
};
use phalanx_eth::sync_committee::{
    SignedContributionAndProof, SyncAggregatorSelectionData, SyncCommitteeContribution,
    SyncCommitteeMessage,
};
use phalanx_eth::validator::{
    SignedValidatorRegistration, SignedVoluntaryExit, ValidatorRegistration,
};
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, ExecutionAddress, ForkName, PublicKeyBytes, Root,
    SignatureBytes, Slot, ValidatorIndex,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ssz_types::BitList;

use crate::duty::{Duty, DutyType};

mod aggregation;
mod proposer;
mod signed;

use crate::dutydb::DutyDb;
use crate::parsigdb::ParSigDb;
use crate::parsigex::PartialMessage;
use crate::scheme::{Bls, Check, Partial, SignatureScheme};
use crate::sigagg::{self, Combination};
use crate::slashing::{Safety, SlashingDb};
use crate::timing::{duty_timing, round_timeout};
use crate::tracker::{Failure, Outcome, Tracker};
use crate::value::{decode_attestation_data, encode_attestation_data, DutyValue};
pub use aggregation::AggregateSubmission;
use aggregation::{AggregateQuery, PendingAggregate};
pub use proposer::{decode_block, encode_block, BlockSubmission};
use proposer::{BlockWishes, EarlyBlock, PendingBlock, Proposer};

/// One validator of the cluster: its group key and every operator's share.
#[derive(Clone, Debug)]
pub struct ValidatorKeys<S: SignatureScheme = Bls> {
    /// The group public key (the validator's key on chain).
    pub group: S::PublicKey,
    /// Operator i's public share at position i (share index i + 1).
    pub shares: Vec<S::PublicKey>,
    /// Where its blocks' execution fees must go (from the lock), if fixed.
    pub fee_recipient: Option<ExecutionAddress>,
    /// Its builder registration from the lock, signed by the group key.
    pub registration: Option<SignedValidatorRegistration>,
}

/// What a core needs to know about its cluster and chain.
#[derive(Clone, Debug)]
pub struct CoreConfig<S: SignatureScheme = Bls> {
    /// This operator's position in the lock (share index − 1).
    pub me: u32,
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
/// command-line flag or file sets them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Combine partial signatures one short of the threshold.
    pub combine_below_threshold: bool,
    /// Take partial signatures without verifying them.
    pub skip_partial_checks: bool,
    /// Let the decided-value store (and the slashing check of decided
    /// attestations) take a second, different value for a duty.
    pub accept_second_value: bool,
}

/// What the driver tells the core.
#[derive(Debug)]
pub enum Event<E: EthSpec> {
    /// Time passed (the driver ticks often; the core does what is due).
    Tick,
    /// The operators (lock positions) this node cannot reach now; replaces
    /// the previous list. A consensus round led by one of them is cut
    /// short (see [`UNREACHABLE_LEADER_TIMEOUT`]).
    Unreachable(Vec<u32>),
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
        /// The peer's operator index.
        from: u32,
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
    /// Partial signatures from a peer.
    Partials {
        /// The peer's operator index.
        from: u32,
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
    /// Who signed: by index (Electra's `SingleAttestation`) or by position
    /// in the committee (the single bit of a phase-0 `Attestation`).
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
    /// The position in the committee.
    Position(u64),
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
    /// For list submissions: the position of each refused item and why.
    pub failures: Vec<(usize, String)>,
}

impl ApiFailure {
    fn new(status: u16, message: impl Into<String>) -> ApiFailure {
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
        /// The peer's operator index.
        to: u32,
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
        from: u32,
        /// What it was (`consensus`, `partial`).
        what: &'static str,
        /// Why (a stable label).
        reason: String,
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

/// A core could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The cluster does not fit together.
    #[error("invalid cluster: {0}")]
    Cluster(String),
}

/// What the consensus validity predicate reads of the core's state.
struct Known<S: SignatureScheme> {
    slashing: SlashingDb,
    /// Per slot: the cluster's committees and their validators.
    committees: BTreeMap<Slot, BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>>>,
    /// Per slot: the length of each committee with a cluster validator.
    committee_lengths: BTreeMap<Slot, BTreeMap<CommitteeIndex, u64>>,
    /// Per slot: the attestation data the cluster decided, by committee.
    attestation_data: BTreeMap<Slot, BTreeMap<CommitteeIndex, AttestationData>>,
    /// Per slot: the cluster's proposer.
    proposers: BTreeMap<Slot, Proposer<S>>,
}

/// Checks a proposed value for what is objectively wrong and for slashing
/// safety of the group keys — never for agreement with this node's beacon
/// node, which would stall honest leaders whenever blocks are late.
struct DutyValidity<'a, E: EthSpec, S: SignatureScheme> {
    known: &'a Known<S>,
    network: &'a NetworkConfig,
    genesis_validators_root: Root,
    _spec: PhantomData<E>,
}

impl<E: EthSpec, S: SignatureScheme> Validity<Duty, DutyValue> for DutyValidity<'_, E, S> {
    type Error = String;

    fn check(&self, duty: &Duty, value: &DutyValue) -> Result<(), String> {
        let result = self.check_value(duty, value);
        if let Err(reason) = &result {
            tracing::debug!(%duty, reason, "a proposed value is invalid");
        }
        result
    }
}

impl<E: EthSpec, S: SignatureScheme> DutyValidity<'_, E, S> {
    fn check_value(&self, duty: &Duty, value: &DutyValue) -> Result<(), String> {
        match duty.kind {
            DutyType::Attester => {
                let entries = decode_attestation_data(value)?;
                check_attestation_data(
                    duty.slot,
                    &entries,
                    self.known.committees.get(&duty.slot),
                    self.network,
                    self.genesis_validators_root,
                    &self.known.slashing,
                )
            }
            DutyType::Aggregator => {
                aggregation::check_aggregates::<E, S>(duty.slot, value, self.network, self.known)
            }
            DutyType::SyncContribution => aggregation::check_contributions::<E>(duty.slot, value),
            DutyType::Proposer => proposer::check_block(duty.slot, value, self),
            other => Err(format!("{} duties are not agreed on", other.name())),
        }
    }
}

fn check_attestation_data(
    slot: Slot,
    entries: &[(CommitteeIndex, AttestationData)],
    committees: Option<&BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>>>,
    network: &NetworkConfig,
    genesis_validators_root: Root,
    slashing: &SlashingDb,
) -> Result<(), String> {
    let epoch = slot.epoch(network.slots_per_epoch());
    let electra = network
        .fork_at(epoch)
        .map_err(|f| format!("unknown fork {f}"))?;
    let electra = electra.electra_enabled();
    for (committee, data) in entries {
        if data.slot != slot {
            return Err(format!("data for slot {} in slot {slot}", data.slot));
        }
        if data.target.epoch != epoch {
            return Err(format!(
                "target epoch {} in epoch {epoch}",
                data.target.epoch
            ));
        }
        if data.source.epoch > data.target.epoch {
            return Err("source after target".into());
        }
        let expected_index = if electra {
            CommitteeIndex(0)
        } else {
            *committee
        };
        if data.index != expected_index {
            return Err(format!(
                "committee {committee} carries index {}",
                data.index
            ));
        }
        if let Some(known) = committees {
            if !known.contains_key(committee) {
                return Err(format!("committee {committee} has no cluster validator"));
            }
            let root = attestation_signing_root(data, network, genesis_validators_root);
            for validator in known.get(committee).into_iter().flatten() {
                slashing
                    .check_attestation(validator, data.source.epoch, data.target.epoch, root)
                    .map_err(|e| format!("slashable for {validator}: {e}"))?;
            }
        }
    }
    if let Some(known) = committees {
        if let Some(missing) = known.keys().find(|c| !entries.iter().any(|(e, _)| e == *c)) {
            return Err(format!("committee {missing} is missing"));
        }
    }
    Ok(())
}

fn attestation_signing_root(
    data: &AttestationData,
    network: &NetworkConfig,
    genesis_validators_root: Root,
) -> Root {
    let domain = network.domain_at(
        DOMAIN_BEACON_ATTESTER,
        data.target.epoch,
        genesis_validators_root,
    );
    compute_signing_root(data, domain)
}

/// Round timeouts per duty type, from the timing module.
struct DutyTimeout {
    slot: Duration,
}

impl RoundTimeout<Duty> for DutyTimeout {
    fn timeout(&self, duty: &Duty, round: Round) -> Duration {
        round_timeout(duty.kind, self.slot, round.0)
    }
}

/// How long a round led by an operator this node cannot reach lasts.
pub const UNREACHABLE_LEADER_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest the driver waits between ticks (see [`Core::next_tick_ms`]).
pub const HOUSEKEEPING_MS: u64 = 200;

/// How many epochs the partials of an exit or a new builder registration
/// wait for the other operators' after the duty's epoch (about 3.4 hours on
/// mainnet): operators sign these when they get to it, not at a slot.
pub const UNBOUND_EPOCHS: u64 = 32;

/// A validator's partials that reached the threshold, to be combined.
struct Ready<S: SignatureScheme> {
    duty: Duty,
    validator: PublicKeyBytes,
    root: Root,
    partials: Vec<Partial<S::Signature>>,
}

/// A partial signature of the own validator client, before it is checked.
struct OwnPartial {
    duty: Duty,
    /// The validator's position in the cluster.
    position: usize,
    root: Root,
    signature: SignatureBytes,
    /// The head a sync-committee message signs.
    block_root: Option<Root>,
}

impl OwnPartial {
    /// A partial over `root` that carries nothing besides.
    fn new(duty: Duty, position: usize, root: Root, signature: SignatureBytes) -> Self {
        OwnPartial {
            duty,
            position,
            root,
            signature,
            block_root: None,
        }
    }
}

/// A validator-client request waiting for a decision.
#[derive(Debug)]
struct Pending {
    id: u64,
    deadline_ms: u64,
    slot: Slot,
    committee_index: CommitteeIndex,
}

/// Selection proofs a validator client waits for.
#[derive(Debug)]
struct PendingSelections {
    id: u64,
    deadline_ms: u64,
    /// What combines each requested proof, in request order.
    needed: Vec<(Duty, PublicKeyBytes, Root)>,
    request: SelectionRequest,
}

#[derive(Debug)]
enum SelectionRequest {
    Beacon(Vec<BeaconCommitteeSelection>),
    Sync(Vec<SyncCommitteeSelection>),
}

/// The duty pipeline of one node.
pub struct Core<E: EthSpec, S: SignatureScheme = Bls> {
    me: u32,
    threshold: usize,
    network: NetworkConfig,
    genesis_time_ms: u64,
    genesis_validators_root: Root,
    slot_ms: u64,
    slots_per_epoch: u64,
    validators: Vec<ValidatorKeys<S>>,
    group_bytes: Vec<PublicKeyBytes>,
    by_group: BTreeMap<PublicKeyBytes, usize>,
    indices: BTreeMap<ValidatorIndex, usize>,
    index_of: BTreeMap<PublicKeyBytes, ValidatorIndex>,
    indices_requested_ms: Option<u64>,
    duties_requested: BTreeMap<Epoch, u64>,
    duties_known: BTreeSet<Epoch>,
    proposers_requested: BTreeMap<Epoch, u64>,
    proposers_known: BTreeSet<Epoch>,
    proposers_resolved: BTreeSet<Epoch>,
    early_blocks: Vec<EarlyBlock>,
    engine: Engine<Duty, DutyValue>,
    known: Known<S>,
    attester: BTreeMap<Slot, Vec<AttesterDuty>>,
    sync: BTreeMap<Epoch, Vec<SyncDuty>>,
    started: BTreeSet<Duty>,
    decided: BTreeMap<Slot, BTreeMap<CommitteeIndex, AttestationData>>,
    dutydb: DutyDb<AttestationData>,
    parsigs: ParSigDb<S::Signature>,
    /// Sets at the threshold during the current event (see `combine_ready`).
    ready: Vec<Ready<S>>,
    block_roots: BTreeMap<(Duty, PublicKeyBytes, Root), Root>,
    waiting: BTreeMap<(Duty, PublicKeyBytes), (Root, S::Signature)>,
    pending: Vec<Pending>,
    selections: BTreeMap<(Duty, PublicKeyBytes, Root), S::Signature>,
    pending_selections: Vec<PendingSelections>,
    aggregates: BTreeMap<(Slot, CommitteeIndex), Attestation<E>>,
    contributions: BTreeMap<(Slot, u64), SyncCommitteeContribution<E>>,
    pending_aggregates: Vec<PendingAggregate>,
    graffiti: Option<Root>,
    randao: BTreeMap<Slot, S::Signature>,
    block_wishes: BTreeMap<Slot, BlockWishes>,
    fetched_blocks: BTreeSet<Slot>,
    blocks: BTreeMap<Slot, ProducedBlock<E>>,
    pending_blocks: Vec<PendingBlock>,
    builder_api: bool,
    registrations: BTreeMap<PublicKeyBytes, SignedValidatorRegistration>,
    registration_messages: BTreeMap<(Duty, Root), ValidatorRegistration>,
    tracker: Tracker,
    rng: ChaCha20Rng,
    defects: Defects,
    current_slot: Option<Slot>,
    /// The cluster's operators, for who leads each round.
    committee: Committee,
    /// Operators this node cannot reach now.
    unreachable: BTreeSet<u32>,
    _spec: PhantomData<E>,
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// A core for `config`, signing consensus messages with `signer`,
    /// checking peers' with `verifier`, and protecting the group keys with
    /// `slashing`.
    pub fn new(
        config: CoreConfig<S>,
        signer: Box<dyn Signer + Send>,
        verifier: Box<dyn Verifier + Send>,
        slashing: SlashingDb,
    ) -> Result<Core<E, S>, CoreError> {
        let operators = config.validators.first().map_or(0, |v| v.shares.len());
        if config
            .validators
            .iter()
            .any(|v| v.shares.len() != operators)
        {
            return Err(CoreError::Cluster(
                "validators have different numbers of shares".into(),
            ));
        }
        let operators = u32::try_from(operators)
            .map_err(|_| CoreError::Cluster("too many operators".into()))?;
        if config.me >= operators {
            return Err(CoreError::Cluster(format!(
                "operator {} of {operators}",
                config.me
            )));
        }
        if config.threshold == 0 || config.threshold > operators as usize {
            return Err(CoreError::Cluster(format!(
                "threshold {} of {operators}",
                config.threshold
            )));
        }
        let committee = Committee::new(operators).map_err(|e| CoreError::Cluster(e.to_string()))?;
        let known = Known {
            slashing,
            committees: BTreeMap::new(),
            committee_lengths: BTreeMap::new(),
            attestation_data: BTreeMap::new(),
            proposers: BTreeMap::new(),
        };
        let slot = config.network.slot_duration();
        let engine = Engine::new(
            OperatorIndex(config.me),
            committee,
            qbft::Config::default(),
            Parts {
                signer,
                verifier,
                leader: Box::new(RotatingLeader),
                timeout: Box::new(DutyTimeout { slot }),
            },
        )
        .map_err(|e| CoreError::Cluster(e.to_string()))?;
        let group_bytes: Vec<PublicKeyBytes> = config
            .validators
            .iter()
            .map(|v| S::public_key_bytes(&v.group))
            .collect();
        let by_group = group_bytes
            .iter()
            .enumerate()
            .map(|(i, key)| (*key, i))
            .collect();
        let registrations = config
            .validators
            .iter()
            .filter_map(|v| v.registration.clone())
            .map(|r| (r.message.pubkey, r))
            .collect();
        Ok(Core {
            me: config.me,
            // The threshold combinations are made at (one short with the
            // defect); the tracker keeps the real one.
            threshold: config.threshold - usize::from(config.defects.combine_below_threshold),
            slot_ms: config.network.slot_duration_ms.max(1),
            slots_per_epoch: config.network.slots_per_epoch(),
            network: config.network,
            genesis_time_ms: config.genesis_time_ms,
            genesis_validators_root: config.genesis_validators_root,
            validators: config.validators,
            group_bytes,
            by_group,
            indices: BTreeMap::new(),
            index_of: BTreeMap::new(),
            indices_requested_ms: None,
            duties_requested: BTreeMap::new(),
            duties_known: BTreeSet::new(),
            proposers_requested: BTreeMap::new(),
            proposers_known: BTreeSet::new(),
            proposers_resolved: BTreeSet::new(),
            early_blocks: Vec::new(),
            engine,
            known,
            attester: BTreeMap::new(),
            sync: BTreeMap::new(),
            started: BTreeSet::new(),
            decided: BTreeMap::new(),
            dutydb: DutyDb::new(),
            parsigs: ParSigDb::new(
                config.threshold - usize::from(config.defects.combine_below_threshold),
            ),
            ready: Vec::new(),
            block_roots: BTreeMap::new(),
            waiting: BTreeMap::new(),
            pending: Vec::new(),
            selections: BTreeMap::new(),
            pending_selections: Vec::new(),
            aggregates: BTreeMap::new(),
            contributions: BTreeMap::new(),
            pending_aggregates: Vec::new(),
            graffiti: config.graffiti,
            randao: BTreeMap::new(),
            block_wishes: BTreeMap::new(),
            fetched_blocks: BTreeSet::new(),
            blocks: BTreeMap::new(),
            pending_blocks: Vec::new(),
            builder_api: config.builder_api,
            registrations,
            registration_messages: BTreeMap::new(),
            tracker: Tracker::new(operators, config.threshold),
            rng: ChaCha20Rng::from_seed(config.seed),
            defects: config.defects,
            current_slot: None,
            committee,
            unreachable: BTreeSet::new(),
            _spec: PhantomData,
        })
    }

    /// The start of `slot` in Unix milliseconds.
    pub fn slot_start_ms(&self, slot: Slot) -> u64 {
        self.genesis_time_ms
            .saturating_add(slot.0.saturating_mul(self.slot_ms))
    }

    /// The slot at `now_ms` (slot 0 before genesis).
    pub fn slot_at(&self, now_ms: u64) -> Slot {
        Slot(now_ms.saturating_sub(self.genesis_time_ms) / self.slot_ms)
    }

    /// The cluster's validators whose indices are known.
    pub fn known_indices(&self) -> usize {
        self.indices.len()
    }

    /// The group keys of the cluster's validators.
    pub fn group_keys(&self) -> &[PublicKeyBytes] {
        &self.group_bytes
    }

    /// Where a validator's execution fees go: its current builder
    /// registration's fee recipient (the lock's, until the cluster signs a
    /// new one), or the lock's.
    fn fee_recipient(&self, position: usize) -> Option<ExecutionAddress> {
        self.registrations
            .get(&self.group_bytes[position])
            .map(|r| r.message.fee_recipient)
            .or(self.validators[position].fee_recipient)
    }

    /// The fee recipients of the validators whose index is known.
    fn preparations(&self) -> Vec<ProposerPreparation> {
        self.indices
            .iter()
            .filter_map(|(index, position)| {
                self.fee_recipient(*position)
                    .map(|fee_recipient| ProposerPreparation {
                        validator_index: *index,
                        fee_recipient,
                    })
            })
            .collect()
    }

    /// Exports the slashing-protection history (EIP-3076).
    pub fn export_slashing(&self) -> phalanx_eth::interchange::Interchange {
        self.known.slashing.export()
    }

    /// When the driver must next send [`Event::Tick`], in Unix
    /// milliseconds: the next moment a duty starts (from the timing module)
    /// or a waiting request's deadline falls, and at most
    /// [`HOUSEKEEPING_MS`] after `now_ms` for the rest (retries, expiry,
    /// outcomes). Everything else is driven by events and QBFT's own
    /// timers.
    pub fn next_tick_ms(&self, now_ms: u64) -> u64 {
        let slot = self.slot_at(now_ms);
        let duty_starts = [slot, Slot(slot.0 + 1)].into_iter().flat_map(|slot| {
            DutyType::ALL
                .into_iter()
                .map(move |kind| self.window(slot, kind).0)
        });
        let deadlines = self
            .pending
            .iter()
            .map(|p| p.deadline_ms)
            .chain(self.pending_selections.iter().map(|p| p.deadline_ms));
        duty_starts
            .chain(deadlines)
            .filter(|&at| at > now_ms)
            .fold(now_ms + HOUSEKEEPING_MS, u64::min)
    }

    /// Handles one event at `now_ms` (Unix milliseconds).
    pub fn handle(&mut self, now_ms: u64, event: Event<E>) -> Vec<Action<E>> {
        let mut actions = Vec::new();
        match event {
            Event::Tick => self.tick(now_ms, &mut actions),
            Event::Unreachable(operators) => {
                self.unreachable = operators.into_iter().filter(|&o| o != self.me).collect();
            }
            Event::Indices(found) => {
                for (key, index) in found {
                    if let Some(&position) = self.by_group.get(&key) {
                        self.indices.insert(index, position);
                        self.index_of.insert(key, index);
                    }
                }
                // New indices mean the known duties may be incomplete.
                self.duties_requested.clear();
                self.duties_known.clear();
            }
            Event::IndicesFailed(_) => {}
            Event::Duties {
                epoch,
                attester,
                sync,
            } => self.on_duties(epoch, attester, sync),
            Event::Proposers { epoch, result } => match result {
                Ok(duties) => self.on_proposers(now_ms, epoch, duties, &mut actions),
                Err(_) => {
                    self.proposers_known.remove(&epoch);
                }
            },
            Event::Block { duty, result } => self.on_block(duty, result.map(|b| *b), &mut actions),
            Event::Reorg { epoch } => {
                // The proposers are looked up again; until then the known
                // ones stand.
                self.proposers_known.remove(&epoch);
                for epoch in [epoch, Epoch(epoch.0 + 1)] {
                    self.duties_known.remove(&epoch);
                    self.duties_requested.remove(&epoch);
                }
            }
            Event::DutiesFailed { epoch, .. } => {
                // Retried a slot after the request.
                self.duties_known.remove(&epoch);
            }
            Event::AttestationData { duty, result } => {
                self.on_attestation_data(duty, result, &mut actions)
            }
            Event::Aggregates { duty, result } => self.on_aggregates(duty, result, &mut actions),
            Event::Contributions { duty, result } => {
                self.on_contributions(duty, result, &mut actions)
            }
            Event::Consensus { from, message } => {
                let event = qbft::Event::Message {
                    from: OperatorIndex(from),
                    message,
                };
                self.run_consensus(event, &mut actions);
            }
            Event::Timer { duty, round } => {
                let event = qbft::Event::Timeout {
                    instance: duty,
                    round,
                };
                self.run_consensus(event, &mut actions);
            }
            Event::Partials { from, partials } => {
                self.on_peer_partials(from, partials, &mut actions)
            }
            Event::Vc { id, request } => self.on_vc(now_ms, id, request, &mut actions),
            Event::Submitted {
                duty,
                validators,
                result,
            } => match result {
                Ok(()) => {
                    for validator in validators {
                        self.tracker.submitted(&duty, validator);
                    }
                }
                Err(error) => self.tracker.failed(&duty, Failure::Rejected(error)),
            },
        }
        actions
    }

    fn tick(&mut self, now_ms: u64, actions: &mut Vec<Action<E>>) {
        let slot = self.slot_at(now_ms);
        let epoch = slot.epoch(self.slots_per_epoch);
        if self.current_slot != Some(slot) {
            self.current_slot = Some(slot);
            self.new_slot(slot, actions);
            self.submit_registrations(now_ms, slot, actions);
        }
        // Indices, then the duties of this epoch and the next; failures
        // are retried a slot later.
        let retry_after = self.slot_ms;
        if self.indices.len() < self.validators.len()
            && self
                .indices_requested_ms
                .is_none_or(|at| now_ms >= at + retry_after)
        {
            self.indices_requested_ms = Some(now_ms);
            actions.push(Action::ResolveIndices(self.group_bytes.clone()));
        }
        if !self.indices.is_empty() {
            let due = !self.proposers_known.contains(&epoch)
                && self
                    .proposers_requested
                    .get(&epoch)
                    .is_none_or(|at| now_ms >= at + retry_after);
            if due {
                self.proposers_requested.insert(epoch, now_ms);
                self.proposers_known.insert(epoch);
                actions.push(Action::ResolveProposers { epoch });
            }
            for epoch in [epoch, Epoch(epoch.0 + 1)] {
                let due = !self.duties_known.contains(&epoch)
                    && self
                        .duties_requested
                        .get(&epoch)
                        .is_none_or(|at| now_ms >= at + retry_after);
                if due {
                    self.duties_requested.insert(epoch, now_ms);
                    self.duties_known.insert(epoch);
                    actions.push(Action::ResolveDuties {
                        epoch,
                        indices: self.indices.keys().copied().collect(),
                        preparations: self.preparations(),
                    });
                }
            }
        }
        self.start_due_duties(now_ms, slot, actions);
        // Requests that can no longer be answered get a clear error.
        let (expired, pending): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now_ms >= p.deadline_ms);
        self.pending = pending;
        for p in expired {
            actions.push(Action::Reply {
                id: p.id,
                result: Err(ApiFailure::new(
                    503,
                    format!(
                        "the cluster decided no attestation data for slot {} committee {} before the duty's deadline",
                        p.slot, p.committee_index
                    ),
                )),
            });
        }
        let (expired, waiting): (Vec<PendingSelections>, Vec<PendingSelections>) =
            std::mem::take(&mut self.pending_selections)
                .into_iter()
                .partition(|p| now_ms >= p.deadline_ms);
        self.pending_selections = waiting;
        for p in expired {
            actions.push(Action::Reply {
                id: p.id,
                result: Err(ApiFailure::new(
                    503,
                    "too few operators' validator clients sent their selection proofs in time to combine them",
                )),
            });
        }
        self.answer_aggregate_requests(now_ms, actions);
        self.answer_block_requests(now_ms, actions);
        for (duty, outcome) in self.tracker.outcomes(now_ms) {
            actions.push(Action::Outcome { duty, outcome });
        }
    }

    fn new_slot(&mut self, slot: Slot, actions: &mut Vec<Action<E>>) {
        self.run_consensus(qbft::Event::Advance { position: slot.0 }, actions);
        // Everything two slots old is past every deadline. Exits and
        // registrations are not bound to a slot: operators sign them when
        // they get to it, within UNBOUND_EPOCHS of the duty's epoch.
        let keep = Slot(slot.0.saturating_sub(2));
        let keep_unbound = Slot(slot.0.saturating_sub(UNBOUND_EPOCHS * self.slots_per_epoch));
        self.parsigs.expire_before(keep, keep_unbound);
        self.dutydb.expire_before(keep);
        self.decided = self.decided.split_off(&keep);
        self.attester = self.attester.split_off(&keep);
        let kept = |duty: &Duty| {
            duty.slot >= keep
                || (matches!(duty.kind, DutyType::Exit | DutyType::BuilderRegistration)
                    && duty.slot >= keep_unbound)
        };
        self.started.retain(kept);
        self.registration_messages.retain(|(duty, _), _| kept(duty));
        self.block_roots.retain(|(duty, _, _), _| duty.slot >= keep);
        self.waiting.retain(|(duty, _), _| duty.slot >= keep);
        self.selections.retain(|(duty, _, _), _| duty.slot >= keep);
        self.aggregates = self.aggregates.split_off(&(keep, CommitteeIndex(0)));
        self.contributions = self.contributions.split_off(&(keep, 0));
        self.randao = self.randao.split_off(&keep);
        self.block_wishes = self.block_wishes.split_off(&keep);
        self.fetched_blocks = self.fetched_blocks.split_off(&keep);
        self.blocks = self.blocks.split_off(&keep);
        let epoch = slot.epoch(self.slots_per_epoch);
        let keep_epoch = Epoch(epoch.0.saturating_sub(1));
        self.sync = self.sync.split_off(&keep_epoch);
        self.duties_known = self.duties_known.split_off(&keep_epoch);
        self.duties_requested = self.duties_requested.split_off(&keep_epoch);
        self.proposers_known = self.proposers_known.split_off(&keep_epoch);
        self.proposers_resolved = self.proposers_resolved.split_off(&keep_epoch);
        self.proposers_requested = self.proposers_requested.split_off(&keep_epoch);
        let known = &mut self.known;
        known.committees = known.committees.split_off(&keep);
        known.committee_lengths = known.committee_lengths.split_off(&keep);
        known.attestation_data = known.attestation_data.split_off(&keep);
        known.proposers = known.proposers.split_off(&keep);
    }

    /// When a duty of `kind` at `slot` starts and its deadline, in Unix
    /// milliseconds (from the timing module).
    fn window(&self, slot: Slot, kind: DutyType) -> (u64, u64) {
        let slot_duration = Duration::from_millis(self.slot_ms);
        let spe = u32::try_from(self.slots_per_epoch).unwrap_or(32);
        let start_ms = self.slot_start_ms(slot);
        let timing = duty_timing(kind, slot_duration, spe);
        (
            start_ms + timing.start.as_millis() as u64,
            start_ms + timing.deadline.as_millis() as u64,
        )
    }

    /// Proposes a value for a duty, or follows the others' proposals when
    /// this node has none.
    fn propose_or_join(
        &mut self,
        duty: Duty,
        value: Option<DutyValue>,
        actions: &mut Vec<Action<E>>,
    ) {
        if value.is_some() {
            self.tracker.fetched(&duty);
        }
        let event = match value {
            Some(value) => qbft::Event::Propose {
                instance: duty,
                value,
            },
            None => qbft::Event::Join { instance: duty },
        };
        self.run_consensus(event, actions);
    }

    /// Hands an event to the consensus engine, with the validity predicate
    /// over the current state, and turns its actions into the core's.
    fn run_consensus(&mut self, event: qbft::Event<Duty, DutyValue>, actions: &mut Vec<Action<E>>) {
        let validity = DutyValidity::<E, S> {
            known: &self.known,
            network: &self.network,
            genesis_validators_root: self.genesis_validators_root,
            _spec: PhantomData,
        };
        let qbft_actions = self.engine.handle(event, &validity);
        self.on_consensus(qbft_actions, actions);
    }

    fn start_due_duties(&mut self, now_ms: u64, slot: Slot, actions: &mut Vec<Action<E>>) {
        let proposal = Duty::new(slot, DutyType::Proposer);
        let (start, deadline) = self.window(slot, DutyType::Proposer);
        if now_ms >= start && now_ms < deadline && !self.started.contains(&proposal) {
            let proposer = self.known.proposers.get(&slot).map(|p| p.key);
            if let Some(key) = proposer {
                self.started.insert(proposal);
                self.tracker.started(proposal, deadline);
                self.tracker.expect(&proposal, [key]);
                // Every node takes part in the decision, also one whose
                // validator client is slow to send its randao reveal: its
                // own block, once fetched, becomes its input then.
                self.run_consensus(qbft::Event::Join { instance: proposal }, actions);
            }
        }
        let attester = Duty::new(slot, DutyType::Attester);
        let (start, deadline) = self.window(slot, DutyType::Attester);
        if now_ms >= start && now_ms < deadline && !self.started.contains(&attester) {
            if let Some(duties) = self.attester.get(&slot) {
                self.started.insert(attester);
                self.tracker.started(attester, deadline);
                self.tracker
                    .expect(&attester, duties.iter().map(|d| d.pubkey));
                let electra = self.fork(slot).is_ok_and(ForkName::electra_enabled);
                let committees: BTreeSet<CommitteeIndex> = if electra {
                    [CommitteeIndex(0)].into()
                } else {
                    duties.iter().map(|d| d.committee_index).collect()
                };
                actions.push(Action::FetchAttestationData {
                    duty: attester,
                    committees: committees.into_iter().collect(),
                });
            }
        }
        let sync = Duty::new(slot, DutyType::SyncMessage);
        let (start, deadline) = self.window(slot, DutyType::SyncMessage);
        if now_ms >= start && now_ms < deadline && !self.started.contains(&sync) {
            let members = self.sync_members_at(slot);
            if !members.is_empty() {
                self.started.insert(sync);
                self.tracker.started(sync, deadline);
                // Sync messages need no data from the beacon node here: each
                // validator client signs its own head.
                self.tracker.fetched(&sync);
                self.tracker.expect(&sync, members);
            }
        }
        // The previous slot's aggregations may still be due when a tick
        // falls exactly on the slot boundary: only this slot's are started.
        self.start_aggregations(now_ms, slot, actions);
    }

    /// The members who sign sync-committee messages at `slot`: the next
    /// slot's block checks them, so at a period's last slot the next
    /// period's committee signs (as the honest validator guide says).
    fn sync_members_at(&self, slot: Slot) -> BTreeSet<PublicKeyBytes> {
        self.sync_members(Slot(slot.0 + 1).epoch(self.slots_per_epoch))
    }

    fn sync_members(&self, epoch: Epoch) -> BTreeSet<PublicKeyBytes> {
        self.sync
            .get(&epoch)
            .map(|duties| duties.iter().map(|d| d.pubkey).collect())
            .unwrap_or_default()
    }

    fn fork(&self, slot: Slot) -> Result<ForkName, String> {
        self.network
            .fork_at(slot.epoch(self.slots_per_epoch))
            .map_err(|name| format!("the network is in fork {name}, unknown to this build"))
    }

    /// The current epoch's proposers: the cluster's are kept, and block
    /// requests that came before them are taken up.
    fn on_proposers(
        &mut self,
        now_ms: u64,
        epoch: Epoch,
        duties: Vec<ProposerDuty>,
        actions: &mut Vec<Action<E>>,
    ) {
        let spe = self.slots_per_epoch;
        self.proposers_resolved.insert(epoch);
        self.known
            .proposers
            .retain(|slot, _| slot.epoch(spe) != epoch);
        for duty in duties {
            let Some(&position) = self.by_group.get(&duty.pubkey) else {
                continue;
            };
            if duty.slot.epoch(spe) != epoch {
                continue;
            }
            let proposer = Proposer {
                index: duty.validator_index,
                key: duty.pubkey,
                group: self.validators[position].group.clone(),
                fee_recipient: self.fee_recipient(position),
            };
            self.known.proposers.insert(duty.slot, proposer);
        }
        for waiting in std::mem::take(&mut self.early_blocks) {
            if waiting.slot.epoch(spe) == epoch {
                self.on_vc_produce_block(
                    now_ms,
                    waiting.id,
                    waiting.slot,
                    waiting.randao_reveal,
                    waiting.wishes,
                    actions,
                );
            } else {
                self.early_blocks.push(waiting);
            }
        }
    }

    fn on_duties(&mut self, epoch: Epoch, attester: Vec<AttesterDuty>, sync: Vec<SyncDuty>) {
        let ours = |key: &PublicKeyBytes| self.by_group.contains_key(key);
        let mut by_slot: BTreeMap<Slot, Vec<AttesterDuty>> = BTreeMap::new();
        for duty in attester.into_iter().filter(|d| ours(&d.pubkey)) {
            if duty.slot.epoch(self.slots_per_epoch) == epoch {
                by_slot.entry(duty.slot).or_default().push(duty);
            }
        }
        // A new answer replaces the epoch's duties (after a reorganisation
        // some slots may have lost their cluster validators).
        let spe = self.slots_per_epoch;
        let in_epoch = |slot: &Slot| slot.epoch(spe) == epoch;
        self.attester.retain(|slot, _| !in_epoch(slot));
        let shared = &mut self.known;
        shared.committees.retain(|slot, _| !in_epoch(slot));
        shared.committee_lengths.retain(|slot, _| !in_epoch(slot));
        for (slot, mut duties) in by_slot {
            duties.sort_by_key(|d| (d.committee_index, d.validator_committee_index));
            let mut committees: BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>> = BTreeMap::new();
            let mut lengths: BTreeMap<CommitteeIndex, u64> = BTreeMap::new();
            for duty in &duties {
                committees
                    .entry(duty.committee_index)
                    .or_default()
                    .push(duty.pubkey);
                lengths.insert(duty.committee_index, duty.committee_length);
            }
            shared.committees.insert(slot, committees);
            shared.committee_lengths.insert(slot, lengths);
            self.attester.insert(slot, duties);
        }
        let sync: Vec<SyncDuty> = sync.into_iter().filter(|d| ours(&d.pubkey)).collect();
        self.sync.insert(epoch, sync);
    }

    fn on_attestation_data(
        &mut self,
        duty: Duty,
        result: Result<Vec<(CommitteeIndex, AttestationData)>, String>,
        actions: &mut Vec<Action<E>>,
    ) {
        let event = match result {
            Ok(mut entries) => {
                self.tracker.fetched(&duty);
                // From Electra on one answer serves every committee.
                if self.fork(duty.slot).is_ok_and(ForkName::electra_enabled) {
                    if let Some((_, data)) = entries.first().copied() {
                        entries = self
                            .attester
                            .get(&duty.slot)
                            .map(|duties| {
                                duties
                                    .iter()
                                    .map(|d| d.committee_index)
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                                    .map(|c| (c, data))
                                    .collect()
                            })
                            .unwrap_or_default();
                    }
                }
                entries.sort_by_key(|(c, _)| *c);
                entries.dedup_by_key(|(c, _)| *c);
                if entries.is_empty() {
                    qbft::Event::Join { instance: duty }
                } else {
                    qbft::Event::Propose {
                        instance: duty,
                        value: encode_attestation_data(&entries),
                    }
                }
            }
            // Without data of its own the node follows the others' proposals.
            Err(_) => qbft::Event::Join { instance: duty },
        };
        self.run_consensus(event, actions);
    }

    fn on_consensus(
        &mut self,
        qbft_actions: Vec<qbft::Action<Duty, DutyValue>>,
        actions: &mut Vec<Action<E>>,
    ) {
        for action in qbft_actions {
            match action {
                qbft::Action::Broadcast(message) => {
                    actions.push(Action::ConsensusBroadcast(message))
                }
                qbft::Action::Send { to, message } => {
                    actions.push(Action::ConsensusSend { to: to.0, message })
                }
                qbft::Action::SetTimer {
                    instance,
                    round,
                    after,
                } => {
                    // Waiting for a leader this node cannot reach only
                    // delays the round change: safety never depends on
                    // timing, and the next leader is then asked at once.
                    // Only while a quorum is reachable: without one no
                    // round can decide, and rounds would only churn.
                    let leader = RotatingLeader.leader(&instance, round, self.committee);
                    let reachable = self.committee.size() as usize - self.unreachable.len();
                    let after = if self.unreachable.contains(&leader.0)
                        && reachable >= self.committee.quorum()
                    {
                        after.min(UNREACHABLE_LEADER_TIMEOUT)
                    } else {
                        after
                    };
                    actions.push(Action::SetTimer {
                        duty: instance,
                        round,
                        after,
                    })
                }
                qbft::Action::StopTimer { instance } => actions.push(Action::StopTimer(instance)),
                qbft::Action::Decide(decision) => {
                    actions.push(Action::Decided {
                        duty: decision.instance,
                        round: decision.round.0,
                        value_hash: decision.value.value_hash().0,
                    });
                    self.on_decided(decision.instance, &decision.value, actions);
                }
                qbft::Action::Dropped { from, kind, reason } => {
                    if reason.is_fault() {
                        actions.push(Action::Dropped {
                            from: from.0,
                            what: "consensus",
                            reason: reason.label().to_string(),
                        });
                    } else {
                        // Late, duplicate or out-of-window: normal, but
                        // what a stalled instance is diagnosed from.
                        tracing::debug!(
                            from = from.0,
                            kind,
                            reason = reason.label(),
                            "a consensus message not applied"
                        );
                    }
                }
            }
        }
    }

    fn on_decided(&mut self, duty: Duty, value: &DutyValue, actions: &mut Vec<Action<E>>) {
        match duty.kind {
            DutyType::Attester => self.on_decided_attestation(duty, value, actions),
            DutyType::Aggregator | DutyType::SyncContribution => {
                self.on_decided_aggregation(duty, value, actions)
            }
            DutyType::Proposer => self.on_decided_block(duty, value, actions),
            _ => return,
        }
        // Partials that combined before this node decided.
        let waiting: Vec<(PublicKeyBytes, Root, S::Signature)> = self
            .waiting
            .iter()
            .filter(|((d, _), _)| *d == duty)
            .map(|((_, validator), (root, signature))| (*validator, *root, *signature))
            .collect();
        for (validator, root, signature) in waiting {
            self.waiting.remove(&(duty, validator));
            self.submit(duty, validator, root, signature, actions);
        }
    }

    fn on_decided_attestation(
        &mut self,
        duty: Duty,
        value: &DutyValue,
        actions: &mut Vec<Action<E>>,
    ) {
        let Ok(entries) = decode_attestation_data(value) else {
            return;
        };
        self.tracker.decided(&duty);
        let duties = self.attester.get(&duty.slot).cloned().unwrap_or_default();
        let shared = &mut self.known;
        for (committee, data) in &entries {
            self.decided
                .entry(duty.slot)
                .or_default()
                .insert(*committee, *data);
            shared
                .attestation_data
                .entry(duty.slot)
                .or_default()
                .insert(*committee, *data);
            let root = attestation_signing_root(data, &self.network, self.genesis_validators_root);
            for validator in duties
                .iter()
                .filter(|d| d.committee_index == *committee)
                .map(|d| d.pubkey)
            {
                let checked = if self.defects.accept_second_value {
                    self.dutydb.replace(duty, validator, *data);
                    Ok(Safety::Safe)
                } else {
                    shared.slashing.check_and_insert_attestation(
                        validator,
                        data.source.epoch,
                        data.target.epoch,
                        root,
                    )
                };
                match checked {
                    Ok(Safety::Safe | Safety::SameData) => {
                        if let Err(conflict) = self.dutydb.store(duty, validator, *data) {
                            actions.push(Action::Refused {
                                duty,
                                validator,
                                reason: conflict.to_string(),
                            });
                        }
                    }
                    Err(e) => {
                        self.tracker.failed(&duty, Failure::Slashing(e.to_string()));
                        actions.push(Action::Refused {
                            duty,
                            validator,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        // Answer the validator client's waiting requests.
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| self.decided_data(p.slot, p.committee_index).is_some());
        self.pending = waiting;
        for p in ready {
            if let Some(data) = self.decided_data(p.slot, p.committee_index) {
                actions.push(Action::Reply {
                    id: p.id,
                    result: Ok(VcResponse::AttestationData(data)),
                });
            }
        }
    }

    /// The decided data a validator client gets for a committee: from
    /// Electra on every committee of the slot votes the same data.
    fn decided_data(&self, slot: Slot, committee: CommitteeIndex) -> Option<AttestationData> {
        let decided = self.decided.get(&slot)?;
        if let Some(data) = decided.get(&committee) {
            return Some(*data);
        }
        if self.fork(slot).is_ok_and(ForkName::electra_enabled) {
            return decided.values().next().copied();
        }
        None
    }

    fn on_vc(&mut self, now_ms: u64, id: u64, request: VcRequest<E>, actions: &mut Vec<Action<E>>) {
        let result = match request {
            VcRequest::AttestationData {
                slot,
                committee_index,
            } => {
                if let Some(data) = self.decided_data(slot, committee_index) {
                    Ok(VcResponse::AttestationData(data))
                } else {
                    // A late attestation still beats none: the validator client
                    // may wait for the decision until the slot ends.
                    let deadline_ms = self.slot_start_ms(Slot(slot.0 + 1));
                    let electra = self.fork(slot).is_ok_and(ForkName::electra_enabled);
                    let not_ours = !electra
                        && self
                            .duties_known
                            .contains(&slot.epoch(self.slots_per_epoch))
                        && self.attester.get(&slot).is_some_and(|duties| {
                            !duties.iter().any(|d| d.committee_index == committee_index)
                        });
                    if not_ours {
                        Err(ApiFailure::new(
                            400,
                            format!("no validator of this cluster attests in committee {committee_index} at slot {slot}"),
                        ))
                    } else if now_ms >= deadline_ms {
                        Err(ApiFailure::new(
                            400,
                            format!("slot {slot} is over: its attestation can no longer be made"),
                        ))
                    } else if slot.0 > self.slot_at(now_ms).0 + 1 {
                        Err(ApiFailure::new(
                            400,
                            format!("slot {slot} is too far in the future"),
                        ))
                    } else {
                        self.pending.push(Pending {
                            id,
                            deadline_ms,
                            slot,
                            committee_index,
                        });
                        return;
                    }
                }
            }
            VcRequest::Attestations(attestations) => self.on_vc_attestations(attestations, actions),
            VcRequest::SyncMessages(messages) => self.on_vc_sync_messages(messages, actions),
            VcRequest::BeaconCommitteeSelections(selections) => {
                self.on_vc_selections(now_ms, id, SelectionRequest::Beacon(selections), actions);
                return;
            }
            VcRequest::SyncCommitteeSelections(selections) => {
                self.on_vc_selections(now_ms, id, SelectionRequest::Sync(selections), actions);
                return;
            }
            VcRequest::AggregateAttestation {
                slot,
                data_root,
                committee_index,
            } => {
                let query = AggregateQuery::Attestation {
                    slot,
                    data_root,
                    committee_index,
                };
                self.on_vc_aggregate_query(now_ms, id, query, actions);
                return;
            }
            VcRequest::SyncContribution {
                slot,
                subcommittee_index,
            } => {
                let query = AggregateQuery::Contribution {
                    slot,
                    subcommittee_index,
                };
                self.on_vc_aggregate_query(now_ms, id, query, actions);
                return;
            }
            VcRequest::AggregateAndProofs(list) => {
                self.own_partials(&list, "aggregates", actions, Self::own_aggregate)
            }
            VcRequest::ContributionAndProofs(list) => {
                self.own_partials(&list, "contributions", actions, Self::own_contribution)
            }
            VcRequest::ProduceBlock {
                slot,
                randao_reveal,
                graffiti,
                builder_boost_factor,
            } => {
                let wishes = BlockWishes {
                    graffiti,
                    builder_boost_factor,
                };
                self.on_vc_produce_block(now_ms, id, slot, randao_reveal, wishes, actions);
                return;
            }
            VcRequest::PublishBlock {
                slot,
                block_root,
                signature,
            } => self.on_vc_publish_block(slot, block_root, signature, actions),
            VcRequest::VoluntaryExits(exits) => {
                self.own_partials(&exits, "exits", actions, |core, exit| {
                    core.own_exit(now_ms, exit)
                })
            }
            VcRequest::Registrations(registrations) => self.own_partials(
                &registrations,
                "registrations",
                actions,
                |core, registration| core.own_registration(now_ms, registration),
            ),
            VcRequest::FeeRecipients(indices) => Ok(VcResponse::FeeRecipients(
                indices
                    .into_iter()
                    .map(|index| {
                        let position = self.indices.get(&index)?;
                        self.fee_recipient(*position)
                    })
                    .collect(),
            )),
            VcRequest::Aggregators(queries) => Ok(VcResponse::Aggregators(
                queries
                    .into_iter()
                    .map(|(slot, index)| {
                        let position = self.indices.get(&index)?;
                        self.is_cluster_aggregator(slot, self.group_bytes[*position])
                    })
                    .collect(),
            )),
        };
        actions.push(Action::Reply { id, result });
    }

    fn own_share(&self, position: usize) -> (ShareIndex, &S::PublicKey) {
        let index = ShareIndex::new(u64::from(self.me) + 1).unwrap_or_else(|_| unreachable!());
        (index, &self.validators[position].shares[self.me as usize])
    }

    /// Verifies one of the own validator client's partials and makes it
    /// count: stored, sent to the peers, combined at the threshold.
    fn accept_own_partial(
        &mut self,
        own: OwnPartial,
        outgoing: &mut Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<(), String> {
        let mut results = self.accept_own_partials(vec![own], outgoing, actions);
        results
            .pop()
            .unwrap_or_else(|| unreachable!("one result per partial"))
    }

    /// [`Self::accept_own_partial`] for a validator client's whole request:
    /// the signatures are verified in one batch (most share a signing root),
    /// and each bad one is named in its own result.
    fn accept_own_partials(
        &mut self,
        owns: Vec<OwnPartial>,
        outgoing: &mut Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); owns.len()];
        let mut decoded = Vec::with_capacity(owns.len());
        for (k, own) in owns.iter().enumerate() {
            match S::decode_signature(own.signature.as_slice()) {
                Ok(signature) => decoded.push((k, signature)),
                Err(e) => results[k] = Err(e),
            }
        }
        let me = self.me as usize;
        let checks: Vec<Check<'_, S>> = decoded
            .iter()
            .map(|(k, signature)| {
                let own = &owns[*k];
                Check {
                    message: own.root.as_slice(),
                    public_key: &self.validators[own.position].shares[me],
                    signature,
                }
            })
            .collect();
        let invalid = invalid_partials(&checks, self.defects, &mut self.rng);
        drop(checks);
        for (j, (k, signature)) in decoded.into_iter().enumerate() {
            let OwnPartial {
                duty,
                position,
                root,
                block_root,
                ..
            } = owns[k];
            let (index, share) = self.own_share(position);
            let validator = self.group_bytes[position];
            if invalid.contains(&j) {
                results[k] = Err(format!(
                    "the signature does not verify under this operator's share {} of validator {validator}",
                    S::public_key_bytes(share),
                ));
                continue;
            }
            if let Some(block_root) = block_root {
                self.block_roots.insert((duty, validator, root), block_root);
            }
            let registration = (duty.kind == DutyType::BuilderRegistration)
                .then(|| self.registration_messages.get(&(duty, root)))
                .flatten()
                .map(ssz::Encode::as_ssz_bytes);
            outgoing.push(PartialMessage {
                duty,
                validator: validator.to_vec(),
                signing_root: root.0,
                signature: S::signature_bytes(&signature).to_vec(),
                block_root: block_root.map(|r| r.0),
                registration,
            });
            let partial = Partial { index, signature };
            results[k] = self
                .store_partial(duty, validator, root, partial, self.me)
                .map_err(|e| e.to_string());
        }
        self.combine_ready(actions);
        results
    }

    /// Stores a verified partial; at the threshold its set waits in
    /// `ready` for [`Self::combine_ready`].
    fn store_partial(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        partial: Partial<S::Signature>,
        from: u32,
    ) -> Result<(), crate::parsigdb::ParSigError> {
        self.tracker.partial(&duty, validator, from);
        if let Some(partials) = self.parsigs.insert(duty, validator, root, partial)? {
            self.ready.push(Ready {
                duty,
                validator,
                root,
                partials,
            });
        }
        Ok(())
    }

    /// Combines every set that reached the threshold during this event,
    /// verifies the group signatures in one batch, and submits them.
    fn combine_ready(&mut self, actions: &mut Vec<Action<E>>) {
        let ready = std::mem::take(&mut self.ready);
        if ready.is_empty() {
            return;
        }
        let combinations: Vec<Combination<'_, S>> = ready
            .iter()
            .map(|r| Combination {
                partials: &r.partials,
                group_key: &self.validators[self.by_group[&r.validator]].group,
                message: r.root.as_slice(),
            })
            .collect();
        let results = sigagg::aggregate_all(&combinations, self.threshold, &mut self.rng);
        drop(combinations);
        for (r, result) in ready.into_iter().zip(results) {
            match result {
                Ok(signature) => self.submit(r.duty, r.validator, r.root, signature, actions),
                Err(e) => actions.push(Action::Refused {
                    duty: r.duty,
                    validator: r.validator,
                    reason: format!("combining: {e}"),
                }),
            }
        }
    }

    /// Builds the object for a combined signature and submits it, or waits
    /// for the decision it needs.
    fn submit(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: S::Signature,
        actions: &mut Vec<Action<E>>,
    ) {
        if matches!(
            duty.kind,
            DutyType::PrepareAggregator | DutyType::PrepareSyncContribution
        ) {
            self.selections.insert((duty, validator, root), signature);
            self.answer_selections(actions);
            return;
        }
        if duty.kind == DutyType::Randao {
            self.on_randao(duty.slot, signature, actions);
            return;
        }
        let signature_bytes = S::signature_bytes(&signature);
        let submission = match duty.kind {
            DutyType::Exit | DutyType::BuilderRegistration => {
                let submission = if duty.kind == DutyType::Exit {
                    self.exit_submission(duty, validator, root, signature_bytes)
                } else {
                    self.registration_submission(duty, validator, root, signature_bytes, actions)
                };
                match submission {
                    Some(submission) => submission,
                    None => {
                        actions.push(Action::Refused {
                            duty,
                            validator,
                            reason: "partials combined over a message this node cannot rebuild"
                                .into(),
                        });
                        return;
                    }
                }
            }
            DutyType::Proposer => {
                if !self.blocks.contains_key(&duty.slot) {
                    self.waiting.insert((duty, validator), (root, signature));
                    return;
                }
                match self.block_submission(duty.slot, root, signature_bytes) {
                    Some(submission) => submission,
                    None => {
                        actions.push(Action::Refused {
                            duty,
                            validator,
                            reason: "partials combined over a root other than the decided block's"
                                .into(),
                        });
                        return;
                    }
                }
            }
            DutyType::Attester => {
                let Some(data) = self.dutydb.get(&duty, &validator).copied() else {
                    self.waiting.insert((duty, validator), (root, signature));
                    return;
                };
                let Some(attester) = self
                    .attester
                    .get(&duty.slot)
                    .and_then(|duties| duties.iter().find(|d| d.pubkey == validator))
                    .cloned()
                else {
                    return;
                };
                if attestation_signing_root(&data, &self.network, self.genesis_validators_root)
                    != root
                {
                    actions.push(Action::Refused {
                        duty,
                        validator,
                        reason: "partials combined over a root other than the decided data's"
                            .into(),
                    });
                    return;
                }
                let Ok(fork) = self.fork(duty.slot) else {
                    return;
                };
                let attestation = if fork.electra_enabled() {
                    AttestationSubmission::Single(Box::new(SingleAttestation {
                        committee_index: attester.committee_index,
                        attester_index: attester.validator_index,
                        data,
                        signature: signature_bytes,
                    }))
                } else {
                    let Ok(mut bits) = BitList::<E::MaxValidatorsPerCommittee>::with_capacity(
                        attester.committee_length as usize,
                    ) else {
                        return;
                    };
                    if bits
                        .set(attester.validator_committee_index as usize, true)
                        .is_err()
                    {
                        return;
                    }
                    AttestationSubmission::Base(Box::new(Attestation::Base(AttestationBase {
                        aggregation_bits: bits,
                        data,
                        signature: signature_bytes,
                    })))
                };
                Submission::Attestation(fork, attestation)
            }
            DutyType::Aggregator | DutyType::SyncContribution => {
                if !self.aggregation_decided(duty) {
                    self.waiting.insert((duty, validator), (root, signature));
                    return;
                }
                let Ok(fork) = self.fork(duty.slot) else {
                    return;
                };
                match self.aggregation_submission(duty, validator, root, signature_bytes, fork) {
                    Some(submission) => submission,
                    None => {
                        actions.push(Action::Refused {
                            duty,
                            validator,
                            reason:
                                "partials combined over a root other than the decided aggregate's"
                                    .into(),
                        });
                        return;
                    }
                }
            }
            DutyType::SyncMessage => {
                let Some(block_root) = self.block_roots.get(&(duty, validator, root)).copied()
                else {
                    return;
                };
                let Some(index) = self.index_of.get(&validator).copied() else {
                    return;
                };
                Submission::SyncMessage(Box::new(SyncCommitteeMessage {
                    slot: duty.slot,
                    beacon_block_root: block_root,
                    validator_index: index,
                    signature: signature_bytes,
                }))
            }
            _ => return,
        };
        actions.push(Action::Submit {
            duty,
            validator,
            submission,
        });
    }

    fn on_vc_attestations(
        &mut self,
        attestations: Vec<VcAttestation>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        self.own_partials(
            &attestations,
            "attestations",
            actions,
            Self::own_attestation,
        )
    }

    /// Takes a validator client's list of partially signed objects: each is
    /// checked and made to count on its own; the good ones go to the peers
    /// in one batch, the refused ones are named by position.
    /// Checks each item of a validator client's request with `check`,
    /// then verifies and accepts the partials of those that passed in one
    /// batch. `check` gives `None` for an item that needs nothing further.
    fn own_partials<T>(
        &mut self,
        items: &[T],
        what: &str,
        actions: &mut Vec<Action<E>>,
        mut check: impl FnMut(&mut Self, &T) -> Result<Option<OwnPartial>, String>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        let mut failures = Vec::new();
        let mut checked = Vec::with_capacity(items.len());
        let mut at = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match check(self, item) {
                Ok(Some(own)) => {
                    at.push(i);
                    checked.push(own);
                }
                Ok(None) => {}
                Err(reason) => failures.push((i, reason)),
            }
        }
        let mut outgoing = Vec::new();
        let results = self.accept_own_partials(checked, &mut outgoing, actions);
        for (i, result) in at.into_iter().zip(results) {
            if let Err(reason) = result {
                failures.push((i, reason));
            }
        }
        failures.sort_by_key(|(i, _)| *i);
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        if failures.is_empty() {
            Ok(VcResponse::Accepted)
        } else {
            Err(ApiFailure {
                status: 400,
                message: format!("some {what} were not accepted"),
                failures,
            })
        }
    }

    fn own_attestation(
        &mut self,
        attestation: &VcAttestation,
    ) -> Result<Option<OwnPartial>, String> {
        let slot = attestation.data.slot;
        let duty = Duty::new(slot, DutyType::Attester);
        let attester = self
            .attester
            .get(&slot)
            .and_then(|duties| {
                duties.iter().find(|d| match attestation.attester {
                    Attester::Index(index) => d.validator_index == index,
                    Attester::Position(position) => {
                        d.committee_index == attestation.committee_index
                            && d.validator_committee_index == position
                    }
                })
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no cluster validator has this attester duty at slot {slot} in committee {}",
                    attestation.committee_index
                )
            })?;
        if attester.committee_index != attestation.committee_index {
            return Err(format!(
                "validator {} attests in committee {}, not {}",
                attester.validator_index, attester.committee_index, attestation.committee_index
            ));
        }
        let decided = self
            .dutydb
            .get(&duty, &attester.pubkey)
            .copied()
            .ok_or_else(|| {
                format!(
                    "the cluster has no decided attestation data for validator {} at slot {slot}",
                    attester.validator_index
                )
            })?;
        if decided != attestation.data {
            return Err(
                "the attestation data differs from the data the cluster decided".to_string(),
            );
        }
        let root = attestation_signing_root(&decided, &self.network, self.genesis_validators_root);
        let position = self.by_group[&attester.pubkey];
        Ok(Some(OwnPartial::new(
            duty,
            position,
            root,
            attestation.signature,
        )))
    }

    fn on_vc_sync_messages(
        &mut self,
        messages: Vec<SyncCommitteeMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        self.own_partials(
            &messages,
            "sync committee messages",
            actions,
            Self::own_sync_message,
        )
    }

    fn own_sync_message(
        &mut self,
        message: &SyncCommitteeMessage,
    ) -> Result<Option<OwnPartial>, String> {
        let position = *self.indices.get(&message.validator_index).ok_or_else(|| {
            format!(
                "validator {} is not a validator of this cluster",
                message.validator_index
            )
        })?;
        if !self
            .sync_members_at(message.slot)
            .contains(&self.group_bytes[position])
        {
            return Err(format!(
                "validator {} is not in the sync committee at slot {}",
                message.validator_index, message.slot
            ));
        }
        let root = self.sync_signing_root(message.slot, message.beacon_block_root);
        let duty = Duty::new(message.slot, DutyType::SyncMessage);
        Ok(Some(OwnPartial {
            duty,
            position,
            root,
            signature: message.signature,
            block_root: Some(message.beacon_block_root),
        }))
    }

    fn sync_signing_root(&self, slot: Slot, block_root: Root) -> Root {
        let domain = self.network.domain_at(
            DOMAIN_SYNC_COMMITTEE,
            slot.epoch(self.slots_per_epoch),
            self.genesis_validators_root,
        );
        compute_signing_root(&block_root, domain)
    }

    /// What an aggregation selection proof signs: the slot.
    fn selection_root(&self, slot: Slot) -> Root {
        let domain = self.network.domain_at(
            DOMAIN_SELECTION_PROOF,
            slot.epoch(self.slots_per_epoch),
            self.genesis_validators_root,
        );
        compute_signing_root(&slot, domain)
    }

    /// What a sync-contribution selection proof signs.
    fn sync_selection_root(&self, slot: Slot, subcommittee_index: u64) -> Root {
        let domain = self.network.domain_at(
            DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
            slot.epoch(self.slots_per_epoch),
            self.genesis_validators_root,
        );
        let data = SyncAggregatorSelectionData {
            slot,
            subcommittee_index,
        };
        compute_signing_root(&data, domain)
    }

    /// Verifies and shares the validator client's partial selection proofs;
    /// answers with the combined ones once every one has combined.
    fn on_vc_selections(
        &mut self,
        now_ms: u64,
        id: u64,
        request: SelectionRequest,
        actions: &mut Vec<Action<E>>,
    ) {
        let items: Vec<(ValidatorIndex, Slot, Root, DutyType, SignatureBytes)> = match &request {
            SelectionRequest::Beacon(list) => list
                .iter()
                .map(|s| {
                    (
                        s.validator_index,
                        s.slot,
                        self.selection_root(s.slot),
                        DutyType::PrepareAggregator,
                        s.selection_proof,
                    )
                })
                .collect(),
            SelectionRequest::Sync(list) => list
                .iter()
                .map(|s| {
                    (
                        s.validator_index,
                        s.slot,
                        self.sync_selection_root(s.slot, s.subcommittee_index),
                        DutyType::PrepareSyncContribution,
                        s.selection_proof,
                    )
                })
                .collect(),
        };
        let current = self.slot_at(now_ms);
        let mut failures = Vec::new();
        let mut outgoing = Vec::new();
        let mut needed = Vec::with_capacity(items.len());
        for (i, (index, slot, root, kind, proof)) in items.into_iter().enumerate() {
            let Some(&position) = self.indices.get(&index) else {
                failures.push((
                    i,
                    format!("validator {index} is not a validator of this cluster"),
                ));
                continue;
            };
            if slot.0 + 1 < current.0 || slot.0 > current.0 + self.slots_per_epoch {
                failures.push((i, format!("slot {slot} is not current")));
                continue;
            }
            let duty = Duty::new(slot, kind);
            let own = OwnPartial::new(duty, position, root, proof);
            match self.accept_own_partial(own, &mut outgoing, actions) {
                Ok(()) => needed.push((duty, self.group_bytes[position], root)),
                Err(reason) => failures.push((i, reason)),
            }
        }
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        if !failures.is_empty() {
            actions.push(Action::Reply {
                id,
                result: Err(ApiFailure {
                    status: 400,
                    message: "some selection proofs were not accepted".into(),
                    failures,
                }),
            });
            return;
        }
        let last_slot = needed
            .iter()
            .map(|(d, _, _)| d.slot)
            .max()
            .unwrap_or(current);
        self.pending_selections.push(PendingSelections {
            id,
            deadline_ms: self.slot_start_ms(Slot(last_slot.0 + 1)),
            needed,
            request,
        });
        self.answer_selections(actions);
    }

    /// Replies to every selection request whose proofs have all combined.
    fn answer_selections(&mut self, actions: &mut Vec<Action<E>>) {
        let (done, waiting): (Vec<PendingSelections>, Vec<PendingSelections>) =
            std::mem::take(&mut self.pending_selections)
                .into_iter()
                .partition(|p| p.needed.iter().all(|k| self.selections.contains_key(k)));
        self.pending_selections = waiting;
        for p in done {
            let combined: Vec<SignatureBytes> = p
                .needed
                .iter()
                .map(|k| S::signature_bytes(&self.selections[k]))
                .collect();
            let response = match p.request {
                SelectionRequest::Beacon(mut list) => {
                    for (item, proof) in list.iter_mut().zip(combined) {
                        item.selection_proof = proof;
                    }
                    VcResponse::BeaconCommitteeSelections(list)
                }
                SelectionRequest::Sync(mut list) => {
                    for (item, proof) in list.iter_mut().zip(combined) {
                        item.selection_proof = proof;
                    }
                    VcResponse::SyncCommitteeSelections(list)
                }
            };
            actions.push(Action::Reply {
                id: p.id,
                result: Ok(response),
            });
        }
    }

    fn on_peer_partials(
        &mut self,
        from: u32,
        partials: Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) {
        if from == self.me || from as usize >= self.validators.first().map_or(0, |v| v.shares.len())
        {
            return;
        }
        let Ok(share_index) = ShareIndex::new(u64::from(from) + 1) else {
            return;
        };
        // Decode everything first, then verify the batch at once.
        struct Decoded<G> {
            duty: Duty,
            validator: PublicKeyBytes,
            position: usize,
            root: Root,
            signature: G,
            block_root: Option<Root>,
            registration: Option<ValidatorRegistration>,
        }
        let mut decoded = Vec::with_capacity(partials.len());
        for message in partials {
            let validator = match <[u8; 48]>::try_from(message.validator.as_slice()) {
                Ok(bytes) => PublicKeyBytes::from(bytes),
                Err(_) => {
                    actions.push(dropped(from, "malformed_validator"));
                    continue;
                }
            };
            let Some(&position) = self.by_group.get(&validator) else {
                actions.push(dropped(from, "unknown_validator"));
                continue;
            };
            let Ok(signature) = S::decode_signature(&message.signature) else {
                actions.push(dropped(from, "malformed_signature"));
                continue;
            };
            if !matches!(
                message.duty.kind,
                DutyType::Attester
                    | DutyType::SyncMessage
                    | DutyType::PrepareAggregator
                    | DutyType::PrepareSyncContribution
                    | DutyType::Aggregator
                    | DutyType::SyncContribution
                    | DutyType::Randao
                    | DutyType::Proposer
                    | DutyType::Exit
                    | DutyType::BuilderRegistration
            ) {
                actions.push(dropped(from, "unsupported_duty"));
                continue;
            }
            // Nothing is signed for slots more than two epochs ahead: kept,
            // such partials would only pile up until then.
            let horizon = self
                .current_slot
                .map(|slot| slot.0.saturating_add(2 * self.slots_per_epoch));
            if horizon.is_some_and(|horizon| message.duty.slot.0 > horizon) {
                actions.push(dropped(from, "duty_out_of_window"));
                continue;
            }
            let root = Root::from(message.signing_root);
            let block_root = message.block_root.map(Root::from);
            if message.duty.kind == DutyType::SyncMessage {
                // The root must be what the block root it names gives.
                match block_root {
                    Some(block) if self.sync_signing_root(message.duty.slot, block) == root => {}
                    _ => {
                        actions.push(dropped(from, "sync_root_mismatch"));
                        continue;
                    }
                }
            }
            if message.duty.kind == DutyType::Randao
                && self.randao_root_of(message.duty.slot) != root
            {
                actions.push(dropped(from, "randao_root_mismatch"));
                continue;
            }
            if message.duty.kind == DutyType::PrepareAggregator
                && self.selection_root(message.duty.slot) != root
            {
                actions.push(dropped(from, "selection_root_mismatch"));
                continue;
            }
            let mut registration = None;
            if message.duty.kind == DutyType::BuilderRegistration {
                // The message must name the validator and give the root.
                match message
                    .registration
                    .as_deref()
                    .map(<ValidatorRegistration as ssz::Decode>::from_ssz_bytes)
                {
                    Some(Ok(r))
                        if r.pubkey == validator
                            && self.registration_root(&r) == root
                            && self.registration_duty(&r) == message.duty =>
                    {
                        registration = Some(r);
                    }
                    _ => {
                        actions.push(dropped(from, "registration_mismatch"));
                        continue;
                    }
                }
            }
            decoded.push(Decoded {
                duty: message.duty,
                validator,
                position,
                root,
                signature,
                block_root,
                registration,
            });
        }
        if decoded.is_empty() {
            return;
        }
        let checks: Vec<Check<'_, S>> = decoded
            .iter()
            .map(|d| Check {
                message: d.root.as_slice(),
                public_key: &self.validators[d.position].shares[from as usize],
                signature: &d.signature,
            })
            .collect();
        let invalid = invalid_partials(&checks, self.defects, &mut self.rng);
        drop(checks);
        for (i, d) in decoded.into_iter().enumerate() {
            if invalid.contains(&i) {
                actions.push(dropped(from, "invalid_partial"));
                continue;
            }
            if let Some(block_root) = d.block_root {
                self.block_roots
                    .insert((d.duty, d.validator, d.root), block_root);
            }
            let partial = Partial {
                index: share_index,
                signature: d.signature,
            };
            if self
                .store_partial(d.duty, d.validator, d.root, partial, from)
                .is_err()
            {
                actions.push(dropped(from, "equivocating_partial"));
            } else if let Some(registration) = d.registration {
                self.registration_messages
                    .insert((d.duty, d.root), registration);
            }
        }
        self.combine_ready(actions);
    }
}

/// The positions of the partials in `checks` that do not verify, checked
/// in one batch (none are checked with the deliberate defect that skips
/// them).
fn invalid_partials<S: SignatureScheme>(
    checks: &[Check<'_, S>],
    defects: Defects,
    rng: &mut ChaCha20Rng,
) -> BTreeSet<usize> {
    if checks.is_empty() || defects.skip_partial_checks {
        return BTreeSet::new();
    }
    S::find_invalid(checks, rng).into_iter().collect()
}

fn dropped<E: EthSpec>(from: u32, reason: &str) -> Action<E> {
    Action::Dropped {
        from,
        what: "partial",
        reason: reason.to_string(),
    }
}
