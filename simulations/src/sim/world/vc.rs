//! The validator clients in the simulation: when each acts in a slot, what
//! it asks its node, and what it signs with its share when answered.

use std::collections::BTreeMap;

use phalanx_eth::api::AttesterDuty;
use phalanx_eth::attestation::SyncCommitteeSelection;
use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    BeaconCommitteeSelection,
};
use phalanx_eth::block_contents::ProducedBlockData;
use phalanx_eth::selection::{is_aggregator, is_sync_committee_aggregator};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeMessage,
};
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, Root, SignatureBytes, Slot, ValidatorIndex};
use phalanx_node::core::{
    ApiFailure, Attester, Event, VcAttestation, VcRequest, VcResponse, VcSigned,
};
use tree_hash::TreeHash;

use crate::sim::scenario::Fault;
use crate::sim::signing::SimScheme;

use super::queue::{Happening, Moment};
use super::World;

/// How long after a duty's moment a simulated validator client acts.
const VC_DELAY_MS: (u64, u64) = (0, 30);

/// The share of a slot after which a double-submitting client asks again.
const AGAIN_AT_PERCENT: u64 = 55;

/// What a validator client waits for from its node.
pub(super) enum VcWaiting {
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

impl<E: EthSpec, S: SimScheme> World<E, S> {
    pub(super) fn schedule_validator_clients(&mut self) {
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

    pub(super) fn validator_client(&mut self, node: usize, slot: Slot, moment: Moment) {
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

    pub(super) fn vc_reply(
        &mut self,
        node: usize,
        id: u64,
        result: Result<VcResponse<E>, ApiFailure>,
    ) {
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
                let root = self.roots.contribution_and_proof(&message);
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
                    .fork_at_slot(data.slot)
                    .is_ok_and(ForkName::electra_enabled);
                let root = self.roots.attestation(&data);
                let attestations = duties
                    .iter()
                    .map(|duty| VcAttestation {
                        data,
                        attester: if electra {
                            Attester::Index(duty.validator_index)
                        } else {
                            Attester::ValidatorCommitteeIndex(duty.validator_committee_index)
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
