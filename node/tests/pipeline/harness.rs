//! Four node cores wired in memory: every core runs in 50 ms steps of
//! virtual time, its actions answered at once by a simulated beacon node
//! ([`beacon`]), its messages delivered to the other cores, and its
//! validator client played by [`validator_client`], which signs with the
//! operator's share. [`verify`] checks what reached the beacon node.

mod beacon;
mod validator_client;
mod verify;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use phalanx_crypto::threshold::{split, SecretShare};
use phalanx_crypto::{PublicKey, SecretKey};
use phalanx_eth::api::{ProposerDuty, SyncDuty};
use phalanx_eth::block_contents::ProducedBlockData;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{ForkName, MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use phalanx_node::core::{
    Action, Core, CoreConfig, Defects, Event, Submission, ValidatorKeys, VcRequest, VcResponse,
};
use phalanx_node::duty::{Duty, DutyType};
use phalanx_node::qbft::{LockVerifier, NodeSigner};
use phalanx_node::slashing::SlashingDb;
use phalanx_node::tracker::Outcome;
use phalanx_p2p::NodeKey;
use tree_hash::TreeHash;

pub(crate) use beacon::{data_for, validator_index};
pub(crate) use verify::{verify_submissions, Verified};

pub(crate) type Spec = MinimalEthSpec;

/// The slot duration of the cluster's chain.
pub(crate) const SLOT_MS: u64 = 1200;
/// When the cluster's chain starts.
pub(crate) const GENESIS_MS: u64 = 1_000_000;
/// Slots per epoch of the minimal preset.
const SLOTS_PER_EPOCH: u64 = 8;
/// Operators of the cluster, and its threshold.
const OPERATORS: usize = 4;
const THRESHOLD: usize = 3;
/// The cluster lock's hash, signed into every consensus message.
const LOCK_HASH: [u8; 32] = [0x1c; 32];

/// Four cores and what they did.
pub(crate) struct Cluster {
    pub(crate) cores: Vec<Core<Spec>>,
    /// Per operator, its share of each validator.
    pub(crate) shares: Vec<Vec<SecretShare>>,
    /// The validators' group keys; validator `i` has index `100 + i`.
    pub(crate) groups: Vec<PublicKey>,
    pub(crate) network: NetworkConfig,
    /// The genesis validators root.
    pub(crate) gvr: Root,
    /// What each node submitted to its beacon node.
    pub(crate) submissions: Vec<(usize, Submission<Spec>)>,
    pub(crate) outcomes: Vec<(usize, DutyType, Outcome)>,
    /// Messages each node dropped: (node, sender, reason).
    pub(crate) dropped: Vec<(usize, u32, String)>,
    /// Answers the validator clients got, besides attestation data.
    pub(crate) replies: Vec<(usize, VcResponse<Spec>)>,
    /// Whether validator clients take part in aggregation.
    pub(crate) aggregation: bool,
    /// Whether the cluster's validators propose (validator i at slot i).
    pub(crate) proposals: bool,
    /// Whether the beacon nodes give blinded blocks (a builder's).
    pub(crate) blinded: bool,
    /// The id of the last request a validator client sent.
    pub(crate) vc_id: u64,
    /// The validator clients' requests already sent: (node + 100 × kind, slot).
    asked: BTreeSet<(usize, u64)>,
    /// Combined selection proofs each node's client got: (node, validator
    /// index, slot, subcommittee for sync) → proof.
    proofs: BTreeMap<(usize, u64, Slot, Option<u64>), SignatureBytes>,
    timers: BTreeMap<(usize, Duty), (u64, phalanx_consensus::Round)>,
    _dirs: Vec<tempfile::TempDir>,
}

/// A cluster of four operators, threshold 3, and `validators` validators
/// on a devnet of `fork`.
pub(crate) fn cluster(fork: ForkName, validators: usize) -> Cluster {
    let mut rng = rand::rngs::OsRng;
    let network = NetworkConfig::devnet(fork, SLOT_MS);
    let gvr = Root::repeat_byte(7);
    let secrets: Vec<SecretKey> = (0..validators)
        .map(|_| SecretKey::random(&mut rng))
        .collect();
    let splits: Vec<_> = secrets
        .iter()
        .map(|s| split(s, THRESHOLD, OPERATORS, &mut rng).expect("split"))
        .collect();
    let keys: Vec<ValidatorKeys> = secrets
        .iter()
        .zip(&splits)
        .map(|(s, k)| ValidatorKeys {
            group: s.public_key(),
            shares: k
                .secret_shares
                .iter()
                .map(|x| x.public_share().key)
                .collect(),
            fee_recipient: None,
            registration: None,
        })
        .collect();
    let node_keys: Vec<NodeKey> = (0..OPERATORS).map(|_| NodeKey::generate()).collect();
    let publics: Vec<[u8; 33]> = node_keys.iter().map(NodeKey::public_key).collect();
    let mut dirs = Vec::new();
    let cores = (0..OPERATORS as u32)
        .map(|me| {
            let dir = tempfile::tempdir().expect("tempdir");
            let slashing = SlashingDb::open(&dir.path().join("slashing.jsonl"), gvr).expect("db");
            dirs.push(dir);
            Core::new(
                CoreConfig {
                    me: phalanx_consensus::OperatorIndex(me),
                    lock_hash: LOCK_HASH,
                    threshold: THRESHOLD,
                    validators: keys.clone(),
                    network: network.clone(),
                    genesis_time_ms: GENESIS_MS,
                    genesis_validators_root: gvr,
                    seed: [me as u8; 32],
                    graffiti: None,
                    builder_api: false,
                    defects: Defects::default(),
                },
                Box::new(NodeSigner(node_keys[me as usize].clone())),
                Box::new(LockVerifier::new(publics.clone())),
                slashing,
            )
            .expect("core")
        })
        .collect();
    let shares = (0..OPERATORS)
        .map(|op| splits.iter().map(|k| k.secret_shares[op].clone()).collect())
        .collect();
    Cluster {
        cores,
        shares,
        groups: secrets.iter().map(SecretKey::public_key).collect(),
        network,
        gvr,
        submissions: Vec::new(),
        outcomes: Vec::new(),
        dropped: Vec::new(),
        replies: Vec::new(),
        aggregation: false,
        proposals: false,
        blinded: false,
        vc_id: 0,
        asked: BTreeSet::new(),
        proofs: BTreeMap::new(),
        timers: BTreeMap::new(),
        _dirs: dirs,
    }
}

/// Events waiting for delivery: (node, event).
pub(crate) type Queue = VecDeque<(usize, Event<Spec>)>;

impl Cluster {
    /// Runs every core from `from_ms` to `to_ms` in 50 ms steps, delivering
    /// messages at once; `silent` nodes neither act nor receive.
    pub(crate) fn run(&mut self, from_ms: u64, to_ms: u64, silent: &[usize]) {
        let mut now = from_ms;
        self.vc_id = 0;
        while now < to_ms {
            let mut queue = Queue::new();
            let running: Vec<usize> = (0..OPERATORS).filter(|n| !silent.contains(n)).collect();
            for &node in &running {
                queue.push_back((node, Event::Tick));
            }
            let due: Vec<_> = self
                .timers
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|((node, duty), (_, round))| (*node, *duty, *round))
                .collect();
            for (node, duty, round) in due {
                self.timers.remove(&(node, duty));
                queue.push_back((node, Event::Timer { duty, round }));
            }
            if self.proposals {
                for &node in &running {
                    let slot = self.cores[node].slot_at(now);
                    self.proposal_requests(node, now, slot, &mut queue);
                }
            }
            if self.aggregation {
                for &node in &running {
                    let slot = self.cores[node].slot_at(now);
                    self.aggregation_requests(node, now, slot, &mut queue);
                }
            }
            self.drain(now, &mut queue, silent);
            now += 50;
        }
    }

    /// Delivers events, and everything they cause, at `now`.
    pub(crate) fn drain(&mut self, now: u64, queue: &mut Queue, silent: &[usize]) {
        while let Some((node, event)) = queue.pop_front() {
            let actions = self.cores[node].handle(now, event);
            for action in actions {
                self.route(node, now, action, queue, silent);
            }
        }
    }

    /// A validator client's request, sent to its node with the next id.
    fn ask(&mut self, queue: &mut Queue, node: usize, request: VcRequest<Spec>) {
        self.vc_id += 1;
        queue.push_back((
            node,
            Event::Vc {
                id: self.vc_id,
                request,
            },
        ));
    }

    /// Whether attestations of `slot` have the Electra layout.
    fn electra_at(&self, slot: Slot) -> bool {
        self.network
            .fork_at_slot(slot)
            .expect("a known fork")
            .electra_enabled()
    }

    /// Answers `node`'s action: as its beacon node, its peers or its
    /// validator client would.
    fn route(
        &mut self,
        node: usize,
        now: u64,
        action: Action<Spec>,
        queue: &mut Queue,
        silent: &[usize],
    ) {
        let peers: Vec<usize> = (0..OPERATORS)
            .filter(|p| *p != node && !silent.contains(p))
            .collect();
        match action {
            Action::ResolveIndices(keys) => {
                let found = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (*k, validator_index(i)))
                    .collect();
                queue.push_back((node, Event::Indices(found)));
            }
            Action::ResolveDuties { epoch, .. } => {
                let sync = self
                    .groups
                    .iter()
                    .enumerate()
                    .take(2)
                    .map(|(i, g)| SyncDuty {
                        pubkey: PublicKeyBytes::from(g.to_bytes()),
                        validator_index: validator_index(i),
                        validator_sync_committee_indices: vec![i as u64],
                    })
                    .collect();
                queue.push_back((
                    node,
                    Event::Duties {
                        epoch,
                        attester: beacon::duties(epoch, &self.groups),
                        sync,
                    },
                ));
            }
            Action::ResolveProposers { epoch } => {
                let duties = if self.proposals {
                    (0..SLOTS_PER_EPOCH as usize)
                        .map(|i| ProposerDuty {
                            pubkey: PublicKeyBytes::from(self.groups[i].to_bytes()),
                            validator_index: validator_index(i),
                            slot: Slot(epoch.0 * SLOTS_PER_EPOCH + i as u64),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                queue.push_back((
                    node,
                    Event::Proposers {
                        epoch,
                        result: Ok(duties),
                    },
                ));
            }
            Action::FetchAttestationData { duty, committees } => {
                let electra = self.electra_at(duty.slot);
                let data = committees
                    .iter()
                    .map(|c| (*c, data_for(duty.slot, *c, electra)))
                    .collect();
                queue.push_back((
                    node,
                    Event::AttestationData {
                        duty,
                        result: Ok(data),
                    },
                ));
            }
            Action::FetchAggregates { duty, requests } => {
                let electra = self.electra_at(duty.slot);
                let aggregates = requests
                    .iter()
                    .map(|(committee, root)| {
                        let data = data_for(duty.slot, *committee, electra);
                        assert_eq!(data.tree_hash_root(), *root, "the decided data's root");
                        (*committee, beacon::aggregate_of(data, *committee, electra))
                    })
                    .collect();
                queue.push_back((
                    node,
                    Event::Aggregates {
                        duty,
                        result: Ok(aggregates),
                    },
                ));
            }
            Action::FetchContributions {
                duty,
                block_root,
                subcommittees,
            } => {
                let head = block_root.expect("the cluster's sync messages name the head");
                let contributions = subcommittees
                    .iter()
                    .map(|sub| beacon::contribution(duty.slot, head, *sub))
                    .collect();
                queue.push_back((
                    node,
                    Event::Contributions {
                        duty,
                        result: Ok(contributions),
                    },
                ));
            }
            Action::FetchBlock {
                duty,
                randao_reveal,
                graffiti,
                ..
            } => {
                let proposer = validator_index((duty.slot.0 % SLOTS_PER_EPOCH) as usize);
                let fork = self.network.fork_at_slot(duty.slot).expect("a known fork");
                let mut block =
                    beacon::block_at(fork, duty.slot, proposer, randao_reveal, graffiti);
                if self.blinded {
                    let full = match &block.data {
                        ProducedBlockData::Contents(contents) => &contents.block,
                        ProducedBlockData::Full(block) => block,
                        ProducedBlockData::Blinded(_) => unreachable!("made full"),
                    };
                    let blinded = full.to_blinded().expect("a payload to blind");
                    block.data = ProducedBlockData::Blinded(blinded);
                }
                queue.push_back((
                    node,
                    Event::Block {
                        duty,
                        result: Ok(Box::new(block)),
                    },
                ));
            }
            Action::ConsensusBroadcast(message) => {
                for p in peers {
                    queue.push_back((
                        p,
                        Event::Consensus {
                            from: phalanx_consensus::OperatorIndex(node as u32),
                            message: message.clone(),
                        },
                    ));
                }
            }
            Action::ConsensusSend { to, message } => {
                if !silent.contains(&to.as_usize()) {
                    queue.push_back((
                        to.as_usize(),
                        Event::Consensus {
                            from: phalanx_consensus::OperatorIndex(node as u32),
                            message,
                        },
                    ));
                }
            }
            Action::SetTimer { duty, round, after } => {
                self.timers
                    .insert((node, duty), (now + after.as_millis() as u64, round));
            }
            Action::StopTimer(duty) => {
                self.timers.remove(&(node, duty));
            }
            Action::Decided { .. } | Action::Registered(_) => {}
            Action::SendPartials(partials) => {
                for p in peers {
                    queue.push_back((
                        p,
                        Event::Partials {
                            from: phalanx_consensus::OperatorIndex(node as u32),
                            partials: partials.clone(),
                        },
                    ));
                }
            }
            Action::Submit {
                duty,
                validator,
                submission,
            } => {
                self.submissions.push((node, submission));
                queue.push_back((
                    node,
                    Event::Submitted {
                        duty,
                        validators: vec![validator],
                        result: Ok(()),
                    },
                ));
            }
            Action::Reply { result, .. } => match result {
                // The validator client signs decided data with its share.
                Ok(VcResponse::AttestationData(data)) => {
                    let attestations = self.sign_attestations(node, data);
                    self.ask(queue, node, VcRequest::Attestations(attestations));
                }
                Err(failure) => {
                    panic!("node {node} refused its validator client at {now}: {failure:?}")
                }
                Ok(other) => {
                    if let Some(request) = self.aggregate_reply(node, &other) {
                        self.ask(queue, node, request);
                    }
                    self.replies.push((node, other));
                }
            },
            Action::Outcome { duty, outcome } => self.outcomes.push((node, duty.kind, outcome)),
            Action::Dropped { from, reason, .. } => {
                self.dropped.push((node, from.0, reason.label().into()))
            }
            Action::Refused { reason, .. } => panic!("refused: {reason}"),
        }
        self.attestation_requests(node, now, queue);
    }
}
