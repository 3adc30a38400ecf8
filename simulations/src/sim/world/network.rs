//! The network between the nodes: links with delay, loss and duplication,
//! partitions, and byzantine senders that equivocate and garble partials.

use phalanx_consensus::{Kind, OperatorIndex, Round, SignedMessage, Value, Wire};
use phalanx_eth::{EthSpec, Root};
use phalanx_node::core::Event;
use phalanx_node::duty::Duty;
use phalanx_node::parsigex::PartialMessage;
use phalanx_node::value::{decode_attestation_data, encode_attestation_data, DutyValue};
use phalanx_p2p::encoded_len;
use rand::Rng;

use crate::sim::scenario::Fault;
use crate::sim::signing::SimScheme;

use super::queue::Happening;
use super::{World, LOCK_HASH};

impl<E: EthSpec, S: SimScheme> World<E, S> {
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
    pub(super) fn link_delays(&mut self, from: usize, to: usize) -> Vec<u64> {
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

    pub(super) fn send_consensus(
        &mut self,
        from: usize,
        to: usize,
        message: Wire<Duty, DutyValue>,
    ) {
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
                from: OperatorIndex(from as u32),
                message: message.clone(),
            };
            self.schedule(self.now + delay, Happening::Core { node: to, event });
        }
        if byzantine {
            // A byzantine node also replays what it sends a while later.
            let delay = self.scenario.slot_ms / 2;
            let event = Event::Consensus {
                from: OperatorIndex(from as u32),
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
            signed.signature = signer.sign(&signed.message.signing_bytes(&LOCK_HASH));
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
                self.observed
                    .proposed
                    .insert((proposal.message.instance, hash.0));
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

    /// Notes the value of a proposal a node's core made: the values the
    /// cluster may decide.
    pub(super) fn note_proposal(&mut self, message: &Wire<Duty, DutyValue>) {
        if let Wire::Proposal {
            proposal, value, ..
        } = message
        {
            self.observed
                .proposed
                .insert((proposal.message.instance, value.value_hash().0));
        }
    }

    fn is_byzantine_node(&self, node: usize) -> bool {
        self.scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::ByzantineNode { node: n } if *n == node))
    }

    pub(super) fn send_partials(&mut self, from: usize, mut partials: Vec<PartialMessage>) {
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
                    from: OperatorIndex(from as u32),
                    partials: partials.clone(),
                };
                self.schedule(self.now + delay, Happening::Core { node: to, event });
            }
        }
    }
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
