//! The discrete-event engine: virtual time, one queue, and every node's own
//! core fed by a simulated network, beacon node and validator client.
//!
//! Nothing here reads a clock or the operating system's randomness: the
//! scenario's seed fixes every key, delay, loss and fault, events at the same
//! instant run in the order they were scheduled, and every map is ordered.
//! Each processed event is folded into a SHA-256 trace, so two runs of one
//! seed can be compared bit for bit.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;
use std::time::Duration;

use phalanx_consensus::{Kind, Round, SignedMessage, Value, ValueHash, Wire};
use phalanx_eth::api::{AttesterDuty, ProposerDuty, SyncDuty};
use phalanx_eth::attestation::SyncCommitteeSelection;
use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    AttestationData, BeaconCommitteeSelection,
};
use phalanx_eth::block_contents::ProducedBlockData;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::pool::{AttestationPool, ContributionPool};
use phalanx_eth::selection::{is_aggregator, is_sync_committee_aggregator, sync_subcommittee};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeContribution,
    SyncCommitteeMessage,
};
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, ExecutionAddress, ForkName, PublicKeyBytes, Root,
    SignatureBytes, Slot, ValidatorIndex,
};
use phalanx_node::core::{
    Action, AggregateSubmission, ApiFailure, AttestationSubmission, Attester, BlockSubmission,
    Core, CoreConfig, Defects, Event, Submission, ValidatorKeys, VcAttestation, VcRequest,
    VcResponse, VcSigned,
};
use phalanx_node::duty::Duty;
use phalanx_node::parsigex::PartialMessage;
use phalanx_node::slashing::{MemoryDisk, SlashingDb};
use phalanx_node::tracker::Outcome;
use phalanx_node::value::{decode_attestation_data, encode_attestation_data, DutyValue};
use phalanx_p2p::encoded_len;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use tree_hash::TreeHash;

use crate::beacon::{devnet_network, BeaconMockConfig, Chain};
use crate::vc::Roots;

use super::scenario::{DelayDistribution, Fault, Scenario};
use super::signing::SimScheme;

/// Virtual Unix milliseconds of slot 0 (any fixed instant will do).
const GENESIS_MS: u64 = 1_700_000_000_000;

/// How long a simulated beacon node takes to answer, at least and at most.
const BN_DELAY_MS: (u64, u64) = (2, 20);

/// How long after a duty's moment a simulated validator client acts.
const VC_DELAY_MS: (u64, u64) = (0, 30);

/// How long a node takes to notice that a peer went down or came back
/// (`phalanx run` polls its connections every 500 ms).
const REACHABILITY_DELAY_MS: u64 = 500;

/// Something that happens at a virtual instant.
enum Happening<E: EthSpec> {
    /// The node's core wants a tick (only the latest one counts).
    Tick { node: usize, generation: u64 },
    /// An event for a node's core.
    Core { node: usize, event: Event<E> },
    /// A consensus timer (only the latest per duty counts).
    Timer {
        node: usize,
        duty: Duty,
        round: phalanx_consensus::Round,
        generation: u64,
    },
    /// The validator client of a node does its work of a slot's moment.
    Vc {
        node: usize,
        slot: Slot,
        moment: Moment,
    },
    /// A scheduled fault starts or ends.
    Fault(FaultEdge),
}

/// When in a slot a validator client acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// The slot's start: proposals.
    Start,
    /// One third: attestation data and sync-committee messages.
    Third,
    /// Later in the slot: a double-submitting client's second request.
    Again,
    /// Two thirds: aggregates.
    TwoThirds,
}

/// A fault's start or end.
#[derive(Clone, Copy, Debug)]
enum FaultEdge {
    Crash { node: usize, lose_disk: bool },
    Restart { node: usize },
}

/// The share of a slot after which a double-submitting client asks again.
const AGAIN_AT_PERCENT: u64 = 55;

/// One queue entry: ordered by time, then by the order it was scheduled.
struct Scheduled<E: EthSpec> {
    at: u64,
    seq: u64,
    what: Happening<E>,
}

impl<E: EthSpec> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E: EthSpec> Eq for Scheduled<E> {}

impl<E: EthSpec> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E: EthSpec> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What a validator client waits for from its node.
enum VcWaiting {
    /// Attestation data of a committee, for these duties.
    AttestationData(Vec<AttesterDuty>),
    /// The block of a slot, for its proposer.
    Block { slot: Slot, position: usize },
    /// The combined selection proofs of these attesters.
    Selections(Vec<AttesterDuty>),
    /// The aggregate an elected aggregator signs.
    Aggregate {
        duty: AttesterDuty,
        selection_proof: SignatureBytes,
    },
    /// The combined sync selection proofs of these (member, subcommittee).
    SyncSelections(Vec<(usize, u64)>),
    /// The contribution an elected sync aggregator signs.
    Contribution {
        position: usize,
        selection_proof: SignatureBytes,
    },
    /// Nothing more: a submission's acknowledgement.
    Ack,
}

/// One operator: its core (while it runs), its disk, its validator
/// client's keys.
struct SimNode<E: EthSpec, S: SimScheme> {
    core: Option<Core<E, S>>,
    disk: MemoryDisk,
    /// Its node key's 32 bytes (consensus signatures).
    node_secret: [u8; 32],
    /// This operator's secret share of each validator.
    shares: Vec<S::SecretKey>,
    tick_generation: u64,
    tick_at: Option<u64>,
    timers: BTreeMap<Duty, u64>,
    timer_generation: u64,
    next_request: u64,
    waiting: BTreeMap<u64, VcWaiting>,
    /// Times it was started, for the core's seed.
    starts: u64,
    /// The validator client's attestation data, by slot and committee.
    attested: BTreeMap<(Slot, CommitteeIndex), AttestationData>,
    /// The validator client's elected aggregators, by slot.
    aggregators: BTreeMap<Slot, Vec<(AttesterDuty, SignatureBytes)>>,
    /// Its elected sync aggregators, by slot: member, subcommittee, proof.
    sync_aggregators: BTreeMap<Slot, Vec<(usize, u64, SignatureBytes)>>,
    /// Its beacon node's pool of sync messages: by slot, head and
    /// subcommittee, each position's signature.
    sync_pool: ContributionPool<S::Signature>,
    /// Its beacon node's pool of the attestations it was sent: by slot,
    /// committee and data root, each member's signature by position.
    pool: AttestationPool<S::Signature>,
}

/// A submission that reached a beacon node.
#[derive(Clone, Debug)]
pub struct Broadcast {
    /// Virtual milliseconds since genesis.
    pub at_ms: u64,
    /// The node that sent it.
    pub node: usize,
    /// The duty.
    pub duty: Duty,
    /// The validator (group key).
    pub validator: PublicKeyBytes,
    /// What it signs, and whether its signature verifies under the group key.
    pub check: SubmissionCheck,
}

/// The facts of a submission the invariants need.
#[derive(Clone, Debug)]
pub struct SubmissionCheck {
    /// The signing root.
    pub signing_root: Root,
    /// Whether the signature verifies under the validator's group key.
    pub valid: bool,
    /// For attestations: source and target epochs.
    pub vote: Option<(u64, u64)>,
    /// For blocks: the slot.
    pub block_slot: Option<Slot>,
}

/// Everything a run observed, for invariants and reports.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every submission, in order.
    pub broadcasts: Vec<Broadcast>,
    /// Per duty: each node's decided value hash and round.
    pub decisions: BTreeMap<Duty, BTreeMap<usize, ([u8; 32], u64)>>,
    /// Per node: duty outcomes.
    pub outcomes: BTreeMap<usize, Vec<(Duty, Outcome)>>,
    /// Per (receiver, sender, what, reason): dropped peer messages.
    pub dropped: BTreeMap<(usize, usize, String), u64>,
    /// Slashing-protection or combination refusals, per node.
    pub refused: Vec<(usize, Duty, String)>,
    /// Requests of a validator client its node refused.
    pub vc_refused: Vec<(usize, String)>,
    /// Consensus messages and partial-signature batches sent between nodes.
    pub consensus_messages: u64,
    /// Partial signatures sent between nodes.
    pub partials_sent: u64,
    /// Bytes of the consensus messages sent (their encoding on the wire,
    /// without transport framing).
    pub consensus_bytes: u64,
    /// Bytes of the partial-signature batches sent.
    pub partial_bytes: u64,
    /// Partial signatures each operator sent, counted once per batch sent.
    pub partials_by_operator: BTreeMap<usize, u64>,
    /// Events processed.
    pub events: u64,
    /// Submissions of kinds the simulator does not check.
    pub unchecked: u64,
}

/// The simulated world of one run.
pub(super) struct World<E: EthSpec, S: SimScheme> {
    scenario: Scenario,
    network: NetworkConfig,
    chain: Chain<E>,
    roots: Roots,
    genesis_validators_root: Root,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled<E>>>,
    nodes: Vec<SimNode<E, S>>,
    validators: Vec<ValidatorKeys<S>>,
    /// The validators' whole keys: only to know, independently of the
    /// nodes, which attesters the cluster's selection proofs elect.
    secrets: Vec<S::SecretKey>,
    group_bytes: Vec<PublicKeyBytes>,
    index_of: BTreeMap<PublicKeyBytes, usize>,
    /// The other value a byzantine node told its odd peers, per consensus
    /// instance and round.
    equivocations: BTreeMap<(Duty, Round), ValueHash>,
    /// The cluster's attester duties, by epoch.
    attester_cache: RefCell<BTreeMap<Epoch, Rc<BTreeMap<u64, AttesterDuty>>>>,
    /// Signatures already checked: (validator, signing root, signature).
    verified: BTreeMap<(usize, Root, SignatureBytes), bool>,
    rng: ChaCha20Rng,
    trace: Sha256,
    end_ms: u64,
    defects: Defects,
    /// The observations.
    pub(super) observed: Observed,
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    /// Builds the cluster, the chain and the schedule of `scenario`.
    pub(super) fn new(scenario: &Scenario, defects: Defects) -> World<E, S> {
        let mut rng = ChaCha20Rng::seed_from_u64(scenario.seed);
        let network = devnet_network(scenario.preset.into(), scenario.slot_ms, scenario.fork, &[]);
        let genesis_validators_root = Root::repeat_byte(0x5e);
        let n = scenario.operators;
        let t = scenario.threshold();

        // Keys: each validator's key split among the operators.
        let mut splits = Vec::with_capacity(scenario.validators);
        let mut validators = Vec::with_capacity(scenario.validators);
        let mut secrets = Vec::with_capacity(scenario.validators);
        for _ in 0..scenario.validators {
            let dealt = S::deal(t, n, &mut rng);
            validators.push(ValidatorKeys {
                group: dealt.group,
                shares: dealt.public_shares,
                fee_recipient: None,
                registration: None,
            });
            splits.push(dealt.secret_shares);
            secrets.push(dealt.secret);
        }
        let group_bytes: Vec<PublicKeyBytes> = validators
            .iter()
            .map(|v| S::public_key_bytes(&v.group))
            .collect();
        // The chain: the cluster's validators first, then others whose keys
        // nobody holds (bytes that are no key at all).
        let mut chain_validators = group_bytes.clone();
        for i in 0..scenario.other_validators {
            let mut bytes = [0u8; 48];
            bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
            bytes[47] = 0xff;
            chain_validators.push(PublicKeyBytes::from(bytes));
        }
        let chain = Chain::new(&BeaconMockConfig {
            network: network.clone(),
            genesis_time: GENESIS_MS / 1000,
            genesis_validators_root,
            validators: chain_validators,
            seed: scenario.seed,
            record: None,
            listen: ([127, 0, 0, 1], 0).into(),
        });
        let roots = Roots::new(network.clone(), genesis_validators_root);
        let nodes = (0..n)
            .map(|op| {
                let mut key = [0u8; 32];
                rng.fill_bytes(&mut key);
                SimNode {
                    core: None,
                    disk: MemoryDisk::new(),
                    node_secret: key,
                    shares: splits.iter().map(|s| s[op].clone()).collect(),
                    tick_generation: 0,
                    tick_at: None,
                    timers: BTreeMap::new(),
                    timer_generation: 0,
                    next_request: 1,
                    waiting: BTreeMap::new(),
                    starts: 0,
                    attested: BTreeMap::new(),
                    aggregators: BTreeMap::new(),
                    sync_aggregators: BTreeMap::new(),
                    sync_pool: ContributionPool::new(),
                    pool: AttestationPool::new(),
                }
            })
            .collect();
        let end_ms = GENESIS_MS + scenario.epochs * E::SLOTS_PER_EPOCH * scenario.slot_ms;
        let mut world = World {
            scenario: scenario.clone(),
            network,
            chain,
            roots,
            genesis_validators_root,
            now: GENESIS_MS - scenario.slot_ms,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            index_of: group_bytes
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, i))
                .collect(),
            attester_cache: RefCell::new(BTreeMap::new()),
            equivocations: BTreeMap::new(),
            verified: BTreeMap::new(),
            secrets,
            validators,
            group_bytes,
            rng,
            trace: Sha256::new(),
            end_ms,
            defects,
            observed: Observed::default(),
        };
        for node in 0..n {
            world.start_node(node);
        }
        world.schedule_validator_clients();
        world.schedule_faults();
        world
    }

    /// Runs to the end of the scenario's last epoch; returns the trace hash.
    pub(super) fn run(&mut self) -> [u8; 32] {
        while let Some(Reverse(next)) = self.queue.pop() {
            if next.at > self.end_ms {
                break;
            }
            self.now = next.at;
            self.observed.events += 1;
            self.process(next.what);
        }
        self.trace.clone().finalize().into()
    }

    /// Virtual milliseconds since genesis.
    pub(super) fn since_genesis(&self, at: u64) -> u64 {
        at.saturating_sub(GENESIS_MS)
    }

    /// The slot's start, in virtual Unix milliseconds.
    pub(super) fn slot_start(&self, slot: Slot) -> u64 {
        GENESIS_MS + slot.0 * self.scenario.slot_ms
    }

    /// The last slot simulated.
    pub(super) fn last_slot(&self) -> Slot {
        Slot(self.scenario.epochs * E::SLOTS_PER_EPOCH - 1)
    }

    /// The cluster's validators' group keys (validator i has index i).
    pub(super) fn group_keys(&self) -> &[PublicKeyBytes] {
        &self.group_bytes
    }

    /// The attester duties of the cluster's validators in `epoch`, by
    /// validator index (worked out once per epoch).
    fn cluster_attester_duties(&self, epoch: Epoch) -> Rc<BTreeMap<u64, AttesterDuty>> {
        let mut cache = self.attester_cache.borrow_mut();
        if let Some(duties) = cache.get(&epoch) {
            return duties.clone();
        }
        let all = self.chain.attester_duties(epoch);
        let ours: Rc<BTreeMap<u64, AttesterDuty>> = Rc::new(
            (0..self.validators.len() as u64)
                .filter_map(|i| all.get(&i).map(|d| (i, d.clone())))
                .collect(),
        );
        cache.insert(epoch, ours.clone());
        ours
    }

    /// The attester duties of the cluster at `slot`.
    pub(super) fn cluster_attesters(&self, slot: Slot) -> Vec<AttesterDuty> {
        let epoch = slot.epoch(E::SLOTS_PER_EPOCH);
        self.cluster_attester_duties(epoch)
            .values()
            .filter(|d| d.slot == slot)
            .cloned()
            .collect()
    }

    /// The cluster's proposer at `slot`, if it has it.
    pub(super) fn cluster_proposer(&self, slot: Slot) -> Option<usize> {
        let index = self.chain.proposer(slot)? as usize;
        (index < self.validators.len() && slot.0 > 0).then_some(index)
    }

    /// The cluster's sync-committee members signing at `slot`.
    pub(super) fn cluster_sync_members(&self, slot: Slot) -> BTreeSet<usize> {
        self.chain
            .sync_committee_at(slot)
            .into_iter()
            .map(|i| i as usize)
            .filter(|i| *i < self.validators.len())
            .collect()
    }

    fn schedule(&mut self, at: u64, what: Happening<E>) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            what,
        }));
    }

    fn note(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.to_le_bytes());
        for part in parts {
            self.trace.update((part.len() as u64).to_le_bytes());
            self.trace.update(part);
        }
    }

    fn uniform(&mut self, range: (u64, u64)) -> u64 {
        DelayDistribution::Uniform.sample(range, &mut self.rng)
    }

    fn clock_skew(&self, node: usize) -> i64 {
        self.scenario
            .faults
            .iter()
            .map(|f| match f {
                Fault::ClockSkew { node: n, skew_ms } if *n == node => *skew_ms,
                _ => 0,
            })
            .sum()
    }

    /// What node `node` believes the time is.
    fn node_now(&self, node: usize) -> u64 {
        self.now.saturating_add_signed(self.clock_skew(node))
    }

    fn slot_of(&self, at: u64) -> Slot {
        Slot(at.saturating_sub(GENESIS_MS) / self.scenario.slot_ms)
    }

    /// Whether `fault` holds at the current time.
    fn during(&self, from_slot: u64, until_slot: u64) -> bool {
        let slot = self.slot_of(self.now).0;
        self.now >= GENESIS_MS && (from_slot..until_slot).contains(&slot)
    }

    fn start_node(&mut self, node: usize) {
        let sim = &mut self.nodes[node];
        sim.starts += 1;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.scenario.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&(node as u64).to_le_bytes());
        seed[16..24].copy_from_slice(&sim.starts.to_le_bytes());
        let slashing = SlashingDb::open_in_memory(&sim.disk, self.genesis_validators_root)
            .unwrap_or_else(|e| unreachable!("a simulated disk opens: {e}"));
        let secrets: Vec<[u8; 32]> = self.nodes.iter().map(|n| n.node_secret).collect();
        let (signer, verifier) = S::consensus_keys(&secrets, node);
        let sim = &mut self.nodes[node];
        let core = Core::new(
            CoreConfig {
                me: node as u32,
                threshold: self.scenario.threshold(),
                validators: self.validators.clone(),
                network: self.network.clone(),
                genesis_time_ms: GENESIS_MS,
                genesis_validators_root: self.genesis_validators_root,
                seed,
                graffiti: None,
                builder_api: false,
                defects: self.defects,
            },
            signer,
            verifier,
            slashing,
        )
        .unwrap_or_else(|e| unreachable!("the simulated cluster fits together: {e}"));
        sim.core = Some(core);
        sim.timers.clear();
        sim.waiting.clear();
        sim.tick_at = None;
        let now = self.now;
        self.schedule_tick(node, now);
    }

    fn schedule_tick(&mut self, node: usize, at: u64) {
        let sim = &mut self.nodes[node];
        if sim.tick_at.is_some_and(|current| current <= at) {
            return;
        }
        sim.tick_generation += 1;
        sim.tick_at = Some(at);
        let generation = sim.tick_generation;
        self.schedule(at, Happening::Tick { node, generation });
    }

    fn schedule_validator_clients(&mut self) {
        let slots = self.scenario.epochs * E::SLOTS_PER_EPOCH;
        let third = self.scenario.slot_ms / 3;
        for slot in 0..slots {
            for node in 0..self.nodes.len() {
                let start = self.slot_start(Slot(slot)) + self.vc_slowness(node, slot);
                let delay = self.uniform(VC_DELAY_MS);
                self.schedule(
                    start + delay,
                    Happening::Vc {
                        node,
                        slot: Slot(slot),
                        moment: Moment::Start,
                    },
                );
                let delay = self.uniform(VC_DELAY_MS);
                self.schedule(
                    start + third + delay,
                    Happening::Vc {
                        node,
                        slot: Slot(slot),
                        moment: Moment::Third,
                    },
                );
                let delay = self.uniform(VC_DELAY_MS);
                self.schedule(
                    start + 2 * third + delay,
                    Happening::Vc {
                        node,
                        slot: Slot(slot),
                        moment: Moment::TwoThirds,
                    },
                );
                if self.vc_double_submits(node) {
                    let again = start + self.scenario.slot_ms * AGAIN_AT_PERCENT / 100;
                    self.schedule(
                        again,
                        Happening::Vc {
                            node,
                            slot: Slot(slot),
                            moment: Moment::Again,
                        },
                    );
                }
            }
        }
    }

    fn schedule_faults(&mut self) {
        for fault in self.scenario.faults.clone() {
            if let Fault::Crash {
                node,
                from_slot,
                until_slot,
                lose_disk,
                offset_ms,
                restart_offset_ms,
            } = fault
            {
                let at = self.slot_start(Slot(from_slot)) + offset_ms;
                self.schedule(at, Happening::Fault(FaultEdge::Crash { node, lose_disk }));
                if let Some(until) = until_slot {
                    let at = self.slot_start(Slot(until)) + restart_offset_ms;
                    self.schedule(at, Happening::Fault(FaultEdge::Restart { node }));
                }
            }
        }
    }

    fn process(&mut self, what: Happening<E>) {
        match what {
            Happening::Tick { node, generation } => {
                if self.nodes[node].tick_generation != generation {
                    return;
                }
                self.nodes[node].tick_at = None;
                self.note(&[b"tick", &(node as u64).to_le_bytes()]);
                self.deliver(node, Event::Tick);
            }
            Happening::Core { node, event } => self.deliver(node, event),
            Happening::Timer {
                node,
                duty,
                round,
                generation,
            } => {
                if self.nodes[node].timers.get(&duty) != Some(&generation) {
                    return;
                }
                self.nodes[node].timers.remove(&duty);
                self.deliver(node, Event::Timer { duty, round });
            }
            Happening::Vc { node, slot, moment } => self.validator_client(node, slot, moment),
            Happening::Fault(FaultEdge::Crash { node, lose_disk }) => {
                self.note(&[b"crash", &(node as u64).to_le_bytes()]);
                let sim = &mut self.nodes[node];
                sim.core = None;
                sim.timers.clear();
                sim.waiting.clear();
                sim.tick_at = None;
                if lose_disk {
                    sim.disk = MemoryDisk::new();
                }
                self.tell_reachability();
            }
            Happening::Fault(FaultEdge::Restart { node }) => {
                self.note(&[b"restart", &(node as u64).to_le_bytes()]);
                self.start_node(node);
                self.tell_reachability();
            }
        }
    }

    /// Every running node learns, after the runtime's detection delay,
    /// which operators are down (as `phalanx run` polls its connections).
    fn tell_reachability(&mut self) {
        let down: Vec<u32> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].core.is_none())
            .map(|n| n as u32)
            .collect();
        for node in 0..self.nodes.len() {
            if self.nodes[node].core.is_some() {
                let event = Event::Unreachable(down.clone());
                self.schedule(
                    self.now + REACHABILITY_DELAY_MS,
                    Happening::Core { node, event },
                );
            }
        }
    }

    /// Hands an event to a running node's core and carries out its actions.
    fn deliver(&mut self, node: usize, event: Event<E>) {
        let now = self.node_now(node);
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        let actions = core.handle(now, event);
        let next_tick = core.next_tick_ms(now);
        for action in actions {
            self.act(node, action);
        }
        // The core's clock may be skewed; the queue runs on true time.
        let at = (next_tick as i64 - self.clock_skew(node)).max(self.now as i64 + 1) as u64;
        self.schedule_tick(node, at);
    }

    fn act(&mut self, node: usize, action: Action<E>) {
        match action {
            Action::ResolveIndices(keys) => {
                let found: Vec<(PublicKeyBytes, ValidatorIndex)> = keys
                    .into_iter()
                    .filter_map(|key| {
                        let index = *self.index_of.get(&key)?;
                        Some((key, ValidatorIndex(index as u64)))
                    })
                    .collect();
                self.beacon_node_answers(node, Event::Indices(found), |e| Event::IndicesFailed(e));
            }
            Action::ResolveProposers { epoch } => {
                let duties: Vec<ProposerDuty> = (0..E::SLOTS_PER_EPOCH)
                    .map(|i| Slot(epoch.0 * E::SLOTS_PER_EPOCH + i))
                    .filter_map(|slot| {
                        let index = self.chain.proposer(slot)?;
                        Some(ProposerDuty {
                            pubkey: self.chain.pubkey(index)?,
                            validator_index: ValidatorIndex(index),
                            slot,
                        })
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::Proposers {
                        epoch,
                        result: Ok(duties),
                    },
                    move |e| Event::Proposers {
                        epoch,
                        result: Err(e),
                    },
                );
            }
            Action::ResolveDuties { epoch, indices, .. } => {
                let all = self.cluster_attester_duties(epoch);
                let attester: Vec<AttesterDuty> = indices
                    .iter()
                    .filter_map(|i| all.get(&i.0).cloned())
                    .collect();
                let period_slot = Slot(epoch.0 * E::SLOTS_PER_EPOCH);
                let committee = self.chain.sync_committee_at(period_slot);
                let sync: Vec<SyncDuty> = indices
                    .iter()
                    .filter_map(|i| {
                        let positions: Vec<u64> = committee
                            .iter()
                            .enumerate()
                            .filter(|(_, member)| **member == i.0)
                            .map(|(p, _)| p as u64)
                            .collect();
                        (!positions.is_empty()).then(|| SyncDuty {
                            pubkey: self.group_bytes[i.0 as usize],
                            validator_index: *i,
                            validator_sync_committee_indices: positions,
                        })
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::Duties {
                        epoch,
                        attester,
                        sync,
                    },
                    move |error| Event::DutiesFailed { epoch, error },
                );
            }
            Action::FetchAttestationData { duty, committees } => {
                let diverged = self.diverges(node, duty.slot);
                let data: Vec<_> = committees
                    .iter()
                    .map(|c| {
                        let mut data = self.chain.attestation_data(duty.slot, c.0);
                        if diverged {
                            // Votes for a sibling block of the same slot.
                            data.beacon_block_root = Root::from(<[u8; 32]>::from(Sha256::digest(
                                data.beacon_block_root,
                            )));
                        }
                        (*c, data)
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::AttestationData {
                        duty,
                        result: Ok(data),
                    },
                    move |e| Event::AttestationData {
                        duty,
                        result: Err(e),
                    },
                );
            }
            Action::FetchAggregates { duty, requests } => {
                let result = requests
                    .iter()
                    .map(|(committee, root)| {
                        self.aggregate_of(node, duty.slot, *committee, *root)
                            .map(|a| (*committee, a))
                    })
                    .collect::<Result<Vec<_>, String>>();
                self.beacon_node_answers(node, Event::Aggregates { duty, result }, move |e| {
                    Event::Aggregates {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::FetchContributions {
                duty,
                block_root,
                subcommittees,
            } => {
                let head = block_root.unwrap_or_else(|| self.chain.block_root(duty.slot));
                let result = subcommittees
                    .iter()
                    .map(|k| self.contribution_of(node, duty.slot, head, *k))
                    .collect::<Result<Vec<_>, String>>();
                self.beacon_node_answers(node, Event::Contributions { duty, result }, move |e| {
                    Event::Contributions {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::FetchBlock {
                duty,
                randao_reveal,
                graffiti,
                ..
            } => {
                let result = self
                    .chain
                    .produce_block(
                        duty.slot,
                        randao_reveal,
                        graffiti.unwrap_or_default(),
                        ExecutionAddress::ZERO,
                    )
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                self.beacon_node_answers(node, Event::Block { duty, result }, move |e| {
                    Event::Block {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::ConsensusBroadcast(message) => {
                for to in 0..self.nodes.len() {
                    if to != node {
                        self.send_consensus(node, to, message.clone());
                    }
                }
            }
            Action::ConsensusSend { to, message } => {
                self.send_consensus(node, to as usize, message)
            }
            Action::SetTimer { duty, round, after } => {
                let sim = &mut self.nodes[node];
                sim.timer_generation += 1;
                let generation = sim.timer_generation;
                sim.timers.insert(duty, generation);
                let at = self.now + millis(after);
                self.schedule(
                    at,
                    Happening::Timer {
                        node,
                        duty,
                        round,
                        generation,
                    },
                );
            }
            Action::StopTimer(duty) => {
                self.nodes[node].timers.remove(&duty);
            }
            Action::SendPartials(partials) => self.send_partials(node, partials),
            Action::Submit {
                duty,
                validator,
                submission,
            } => {
                if let Submission::Attestation(_, attestation) = &submission {
                    self.pool_attestation(node, attestation);
                }
                if let Submission::SyncMessage(message) = &submission {
                    self.pool_sync_message(node, message);
                }
                let Some(check) = self.check(validator, &submission) else {
                    self.observed.unchecked += 1;
                    return;
                };
                self.note(&[
                    b"submit",
                    &(node as u64).to_le_bytes(),
                    check.signing_root.as_slice(),
                    &[u8::from(check.valid)],
                ]);
                self.observed.broadcasts.push(Broadcast {
                    at_ms: self.since_genesis(self.now),
                    node,
                    duty,
                    validator,
                    check,
                });
                self.beacon_node_answers(
                    node,
                    Event::Submitted {
                        duty,
                        validators: vec![validator],
                        result: Ok(()),
                    },
                    move |e| Event::Submitted {
                        duty,
                        validators: vec![validator],
                        result: Err(e),
                    },
                );
            }
            Action::Reply { id, result } => self.vc_reply(node, id, result),
            Action::Decided {
                duty,
                round,
                value_hash,
            } => {
                self.note(&[b"decided", &(node as u64).to_le_bytes(), &value_hash]);
                self.observed
                    .decisions
                    .entry(duty)
                    .or_default()
                    .insert(node, (value_hash, round));
            }
            Action::Outcome { duty, outcome } => {
                self.observed
                    .outcomes
                    .entry(node)
                    .or_default()
                    .push((duty, outcome));
            }
            Action::Dropped { from, what, reason } => {
                *self
                    .observed
                    .dropped
                    .entry((node, from as usize, format!("{what}: {reason}")))
                    .or_default() += 1;
            }
            Action::Refused { duty, reason, .. } => {
                self.observed.refused.push((node, duty, reason))
            }
            Action::Registered(_) => {}
        }
    }

    /// Schedules a beacon node's answer: `ok` after its delay, or the
    /// failure `err` makes if it is down.
    fn beacon_node_answers(
        &mut self,
        node: usize,
        ok: Event<E>,
        err: impl FnOnce(String) -> Event<E>,
    ) {
        let mut delay = self.uniform(BN_DELAY_MS);
        let mut down = false;
        for fault in &self.scenario.faults {
            match *fault {
                Fault::SlowBeaconNode {
                    node: n,
                    delay_ms,
                    from_slot,
                    until_slot,
                } if n == node && self.during(from_slot, until_slot) => delay += delay_ms,
                Fault::BeaconNodeDown {
                    node: n,
                    from_slot,
                    until_slot,
                } if n == node && self.during(from_slot, until_slot) => down = true,
                _ => {}
            }
        }
        let event = if down {
            err("the beacon node is down (simulated)".into())
        } else {
            ok
        };
        let at = self.now + delay;
        self.schedule(at, Happening::Core { node, event });
    }

    /// A beacon node keeps the attestations its node sends, for aggregates.
    fn pool_attestation(&mut self, node: usize, attestation: &AttestationSubmission<E>) {
        let (data, committee, position, length, signature) = match attestation {
            AttestationSubmission::Single(a) => {
                let Some(duty) = self
                    .cluster_attesters(a.data.slot)
                    .into_iter()
                    .find(|d| d.validator_index == a.attester_index)
                else {
                    return;
                };
                (
                    a.data,
                    a.committee_index,
                    duty.validator_committee_index,
                    duty.committee_length,
                    a.signature,
                )
            }
            AttestationSubmission::Base(a) => {
                let bits = match a.as_ref() {
                    Attestation::Base(base) => &base.aggregation_bits,
                    Attestation::Electra(_) => return,
                };
                let Some(position) = (0..bits.len()).find(|i| bits.get(*i).unwrap_or(false)) else {
                    return;
                };
                let data = *a.data();
                (
                    data,
                    data.index,
                    position as u64,
                    bits.len() as u64,
                    *a.signature(),
                )
            }
        };
        let Ok(signature) = S::decode_signature(signature.as_slice()) else {
            return;
        };
        self.nodes[node].pool.insert(
            data,
            committee,
            length as usize,
            position as usize,
            signature,
        );
    }

    /// The aggregate of what `node`'s beacon node pooled for a committee's vote.
    fn aggregate_of(
        &self,
        node: usize,
        slot: Slot,
        committee: CommitteeIndex,
        root: Root,
    ) -> Result<Attestation<E>, String> {
        let pooled = self.nodes[node]
            .pool
            .get(slot, committee, root)
            .ok_or_else(|| format!("no attestation of committee {committee} at slot {slot}"))?;
        let electra = self
            .network
            .fork_at(slot.epoch(E::SLOTS_PER_EPOCH))
            .is_ok_and(ForkName::electra_enabled);
        pooled
            .aggregate(committee, electra, combine::<S>)
            .map_err(|e| e.to_string())
    }

    /// The cluster's sync-committee members at `slot` with each
    /// subcommittee they sit in.
    pub(super) fn cluster_subcommittees(&self, slot: Slot) -> Vec<(usize, u64)> {
        let mut found = BTreeSet::new();
        for (position, member) in self.chain.sync_committee_at(slot).into_iter().enumerate() {
            if (member as usize) < self.validators.len() {
                found.insert((member as usize, sync_subcommittee::<E>(position as u64)));
            }
        }
        found.into_iter().collect()
    }

    /// The (member, subcommittee) pairs at `slot` the group keys' sync
    /// selection proofs elect to contribute.
    pub(super) fn cluster_sync_aggregators(&self, slot: Slot) -> Vec<(PublicKeyBytes, u64)> {
        self.cluster_subcommittees(slot)
            .into_iter()
            .filter(|&(member, subcommittee)| {
                let root = self.roots.sync_selection_proof(slot, subcommittee);
                let proof = S::sign(&self.secrets[member], root.as_slice());
                is_sync_committee_aggregator::<E>(&S::signature_bytes(&proof))
            })
            .map(|(member, subcommittee)| (self.group_bytes[member], subcommittee))
            .collect()
    }

    /// A beacon node keeps the sync messages its node sends, by position.
    fn pool_sync_message(&mut self, node: usize, message: &SyncCommitteeMessage) {
        let Ok(signature) = S::decode_signature(message.signature.as_slice()) else {
            return;
        };
        let committee = self.chain.sync_committee_at(message.slot);
        for (position, member) in committee.into_iter().enumerate() {
            if member == message.validator_index.0 {
                self.nodes[node].sync_pool.insert::<E>(
                    message.slot,
                    message.beacon_block_root,
                    position as u64,
                    signature,
                );
            }
        }
    }

    /// The contribution of what `node`'s beacon node pooled for a
    /// subcommittee's head.
    fn contribution_of(
        &self,
        node: usize,
        slot: Slot,
        head: Root,
        subcommittee_index: u64,
    ) -> Result<SyncCommitteeContribution<E>, String> {
        self.nodes[node]
            .sync_pool
            .contribution(slot, head, subcommittee_index, combine::<S>)
            .ok_or_else(|| {
                format!("no sync message of subcommittee {subcommittee_index} at slot {slot}")
            })?
            .map_err(|e| e.to_string())
    }

    /// The cluster's attesters at `slot` that its (group) selection proofs
    /// elect to aggregate, worked out from the whole keys.
    pub(super) fn cluster_aggregators(&self, slot: Slot) -> Vec<PublicKeyBytes> {
        let root = self.roots.selection_proof(slot);
        self.cluster_attesters(slot)
            .into_iter()
            .filter(|duty| {
                let proof = S::sign(
                    &self.secrets[duty.validator_index.0 as usize],
                    root.as_slice(),
                );
                is_aggregator(duty.committee_length, &S::signature_bytes(&proof))
            })
            .map(|duty| duty.pubkey)
            .collect()
    }

    /// Whether `node`'s beacon node gives diverging data for `slot` now.
    fn diverges(&self, node: usize, slot: Slot) -> bool {
        self.scenario.faults.iter().any(|f| match *f {
            Fault::DivergingBeaconNode {
                node: n,
                slot: s,
                from_ms,
            } => n == node && s == slot.0 && self.now >= self.slot_start(slot) + from_ms,
            _ => false,
        })
    }

    /// Whether a message from `from` reaches `to` now (partitions).
    fn connected(&self, from: usize, to: usize) -> bool {
        for fault in &self.scenario.faults {
            if let Fault::Partition {
                groups,
                from_slot,
                until_slot,
            } = fault
            {
                if self.during(*from_slot, *until_slot) {
                    let group_of = |node: usize| groups.iter().position(|g| g.contains(&node));
                    if group_of(from) != group_of(to) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The delays of one message's copies: none if it is lost, two if it
    /// is duplicated.
    fn link_delays(&mut self, from: usize, to: usize) -> Vec<u64> {
        if !self.connected(from, to) {
            return Vec::new();
        }
        let link = self.scenario.network.link(from, to);
        if self.rng.gen_bool(link.loss) {
            return Vec::new();
        }
        let mut delays = vec![link.distribution.sample(link.delay_ms, &mut self.rng)];
        if self.rng.gen_bool(link.duplication) {
            delays.push(link.distribution.sample(link.delay_ms, &mut self.rng));
        }
        delays
    }

    fn send_consensus(&mut self, from: usize, to: usize, message: Wire<Duty, DutyValue>) {
        let byzantine = self.is_byzantine_node(from);
        let message = if byzantine {
            self.equivocate(from, to, message)
        } else {
            message
        };
        self.observed.consensus_messages += 1;
        self.observed.consensus_bytes += encoded_len(&message);
        for delay in self.link_delays(from, to) {
            let event = Event::Consensus {
                from: from as u32,
                message: message.clone(),
            };
            self.schedule(self.now + delay, Happening::Core { node: to, event });
        }
        if byzantine {
            // A byzantine node also replays what it sends a while later.
            let delay = self.scenario.slot_ms / 2;
            let event = Event::Consensus {
                from: from as u32,
                message,
            };
            self.schedule(self.now + delay, Happening::Core { node: to, event });
        }
    }

    /// A byzantine node tells its odd-numbered peers another story: its
    /// round-1 proposals carry other data (attestation data voting for
    /// another head, anything else garbled), and its prepares and commits
    /// name that other value, each message signed with its own key.
    fn equivocate(
        &mut self,
        from: usize,
        to: usize,
        message: Wire<Duty, DutyValue>,
    ) -> Wire<Duty, DutyValue> {
        if to.is_multiple_of(2) {
            return message;
        }
        let resign = |world: &World<E, S>, mut signed: SignedMessage<Duty>, kind: Kind| {
            signed.message.kind = kind;
            let secrets: Vec<[u8; 32]> = world.nodes.iter().map(|n| n.node_secret).collect();
            let (signer, _) = S::consensus_keys(&secrets, from);
            signed.signature = signer.sign(&signed.message.signing_bytes());
            signed
        };
        match message {
            Wire::Proposal {
                proposal,
                value,
                justification,
            } if proposal.message.round == Round(1) => {
                let other = other_value(proposal.message.instance, &value);
                let hash = other.value_hash();
                self.equivocations
                    .insert((proposal.message.instance, proposal.message.round), hash);
                let proposal = resign(self, proposal, Kind::Proposal(hash));
                Wire::Proposal {
                    proposal,
                    value: other,
                    justification,
                }
            }
            Wire::Prepare(signed) => {
                let key = (signed.message.instance, signed.message.round);
                match self.equivocations.get(&key).copied() {
                    Some(hash) => Wire::Prepare(resign(self, signed, Kind::Prepare(hash))),
                    None => Wire::Prepare(signed),
                }
            }
            Wire::Commit(signed) => {
                let key = (signed.message.instance, signed.message.round);
                match self.equivocations.get(&key).copied() {
                    Some(hash) => Wire::Commit(resign(self, signed, Kind::Commit(hash))),
                    None => Wire::Commit(signed),
                }
            }
            other => other,
        }
    }

    fn is_byzantine_node(&self, node: usize) -> bool {
        self.scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::ByzantineNode { node: n } if *n == node))
    }

    fn send_partials(&mut self, from: usize, mut partials: Vec<PartialMessage>) {
        *self.observed.partials_by_operator.entry(from).or_default() += partials.len() as u64;
        if self.is_byzantine_node(from) {
            // Signatures that decode but do not verify: over another root.
            for partial in &mut partials {
                let position = self
                    .group_bytes
                    .iter()
                    .position(|k| k.as_slice() == partial.validator.as_slice());
                if let Some(position) = position {
                    let wrong = S::sign(
                        &self.nodes[from].shares[position],
                        b"not what the duty signs",
                    );
                    partial.signature = S::signature_bytes(&wrong).to_vec();
                }
            }
        }
        let bytes = encoded_len(&partials);
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            self.observed.partials_sent += partials.len() as u64;
            self.observed.partial_bytes += bytes;
            for delay in self.link_delays(from, to) {
                let event = Event::Partials {
                    from: from as u32,
                    partials: partials.clone(),
                };
                self.schedule(self.now + delay, Happening::Core { node: to, event });
            }
        }
    }

    /// The signing root of a submission and whether its signature verifies
    /// under the group key.
    fn check(
        &mut self,
        validator: PublicKeyBytes,
        submission: &Submission<E>,
    ) -> Option<SubmissionCheck> {
        let (root, signature, vote, block_slot) = match submission {
            Submission::Attestation(_, attestation) => {
                let (data, signature) = match attestation {
                    AttestationSubmission::Base(a) => (a.data(), *a.signature()),
                    AttestationSubmission::Single(a) => (&a.data, a.signature),
                };
                (
                    self.roots.attestation(data),
                    signature,
                    Some((data.source.epoch.0, data.target.epoch.0)),
                    None,
                )
            }
            Submission::SyncMessage(message) => (
                self.roots
                    .sync_message(message.slot, message.beacon_block_root),
                message.signature,
                None,
                None,
            ),
            Submission::Block(_, block) => {
                let (slot, root, signature) = match block {
                    BlockSubmission::Full(b) => {
                        (b.message.slot(), b.message.tree_hash_root(), b.signature)
                    }
                    BlockSubmission::Contents(c) => (
                        c.signed_block.message.slot(),
                        c.signed_block.message.tree_hash_root(),
                        c.signed_block.signature,
                    ),
                    BlockSubmission::Blinded(b) => {
                        (b.message.slot(), b.message.tree_hash_root(), b.signature)
                    }
                };
                (self.roots.block(slot, root), signature, None, Some(slot))
            }
            Submission::Aggregate(_, aggregate) => {
                let (root, signature) = match aggregate {
                    AggregateSubmission::Base(signed) => (
                        self.roots.aggregate_and_proof(
                            signed.message.aggregate.data.slot,
                            &signed.message,
                        ),
                        signed.signature,
                    ),
                    AggregateSubmission::Electra(signed) => (
                        self.roots.aggregate_and_proof(
                            signed.message.aggregate.data.slot,
                            &signed.message,
                        ),
                        signed.signature,
                    ),
                };
                (root, signature, None, None)
            }
            Submission::Contribution(signed) => (
                self.roots
                    .contribution_and_proof(signed.message.contribution.slot, &signed.message),
                signed.signature,
                None,
                None,
            ),
            // The simulated clients neither exit nor register.
            _ => return None,
        };
        // Every node broadcasts the same signature: it is verified once.
        let valid = match self.index_of.get(&validator) {
            None => false,
            Some(&i) => *self
                .verified
                .entry((i, root, signature))
                .or_insert_with(|| {
                    S::decode_signature(signature.as_slice())
                        .is_ok_and(|s| S::verify(&self.validators[i].group, root.as_slice(), &s))
                }),
        };
        Some(SubmissionCheck {
            signing_root: root,
            valid,
            vote,
            block_slot,
        })
    }

    // -- The validator clients ---------------------------------------------

    fn vc_offline(&self, node: usize) -> bool {
        self.scenario.faults.iter().any(|f| match *f {
            Fault::ValidatorClientOffline {
                node: n,
                from_slot,
                until_slot,
            } => n == node && self.during(from_slot, until_slot),
            _ => false,
        })
    }

    /// How late a node's validator client acts in `slot`.
    fn vc_slowness(&self, node: usize, slot: u64) -> u64 {
        self.scenario
            .faults
            .iter()
            .map(|f| match *f {
                Fault::SlowValidatorClient {
                    node: n,
                    delay_ms,
                    from_slot,
                    until_slot,
                } if n == node && (from_slot..until_slot).contains(&slot) => delay_ms,
                _ => 0,
            })
            .sum()
    }

    fn vc_double_submits(&self, node: usize) -> bool {
        self.scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::DoubleSubmittingValidatorClient { node: n } if *n == node))
    }

    fn vc_byzantine(&self, node: usize) -> bool {
        self.scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::ByzantineValidatorClient { node: n } if *n == node))
    }

    /// A validator client's signature with its share of validator `position`.
    fn vc_sign(&self, node: usize, position: usize, root: Root) -> SignatureBytes {
        let share = &self.nodes[node].shares[position];
        let signature = if self.vc_byzantine(node) {
            S::sign(share, b"a byzantine client signs something else")
        } else {
            S::sign(share, root.as_slice())
        };
        S::signature_bytes(&signature)
    }

    fn vc_request(&mut self, node: usize, request: VcRequest<E>, waiting: VcWaiting) {
        let sim = &mut self.nodes[node];
        if sim.core.is_none() {
            return;
        }
        let id = sim.next_request;
        sim.next_request += 1;
        sim.waiting.insert(id, waiting);
        self.deliver(node, Event::Vc { id, request });
    }

    fn validator_client(&mut self, node: usize, slot: Slot, moment: Moment) {
        if self.vc_offline(node) || self.nodes[node].core.is_none() {
            return;
        }
        self.note(&[b"vc", &(node as u64).to_le_bytes(), &slot.0.to_le_bytes()]);
        match moment {
            Moment::Start => {
                let attesters = self.cluster_attesters(slot);
                if !attesters.is_empty() {
                    let root = self.roots.selection_proof(slot);
                    let selections = attesters
                        .iter()
                        .map(|duty| BeaconCommitteeSelection {
                            validator_index: duty.validator_index,
                            slot,
                            selection_proof: self.vc_sign(
                                node,
                                duty.validator_index.0 as usize,
                                root,
                            ),
                        })
                        .collect();
                    self.vc_request(
                        node,
                        VcRequest::BeaconCommitteeSelections(selections),
                        VcWaiting::Selections(attesters),
                    );
                }
                let members = self.cluster_subcommittees(slot);
                if !members.is_empty() {
                    let selections = members
                        .iter()
                        .map(|&(position, subcommittee_index)| SyncCommitteeSelection {
                            validator_index: ValidatorIndex(position as u64),
                            slot,
                            subcommittee_index,
                            selection_proof: self.vc_sign(
                                node,
                                position,
                                self.roots.sync_selection_proof(slot, subcommittee_index),
                            ),
                        })
                        .collect();
                    self.vc_request(
                        node,
                        VcRequest::SyncCommitteeSelections(selections),
                        VcWaiting::SyncSelections(members),
                    );
                }
                if let Some(position) = self.cluster_proposer(slot) {
                    let epoch = slot.epoch(E::SLOTS_PER_EPOCH);
                    let randao_reveal = self.vc_sign(node, position, self.roots.randao(epoch));
                    self.vc_request(
                        node,
                        VcRequest::ProduceBlock {
                            slot,
                            randao_reveal,
                            graffiti: None,
                            builder_boost_factor: None,
                        },
                        VcWaiting::Block { slot, position },
                    );
                }
            }
            Moment::Third => {
                let head = self.chain.block_root(slot);
                let messages: Vec<SyncCommitteeMessage> = self
                    .cluster_sync_members(slot)
                    .into_iter()
                    .map(|position| SyncCommitteeMessage {
                        slot,
                        beacon_block_root: head,
                        validator_index: ValidatorIndex(position as u64),
                        signature: self.vc_sign(
                            node,
                            position,
                            self.roots.sync_message(slot, head),
                        ),
                    })
                    .collect();
                if !messages.is_empty() {
                    self.vc_request(node, VcRequest::SyncMessages(messages), VcWaiting::Ack);
                }
                self.request_attestation_data(node, slot);
            }
            Moment::Again => self.request_attestation_data(node, slot),
            Moment::TwoThirds => {
                let elected = self.nodes[node]
                    .aggregators
                    .remove(&slot)
                    .unwrap_or_default();
                for (duty, selection_proof) in elected {
                    let Some(data) = self.nodes[node]
                        .attested
                        .get(&(slot, duty.committee_index))
                        .copied()
                    else {
                        continue;
                    };
                    self.vc_request(
                        node,
                        VcRequest::AggregateAttestation {
                            slot,
                            data_root: data.tree_hash_root(),
                            committee_index: Some(duty.committee_index),
                        },
                        VcWaiting::Aggregate {
                            duty,
                            selection_proof,
                        },
                    );
                }
                let elected = self.nodes[node]
                    .sync_aggregators
                    .remove(&slot)
                    .unwrap_or_default();
                for (position, subcommittee_index, selection_proof) in elected {
                    self.vc_request(
                        node,
                        VcRequest::SyncContribution {
                            slot,
                            subcommittee_index,
                        },
                        VcWaiting::Contribution {
                            position,
                            selection_proof,
                        },
                    );
                }
                // Nothing older is needed any more.
                let sim = &mut self.nodes[node];
                sim.attested = sim.attested.split_off(&(slot, CommitteeIndex(0)));
            }
        }
    }

    /// Asks for the attestation data of each committee with attesters.
    fn request_attestation_data(&mut self, node: usize, slot: Slot) {
        let mut by_committee: BTreeMap<CommitteeIndex, Vec<AttesterDuty>> = BTreeMap::new();
        for duty in self.cluster_attesters(slot) {
            by_committee
                .entry(duty.committee_index)
                .or_default()
                .push(duty);
        }
        for (committee_index, duties) in by_committee {
            self.vc_request(
                node,
                VcRequest::AttestationData {
                    slot,
                    committee_index,
                },
                VcWaiting::AttestationData(duties),
            );
        }
    }

    fn vc_reply(&mut self, node: usize, id: u64, result: Result<VcResponse<E>, ApiFailure>) {
        let Some(waiting) = self.nodes[node].waiting.remove(&id) else {
            return;
        };
        let response = match result {
            Ok(response) => response,
            Err(failure) => {
                self.observed
                    .vc_refused
                    .push((node, format!("{}: {}", failure.status, failure.message)));
                return;
            }
        };
        match (waiting, response) {
            (VcWaiting::SyncSelections(members), VcResponse::SyncCommitteeSelections(list)) => {
                for ((position, subcommittee), selection) in members.into_iter().zip(list) {
                    if is_sync_committee_aggregator::<E>(&selection.selection_proof) {
                        self.nodes[node]
                            .sync_aggregators
                            .entry(selection.slot)
                            .or_default()
                            .push((position, subcommittee, selection.selection_proof));
                    }
                }
            }
            (
                VcWaiting::Contribution {
                    position,
                    selection_proof,
                },
                VcResponse::Contribution(contribution),
            ) => {
                let message = ContributionAndProof {
                    aggregator_index: ValidatorIndex(position as u64),
                    contribution: *contribution,
                    selection_proof,
                };
                let root = self
                    .roots
                    .contribution_and_proof(message.contribution.slot, &message);
                let signature = self.vc_sign(node, position, root);
                self.vc_request(
                    node,
                    VcRequest::ContributionAndProofs(vec![SignedContributionAndProof {
                        message,
                        signature,
                    }]),
                    VcWaiting::Ack,
                );
            }
            (VcWaiting::Selections(duties), VcResponse::BeaconCommitteeSelections(list)) => {
                for (duty, selection) in duties.into_iter().zip(list) {
                    if is_aggregator(duty.committee_length, &selection.selection_proof) {
                        self.nodes[node]
                            .aggregators
                            .entry(duty.slot)
                            .or_default()
                            .push((duty, selection.selection_proof));
                    }
                }
            }
            (
                VcWaiting::Aggregate {
                    duty,
                    selection_proof,
                },
                VcResponse::Aggregate(aggregate),
            ) => {
                let position = duty.validator_index.0 as usize;
                let (message, root) = match *aggregate {
                    Attestation::Base(aggregate) => {
                        let message = AggregateAndProofBase {
                            aggregator_index: duty.validator_index,
                            aggregate,
                            selection_proof,
                        };
                        let root = self.roots.aggregate_and_proof(duty.slot, &message);
                        (AggregateAndProof::Base(message), root)
                    }
                    Attestation::Electra(aggregate) => {
                        let message = AggregateAndProofElectra {
                            aggregator_index: duty.validator_index,
                            aggregate,
                            selection_proof,
                        };
                        let root = self.roots.aggregate_and_proof(duty.slot, &message);
                        (AggregateAndProof::Electra(message), root)
                    }
                };
                let signature = self.vc_sign(node, position, root);
                self.vc_request(
                    node,
                    VcRequest::AggregateAndProofs(vec![VcSigned { message, signature }]),
                    VcWaiting::Ack,
                );
            }
            (VcWaiting::AttestationData(duties), VcResponse::AttestationData(data)) => {
                self.nodes[node]
                    .attested
                    .insert((data.slot, duties[0].committee_index), data);
                let electra = self
                    .network
                    .fork_at(data.slot.epoch(E::SLOTS_PER_EPOCH))
                    .is_ok_and(ForkName::electra_enabled);
                let root = self.roots.attestation(&data);
                let attestations = duties
                    .iter()
                    .map(|duty| VcAttestation {
                        data,
                        attester: if electra {
                            Attester::Index(duty.validator_index)
                        } else {
                            Attester::Position(duty.validator_committee_index)
                        },
                        committee_index: duty.committee_index,
                        signature: self.vc_sign(node, duty.validator_index.0 as usize, root),
                    })
                    .collect();
                self.vc_request(node, VcRequest::Attestations(attestations), VcWaiting::Ack);
            }
            (VcWaiting::Block { slot, position }, VcResponse::Block(block)) => {
                let block_root = match &block.data {
                    ProducedBlockData::Full(b) => b.tree_hash_root(),
                    ProducedBlockData::Contents(c) => c.block.tree_hash_root(),
                    ProducedBlockData::Blinded(b) => b.tree_hash_root(),
                };
                let signature = self.vc_sign(node, position, self.roots.block(slot, block_root));
                self.vc_request(
                    node,
                    VcRequest::PublishBlock {
                        slot,
                        block_root,
                        signature,
                    },
                    VcWaiting::Ack,
                );
            }
            _ => {}
        }
    }
}

/// How a simulated beacon node combines pooled signatures.
fn combine<S: SimScheme>(signatures: &[S::Signature]) -> Result<SignatureBytes, String> {
    S::aggregate(signatures).map(|s| S::signature_bytes(&s))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Data other than `value` for the same duty: attestation data voting for
/// another head (well-formed, so only agreement can refuse it), anything
/// else with its last byte flipped (which the validity check refuses).
fn other_value(duty: Duty, value: &DutyValue) -> DutyValue {
    if duty.kind == phalanx_node::duty::DutyType::Attester {
        if let Ok(mut entries) = decode_attestation_data(value) {
            for (_, data) in &mut entries {
                data.beacon_block_root = Root::repeat_byte(0xbb);
            }
            return encode_attestation_data(&entries);
        }
    }
    let mut bytes = value.0.clone();
    match bytes.last_mut() {
        Some(last) => *last ^= 0xff,
        None => bytes.push(0),
    }
    DutyValue(bytes)
}
