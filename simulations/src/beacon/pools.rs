//! Accepted attestations and sync-committee messages, pooled so that
//! aggregators fetch real aggregates of what was sent.

use std::collections::{BTreeMap, HashMap};

use phalanx_crypto::Signature;
use phalanx_eth::attestation::AttestationData;
use phalanx_eth::{EthSpec, Root, Slot};
use tree_hash::TreeHash;

use super::checks::Effect;
use super::lock;
use super::node::Node;

/// Accepted attestations and sync-committee messages, for aggregation.
#[derive(Default)]
pub(super) struct Pools {
    /// By (attestation data root, committee index).
    pub(super) attestations: HashMap<(Root, u64), PooledAttestation>,
    /// By (slot, block root): signatures by sync-committee position.
    pub(super) sync_messages: HashMap<(Slot, Root), BTreeMap<usize, Signature>>,
}

pub(super) struct PooledAttestation {
    pub(super) data: AttestationData,
    pub(super) committee_len: usize,
    pub(super) signatures: BTreeMap<usize, Signature>,
}

impl<E: EthSpec> Node<E> {
    pub(super) fn apply(&self, effect: Effect) {
        let current = self.current_slot();
        let keep = |slot: Slot| slot.0 + 2 * E::SLOTS_PER_EPOCH >= current.0;
        let mut pools = lock(&self.pools);
        match effect {
            Effect::Attestation {
                data,
                committee_index,
                committee_len,
                position,
                signature,
            } => {
                pools
                    .attestations
                    .retain(|_, pooled| keep(pooled.data.slot));
                pools
                    .attestations
                    .entry((data.tree_hash_root(), committee_index))
                    .or_insert_with(|| PooledAttestation {
                        data,
                        committee_len,
                        signatures: BTreeMap::new(),
                    })
                    .signatures
                    .insert(position, signature);
            }
            Effect::SyncMessage {
                slot,
                root,
                positions,
                signature,
            } => {
                pools.sync_messages.retain(|(slot, _), _| keep(*slot));
                let signatures = pools.sync_messages.entry((slot, root)).or_default();
                for position in positions {
                    signatures.insert(position, signature);
                }
            }
        }
    }
}
