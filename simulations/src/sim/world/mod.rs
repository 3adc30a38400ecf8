//! The discrete-event engine: virtual time, one queue, and every node's own
//! core fed by a simulated network, beacon node and validator client.
//!
//! Nothing here reads a clock or the operating system's randomness: the
//! scenario's seed fixes every key, delay, loss and fault, events at the same
//! instant run in the order they were scheduled, and every map is ordered.
//! Each processed event is folded into a SHA-256 trace, so two runs of one
//! seed can be compared bit for bit.
//!
//! Where each part lives: `queue` (virtual time, the event queue, faults
//! by schedule), `node` (each operator's core and how its actions are
//! carried out), `beacon` (each node's simulated beacon node), `network`
//! (links, partitions, byzantine senders), `vc` (the validator clients) and
//! `observed` (what a run observed, for the invariants). This module holds
//! the world, its construction and the cluster's duties.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

use phalanx_consensus::{Round, ValueHash};
use phalanx_eth::api::AttesterDuty;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::devnet::Devnet;
use phalanx_eth::pool::{AttestationPool, ContributionPool};
use phalanx_eth::selection::{is_aggregator, is_sync_committee_aggregator, sync_subcommittee};
use phalanx_eth::{Epoch, EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use phalanx_node::core::{Defects, ValidatorKeys};
use phalanx_node::duty::Duty;
use phalanx_node::slashing::MemoryDisk;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::beacon::{BeaconMockConfig, Chain};
use crate::vc::Roots;

use super::scenario::Scenario;
use super::signing::SimScheme;

mod beacon;
mod cpu;
mod flood;
mod network;
mod node;
mod observed;
mod queue;
mod vc;

use node::SimNode;
pub use observed::{Broadcast, FloodSent, NodeCpu, Observed, SubmissionCheck};
use queue::Scheduled;

/// Virtual Unix milliseconds of slot 0 (any fixed instant will do).
const GENESIS_MS: u64 = 1_700_000_000_000;

/// The simulated cluster's lock hash, signed into every consensus message
/// (any fixed value will do).
const LOCK_HASH: [u8; 32] = [0x1c; 32];

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
        let network = Devnet::new(scenario.fork, scenario.slot_ms)
            .preset(scenario.preset.into())
            .build();
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
                    cpu: Default::default(),
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
}
