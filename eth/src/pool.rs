//! Pools of single attestations and sync-committee messages, as a beacon
//! node keeps them for aggregators: attestations by (slot, committee, data
//! root) with each member's signature by committee position, sync messages
//! by (slot, block root, subcommittee) with each member's signature by
//! position in the subcommittee. An aggregate or contribution is built from
//! what a pool holds, its signature combined by the caller (BLS, or a
//! simulator's cheap scheme), its bits set in position order.
//!
//! Every map is ordered, so that what a pool returns does not depend on
//! the order of insertion or on a hasher's seed.

use std::collections::BTreeMap;

use ssz::BitfieldError;
use ssz_types::typenum::Unsigned;
use ssz_types::{BitList, BitVector};
use tree_hash::TreeHash;

use crate::attestation::{Attestation, AttestationBase, AttestationData, AttestationElectra};
use crate::preset::EthSpec;
use crate::primitives::{CommitteeIndex, Root, SignatureBytes, Slot};
use crate::sync_committee::SyncCommitteeContribution;

/// Why an aggregate or contribution could not be built from a pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<C> {
    /// The pooled positions do not fit the bits of the layout.
    #[error("aggregation bits: {0:?}")]
    Bits(BitfieldError),
    /// The committee index has no bit in `committee_bits`.
    #[error("committee index {0} does not fit the committee bits")]
    CommitteeIndex(u64),
    /// The caller's combination of the signatures failed.
    #[error("{0}")]
    Combine(C),
}

/// Attestations of one committee over one vote: each member's signature by
/// its position in the committee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PooledAttestation<S> {
    data: AttestationData,
    committee_length: usize,
    signatures: BTreeMap<usize, S>,
}

impl<S: Clone> PooledAttestation<S> {
    /// The vote.
    pub fn data(&self) -> &AttestationData {
        &self.data
    }

    /// The length of the committee, as the first attestation gave it.
    pub fn committee_length(&self) -> usize {
        self.committee_length
    }

    /// The committee positions that attested, in order.
    pub fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.signatures.keys().copied()
    }

    /// The aggregate attestation of committee `committee_index` in the
    /// layout of its fork (`electra`: Electra's committee bits), its
    /// signature `combine` of the members' signatures in position order.
    pub fn aggregate<E: EthSpec, C>(
        &self,
        committee_index: CommitteeIndex,
        electra: bool,
        combine: impl FnOnce(&[S]) -> Result<SignatureBytes, C>,
    ) -> Result<Attestation<E>, PoolError<C>> {
        let signatures: Vec<S> = self.signatures.values().cloned().collect();
        let signature = combine(&signatures).map_err(PoolError::Combine)?;
        if electra {
            let mut committee_bits = BitVector::<E::MaxCommitteesPerSlot>::new();
            let index = usize::try_from(committee_index.0)
                .map_err(|_| PoolError::CommitteeIndex(committee_index.0))?;
            committee_bits.set(index, true).map_err(PoolError::Bits)?;
            Ok(Attestation::Electra(AttestationElectra {
                aggregation_bits: self.bits()?,
                data: self.data,
                signature,
                committee_bits,
            }))
        } else {
            Ok(Attestation::Base(AttestationBase {
                aggregation_bits: self.bits()?,
                data: self.data,
                signature,
            }))
        }
    }

    /// The committee's bits with the attesters' positions set.
    fn bits<N: Unsigned + Clone, C>(&self) -> Result<BitList<N>, PoolError<C>> {
        let mut bits = BitList::with_capacity(self.committee_length).map_err(PoolError::Bits)?;
        for &position in self.signatures.keys() {
            bits.set(position, true).map_err(PoolError::Bits)?;
        }
        Ok(bits)
    }
}

/// Single attestations by (slot, committee index, data root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationPool<S> {
    entries: BTreeMap<(Slot, CommitteeIndex, Root), PooledAttestation<S>>,
}

impl<S> Default for AttestationPool<S> {
    fn default() -> Self {
        AttestationPool {
            entries: BTreeMap::new(),
        }
    }
}

impl<S: Clone> AttestationPool<S> {
    /// An empty pool.
    pub fn new() -> AttestationPool<S> {
        AttestationPool::default()
    }

    /// Keeps the signature of the member at `position` of committee
    /// `committee_index` (of `committee_length` members) over `data`. A
    /// second signature from the same position replaces the first.
    pub fn insert(
        &mut self,
        data: AttestationData,
        committee_index: CommitteeIndex,
        committee_length: usize,
        position: usize,
        signature: S,
    ) {
        self.entries
            .entry((data.slot, committee_index, data.tree_hash_root()))
            .or_insert_with(|| PooledAttestation {
                data,
                committee_length,
                signatures: BTreeMap::new(),
            })
            .signatures
            .insert(position, signature);
    }

    /// What committee `committee_index` attested over the data with root
    /// `data_root` at `slot`.
    pub fn get(
        &self,
        slot: Slot,
        committee_index: CommitteeIndex,
        data_root: Root,
    ) -> Option<&PooledAttestation<S>> {
        self.entries.get(&(slot, committee_index, data_root))
    }

    /// The lowest committee with attestations over `data_root` at `slot`,
    /// for a request that names no committee.
    pub fn find(
        &self,
        slot: Slot,
        data_root: Root,
    ) -> Option<(CommitteeIndex, &PooledAttestation<S>)> {
        self.entries
            .iter()
            .find(|((s, _, root), _)| *s == slot && *root == data_root)
            .map(|((_, index, _), pooled)| (*index, pooled))
    }

    /// Forgets every attestation of a slot before `oldest`.
    pub fn prune_before(&mut self, oldest: Slot) {
        self.entries.retain(|(slot, _, _), _| *slot >= oldest);
    }

    /// How many (slot, committee, vote) entries the pool holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Sync-committee messages by (slot, block root, subcommittee): each
/// member's signature by its position in the subcommittee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContributionPool<S> {
    entries: BTreeMap<(Slot, Root, u64), BTreeMap<usize, S>>,
}

impl<S> Default for ContributionPool<S> {
    fn default() -> Self {
        ContributionPool {
            entries: BTreeMap::new(),
        }
    }
}

impl<S: Clone> ContributionPool<S> {
    /// An empty pool.
    pub fn new() -> ContributionPool<S> {
        ContributionPool::default()
    }

    /// Keeps the signature over `beacon_block_root` at `slot` of the member
    /// at `position` of the sync committee. A member holding several
    /// positions is inserted once per position; a second signature at the
    /// same position replaces the first.
    pub fn insert<E: EthSpec>(
        &mut self,
        slot: Slot,
        beacon_block_root: Root,
        position: u64,
        signature: S,
    ) {
        let size = E::SyncSubcommitteeSize::to_u64().max(1);
        self.entries
            .entry((slot, beacon_block_root, position / size))
            .or_default()
            // Below the subcommittee's size, which is a `usize`.
            .insert((position % size) as usize, signature);
    }

    /// Whether subcommittee `subcommittee_index` signed `beacon_block_root`
    /// at `slot`.
    pub fn contains(&self, slot: Slot, beacon_block_root: Root, subcommittee_index: u64) -> bool {
        self.entries
            .contains_key(&(slot, beacon_block_root, subcommittee_index))
    }

    /// The contribution of subcommittee `subcommittee_index` over
    /// `beacon_block_root` at `slot`, its signature `combine` of the
    /// members' signatures in position order; `None` if none was pooled.
    pub fn contribution<E: EthSpec, C>(
        &self,
        slot: Slot,
        beacon_block_root: Root,
        subcommittee_index: u64,
        combine: impl FnOnce(&[S]) -> Result<SignatureBytes, C>,
    ) -> Option<Result<SyncCommitteeContribution<E>, PoolError<C>>> {
        let pooled = self
            .entries
            .get(&(slot, beacon_block_root, subcommittee_index))?;
        let build = || {
            let signatures: Vec<S> = pooled.values().cloned().collect();
            let signature = combine(&signatures).map_err(PoolError::Combine)?;
            let mut aggregation_bits = BitVector::new();
            for &index in pooled.keys() {
                aggregation_bits.set(index, true).map_err(PoolError::Bits)?;
            }
            Ok(SyncCommitteeContribution {
                slot,
                beacon_block_root,
                subcommittee_index,
                aggregation_bits,
                signature,
            })
        };
        Some(build())
    }

    /// Forgets every message of a slot before `oldest`.
    pub fn prune_before(&mut self, oldest: Slot) {
        self.entries.retain(|(slot, _, _), _| *slot >= oldest);
    }

    /// Whether the pool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::Checkpoint;
    use crate::{Epoch, MinimalEthSpec};

    type Spec = MinimalEthSpec;

    fn data(slot: u64, index: u64, head: u8) -> AttestationData {
        AttestationData {
            slot: Slot(slot),
            index: CommitteeIndex(index),
            beacon_block_root: Root::repeat_byte(head),
            source: Checkpoint::default(),
            target: Checkpoint {
                epoch: Epoch(slot / 8),
                root: Root::repeat_byte(1),
            },
        }
    }

    /// A combination that shows which signatures it got, in order.
    fn concatenate(signatures: &[u8]) -> Result<SignatureBytes, String> {
        let mut bytes = [0u8; 96];
        bytes[..signatures.len()].copy_from_slice(signatures);
        Ok(SignatureBytes::from(bytes))
    }

    fn set(bits: impl Iterator<Item = bool>) -> Vec<usize> {
        bits.enumerate()
            .filter_map(|(i, b)| b.then_some(i))
            .collect()
    }

    #[test]
    fn an_aggregate_has_the_attesters_bits_and_their_signatures_in_order() {
        let mut pool = AttestationPool::new();
        let vote = data(9, 2, 0xaa);
        for (position, signature) in [(5, 50u8), (1, 10), (3, 30)] {
            pool.insert(vote, CommitteeIndex(2), 6, position, signature);
        }
        let pooled = pool
            .get(Slot(9), CommitteeIndex(2), vote.tree_hash_root())
            .expect("pooled");
        assert_eq!(pooled.data(), &vote);
        assert_eq!(pooled.committee_length(), 6);
        assert_eq!(pooled.positions().collect::<Vec<_>>(), [1, 3, 5]);
        let Ok(Attestation::Base(base)) =
            pooled.aggregate::<Spec, _>(CommitteeIndex(2), false, concatenate)
        else {
            panic!("a pre-Electra aggregate");
        };
        assert_eq!(base.aggregation_bits.len(), 6);
        assert_eq!(set(base.aggregation_bits.iter()), [1, 3, 5]);
        assert_eq!(base.signature.as_slice()[..4], [10, 30, 50, 0]);
        assert_eq!(base.data, vote);
    }

    #[test]
    fn an_electra_aggregate_names_its_committee() {
        let mut pool = AttestationPool::new();
        let vote = data(9, 0, 0xaa);
        pool.insert(vote, CommitteeIndex(3), 4, 2, 7u8);
        let pooled = pool
            .get(Slot(9), CommitteeIndex(3), vote.tree_hash_root())
            .expect("pooled");
        let Ok(Attestation::Electra(electra)) =
            pooled.aggregate::<Spec, _>(CommitteeIndex(3), true, concatenate)
        else {
            panic!("an Electra aggregate");
        };
        assert_eq!(electra.aggregation_bits.len(), 4);
        assert_eq!(set(electra.aggregation_bits.iter()), [2]);
        assert_eq!(set(electra.committee_bits.iter()), [3]);
        assert!(matches!(
            pooled.aggregate::<Spec, _>(CommitteeIndex(4), true, concatenate),
            Err(PoolError::Bits(_))
        ));
    }

    #[test]
    fn a_second_signature_from_a_position_replaces_the_first() {
        let mut pool = AttestationPool::new();
        let vote = data(3, 0, 0xaa);
        pool.insert(vote, CommitteeIndex(0), 4, 1, 1u8);
        pool.insert(vote, CommitteeIndex(0), 4, 1, 2u8);
        let pooled = pool
            .get(Slot(3), CommitteeIndex(0), vote.tree_hash_root())
            .expect("pooled");
        let aggregate = pooled
            .aggregate::<Spec, _>(CommitteeIndex(0), false, concatenate)
            .expect("aggregate");
        assert_eq!(aggregate.signature().as_slice()[..2], [2, 0]);
    }

    #[test]
    fn votes_committees_and_slots_are_kept_apart() {
        let mut pool = AttestationPool::new();
        let (a, b) = (data(3, 0, 0xaa), data(3, 0, 0xbb));
        pool.insert(a, CommitteeIndex(1), 4, 0, 1u8);
        pool.insert(a, CommitteeIndex(0), 4, 1, 2u8);
        pool.insert(b, CommitteeIndex(0), 4, 2, 3u8);
        assert_eq!(pool.len(), 3);
        assert!(pool
            .get(Slot(4), CommitteeIndex(0), a.tree_hash_root())
            .is_none());
        let (index, found) = pool.find(Slot(3), a.tree_hash_root()).expect("found");
        assert_eq!(index, CommitteeIndex(0), "the lowest committee");
        assert_eq!(found.positions().collect::<Vec<_>>(), [1]);
        assert!(pool.find(Slot(3), Root::ZERO).is_none());
    }

    #[test]
    fn pruning_forgets_older_slots() {
        let mut pool = AttestationPool::new();
        let mut sync = ContributionPool::new();
        for slot in [3, 4, 5] {
            pool.insert(data(slot, 0, 0xaa), CommitteeIndex(0), 4, 0, 1u8);
            sync.insert::<Spec>(Slot(slot), Root::ZERO, 0, 1u8);
        }
        pool.prune_before(Slot(4));
        sync.prune_before(Slot(5));
        assert_eq!(pool.len(), 2);
        assert!(pool
            .find(Slot(3), data(3, 0, 0xaa).tree_hash_root())
            .is_none());
        assert!(!sync.contains(Slot(4), Root::ZERO, 0));
        assert!(sync.contains(Slot(5), Root::ZERO, 0));
        pool.prune_before(Slot(9));
        sync.prune_before(Slot(9));
        assert!(pool.is_empty() && sync.is_empty());
    }

    #[test]
    fn a_contribution_has_its_subcommittee_members_bits() {
        let head = Root::repeat_byte(0xcc);
        let mut pool = ContributionPool::new();
        // Minimal subcommittees have 8 members: 3 and 7 are in the first,
        // 10 is the third member of the second.
        for (position, signature) in [(7, 70u8), (10, 100), (3, 30)] {
            pool.insert::<Spec>(Slot(6), head, position, signature);
        }
        let first = pool
            .contribution::<Spec, _>(Slot(6), head, 0, concatenate)
            .expect("pooled")
            .expect("built");
        assert_eq!(set(first.aggregation_bits.iter()), [3, 7]);
        assert_eq!(first.signature.as_slice()[..3], [30, 70, 0]);
        assert_eq!((first.slot, first.beacon_block_root), (Slot(6), head));
        assert_eq!(first.subcommittee_index, 0);
        let second = pool
            .contribution::<Spec, _>(Slot(6), head, 1, concatenate)
            .expect("pooled")
            .expect("built");
        assert_eq!(set(second.aggregation_bits.iter()), [2]);
        assert!(pool
            .contribution::<Spec, _>(Slot(6), Root::ZERO, 0, concatenate)
            .is_none());
        let failed = pool.contribution::<Spec, String>(Slot(6), head, 0, |_| Err("no".into()));
        assert!(matches!(failed, Some(Err(PoolError::Combine(e))) if e == "no"));
    }
}
