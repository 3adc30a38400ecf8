//! What the mock keeps of accepted attestations and sync-committee messages
//! (the shared pools of `phalanx_eth::pool`), so that aggregators fetch real
//! aggregates of what was sent; kept for two epochs.

use phalanx_crypto::Signature;
use phalanx_eth::pool::{AttestationPool, ContributionPool};
use phalanx_eth::{CommitteeIndex, EthSpec, Slot};

use super::checks::Effect;
use super::lock;
use super::node::Node;

/// Accepted attestations and sync-committee messages, for aggregation.
#[derive(Default)]
pub(super) struct Pools {
    /// Attestations by slot, committee and data root.
    pub(super) attestations: AttestationPool<Signature>,
    /// Sync-committee messages by slot, block root and subcommittee.
    pub(super) sync_messages: ContributionPool<Signature>,
}

impl<E: EthSpec> Node<E> {
    /// Adds what an accepted message brings to the pools, forgetting what
    /// is more than two epochs old.
    pub(super) fn apply(&self, effect: Effect) {
        let current = self.current_slot();
        let oldest = Slot(current.0.saturating_sub(2 * E::SLOTS_PER_EPOCH));
        let mut pools = lock(&self.pools);
        match effect {
            Effect::Attestation {
                data,
                committee_index,
                committee_len,
                position,
                signature,
            } => {
                pools.attestations.prune_before(oldest);
                pools.attestations.insert(
                    data,
                    CommitteeIndex(committee_index),
                    committee_len,
                    position,
                    signature,
                );
            }
            Effect::SyncMessage {
                slot,
                root,
                positions,
                signature,
            } => {
                pools.sync_messages.prune_before(oldest);
                for position in positions {
                    pools
                        .sync_messages
                        .insert::<E>(slot, root, position as u64, signature);
                }
            }
        }
    }
}
