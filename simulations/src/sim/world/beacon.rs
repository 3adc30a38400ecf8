//! Each node's simulated beacon node: the pools of what its node submitted,
//! for the aggregates and contributions it serves, and diverging data.

use phalanx_eth::attestation::Attestation;
use phalanx_eth::sync_committee::{SyncCommitteeContribution, SyncCommitteeMessage};
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, Root, SignatureBytes, Slot};
use phalanx_node::core::AttestationSubmission;

use crate::sim::scenario::Fault;
use crate::sim::signing::SimScheme;

use super::World;

impl<E: EthSpec, S: SimScheme> World<E, S> {
    /// A beacon node keeps the attestations its node sends, for aggregates.
    pub(super) fn pool_attestation(&mut self, node: usize, attestation: &AttestationSubmission<E>) {
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
    pub(super) fn aggregate_of(
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
            .fork_at_slot(slot)
            .is_ok_and(ForkName::electra_enabled);
        pooled
            .aggregate(committee, electra, combine::<S>)
            .map_err(|e| e.to_string())
    }

    /// A beacon node keeps the sync messages its node sends, by position.
    pub(super) fn pool_sync_message(&mut self, node: usize, message: &SyncCommitteeMessage) {
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
    pub(super) fn contribution_of(
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

    /// Whether `node`'s beacon node gives diverging data for `slot` now.
    pub(super) fn diverges(&self, node: usize, slot: Slot) -> bool {
        self.scenario.faults.iter().any(|f| match *f {
            Fault::DivergingBeaconNode {
                node: n,
                slot: s,
                from_ms,
            } => n == node && s == slot.0 && self.now >= self.slot_start(slot) + from_ms,
            _ => false,
        })
    }
}

/// How a simulated beacon node combines pooled signatures.
fn combine<S: SimScheme>(signatures: &[S::Signature]) -> Result<SignatureBytes, String> {
    S::aggregate(signatures).map(|s| S::signature_bytes(&s))
}
