//! Four node cores wired in memory: duties resolve, consensus decides one
//! attestation per slot, each operator's validator client signs with its
//! share, partials are exchanged and combined, and what reaches the beacon
//! node verifies under the group key. Faulty partials are dropped and
//! named; a core with one silent peer still completes every duty.

use std::collections::VecDeque;

use phalanx_crypto::threshold::{split, SecretShare};
use phalanx_crypto::{PublicKey, SecretKey, Signature};
use phalanx_eth::api::ProposerDuty;
use phalanx_eth::api::{AttesterDuty, SyncDuty};
use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    AttestationBase, AttestationElectra, BeaconCommitteeSelection, SyncCommitteeSelection,
};
use phalanx_eth::attestation::{AttestationData, Checkpoint};
use phalanx_eth::block::BeaconBlock;
use phalanx_eth::block_contents::{
    Blob, BlockContents, KzgProof, ProducedBlock, ProducedBlockData,
};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::signing::{compute_signing_root, DOMAIN_BEACON_ATTESTER, DOMAIN_SYNC_COMMITTEE};
use phalanx_eth::signing::{
    DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_SELECTION_PROOF,
    DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
};
use phalanx_eth::signing::{DOMAIN_BEACON_PROPOSER, DOMAIN_RANDAO};
use phalanx_eth::sync_committee::SyncCommitteeMessage;
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncAggregatorSelectionData,
    SyncCommitteeContribution,
};
use phalanx_eth::{
    CommitteeIndex, Epoch, ForkName, MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes, Slot,
    ValidatorIndex,
};
use phalanx_node::core::{
    Action, AggregateSubmission, AttestationSubmission, Attester, BlockSubmission, Core,
    CoreConfig, Defects, Event, Submission, ValidatorKeys, VcAttestation, VcRequest, VcResponse,
    VcSigned, HOUSEKEEPING_MS,
};
use phalanx_node::duty::DutyType;
use phalanx_node::qbft::{LockVerifier, NodeSigner};
use phalanx_node::slashing::SlashingDb;
use phalanx_node::tracker::Outcome;
use phalanx_p2p::NodeKey;
use tree_hash::TreeHash;

type Spec = MinimalEthSpec;

const SLOT_MS: u64 = 1200;
const GENESIS_MS: u64 = 1_000_000;

struct Cluster {
    cores: Vec<Core<Spec>>,
    shares: Vec<Vec<SecretShare>>,
    groups: Vec<PublicKey>,
    network: NetworkConfig,
    gvr: Root,
    submissions: Vec<(usize, Submission<Spec>)>,
    outcomes: Vec<(usize, DutyType, Outcome)>,
    dropped: Vec<(usize, u32, String)>,
    asked: std::collections::BTreeSet<(usize, u64)>,
    replies: Vec<(usize, VcResponse<Spec>)>,
    /// Whether validator clients take part in aggregation.
    aggregation: bool,
    /// Whether the cluster's validators propose (validator i at slot i).
    proposals: bool,
    /// Whether the beacon nodes give blinded blocks (a builder's).
    blinded: bool,
    /// Combined selection proofs each node's client got: (node, validator
    /// index, slot, subcommittee for sync) → proof.
    proofs: std::collections::BTreeMap<(usize, u64, Slot, Option<u64>), SignatureBytes>,
    timers: std::collections::BTreeMap<
        (usize, phalanx_node::duty::Duty),
        (u64, phalanx_consensus::Round),
    >,
    _dirs: Vec<tempfile::TempDir>,
}

fn cluster(fork: ForkName, validators: usize) -> Cluster {
    let mut rng = rand::rngs::OsRng;
    let network = NetworkConfig::devnet(fork, SLOT_MS);
    let gvr = Root::repeat_byte(7);
    let secrets: Vec<SecretKey> = (0..validators)
        .map(|_| SecretKey::random(&mut rng))
        .collect();
    let splits: Vec<_> = secrets
        .iter()
        .map(|s| split(s, 3, 4, &mut rng).expect("split"))
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
    let node_keys: Vec<NodeKey> = (0..4).map(|_| NodeKey::generate()).collect();
    let publics: Vec<[u8; 33]> = node_keys.iter().map(NodeKey::public_key).collect();
    let mut dirs = Vec::new();
    let cores = (0..4u32)
        .map(|me| {
            let dir = tempfile::tempdir().expect("tempdir");
            let slashing = SlashingDb::open(&dir.path().join("slashing.jsonl"), gvr).expect("db");
            dirs.push(dir);
            Core::new(
                CoreConfig {
                    me,
                    threshold: 3,
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
    let shares = (0..4)
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
        asked: Default::default(),
        timers: Default::default(),
        replies: Vec::new(),
        aggregation: false,
        proposals: false,
        blinded: false,
        proofs: Default::default(),
        _dirs: dirs,
    }
}

fn data_for(slot: Slot, committee: CommitteeIndex, electra: bool) -> AttestationData {
    let epoch = slot.epoch(8);
    AttestationData {
        slot,
        index: if electra {
            CommitteeIndex(0)
        } else {
            committee
        },
        beacon_block_root: Root::repeat_byte(slot.0 as u8),
        source: Checkpoint {
            epoch: Epoch(epoch.0.saturating_sub(1)),
            root: Root::repeat_byte(1),
        },
        target: Checkpoint {
            epoch,
            root: Root::repeat_byte(2),
        },
    }
}

/// Attester duty of validator i: slot i mod 8 of the epoch, committee i mod 2.
fn duties(epoch: Epoch, groups: &[PublicKey]) -> Vec<AttesterDuty> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| AttesterDuty {
            pubkey: PublicKeyBytes::from(g.to_bytes()),
            validator_index: ValidatorIndex(i as u64 + 100),
            committee_index: CommitteeIndex(i as u64 % 2),
            committee_length: 16,
            committees_at_slot: 2,
            validator_committee_index: i as u64,
            slot: Slot(epoch.0 * 8 + i as u64 % 8),
        })
        .collect()
}

impl Cluster {
    /// Runs every core from `from_ms` to `to_ms` in 50 ms steps, delivering
    /// messages at once; `silent` nodes neither act nor receive.
    fn run(&mut self, from_ms: u64, to_ms: u64, silent: &[usize], electra: bool) {
        let mut now = from_ms;
        let mut vc_id = 0u64;
        while now < to_ms {
            let mut queue: VecDeque<(usize, Event<Spec>)> = VecDeque::new();
            for i in 0..4 {
                if !silent.contains(&i) {
                    queue.push_back((i, Event::Tick));
                }
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
                for node in (0..4).filter(|n| !silent.contains(n)) {
                    let slot = self.cores[node].slot_at(now);
                    self.proposal_requests(node, now, slot, &mut queue, &mut vc_id);
                }
            }
            if self.aggregation {
                for node in (0..4).filter(|n| !silent.contains(n)) {
                    let slot = self.cores[node].slot_at(now);
                    self.aggregation_requests(node, now, slot, &mut queue, &mut vc_id);
                }
            }
            self.drain(now, &mut queue, silent, electra, &mut vc_id);
            now += 50;
        }
    }

    /// Delivers events, and everything they cause, at `now`.
    fn drain(
        &mut self,
        now: u64,
        queue: &mut VecDeque<(usize, Event<Spec>)>,
        silent: &[usize],
        electra: bool,
        vc_id: &mut u64,
    ) {
        while let Some((node, event)) = queue.pop_front() {
            let actions = self.cores[node].handle(now, event);
            for action in actions {
                self.route(node, now, action, queue, silent, electra, vc_id);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn route(
        &mut self,
        node: usize,
        now: u64,
        action: Action<Spec>,
        queue: &mut VecDeque<(usize, Event<Spec>)>,
        silent: &[usize],
        electra: bool,
        vc_id: &mut u64,
    ) {
        let peers: Vec<usize> = (0..4)
            .filter(|p| *p != node && !silent.contains(p))
            .collect();
        match action {
            Action::ResolveIndices(keys) => {
                let found = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (*k, ValidatorIndex(i as u64 + 100)))
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
                        validator_index: ValidatorIndex(i as u64 + 100),
                        validator_sync_committee_indices: vec![i as u64],
                    })
                    .collect();
                queue.push_back((
                    node,
                    Event::Duties {
                        epoch,
                        attester: duties(epoch, &self.groups),
                        sync,
                    },
                ));
            }
            Action::ResolveProposers { epoch } => {
                let duties = if self.proposals {
                    (0..8)
                        .map(|i| ProposerDuty {
                            pubkey: PublicKeyBytes::from(self.groups[i].to_bytes()),
                            validator_index: ValidatorIndex(100 + i as u64),
                            slot: Slot(epoch.0 * 8 + i as u64),
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
                let aggregates = requests
                    .iter()
                    .map(|(committee, root)| {
                        let data = data_for(duty.slot, *committee, electra);
                        assert_eq!(data.tree_hash_root(), *root, "the decided data's root");
                        (*committee, aggregate_of(data, *committee, electra))
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
                    .map(|sub| {
                        let mut bits = ssz_types::BitVector::new();
                        bits.set(0, true).expect("bit");
                        SyncCommitteeContribution {
                            slot: duty.slot,
                            beacon_block_root: head,
                            subcommittee_index: *sub,
                            aggregation_bits: bits,
                            signature: SignatureBytes::from([0xc0; 96]),
                        }
                    })
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
                let proposer = ValidatorIndex(100 + duty.slot.0 % 8);
                let fork = self
                    .network
                    .fork_at(duty.slot.epoch(8))
                    .expect("a known fork");
                let mut block = block_at(fork, duty.slot, proposer, randao_reveal, graffiti);
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
                            from: node as u32,
                            message: message.clone(),
                        },
                    ));
                }
            }
            Action::ConsensusSend { to, message } => {
                if !silent.contains(&(to as usize)) {
                    queue.push_back((
                        to as usize,
                        Event::Consensus {
                            from: node as u32,
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
                            from: node as u32,
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
            Action::Reply { result, .. } => {
                // The validator client signs decided data with its share.
                if let Ok(VcResponse::AttestationData(data)) = result {
                    let attestations = self.sign_attestations(node, data, electra);
                    *vc_id += 1;
                    queue.push_back((
                        node,
                        Event::Vc {
                            id: *vc_id,
                            request: VcRequest::Attestations(attestations),
                        },
                    ));
                } else if let Err(failure) = result {
                    panic!("node {node} refused its validator client at {now}: {failure:?}");
                } else if let Ok(other) = result {
                    if let Some(request) = self.aggregate_reply(node, &other) {
                        *vc_id += 1;
                        queue.push_back((
                            node,
                            Event::Vc {
                                id: *vc_id,
                                request,
                            },
                        ));
                    }
                    self.replies.push((node, other));
                }
            }
            Action::Outcome { duty, outcome } => self.outcomes.push((node, duty.kind, outcome)),
            Action::Dropped { from, reason, .. } => self.dropped.push((node, from, reason)),
            Action::Refused { reason, .. } => panic!("refused: {reason}"),
        }
        let slot = self.cores[node].slot_at(now);
        // Each validator client asks for data at a third of the slot, and
        // its sync-committee members sign the head.
        let third = self.cores[node].slot_start_ms(slot) + SLOT_MS / 3;
        if (third..third + 50).contains(&now) && self.asked.insert((node, slot.0)) {
            // Validator s of the epoch attests in slot s, committee s mod 2.
            {
                let committee = slot.0 % 8 % 2;
                *vc_id += 1;
                queue.push_back((
                    node,
                    Event::Vc {
                        id: *vc_id,
                        request: VcRequest::AttestationData {
                            slot,
                            committee_index: CommitteeIndex(committee),
                        },
                    },
                ));
            }
            let messages = (0..2).map(|v| self.sign_sync(node, v, slot)).collect();
            *vc_id += 1;
            queue.push_back((
                node,
                Event::Vc {
                    id: *vc_id,
                    request: VcRequest::SyncMessages(messages),
                },
            ));
        }
    }

    fn sign_attestations(
        &self,
        node: usize,
        data: AttestationData,
        electra: bool,
    ) -> Vec<VcAttestation> {
        duties(data.slot.epoch(8), &self.groups)
            .iter()
            .enumerate()
            .filter(|(_, d)| d.slot == data.slot && (electra || d.committee_index == data.index))
            .map(|(i, d)| {
                let domain =
                    self.network
                        .domain_at(DOMAIN_BEACON_ATTESTER, data.target.epoch, self.gvr);
                let root = compute_signing_root(&data, domain);
                let partial = self.shares[node][i].sign(root.as_slice());
                VcAttestation {
                    data,
                    attester: if electra {
                        Attester::Index(d.validator_index)
                    } else {
                        Attester::Position(d.validator_committee_index)
                    },
                    committee_index: d.committee_index,
                    signature: SignatureBytes::from(partial.signature.to_bytes()),
                }
            })
            .collect()
    }

    /// The validator clients' aggregation steps: selection proofs at the
    /// slot's start, aggregates asked for at two thirds.
    fn aggregation_requests(
        &mut self,
        node: usize,
        now: u64,
        slot: Slot,
        queue: &mut VecDeque<(usize, Event<Spec>)>,
        vc_id: &mut u64,
    ) {
        let start = self.cores[node].slot_start_ms(slot);
        let epoch = slot.epoch(8);
        // A little after the start: the first slot's duties are known by then.
        if (start + 100..start + 150).contains(&now) && self.asked.insert((node + 100, slot.0)) {
            let domain = self
                .network
                .domain_at(DOMAIN_SELECTION_PROOF, epoch, self.gvr);
            let root = compute_signing_root(&slot, domain);
            let selections: Vec<BeaconCommitteeSelection> = duties(epoch, &self.groups)
                .iter()
                .enumerate()
                .filter(|(_, d)| d.slot == slot)
                .map(|(i, d)| BeaconCommitteeSelection {
                    validator_index: d.validator_index,
                    slot,
                    selection_proof: self.partial(node, i, root),
                })
                .collect();
            let domain =
                self.network
                    .domain_at(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch, self.gvr);
            let root = compute_signing_root(
                &SyncAggregatorSelectionData {
                    slot,
                    subcommittee_index: 0,
                },
                domain,
            );
            let sync: Vec<SyncCommitteeSelection> = (0..2)
                .map(|v| SyncCommitteeSelection {
                    validator_index: ValidatorIndex(v as u64 + 100),
                    slot,
                    subcommittee_index: 0,
                    selection_proof: self.partial(node, v, root),
                })
                .collect();
            for request in [
                VcRequest::BeaconCommitteeSelections(selections),
                VcRequest::SyncCommitteeSelections(sync),
            ] {
                *vc_id += 1;
                queue.push_back((
                    node,
                    Event::Vc {
                        id: *vc_id,
                        request,
                    },
                ));
            }
        }
        let two_thirds = start + 2 * SLOT_MS / 3;
        if (two_thirds..two_thirds + 50).contains(&now) && self.asked.insert((node + 200, slot.0)) {
            let committee = CommitteeIndex(slot.0 % 8 % 2);
            let electra = self.network.fork_at(epoch).expect("fork").electra_enabled();
            let data = data_for(slot, committee, electra);
            for request in [
                VcRequest::AggregateAttestation {
                    slot,
                    data_root: data.tree_hash_root(),
                    committee_index: Some(committee),
                },
                VcRequest::SyncContribution {
                    slot,
                    subcommittee_index: 0,
                },
            ] {
                *vc_id += 1;
                queue.push_back((
                    node,
                    Event::Vc {
                        id: *vc_id,
                        request,
                    },
                ));
            }
        }
    }

    /// Each validator client asks for its block a little after the slot
    /// starts, with its share's randao reveal.
    fn proposal_requests(
        &mut self,
        node: usize,
        now: u64,
        slot: Slot,
        queue: &mut VecDeque<(usize, Event<Spec>)>,
        vc_id: &mut u64,
    ) {
        let start = self.cores[node].slot_start_ms(slot) + 100;
        if (start..start + 50).contains(&now) && self.asked.insert((node + 300, slot.0)) {
            let epoch = slot.epoch(8);
            let domain = self.network.domain_at(DOMAIN_RANDAO, epoch, self.gvr);
            let reveal = self.partial(
                node,
                (slot.0 % 8) as usize,
                compute_signing_root(&epoch, domain),
            );
            *vc_id += 1;
            queue.push_back((
                node,
                Event::Vc {
                    id: *vc_id,
                    request: VcRequest::ProduceBlock {
                        slot,
                        randao_reveal: reveal,
                        graffiti: None,
                        builder_boost_factor: None,
                    },
                },
            ));
        }
    }

    fn partial(&self, node: usize, validator: usize, root: Root) -> SignatureBytes {
        SignatureBytes::from(
            self.shares[node][validator]
                .sign(root.as_slice())
                .signature
                .to_bytes(),
        )
    }

    /// What a validator client does with an answer: keeps combined proofs,
    /// signs a decided aggregate or contribution.
    fn aggregate_reply(
        &mut self,
        node: usize,
        reply: &VcResponse<Spec>,
    ) -> Option<VcRequest<Spec>> {
        match reply {
            VcResponse::BeaconCommitteeSelections(list) => {
                for s in list {
                    self.proofs
                        .insert((node, s.validator_index.0, s.slot, None), s.selection_proof);
                }
                None
            }
            VcResponse::SyncCommitteeSelections(list) => {
                for s in list {
                    self.proofs.insert(
                        (
                            node,
                            s.validator_index.0,
                            s.slot,
                            Some(s.subcommittee_index),
                        ),
                        s.selection_proof,
                    );
                }
                None
            }
            VcResponse::Aggregate(aggregate) => {
                let slot = aggregate.data().slot;
                let epoch = slot.epoch(8);
                let domain = self
                    .network
                    .domain_at(DOMAIN_AGGREGATE_AND_PROOF, epoch, self.gvr);
                let committee = match aggregate.as_ref() {
                    Attestation::Base(a) => a.data.index,
                    Attestation::Electra(a) => CommitteeIndex(
                        a.committee_bits
                            .iter()
                            .position(|b| b)
                            .expect("a committee") as u64,
                    ),
                };
                let signed = duties(epoch, &self.groups)
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.slot == slot && d.committee_index == committee)
                    .map(|(i, d)| {
                        let proof = self.proofs[&(node, d.validator_index.0, slot, None)];
                        let message = match aggregate.as_ref().clone() {
                            Attestation::Base(aggregate) => {
                                AggregateAndProof::Base(AggregateAndProofBase {
                                    aggregator_index: d.validator_index,
                                    aggregate,
                                    selection_proof: proof,
                                })
                            }
                            Attestation::Electra(aggregate) => {
                                AggregateAndProof::Electra(AggregateAndProofElectra {
                                    aggregator_index: d.validator_index,
                                    aggregate,
                                    selection_proof: proof,
                                })
                            }
                        };
                        let root = compute_signing_root(&message.tree_hash_root(), domain);
                        VcSigned {
                            message,
                            signature: self.partial(node, i, root),
                        }
                    })
                    .collect();
                Some(VcRequest::AggregateAndProofs(signed))
            }
            VcResponse::Block(block) => {
                let (slot, root) = match &block.data {
                    ProducedBlockData::Contents(c) => (c.block.slot(), c.block.tree_hash_root()),
                    ProducedBlockData::Full(b) => (b.slot(), b.tree_hash_root()),
                    ProducedBlockData::Blinded(b) => (b.slot(), b.tree_hash_root()),
                };
                let domain =
                    self.network
                        .domain_at(DOMAIN_BEACON_PROPOSER, slot.epoch(8), self.gvr);
                let signing_root = compute_signing_root(&root, domain);
                Some(VcRequest::PublishBlock {
                    slot,
                    block_root: root,
                    signature: self.partial(node, (slot.0 % 8) as usize, signing_root),
                })
            }
            VcResponse::Contribution(contribution) => {
                let slot = contribution.slot;
                let domain =
                    self.network
                        .domain_at(DOMAIN_CONTRIBUTION_AND_PROOF, slot.epoch(8), self.gvr);
                let signed = (0..2)
                    .map(|v| {
                        let message = ContributionAndProof {
                            aggregator_index: ValidatorIndex(v as u64 + 100),
                            contribution: contribution.as_ref().clone(),
                            selection_proof: self.proofs[&(node, v as u64 + 100, slot, Some(0))],
                        };
                        let root = compute_signing_root(&message, domain);
                        SignedContributionAndProof {
                            message,
                            signature: self.partial(node, v, root),
                        }
                    })
                    .collect();
                Some(VcRequest::ContributionAndProofs(signed))
            }
            _ => None,
        }
    }

    fn sign_sync(&self, node: usize, validator: usize, slot: Slot) -> SyncCommitteeMessage {
        let head = Root::repeat_byte(0x40 + slot.0 as u8);
        let domain = self
            .network
            .domain_at(DOMAIN_SYNC_COMMITTEE, slot.epoch(8), self.gvr);
        let root = compute_signing_root(&head, domain);
        SyncCommitteeMessage {
            slot,
            beacon_block_root: head,
            validator_index: ValidatorIndex(validator as u64 + 100),
            signature: SignatureBytes::from(
                self.shares[node][validator]
                    .sign(root.as_slice())
                    .signature
                    .to_bytes(),
            ),
        }
    }
}

/// An aggregate of the first three members of a committee of 16.
fn aggregate_of(
    data: AttestationData,
    committee: CommitteeIndex,
    electra: bool,
) -> Attestation<Spec> {
    let signature = SignatureBytes::from([0xc0; 96]);
    fn bits<N: ssz_types::typenum::Unsigned + Clone>() -> ssz_types::BitList<N> {
        let mut bits = ssz_types::BitList::with_capacity(16).expect("bits");
        for i in 0..3 {
            bits.set(i, true).expect("bit");
        }
        bits
    }
    if electra {
        let mut committee_bits = ssz_types::BitVector::new();
        committee_bits
            .set(committee.0 as usize, true)
            .expect("committee bit");
        Attestation::Electra(AttestationElectra {
            aggregation_bits: bits(),
            data,
            signature,
            committee_bits,
        })
    } else {
        Attestation::Base(AttestationBase {
            aggregation_bits: bits(),
            data,
            signature,
        })
    }
}

/// Counts of verified (attestations, sync messages, aggregates,
/// contributions) the nodes submitted.
fn verify_submissions(cluster: &Cluster) -> (usize, usize, usize, usize) {
    let (mut attestations, mut sync, mut aggregates, mut contributions) = (0, 0, 0, 0);
    let mut blocks = 0;
    let verify = |key: &PublicKey, root: Root, signature: &SignatureBytes| {
        Signature::from_bytes(signature.as_slice())
            .expect("signature")
            .verify(key, root.as_slice())
    };
    for (node, submission) in &cluster.submissions {
        match submission {
            Submission::Block(
                fork,
                full @ (BlockSubmission::Contents(_) | BlockSubmission::Full(_)),
            ) => {
                let (signed, blobs) = match full {
                    BlockSubmission::Contents(c) => {
                        (&c.signed_block, Some((c.blobs.len(), c.kzg_proofs.len())))
                    }
                    BlockSubmission::Full(signed) => (&**signed, None),
                    BlockSubmission::Blinded(_) => unreachable!("matched above"),
                };
                let block = &signed.message;
                assert_eq!(
                    block.fork_name(),
                    *fork,
                    "node {node}: published as its fork"
                );
                // Deneb on, a full block travels with its blobs; before, alone.
                assert_eq!(
                    blobs,
                    (*fork >= ForkName::Deneb).then_some((1, 1)),
                    "node {node}"
                );
                let key = &cluster.groups[(block.proposer_index().0 - 100) as usize];
                let epoch = block.slot().epoch(8);
                let domain = cluster
                    .network
                    .domain_at(DOMAIN_BEACON_PROPOSER, epoch, cluster.gvr);
                let root = compute_signing_root(&block.tree_hash_root(), domain);
                assert!(verify(key, root, &signed.signature), "node {node}: block");
                let domain = cluster.network.domain_at(DOMAIN_RANDAO, epoch, cluster.gvr);
                assert!(
                    verify(
                        key,
                        compute_signing_root(&epoch, domain),
                        &block.randao_reveal()
                    ),
                    "node {node}: randao"
                );
                blocks += 1;
            }
            Submission::Block(_, BlockSubmission::Blinded(signed)) => {
                let block = &signed.message;
                let key = &cluster.groups[(block.proposer_index().0 - 100) as usize];
                let domain = cluster.network.domain_at(
                    DOMAIN_BEACON_PROPOSER,
                    block.slot().epoch(8),
                    cluster.gvr,
                );
                let root = compute_signing_root(&block.tree_hash_root(), domain);
                assert!(
                    verify(key, root, &signed.signature),
                    "node {node}: blinded block"
                );
                blocks += 1;
            }
            Submission::Exit(_) | Submission::Registrations(_) => {
                panic!("nothing here exits or registers")
            }
            Submission::Aggregate(_, signed) => {
                let (message, signature): (AggregateAndProof<Spec>, SignatureBytes) = match signed {
                    AggregateSubmission::Base(s) => {
                        (AggregateAndProof::Base(s.message.clone()), s.signature)
                    }
                    AggregateSubmission::Electra(s) => {
                        (AggregateAndProof::Electra(s.message.clone()), s.signature)
                    }
                };
                let (index, slot, proof) = match &message {
                    AggregateAndProof::Base(m) => {
                        (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
                    }
                    AggregateAndProof::Electra(m) => {
                        (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
                    }
                };
                let key = &cluster.groups[(index.0 - 100) as usize];
                let epoch = slot.epoch(8);
                let domain =
                    cluster
                        .network
                        .domain_at(DOMAIN_AGGREGATE_AND_PROOF, epoch, cluster.gvr);
                let root = compute_signing_root(&message.tree_hash_root(), domain);
                assert!(verify(key, root, &signature), "node {node}: aggregate");
                let domain = cluster
                    .network
                    .domain_at(DOMAIN_SELECTION_PROOF, epoch, cluster.gvr);
                let proof_root = compute_signing_root(&slot, domain);
                assert!(
                    verify(key, proof_root, &proof),
                    "node {node}: selection proof"
                );
                aggregates += 1;
            }
            Submission::Contribution(signed) => {
                let message = &signed.message;
                let key = &cluster.groups[(message.aggregator_index.0 - 100) as usize];
                let slot = message.contribution.slot;
                let domain = cluster.network.domain_at(
                    DOMAIN_CONTRIBUTION_AND_PROOF,
                    slot.epoch(8),
                    cluster.gvr,
                );
                let root = compute_signing_root(message, domain);
                assert!(
                    verify(key, root, &signed.signature),
                    "node {node}: contribution"
                );
                contributions += 1;
            }
            Submission::Attestation(_, attestation) => {
                let (data, signature, validator) = match attestation {
                    AttestationSubmission::Single(single) => (
                        single.data,
                        single.signature,
                        (single.attester_index.0 - 100) as usize,
                    ),
                    AttestationSubmission::Base(base) => {
                        let bits = match base.as_ref() {
                            phalanx_eth::attestation::Attestation::Base(b) => &b.aggregation_bits,
                            other => panic!("electra layout before electra: {other:?}"),
                        };
                        assert_eq!(bits.num_set_bits(), 1, "one attester per attestation");
                        let position = bits.iter().position(|b| b).expect("a bit");
                        (*base.data(), *base.signature(), position)
                    }
                };
                let domain = cluster.network.domain_at(
                    DOMAIN_BEACON_ATTESTER,
                    data.target.epoch,
                    cluster.gvr,
                );
                let root = compute_signing_root(&data, domain);
                let signature = Signature::from_bytes(signature.as_slice()).expect("signature");
                assert!(
                    signature.verify(&cluster.groups[validator], root.as_slice()),
                    "node {node}: attestation of validator {validator} does not verify"
                );
                attestations += 1;
            }
            Submission::SyncMessage(message) => {
                let validator = (message.validator_index.0 - 100) as usize;
                let domain = cluster.network.domain_at(
                    DOMAIN_SYNC_COMMITTEE,
                    message.slot.epoch(8),
                    cluster.gvr,
                );
                let root = compute_signing_root(&message.beacon_block_root, domain);
                let signature =
                    Signature::from_bytes(message.signature.as_slice()).expect("signature");
                assert!(signature.verify(&cluster.groups[validator], root.as_slice()));
                sync += 1;
            }
        }
    }
    assert!(
        blocks == 0 || cluster.proposals,
        "blocks published without proposals"
    );
    PUBLISHED.with(|p| p.set(blocks));
    (attestations, sync, aggregates, contributions)
}

thread_local! {
    /// Blocks the last [`verify_submissions`] checked.
    static PUBLISHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A block of `fork` as a beacon node would produce it: from Deneb on with
/// one (zero) blob, from Bellatrix on with a pre-merge payload.
fn block_at(
    fork: ForkName,
    slot: Slot,
    proposer: ValidatorIndex,
    randao: SignatureBytes,
    graffiti: Option<Root>,
) -> ProducedBlock<Spec> {
    let zero = Root::ZERO;
    let mut body = serde_json::json!({
        "randao_reveal": randao,
        "eth1_data": {"deposit_root": zero, "deposit_count": "0", "block_hash": zero},
        "graffiti": graffiti.unwrap_or(zero),
        "proposer_slashings": [],
        "attester_slashings": [],
        "attestations": [],
        "deposits": [],
        "voluntary_exits": [],
    });
    let mut payload = serde_json::json!({
        "parent_hash": zero,
        "fee_recipient": "0x0000000000000000000000000000000000000000",
        "state_root": zero,
        "receipts_root": zero,
        "logs_bloom": format!("0x{}", "00".repeat(256)),
        "prev_randao": zero,
        "block_number": slot.0.to_string(),
        "gas_limit": "30000000",
        "gas_used": "0",
        "timestamp": "0",
        "extra_data": "0x",
        "base_fee_per_gas": "7",
        "block_hash": zero,
        "transactions": [],
    });
    if fork >= ForkName::Altair {
        body["sync_aggregate"] = serde_json::json!({
            "sync_committee_bits": format!("0x{}", "00".repeat(4)),
            "sync_committee_signature": SignatureBytes::from([0xc0; 96]),
        });
    }
    if fork >= ForkName::Capella {
        payload["withdrawals"] = serde_json::json!([]);
    }
    if fork >= ForkName::Deneb {
        payload["blob_gas_used"] = serde_json::json!("0");
        payload["excess_blob_gas"] = serde_json::json!("0");
    }
    if fork >= ForkName::Bellatrix {
        body["execution_payload"] = payload;
    }
    if fork >= ForkName::Capella {
        body["bls_to_execution_changes"] = serde_json::json!([]);
    }
    if fork >= ForkName::Deneb {
        body["blob_kzg_commitments"] = serde_json::json!([format!("0x{}", "c0".repeat(48))]);
    }
    if fork >= ForkName::Electra {
        body["execution_requests"] =
            serde_json::json!({"deposits": [], "withdrawals": [], "consolidations": []});
    }
    let block = serde_json::json!({
        "slot": slot.0.to_string(),
        "proposer_index": proposer.0.to_string(),
        "parent_root": Root::repeat_byte(slot.0 as u8),
        "state_root": zero,
        "body": body,
    });
    let block = BeaconBlock::from_json_value(block, fork).expect("a block of the fork");
    let data = if fork >= ForkName::Deneb {
        ProducedBlockData::Contents(BlockContents {
            block,
            kzg_proofs: vec![KzgProof::from([0xc0; 48])],
            blobs: vec![Blob(ssz_types::FixedVector::from(vec![0u8; 131_072]))],
        })
    } else {
        ProducedBlockData::Full(block)
    };
    ProducedBlock {
        fork,
        data,
        execution_payload_value: Default::default(),
        consensus_block_value: Default::default(),
    }
}

#[test]
fn four_nodes_attest_and_sign_sync_messages_on_electra() {
    let mut cluster = cluster(ForkName::Electra, 8);
    // Two epochs of eight slots.
    cluster.run(GENESIS_MS, GENESIS_MS + 16 * SLOT_MS, &[], true);
    let (attestations, sync, _, _) = verify_submissions(&cluster);
    // Every node submits every validator's attestation once per epoch.
    assert_eq!(attestations, 4 * 8 * 2);
    // Two sync-committee members in each of the 16 slots.
    assert_eq!(sync, 4 * 2 * 16);
    assert!(cluster.dropped.is_empty(), "{:?}", cluster.dropped);
    let failed: Vec<_> = cluster
        .outcomes
        .iter()
        .filter(|(_, _, o)| *o != Outcome::Success)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(cluster.outcomes.len() >= 4 * 16 * 2 - 8);
    // A reorganisation makes the node resolve the epoch's duties again,
    // and the next epoch's.
    let now = GENESIS_MS + 16 * SLOT_MS + 100;
    let core = &mut cluster.cores[0];
    // The epoch's first tick asks for the next epoch's duties; then nothing.
    core.handle(now, Event::Tick);
    assert!(!core
        .handle(now, Event::Tick)
        .iter()
        .any(|a| matches!(a, Action::ResolveDuties { .. })));
    core.handle(now, Event::Reorg { epoch: Epoch(2) });
    let epochs: Vec<Epoch> = core
        .handle(now, Event::Tick)
        .into_iter()
        .filter_map(|a| match a {
            Action::ResolveDuties { epoch, .. } => Some(epoch),
            _ => None,
        })
        .collect();
    assert_eq!(epochs, vec![Epoch(2), Epoch(3)]);
}

#[test]
fn the_core_asks_for_a_tick_at_every_duty_start() {
    let cluster = cluster(ForkName::Electra, 4);
    let core = &cluster.cores[0];
    let start = core.slot_start_ms(Slot(2));
    let (third, two_thirds) = (SLOT_MS / 3, 2 * SLOT_MS / 3);
    assert!(HOUSEKEEPING_MS < third, "the cases below assume it");
    // Just before a start, the tick falls on it, to the millisecond.
    assert_eq!(core.next_tick_ms(start + third - 10), start + third);
    assert_eq!(
        core.next_tick_ms(start + two_thirds - 1),
        start + two_thirds
    );
    assert_eq!(core.next_tick_ms(start + SLOT_MS - 5), start + SLOT_MS);
    // At a start the next one is further away than housekeeping allows.
    assert_eq!(
        core.next_tick_ms(start + third),
        start + third + HOUSEKEEPING_MS
    );
}

#[test]
fn aggregates_and_contributions_combine_on_deneb_and_electra() {
    for (fork, electra) in [(ForkName::Deneb, false), (ForkName::Electra, true)] {
        let mut cluster = cluster(fork, 8);
        cluster.aggregation = true;
        cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[], electra);
        let (attestations, sync, aggregates, contributions) = verify_submissions(&cluster);
        assert_eq!((attestations, sync), (4 * 8, 4 * 2 * 8), "{fork}");
        // Committees of 16 make every attester an aggregator (modulo 1),
        // and the minimal preset's subcommittees of 8 every sync member:
        // one aggregate per validator, two contributions per slot, from
        // each of the four nodes.
        assert_eq!(aggregates, 4 * 8, "{fork}");
        assert_eq!(contributions, 4 * 2 * 8, "{fork}");
        let failed: Vec<_> = cluster
            .outcomes
            .iter()
            .filter(|(_, _, o)| *o != Outcome::Success)
            .collect();
        assert!(failed.is_empty(), "{fork}: {failed:?}");
        assert!(cluster.dropped.is_empty(), "{:?}", cluster.dropped);
        // An aggregate whose selection proof is not the cluster's combined
        // one (here: the share's own) is refused, not forwarded.
        let last = cluster
            .submissions
            .iter()
            .rev()
            .find_map(|(node, s)| match s {
                Submission::Aggregate(_, signed) if *node == 0 => Some(signed.clone()),
                _ => None,
            })
            .expect("an aggregate of node 0");
        let mut message = match last {
            AggregateSubmission::Base(s) => AggregateAndProof::Base(s.message),
            AggregateSubmission::Electra(s) => AggregateAndProof::Electra(s.message),
        };
        let (slot, validator) = match &mut message {
            AggregateAndProof::Base(m) => {
                let slot = m.aggregate.data.slot;
                m.selection_proof = own_selection_proof(&cluster, slot, m.aggregator_index);
                (slot, m.aggregator_index)
            }
            AggregateAndProof::Electra(m) => {
                let slot = m.aggregate.data.slot;
                m.selection_proof = own_selection_proof(&cluster, slot, m.aggregator_index);
                (slot, m.aggregator_index)
            }
        };
        let domain =
            cluster
                .network
                .domain_at(DOMAIN_AGGREGATE_AND_PROOF, slot.epoch(8), cluster.gvr);
        let root = compute_signing_root(&message.tree_hash_root(), domain);
        let signature = cluster.partial(0, (validator.0 - 100) as usize, root);
        let now = cluster.cores[0].slot_start_ms(slot) + SLOT_MS - 100;
        let actions = cluster.cores[0].handle(
            now,
            Event::Vc {
                id: 1,
                request: VcRequest::AggregateAndProofs(vec![VcSigned { message, signature }]),
            },
        );
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Reply { result: Err(f), .. }
                    if f.status == 400 && f.failures[0].1.contains("combined")
            )),
            "{fork}: {actions:?}"
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::SendPartials(_))));
    }
}

/// Operator 0's own (uncombined) selection proof of a validator.
fn own_selection_proof(cluster: &Cluster, slot: Slot, validator: ValidatorIndex) -> SignatureBytes {
    let domain = cluster
        .network
        .domain_at(DOMAIN_SELECTION_PROOF, slot.epoch(8), cluster.gvr);
    cluster.partial(
        0,
        (validator.0 - 100) as usize,
        compute_signing_root(&slot, domain),
    )
}

#[test]
fn blocks_with_blobs_are_proposed_on_deneb_with_one_node_silent() {
    let mut cluster = cluster(ForkName::Deneb, 8);
    cluster.proposals = true;
    cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3], false);
    verify_submissions(&cluster);
    // Every slot's block is published by each of the three running nodes.
    assert_eq!(PUBLISHED.with(|p| p.get()), 3 * 8);
    let failed: Vec<_> = cluster
        .outcomes
        .iter()
        .filter(|(_, kind, o)| *kind == DutyType::Proposer && *o != Outcome::Success)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // The same with a builder's blinded blocks: the VC signs the blinded
    // block, the node publishes it blinded.
    let mut builder = self::cluster(ForkName::Deneb, 8);
    builder.proposals = true;
    builder.blinded = true;
    builder.run(GENESIS_MS, GENESIS_MS + 3 * SLOT_MS, &[], false);
    verify_submissions(&builder);
    assert_eq!(PUBLISHED.with(|p| p.get()), 4 * 3);
    // A signature of any block but the decided one is refused.
    let slot = Slot(5);
    let at = cluster.cores[0].slot_start_ms(slot) + 500;
    let actions = cluster.cores[0].handle(
        at,
        Event::Vc {
            id: 1,
            request: VcRequest::PublishBlock {
                slot,
                block_root: Root::repeat_byte(9),
                signature: SignatureBytes::from([0xc0; 96]),
            },
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { result: Err(f), .. } if f.status == 400 && f.message.contains("differs")
    )));
}

#[test]
fn three_of_four_complete_every_duty_on_capella() {
    let mut cluster = cluster(ForkName::Capella, 8);
    cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3], false);
    let (attestations, sync, _, _) = verify_submissions(&cluster);
    assert_eq!(attestations, 3 * 8);
    assert_eq!(sync, 3 * 2 * 8);
    assert!(cluster
        .outcomes
        .iter()
        .all(|(_, _, o)| *o == Outcome::Success));
}

#[test]
fn bad_partials_are_refused_or_dropped_and_named() {
    let mut cluster = cluster(ForkName::Electra, 8);
    // Slot 1's attestation is decided by two thirds into the slot.
    let now = GENESIS_MS + SLOT_MS + 2 * SLOT_MS / 3 - 50;
    cluster.run(GENESIS_MS, now, &[], true);
    let data = data_for(Slot(1), CommitteeIndex(1), true);
    let attest = |signature: SignatureBytes, data: AttestationData| VcAttestation {
        data,
        attester: Attester::Index(ValidatorIndex(101)),
        committee_index: CommitteeIndex(1),
        signature,
    };
    let domain = cluster
        .network
        .domain_at(DOMAIN_BEACON_ATTESTER, data.target.epoch, cluster.gvr);
    let root = compute_signing_root(&data, domain);
    let other_share = cluster.shares[1][1]
        .sign(root.as_slice())
        .signature
        .to_bytes();
    let mut other_data = data;
    other_data.beacon_block_root = Root::repeat_byte(0xee);
    let own = cluster.shares[0][1]
        .sign(root.as_slice())
        .signature
        .to_bytes();
    let cases = [
        (
            attest(SignatureBytes::repeat_byte(0x11), data),
            "not a valid BLS signature",
        ),
        (
            attest(SignatureBytes::from(other_share), data),
            "does not verify under this operator's share",
        ),
        (
            attest(SignatureBytes::from(own), other_data),
            "differs from the data the cluster decided",
        ),
    ];
    for (attestation, expected) in cases {
        let actions = cluster.cores[0].handle(
            now,
            Event::Vc {
                id: 1,
                request: VcRequest::Attestations(vec![attestation]),
            },
        );
        let reply = actions
            .iter()
            .find_map(|a| match a {
                Action::Reply { result, .. } => Some(result.clone()),
                _ => None,
            })
            .expect("a reply");
        let failure = reply.expect_err("refused");
        assert_eq!(failure.status, 400);
        assert!(failure.failures[0].1.contains(expected), "{failure:?}");
        assert!(!actions.iter().any(|a| matches!(a, Action::SendPartials(_))));
    }
    // A peer's partial signed with another operator's share is dropped and
    // its sender named.
    let forged = phalanx_node::parsigex::PartialMessage {
        duty: phalanx_node::duty::Duty::new(Slot(1), DutyType::Attester),
        validator: cluster.groups[1].to_bytes().to_vec(),
        signing_root: root.0,
        signature: cluster.shares[2][1]
            .sign(root.as_slice())
            .signature
            .to_bytes()
            .to_vec(),
        block_root: None,
        registration: None,
    };
    let actions = cluster.cores[0].handle(
        now,
        Event::Partials {
            from: 1,
            partials: vec![forged],
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Dropped { from: 1, reason, .. } if reason == "invalid_partial"
    )));
}

#[test]
fn a_new_registration_combines_on_a_node_whose_operator_did_not_sign() {
    let mut cluster = cluster(ForkName::Electra, 2);
    let now = GENESIS_MS + SLOT_MS + 100;
    cluster.run(GENESIS_MS, now, &[], true);
    let message = phalanx_eth::validator::ValidatorRegistration {
        fee_recipient: phalanx_eth::ExecutionAddress::repeat_byte(0xaa),
        gas_limit: 36_000_000,
        // Agreed, and passed: in the epoch of the duty below.
        timestamp: GENESIS_MS / 1000 + 5,
        pubkey: PublicKeyBytes::from(cluster.groups[1].to_bytes()),
    };
    let root = compute_signing_root(
        &message,
        phalanx_eth::signing::application_builder_domain(cluster.network.genesis_fork_version),
    );
    let partial = |operator: usize,
                   registration: &phalanx_eth::validator::ValidatorRegistration| {
        phalanx_node::parsigex::PartialMessage {
            duty: phalanx_node::duty::Duty::new(Slot(0), DutyType::BuilderRegistration),
            validator: cluster.groups[1].to_bytes().to_vec(),
            signing_root: root.0,
            signature: cluster.shares[operator][1]
                .sign(root.as_slice())
                .signature
                .to_bytes()
                .to_vec(),
            block_root: None,
            registration: Some(ssz::Encode::as_ssz_bytes(registration)),
        }
    };
    // A partial whose message does not give its root, or whose duty is not
    // its timestamp's epoch, is dropped; so is one for a slot far ahead.
    let mut other = message.clone();
    other.gas_limit = 1;
    let mut wrong_epoch = partial(0, &message);
    wrong_epoch.duty.slot = Slot(8);
    let mut far_ahead = partial(0, &message);
    far_ahead.duty.slot = Slot(64);
    for (forged, reason) in [
        (partial(0, &other), "registration_mismatch"),
        (wrong_epoch, "registration_mismatch"),
        (far_ahead, "duty_out_of_window"),
    ] {
        let actions = cluster.cores[3].handle(
            now,
            Event::Partials {
                from: 0,
                partials: vec![forged],
            },
        );
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Dropped { from: 0, reason: r, .. } if r == reason
            )),
            "{reason}: {actions:?}"
        );
    }
    // Operators 0, 1 and 2 signed; operator 3's node combines and keeps
    // the new registration from their partials alone.
    let mut registered = Vec::new();
    for operator in 0..3 {
        let actions = cluster.cores[3].handle(
            now,
            Event::Partials {
                from: operator as u32,
                partials: vec![partial(operator, &message)],
            },
        );
        registered.extend(actions.into_iter().filter_map(|a| match a {
            Action::Registered(signed) => Some(signed),
            _ => None,
        }));
    }
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(registered[0].message, message);
    let signature = Signature::from_bytes(registered[0].signature.as_slice()).expect("decodes");
    assert!(signature.verify(&cluster.groups[1], root.as_slice()));
}

#[test]
fn selection_proofs_combine_across_the_cluster() {
    let mut cluster = cluster(ForkName::Electra, 8);
    let now = GENESIS_MS + SLOT_MS + 100;
    cluster.run(GENESIS_MS, now, &[], true);
    let slot = Slot(2);
    let (network, gvr, shares) = (cluster.network.clone(), cluster.gvr, cluster.shares.clone());
    let selection_root = compute_signing_root(
        &slot,
        network.domain_at(DOMAIN_SELECTION_PROOF, slot.epoch(8), gvr),
    );
    let sync_root = |subcommittee_index| {
        compute_signing_root(
            &SyncAggregatorSelectionData {
                slot,
                subcommittee_index,
            },
            network.domain_at(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, slot.epoch(8), gvr),
        )
    };
    let sign = |node: usize, root: Root| {
        SignatureBytes::from(shares[node][1].sign(root.as_slice()).signature.to_bytes())
    };
    let mut queue = VecDeque::new();
    // Three operators' validator clients ask; the fourth stays silent.
    for node in 0..3 {
        queue.push_back((
            node,
            Event::Vc {
                id: 900 + node as u64,
                request: VcRequest::BeaconCommitteeSelections(vec![BeaconCommitteeSelection {
                    validator_index: ValidatorIndex(101),
                    slot,
                    selection_proof: sign(node, selection_root),
                }]),
            },
        ));
        // Two subcommittees of one validator: each combines on its own.
        queue.push_back((
            node,
            Event::Vc {
                id: 950 + node as u64,
                request: VcRequest::SyncCommitteeSelections(
                    [0, 1]
                        .map(|sub| SyncCommitteeSelection {
                            validator_index: ValidatorIndex(101),
                            slot,
                            subcommittee_index: sub,
                            selection_proof: sign(node, sync_root(sub)),
                        })
                        .to_vec(),
                ),
            },
        ));
    }
    let mut vc_id = 5000;
    cluster.replies.clear();
    cluster.drain(now, &mut queue, &[3], true, &mut vc_id);
    let group = cluster.groups[1];
    let (mut beacon, mut sync) = (0, 0);
    for (node, reply) in &cluster.replies {
        match reply {
            VcResponse::BeaconCommitteeSelections(list) => {
                let proof =
                    Signature::from_bytes(list[0].selection_proof.as_slice()).expect("proof");
                assert!(
                    proof.verify(&group, selection_root.as_slice()),
                    "node {node}"
                );
                beacon += 1;
            }
            VcResponse::SyncCommitteeSelections(list) => {
                for (item, sub) in list.iter().zip([0, 1]) {
                    let proof =
                        Signature::from_bytes(item.selection_proof.as_slice()).expect("proof");
                    assert!(
                        proof.verify(&group, sync_root(sub).as_slice()),
                        "node {node}"
                    );
                }
                sync += 1;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(
        (beacon, sync),
        (3, 3),
        "every asking client gets the combined proofs"
    );
    // A proof for a validator outside the cluster is refused at once.
    let actions = cluster.cores[0].handle(
        now,
        Event::Vc {
            id: 1,
            request: VcRequest::BeaconCommitteeSelections(vec![BeaconCommitteeSelection {
                validator_index: ValidatorIndex(7),
                slot,
                selection_proof: sign(0, selection_root),
            }]),
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { result: Err(f), .. } if f.status == 400
    )));
}

/// Blocks of Phase 0, Altair and Bellatrix (full, and blinded from
/// Bellatrix) go through the same pipeline as later forks' blocks.
#[test]
fn blocks_are_proposed_in_the_forks_before_capella() {
    // Test chains (Lodestar's dev chain among them) start at Altair or
    // earlier: a validator client asks for its blocks there too.
    for fork in [ForkName::Phase0, ForkName::Altair, ForkName::Bellatrix] {
        let mut cluster = cluster(fork, 8);
        cluster.proposals = true;
        cluster.run(GENESIS_MS, GENESIS_MS + 8 * SLOT_MS, &[3], false);
        verify_submissions(&cluster);
        // Every slot's block, published by each of the three running nodes.
        assert_eq!(PUBLISHED.with(|p| p.get()), 3 * 8, "{fork}");
        let failed: Vec<_> = cluster
            .outcomes
            .iter()
            .filter(|(_, kind, o)| *kind == DutyType::Proposer && *o != Outcome::Success)
            .collect();
        assert!(failed.is_empty(), "{fork}: {failed:?}");
    }
    // A builder's blinded blocks exist from Bellatrix on.
    let mut builder = cluster(ForkName::Bellatrix, 8);
    builder.proposals = true;
    builder.blinded = true;
    builder.run(GENESIS_MS, GENESIS_MS + 3 * SLOT_MS, &[], false);
    verify_submissions(&builder);
    assert_eq!(PUBLISHED.with(|p| p.get()), 4 * 3);
}
