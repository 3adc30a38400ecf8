//! The beacon-node mock: a deterministic simulated chain served over the
//! standard beacon-node REST API, so that validator clients and the Phalanx
//! node can run with no outside service.
//!
//! - The chain (`Chain`) is a pure function of the seed and the slot:
//!   every slot has a block whose root is `sha256("block" ‖ seed ‖ slot)`;
//!   shuffling, proposers and sync committees come from seeded hashes. Time
//!   is an input (milliseconds since genesis); only the HTTP edge reads the
//!   clock.
//! - Every submission (attestation, aggregate, block, sync message,
//!   contribution, exit, registration) is checked as a beacon node would:
//!   the right signer, the spec domain of its epoch, the BLS signature. It is
//!   answered 200 or 400 and kept as a [`Submission`], in memory and
//!   optionally as a JSON line.
//! - Accepted attestations and sync-committee messages are pooled, so that
//!   aggregators fetch real aggregates of what was sent.
//!
//! Start one with [`BeaconMock::start`]; [`devnet_network`] builds a small
//! network configuration for it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy_primitives::U256;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt as _;
use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::api::{
    AttesterDuty, BlockEvent, Fork, Genesis, HeadEvent, NodeVersion, ProposerDuty,
    ProposerPreparation, SyncDuty, Syncing, ValidatorData, ValidatorRecord,
};
use phalanx_eth::attestation::{
    AttestationBase, AttestationData, AttestationElectra, Checkpoint, SignedAggregateAndProofBase,
    SignedAggregateAndProofElectra, SingleAttestation,
};
use phalanx_eth::block::{
    BeaconBlock, BeaconBlockAltair, BeaconBlockBellatrix, BeaconBlockBodyAltair,
    BeaconBlockBodyBellatrix, BeaconBlockBodyCapella, BeaconBlockBodyDeneb, BeaconBlockBodyElectra,
    BeaconBlockCapella, BeaconBlockDeneb, BeaconBlockElectra, BeaconBlockHeader, Eth1Data,
    SyncAggregate,
};
use phalanx_eth::block_contents::{
    BlockContents, ProducedBlock, ProducedBlockData, SignedBeaconBlock, SignedBlindedBeaconBlock,
    SignedBlockContents,
};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::config::{NetworkConfig, PresetBase, FAR_FUTURE_EPOCH};
use phalanx_eth::execution::{
    ExecutionPayloadBellatrix, ExecutionPayloadCapella, ExecutionPayloadDeneb, ExecutionRequests,
};
use phalanx_eth::signing::{
    application_builder_domain, compute_signing_root, voluntary_exit_domain,
    DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_APPLICATION_BUILDER, DOMAIN_BEACON_ATTESTER,
    DOMAIN_BEACON_PROPOSER, DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_DEPOSIT, DOMAIN_RANDAO,
    DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE, DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
    DOMAIN_VOLUNTARY_EXIT,
};
use phalanx_eth::sync_committee::{
    SignedContributionAndProof, SyncAggregatorSelectionData, SyncCommitteeContribution,
    SyncCommitteeMessage,
};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{
    CommitteeIndex, Domain, DomainType, Epoch, EthSpec, ExecutionAddress, ForkName, Gwei,
    MainnetEthSpec, MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use ssz_types::typenum::Unsigned;
use ssz_types::{BitList, BitVector, FixedVector, VariableList};
use tokio::sync::{broadcast, watch};
use tree_hash::TreeHash;

/// `MAXIMUM_GOSSIP_CLOCK_DISPARITY`: how early a message for a slot may come.
const CLOCK_DISPARITY_MS: u64 = 500;
/// `ATTESTATION_PROPAGATION_SLOT_RANGE`: how old an attestation may be.
const ATTESTATION_PROPAGATION_SLOT_RANGE: u64 = 32;
/// How old a block may be when published (a late proposer still publishes).
const BLOCK_PUBLICATION_SLOT_RANGE: u64 = 32;
/// How old a sync-committee message or contribution may be.
const SYNC_PROPAGATION_SLOT_RANGE: u64 = 1;
/// `TARGET_AGGREGATORS_PER_COMMITTEE`.
const TARGET_AGGREGATORS_PER_COMMITTEE: u64 = 16;
/// `TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE`.
const TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE: u64 = 16;
/// `SYNC_COMMITTEE_SUBNET_COUNT`.
const SYNC_COMMITTEE_SUBNET_COUNT: u64 = 4;
/// The most committees a slot has in the mock (fits both presets' limits).
const MAX_MOCK_COMMITTEES_PER_SLOT: u64 = 4;
/// Every validator has 32 ETH.
const BALANCE_GWEI: u64 = 32_000_000_000;
/// How far in the future a builder registration's timestamp may be (builder specs).
const REGISTRATION_FUTURE_SECONDS: u64 = 10;
/// The validator index recorded when a submission names no validator.
const NO_VALIDATOR: u64 = u64::MAX;
/// The execution payload value every produced block claims, in wei.
const EXECUTION_PAYLOAD_VALUE_WEI: u64 = 1_000_000_000_000_000;
/// The consensus block value every produced block claims, in wei.
const CONSENSUS_BLOCK_VALUE_WEI: u64 = 20_000_000_000_000_000;
/// Event topics a subscription may name; only `head` and `block` are ever sent.
const KNOWN_TOPICS: &[&str] = &[
    "head",
    "block",
    "chain_reorg",
    "finalized_checkpoint",
    "attestation",
    "single_attestation",
    "voluntary_exit",
    "contribution_and_proof",
    "payload_attributes",
    "blob_sidecar",
    "data_column_sidecar",
    "block_gossip",
    "bls_to_execution_change",
    "proposer_slashing",
    "attester_slashing",
    "light_client_finality_update",
    "light_client_optimistic_update",
];

/// How to start a [`BeaconMock`].
#[derive(Clone, Debug)]
pub struct BeaconMockConfig {
    /// The network: preset, fork epochs and versions, slot duration.
    pub network: NetworkConfig,
    /// Unix seconds of slot 0.
    pub genesis_time: u64,
    /// The chain's genesis validators root, which every signature binds.
    pub genesis_validators_root: Root,
    /// The validators: validator `i` has index `i`; all are active from
    /// genesis with 32 ETH.
    pub validators: Vec<PublicKeyBytes>,
    /// Fixes block roots, shuffling, proposers and sync committees.
    pub seed: u64,
    /// If set, every accepted or refused submission is appended to this
    /// file as one JSON line.
    pub record: Option<PathBuf>,
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
}

/// [`NetworkConfig::devnet`] on either preset, with `upgrades` scheduled:
/// every fork up to `genesis_fork` from genesis, each listed later fork at
/// its epoch, the rest never.
pub fn devnet_network(
    preset: PresetBase,
    slot_duration_ms: u64,
    genesis_fork: ForkName,
    upgrades: &[(ForkName, Epoch)],
) -> NetworkConfig {
    let mut network = NetworkConfig::devnet(genesis_fork, slot_duration_ms);
    network.preset = preset;
    for scheduled in &mut network.forks {
        let upgrade = upgrades
            .iter()
            .find(|(fork, _)| Some(*fork) == scheduled.fork && *fork > genesis_fork);
        if let Some((_, epoch)) = upgrade {
            scheduled.epoch = *epoch;
        }
    }
    // The order configs are read in, so that a round trip through the spec
    // endpoint gives an equal config.
    network.forks.sort_by_key(|f| (f.epoch, f.fork));
    network
}

/// What kind of message a [`Submission`] carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionKind {
    /// An attestation: `Attestation` before Electra, `SingleAttestation` from Electra on.
    Attestation,
    /// A signed aggregate and proof.
    Aggregate,
    /// A signed full block (block contents from Deneb on).
    Block,
    /// A signed blinded block.
    BlindedBlock,
    /// A sync-committee message.
    SyncMessage,
    /// A signed contribution and proof.
    Contribution,
    /// A signed voluntary exit.
    VoluntaryExit,
    /// A signed builder registration.
    Registration,
}

/// One submitted message as the mock checked it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    /// What it is.
    pub kind: SubmissionKind,
    /// The fork in force at `slot`.
    pub fork: String,
    /// The slot it is for (an exit: its epoch's first slot; a registration:
    /// the slot it arrived in).
    pub slot: u64,
    /// The validator that must have signed it; `u64::MAX` when the message
    /// names none (e.g. aggregation bits that do not point at one member).
    pub validator_index: u64,
    /// `0x` hex of the signer's key; empty when the chain has no such validator.
    pub pubkey: String,
    /// `0x` hex of exactly what `signature` must sign.
    pub signing_root: String,
    /// `0x` hex of the signature submitted.
    pub signature: String,
    /// Whether `signature` is `pubkey`'s BLS signature over `signing_root`.
    pub valid: bool,
    /// Whether every check passed (`valid` and the rest: signer, data, timing),
    /// so that the mock answered 200.
    #[serde(default)]
    pub accepted: bool,
    /// What failed, when refused.
    #[serde(default)]
    pub error: Option<String>,
    /// The submitted JSON object.
    pub body: Value,
    /// Milliseconds since genesis at reception (0 before genesis).
    pub received_ms: u64,
}

/// A running beacon-node mock. Dropping it (or [`BeaconMock::shutdown`])
/// stops the server and ends open event streams.
pub struct BeaconMock {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl BeaconMock {
    /// Binds `config.listen` and serves the simulated chain until dropped.
    pub async fn start(config: BeaconMockConfig) -> std::io::Result<BeaconMock> {
        let record = match &config.record {
            Some(path) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
            None => None,
        };
        let (disconnect, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            down: AtomicBool::new(false),
            submissions: Mutex::new(Vec::new()),
            record,
            disconnect,
        });
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let (stop, stop_receiver) = watch::channel(false);
        let router = match config.network.preset {
            PresetBase::Mainnet => {
                Node::<MainnetEthSpec>::start(config, shared.clone(), stop_receiver.clone())
            }
            PresetBase::Minimal => {
                Node::<MinimalEthSpec>::start(config, shared.clone(), stop_receiver.clone())
            }
        };
        let mut stopped = stop_receiver;
        tokio::spawn(async move {
            let signal = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "beacon mock server failed");
            }
        });
        tracing::info!(%address, "beacon mock listening");
        Ok(BeaconMock {
            address,
            shared,
            stop,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// While down, every request is answered 503 and event streams end.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.shared
                .disconnect
                .send_modify(|generation| *generation += 1);
        }
    }

    /// Everything submitted so far, in order of arrival.
    pub fn submissions(&self) -> Vec<Submission> {
        lock(&self.shared.submissions).clone()
    }

    /// Stops the server (the same as dropping the mock).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for BeaconMock {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        // Open event streams would otherwise hold the graceful shutdown.
        self.shared
            .disconnect
            .send_modify(|generation| *generation += 1);
    }
}

/// What the server's handlers share with the [`BeaconMock`] handle.
struct Shared {
    down: AtomicBool,
    submissions: Mutex<Vec<Submission>>,
    record: Option<Mutex<File>>,
    /// Bumped to end every open event stream.
    disconnect: watch::Sender<u64>,
}

impl Shared {
    fn record(&self, submission: Submission) {
        if let Some(file) = &self.record {
            match serde_json::to_string(&submission) {
                Ok(mut line) => {
                    line.push('\n');
                    // One write per line, so a reader never sees half of one.
                    let mut file = lock(file);
                    if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.flush())
                    {
                        tracing::warn!(%error, "cannot append to the submission record");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot encode a submission"),
            }
        }
        lock(&self.submissions).push(submission);
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves data that is
/// still consistent here (every update is a single push or insert).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Unix time in milliseconds.
#[expect(
    clippy::disallowed_methods,
    reason = "the mock's runtime edge: the simulated chain follows the wall clock"
)]
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn digest_u64(parts: &[&[u8]]) -> u64 {
    let hash = digest(parts);
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(word)
}

/// The spec's aggregator test: `bytes_to_uint64(hash(proof)[0:8]) % modulo == 0`.
fn selected_by(proof: &SignatureBytes, modulo: u64) -> bool {
    let hash = digest(&[proof.as_slice()]);
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(word) % modulo.max(1) == 0
}

fn infinity_signature() -> SignatureBytes {
    SignatureBytes::from(Signature::infinity().to_bytes())
}

// ---------------------------------------------------------------------------
// The chain: a pure function of the seed, the validators and the slot.
// ---------------------------------------------------------------------------

/// The simulated chain. Nothing here reads the clock: the time is passed in
/// as milliseconds since genesis.
pub(crate) struct Chain<E: EthSpec> {
    network: NetworkConfig,
    genesis_time: u64,
    genesis_validators_root: Root,
    seed: u64,
    validators: Vec<PublicKeyBytes>,
    /// Decoded once; `None` for bytes that are not a valid key (nothing
    /// signed by such a validator verifies).
    keys: Vec<Option<PublicKey>>,
    indices: HashMap<PublicKeyBytes, u64>,
    /// Recent epochs' shufflings.
    shufflings: Mutex<BTreeMap<u64, Arc<Vec<u64>>>>,
    preset: PhantomData<E>,
}

/// The validators' duties of one epoch, per validator.
pub(crate) type AttesterDuties = HashMap<u64, AttesterDuty>;

impl<E: EthSpec> Chain<E> {
    pub(crate) fn new(config: &BeaconMockConfig) -> Chain<E> {
        let keys = config
            .validators
            .iter()
            .map(|bytes| PublicKey::from_bytes(bytes.as_slice()).ok())
            .collect();
        let indices = config
            .validators
            .iter()
            .zip(0u64..)
            .map(|(key, index)| (*key, index))
            .collect();
        Chain {
            network: config.network.clone(),
            genesis_time: config.genesis_time,
            genesis_validators_root: config.genesis_validators_root,
            seed: config.seed,
            validators: config.validators.clone(),
            keys,
            indices,
            shufflings: Mutex::new(BTreeMap::new()),
            preset: PhantomData,
        }
    }

    fn validator_count(&self) -> u64 {
        self.validators.len() as u64
    }

    fn slot_ms(&self) -> u64 {
        self.network.slot_duration_ms.max(1)
    }

    fn slot_at(&self, ms_since_genesis: u64) -> Slot {
        Slot(ms_since_genesis / self.slot_ms())
    }

    fn epoch(&self, slot: Slot) -> Epoch {
        slot.epoch(E::SLOTS_PER_EPOCH)
    }

    fn start_slot(&self, epoch: Epoch) -> Slot {
        epoch.start_slot(E::SLOTS_PER_EPOCH)
    }

    /// The fork in force at `slot`, or the name of one this build does not know.
    fn fork(&self, slot: Slot) -> Result<ForkName, String> {
        self.network.fork_at(self.epoch(slot))
    }

    fn fork_name(&self, slot: Slot) -> String {
        match self.fork(slot) {
            Ok(fork) => fork.to_string(),
            Err(name) => name,
        }
    }

    /// Whether `slot` uses Electra's attestation layout (a fork newer than
    /// this build knows keeps it).
    fn electra_at(&self, slot: Slot) -> bool {
        self.fork(slot).map_or(true, ForkName::electra_enabled)
    }

    pub(crate) fn block_root(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"block",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    fn state_root(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"state",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    fn execution_block_hash(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"execution block",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    fn parent_root(&self, slot: Slot) -> Root {
        match slot.0.checked_sub(1) {
            Some(parent) => self.block_root(Slot(parent)),
            None => Root::ZERO,
        }
    }

    fn checkpoint(&self, epoch: Epoch) -> Checkpoint {
        Checkpoint {
            epoch,
            root: self.block_root(self.start_slot(epoch)),
        }
    }

    /// The FFG source of attestations in `epoch`: the previous epoch's
    /// checkpoint, and the zero checkpoint in epoch 0.
    fn source(&self, epoch: Epoch) -> Checkpoint {
        match epoch.0.checked_sub(1) {
            Some(previous) => self.checkpoint(Epoch(previous)),
            None => Checkpoint::default(),
        }
    }

    /// (previous justified, current justified, finalized) at `epoch`: the
    /// chain justifies every epoch one epoch later and finalizes it two
    /// epochs later.
    fn finality(&self, epoch: Epoch) -> (Checkpoint, Checkpoint, Checkpoint) {
        let previous = self.source(Epoch(epoch.0.saturating_sub(1)));
        let previous = if epoch.0 >= 2 {
            previous
        } else {
            Checkpoint::default()
        };
        (previous, self.source(epoch), previous)
    }

    fn is_finalized(&self, slot: Slot, current: Slot) -> bool {
        let (_, _, finalized) = self.finality(self.epoch(current));
        finalized.epoch.0 > 0 && slot <= self.start_slot(finalized.epoch)
    }

    fn domain(&self, domain_type: DomainType, epoch: Epoch) -> Domain {
        self.network
            .domain_at(domain_type, epoch, self.genesis_validators_root)
    }

    fn committees_per_slot(&self) -> u64 {
        (self.validator_count() / (E::SLOTS_PER_EPOCH * 4)).clamp(1, MAX_MOCK_COMMITTEES_PER_SLOT)
    }

    /// Every validator in an order fixed by (seed, epoch): a Fisher–Yates
    /// shuffle drawing from a hash chain.
    fn shuffling(&self, epoch: Epoch) -> Arc<Vec<u64>> {
        if let Some(order) = lock(&self.shufflings).get(&epoch.0) {
            return order.clone();
        }
        let mut order: Vec<u64> = (0..self.validator_count()).collect();
        let mut words: Vec<u64> = Vec::new();
        let mut counter = 0u64;
        for i in (1..order.len()).rev() {
            if words.is_empty() {
                let hash = digest(&[
                    b"shuffle",
                    &self.seed.to_be_bytes(),
                    &epoch.0.to_be_bytes(),
                    &counter.to_be_bytes(),
                ]);
                counter += 1;
                words = hash
                    .chunks_exact(8)
                    .map(|chunk| {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(chunk);
                        u64::from_be_bytes(word)
                    })
                    .collect();
            }
            let draw = words.pop().unwrap_or_default();
            let j = (draw % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let order = Arc::new(order);
        let mut cache = lock(&self.shufflings);
        cache.insert(epoch.0, order.clone());
        while cache.len() > 8 {
            cache.pop_first();
        }
        order
    }

    /// The members of committee `index` at `slot`, in committee order;
    /// `None` if the slot has no such committee.
    fn committee(&self, slot: Slot, index: u64) -> Option<Vec<u64>> {
        let per_slot = self.committees_per_slot();
        if index >= per_slot {
            return None;
        }
        let shuffling = self.shuffling(self.epoch(slot));
        let count = E::SLOTS_PER_EPOCH * per_slot;
        let n = shuffling.len() as u64;
        let k = (slot.0 % E::SLOTS_PER_EPOCH) * per_slot + index;
        let start = (n * k / count) as usize;
        let end = (n * (k + 1) / count) as usize;
        Some(shuffling[start..end].to_vec())
    }

    pub(crate) fn attester_duties(&self, epoch: Epoch) -> AttesterDuties {
        let per_slot = self.committees_per_slot();
        let mut duties = HashMap::new();
        for slot in (0..E::SLOTS_PER_EPOCH).map(|i| Slot(self.start_slot(epoch).0 + i)) {
            for index in 0..per_slot {
                let members = self.committee(slot, index).unwrap_or_default();
                for (position, &validator) in members.iter().enumerate() {
                    duties.insert(
                        validator,
                        AttesterDuty {
                            pubkey: self.validators[validator as usize],
                            validator_index: ValidatorIndex(validator),
                            committee_index: CommitteeIndex(index),
                            committee_length: members.len() as u64,
                            committees_at_slot: per_slot,
                            validator_committee_index: position as u64,
                            slot,
                        },
                    );
                }
            }
        }
        duties
    }

    pub(crate) fn proposer(&self, slot: Slot) -> Option<u64> {
        let n = self.validator_count();
        (n > 0).then(|| {
            digest_u64(&[b"proposer", &self.seed.to_be_bytes(), &slot.0.to_be_bytes()]) % n
        })
    }

    fn epochs_per_sync_committee_period(&self) -> u64 {
        match self.network.preset {
            PresetBase::Mainnet => 256,
            PresetBase::Minimal => 8,
        }
    }

    fn sync_period(&self, epoch: Epoch) -> u64 {
        epoch.0 / self.epochs_per_sync_committee_period()
    }

    /// The sync committee of a period: each position a hash pick, so a
    /// validator may hold several, as in the spec.
    fn sync_committee(&self, period: u64) -> Vec<u64> {
        let n = self.validator_count();
        if n == 0 {
            return Vec::new();
        }
        (0..E::SyncCommitteeSize::to_u64())
            .map(|position| {
                digest_u64(&[
                    b"sync",
                    &self.seed.to_be_bytes(),
                    &period.to_be_bytes(),
                    &position.to_be_bytes(),
                ]) % n
            })
            .collect()
    }

    /// The committee that signs at `slot`: the spec takes it from the
    /// epoch of `slot + 1`, so the last slot of a period is signed by the
    /// next period's committee.
    pub(crate) fn sync_committee_at(&self, slot: Slot) -> Vec<u64> {
        self.sync_committee(self.sync_period(self.epoch(Slot(slot.0 + 1))))
    }

    pub(crate) fn attestation_data(&self, slot: Slot, committee_index: u64) -> AttestationData {
        let epoch = self.epoch(slot);
        AttestationData {
            slot,
            index: CommitteeIndex(if self.electra_at(slot) {
                0
            } else {
                committee_index
            }),
            beacon_block_root: self.block_root(slot),
            source: self.source(epoch),
            target: self.checkpoint(epoch),
        }
    }

    /// The root attester duties of `epoch` depend on.
    fn attester_dependent_root(&self, epoch: Epoch) -> Root {
        match self
            .start_slot(Epoch(epoch.0.saturating_sub(1)))
            .0
            .checked_sub(1)
        {
            Some(slot) if epoch.0 >= 1 => self.block_root(Slot(slot)),
            _ => self.block_root(Slot(0)),
        }
    }

    /// The root proposer duties of `epoch` depend on.
    fn proposer_dependent_root(&self, epoch: Epoch) -> Root {
        match self.start_slot(epoch).0.checked_sub(1) {
            Some(slot) => self.block_root(Slot(slot)),
            None => self.block_root(Slot(0)),
        }
    }

    pub(crate) fn pubkey(&self, index: u64) -> Option<PublicKeyBytes> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.validators.get(i))
            .copied()
    }

    fn key(&self, index: u64) -> Option<&PublicKey> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.keys.get(i))
            .and_then(Option::as_ref)
    }

    fn verify(&self, index: u64, signing_root: Root, signature: &SignatureBytes) -> bool {
        match (self.key(index), Signature::from_bytes(signature.as_slice())) {
            (Some(key), Ok(signature)) => signature.verify(key, signing_root.as_slice()),
            _ => false,
        }
    }

    fn verify_aggregate(
        &self,
        signers: &[u64],
        signing_root: Root,
        signature: &SignatureBytes,
    ) -> bool {
        let keys: Option<Vec<PublicKey>> = signers.iter().map(|&i| self.key(i).copied()).collect();
        match (keys, Signature::from_bytes(signature.as_slice())) {
            (Some(keys), Ok(signature)) => {
                signature.fast_aggregate_verify(signing_root.as_slice(), &keys)
            }
            _ => false,
        }
    }

    /// Why a message for `slot` is out of time, if it is: not yet started
    /// (allowing the gossip clock disparity) or more than `range` slots old.
    fn timing(&self, slot: Slot, now_ms: u64, range: u64) -> Option<String> {
        let current = self.slot_at(now_ms);
        let latest = self.slot_at(now_ms + CLOCK_DISPARITY_MS);
        if slot > latest {
            Some(format!(
                "slot {slot} has not started (current slot {current})"
            ))
        } else if slot.0 + range < current.0 {
            Some(format!(
                "slot {slot} is more than {range} slots old (current slot {current})"
            ))
        } else {
            None
        }
    }

    // --- Submissions --------------------------------------------------------

    /// Checks that `fork` (the layout the message was decoded with) is the
    /// fork of `slot`, and that the `Eth-Consensus-Version` header, if any,
    /// says so too.
    fn check_fork(
        &self,
        checked: &mut Checked,
        slot: Slot,
        layout_electra: bool,
        declared: Option<ForkName>,
    ) {
        let fork = self.fork(slot);
        if let Err(name) = &fork {
            checked.problem(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            ));
        }
        if self.electra_at(slot) != layout_electra {
            let (used, wanted) = if layout_electra {
                ("Electra's", "the pre-Electra layout")
            } else {
                ("the pre-Electra", "Electra's layout (v2 endpoints)")
            };
            checked.problem(format!(
                "the message has {used} layout but slot {slot} is in {}: it needs {wanted}",
                self.fork_name(slot)
            ));
        }
        if let (Some(declared), Ok(fork)) = (declared, fork) {
            if declared != fork {
                checked.problem(format!(
                    "{CONSENSUS_VERSION_HEADER} says {declared} but slot {slot} is in {fork}"
                ));
            }
        }
    }

    fn check_vote(&self, checked: &mut Checked, data: &AttestationData, committee_index: u64) {
        let expected = self.attestation_data(data.slot, committee_index);
        if *data != expected {
            checked.problem(format!(
                "attestation data differs from the chain's vote for slot {} committee {committee_index}: expected {}",
                data.slot,
                serde_json::to_string(&expected).unwrap_or_default()
            ));
        }
    }

    fn attestation_signing_root(&self, data: &AttestationData) -> Root {
        compute_signing_root(data, self.domain(DOMAIN_BEACON_ATTESTER, data.target.epoch))
    }

    /// A pre-Electra `Attestation` from one committee member.
    fn check_attestation(
        &self,
        attestation: &AttestationBase<E>,
        declared: Option<ForkName>,
        now_ms: u64,
    ) -> Checked {
        let data = attestation.data;
        let committee_index = data.index.0;
        let committee = self.committee(data.slot, committee_index);
        let bits: Vec<usize> = attestation
            .aggregation_bits
            .iter()
            .enumerate()
            .filter_map(|(i, set)| set.then_some(i))
            .collect();
        let position = match (&committee, bits.as_slice()) {
            (Some(members), [position]) if attestation.aggregation_bits.len() == members.len() => {
                Some(*position)
            }
            _ => None,
        };
        let signer = position.and_then(|p| committee.as_ref().map(|members| members[p]));
        let mut checked = Checked::new(
            self,
            SubmissionKind::Attestation,
            data.slot,
            signer,
            attestation.signature,
        );
        self.check_fork(&mut checked, data.slot, false, declared);
        match &committee {
            None => checked.problem(format!(
                "slot {} has no committee {committee_index} ({} committees)",
                data.slot,
                self.committees_per_slot()
            )),
            Some(members) => {
                if attestation.aggregation_bits.len() != members.len() {
                    checked.problem(format!(
                        "aggregation_bits has {} bits but committee {committee_index} at slot {} has {} members",
                        attestation.aggregation_bits.len(),
                        data.slot,
                        members.len()
                    ));
                }
                if bits.len() != 1 {
                    checked.problem(format!(
                        "an unaggregated attestation sets exactly one aggregation bit; this one sets {}",
                        bits.len()
                    ));
                }
            }
        }
        self.check_vote(&mut checked, &data, committee_index);
        if let Some(late) = self.timing(data.slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = self.attestation_signing_root(&data);
        let valid = signer.is_some_and(|s| self.verify(s, signing_root, &attestation.signature));
        let mut checked = checked.signed(signing_root, valid);
        if let (Some(members), Some(position)) = (committee, position) {
            checked.pool_attestation(data, committee_index, members.len(), position);
        }
        checked
    }

    /// An Electra `SingleAttestation`.
    fn check_single_attestation(
        &self,
        attestation: &SingleAttestation,
        declared: Option<ForkName>,
        now_ms: u64,
    ) -> Checked {
        let data = attestation.data;
        let committee_index = attestation.committee_index.0;
        let attester = attestation.attester_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::Attestation,
            data.slot,
            Some(attester),
            attestation.signature,
        );
        self.check_fork(&mut checked, data.slot, true, declared);
        let committee = self.committee(data.slot, committee_index);
        let position = committee
            .as_ref()
            .and_then(|members| members.iter().position(|&m| m == attester));
        match &committee {
            None => checked.problem(format!(
                "slot {} has no committee {committee_index} ({} committees)",
                data.slot,
                self.committees_per_slot()
            )),
            Some(_) if position.is_none() => checked.problem(format!(
                "validator {attester} is not in committee {committee_index} at slot {}",
                data.slot
            )),
            Some(_) => {}
        }
        self.check_vote(&mut checked, &data, committee_index);
        if let Some(late) = self.timing(data.slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = self.attestation_signing_root(&data);
        let valid = self.verify(attester, signing_root, &attestation.signature);
        let mut checked = checked.signed(signing_root, valid);
        if let (Some(members), Some(position)) = (committee, position) {
            checked.pool_attestation(data, committee_index, members.len(), position);
        }
        checked
    }

    /// A signed aggregate and proof of either layout, taken apart.
    fn check_aggregate(&self, aggregate: AggregateParts, now_ms: u64) -> Checked {
        let AggregateParts {
            aggregator,
            selection_proof,
            data,
            committee_index,
            bit_count,
            bits,
            aggregate_signature,
            message_root,
            signature,
            electra,
            declared,
        } = aggregate;
        let slot = data.slot;
        let epoch = self.epoch(slot);
        let mut checked = Checked::new(
            self,
            SubmissionKind::Aggregate,
            slot,
            Some(aggregator),
            signature,
        );
        self.check_fork(&mut checked, slot, electra, declared);
        let committee = match committee_index {
            Ok(index) => {
                let committee = self.committee(slot, index);
                if committee.is_none() {
                    checked.problem(format!(
                        "slot {slot} has no committee {index} ({} committees)",
                        self.committees_per_slot()
                    ));
                }
                self.check_vote(&mut checked, &data, index);
                committee
            }
            Err(reason) => {
                checked.problem(reason);
                None
            }
        };
        if let Some(members) = &committee {
            if !members.contains(&aggregator) {
                checked.problem(format!(
                    "aggregator {aggregator} is not in the committee it aggregates"
                ));
            }
            let proof_root =
                compute_signing_root(&slot, self.domain(DOMAIN_SELECTION_PROOF, epoch));
            if !self.verify(aggregator, proof_root, &selection_proof) {
                checked.problem(format!(
                    "selection_proof is not validator {aggregator}'s signature of slot {slot}"
                ));
            }
            let modulo = (members.len() as u64 / TARGET_AGGREGATORS_PER_COMMITTEE).max(1);
            if !selected_by(&selection_proof, modulo) {
                checked.problem(format!(
                    "the selection proof does not make validator {aggregator} an aggregator (modulo {modulo})"
                ));
            }
            if bit_count != members.len() {
                checked.problem(format!(
                    "aggregation_bits has {bit_count} bits but the committee has {} members",
                    members.len()
                ));
            } else if bits.is_empty() {
                checked.problem("the aggregate has no attester".to_string());
            } else {
                let attesters: Vec<u64> = bits.iter().map(|&b| members[b]).collect();
                let root = self.attestation_signing_root(&data);
                if !self.verify_aggregate(&attesters, root, &aggregate_signature) {
                    checked.problem(format!(
                        "the aggregate signature is not the attesters' {attesters:?} signature of the attestation data"
                    ));
                }
            }
        }
        if let Some(late) = self.timing(slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = compute_signing_root(
            &message_root,
            self.domain(DOMAIN_AGGREGATE_AND_PROOF, epoch),
        );
        let valid = self.verify(aggregator, signing_root, &signature);
        checked.signed(signing_root, valid)
    }

    fn check_sync_message(&self, message: &SyncCommitteeMessage, now_ms: u64) -> Checked {
        let slot = message.slot;
        let validator = message.validator_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::SyncMessage,
            slot,
            Some(validator),
            message.signature,
        );
        if matches!(self.fork(slot), Ok(fork) if fork < ForkName::Altair) {
            checked.problem(format!("slot {slot} is before Altair: no sync committee"));
        }
        let committee = self.sync_committee_at(slot);
        let positions: Vec<usize> = committee
            .iter()
            .enumerate()
            .filter_map(|(position, &member)| (member == validator).then_some(position))
            .collect();
        if positions.is_empty() {
            checked.problem(format!(
                "validator {validator} is not in the sync committee signing at slot {slot}"
            ));
        }
        if let Some(late) = self.timing(slot, now_ms, SYNC_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = compute_signing_root(
            &message.beacon_block_root,
            self.domain(DOMAIN_SYNC_COMMITTEE, self.epoch(slot)),
        );
        let valid = self.verify(validator, signing_root, &message.signature);
        let mut checked = checked.signed(signing_root, valid);
        checked.pool_sync_message(slot, message.beacon_block_root, positions);
        checked
    }

    fn check_contribution(&self, signed: &SignedContributionAndProof<E>, now_ms: u64) -> Checked {
        let message = &signed.message;
        let contribution = &message.contribution;
        let slot = contribution.slot;
        let epoch = self.epoch(slot);
        let aggregator = message.aggregator_index.0;
        let subcommittee = contribution.subcommittee_index;
        let mut checked = Checked::new(
            self,
            SubmissionKind::Contribution,
            slot,
            Some(aggregator),
            signed.signature,
        );
        if matches!(self.fork(slot), Ok(fork) if fork < ForkName::Altair) {
            checked.problem(format!("slot {slot} is before Altair: no sync committee"));
        }
        let size = E::SyncSubcommitteeSize::to_usize();
        let committee = self.sync_committee_at(slot);
        let members: Option<&[u64]> = usize::try_from(subcommittee)
            .ok()
            .filter(|&s| (s as u64) < SYNC_COMMITTEE_SUBNET_COUNT)
            .and_then(|s| committee.get(s * size..(s + 1) * size));
        match members {
            None => checked.problem(format!(
                "there is no sync subcommittee {subcommittee} (there are {SYNC_COMMITTEE_SUBNET_COUNT})"
            )),
            Some(members) => {
                if !members.contains(&aggregator) {
                    checked.problem(format!(
                        "aggregator {aggregator} is not in sync subcommittee {subcommittee} at slot {slot}"
                    ));
                }
                let selection = SyncAggregatorSelectionData {
                    slot,
                    subcommittee_index: subcommittee,
                };
                let proof_root = compute_signing_root(
                    &selection,
                    self.domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch),
                );
                if !self.verify(aggregator, proof_root, &message.selection_proof) {
                    checked.problem(format!(
                        "selection_proof is not validator {aggregator}'s signature of slot {slot} subcommittee {subcommittee}"
                    ));
                }
                let modulo = (E::SyncCommitteeSize::to_u64()
                    / SYNC_COMMITTEE_SUBNET_COUNT
                    / TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE)
                    .max(1);
                if !selected_by(&message.selection_proof, modulo) {
                    checked.problem(format!(
                        "the selection proof does not make validator {aggregator} a contribution aggregator (modulo {modulo})"
                    ));
                }
                let participants: Vec<u64> = contribution
                    .aggregation_bits
                    .iter()
                    .zip(members)
                    .filter_map(|(set, &member)| set.then_some(member))
                    .collect();
                let root = compute_signing_root(
                    &contribution.beacon_block_root,
                    self.domain(DOMAIN_SYNC_COMMITTEE, epoch),
                );
                if participants.is_empty() {
                    checked.problem("the contribution has no participant".to_string());
                } else if !self.verify_aggregate(&participants, root, &contribution.signature) {
                    checked.problem(format!(
                        "the contribution signature is not the participants' {participants:?} signature of the block root"
                    ));
                }
            }
        }
        if let Some(late) = self.timing(slot, now_ms, SYNC_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root =
            compute_signing_root(message, self.domain(DOMAIN_CONTRIBUTION_AND_PROOF, epoch));
        let valid = self.verify(aggregator, signing_root, &signed.signature);
        checked.signed(signing_root, valid)
    }

    /// A signed block (full, contents or blinded), taken apart.
    fn check_block(&self, block: BlockParts, now_ms: u64) -> Checked {
        let BlockParts {
            kind,
            slot,
            proposer_index,
            parent_root,
            randao_reveal,
            root,
            layout,
            blobs_problem,
            signature,
            declared,
        } = block;
        let epoch = self.epoch(slot);
        let mut checked = Checked::new(self, kind, slot, Some(proposer_index), signature);
        match self.fork(slot) {
            Ok(fork) if fork != layout => checked.problem(format!(
                "the block has {layout}'s layout but slot {slot} is in {fork}"
            )),
            Ok(_) => {}
            Err(name) => checked.problem(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            )),
        }
        if let Some(declared) = declared.filter(|&d| d != layout) {
            checked.problem(format!(
                "{CONSENSUS_VERSION_HEADER} says {declared} but the block is decoded as {layout}"
            ));
        }
        if slot.0 == 0 {
            checked.problem("slot 0 is genesis: no block can be proposed there".to_string());
        }
        match self.proposer(slot) {
            Some(proposer) if proposer != proposer_index => checked.problem(format!(
                "validator {proposer_index} is not the proposer of slot {slot} (validator {proposer} is)"
            )),
            _ => {}
        }
        if parent_root != self.parent_root(slot) {
            checked.problem(format!(
                "parent_root {parent_root} is not the block of slot {} ({})",
                slot.0.saturating_sub(1),
                self.parent_root(slot)
            ));
        }
        let randao_root = compute_signing_root(&epoch, self.domain(DOMAIN_RANDAO, epoch));
        if !self.verify(proposer_index, randao_root, &randao_reveal) {
            checked.problem(format!(
                "randao_reveal is not validator {proposer_index}'s signature of epoch {epoch}"
            ));
        }
        if let Some(problem) = blobs_problem {
            checked.problem(problem);
        }
        if let Some(late) = self.timing(slot, now_ms, BLOCK_PUBLICATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = compute_signing_root(&root, self.domain(DOMAIN_BEACON_PROPOSER, epoch));
        let valid = self.verify(proposer_index, signing_root, &signature);
        checked.signed(signing_root, valid)
    }

    fn check_exit(&self, exit: &SignedVoluntaryExit, now_ms: u64) -> Checked {
        let epoch = exit.message.epoch;
        let validator = exit.message.validator_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::VoluntaryExit,
            self.start_slot(epoch),
            Some(validator),
            exit.signature,
        );
        let current = self.epoch(self.slot_at(now_ms));
        if epoch > current {
            checked.problem(format!(
                "the exit is valid from epoch {epoch}, after the current epoch {current}"
            ));
        }
        // A fork newer than this build knows exits like Deneb (EIP-7044).
        let fork = self.network.fork_at(current).unwrap_or(ForkName::Fulu);
        let capella = self.network.fork_version(ForkName::Capella);
        if fork >= ForkName::Deneb && capella.is_none() {
            checked
                .problem("the network has no Capella fork version to sign exits with".to_string());
        }
        let domain = voluntary_exit_domain(
            fork,
            self.network.fork_version_at(epoch),
            capella.unwrap_or(self.network.genesis_fork_version),
            self.genesis_validators_root,
        );
        let signing_root = compute_signing_root(&exit.message, domain);
        let valid = self.verify(validator, signing_root, &exit.signature);
        checked.signed(signing_root, valid)
    }

    fn check_registration(
        &self,
        registration: &SignedValidatorRegistration,
        now_ms: u64,
    ) -> Checked {
        let message = &registration.message;
        let index = self.indices.get(&message.pubkey).copied();
        let mut checked = Checked::new(
            self,
            SubmissionKind::Registration,
            self.slot_at(now_ms),
            index,
            registration.signature,
        );
        if index.is_none() {
            checked.problem(format!(
                "{} is not a validator of this chain",
                message.pubkey
            ));
        }
        // The builder checks the message's own key, known validator or not.
        checked.pubkey = Some(message.pubkey);
        let now_seconds = self.genesis_time + now_ms / 1000;
        if message.timestamp > now_seconds + REGISTRATION_FUTURE_SECONDS {
            checked.problem(format!(
                "timestamp {} is more than {REGISTRATION_FUTURE_SECONDS} s in the future",
                message.timestamp
            ));
        }
        let signing_root = compute_signing_root(
            message,
            application_builder_domain(self.network.genesis_fork_version),
        );
        let valid = PublicKey::from_bytes(message.pubkey.as_slice())
            .ok()
            .zip(Signature::from_bytes(registration.signature.as_slice()).ok())
            .is_some_and(|(key, signature)| signature.verify(&key, signing_root.as_slice()));
        checked.signed(signing_root, valid)
    }

    // --- Block production ---------------------------------------------------

    /// The default block of `slot`: no operations, an empty sync aggregate
    /// and a deterministic, empty execution payload.
    pub(crate) fn produce_block(
        &self,
        slot: Slot,
        randao_reveal: SignatureBytes,
        graffiti: Root,
        fee_recipient: ExecutionAddress,
    ) -> Result<ProducedBlock<E>, ApiError> {
        let fork = self.fork(slot).map_err(|name| {
            ApiError::BadRequest(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            ))
        })?;
        let proposer_index = self
            .proposer(slot)
            .map(ValidatorIndex)
            .ok_or_else(|| ApiError::BadRequest("the chain has no validators".to_string()))?;
        let parent_root = self.parent_root(slot);
        let state_root = self.state_root(slot);
        let eth1_data = Eth1Data {
            deposit_root: Root::ZERO,
            deposit_count: self.validator_count(),
            block_hash: self.execution_block_hash(Slot(0)),
        };
        let sync_aggregate = SyncAggregate::<E> {
            sync_committee_bits: BitVector::new(),
            sync_committee_signature: infinity_signature(),
        };
        let parent_hash = self.execution_block_hash(Slot(slot.0.saturating_sub(1)));
        let block_hash = self.execution_block_hash(slot);
        let execution_state_root = Root::from(digest(&[
            b"execution state",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]));
        let prev_randao = Root::from(digest(&[
            b"randao mix",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]));
        let timestamp = self.genesis_time + slot.0 * self.slot_ms() / 1000;

        // The payload fields every fork shares; the fork's own follow.
        macro_rules! payload {
            ($payload:ident { $($extra:tt)* }) => {
                $payload {
                    parent_hash,
                    fee_recipient,
                    state_root: execution_state_root,
                    receipts_root: Root::ZERO,
                    logs_bloom: FixedVector::default(),
                    prev_randao,
                    block_number: slot.0,
                    gas_limit: 30_000_000,
                    gas_used: 0,
                    timestamp,
                    extra_data: VariableList::default(),
                    base_fee_per_gas: U256::from(7u64),
                    block_hash,
                    transactions: VariableList::default(),
                    $($extra)*
                }
            };
        }
        macro_rules! body {
            ($body:ident, $payload:expr, { $($extra:tt)* }) => {
                $body::<E> {
                    randao_reveal,
                    eth1_data: eth1_data.clone(),
                    graffiti,
                    proposer_slashings: VariableList::default(),
                    attester_slashings: VariableList::default(),
                    attestations: VariableList::default(),
                    deposits: VariableList::default(),
                    voluntary_exits: VariableList::default(),
                    sync_aggregate: sync_aggregate.clone(),
                    execution_payload: $payload,
                    bls_to_execution_changes: VariableList::default(),
                    $($extra)*
                }
            };
        }
        let electra = || BeaconBlockElectra {
            slot,
            proposer_index,
            parent_root,
            state_root,
            body: body!(
                BeaconBlockBodyElectra,
                payload!(ExecutionPayloadDeneb {
                    withdrawals: VariableList::default(),
                    blob_gas_used: 0,
                    excess_blob_gas: 0,
                }),
                {
                    blob_kzg_commitments: VariableList::default(),
                    execution_requests: ExecutionRequests {
                        deposits: VariableList::default(),
                        withdrawals: VariableList::default(),
                        consolidations: VariableList::default(),
                    },
                }
            ),
        };
        let altair_body = || BeaconBlockBodyAltair::<E> {
            randao_reveal,
            eth1_data: eth1_data.clone(),
            graffiti,
            proposer_slashings: VariableList::default(),
            attester_slashings: VariableList::default(),
            attestations: VariableList::default(),
            deposits: VariableList::default(),
            voluntary_exits: VariableList::default(),
            sync_aggregate: sync_aggregate.clone(),
        };
        let block = match fork {
            ForkName::Altair => BeaconBlock::Altair(BeaconBlockAltair {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: altair_body(),
            }),
            ForkName::Bellatrix => {
                let altair = altair_body();
                BeaconBlock::Bellatrix(BeaconBlockBellatrix {
                    slot,
                    proposer_index,
                    parent_root,
                    state_root,
                    body: BeaconBlockBodyBellatrix {
                        randao_reveal: altair.randao_reveal,
                        eth1_data: altair.eth1_data,
                        graffiti: altair.graffiti,
                        proposer_slashings: altair.proposer_slashings,
                        attester_slashings: altair.attester_slashings,
                        attestations: altair.attestations,
                        deposits: altair.deposits,
                        voluntary_exits: altair.voluntary_exits,
                        sync_aggregate: altair.sync_aggregate,
                        execution_payload: payload!(ExecutionPayloadBellatrix {}),
                    },
                })
            }
            ForkName::Capella => BeaconBlock::Capella(BeaconBlockCapella {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: body!(
                    BeaconBlockBodyCapella,
                    payload!(ExecutionPayloadCapella {
                        withdrawals: VariableList::default(),
                    }),
                    {}
                ),
            }),
            ForkName::Deneb => BeaconBlock::Deneb(BeaconBlockDeneb {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: body!(
                    BeaconBlockBodyDeneb,
                    payload!(ExecutionPayloadDeneb {
                        withdrawals: VariableList::default(),
                        blob_gas_used: 0,
                        excess_blob_gas: 0,
                    }),
                    { blob_kzg_commitments: VariableList::default(), }
                ),
            }),
            ForkName::Electra => BeaconBlock::Electra(electra()),
            ForkName::Fulu => BeaconBlock::Fulu(electra()),
            older => {
                return Err(ApiError::BadRequest(format!(
                    "slot {slot} is in {older}: the mock produces blocks from Altair on"
                )))
            }
        };
        let data = if fork >= ForkName::Deneb {
            // No blobs are served, so there are no proofs either.
            ProducedBlockData::Contents(BlockContents {
                block,
                kzg_proofs: Vec::new(),
                blobs: Vec::new(),
            })
        } else {
            ProducedBlockData::Full(block)
        };
        Ok(ProducedBlock {
            fork,
            data,
            execution_payload_value: U256::from(EXECUTION_PAYLOAD_VALUE_WEI),
            consensus_block_value: U256::from(CONSENSUS_BLOCK_VALUE_WEI),
        })
    }

    // --- Reads --------------------------------------------------------------

    fn validator_data(&self, index: u64) -> Option<ValidatorData> {
        let pubkey = self.pubkey(index)?;
        let mut withdrawal_credentials = [0u8; 32];
        withdrawal_credentials[0] = 0x01;
        withdrawal_credentials[24..].copy_from_slice(&index.to_be_bytes());
        Some(ValidatorData {
            index: ValidatorIndex(index),
            balance: Gwei(BALANCE_GWEI),
            status: "active_ongoing".to_string(),
            validator: ValidatorRecord {
                pubkey,
                withdrawal_credentials: Root::from(withdrawal_credentials),
                effective_balance: Gwei(BALANCE_GWEI),
                slashed: false,
                activation_eligibility_epoch: Epoch(0),
                activation_epoch: Epoch(0),
                exit_epoch: FAR_FUTURE_EPOCH,
                withdrawable_epoch: FAR_FUTURE_EPOCH,
            },
        })
    }

    /// The validators `ids` name (indices or `0x` keys; all when empty) with
    /// a status among `statuses` (any when empty). Unknown ones are skipped.
    fn select_validators(
        &self,
        ids: &[String],
        statuses: &[String],
    ) -> Result<Vec<ValidatorData>, ApiError> {
        let status_matches = statuses.is_empty()
            || statuses
                .iter()
                .any(|s| s == "active_ongoing" || s == "active");
        if !status_matches {
            return Ok(Vec::new());
        }
        if ids.is_empty() {
            return Ok((0..self.validator_count())
                .filter_map(|i| self.validator_data(i))
                .collect());
        }
        let mut selected = Vec::new();
        for id in ids {
            let index = if id.starts_with("0x") {
                let key = PublicKeyBytes::from_str(id).map_err(|_| {
                    ApiError::BadRequest(format!("validator id {id:?} is not a 48-byte key"))
                })?;
                self.indices.get(&key).copied()
            } else {
                Some(id.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "validator id {id:?} is neither an index nor a 0x public key"
                    ))
                })?)
            };
            if let Some(data) = index.and_then(|i| self.validator_data(i)) {
                selected.push(data);
            }
        }
        Ok(selected)
    }

    /// The fork schedule from genesis, each fork with the version before it.
    fn fork_schedule(&self) -> Vec<Fork> {
        let mut schedule = vec![Fork {
            previous_version: self.network.genesis_fork_version,
            current_version: self.network.genesis_fork_version,
            epoch: Epoch(0),
        }];
        for fork in &self.network.forks {
            let previous_version = schedule
                .last()
                .map_or(self.network.genesis_fork_version, |f| f.current_version);
            schedule.push(Fork {
                previous_version,
                current_version: fork.version,
                epoch: fork.epoch,
            });
        }
        schedule
    }

    /// The slot a state or block id names: `head`, `genesis`, `finalized`,
    /// `justified`, a slot, or a recent root (`roots` gives a slot's root).
    fn resolve_id(
        &self,
        id: &str,
        now_ms: u64,
        roots: impl Fn(&Chain<E>, Slot) -> Root,
    ) -> Result<Slot, ApiError> {
        let current = self.slot_at(now_ms);
        let (_, justified, finalized) = self.finality(self.epoch(current));
        let slot = match id {
            "head" => current,
            "genesis" => Slot(0),
            "finalized" => self.start_slot(finalized.epoch),
            "justified" => self.start_slot(justified.epoch),
            hex if hex.starts_with("0x") => {
                let root = Root::from_str(hex)
                    .map_err(|_| ApiError::BadRequest(format!("{hex:?} is not a 32-byte root")))?;
                let recent = current
                    .0
                    .saturating_sub(2 * ATTESTATION_PROPAGATION_SLOT_RANGE);
                return (recent..=current.0)
                    .rev()
                    .chain([0])
                    .map(Slot)
                    .find(|&slot| roots(self, slot) == root)
                    .ok_or_else(|| ApiError::NotFound(format!("no recent block or state {root}")));
            }
            number => Slot(number.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "{number:?} is not head, genesis, finalized, justified, a slot or a root"
                ))
            })?),
        };
        if slot > current {
            return Err(ApiError::NotFound(format!(
                "slot {slot} is after the head (slot {current})"
            )));
        }
        Ok(slot)
    }

    fn header(&self, slot: Slot) -> BeaconBlockHeader {
        BeaconBlockHeader {
            slot,
            proposer_index: ValidatorIndex(self.proposer(slot).unwrap_or_default()),
            parent_root: self.parent_root(slot),
            state_root: self.state_root(slot),
            body_root: Root::from(digest(&[
                b"body",
                &self.seed.to_be_bytes(),
                &slot.0.to_be_bytes(),
            ])),
        }
    }

    /// The `data` of `/eth/v1/config/spec`: the network config, the preset
    /// values validator clients use, and the spec constants.
    fn spec(&self) -> serde_json::Map<String, Value> {
        let mut data = self.network.to_spec_json();
        let minimal = self.network.preset == PresetBase::Minimal;
        let pick = |mainnet: u64, minimal_value: u64| {
            if minimal {
                minimal_value
            } else {
                mainnet
            }
        };
        let numbers: [(&str, u64); 22] = [
            ("SLOTS_PER_EPOCH", E::SLOTS_PER_EPOCH),
            ("MAX_COMMITTEES_PER_SLOT", E::MaxCommitteesPerSlot::to_u64()),
            ("TARGET_COMMITTEE_SIZE", pick(128, 4)),
            (
                "MAX_VALIDATORS_PER_COMMITTEE",
                E::MaxValidatorsPerCommittee::to_u64(),
            ),
            ("SHUFFLE_ROUND_COUNT", pick(90, 10)),
            ("MIN_SEED_LOOKAHEAD", 1),
            ("MAX_SEED_LOOKAHEAD", 4),
            ("EPOCHS_PER_ETH1_VOTING_PERIOD", pick(64, 4)),
            ("SLOTS_PER_HISTORICAL_ROOT", pick(8192, 64)),
            ("MAX_EFFECTIVE_BALANCE", BALANCE_GWEI),
            ("EFFECTIVE_BALANCE_INCREMENT", 1_000_000_000),
            ("SYNC_COMMITTEE_SIZE", E::SyncCommitteeSize::to_u64()),
            (
                "EPOCHS_PER_SYNC_COMMITTEE_PERIOD",
                self.epochs_per_sync_committee_period(),
            ),
            (
                "MAX_WITHDRAWALS_PER_PAYLOAD",
                E::MaxWithdrawalsPerPayload::to_u64(),
            ),
            (
                "MAX_BLOB_COMMITMENTS_PER_BLOCK",
                E::MaxBlobCommitmentsPerBlock::to_u64(),
            ),
            (
                "TARGET_AGGREGATORS_PER_COMMITTEE",
                TARGET_AGGREGATORS_PER_COMMITTEE,
            ),
            (
                "TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE",
                TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE,
            ),
            ("SYNC_COMMITTEE_SUBNET_COUNT", SYNC_COMMITTEE_SUBNET_COUNT),
            ("INTERVALS_PER_SLOT", 3),
            ("SHARD_COMMITTEE_PERIOD", pick(256, 64)),
            ("MIN_VALIDATOR_WITHDRAWABILITY_DELAY", 256),
            ("FAR_FUTURE_EPOCH", FAR_FUTURE_EPOCH.0),
        ];
        for (key, value) in numbers {
            data.insert(key.to_string(), Value::String(value.to_string()));
        }
        let domains = [
            ("DOMAIN_BEACON_PROPOSER", DOMAIN_BEACON_PROPOSER),
            ("DOMAIN_BEACON_ATTESTER", DOMAIN_BEACON_ATTESTER),
            ("DOMAIN_RANDAO", DOMAIN_RANDAO),
            ("DOMAIN_DEPOSIT", DOMAIN_DEPOSIT),
            ("DOMAIN_VOLUNTARY_EXIT", DOMAIN_VOLUNTARY_EXIT),
            ("DOMAIN_SELECTION_PROOF", DOMAIN_SELECTION_PROOF),
            ("DOMAIN_AGGREGATE_AND_PROOF", DOMAIN_AGGREGATE_AND_PROOF),
            ("DOMAIN_SYNC_COMMITTEE", DOMAIN_SYNC_COMMITTEE),
            (
                "DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF",
                DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
            ),
            (
                "DOMAIN_CONTRIBUTION_AND_PROOF",
                DOMAIN_CONTRIBUTION_AND_PROOF,
            ),
            ("DOMAIN_APPLICATION_BUILDER", DOMAIN_APPLICATION_BUILDER),
        ];
        for (key, value) in domains {
            data.insert(key.to_string(), Value::String(value.to_string()));
        }
        data
    }
}

/// An aggregate and proof of either layout, taken apart for checking.
struct AggregateParts {
    aggregator: u64,
    selection_proof: SignatureBytes,
    data: AttestationData,
    /// The committee aggregated, or why the message names none.
    committee_index: Result<u64, String>,
    bit_count: usize,
    /// Positions of the set aggregation bits.
    bits: Vec<usize>,
    aggregate_signature: SignatureBytes,
    /// hash_tree_root of the `AggregateAndProof`.
    message_root: Root,
    signature: SignatureBytes,
    electra: bool,
    declared: Option<ForkName>,
}

impl AggregateParts {
    fn base<E: EthSpec>(
        signed: &SignedAggregateAndProofBase<E>,
        declared: Option<ForkName>,
    ) -> AggregateParts {
        let message = &signed.message;
        let aggregate = &message.aggregate;
        AggregateParts {
            aggregator: message.aggregator_index.0,
            selection_proof: message.selection_proof,
            data: aggregate.data,
            committee_index: Ok(aggregate.data.index.0),
            bit_count: aggregate.aggregation_bits.len(),
            bits: set_bits(aggregate.aggregation_bits.iter()),
            aggregate_signature: aggregate.signature,
            message_root: message.tree_hash_root(),
            signature: signed.signature,
            electra: false,
            declared,
        }
    }

    fn electra<E: EthSpec>(
        signed: &SignedAggregateAndProofElectra<E>,
        declared: Option<ForkName>,
    ) -> AggregateParts {
        let message = &signed.message;
        let aggregate = &message.aggregate;
        let committees = set_bits(aggregate.committee_bits.iter());
        let committee_index = match committees.as_slice() {
            [index] => Ok(*index as u64),
            other => Err(format!(
                "an aggregate covers exactly one committee; committee_bits sets {}",
                other.len()
            )),
        };
        AggregateParts {
            aggregator: message.aggregator_index.0,
            selection_proof: message.selection_proof,
            data: aggregate.data,
            committee_index,
            bit_count: aggregate.aggregation_bits.len(),
            bits: set_bits(aggregate.aggregation_bits.iter()),
            aggregate_signature: aggregate.signature,
            message_root: message.tree_hash_root(),
            signature: signed.signature,
            electra: true,
            declared,
        }
    }
}

fn set_bits(bits: impl Iterator<Item = bool>) -> Vec<usize> {
    bits.enumerate()
        .filter_map(|(i, set)| set.then_some(i))
        .collect()
}

/// A signed block of any form, taken apart for checking.
struct BlockParts {
    kind: SubmissionKind,
    slot: Slot,
    proposer_index: u64,
    parent_root: Root,
    randao_reveal: SignatureBytes,
    /// hash_tree_root of the block (the same for its blinded form).
    root: Root,
    /// The fork whose layout the block was decoded with.
    layout: ForkName,
    /// What is wrong with the blobs and proofs sent along, if anything.
    blobs_problem: Option<String>,
    signature: SignatureBytes,
    declared: Option<ForkName>,
}

impl BlockParts {
    fn full<E: EthSpec>(
        signed: &SignedBeaconBlock<E>,
        blobs: Option<(usize, usize)>,
        declared: Option<ForkName>,
    ) -> BlockParts {
        let block = &signed.message;
        let randao_reveal = block.randao_reveal();
        let commitments = match block {
            BeaconBlock::Deneb(b) => b.body.blob_kzg_commitments.len(),
            BeaconBlock::Electra(b) | BeaconBlock::Fulu(b) => b.body.blob_kzg_commitments.len(),
            _ => 0,
        };
        let layout = block.fork_name();
        let blobs_problem = blobs.and_then(|(proofs, blobs)| {
            let proofs_per_blob = if layout >= ForkName::Fulu { 128 } else { 1 };
            (blobs != commitments || proofs != blobs * proofs_per_blob).then(|| {
                format!(
                    "{commitments} blob commitments need as many blobs and {} proofs; got {blobs} blobs and {proofs} proofs",
                    commitments * proofs_per_blob
                )
            })
        });
        BlockParts {
            kind: SubmissionKind::Block,
            slot: block.slot(),
            proposer_index: block.proposer_index().0,
            parent_root: block.header().parent_root,
            randao_reveal,
            root: block.tree_hash_root(),
            layout,
            blobs_problem,
            signature: signed.signature,
            declared,
        }
    }

    fn blinded<E: EthSpec>(
        signed: &SignedBlindedBeaconBlock<E>,
        declared: Option<ForkName>,
    ) -> BlockParts {
        let block = &signed.message;
        let randao_reveal = block.randao_reveal();
        BlockParts {
            kind: SubmissionKind::BlindedBlock,
            slot: block.slot(),
            proposer_index: block.proposer_index().0,
            parent_root: block.header().parent_root,
            randao_reveal,
            root: block.tree_hash_root(),
            layout: block.fork_name(),
            blobs_problem: None,
            signature: signed.signature,
            declared,
        }
    }
}

/// A submission as checked, before it is recorded.
struct Checked {
    kind: SubmissionKind,
    fork: String,
    slot: Slot,
    validator_index: u64,
    pubkey: Option<PublicKeyBytes>,
    signing_root: Root,
    signature: SignatureBytes,
    valid: bool,
    problems: Vec<String>,
    /// What accepting it adds to the pools.
    effect: Option<Effect>,
}

impl Checked {
    fn new<E: EthSpec>(
        chain: &Chain<E>,
        kind: SubmissionKind,
        slot: Slot,
        signer: Option<u64>,
        signature: SignatureBytes,
    ) -> Checked {
        let mut checked = Checked {
            kind,
            fork: chain.fork_name(slot),
            slot,
            validator_index: signer.unwrap_or(NO_VALIDATOR),
            pubkey: signer.and_then(|s| chain.pubkey(s)),
            signing_root: Root::ZERO,
            signature,
            valid: false,
            problems: Vec::new(),
            effect: None,
        };
        if let (Some(signer), None) = (signer, checked.pubkey) {
            checked.problem(format!(
                "validator {signer} does not exist ({} validators)",
                chain.validator_count()
            ));
        }
        checked
    }

    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Sets what was signed and whether the signature verifies.
    fn signed(mut self, signing_root: Root, valid: bool) -> Checked {
        self.signing_root = signing_root;
        self.valid = valid;
        if !valid && self.pubkey.is_some() {
            self.problem(format!(
                "the signature is not {}'s signature over signing root {signing_root}",
                if self.validator_index == NO_VALIDATOR {
                    "the key's".to_string()
                } else {
                    format!("validator {}", self.validator_index)
                }
            ));
        }
        self
    }

    fn accepted(&self) -> bool {
        self.problems.is_empty()
    }

    fn error(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| self.problems.join("; "))
    }

    fn pool_attestation(
        &mut self,
        data: AttestationData,
        committee_index: u64,
        committee_len: usize,
        position: usize,
    ) {
        if let Ok(signature) = Signature::from_bytes(self.signature.as_slice()) {
            self.effect = Some(Effect::Attestation {
                data,
                committee_index,
                committee_len,
                position,
                signature,
            });
        }
    }

    fn pool_sync_message(&mut self, slot: Slot, root: Root, positions: Vec<usize>) {
        if let Ok(signature) = Signature::from_bytes(self.signature.as_slice()) {
            self.effect = Some(Effect::SyncMessage {
                slot,
                root,
                positions,
                signature,
            });
        }
    }

    fn into_submission(self, body: Value, received_ms: u64) -> Submission {
        let accepted = self.accepted();
        let error = self.error();
        Submission {
            kind: self.kind,
            fork: self.fork,
            slot: self.slot.0,
            validator_index: self.validator_index,
            pubkey: self.pubkey.map(|k| k.to_string()).unwrap_or_default(),
            signing_root: self.signing_root.to_string(),
            signature: self.signature.to_string(),
            valid: self.valid,
            accepted,
            error,
            body,
            received_ms,
        }
    }
}

/// What an accepted message adds to the pools aggregators draw from.
enum Effect {
    Attestation {
        data: AttestationData,
        committee_index: u64,
        committee_len: usize,
        position: usize,
        signature: Signature,
    },
    SyncMessage {
        slot: Slot,
        root: Root,
        /// The signer's positions in the sync committee.
        positions: Vec<usize>,
        signature: Signature,
    },
}

/// Accepted attestations and sync-committee messages, for aggregation.
#[derive(Default)]
struct Pools {
    /// By (attestation data root, committee index).
    attestations: HashMap<(Root, u64), PooledAttestation>,
    /// By (slot, block root): signatures by sync-committee position.
    sync_messages: HashMap<(Slot, Root), BTreeMap<usize, Signature>>,
}

struct PooledAttestation {
    data: AttestationData,
    committee_len: usize,
    signatures: BTreeMap<usize, Signature>,
}

// ---------------------------------------------------------------------------
// The HTTP edge.
// ---------------------------------------------------------------------------

/// A beacon-API error: answered with `{"code": …, "message": …}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Some items of a batch were refused.
    #[error("{message}")]
    Refused {
        message: String,
        failures: Vec<Failure>,
    },
    /// The mock was set down.
    #[error("the beacon node mock is down")]
    Down,
    /// The mock cannot build what was asked.
    #[error("{0}")]
    Internal(String),
}

/// One refused item of a batch, as beacon nodes report it.
#[derive(Debug, Serialize)]
pub(crate) struct Failure {
    index: usize,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) | ApiError::Refused { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Down => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = json!({"code": status.as_u16(), "message": self.to_string()});
        if let ApiError::Refused { failures, .. } = self {
            body["failures"] = json!(failures);
        }
        (status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// `{"data": …}`.
fn data(value: impl Serialize) -> Response {
    Json(json!({ "data": value })).into_response()
}

/// A response carrying versioned data: `{"version": …, "data": …}` with the
/// `Eth-Consensus-Version` header.
fn versioned(fork: ForkName, body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        CONSENSUS_VERSION_HEADER,
        HeaderValue::from_static(fork.as_str()),
    );
    response
}

/// The parsed query string of a request.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a parameter, repeated or comma-separated.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn optional<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::BadRequest(format!("query parameter {name}={value:?} is invalid"))
                })
            })
            .transpose()
    }

    fn required<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        self.optional(name)?
            .ok_or_else(|| ApiError::BadRequest(format!("query parameter {name} is required")))
    }
}

fn parse_u64(what: &str, text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {text:?} is not a number")))
}

/// The fork the `Eth-Consensus-Version` header names, if it is present.
fn declared_fork(headers: &HeaderMap) -> Result<Option<ForkName>, ApiError> {
    headers
        .get(CONSENSUS_VERSION_HEADER)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{CONSENSUS_VERSION_HEADER} {value:?} is not a fork this mock knows"
                    ))
                })
        })
        .transpose()
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

fn parse_array(body: &Bytes) -> Result<Vec<Value>, ApiError> {
    match parse_body(body)? {
        Value::Array(items) => Ok(items),
        _ => Err(ApiError::BadRequest(
            "the body must be a JSON array".to_string(),
        )),
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, item: &Value) -> Result<T, String> {
    serde_json::from_value(item.clone()).map_err(|e| format!("cannot decode {what}: {e}"))
}

/// Validator indices as a duties request sends them (quoted or bare).
fn parse_indices(body: &Bytes) -> Result<Vec<u64>, ApiError> {
    parse_array(body)?
        .iter()
        .map(|item| match item {
            Value::String(text) => parse_u64("validator index", text),
            Value::Number(number) => number.as_u64().ok_or_else(|| {
                ApiError::BadRequest(format!("validator index {number} is not an index"))
            }),
            other => Err(ApiError::BadRequest(format!(
                "validator index {other} is not an index"
            ))),
        })
        .collect()
}

/// The server side: the chain, the pools and what the handle shares.
struct Node<E: EthSpec> {
    chain: Chain<E>,
    shared: Arc<Shared>,
    pools: Mutex<Pools>,
    fee_recipients: Mutex<HashMap<u64, ExecutionAddress>>,
    /// The slot of each new head, at its start.
    events: broadcast::Sender<Slot>,
}

impl<E: EthSpec> Node<E> {
    fn start(config: BeaconMockConfig, shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Router {
        let (events, _) = broadcast::channel(64);
        let node = Arc::new(Node {
            chain: Chain::<E>::new(&config),
            shared,
            pools: Mutex::new(Pools::default()),
            fee_recipients: Mutex::new(HashMap::new()),
            events,
        });
        tokio::spawn(tick(node.clone(), stop));
        router(node)
    }

    /// Milliseconds since genesis (0 before it).
    fn now_ms(&self) -> u64 {
        unix_ms().saturating_sub(self.chain.genesis_time.saturating_mul(1000))
    }

    fn current_slot(&self) -> Slot {
        self.chain.slot_at(self.now_ms())
    }

    /// Checks each item with `check`, records it, applies what accepted ones
    /// add to the pools, and answers: 200 if all were accepted, otherwise
    /// 400 naming each refusal (just the message for a single object).
    fn process(
        &self,
        items: Vec<Value>,
        single: bool,
        now_ms: u64,
        check: impl Fn(&Value) -> Result<Checked, String>,
    ) -> ApiResult {
        let total = items.len();
        let mut failures = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match check(&item) {
                Err(reason) => {
                    tracing::info!(index, %reason, "submission does not decode");
                    failures.push(Failure {
                        index,
                        message: reason,
                    });
                }
                Ok(mut checked) => {
                    match checked.error() {
                        Some(error) => {
                            tracing::info!(kind = ?checked.kind, slot = checked.slot.0, validator = checked.validator_index, %error, "submission refused");
                            failures.push(Failure {
                                index,
                                message: error,
                            });
                        }
                        None => {
                            tracing::debug!(kind = ?checked.kind, slot = checked.slot.0, validator = checked.validator_index, "submission accepted");
                            if let Some(effect) = checked.effect.take() {
                                self.apply(effect);
                            }
                        }
                    }
                    self.shared.record(checked.into_submission(item, now_ms));
                }
            }
        }
        match failures.len() {
            0 => Ok(StatusCode::OK.into_response()),
            _ if single => Err(ApiError::BadRequest(failures.remove(0).message)),
            refused => Err(ApiError::Refused {
                message: format!("{refused} of {total} submissions were refused"),
                failures,
            }),
        }
    }

    fn apply(&self, effect: Effect) {
        let current = self.current_slot();
        let keep = |slot: Slot| slot.0 + 2 * E::SLOTS_PER_EPOCH >= current.0;
        let mut pools = lock(&self.pools);
        match effect {
            Effect::Attestation {
                data,
                committee_index,
                committee_len,
                position,
                signature,
            } => {
                pools
                    .attestations
                    .retain(|_, pooled| keep(pooled.data.slot));
                pools
                    .attestations
                    .entry((data.tree_hash_root(), committee_index))
                    .or_insert_with(|| PooledAttestation {
                        data,
                        committee_len,
                        signatures: BTreeMap::new(),
                    })
                    .signatures
                    .insert(position, signature);
            }
            Effect::SyncMessage {
                slot,
                root,
                positions,
                signature,
            } => {
                pools.sync_messages.retain(|(slot, _), _| keep(*slot));
                let signatures = pools.sync_messages.entry((slot, root)).or_default();
                for position in positions {
                    signatures.insert(position, signature);
                }
            }
        }
    }

    /// The `block` then `head` event of a new slot, as the topics ask.
    fn slot_events(&self, slot: Slot, head: bool, block: bool) -> Vec<SseEvent> {
        let chain = &self.chain;
        let root = chain.block_root(slot);
        let mut events = Vec::new();
        if block {
            let event = BlockEvent {
                slot,
                block: root,
                execution_optimistic: false,
            };
            if let Ok(text) = serde_json::to_string(&event) {
                events.push(SseEvent::default().event("block").data(text));
            }
        }
        if head {
            let epoch = chain.epoch(slot);
            let event = HeadEvent {
                slot,
                block: root,
                state: chain.state_root(slot),
                epoch_transition: slot.0.is_multiple_of(E::SLOTS_PER_EPOCH),
                previous_duty_dependent_root: Some(chain.attester_dependent_root(epoch)),
                current_duty_dependent_root: Some(chain.proposer_dependent_root(epoch)),
                execution_optimistic: false,
            };
            if let Ok(text) = serde_json::to_string(&event) {
                events.push(SseEvent::default().event("head").data(text));
            }
        }
        events
    }
}

/// Announces each slot start to the event streams until stopped.
async fn tick<E: EthSpec>(node: Arc<Node<E>>, mut stop: watch::Receiver<bool>) {
    let genesis_ms = node.chain.genesis_time.saturating_mul(1000);
    let slot_ms = node.chain.slot_ms();
    let mut announced = 0u64;
    loop {
        let now = unix_ms();
        let next = if now < genesis_ms {
            0
        } else {
            (now - genesis_ms) / slot_ms + 1
        };
        let wait = Duration::from_millis((genesis_ms + next * slot_ms).saturating_sub(now));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // Slot 0 is genesis: no block arrives then.
        if next > announced {
            announced = next;
            let _ = node.events.send(Slot(next));
        }
    }
}

/// While the mock is down, every request is answered 503.
async fn availability(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return ApiError::Down.into_response();
    }
    next.run(request).await
}

type NodeState<E> = State<Arc<Node<E>>>;

fn router<E: EthSpec>(node: Arc<Node<E>>) -> Router {
    let shared = node.shared.clone();
    Router::new()
        .route("/eth/v1/beacon/genesis", get(genesis::<E>))
        .route("/eth/v1/config/spec", get(spec::<E>))
        .route("/eth/v1/config/fork_schedule", get(fork_schedule::<E>))
        .route(
            "/eth/v1/config/deposit_contract",
            get(deposit_contract::<E>),
        )
        .route("/eth/v1/node/version", get(node_version))
        .route("/eth/v1/node/syncing", get(syncing::<E>))
        .route("/eth/v1/node/health", get(|| async { StatusCode::OK }))
        .route(
            "/eth/v1/beacon/states/{state_id}/validators",
            get(validators_get::<E>).post(validators_post::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/validators/{validator_id}",
            get(validator_get::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/fork",
            get(state_fork::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/finality_checkpoints",
            get(finality_checkpoints::<E>),
        )
        .route("/eth/v1/beacon/headers/{block_id}", get(header::<E>))
        .route(
            "/eth/v1/beacon/blocks/{block_id}/root",
            get(block_root::<E>),
        )
        .route(
            "/eth/v1/validator/duties/attester/{epoch}",
            post(attester_duties::<E>),
        )
        .route(
            "/eth/v1/validator/duties/proposer/{epoch}",
            get(proposer_duties::<E>),
        )
        .route(
            "/eth/v1/validator/duties/sync/{epoch}",
            post(sync_duties::<E>),
        )
        .route(
            "/eth/v1/validator/attestation_data",
            get(attestation_data::<E>),
        )
        .route(
            "/eth/v3/validator/blocks/{slot}",
            get(
                |state: NodeState<E>, slot: Path<String>, query: RawQuery, headers: HeaderMap| {
                    produce_block(state, 3, slot, query, headers)
                },
            ),
        )
        .route(
            "/eth/v2/validator/blocks/{slot}",
            get(
                |state: NodeState<E>, slot: Path<String>, query: RawQuery, headers: HeaderMap| {
                    produce_block(state, 2, slot, query, headers)
                },
            ),
        )
        .route(
            "/eth/v1/beacon/blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, false, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, false, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/blinded_blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, true, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/blinded_blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, true, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/pool/attestations",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_attestations(state, 1, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/pool/attestations",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_attestations(state, 2, headers, body)
            }),
        )
        .route(
            "/eth/v1/validator/aggregate_attestation",
            get(|state: NodeState<E>, query: RawQuery| aggregate_attestation(state, 1, query)),
        )
        .route(
            "/eth/v2/validator/aggregate_attestation",
            get(|state: NodeState<E>, query: RawQuery| aggregate_attestation(state, 2, query)),
        )
        .route(
            "/eth/v1/validator/aggregate_and_proofs",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_aggregates(state, 1, headers, body)
            }),
        )
        .route(
            "/eth/v2/validator/aggregate_and_proofs",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_aggregates(state, 2, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/pool/sync_committees",
            post(submit_sync_messages::<E>),
        )
        .route(
            "/eth/v1/validator/sync_committee_contribution",
            get(sync_committee_contribution::<E>),
        )
        .route(
            "/eth/v1/validator/contribution_and_proofs",
            post(submit_contributions::<E>),
        )
        .route(
            "/eth/v1/beacon/pool/voluntary_exits",
            post(submit_voluntary_exit::<E>),
        )
        .route(
            "/eth/v1/validator/register_validator",
            post(register_validators::<E>),
        )
        .route(
            "/eth/v1/validator/prepare_beacon_proposer",
            post(prepare_beacon_proposer::<E>),
        )
        .route(
            "/eth/v1/validator/beacon_committee_subscriptions",
            post(subscriptions),
        )
        .route(
            "/eth/v1/validator/sync_committee_subscriptions",
            post(subscriptions),
        )
        .route("/eth/v1/events", get(events::<E>))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint on the beacon node mock".to_string())
        })
        // 405, as axum would, but with the beacon-API error body.
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"code": 405, "message": "method not allowed on this endpoint"})),
            )
        })
        .layer(axum::middleware::from_fn_with_state(shared, availability))
        .with_state(node)
}

async fn genesis<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(Genesis {
        genesis_time: node.chain.genesis_time,
        genesis_validators_root: node.chain.genesis_validators_root,
        genesis_fork_version: node.chain.network.genesis_fork_version,
    })
}

async fn spec<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(node.chain.spec())
}

async fn fork_schedule<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(node.chain.fork_schedule())
}

async fn deposit_contract<E: EthSpec>(State(node): NodeState<E>) -> Response {
    let network = &node.chain.network;
    data(json!({
        "chain_id": network.deposit_chain_id.to_string(),
        "address": format!("{:#x}", network.deposit_contract_address),
    }))
}

async fn node_version() -> Response {
    data(NodeVersion {
        version: format!("phalanx-beacon-mock/v{}", env!("CARGO_PKG_VERSION")),
    })
}

async fn syncing<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(Syncing {
        head_slot: node.current_slot(),
        sync_distance: Slot(0),
        is_syncing: false,
        is_optimistic: false,
        el_offline: false,
    })
}

/// `{"execution_optimistic": false, "finalized": …, "data": …}`.
fn state_data(finalized: bool, value: impl Serialize) -> Response {
    Json(json!({"execution_optimistic": false, "finalized": finalized, "data": value}))
        .into_response()
}

fn resolve_state<E: EthSpec>(node: &Node<E>, state_id: &str) -> Result<(Slot, bool), ApiError> {
    let now_ms = node.now_ms();
    let slot = node
        .chain
        .resolve_id(state_id, now_ms, |chain, slot| chain.state_root(slot))?;
    Ok((
        slot,
        node.chain.is_finalized(slot, node.chain.slot_at(now_ms)),
    ))
}

fn resolve_block<E: EthSpec>(node: &Node<E>, block_id: &str) -> Result<(Slot, bool), ApiError> {
    let now_ms = node.now_ms();
    let slot = node
        .chain
        .resolve_id(block_id, now_ms, |chain, slot| chain.block_root(slot))?;
    Ok((
        slot,
        node.chain.is_finalized(slot, node.chain.slot_at(now_ms)),
    ))
}

async fn validators_get<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    let query = Query::parse(query);
    let validators = node
        .chain
        .select_validators(&query.all("id"), &query.all("status"))?;
    Ok(state_data(finalized, validators))
}

async fn validators_post<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        ids: Option<Vec<String>>,
        #[serde(default)]
        statuses: Option<Vec<String>>,
    }
    let body: Body = if body.is_empty() {
        Body {
            ids: None,
            statuses: None,
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected {{\"ids\": [...], \"statuses\": [...]}}: {e}"
            ))
        })?
    };
    let validators = node.chain.select_validators(
        &body.ids.unwrap_or_default(),
        &body.statuses.unwrap_or_default(),
    )?;
    Ok(state_data(finalized, validators))
}

async fn validator_get<E: EthSpec>(
    State(node): NodeState<E>,
    Path((state_id, validator_id)): Path<(String, String)>,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    let validator = node
        .chain
        .select_validators(std::slice::from_ref(&validator_id), &[])?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("no validator {validator_id}")))?;
    Ok(state_data(finalized, validator))
}

async fn state_fork<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_state(&node, &state_id)?;
    let epoch = node.chain.epoch(slot);
    let fork = node
        .chain
        .fork_schedule()
        .into_iter()
        .rfind(|f| f.epoch <= epoch)
        .ok_or_else(|| ApiError::Internal("the fork schedule is empty".to_string()))?;
    Ok(state_data(finalized, fork))
}

async fn finality_checkpoints<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_state(&node, &state_id)?;
    let (previous_justified, current_justified, finalized_checkpoint) =
        node.chain.finality(node.chain.epoch(slot));
    Ok(state_data(
        finalized,
        json!({
            "previous_justified": previous_justified,
            "current_justified": current_justified,
            "finalized": finalized_checkpoint,
        }),
    ))
}

async fn header<E: EthSpec>(State(node): NodeState<E>, Path(block_id): Path<String>) -> ApiResult {
    let (slot, finalized) = resolve_block(&node, &block_id)?;
    Ok(state_data(
        finalized,
        json!({
            "root": node.chain.block_root(slot),
            "canonical": true,
            "header": {
                "message": node.chain.header(slot),
                "signature": infinity_signature(),
            },
        }),
    ))
}

async fn block_root<E: EthSpec>(
    State(node): NodeState<E>,
    Path(block_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_block(&node, &block_id)?;
    Ok(state_data(
        finalized,
        json!({ "root": node.chain.block_root(slot) }),
    ))
}

/// Refuses duties more than one epoch ahead, as beacon nodes do.
fn check_duty_epoch<E: EthSpec>(node: &Node<E>, epoch: Epoch) -> Result<(), ApiError> {
    let current = node.chain.epoch(node.current_slot());
    if epoch.0 > current.0 + 1 {
        return Err(ApiError::BadRequest(format!(
            "duties of epoch {epoch} are not known yet (current epoch {current}; at most one ahead)"
        )));
    }
    Ok(())
}

async fn attester_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
    body: Bytes,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    check_duty_epoch(&node, epoch)?;
    let indices = parse_indices(&body)?;
    let mut all = node.chain.attester_duties(epoch);
    let duties: Vec<AttesterDuty> = indices
        .iter()
        .filter_map(|index| all.remove(index))
        .collect();
    Ok(Json(json!({
        "dependent_root": node.chain.attester_dependent_root(epoch),
        "execution_optimistic": false,
        "data": duties,
    }))
    .into_response())
}

async fn proposer_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    check_duty_epoch(&node, epoch)?;
    let chain = &node.chain;
    let start = chain.start_slot(epoch).0;
    let duties: Vec<ProposerDuty> = (start..start + E::SLOTS_PER_EPOCH)
        // Slot 0 is genesis: nobody proposes there.
        .filter(|&slot| slot > 0)
        .filter_map(|slot| {
            let index = chain.proposer(Slot(slot))?;
            Some(ProposerDuty {
                pubkey: chain.pubkey(index)?,
                validator_index: ValidatorIndex(index),
                slot: Slot(slot),
            })
        })
        .collect();
    Ok(Json(json!({
        "dependent_root": chain.proposer_dependent_root(epoch),
        "execution_optimistic": false,
        "data": duties,
    }))
    .into_response())
}

async fn sync_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
    body: Bytes,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    let chain = &node.chain;
    let period = chain.sync_period(epoch);
    let current = chain.sync_period(chain.epoch(node.current_slot()));
    if period > current + 1 {
        return Err(ApiError::BadRequest(format!(
            "sync duties of epoch {epoch} (period {period}) are not known yet (current period {current}; at most one ahead)"
        )));
    }
    let committee = chain.sync_committee(period);
    let duties: Vec<SyncDuty> = parse_indices(&body)?
        .into_iter()
        .filter_map(|index| {
            let positions: Vec<u64> = committee
                .iter()
                .zip(0u64..)
                .filter_map(|(&member, position)| (member == index).then_some(position))
                .collect();
            if positions.is_empty() {
                return None;
            }
            Some(SyncDuty {
                pubkey: chain.pubkey(index)?,
                validator_index: ValidatorIndex(index),
                validator_sync_committee_indices: positions,
            })
        })
        .collect();
    Ok(Json(json!({"execution_optimistic": false, "data": duties})).into_response())
}

async fn attestation_data<E: EthSpec>(
    State(node): NodeState<E>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let slot = Slot(query.required::<u64>("slot")?);
    let committee_index = query.required::<u64>("committee_index")?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let latest = chain.slot_at(now_ms + CLOCK_DISPARITY_MS);
    if slot > latest {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} has not started (current slot {})",
            chain.slot_at(now_ms)
        )));
    }
    if committee_index >= chain.committees_per_slot() {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} has no committee {committee_index} ({} committees)",
            chain.committees_per_slot()
        )));
    }
    Ok(data(chain.attestation_data(slot, committee_index)))
}

async fn produce_block<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    Path(slot): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let slot = Slot(parse_u64("slot", &slot)?);
    let query = Query::parse(query);
    let randao_reveal: SignatureBytes = query.required("randao_reveal")?;
    let graffiti: Root = query.optional("graffiti")?.unwrap_or_default();
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let current = chain.slot_at(now_ms);
    if slot.0 == 0 {
        return Err(ApiError::BadRequest(
            "slot 0 is genesis: no block can be proposed there".to_string(),
        ));
    }
    if slot.0 > current.0 + 1 {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} is too far ahead (current slot {current})"
        )));
    }
    let proposer = chain
        .proposer(slot)
        .ok_or_else(|| ApiError::BadRequest("the chain has no validators".to_string()))?;
    let epoch = chain.epoch(slot);
    if query.get("skip_randao_verification").is_some() {
        if randao_reveal != infinity_signature() {
            return Err(ApiError::BadRequest(
                "skip_randao_verification needs the point at infinity as randao_reveal".to_string(),
            ));
        }
    } else {
        let root = compute_signing_root(&epoch, chain.domain(DOMAIN_RANDAO, epoch));
        if !chain.verify(proposer, root, &randao_reveal) {
            return Err(ApiError::BadRequest(format!(
                "randao_reveal is not the proposer's (validator {proposer}) signature of epoch {epoch}"
            )));
        }
    }
    let fee_recipient = lock(&node.fee_recipients)
        .get(&proposer)
        .copied()
        .unwrap_or_default();
    let produced = chain.produce_block(slot, randao_reveal, graffiti, fee_recipient)?;
    // SSZ when the client prefers it (its first choice), as beacon nodes do.
    let ssz = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/octet-stream"));
    let mut response = if ssz {
        let mut response = (
            [("content-type", "application/octet-stream")],
            produced.data_as_ssz_bytes(),
        )
            .into_response();
        response.headers_mut().insert(
            CONSENSUS_VERSION_HEADER,
            HeaderValue::from_static(produced.fork.as_str()),
        );
        response
    } else {
        let mut body = produced.to_json();
        if version == 2 {
            body = json!({"version": produced.fork.as_str(), "data": body["data"].take()});
        }
        versioned(produced.fork, body)
    };
    if version == 3 {
        let headers = response.headers_mut();
        let values = [
            ("Eth-Execution-Payload-Blinded", "false".to_string()),
            (
                "Eth-Execution-Payload-Value",
                produced.execution_payload_value.to_string(),
            ),
            (
                "Eth-Consensus-Block-Value",
                produced.consensus_block_value.to_string(),
            ),
        ];
        for (name, value) in values {
            let value = HeaderValue::from_str(&value)
                .map_err(|e| ApiError::Internal(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
    }
    Ok(response)
}

/// The slot a signed block (or block contents) body names.
fn peek_block_slot(body: &Value) -> Option<Slot> {
    let message = body
        .get("signed_block")
        .and_then(|signed| signed.get("message"))
        .or_else(|| body.get("message"))?;
    match message.get("slot")? {
        Value::String(text) => text.parse().ok().map(Slot),
        Value::Number(number) => number.as_u64().map(Slot),
        _ => None,
    }
}

async fn publish_block<E: EthSpec>(
    State(node): NodeState<E>,
    blinded: bool,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let body = parse_body(&body)?;
    let chain = &node.chain;
    // The layout is the one the header names or, without it, the fork of
    // the block's slot.
    let layout = match declared {
        Some(fork) => fork,
        None => {
            let slot = peek_block_slot(&body)
                .ok_or_else(|| ApiError::BadRequest("the body names no block slot".to_string()))?;
            chain.fork(slot).map_err(|name| {
                ApiError::BadRequest(format!(
                    "slot {slot} is in fork {name}, which this mock does not know"
                ))
            })?
        }
    };
    let now_ms = node.now_ms();
    node.process(vec![body], true, now_ms, |item| {
        let parts = if blinded {
            let signed = SignedBlindedBeaconBlock::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::blinded(&signed, declared)
        } else if layout >= ForkName::Deneb {
            let contents = SignedBlockContents::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::full(
                &contents.signed_block,
                Some((contents.kzg_proofs.len(), contents.blobs.len())),
                declared,
            )
        } else {
            let signed = SignedBeaconBlock::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::full(&signed, None, declared)
        };
        Ok(chain.check_block(parts, now_ms))
    })
}

async fn submit_attestations<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let items = parse_array(&body)?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    // v1 carries only the pre-Electra layout; v2 the layout of the named
    // fork (or of the current slot's fork when unnamed).
    let electra = version == 2
        && declared.map_or_else(
            || chain.electra_at(chain.slot_at(now_ms)),
            ForkName::electra_enabled,
        );
    node.process(items, false, now_ms, |item| {
        if electra {
            let attestation: SingleAttestation = decode("SingleAttestation", item)?;
            Ok(chain.check_single_attestation(&attestation, declared, now_ms))
        } else {
            let attestation: AttestationBase<E> = decode("Attestation", item)?;
            Ok(chain.check_attestation(&attestation, declared, now_ms))
        }
    })
}

async fn submit_aggregates<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let items = parse_array(&body)?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let electra = version == 2
        && declared.map_or_else(
            || chain.electra_at(chain.slot_at(now_ms)),
            ForkName::electra_enabled,
        );
    node.process(items, false, now_ms, |item| {
        let parts = if electra {
            let signed: SignedAggregateAndProofElectra<E> =
                decode("SignedAggregateAndProof", item)?;
            AggregateParts::electra(&signed, declared)
        } else {
            let signed: SignedAggregateAndProofBase<E> = decode("SignedAggregateAndProof", item)?;
            AggregateParts::base(&signed, declared)
        };
        Ok(chain.check_aggregate(parts, now_ms))
    })
}

async fn aggregate_attestation<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let root: Root = query.required("attestation_data_root")?;
    let slot = Slot(query.required::<u64>("slot")?);
    let committee_index: Option<u64> = if version == 2 {
        Some(query.required("committee_index")?)
    } else {
        query.optional("committee_index")?
    };
    let chain = &node.chain;
    let electra = chain.electra_at(slot);
    if version == 1 && electra {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} is in {}: ask /eth/v2/validator/aggregate_attestation",
            chain.fork_name(slot)
        )));
    }
    let pools = lock(&node.pools);
    let pooled = match committee_index {
        Some(index) => pools.attestations.get(&(root, index)).map(|p| (index, p)),
        None => pools
            .attestations
            .iter()
            .find(|((data_root, _), _)| *data_root == root)
            .map(|((_, index), p)| (*index, p)),
    };
    let Some((committee_index, pooled)) = pooled.filter(|(_, p)| p.data.slot == slot) else {
        return Err(ApiError::NotFound(format!(
            "no attestation with data root {root} at slot {slot}{} was received",
            committee_index.map_or(String::new(), |i| format!(" in committee {i}"))
        )));
    };
    let signatures: Vec<Signature> = pooled.signatures.values().copied().collect();
    let signature = Signature::aggregate(&signatures)
        .map(|s| SignatureBytes::from(s.to_bytes()))
        .map_err(|e| ApiError::Internal(format!("cannot aggregate: {e}")))?;
    let bit_error = |e: ssz::BitfieldError| ApiError::Internal(format!("aggregation bits: {e:?}"));
    let attestation = if electra {
        let mut aggregation_bits =
            BitList::<E::MaxValidatorsPerSlot>::with_capacity(pooled.committee_len)
                .map_err(bit_error)?;
        for &position in pooled.signatures.keys() {
            aggregation_bits.set(position, true).map_err(bit_error)?;
        }
        let mut committee_bits = BitVector::<E::MaxCommitteesPerSlot>::new();
        let index = usize::try_from(committee_index)
            .map_err(|_| ApiError::Internal("committee index overflows".to_string()))?;
        committee_bits.set(index, true).map_err(bit_error)?;
        serde_json::to_value(AttestationElectra::<E> {
            aggregation_bits,
            data: pooled.data,
            signature,
            committee_bits,
        })
    } else {
        let mut aggregation_bits =
            BitList::<E::MaxValidatorsPerCommittee>::with_capacity(pooled.committee_len)
                .map_err(bit_error)?;
        for &position in pooled.signatures.keys() {
            aggregation_bits.set(position, true).map_err(bit_error)?;
        }
        serde_json::to_value(AttestationBase::<E> {
            aggregation_bits,
            data: pooled.data,
            signature,
        })
    }
    .map_err(|e| ApiError::Internal(format!("cannot encode the aggregate: {e}")))?;
    let fork = chain.fork(slot).unwrap_or(ForkName::Fulu);
    if version == 2 {
        Ok(versioned(
            fork,
            json!({"version": fork.as_str(), "data": attestation}),
        ))
    } else {
        Ok(data(attestation))
    }
}

async fn submit_sync_messages<E: EthSpec>(State(node): NodeState<E>, body: Bytes) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let message: SyncCommitteeMessage = decode("SyncCommitteeMessage", item)?;
        Ok(node.chain.check_sync_message(&message, now_ms))
    })
}

async fn sync_committee_contribution<E: EthSpec>(
    State(node): NodeState<E>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let slot = Slot(query.required::<u64>("slot")?);
    let subcommittee: u64 = query.required("subcommittee_index")?;
    let root: Root = query.required("beacon_block_root")?;
    if subcommittee >= SYNC_COMMITTEE_SUBNET_COUNT {
        return Err(ApiError::BadRequest(format!(
            "there is no sync subcommittee {subcommittee} (there are {SYNC_COMMITTEE_SUBNET_COUNT})"
        )));
    }
    let size = E::SyncSubcommitteeSize::to_usize();
    let first = subcommittee as usize * size;
    let pools = lock(&node.pools);
    let received: Vec<(usize, Signature)> = pools
        .sync_messages
        .get(&(slot, root))
        .map(|signatures| {
            signatures
                .range(first..first + size)
                .map(|(&position, &signature)| (position - first, signature))
                .collect()
        })
        .unwrap_or_default();
    if received.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no sync-committee message for block {root} at slot {slot} in subcommittee {subcommittee} was received"
        )));
    }
    let bit_error = |e: ssz::BitfieldError| ApiError::Internal(format!("aggregation bits: {e:?}"));
    let mut aggregation_bits = BitVector::<E::SyncSubcommitteeSize>::new();
    for (bit, _) in &received {
        aggregation_bits.set(*bit, true).map_err(bit_error)?;
    }
    let signatures: Vec<Signature> = received.iter().map(|(_, s)| *s).collect();
    let signature = Signature::aggregate(&signatures)
        .map(|s| SignatureBytes::from(s.to_bytes()))
        .map_err(|e| ApiError::Internal(format!("cannot aggregate: {e}")))?;
    Ok(data(SyncCommitteeContribution::<E> {
        slot,
        beacon_block_root: root,
        subcommittee_index: subcommittee,
        aggregation_bits,
        signature,
    }))
}

async fn submit_contributions<E: EthSpec>(State(node): NodeState<E>, body: Bytes) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let signed: SignedContributionAndProof<E> = decode("SignedContributionAndProof", item)?;
        Ok(node.chain.check_contribution(&signed, now_ms))
    })
}

async fn submit_voluntary_exit<E: EthSpec>(State(node): NodeState<E>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let now_ms = node.now_ms();
    node.process(vec![body], true, now_ms, |item| {
        let exit: SignedVoluntaryExit = decode("SignedVoluntaryExit", item)?;
        Ok(node.chain.check_exit(&exit, now_ms))
    })
}

async fn register_validators<E: EthSpec>(State(node): NodeState<E>, body: Bytes) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let registration: SignedValidatorRegistration =
            decode("SignedValidatorRegistrationV1", item)?;
        Ok(node.chain.check_registration(&registration, now_ms))
    })
}

async fn prepare_beacon_proposer<E: EthSpec>(State(node): NodeState<E>, body: Bytes) -> ApiResult {
    let preparations: Vec<ProposerPreparation> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("expected a list of proposer preparations: {e}"))
    })?;
    let mut fee_recipients = lock(&node.fee_recipients);
    for preparation in preparations {
        fee_recipients.insert(preparation.validator_index.0, preparation.fee_recipient);
    }
    Ok(StatusCode::OK.into_response())
}

/// Subnet subscriptions mean nothing to a node without peers: accepted.
async fn subscriptions(body: Bytes) -> ApiResult {
    parse_array(&body)?;
    Ok(StatusCode::OK.into_response())
}

async fn events<E: EthSpec>(State(node): NodeState<E>, RawQuery(query): RawQuery) -> ApiResult {
    let topics = Query::parse(query).all("topics");
    if topics.is_empty() {
        return Err(ApiError::BadRequest(
            "query parameter topics is required".to_string(),
        ));
    }
    if let Some(unknown) = topics.iter().find(|t| !KNOWN_TOPICS.contains(&t.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown event topic {unknown:?}"
        )));
    }
    let head = topics.iter().any(|t| t == "head");
    let block = topics.iter().any(|t| t == "block");
    let slots = node.events.subscribe();
    let mut disconnect = node.shared.disconnect.subscribe();
    disconnect.mark_unchanged();
    let stream = futures::stream::unfold(
        (slots, disconnect, node),
        move |(mut slots, mut disconnect, node)| async move {
            loop {
                tokio::select! {
                    _ = disconnect.changed() => return None,
                    received = slots.recv() => match received {
                        Ok(slot) => {
                            let events = node.slot_events(slot, head, block);
                            return Some((events, (slots, disconnect, node)));
                        }
                        // A slow reader skips the slots it missed.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                }
            }
        },
    )
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(validators: usize, seed: u64) -> Chain<MinimalEthSpec> {
        let keys = (0..validators)
            .map(|i| PublicKeyBytes::from([i as u8; 48]))
            .collect();
        Chain::new(&BeaconMockConfig {
            network: devnet_network(PresetBase::Minimal, 1000, ForkName::Electra, &[]),
            genesis_time: 0,
            genesis_validators_root: Root::repeat_byte(7),
            validators: keys,
            seed,
            record: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
    }

    #[test]
    fn committees_partition_every_epoch() {
        for n in [0usize, 1, 7, 64, 200] {
            let chain = chain(n, 3);
            for epoch in [Epoch(0), Epoch(5)] {
                let mut seen = vec![0u32; n];
                for i in 0..MinimalEthSpec::SLOTS_PER_EPOCH {
                    let slot = Slot(chain.start_slot(epoch).0 + i);
                    for index in 0..chain.committees_per_slot() {
                        for member in chain.committee(slot, index).unwrap_or_default() {
                            seen[member as usize] += 1;
                        }
                    }
                }
                assert!(seen.iter().all(|&count| count == 1), "n = {n}");
                assert_eq!(chain.attester_duties(epoch).len(), n);
            }
        }
    }

    #[test]
    fn the_seed_fixes_the_chain() {
        let (a, b, c) = (chain(64, 1), chain(64, 1), chain(64, 2));
        assert_eq!(a.shuffling(Epoch(3)), b.shuffling(Epoch(3)));
        assert_ne!(a.shuffling(Epoch(3)), c.shuffling(Epoch(3)));
        assert_ne!(a.shuffling(Epoch(3)), a.shuffling(Epoch(4)));
        assert_eq!(a.sync_committee(0), b.sync_committee(0));
        assert_eq!(a.sync_committee(0).len(), 32);
        let expected = digest(&[b"block", &1u64.to_be_bytes(), &9u64.to_be_bytes()]);
        assert_eq!(a.block_root(Slot(9)), Root::from(expected));
        assert_eq!(a.committees_per_slot(), 2);
        assert_eq!(chain(10_000, 1).committees_per_slot(), 4);
    }

    #[test]
    fn attestation_data_follows_the_checkpoints() {
        let chain = chain(64, 1);
        let data = chain.attestation_data(Slot(3), 1);
        assert_eq!(data.source, Checkpoint::default());
        assert_eq!(data.index, CommitteeIndex(0), "electra at genesis");
        let data = chain.attestation_data(Slot(19), 1);
        assert_eq!(data.target, chain.checkpoint(Epoch(2)));
        assert_eq!(data.source.root, chain.block_root(Slot(8)));
        assert_eq!(data.beacon_block_root, chain.block_root(Slot(19)));
    }

    #[test]
    fn timing_allows_the_clock_disparity_and_the_propagation_range() {
        let chain = chain(8, 1);
        // 10.6 s after genesis: slot 10, and 11 starts within the disparity.
        assert_eq!(chain.timing(Slot(11), 10_600, 32), None);
        assert!(chain.timing(Slot(12), 10_600, 32).is_some());
        assert_eq!(chain.timing(Slot(9), 10_600, 1), None);
        assert!(chain.timing(Slot(8), 10_600, 1).is_some());
    }
}
