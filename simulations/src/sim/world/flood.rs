//! A byzantine operator's flood ([`Fault::ByzantineFlood`]): bursts spread
//! over each slot, each running every strategy of the fault once against
//! every peer. Everything it sends is what an operator with its node key
//! and its key shares can make (or, for the replay of another cluster's
//! messages, what it receives as a member of that cluster), and passes
//! through the simulated links like any other message.

use std::collections::BTreeSet;

use phalanx_consensus::{
    Committee, Kind, LeaderSelection, Message, MessageSignature, OperatorIndex,
    ProposalJustification, RotatingLeader, Round, SignedMessage, Value, ValueHash, Wire,
};
use phalanx_eth::{CommitteeIndex, EthSpec, Root, Slot};
use phalanx_node::core::Event;
use phalanx_node::duty::{Duty, DutyType};
use phalanx_node::parsigex::PartialMessage;
use phalanx_node::value::{encode_attestation_data, DutyValue};
use phalanx_p2p::encoded_len;
use sha2::{Digest, Sha256};

use crate::sim::scenario::{Fault, FloodStrategy};
use crate::sim::signing::SimScheme;

use super::queue::Happening;
use super::{World, LOCK_HASH};

/// The lock hash of the other cluster whose messages are replayed: the
/// same operators (node keys) in another cluster.
const OTHER_LOCK_HASH: [u8; 32] = [0xc2; 32];

/// The duty types that run consensus.
const CONSENSUS_KINDS: [DutyType; 4] = [
    DutyType::Attester,
    DutyType::Aggregator,
    DutyType::SyncContribution,
    DutyType::Proposer,
];

/// The fields of one flood fault.
struct Flood {
    node: usize,
    strategies: Vec<FloodStrategy>,
    per_slot: u64,
    batch: usize,
    proposal_bytes: usize,
    from_slot: u64,
    until_slot: Option<u64>,
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    fn flood_fault(&self, fault: usize) -> Option<Flood> {
        match self.scenario.faults.get(fault)? {
            Fault::ByzantineFlood {
                node,
                strategies,
                per_slot,
                batch,
                proposal_bytes,
                from_slot,
                until_slot,
            } => Some(Flood {
                node: *node,
                strategies: if strategies.is_empty() {
                    FloodStrategy::ALL.to_vec()
                } else {
                    strategies.clone()
                },
                per_slot: *per_slot,
                batch: *batch,
                proposal_bytes: *proposal_bytes,
                from_slot: *from_slot,
                until_slot: *until_slot,
            }),
            _ => None,
        }
    }

    /// Schedules burst `burst` of flood fault `fault`, unless it ended.
    pub(super) fn schedule_flood(&mut self, fault: usize, burst: u64) {
        let Some(flood) = self.flood_fault(fault) else {
            return;
        };
        let slot = flood.from_slot + burst / flood.per_slot;
        if flood.until_slot.is_some_and(|until| slot >= until) || slot > self.last_slot().0 {
            return;
        }
        let at = self.slot_start(Slot(slot))
            + (burst % flood.per_slot) * self.scenario.slot_ms / flood.per_slot;
        self.schedule(at, Happening::Flood { fault, burst });
    }

    /// One burst: every strategy once, to every peer; then the next.
    pub(super) fn flood(&mut self, fault: usize, burst: u64) {
        let Some(flood) = self.flood_fault(fault) else {
            return;
        };
        self.schedule_flood(fault, burst + 1);
        if self.nodes[flood.node].core.is_none() {
            return;
        }
        let slot = Slot(flood.from_slot + burst / flood.per_slot);
        self.note(&[
            b"flood",
            &(fault as u64).to_le_bytes(),
            &burst.to_le_bytes(),
        ]);
        for strategy in &flood.strategies {
            match strategy {
                FloodStrategy::InvalidPartials => self.invalid_partials(&flood, slot, burst),
                FloodStrategy::RandomRoots => self.random_roots(&flood, slot, burst),
                FloodStrategy::Proposals => self.big_proposals(&flood, slot, burst),
                FloodStrategy::FutureInstances => self.future_instances(&flood, slot, burst),
                FloodStrategy::RoundChanges => self.round_changes(&flood, slot, burst),
                FloodStrategy::CrossCluster => self.cross_cluster(&flood, slot),
            }
        }
    }

    /// Attestation partials over distinct roots, none of which verifies.
    fn invalid_partials(&mut self, flood: &Flood, slot: Slot, burst: u64) {
        let duty = Duty::new(slot, DutyType::Attester);
        let partials = (0..flood.batch)
            .map(|i| {
                let v = i % self.validators.len();
                let wrong = S::sign(&self.nodes[flood.node].shares[v], b"not what it names");
                PartialMessage {
                    duty,
                    validator: self.group_bytes[v].to_vec(),
                    signing_root: digest(&[b"invalid", &burst.to_le_bytes(), &i.to_le_bytes()]),
                    signature: S::signature_bytes(&wrong).to_vec(),
                    block_root: None,
                    registration: None,
                }
            })
            .collect();
        self.flood_partials(flood.node, FloodStrategy::InvalidPartials, partials);
    }

    /// Partials that verify, over roots nobody else signs: several duties
    /// (this slot's and the next two's attestations), every validator,
    /// a new root each.
    fn random_roots(&mut self, flood: &Flood, slot: Slot, burst: u64) {
        let partials = (0..flood.batch)
            .map(|i| {
                let duty = Duty::new(Slot(slot.0 + (i % 3) as u64), DutyType::Attester);
                let v = (i / 3) % self.validators.len();
                let root = digest(&[b"random", &burst.to_le_bytes(), &i.to_le_bytes()]);
                let signature = S::sign(&self.nodes[flood.node].shares[v], &root);
                PartialMessage {
                    duty,
                    validator: self.group_bytes[v].to_vec(),
                    signing_root: root,
                    signature: S::signature_bytes(&signature).to_vec(),
                    block_root: None,
                    registration: None,
                }
            })
            .collect();
        self.flood_partials(flood.node, FloodStrategy::RandomRoots, partials);
    }

    /// For each consensus instance of the slot, in the first round the
    /// byzantine operator leads: its oversized proposal again, and one of
    /// a value it never proposed before.
    fn big_proposals(&mut self, flood: &Flood, slot: Slot, burst: u64) {
        let n = self.nodes.len() as u64;
        let Ok(committee) = Committee::new(n as u32) else {
            return;
        };
        let me = OperatorIndex(flood.node as u32);
        for kind in CONSENSUS_KINDS {
            let duty = Duty::new(slot, kind);
            let Some(round) = (1..=n)
                .map(Round)
                .find(|r| RotatingLeader.leader(&duty, *r, committee) == me)
            else {
                continue;
            };
            for variant in [0, burst + 1] {
                let mut bytes = vec![0x5a; flood.proposal_bytes];
                let head = variant.to_le_bytes();
                let len = head.len().min(bytes.len());
                bytes[..len].copy_from_slice(&head[..len]);
                let value = DutyValue(bytes);
                let kind = Kind::Proposal(value.value_hash());
                let proposal = self.signed(flood.node, duty, round, kind);
                let message = Wire::Proposal {
                    proposal,
                    value,
                    justification: ProposalJustification::default(),
                };
                self.flood_consensus(flood.node, FloodStrategy::Proposals, &message);
            }
        }
    }

    /// Signed prepares, commits and round changes for instances that have
    /// not started, up to two epochs ahead, of every duty type.
    fn future_instances(&mut self, flood: &Flood, slot: Slot, burst: u64) {
        let ahead = 2 * E::SLOTS_PER_EPOCH;
        for i in 0..flood.batch as u64 {
            let kind = DutyType::ALL[(i % DutyType::ALL.len() as u64) as usize];
            let at = slot.0 + 1 + (i / DutyType::ALL.len() as u64) % ahead;
            let hash = ValueHash(digest(&[b"future", &burst.to_le_bytes(), &i.to_le_bytes()]));
            let kind_of = match i % 3 {
                0 => Kind::Prepare(hash),
                1 => Kind::Commit(hash),
                _ => Kind::RoundChange(None),
            };
            let signed = self.signed(flood.node, Duty::new(Slot(at), kind), Round(1), kind_of);
            let message = match kind_of {
                Kind::Prepare(_) => Wire::Prepare(signed),
                Kind::Commit(_) => Wire::Commit(signed),
                _ => Wire::RoundChange {
                    round_change: signed,
                    prepared: None,
                },
            };
            self.flood_consensus(flood.node, FloodStrategy::FutureInstances, &message);
        }
    }

    /// Round changes to huge rounds for the instances of past slots, half
    /// signed, half with a signature that does not verify.
    fn round_changes(&mut self, flood: &Flood, slot: Slot, burst: u64) {
        let past = slot.0.min(E::SLOTS_PER_EPOCH);
        if past == 0 {
            return;
        }
        for i in 0..flood.batch as u64 {
            let kind = CONSENSUS_KINDS[(i % 4) as usize];
            let at = slot.0 - 1 - (i / 4) % past;
            let round = Round(u64::MAX / 2 + burst * flood.batch as u64 + i);
            let mut signed = self.signed(
                flood.node,
                Duty::new(Slot(at), kind),
                round,
                Kind::RoundChange(None),
            );
            if i % 2 == 1 {
                if let Some(byte) = signed.signature.0.first_mut() {
                    *byte ^= 0xff;
                }
            }
            let message = Wire::RoundChange {
                round_change: signed,
                prepared: None,
            };
            self.flood_consensus(flood.node, FloodStrategy::RoundChanges, &message);
        }
    }

    /// Another cluster of the same operators (same node keys) attests at
    /// the same slot for other validators; its nodes follow another head.
    /// The byzantine operator, a member of both, replays what that
    /// cluster's honest nodes signed there: its round-1 leader's proposal,
    /// every operator's prepare and commit, and the decided message.
    fn cross_cluster(&mut self, flood: &Flood, slot: Slot) {
        let attesters = self.cluster_attesters(slot);
        if attesters.is_empty() {
            return;
        }
        let n = self.nodes.len();
        let Ok(committee) = Committee::new(n as u32) else {
            return;
        };
        let committees: BTreeSet<CommitteeIndex> = if self.scenario.fork.electra_enabled() {
            [CommitteeIndex(0)].into()
        } else {
            attesters.iter().map(|d| d.committee_index).collect()
        };
        let entries: Vec<_> = committees
            .into_iter()
            .map(|c| {
                let mut data = self.chain.attestation_data(slot, c.0);
                data.beacon_block_root = Root::repeat_byte(0xcc);
                (c, data)
            })
            .collect();
        let value = encode_attestation_data(&entries);
        let hash = value.value_hash();
        let duty = Duty::new(slot, DutyType::Attester);
        let leader = RotatingLeader.leader(&duty, Round(1), committee).as_usize();
        let proposal = self.signed_in(
            &OTHER_LOCK_HASH,
            leader,
            duty,
            Round(1),
            Kind::Proposal(hash),
        );
        let mut messages = vec![Wire::Proposal {
            proposal,
            value: value.clone(),
            justification: ProposalJustification::default(),
        }];
        let mut commits = Vec::new();
        for operator in 0..n {
            let prepare = self.signed_in(
                &OTHER_LOCK_HASH,
                operator,
                duty,
                Round(1),
                Kind::Prepare(hash),
            );
            messages.push(Wire::Prepare(prepare));
            let commit = self.signed_in(
                &OTHER_LOCK_HASH,
                operator,
                duty,
                Round(1),
                Kind::Commit(hash),
            );
            commits.push(commit.clone());
            messages.push(Wire::Commit(commit));
        }
        commits.truncate(committee.quorum());
        messages.push(Wire::Decided { value, commits });
        for message in &messages {
            self.flood_consensus(flood.node, FloodStrategy::CrossCluster, message);
        }
    }

    /// A consensus message of `operator` in this cluster, signed with its
    /// node key.
    fn signed(&self, operator: usize, duty: Duty, round: Round, kind: Kind) -> SignedMessage<Duty> {
        self.signed_in(&LOCK_HASH, operator, duty, round, kind)
    }

    /// A consensus message of `operator` in the cluster of `lock_hash`.
    fn signed_in(
        &self,
        lock_hash: &[u8; 32],
        operator: usize,
        duty: Duty,
        round: Round,
        kind: Kind,
    ) -> SignedMessage<Duty> {
        let message = Message {
            instance: duty,
            round,
            sender: OperatorIndex(operator as u32),
            kind,
        };
        let secrets: Vec<[u8; 32]> = self.nodes.iter().map(|n| n.node_secret).collect();
        let (signer, _) = S::consensus_keys(&secrets, operator);
        let signature: MessageSignature = signer.sign(&message.signing_bytes(lock_hash));
        SignedMessage { message, signature }
    }

    fn flood_partials(
        &mut self,
        from: usize,
        strategy: FloodStrategy,
        partials: Vec<PartialMessage>,
    ) {
        let bytes = encoded_len(&partials);
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let sent = self.observed.flood.entry(strategy.name()).or_default();
            sent.messages += 1;
            sent.items += partials.len() as u64;
            sent.bytes += bytes;
            for delay in self.link_delays(from, to) {
                let event = Event::Partials {
                    from: OperatorIndex(from as u32),
                    partials: partials.clone(),
                };
                self.schedule(self.now + delay, Happening::Core { node: to, event });
            }
        }
    }

    fn flood_consensus(
        &mut self,
        from: usize,
        strategy: FloodStrategy,
        message: &Wire<Duty, DutyValue>,
    ) {
        let bytes = encoded_len(message);
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let sent = self.observed.flood.entry(strategy.name()).or_default();
            sent.messages += 1;
            sent.items += 1;
            sent.bytes += bytes;
            for delay in self.link_delays(from, to) {
                let event = Event::Consensus {
                    from: OperatorIndex(from as u32),
                    message: message.clone(),
                };
                self.schedule(self.now + delay, Happening::Core { node: to, event });
            }
        }
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}
