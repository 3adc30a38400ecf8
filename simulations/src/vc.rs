//! The validator-client mock: it drives a beacon node's REST API (or a
//! Phalanx node's validator API, which looks the same) the way a real
//! validator client does, signing with the keys it is given.
//!
//! [`VcMock::spawn`] starts one task. It bootstraps (genesis, spec, the
//! keys' validator indices, builder registrations), then wakes at every
//! slot start and spawns that slot's work:
//!
//! - at the start: the proposal (randao reveal, produce, sign, publish) and
//!   the selection proofs of attesters and sync-committee members (exchanged
//!   for the combined ones at the DV selection endpoints when
//!   `distributed`);
//! - at 1/3 of the slot: attestations and sync-committee messages;
//! - at 2/3: aggregates and contributions by the members the (combined)
//!   selection proofs elect.
//!
//! Duties are fetched for the current and the next epoch and refreshed at
//! every epoch start, together with `prepare_beacon_proposer` and the
//! committee subscriptions. Every
//! signature goes through one signer that applies the configured
//! [`Misbehaviour`], and every body through one place that can garble it
//! instead. Each duty's outcome is counted in [`VcStats`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use phalanx_crypto::SecretKey;
use phalanx_eth::api::{AttesterDuty, Genesis, ProposerDuty, ProposerPreparation, SyncDuty};
use phalanx_eth::attestation::{
    AggregateAndProofBase, AggregateAndProofElectra, Attestation, AttestationBase, AttestationData,
    BeaconCommitteeSelection, SignedAggregateAndProofBase, SignedAggregateAndProofElectra,
    SingleAttestation, SyncCommitteeSelection,
};
use phalanx_eth::block_contents::{ProducedBlockData, Signed, SignedBlockContents};
use phalanx_eth::client::{
    BeaconCommitteeSubscription, BeaconNodeClient, ClientError, SyncCommitteeSubscription,
    Timeouts, CONSENSUS_VERSION_HEADER,
};
use phalanx_eth::config::{NetworkConfig, PresetBase};
use phalanx_eth::selection::{is_aggregator, is_sync_committee_aggregator, sync_subcommittee};
use phalanx_eth::signing::{
    application_builder_domain, compute_signing_root, DOMAIN_AGGREGATE_AND_PROOF,
    DOMAIN_BEACON_ATTESTER, DOMAIN_BEACON_PROPOSER, DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_RANDAO,
    DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE, DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncAggregatorSelectionData,
    SyncCommitteeContribution, SyncCommitteeMessage,
};
use phalanx_eth::validator::{SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::{
    CommitteeIndex, Domain, DomainType, Epoch, EthSpec, ExecutionAddress, ForkName, MainnetEthSpec,
    MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex, Version,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use ssz_types::BitList;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tree_hash::TreeHash;

/// Where every validator asks its execution fees to go (0x00…01).
pub const FEE_RECIPIENT: ExecutionAddress = ExecutionAddress::with_last_byte(1);
/// The gas limit every builder registration asks for.
pub const GAS_LIMIT: u64 = 30_000_000;
/// How many error texts [`VcStats::errors`] keeps.
const MAX_ERRORS: usize = 100;
/// How long one error text may be.
const MAX_ERROR_CHARS: usize = 1000;
/// The pause between start-up attempts while the node is not up.
const BOOTSTRAP_RETRY: Duration = Duration::from_millis(500);

/// What a [`VcMock`] connects to, signs with and how it behaves.
#[derive(Clone, Debug)]
pub struct VcMockConfig {
    /// The beacon node's (or the Phalanx validator API's) base URL.
    pub url: String,
    /// The keys it signs with: whole validator keys or key shares.
    pub keys: Vec<SecretKey>,
    /// Whether to exchange selection proofs at the DV selection endpoints.
    pub distributed: bool,
    /// Graffiti for proposed blocks (UTF-8, at most 32 bytes are used).
    pub graffiti: Option<String>,
    /// Honest, or the fault to inject.
    pub misbehaviour: Misbehaviour,
    /// Names this client in logs.
    pub label: String,
    /// Whether to keep a [`SentPartial`] of every attestation, sync message
    /// and selection proof sent (for latency measurements).
    pub record_sent: bool,
    /// Whether to ask for produced blocks as SSZ, as Lighthouse and Teku
    /// do, rather than JSON.
    pub ssz_blocks: bool,
}

impl VcMockConfig {
    /// An honest, non-distributed client of `keys` against `url`.
    pub fn new(url: impl Into<String>, keys: Vec<SecretKey>) -> VcMockConfig {
        VcMockConfig {
            url: url.into(),
            keys,
            distributed: false,
            graffiti: None,
            misbehaviour: Misbehaviour::Honest,
            label: "vc".into(),
            record_sent: false,
            ssz_blocks: false,
        }
    }
}

/// A fault the mock injects into everything it sends, to test how the node
/// it talks to copes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A correct validator client.
    #[default]
    Honest,
    /// Every signature is 96 bytes that are not a G2 point.
    GarbageSignatures,
    /// Every signature is valid, but by another (fixed, per key) random key.
    WrongKey,
    /// Every signature is by the right key, but over a different root.
    WrongMessage,
    /// Every body posted is not valid JSON for its endpoint.
    MalformedJson,
}

/// The duties a validator client performs, as counted in [`VcStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Duty {
    /// Attestations.
    Attester,
    /// Block proposals.
    Proposer,
    /// Aggregates of attestations.
    Aggregator,
    /// Sync-committee messages.
    SyncMessage,
    /// Sync-committee contributions.
    SyncContribution,
    /// `prepare_beacon_proposer`, each epoch.
    PrepareProposer,
    /// Builder registrations, once at start.
    Registration,
}

impl Duty {
    /// Every duty.
    pub const ALL: [Duty; 7] = [
        Duty::Attester,
        Duty::Proposer,
        Duty::Aggregator,
        Duty::SyncMessage,
        Duty::SyncContribution,
        Duty::PrepareProposer,
        Duty::Registration,
    ];

    /// The key of the duty in [`VcStats::per_duty`].
    pub fn as_str(self) -> &'static str {
        match self {
            Duty::Attester => "attester",
            Duty::Proposer => "proposer",
            Duty::Aggregator => "aggregator",
            Duty::SyncMessage => "sync_message",
            Duty::SyncContribution => "sync_contribution",
            Duty::PrepareProposer => "prepare_proposer",
            Duty::Registration => "registration",
        }
    }
}

/// What a [`VcMock`] has done so far.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VcStats {
    /// Counts per duty, keyed by [`Duty::as_str`].
    pub per_duty: BTreeMap<String, DutyStats>,
    /// The last 100 failures, each with its slot and endpoint.
    pub errors: Vec<String>,
}

impl VcStats {
    fn new() -> VcStats {
        VcStats {
            per_duty: Duty::ALL
                .iter()
                .map(|duty| (duty.as_str().to_string(), DutyStats::default()))
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The counts of `duty`.
    pub fn duty(&self, duty: Duty) -> DutyStats {
        self.per_duty
            .get(duty.as_str())
            .cloned()
            .unwrap_or_default()
    }

    fn entry(&mut self, duty: Duty) -> &mut DutyStats {
        self.per_duty.entry(duty.as_str().to_string()).or_default()
    }
}

/// One duty's counts: one per validator per occurrence (one attestation,
/// one block, one aggregate, one registration…).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DutyStats {
    /// Started (duties cut short by [`VcMock::stop`] are not counted).
    pub attempted: u64,
    /// Accepted by the node.
    pub submitted: u64,
    /// Refused by the node, or lost to an error or the deadline.
    pub failed: u64,
}

/// What a [`SentPartial`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SentKind {
    /// An attestation (a `SingleAttestation`, Electra on).
    Attestation,
    /// A sync-committee message.
    SyncMessage,
    /// An attester's selection proof, exchanged for the combined one.
    BeaconSelection,
    /// A sync-committee member's selection proof for one subcommittee.
    SyncSelection,
}

/// One partially signed object sent to the node, recorded when
/// [`VcMockConfig::record_sent`] is set.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SentPartial {
    /// What it was.
    pub kind: SentKind,
    /// Its slot.
    pub slot: u64,
    /// The validator it was signed for.
    pub validator_index: u64,
    /// Unix milliseconds just before the request left.
    pub sent_ms: u64,
    /// Unix milliseconds when the node accepted it (selections: when the
    /// combined proofs came back); `None` if it did not.
    pub answered_ms: Option<u64>,
}

/// A running validator-client mock.
pub struct VcMock {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl VcMock {
    /// Starts the client on the current tokio runtime (it panics outside
    /// one); it runs until [`VcMock::stop`] or until dropped.
    pub fn spawn(config: VcMockConfig) -> VcMock {
        let shared = Arc::new(Shared {
            label: config.label.clone(),
            stats: Mutex::new(VcStats::new()),
            stopping: AtomicBool::new(false),
            sent: config.record_sent.then(|| Mutex::new(Vec::new())),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(main_task(config, shared.clone(), stopped));
        VcMock {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A snapshot of the counts so far.
    pub fn stats(&self) -> VcStats {
        self.shared.stats().clone()
    }

    /// What was sent so far (empty unless [`VcMockConfig::record_sent`]).
    pub fn sent_partials(&self) -> Vec<SentPartial> {
        self.shared.sent.as_ref().map_or_else(Vec::new, |sent| {
            sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
        })
    }

    /// Stops the client, waits for its tasks to end, and returns the final
    /// counts. Duties in flight are abandoned and not counted.
    pub async fn stop(mut self) -> VcStats {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::warn!(vc = %self.shared.label, %error, "validator-client mock task ended badly");
            }
        }
        self.stats()
    }
}

impl Drop for VcMock {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the client's tasks share with its handle.
struct Shared {
    label: String,
    stats: Mutex<VcStats>,
    /// Set by [`VcMock::stop`]: duties abandoned from then on are not failures.
    stopping: AtomicBool,
    /// What was sent, when recording.
    sent: Option<Mutex<Vec<SentPartial>>>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, VcStats> {
        // A panic elsewhere while counting leaves the counts usable.
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_error(&self, slot: Slot, endpoint: &str, error: &dyn Display) {
        tracing::warn!(vc = %self.label, %slot, endpoint, %error, "validator-client mock: failure");
        let mut stats = self.stats();
        if stats.errors.len() >= MAX_ERRORS {
            stats.errors.remove(0);
        }
        let mut text = format!("slot {slot} {endpoint}: {error}");
        // A node's list of refused items can be long; the start says enough.
        if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
            text.truncate(cut);
            text.push('…');
        }
        stats.errors.push(text);
    }

    /// Records one request's partials (one per validator), when recording.
    fn record_sent(
        &self,
        kind: SentKind,
        slot: Slot,
        validators: impl Iterator<Item = ValidatorIndex>,
        sent_ms: u64,
        answered: bool,
    ) {
        let Some(sent) = &self.sent else { return };
        let answered_ms = answered.then(now_ms);
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(validators.map(|validator| SentPartial {
                kind,
                slot: slot.as_u64(),
                validator_index: validator.0,
                sent_ms,
                answered_ms,
            }));
    }
}

/// Why one step of a duty failed.
#[derive(Debug, thiserror::Error)]
enum DutyError {
    /// The typed client's error; it carries the node's message.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A deliberately malformed body was refused (or answered with an error).
    #[error("{endpoint} answered {status}: {message}")]
    Rejected {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
    /// A deliberately malformed body could not be sent.
    #[error("{endpoint}: {reason}")]
    Transport {
        /// The endpoint.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The node's answer cannot be used.
    #[error("{0}")]
    Unusable(String),
}

/// Counts the outcome of one duty in one slot for a number of validators;
/// whatever is still open when it is dropped (the slot's deadline cut the
/// duty short) counts as failed, or, after a stop, as never attempted.
struct Tally {
    shared: Arc<Shared>,
    duty: Duty,
    slot: Slot,
    open: AtomicU64,
    /// How many were submitted, for the outcome's log line.
    done: AtomicU64,
}

impl Tally {
    fn start(shared: &Arc<Shared>, duty: Duty, slot: Slot, count: usize) -> Tally {
        shared.stats().entry(duty).attempted += count as u64;
        Tally {
            shared: shared.clone(),
            duty,
            slot,
            open: AtomicU64::new(count as u64),
            done: AtomicU64::new(0),
        }
    }

    /// Closes up to `count` open items; returns how many it closed.
    fn close(&self, count: usize) -> u64 {
        let mut closed = 0;
        let _ = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                closed = open.min(count as u64);
                Some(open - closed)
            });
        closed
    }

    fn submitted(&self, count: usize) {
        let closed = self.close(count);
        self.done.fetch_add(closed, Ordering::SeqCst);
        self.shared.stats().entry(self.duty).submitted += closed;
    }

    fn failed(&self, count: usize, endpoint: &str, error: &dyn Display) {
        let closed = self.close(count);
        if closed > 0 {
            self.shared.stats().entry(self.duty).failed += closed;
            self.shared.record_error(self.slot, endpoint, error);
        }
    }

    /// Counts a batch submission of `count` items: a node that names the
    /// items it refused (`failures` of a 400) has accepted the others.
    fn settle(&self, endpoint: &str, count: usize, result: Result<(), DutyError>) {
        match result {
            Ok(()) => self.submitted(count),
            Err(error) => match failed_positions(&error, count) {
                Some(refused) => {
                    self.failed(refused, endpoint, &error);
                    self.submitted(count - refused);
                }
                None => self.failed(count, endpoint, &error),
            },
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let open = *self.open.get_mut();
        tracing::debug!(
            vc = %self.shared.label,
            slot = %self.slot,
            duty = self.duty.as_str(),
            submitted = *self.done.get_mut(),
            unfinished = open,
            "duty outcome"
        );
        if open == 0 {
            return;
        }
        if self.shared.stopping.load(Ordering::SeqCst) {
            let mut stats = self.shared.stats();
            let entry = stats.entry(self.duty);
            entry.attempted = entry.attempted.saturating_sub(open);
        } else {
            self.shared.stats().entry(self.duty).failed += open;
            self.shared.record_error(
                self.slot,
                self.duty.as_str(),
                &"the duty was cut short by its deadline (the end of the next slot)",
            );
        }
    }
}

/// How many of a batch of `count` items a node's 400 refused, when it says
/// (the beacon API's `failures`, one per refused item, which the client
/// puts in the error's message).
fn failed_positions(error: &DutyError, count: usize) -> Option<usize> {
    let DutyError::Client(ClientError::Status {
        status: 400,
        message,
        ..
    }) = error
    else {
        return None;
    };
    let (_, list) = message.rsplit_once(" failures: ")?;
    let failures: Vec<serde_json::Value> =
        serde_json::from_str(list.strip_suffix(')').unwrap_or(list)).ok()?;
    let positions: BTreeSet<u64> = failures
        .iter()
        .filter_map(|failure| match failure.get("index")? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .filter(|&position| position < count as u64)
        .collect();
    (!positions.is_empty()).then_some(positions.len())
}

/// The wall clock in Unix milliseconds.
fn now_ms() -> u64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "the mock is a runtime edge: like a real validator client it follows the wall clock"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

async fn sleep_until_ms(target_ms: u64) {
    let now = now_ms();
    if target_ms > now {
        tokio::time::sleep(Duration::from_millis(target_ms - now)).await;
    }
}

/// Slot arithmetic against genesis, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotClock {
    genesis_ms: u64,
    slot_ms: u64,
}

impl SlotClock {
    fn new(genesis_time: u64, slot_ms: u64) -> SlotClock {
        SlotClock {
            genesis_ms: genesis_time.saturating_mul(1000),
            slot_ms: slot_ms.max(1),
        }
    }

    /// When `slot` starts.
    fn start_ms(&self, slot: Slot) -> u64 {
        self.genesis_ms
            .saturating_add(slot.as_u64().saturating_mul(self.slot_ms))
    }

    /// `numerator / denominator` of the way into `slot`.
    fn at_ms(&self, slot: Slot, numerator: u64, denominator: u64) -> u64 {
        self.start_ms(slot)
            .saturating_add(self.slot_ms * numerator / denominator.max(1))
    }

    /// The slot at `now_ms`, `None` before genesis.
    fn slot_at(&self, now_ms: u64) -> Option<Slot> {
        now_ms
            .checked_sub(self.genesis_ms)
            .map(|elapsed| Slot(elapsed / self.slot_ms))
    }

    /// The first slot a client started at `now_ms` works in: slot 0 before
    /// genesis, else the current slot if less than a third of it has passed
    /// (its attestations are still due), else the next.
    fn first_slot(&self, now_ms: u64) -> Slot {
        match self.slot_at(now_ms) {
            None => Slot(0),
            Some(slot) if now_ms < self.at_ms(slot, 1, 3) => slot,
            Some(slot) => Slot(slot.as_u64() + 1),
        }
    }
}

/// The signing root of every object the client signs.
#[derive(Clone, Debug)]
pub(crate) struct Roots {
    network: NetworkConfig,
    genesis_validators_root: Root,
    genesis_fork_version: Version,
}

impl Roots {
    /// The roots of `network` with this genesis.
    pub(crate) fn new(network: NetworkConfig, genesis_validators_root: Root) -> Roots {
        Roots {
            genesis_fork_version: network.genesis_fork_version,
            network,
            genesis_validators_root,
        }
    }

    fn epoch(&self, slot: Slot) -> Epoch {
        slot.epoch(self.network.slots_per_epoch())
    }

    fn domain(&self, domain_type: DomainType, epoch: Epoch) -> Domain {
        self.network
            .domain_at(domain_type, epoch, self.genesis_validators_root)
    }

    pub(crate) fn randao(&self, epoch: Epoch) -> Root {
        compute_signing_root(&epoch, self.domain(DOMAIN_RANDAO, epoch))
    }

    pub(crate) fn block(&self, slot: Slot, block_root: Root) -> Root {
        compute_signing_root(
            &block_root,
            self.domain(DOMAIN_BEACON_PROPOSER, self.epoch(slot)),
        )
    }

    pub(crate) fn attestation(&self, data: &AttestationData) -> Root {
        compute_signing_root(data, self.domain(DOMAIN_BEACON_ATTESTER, data.target.epoch))
    }

    pub(crate) fn selection_proof(&self, slot: Slot) -> Root {
        compute_signing_root(&slot, self.domain(DOMAIN_SELECTION_PROOF, self.epoch(slot)))
    }

    pub(crate) fn aggregate_and_proof(&self, slot: Slot, message: &impl TreeHash) -> Root {
        compute_signing_root(
            message,
            self.domain(DOMAIN_AGGREGATE_AND_PROOF, self.epoch(slot)),
        )
    }

    pub(crate) fn sync_message(&self, slot: Slot, block_root: Root) -> Root {
        compute_signing_root(
            &block_root,
            self.domain(DOMAIN_SYNC_COMMITTEE, self.epoch(slot)),
        )
    }

    pub(crate) fn sync_selection_proof(&self, slot: Slot, subcommittee_index: u64) -> Root {
        compute_signing_root(
            &SyncAggregatorSelectionData {
                slot,
                subcommittee_index,
            },
            self.domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, self.epoch(slot)),
        )
    }

    pub(crate) fn contribution_and_proof(&self, slot: Slot, message: &impl TreeHash) -> Root {
        compute_signing_root(
            message,
            self.domain(DOMAIN_CONTRIBUTION_AND_PROOF, self.epoch(slot)),
        )
    }

    fn registration(&self, registration: &ValidatorRegistration) -> Root {
        compute_signing_root(
            registration,
            application_builder_domain(self.genesis_fork_version),
        )
    }
}

/// The sync subcommittees a member's positions in the committee fall in.
fn sync_subcommittees<E: EthSpec>(positions: &[u64]) -> BTreeSet<u64> {
    positions
        .iter()
        .map(|position| sync_subcommittee::<E>(*position))
        .collect()
}

/// Graffiti as the 32 bytes a block carries: UTF-8, zero-padded, cut at 32.
fn graffiti_root(text: &str) -> Root {
    let mut bytes = [0u8; 32];
    let length = text.len().min(32);
    bytes[..length].copy_from_slice(&text.as_bytes()[..length]);
    Root::from(bytes)
}

/// A body that is not valid JSON for its endpoint: the real one cut in half.
fn malformed(body: &impl Serialize) -> Vec<u8> {
    let mut json = serde_json::to_vec(body).unwrap_or_else(|_| b"[{".to_vec());
    json.truncate((json.len() / 2).max(1));
    json
}

/// `sha256(tag ‖ data)`, for the misbehaviours' deterministic substitutes.
fn tagged_hash(tag: &[u8], data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag);
    hasher.update(data);
    hasher.finalize().into()
}

/// One key the client signs with.
struct Validator {
    key: SecretKey,
    pubkey: PublicKeyBytes,
    /// The key [`Misbehaviour::WrongKey`] signs with instead: derived from
    /// the public key, so a run is reproducible.
    impostor: Option<SecretKey>,
}

impl Validator {
    fn new(key: SecretKey, misbehaviour: Misbehaviour) -> Validator {
        let public = key.public_key();
        let impostor = (misbehaviour == Misbehaviour::WrongKey)
            .then(|| {
                let seed = tagged_hash(b"phalanx-sim vc impostor key", public.as_bytes());
                phalanx_crypto::derivation::derive_master_sk(&seed).ok()
            })
            .flatten();
        Validator {
            pubkey: PublicKeyBytes::from(public.to_bytes()),
            key,
            impostor,
        }
    }

    /// The signature over `root`, as `misbehaviour` would send it.
    fn sign(&self, root: Root, misbehaviour: Misbehaviour) -> SignatureBytes {
        match misbehaviour {
            Misbehaviour::Honest | Misbehaviour::MalformedJson => {
                SignatureBytes::from(self.key.sign(root.as_slice()).to_bytes())
            }
            Misbehaviour::GarbageSignatures => {
                let mut bytes = [0u8; 96];
                for (i, chunk) in bytes.chunks_mut(32).enumerate() {
                    chunk.copy_from_slice(&tagged_hash(&[i as u8], root.as_slice()));
                }
                // Without the compression flag 96 bytes never decode as a
                // G2 point, so the garbage is never accidentally valid.
                bytes[0] &= 0x1f;
                SignatureBytes::from(bytes)
            }
            Misbehaviour::WrongKey => {
                let key = self.impostor.as_ref().unwrap_or(&self.key);
                SignatureBytes::from(key.sign(root.as_slice()).to_bytes())
            }
            Misbehaviour::WrongMessage => {
                let other = tagged_hash(b"phalanx-sim vc wrong message", root.as_slice());
                SignatureBytes::from(self.key.sign(&other).to_bytes())
            }
        }
    }
}

/// Duties fetched per epoch.
#[derive(Default)]
struct DutyBook {
    attester: BTreeMap<Epoch, Vec<AttesterDuty>>,
    proposer: BTreeMap<Epoch, Vec<ProposerDuty>>,
    sync: BTreeMap<Epoch, Vec<SyncDuty>>,
}

impl DutyBook {
    fn prune(&mut self, before: Epoch) {
        self.attester.retain(|epoch, _| *epoch >= before);
        self.proposer.retain(|epoch, _| *epoch >= before);
        self.sync.retain(|epoch, _| *epoch >= before);
    }
}

/// Posts deliberately malformed bodies, which the typed client cannot send.
struct RawPoster {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl RawPoster {
    async fn post(
        &self,
        endpoint: &'static str,
        path: &str,
        fork: Option<ForkName>,
        body: &impl Serialize,
    ) -> Result<(), DutyError> {
        let mut request = self
            .http
            .post(format!("{}/{path}", self.base))
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(malformed(body));
        if let Some(fork) = fork {
            request = request.header(CONSENSUS_VERSION_HEADER, fork.as_str());
        }
        let response = request.send().await.map_err(|error| DutyError::Transport {
            endpoint,
            reason: error.without_url().to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(DutyError::Rejected {
            endpoint,
            status: status.as_u16(),
            message: server_message(&bytes),
        })
    }
}

/// The `message` of a beacon-API error body, or the start of the body.
fn server_message(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: String,
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(error) => error.message,
        Err(_) => String::from_utf8_lossy(bytes).chars().take(300).collect(),
    }
}

/// What start-up learns from the node before the preset is known.
struct Bootstrap {
    client: BeaconNodeClient,
    genesis: Genesis,
    network: NetworkConfig,
}

async fn main_task(config: VcMockConfig, shared: Arc<Shared>, stop: oneshot::Receiver<()>) {
    let mut tasks = JoinSet::new();
    tokio::select! {
        _ = stop => {}
        _ = drive(config, shared.clone(), &mut tasks) => {}
    }
    // Waits for the aborted duties to be dropped, so their tallies have
    // settled before the final counts are read.
    tasks.shutdown().await;
}

async fn drive(config: VcMockConfig, shared: Arc<Shared>, tasks: &mut JoinSet<()>) {
    let Some(boot) = bootstrap(&config, &shared).await else {
        return;
    };
    match boot.network.preset {
        PresetBase::Mainnet => {
            Arc::new(Vc::<MainnetEthSpec>::new(config, shared, boot))
                .run(tasks)
                .await
        }
        PresetBase::Minimal => {
            Arc::new(Vc::<MinimalEthSpec>::new(config, shared, boot))
                .run(tasks)
                .await
        }
    }
}

/// Reads genesis and spec, retrying while the node is not up.
async fn bootstrap(config: &VcMockConfig, shared: &Arc<Shared>) -> Option<Bootstrap> {
    let client = match BeaconNodeClient::new(std::slice::from_ref(&config.url), Timeouts::default())
    {
        Ok(client) => client,
        Err(error) => {
            shared.record_error(Slot(0), "start", &error);
            return None;
        }
    };
    loop {
        match tokio::join!(client.genesis(), client.spec()) {
            (Ok(genesis), Ok(network)) => {
                return Some(Bootstrap {
                    client,
                    genesis,
                    network,
                })
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(vc = %config.label, %error, "node not up yet");
            }
        }
        tokio::time::sleep(BOOTSTRAP_RETRY).await;
    }
}

/// The running client, generic over the network's preset.
struct Vc<E: EthSpec> {
    label: String,
    client: BeaconNodeClient,
    raw: RawPoster,
    misbehaviour: Misbehaviour,
    distributed: bool,
    graffiti: Option<Root>,
    roots: Roots,
    clock: SlotClock,
    genesis: Genesis,
    validators: Vec<Validator>,
    by_pubkey: BTreeMap<PublicKeyBytes, usize>,
    /// Validator indices found so far, to positions in `validators`.
    indices: Mutex<BTreeMap<ValidatorIndex, usize>>,
    duties: Mutex<DutyBook>,
    shared: Arc<Shared>,
    spec: PhantomData<E>,
}

impl<E: EthSpec> Vc<E> {
    fn new(config: VcMockConfig, shared: Arc<Shared>, boot: Bootstrap) -> Vc<E> {
        let slot_ms = boot.network.slot_duration_ms;
        // A request may take at most a slot (but at least a second): a hung
        // node then costs one slot's duties, never later ones.
        let request = Duration::from_millis(slot_ms.clamp(1000, 12_000));
        let timeouts = Timeouts {
            default: request,
            duties: request * 2,
            block_production: request,
            block_publication: request,
        };
        let base = config.url.trim_end_matches('/').to_string();
        // The URL was accepted at bootstrap, so only the timeouts differ
        // and the bootstrap client is merely a fallback.
        let client = BeaconNodeClient::new(std::slice::from_ref(&config.url), timeouts)
            .unwrap_or(boot.client);
        let client = if config.ssz_blocks {
            client.preferring_ssz_blocks()
        } else {
            client
        };
        let validators: Vec<Validator> = config
            .keys
            .into_iter()
            .map(|key| Validator::new(key, config.misbehaviour))
            .collect();
        let by_pubkey = validators
            .iter()
            .enumerate()
            .map(|(position, validator)| (validator.pubkey, position))
            .collect();
        Vc {
            label: config.label,
            client,
            raw: RawPoster {
                http: reqwest::Client::new(),
                base,
                timeout: request,
            },
            misbehaviour: config.misbehaviour,
            distributed: config.distributed,
            graffiti: config.graffiti.as_deref().map(graffiti_root),
            roots: Roots {
                network: boot.network.clone(),
                genesis_validators_root: boot.genesis.genesis_validators_root,
                genesis_fork_version: boot.genesis.genesis_fork_version,
            },
            clock: SlotClock::new(boot.genesis.genesis_time, slot_ms),
            genesis: boot.genesis,
            validators,
            by_pubkey,
            indices: Mutex::new(BTreeMap::new()),
            duties: Mutex::new(DutyBook::default()),
            shared,
            spec: PhantomData,
        }
    }

    fn book(&self) -> MutexGuard<'_, DutyBook> {
        self.duties.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn known_indices(&self) -> MutexGuard<'_, BTreeMap<ValidatorIndex, usize>> {
        self.indices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn our_indices(&self) -> Vec<ValidatorIndex> {
        self.known_indices().keys().copied().collect()
    }

    fn validator(&self, pubkey: &PublicKeyBytes) -> Option<&Validator> {
        self.by_pubkey
            .get(pubkey)
            .and_then(|&position| self.validators.get(position))
    }

    fn sign(&self, validator: &Validator, root: Root) -> SignatureBytes {
        validator.sign(root, self.misbehaviour)
    }

    fn malformed_bodies(&self) -> bool {
        self.misbehaviour == Misbehaviour::MalformedJson
    }

    /// Sends `body` with the typed call `honest`, or garbled to `path` when
    /// the client is to send malformed JSON.
    async fn send<T: Serialize + Sync>(
        &self,
        endpoint: &'static str,
        path: &str,
        fork: Option<ForkName>,
        body: &T,
        honest: impl Future<Output = Result<(), ClientError>>,
    ) -> Result<(), DutyError> {
        if self.malformed_bodies() {
            self.raw.post(endpoint, path, fork, body).await
        } else {
            honest.await.map_err(DutyError::from)
        }
    }

    /// Calls `call` again while the node answers 404 (the data is not
    /// there yet), until the end of `slot`.
    async fn until_available<T, Fut>(
        &self,
        slot: Slot,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let retry_until = self.clock.start_ms(Slot(slot.as_u64() + 1));
        let pause = (self.clock.slot_ms / 20).clamp(20, 250);
        loop {
            match call().await {
                Err(error) if error.status() == Some(404) && now_ms() + pause < retry_until => {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    async fn run(self: Arc<Self>, tasks: &mut JoinSet<()>) {
        loop {
            match self.resolve_indices().await {
                Ok(()) if !self.known_indices().is_empty() => break,
                Ok(()) => {
                    tracing::debug!(vc = %self.label, "none of the keys is a known validator yet")
                }
                Err(error) => tracing::debug!(vc = %self.label, %error, "validators not resolved"),
            }
            tokio::time::sleep(BOOTSTRAP_RETRY).await;
        }
        let slots_per_epoch = self.roots.network.slots_per_epoch();
        let mut slot = self.clock.first_slot(now_ms());
        tracing::info!(vc = %self.label, validators = self.known_indices().len(), first_slot = %slot, "validator-client mock started");
        tasks.spawn(self.clone().register(slot));
        tasks.spawn(self.clone().refresh_epoch(slot.epoch(slots_per_epoch)));
        let mut refreshed = slot.epoch(slots_per_epoch);
        loop {
            sleep_until_ms(self.clock.start_ms(slot)).await;
            while tasks.try_join_next().is_some() {}
            // A client that fell behind (a stalled runtime) joins the
            // current slot instead of working through stale ones.
            if let Some(current) = self.clock.slot_at(now_ms()) {
                slot = slot.max(current);
            }
            let epoch = slot.epoch(slots_per_epoch);
            if epoch > refreshed {
                refreshed = epoch;
                tasks.spawn(self.clone().refresh_epoch(epoch));
            }
            tasks.spawn(self.clone().run_slot(slot));
            slot = Slot(slot.as_u64() + 1);
        }
    }

    /// Asks the node for the indices of the keys not yet found.
    async fn resolve_indices(&self) -> Result<(), ClientError> {
        let missing: Vec<String> = {
            let known: BTreeSet<usize> = self.known_indices().values().copied().collect();
            self.validators
                .iter()
                .enumerate()
                .filter(|(position, _)| !known.contains(position))
                .map(|(_, validator)| validator.pubkey.to_string())
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let found = self.client.validators("head", &missing).await?;
        let mut known = self.known_indices();
        for data in found {
            if let Some(&position) = self.by_pubkey.get(&data.validator.pubkey) {
                known.insert(data.index, position);
            }
        }
        Ok(())
    }

    async fn attester_duties(
        &self,
        epoch: Epoch,
        refresh: bool,
    ) -> Result<Vec<AttesterDuty>, ClientError> {
        if !refresh {
            if let Some(duties) = self.book().attester.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let indices = self.our_indices();
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let duties: Vec<AttesterDuty> = self
            .client
            .attester_duties(epoch, &indices)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().attester.insert(epoch, duties.clone());
        Ok(duties)
    }

    async fn proposer_duties(
        &self,
        epoch: Epoch,
        refresh: bool,
    ) -> Result<Vec<ProposerDuty>, ClientError> {
        if !refresh {
            if let Some(duties) = self.book().proposer.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let duties: Vec<ProposerDuty> = self
            .client
            .proposer_duties(epoch)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().proposer.insert(epoch, duties.clone());
        Ok(duties)
    }

    async fn sync_duties(&self, epoch: Epoch, refresh: bool) -> Result<Vec<SyncDuty>, ClientError> {
        if self
            .roots
            .network
            .fork_at(epoch)
            .unwrap_or(ForkName::Phase0)
            < ForkName::Altair
        {
            return Ok(Vec::new());
        }
        if !refresh {
            if let Some(duties) = self.book().sync.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let indices = self.our_indices();
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let duties: Vec<SyncDuty> = self
            .client
            .sync_duties(epoch, &indices)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().sync.insert(epoch, duties.clone());
        Ok(duties)
    }

    /// At an epoch's start: keys not yet found, the duties of this epoch
    /// and the next, and the fee recipients.
    async fn refresh_epoch(self: Arc<Self>, epoch: Epoch) {
        let slot = epoch.start_slot(self.roots.network.slots_per_epoch());
        if self.known_indices().len() < self.validators.len() {
            if let Err(error) = self.resolve_indices().await {
                self.shared.record_error(slot, "validators", &error);
            }
        }
        for (epoch, current) in [(epoch, true), (Epoch(epoch.as_u64() + 1), false)] {
            if let Err(error) = self.attester_duties(epoch, true).await {
                self.shared.record_error(slot, "attester_duties", &error);
            }
            // Nodes need not serve next epoch's proposers; the slot asks
            // again when the epoch has come.
            match self.proposer_duties(epoch, true).await {
                Err(error) if current => self.shared.record_error(slot, "proposer_duties", &error),
                _ => {}
            }
            if let Err(error) = self.sync_duties(epoch, true).await {
                self.shared.record_error(slot, "sync_duties", &error);
            }
        }
        self.book().prune(Epoch(epoch.as_u64().saturating_sub(1)));
        self.subscribe_sync_committee(slot, epoch).await;
        self.prepare_proposers(slot).await;
    }

    /// Tells the node which members of this and the next epoch's sync
    /// committee are ours, until the end of the last epoch they sit in.
    async fn subscribe_sync_committee(&self, slot: Slot, epoch: Epoch) {
        let mut members: BTreeMap<ValidatorIndex, SyncCommitteeSubscription> = BTreeMap::new();
        {
            let book = self.book();
            for (epoch, duties) in book.sync.range(epoch..=Epoch(epoch.as_u64() + 1)) {
                for duty in duties {
                    let member = members.entry(duty.validator_index).or_insert_with(|| {
                        SyncCommitteeSubscription {
                            validator_index: duty.validator_index,
                            sync_committee_indices: duty.validator_sync_committee_indices.clone(),
                            until_epoch: *epoch,
                        }
                    });
                    member.until_epoch = Epoch(epoch.as_u64() + 1);
                }
            }
        }
        if members.is_empty() {
            return;
        }
        let subscriptions: Vec<SyncCommitteeSubscription> = members.into_values().collect();
        let endpoint = "sync_committee_subscriptions";
        let subscribe = self.client.sync_committee_subscriptions(&subscriptions);
        let path = "eth/v1/validator/sync_committee_subscriptions";
        if let Err(error) = self
            .send(endpoint, path, None, &subscriptions, subscribe)
            .await
        {
            self.shared.record_error(slot, endpoint, &error);
        }
    }

    async fn prepare_proposers(&self, slot: Slot) {
        let preparations: Vec<ProposerPreparation> = self
            .our_indices()
            .into_iter()
            .map(|validator_index| ProposerPreparation {
                validator_index,
                fee_recipient: FEE_RECIPIENT,
            })
            .collect();
        if preparations.is_empty() {
            return;
        }
        let tally = Tally::start(
            &self.shared,
            Duty::PrepareProposer,
            slot,
            preparations.len(),
        );
        let result = self
            .send(
                "prepare_beacon_proposer",
                "eth/v1/validator/prepare_beacon_proposer",
                None,
                &preparations,
                self.client.prepare_beacon_proposer(&preparations),
            )
            .await;
        tally.settle("prepare_beacon_proposer", preparations.len(), result);
    }

    /// Registers every known validator with the builder network, once.
    async fn register(self: Arc<Self>, slot: Slot) {
        let positions: Vec<usize> = self.known_indices().values().copied().collect();
        let registrations: Vec<SignedValidatorRegistration> = positions
            .iter()
            .filter_map(|&position| self.validators.get(position))
            .map(|validator| {
                let message = ValidatorRegistration {
                    fee_recipient: FEE_RECIPIENT,
                    gas_limit: GAS_LIMIT,
                    timestamp: self.genesis.genesis_time,
                    pubkey: validator.pubkey,
                };
                let signature = self.sign(validator, self.roots.registration(&message));
                SignedValidatorRegistration { message, signature }
            })
            .collect();
        if registrations.is_empty() {
            return;
        }
        let tally = Tally::start(&self.shared, Duty::Registration, slot, registrations.len());
        let result = self
            .send(
                "register_validators",
                "eth/v1/validator/register_validator",
                None,
                &registrations,
                self.client.register_validators(&registrations),
            )
            .await;
        tally.settle("register_validator", registrations.len(), result);
    }

    /// Everything of one slot; nothing of it outlives the next slot.
    async fn run_slot(self: Arc<Self>, slot: Slot) {
        let fork = match self.roots.network.fork_at(self.roots.epoch(slot)) {
            Ok(fork) => fork,
            Err(name) => {
                self.shared.record_error(
                    slot,
                    "fork",
                    &format!("fork {name} is unknown to this build; not signing"),
                );
                return;
            }
        };
        let deadline = self.clock.start_ms(Slot(slot.as_u64() + 2));
        let work = async {
            tokio::join!(
                self.propose(slot, fork),
                self.attest_and_aggregate(slot, fork),
                self.sync_committee(slot, fork),
            )
        };
        // Duties cut short are counted as failed by their tallies.
        let _ = tokio::time::timeout(
            Duration::from_millis(deadline.saturating_sub(now_ms())),
            work,
        )
        .await;
    }

    async fn propose(&self, slot: Slot, fork: ForkName) {
        let duties = match self.proposer_duties(self.roots.epoch(slot), false).await {
            Ok(duties) => duties,
            Err(error) => {
                self.shared.record_error(slot, "proposer_duties", &error);
                return;
            }
        };
        for duty in duties.iter().filter(|duty| duty.slot == slot) {
            let tally = Tally::start(&self.shared, Duty::Proposer, slot, 1);
            match self.propose_block(slot, fork, duty).await {
                Ok(()) => tally.submitted(1),
                Err((endpoint, error)) => tally.failed(1, endpoint, &error),
            }
        }
    }

    async fn propose_block(
        &self,
        slot: Slot,
        fork: ForkName,
        duty: &ProposerDuty,
    ) -> Result<(), (&'static str, DutyError)> {
        let validator = self.validator(&duty.pubkey).ok_or((
            "produce_block",
            DutyError::Unusable("a proposer duty for a key this client does not hold".into()),
        ))?;
        let randao_reveal = self.sign(validator, self.roots.randao(self.roots.epoch(slot)));
        let produced = self
            .client
            .produce_block::<E>(slot, &randao_reveal, self.graffiti, None)
            .await
            .map_err(|error| ("produce_block", error.into()))?;
        let (block_slot, block_root) = match &produced.data {
            ProducedBlockData::Full(block) => (block.slot(), block.tree_hash_root()),
            ProducedBlockData::Contents(contents) => {
                (contents.block.slot(), contents.block.tree_hash_root())
            }
            ProducedBlockData::Blinded(block) => (block.slot(), block.tree_hash_root()),
        };
        // A real client never signs a block for another slot (slashable).
        if block_slot != slot {
            return Err((
                "produce_block",
                DutyError::Unusable(format!(
                    "the node produced a block for slot {block_slot}, not {slot}"
                )),
            ));
        }
        let signature = self.sign(validator, self.roots.block(slot, block_root));
        if produced.fork != fork {
            return Err((
                "produce_block",
                DutyError::Unusable(format!(
                    "the node produced a {} block in a {fork} slot",
                    produced.fork
                )),
            ));
        }
        let blocks = "eth/v2/beacon/blocks";
        let result = match produced.data {
            ProducedBlockData::Full(message) => {
                let signed = Signed { message, signature };
                let publish = self.client.publish_block(fork, &signed, false);
                self.send("publish_block", blocks, Some(fork), &signed, publish)
                    .await
            }
            ProducedBlockData::Contents(contents) => {
                let signed = SignedBlockContents {
                    signed_block: Signed {
                        message: contents.block,
                        signature,
                    },
                    kzg_proofs: contents.kzg_proofs,
                    blobs: contents.blobs,
                };
                let publish = self.client.publish_block(fork, &signed, false);
                self.send("publish_block", blocks, Some(fork), &signed, publish)
                    .await
            }
            ProducedBlockData::Blinded(message) => {
                let signed = Signed { message, signature };
                let publish = self.client.publish_block(fork, &signed, true);
                self.send(
                    "publish_blinded_block",
                    "eth/v2/beacon/blinded_blocks",
                    Some(fork),
                    &signed,
                    publish,
                )
                .await
            }
        };
        result.map_err(|error| ("publish_block", error))
    }

    async fn attest_and_aggregate(&self, slot: Slot, fork: ForkName) {
        let duties: Vec<AttesterDuty> =
            match self.attester_duties(self.roots.epoch(slot), false).await {
                Ok(duties) => duties
                    .into_iter()
                    .filter(|duty| duty.slot == slot)
                    .collect(),
                Err(error) => {
                    self.shared.record_error(slot, "attester_duties", &error);
                    return;
                }
            };
        if duties.is_empty() {
            return;
        }
        let (aggregators, data) = tokio::join!(
            async {
                let aggregators = self.attester_selections(slot, &duties).await;
                self.subscribe_committees(slot, &duties, &aggregators).await;
                aggregators
            },
            self.attest(slot, fork, &duties),
        );
        self.aggregate(slot, fork, aggregators, data).await;
    }

    /// The attesters the (combined) selection proofs elect as aggregators,
    /// with those proofs.
    async fn attester_selections(
        &self,
        slot: Slot,
        duties: &[AttesterDuty],
    ) -> Vec<(AttesterDuty, SignatureBytes)> {
        let root = self.roots.selection_proof(slot);
        let own: Vec<BeaconCommitteeSelection> = duties
            .iter()
            .filter_map(|duty| {
                let validator = self.validator(&duty.pubkey)?;
                Some(BeaconCommitteeSelection {
                    validator_index: duty.validator_index,
                    slot,
                    selection_proof: self.sign(validator, root),
                })
            })
            .collect();
        let selections = if self.distributed {
            let endpoint = "beacon_committee_selections";
            let exchanged = if self.malformed_bodies() {
                let path = "eth/v1/validator/beacon_committee_selections";
                self.raw
                    .post(endpoint, path, None, &own)
                    .await
                    .and_then(|()| Err(accepted_malformed()))
            } else {
                let sent_ms = now_ms();
                let exchanged = self.client.beacon_committee_selections(&own).await;
                let validators = own.iter().map(|selection| selection.validator_index);
                self.shared.record_sent(
                    SentKind::BeaconSelection,
                    slot,
                    validators,
                    sent_ms,
                    exchanged.is_ok(),
                );
                exchanged.map_err(DutyError::from)
            };
            match exchanged {
                Ok(combined) => combined,
                Err(error) => {
                    self.shared.record_error(slot, endpoint, &error);
                    return Vec::new();
                }
            }
        } else {
            own
        };
        let proofs: BTreeMap<ValidatorIndex, SignatureBytes> = selections
            .into_iter()
            .filter(|selection| selection.slot == slot)
            .map(|selection| (selection.validator_index, selection.selection_proof))
            .collect();
        duties
            .iter()
            .filter_map(|duty| {
                let proof = proofs.get(&duty.validator_index)?;
                is_aggregator(duty.committee_length, proof).then(|| (duty.clone(), *proof))
            })
            .collect()
    }

    /// Tells the node which committees this slot's attesters are in and
    /// which of them aggregate. (Real clients do it ahead of the slot so the
    /// node can join subnets in time; a mock node does not need the notice.)
    async fn subscribe_committees(
        &self,
        slot: Slot,
        duties: &[AttesterDuty],
        aggregators: &[(AttesterDuty, SignatureBytes)],
    ) {
        let chosen: BTreeSet<ValidatorIndex> = aggregators
            .iter()
            .map(|(duty, _)| duty.validator_index)
            .collect();
        let subscriptions: Vec<BeaconCommitteeSubscription> = duties
            .iter()
            .map(|duty| BeaconCommitteeSubscription {
                validator_index: duty.validator_index,
                committee_index: duty.committee_index,
                committees_at_slot: duty.committees_at_slot,
                slot: duty.slot,
                is_aggregator: chosen.contains(&duty.validator_index),
            })
            .collect();
        let endpoint = "beacon_committee_subscriptions";
        let subscribe = self.client.beacon_committee_subscriptions(&subscriptions);
        let path = "eth/v1/validator/beacon_committee_subscriptions";
        if let Err(error) = self
            .send(endpoint, path, None, &subscriptions, subscribe)
            .await
        {
            self.shared.record_error(slot, endpoint, &error);
        }
    }

    /// Attests at 1/3 of the slot; returns the data attested to, by committee.
    async fn attest(
        &self,
        slot: Slot,
        fork: ForkName,
        duties: &[AttesterDuty],
    ) -> BTreeMap<CommitteeIndex, AttestationData> {
        let tally = Tally::start(&self.shared, Duty::Attester, slot, duties.len());
        sleep_until_ms(self.clock.at_ms(slot, 1, 3)).await;
        let mut committees: BTreeMap<CommitteeIndex, Vec<&AttesterDuty>> = BTreeMap::new();
        for duty in duties {
            committees
                .entry(duty.committee_index)
                .or_default()
                .push(duty);
        }
        let fetched = futures::future::join_all(committees.keys().map(|&committee| async move {
            let data = self
                .until_available(slot, || self.client.attestation_data(slot, committee))
                .await;
            (committee, data)
        }))
        .await;
        let mut attested = BTreeMap::new();
        let mut singles = Vec::new();
        let mut bases: Vec<AttestationBase<E>> = Vec::new();
        for (committee, data) in fetched {
            let members = committees.get(&committee).map_or(&[][..], Vec::as_slice);
            let data = match data {
                Ok(data) if data.slot == slot => data,
                Ok(data) => {
                    let error = format!("data for slot {} when slot {slot} was asked", data.slot);
                    tally.failed(members.len(), "attestation_data", &error);
                    continue;
                }
                Err(error) => {
                    tally.failed(members.len(), "attestation_data", &error);
                    continue;
                }
            };
            attested.insert(committee, data);
            let root = self.roots.attestation(&data);
            for duty in members {
                let Some(validator) = self.validator(&duty.pubkey) else {
                    tally.failed(
                        1,
                        "attestation",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                let signature = self.sign(validator, root);
                if fork.electra_enabled() {
                    singles.push(SingleAttestation {
                        committee_index: committee,
                        attester_index: duty.validator_index,
                        data,
                        signature,
                    });
                    continue;
                }
                match committee_bits::<E>(duty) {
                    Some(aggregation_bits) => bases.push(AttestationBase {
                        aggregation_bits,
                        data,
                        signature,
                    }),
                    None => tally.failed(
                        1,
                        "attestation",
                        &format!(
                            "position {} in a committee of {} does not fit the preset",
                            duty.validator_committee_index, duty.committee_length
                        ),
                    ),
                }
            }
        }
        let path = "eth/v2/beacon/pool/attestations";
        if !singles.is_empty() {
            let submit = self.client.submit_attestations(fork, &singles);
            let sent_ms = now_ms();
            let result = self
                .send("submit_attestations", path, Some(fork), &singles, submit)
                .await;
            self.shared.record_sent(
                SentKind::Attestation,
                slot,
                singles.iter().map(|single| single.attester_index),
                sent_ms,
                result.is_ok(),
            );
            tally.settle("submit_attestations", singles.len(), result);
        }
        if !bases.is_empty() {
            let submit = self.client.submit_attestations(fork, &bases);
            let result = self
                .send("submit_attestations", path, Some(fork), &bases, submit)
                .await;
            tally.settle("submit_attestations", bases.len(), result);
        }
        attested
    }

    /// Aggregates at 2/3 of the slot, for every elected attester.
    async fn aggregate(
        &self,
        slot: Slot,
        fork: ForkName,
        aggregators: Vec<(AttesterDuty, SignatureBytes)>,
        attested: BTreeMap<CommitteeIndex, AttestationData>,
    ) {
        if aggregators.is_empty() {
            return;
        }
        let tally = Tally::start(&self.shared, Duty::Aggregator, slot, aggregators.len());
        sleep_until_ms(self.clock.at_ms(slot, 2, 3)).await;
        let mut committees: BTreeMap<CommitteeIndex, Vec<(AttesterDuty, SignatureBytes)>> =
            BTreeMap::new();
        for (duty, proof) in aggregators {
            committees
                .entry(duty.committee_index)
                .or_default()
                .push((duty, proof));
        }
        let fetched = futures::future::join_all(committees.keys().map(|&committee| {
            let attested = attested.get(&committee).copied();
            async move {
                (
                    committee,
                    self.fetch_aggregate(slot, fork, committee, attested).await,
                )
            }
        }))
        .await;
        let mut electra = Vec::new();
        let mut base = Vec::new();
        for (committee, aggregate) in fetched {
            let members = committees.get(&committee).map_or(&[][..], Vec::as_slice);
            let aggregate = match aggregate {
                Ok(aggregate) => aggregate,
                Err((endpoint, error)) => {
                    tally.failed(members.len(), endpoint, &error);
                    continue;
                }
            };
            for (duty, selection_proof) in members {
                let Some(validator) = self.validator(&duty.pubkey) else {
                    tally.failed(
                        1,
                        "aggregate",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                match (&aggregate, fork.electra_enabled()) {
                    (Attestation::Electra(aggregate), true) => {
                        let message = AggregateAndProofElectra {
                            aggregator_index: duty.validator_index,
                            aggregate: aggregate.clone(),
                            selection_proof: *selection_proof,
                        };
                        let signature =
                            self.sign(validator, self.roots.aggregate_and_proof(slot, &message));
                        electra.push(SignedAggregateAndProofElectra { message, signature });
                    }
                    (Attestation::Base(aggregate), false) => {
                        let message = AggregateAndProofBase {
                            aggregator_index: duty.validator_index,
                            aggregate: aggregate.clone(),
                            selection_proof: *selection_proof,
                        };
                        let signature =
                            self.sign(validator, self.roots.aggregate_and_proof(slot, &message));
                        base.push(SignedAggregateAndProofBase { message, signature });
                    }
                    _ => tally.failed(
                        1,
                        "aggregate_attestation",
                        &format!("an aggregate in the wrong layout for {fork}"),
                    ),
                }
            }
        }
        let path = "eth/v2/validator/aggregate_and_proofs";
        if !electra.is_empty() {
            let submit = self.client.submit_aggregate_and_proofs(fork, &electra);
            let result = self
                .send(
                    "submit_aggregate_and_proofs",
                    path,
                    Some(fork),
                    &electra,
                    submit,
                )
                .await;
            tally.settle("submit_aggregate_and_proofs", electra.len(), result);
        }
        if !base.is_empty() {
            let submit = self.client.submit_aggregate_and_proofs(fork, &base);
            let result = self
                .send(
                    "submit_aggregate_and_proofs",
                    path,
                    Some(fork),
                    &base,
                    submit,
                )
                .await;
            tally.settle("submit_aggregate_and_proofs", base.len(), result);
        }
    }

    /// One committee's aggregate for the data attested to (fetched now if
    /// attesting did not get it).
    async fn fetch_aggregate(
        &self,
        slot: Slot,
        fork: ForkName,
        committee: CommitteeIndex,
        attested: Option<AttestationData>,
    ) -> Result<Attestation<E>, (&'static str, ClientError)> {
        let data = match attested {
            Some(data) => data,
            None => self
                .until_available(slot, || self.client.attestation_data(slot, committee))
                .await
                .map_err(|error| ("attestation_data", error))?,
        };
        let data_root = data.tree_hash_root();
        self.until_available(slot, || {
            self.client
                .aggregate_attestation::<E>(fork, slot, data_root, committee)
        })
        .await
        .map_err(|error| ("aggregate_attestation", error))
    }

    async fn sync_committee(&self, slot: Slot, fork: ForkName) {
        if fork < ForkName::Altair {
            return;
        }
        // The messages of `slot` are checked by the block of the next slot
        // against the committee of that slot's period, so at a period's
        // last slot the next period's members sign.
        let epoch = self.roots.epoch(Slot(slot.as_u64() + 1));
        let duties = match self.sync_duties(epoch, false).await {
            Ok(duties) => duties,
            Err(error) => {
                self.shared.record_error(slot, "sync_duties", &error);
                return;
            }
        };
        if duties.is_empty() {
            return;
        }
        let (aggregators, root) = tokio::join!(
            self.sync_selections(slot, &duties),
            self.sync_messages(slot, &duties),
        );
        self.contribute(slot, aggregators, root).await;
    }

    /// The (member, subcommittee) pairs the (combined) selection proofs
    /// elect as contribution aggregators, with those proofs.
    async fn sync_selections(
        &self,
        slot: Slot,
        duties: &[SyncDuty],
    ) -> Vec<SyncCommitteeSelection> {
        let mut own = Vec::new();
        for duty in duties {
            let Some(validator) = self.validator(&duty.pubkey) else {
                continue;
            };
            for subcommittee_index in
                sync_subcommittees::<E>(&duty.validator_sync_committee_indices)
            {
                let root = self.roots.sync_selection_proof(slot, subcommittee_index);
                own.push(SyncCommitteeSelection {
                    validator_index: duty.validator_index,
                    slot,
                    subcommittee_index,
                    selection_proof: self.sign(validator, root),
                });
            }
        }
        let selections = if self.distributed && !own.is_empty() {
            let endpoint = "sync_committee_selections";
            let exchanged = if self.malformed_bodies() {
                let path = "eth/v1/validator/sync_committee_selections";
                self.raw
                    .post(endpoint, path, None, &own)
                    .await
                    .and_then(|()| Err(accepted_malformed()))
            } else {
                let sent_ms = now_ms();
                let exchanged = self.client.sync_committee_selections(&own).await;
                let validators = own.iter().map(|selection| selection.validator_index);
                self.shared.record_sent(
                    SentKind::SyncSelection,
                    slot,
                    validators,
                    sent_ms,
                    exchanged.is_ok(),
                );
                exchanged.map_err(DutyError::from)
            };
            match exchanged {
                Ok(combined) => combined,
                Err(error) => {
                    self.shared.record_error(slot, endpoint, &error);
                    return Vec::new();
                }
            }
        } else {
            own
        };
        let ours: BTreeSet<ValidatorIndex> =
            duties.iter().map(|duty| duty.validator_index).collect();
        selections
            .into_iter()
            .filter(|selection| {
                selection.slot == slot
                    && ours.contains(&selection.validator_index)
                    && is_sync_committee_aggregator::<E>(&selection.selection_proof)
            })
            .collect()
    }

    /// Signs the head block root at 1/3 of the slot; returns the root signed.
    async fn sync_messages(&self, slot: Slot, duties: &[SyncDuty]) -> Option<Root> {
        let tally = Tally::start(&self.shared, Duty::SyncMessage, slot, duties.len());
        sleep_until_ms(self.clock.at_ms(slot, 1, 3)).await;
        let root = match self
            .until_available(slot, || self.client.block_root("head"))
            .await
        {
            Ok(root) => root,
            Err(error) => {
                tally.failed(duties.len(), "block_root", &error);
                return None;
            }
        };
        let signing_root = self.roots.sync_message(slot, root);
        let mut messages = Vec::new();
        for duty in duties {
            let Some(validator) = self.validator(&duty.pubkey) else {
                tally.failed(
                    1,
                    "sync_message",
                    &"a duty for a key this client does not hold",
                );
                continue;
            };
            messages.push(SyncCommitteeMessage {
                slot,
                beacon_block_root: root,
                validator_index: duty.validator_index,
                signature: self.sign(validator, signing_root),
            });
        }
        if !messages.is_empty() {
            let submit = self.client.submit_sync_committee_messages(&messages);
            let sent_ms = now_ms();
            let result = self
                .send(
                    "submit_sync_committee_messages",
                    "eth/v1/beacon/pool/sync_committees",
                    None,
                    &messages,
                    submit,
                )
                .await;
            self.shared.record_sent(
                SentKind::SyncMessage,
                slot,
                messages.iter().map(|message| message.validator_index),
                sent_ms,
                result.is_ok(),
            );
            tally.settle("submit_sync_committee_messages", messages.len(), result);
        }
        Some(root)
    }

    /// Contributes at 2/3 of the slot, for every elected (member, subcommittee).
    async fn contribute(
        &self,
        slot: Slot,
        aggregators: Vec<SyncCommitteeSelection>,
        signed_root: Option<Root>,
    ) {
        if aggregators.is_empty() {
            return;
        }
        let tally = Tally::start(
            &self.shared,
            Duty::SyncContribution,
            slot,
            aggregators.len(),
        );
        sleep_until_ms(self.clock.at_ms(slot, 2, 3)).await;
        let root = match signed_root {
            Some(root) => root,
            None => match self
                .until_available(slot, || self.client.block_root("head"))
                .await
            {
                Ok(root) => root,
                Err(error) => {
                    tally.failed(aggregators.len(), "block_root", &error);
                    return;
                }
            },
        };
        let mut subcommittees: BTreeMap<u64, Vec<&SyncCommitteeSelection>> = BTreeMap::new();
        for selection in &aggregators {
            subcommittees
                .entry(selection.subcommittee_index)
                .or_default()
                .push(selection);
        }
        let fetched =
            futures::future::join_all(subcommittees.keys().map(|&subcommittee| async move {
                let contribution = self
                    .until_available(slot, || {
                        self.client
                            .sync_committee_contribution::<E>(slot, subcommittee, root)
                    })
                    .await;
                (subcommittee, contribution)
            }))
            .await;
        let mut signed = Vec::new();
        for (subcommittee, contribution) in fetched {
            let members = subcommittees
                .get(&subcommittee)
                .map_or(&[][..], Vec::as_slice);
            let contribution: SyncCommitteeContribution<E> = match contribution {
                Ok(contribution) => contribution,
                Err(error) => {
                    tally.failed(members.len(), "sync_committee_contribution", &error);
                    continue;
                }
            };
            for selection in members {
                let Some(validator) = self.validator_by_index(selection.validator_index) else {
                    tally.failed(
                        1,
                        "contribution",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                let message = ContributionAndProof {
                    aggregator_index: selection.validator_index,
                    contribution: contribution.clone(),
                    selection_proof: selection.selection_proof,
                };
                let signature =
                    self.sign(validator, self.roots.contribution_and_proof(slot, &message));
                signed.push(SignedContributionAndProof { message, signature });
            }
        }
        if !signed.is_empty() {
            let submit = self.client.submit_contribution_and_proofs(&signed);
            let result = self
                .send(
                    "submit_contribution_and_proofs",
                    "eth/v1/validator/contribution_and_proofs",
                    None,
                    &signed,
                    submit,
                )
                .await;
            tally.settle("submit_contribution_and_proofs", signed.len(), result);
        }
    }

    fn validator_by_index(&self, index: ValidatorIndex) -> Option<&Validator> {
        let position = *self.known_indices().get(&index)?;
        self.validators.get(position)
    }
}

/// The aggregation bits of a pre-Electra attestation by one member: the
/// committee's length with the member's bit set.
fn committee_bits<E: EthSpec>(
    duty: &AttesterDuty,
) -> Option<BitList<E::MaxValidatorsPerCommittee>> {
    let mut bits = BitList::with_capacity(usize::try_from(duty.committee_length).ok()?).ok()?;
    bits.set(usize::try_from(duty.validator_committee_index).ok()?, true)
        .ok()?;
    Some(bits)
}

/// A node that accepts a malformed selection request answers nothing usable.
fn accepted_malformed() -> DutyError {
    DutyError::Unusable("the node accepted a malformed body; no selections came back".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::{PublicKey, Signature};
    use phalanx_eth::attestation::Checkpoint;
    use phalanx_eth::signing::{compute_domain, DOMAIN_APPLICATION_BUILDER};

    fn key(byte: u8) -> SecretKey {
        phalanx_crypto::derivation::derive_master_sk(&[byte; 32]).expect("32-byte seed")
    }

    fn roots() -> Roots {
        // Forks at distinct epochs, so a domain taken at the wrong epoch shows.
        let yaml = "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x00000001\nSECONDS_PER_SLOT: 1\n\
                    ALTAIR_FORK_VERSION: 0x01000001\nALTAIR_FORK_EPOCH: 0\n\
                    BELLATRIX_FORK_VERSION: 0x02000001\nBELLATRIX_FORK_EPOCH: 0\n\
                    CAPELLA_FORK_VERSION: 0x03000001\nCAPELLA_FORK_EPOCH: 1\n\
                    DENEB_FORK_VERSION: 0x04000001\nDENEB_FORK_EPOCH: 2\n\
                    ELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 3\n";
        Roots {
            network: NetworkConfig::from_yaml(yaml).expect("valid config"),
            genesis_validators_root: Root::repeat_byte(0x42),
            genesis_fork_version: Version::from([0, 0, 0, 1]),
        }
    }

    fn domain(domain_type: DomainType, version: [u8; 4]) -> Domain {
        compute_domain(domain_type, Version::from(version), Root::repeat_byte(0x42))
    }

    #[test]
    fn sync_positions_map_to_subcommittees() {
        assert_eq!(
            sync_subcommittees::<MinimalEthSpec>(&[0, 7, 8, 31]),
            BTreeSet::from([0, 1, 3])
        );
        assert_eq!(
            sync_subcommittees::<MainnetEthSpec>(&[127, 128, 511]),
            BTreeSet::from([0, 1, 3])
        );
    }

    #[test]
    fn the_slot_clock_counts_from_genesis() {
        let clock = SlotClock::new(100, 1000);
        assert_eq!(clock.start_ms(Slot(0)), 100_000);
        assert_eq!(clock.start_ms(Slot(5)), 105_000);
        assert_eq!(clock.at_ms(Slot(5), 1, 3), 105_333);
        assert_eq!(clock.at_ms(Slot(5), 2, 3), 105_666);
        assert_eq!(clock.slot_at(99_999), None);
        assert_eq!(clock.slot_at(100_000), Some(Slot(0)));
        assert_eq!(clock.slot_at(105_999), Some(Slot(5)));
        assert_eq!(clock.first_slot(50_000), Slot(0));
        assert_eq!(clock.first_slot(105_200), Slot(5));
        assert_eq!(clock.first_slot(105_400), Slot(6));
        let mainnet = SlotClock::new(1_606_824_023, 12_000);
        assert_eq!(mainnet.at_ms(Slot(1), 1, 3), 1_606_824_039_000);
    }

    #[test]
    fn every_signing_root_uses_its_domain_at_the_right_epoch() {
        let roots = roots();
        // Minimal: 8 slots an epoch, so slot 17 is in epoch 2 (Deneb).
        let slot = Slot(17);
        let deneb = [4, 0, 0, 1];
        let block_root = Root::repeat_byte(7);
        assert_eq!(
            roots.randao(Epoch(3)),
            compute_signing_root(&Epoch(3), domain(DOMAIN_RANDAO, [5, 0, 0, 1]))
        );
        assert_eq!(
            roots.block(slot, block_root),
            compute_signing_root(&block_root, domain(DOMAIN_BEACON_PROPOSER, deneb))
        );
        assert_eq!(
            roots.selection_proof(slot),
            compute_signing_root(&slot, domain(DOMAIN_SELECTION_PROOF, deneb))
        );
        assert_eq!(
            roots.sync_message(slot, block_root),
            compute_signing_root(&block_root, domain(DOMAIN_SYNC_COMMITTEE, deneb))
        );
        let selection = SyncAggregatorSelectionData {
            slot,
            subcommittee_index: 2,
        };
        assert_eq!(
            roots.sync_selection_proof(slot, 2),
            compute_signing_root(
                &selection,
                domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, deneb)
            )
        );
        // Attestations are signed at their target's epoch, not their slot's.
        let data = AttestationData {
            slot,
            index: CommitteeIndex(0),
            beacon_block_root: block_root,
            source: Checkpoint::default(),
            target: Checkpoint {
                epoch: Epoch(1),
                root: block_root,
            },
        };
        assert_eq!(
            roots.attestation(&data),
            compute_signing_root(&data, domain(DOMAIN_BEACON_ATTESTER, [3, 0, 0, 1]))
        );
        let aggregate = AggregateAndProofBase::<MinimalEthSpec> {
            aggregator_index: ValidatorIndex(3),
            aggregate: AttestationBase {
                aggregation_bits: BitList::with_capacity(4).expect("fits"),
                data,
                signature: SignatureBytes::ZERO,
            },
            selection_proof: SignatureBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.aggregate_and_proof(slot, &aggregate),
            compute_signing_root(&aggregate, domain(DOMAIN_AGGREGATE_AND_PROOF, deneb))
        );
        let contribution = ContributionAndProof::<MinimalEthSpec> {
            aggregator_index: ValidatorIndex(3),
            contribution: SyncCommitteeContribution {
                slot,
                beacon_block_root: block_root,
                subcommittee_index: 1,
                aggregation_bits: Default::default(),
                signature: SignatureBytes::ZERO,
            },
            selection_proof: SignatureBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.contribution_and_proof(slot, &contribution),
            compute_signing_root(&contribution, domain(DOMAIN_CONTRIBUTION_AND_PROOF, deneb))
        );
        // Registrations: genesis version and a zero genesis validators root.
        let registration = ValidatorRegistration {
            fee_recipient: FEE_RECIPIENT,
            gas_limit: GAS_LIMIT,
            timestamp: 5,
            pubkey: PublicKeyBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.registration(&registration),
            compute_signing_root(
                &registration,
                compute_domain(
                    DOMAIN_APPLICATION_BUILDER,
                    Version::from([0, 0, 0, 1]),
                    Root::ZERO
                )
            )
        );
    }

    fn decode(signature: &SignatureBytes) -> Option<Signature> {
        Signature::from_bytes(signature.as_slice()).ok()
    }

    #[test]
    fn each_misbehaviour_breaks_signatures_its_own_way() {
        let root = Root::repeat_byte(9);
        let public = key(1).public_key();

        let honest = Validator::new(key(1), Misbehaviour::Honest);
        let signature = decode(&honest.sign(root, Misbehaviour::Honest)).expect("a G2 point");
        assert!(signature.verify(&public, root.as_slice()));
        assert_eq!(
            honest.sign(root, Misbehaviour::MalformedJson),
            honest.sign(root, Misbehaviour::Honest)
        );

        let garbage = honest.sign(root, Misbehaviour::GarbageSignatures);
        assert!(decode(&garbage).is_none());

        let wrong_key = Validator::new(key(1), Misbehaviour::WrongKey);
        let impostor: PublicKey = wrong_key
            .impostor
            .as_ref()
            .expect("an impostor key")
            .public_key();
        assert_ne!(impostor, public);
        let signature = decode(&wrong_key.sign(root, Misbehaviour::WrongKey)).expect("a G2 point");
        assert!(!signature.verify(&public, root.as_slice()));
        assert!(signature.verify(&impostor, root.as_slice()));

        let signature = decode(&honest.sign(root, Misbehaviour::WrongMessage)).expect("a G2 point");
        assert!(!signature.verify(&public, root.as_slice()));
    }

    #[test]
    fn malformed_bodies_do_not_parse() {
        let body = vec![ProposerPreparation {
            validator_index: ValidatorIndex(1),
            fee_recipient: FEE_RECIPIENT,
        }];
        assert!(serde_json::to_vec(&body).is_ok());
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed(&body)).is_err());
        let empty: Vec<u8> = Vec::new();
        assert!(serde_json::from_slice::<serde_json::Value>(&malformed(&empty)).is_err());
    }

    #[test]
    fn refused_items_are_read_from_the_failures() {
        let refused = |message: &str, status| {
            let error = DutyError::Client(ClientError::Status {
                node: "http://bn".into(),
                endpoint: "submit_attestations",
                status,
                message: message.into(),
            });
            failed_positions(&error, 4)
        };
        let message = r#"some failed (2 failures: [{"index":0,"message":"bad"},{"index":"3","message":"bad"}])"#;
        assert_eq!(refused(message, 400), Some(2));
        assert_eq!(refused(message, 500), None);
        assert_eq!(refused("bad request", 400), None);
        // Positions outside the batch are ignored.
        assert_eq!(
            refused(r#"x (1 failures: [{"index":9,"message":"?"}])"#, 400),
            None
        );
    }

    #[test]
    fn graffiti_is_padded_and_cut() {
        assert_eq!(&graffiti_root("phalanx")[..8], b"phalanx\0");
        assert_eq!(graffiti_root(&"x".repeat(40)), Root::repeat_byte(b'x'));
    }

    #[test]
    fn tallies_count_what_the_deadline_cuts_short_but_not_a_stop() {
        let shared = Arc::new(Shared {
            label: "test".into(),
            stats: Mutex::new(VcStats::new()),
            stopping: AtomicBool::new(false),
            sent: None,
        });
        let tally = Tally::start(&shared, Duty::Attester, Slot(3), 4);
        tally.submitted(1);
        tally.failed(1, "submit_attestations", &"refused");
        drop(tally);
        let stats = shared.stats().duty(Duty::Attester);
        assert_eq!(
            stats,
            DutyStats {
                attempted: 4,
                submitted: 1,
                failed: 3
            }
        );
        assert_eq!(shared.stats().errors.len(), 2);
        assert!(shared.stats().errors[0].starts_with("slot 3 submit_attestations: refused"));

        shared.stopping.store(true, Ordering::SeqCst);
        let tally = Tally::start(&shared, Duty::Proposer, Slot(4), 1);
        drop(tally);
        assert_eq!(shared.stats().duty(Duty::Proposer), DutyStats::default());
    }
}
