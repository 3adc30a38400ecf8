//! The validator client of each operator, signing with the operator's
//! share: it asks for attestation data at a third of the slot and signs
//! it, signs its sync-committee members' messages, and (when the cluster
//! aggregates or proposes) sends selection proofs, asks for and signs
//! aggregates and contributions, and asks for and signs blocks.

use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    AttestationData, BeaconCommitteeSelection, SyncCommitteeSelection,
};
use phalanx_eth::block_contents::ProducedBlockData;
use phalanx_eth::signing::roots;
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeMessage,
};
use phalanx_eth::{CommitteeIndex, Root, SignatureBytes, Slot};
use phalanx_node::core::{Attester, VcAttestation, VcRequest, VcResponse, VcSigned};
use tree_hash::TreeHash;

use super::beacon::{data_for, duties, validator_index};
use super::{Cluster, Queue, Spec, SLOTS_PER_EPOCH, SLOT_MS};

/// Sync-committee members of the cluster (its first validators), all in
/// subcommittee 0.
const SYNC_MEMBERS: usize = 2;

/// What a client asked for, kept so that each is asked once per slot.
#[derive(Clone, Copy)]
enum Asked {
    AttestationData = 0,
    Selections = 1,
    Aggregates = 2,
    Block = 3,
}

impl Cluster {
    /// Whether `node`'s client has not yet asked `what` in `slot` (and now has).
    fn first_time(&mut self, node: usize, what: Asked, slot: Slot) -> bool {
        self.asked.insert((node + 100 * what as usize, slot.0))
    }

    /// `node`'s partial signature of `root` for the cluster's validator `validator`.
    pub(crate) fn partial(&self, node: usize, validator: usize, root: Root) -> SignatureBytes {
        SignatureBytes::from(
            self.shares[node][validator]
                .sign(root.as_slice())
                .signature
                .to_bytes(),
        )
    }

    /// Each validator client asks for data at a third of the slot, and
    /// its sync-committee members sign the head.
    pub(super) fn attestation_requests(&mut self, node: usize, now: u64, queue: &mut Queue) {
        let slot = self.cores[node].slot_at(now);
        let third = self.cores[node].slot_start_ms(slot) + SLOT_MS / 3;
        if !(third..third + 50).contains(&now)
            || !self.first_time(node, Asked::AttestationData, slot)
        {
            return;
        }
        // Validator s of the epoch attests in slot s, committee s mod 2.
        let committee = slot.0 % SLOTS_PER_EPOCH % 2;
        self.ask(
            queue,
            node,
            VcRequest::AttestationData {
                slot,
                committee_index: CommitteeIndex(committee),
            },
        );
        let messages = (0..SYNC_MEMBERS)
            .map(|v| self.sign_sync(node, v, slot))
            .collect();
        self.ask(queue, node, VcRequest::SyncMessages(messages));
    }

    pub(super) fn sign_attestations(
        &self,
        node: usize,
        data: AttestationData,
    ) -> Vec<VcAttestation> {
        let electra = self.electra_at(data.slot);
        let root = roots::attestation(&self.network, self.gvr, &data);
        duties(data.slot.epoch(SLOTS_PER_EPOCH), &self.groups)
            .iter()
            .enumerate()
            .filter(|(_, d)| d.slot == data.slot && (electra || d.committee_index == data.index))
            .map(|(i, d)| VcAttestation {
                data,
                attester: if electra {
                    Attester::Index(d.validator_index)
                } else {
                    Attester::ValidatorCommitteeIndex(d.validator_committee_index)
                },
                committee_index: d.committee_index,
                signature: self.partial(node, i, root),
            })
            .collect()
    }

    fn sign_sync(&self, node: usize, validator: usize, slot: Slot) -> SyncCommitteeMessage {
        let head = Root::repeat_byte(0x40 + slot.0 as u8);
        let root = roots::sync_committee_message(&self.network, self.gvr, slot, head);
        SyncCommitteeMessage {
            slot,
            beacon_block_root: head,
            validator_index: validator_index(validator),
            signature: self.partial(node, validator, root),
        }
    }

    /// The validator clients' aggregation steps: selection proofs at the
    /// slot's start, aggregates asked for at two thirds.
    pub(super) fn aggregation_requests(
        &mut self,
        node: usize,
        now: u64,
        slot: Slot,
        queue: &mut Queue,
    ) {
        let start = self.cores[node].slot_start_ms(slot);
        let epoch = slot.epoch(SLOTS_PER_EPOCH);
        // A little after the start: the first slot's duties are known by then.
        if (start + 100..start + 150).contains(&now)
            && self.first_time(node, Asked::Selections, slot)
        {
            let root = roots::selection_proof(&self.network, self.gvr, slot);
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
            let root = roots::sync_selection_proof(&self.network, self.gvr, slot, 0);
            let sync: Vec<SyncCommitteeSelection> = (0..SYNC_MEMBERS)
                .map(|v| SyncCommitteeSelection {
                    validator_index: validator_index(v),
                    slot,
                    subcommittee_index: 0,
                    selection_proof: self.partial(node, v, root),
                })
                .collect();
            self.ask(
                queue,
                node,
                VcRequest::BeaconCommitteeSelections(selections),
            );
            self.ask(queue, node, VcRequest::SyncCommitteeSelections(sync));
        }
        let two_thirds = start + 2 * SLOT_MS / 3;
        if (two_thirds..two_thirds + 50).contains(&now)
            && self.first_time(node, Asked::Aggregates, slot)
        {
            let committee = CommitteeIndex(slot.0 % SLOTS_PER_EPOCH % 2);
            let data = data_for(slot, committee, self.electra_at(slot));
            self.ask(
                queue,
                node,
                VcRequest::AggregateAttestation {
                    slot,
                    data_root: data.tree_hash_root(),
                    committee_index: Some(committee),
                },
            );
            self.ask(
                queue,
                node,
                VcRequest::SyncContribution {
                    slot,
                    subcommittee_index: 0,
                },
            );
        }
    }

    /// Each validator client asks for its block a little after the slot
    /// starts, with its share's randao reveal.
    pub(super) fn proposal_requests(
        &mut self,
        node: usize,
        now: u64,
        slot: Slot,
        queue: &mut Queue,
    ) {
        let start = self.cores[node].slot_start_ms(slot) + 100;
        if (start..start + 50).contains(&now) && self.first_time(node, Asked::Block, slot) {
            let epoch = slot.epoch(SLOTS_PER_EPOCH);
            let root = roots::randao(&self.network, self.gvr, epoch);
            let reveal = self.partial(node, (slot.0 % SLOTS_PER_EPOCH) as usize, root);
            self.ask(
                queue,
                node,
                VcRequest::ProduceBlock {
                    slot,
                    randao_reveal: reveal,
                    graffiti: None,
                    builder_boost_factor: None,
                },
            );
        }
    }

    /// What a validator client does with an answer: keeps combined proofs,
    /// signs a decided aggregate, block or contribution.
    pub(super) fn aggregate_reply(
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
                let epoch = slot.epoch(SLOTS_PER_EPOCH);
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
                        let root =
                            roots::aggregate_and_proof(&self.network, self.gvr, &message, slot);
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
                let signing_root = roots::block(&self.network, self.gvr, slot, root);
                Some(VcRequest::PublishBlock {
                    slot,
                    block_root: root,
                    signature: self.partial(
                        node,
                        (slot.0 % SLOTS_PER_EPOCH) as usize,
                        signing_root,
                    ),
                })
            }
            VcResponse::Contribution(contribution) => {
                let slot = contribution.slot;
                let signed = (0..SYNC_MEMBERS)
                    .map(|v| {
                        let message = ContributionAndProof {
                            aggregator_index: validator_index(v),
                            contribution: contribution.as_ref().clone(),
                            selection_proof: self.proofs
                                [&(node, validator_index(v).0, slot, Some(0))],
                        };
                        let root = roots::contribution_and_proof(&self.network, self.gvr, &message);
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
}
