//! The decided-value store: every value consensus decided, kept until its
//! duty is past its deadline and served to the validator client from here.
//!
//! It holds the attestation data decided per committee and per validator,
//! the decided aggregates, sync-committee contributions and blocks. A
//! second, different attestation data for the same (duty, validator) is
//! refused, so the node can never hand its validator client two conflicting
//! things to sign for one duty; a later decided aggregate or contribution
//! for a committee already decided does not replace the first.

use std::collections::BTreeMap;

use phalanx_eth::attestation::{Attestation, AttestationData};
use phalanx_eth::block_contents::ProducedBlock;
use phalanx_eth::sync_committee::SyncCommitteeContribution;
use phalanx_eth::{CommitteeIndex, EthSpec, PublicKeyBytes, Slot};

use crate::duty::Duty;

/// Storing a decided value failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A different value was already decided for this duty and validator.
    #[error("{duty}: validator {validator} already has a different decided value")]
    DifferentValue {
        /// The duty.
        duty: Duty,
        /// The validator.
        validator: PublicKeyBytes,
    },
}

/// The outcome of storing a decided value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New.
    New,
    /// The same value again.
    Same,
}

/// Every decided value of the duties not yet expired.
#[derive(Debug)]
pub struct DutyDb<E: EthSpec> {
    /// Per slot: the attestation data decided for each committee.
    attestation_data: BTreeMap<Slot, BTreeMap<CommitteeIndex, AttestationData>>,
    /// The attestation data each validator may sign for its duty.
    attesters: BTreeMap<(Duty, PublicKeyBytes), AttestationData>,
    aggregates: BTreeMap<(Slot, CommitteeIndex), Attestation<E>>,
    contributions: BTreeMap<(Slot, u64), SyncCommitteeContribution<E>>,
    blocks: BTreeMap<Slot, ProducedBlock<E>>,
}

impl<E: EthSpec> Default for DutyDb<E> {
    fn default() -> Self {
        DutyDb {
            attestation_data: BTreeMap::new(),
            attesters: BTreeMap::new(),
            aggregates: BTreeMap::new(),
            contributions: BTreeMap::new(),
            blocks: BTreeMap::new(),
        }
    }
}

impl<E: EthSpec> DutyDb<E> {
    /// An empty store.
    pub fn new() -> DutyDb<E> {
        DutyDb::default()
    }

    /// Records the attestation data decided for a committee at `slot`.
    pub fn store_committee_data(
        &mut self,
        slot: Slot,
        committee: CommitteeIndex,
        data: AttestationData,
    ) {
        self.attestation_data
            .entry(slot)
            .or_default()
            .insert(committee, data);
    }

    /// The attestation data decided for each committee at `slot`.
    pub fn committee_data(&self, slot: Slot) -> Option<&BTreeMap<CommitteeIndex, AttestationData>> {
        self.attestation_data.get(&slot)
    }

    /// Stores the attestation data a validator may sign for its duty,
    /// refusing a different one for the same duty and validator.
    pub fn store_attester(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        data: AttestationData,
    ) -> Result<Stored, Conflict> {
        match self.attesters.get(&(duty, validator)) {
            Some(existing) if *existing == data => Ok(Stored::Same),
            Some(_) => Err(Conflict::DifferentValue { duty, validator }),
            None => {
                self.attesters.insert((duty, validator), data);
                Ok(Stored::New)
            }
        }
    }

    /// Stores `data` over whatever was there: only for the simulator's
    /// deliberately defective node.
    #[cfg(feature = "test-utils")]
    pub(crate) fn replace_attester(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        data: AttestationData,
    ) {
        self.attesters.insert((duty, validator), data);
    }

    /// The attestation data a validator may sign for its duty, if decided.
    pub fn attester(&self, duty: &Duty, validator: &PublicKeyBytes) -> Option<&AttestationData> {
        self.attesters.get(&(*duty, *validator))
    }

    /// Keeps the first aggregate decided for a committee at `slot`.
    pub fn store_aggregate(
        &mut self,
        slot: Slot,
        committee: CommitteeIndex,
        aggregate: Attestation<E>,
    ) {
        self.aggregates
            .entry((slot, committee))
            .or_insert(aggregate);
    }

    /// The aggregate decided for a committee.
    pub fn aggregate(&self, slot: Slot, committee: CommitteeIndex) -> Option<&Attestation<E>> {
        self.aggregates.get(&(slot, committee))
    }

    /// The aggregates decided at `slot`, by committee.
    pub fn aggregates_at(
        &self,
        slot: Slot,
    ) -> impl Iterator<Item = (CommitteeIndex, &Attestation<E>)> {
        self.aggregates
            .range((slot, CommitteeIndex(0))..=(slot, CommitteeIndex(u64::MAX)))
            .map(|((_, committee), aggregate)| (*committee, aggregate))
    }

    /// Keeps the first contribution decided for a subcommittee at `slot`.
    pub fn store_contribution(
        &mut self,
        slot: Slot,
        subcommittee: u64,
        contribution: SyncCommitteeContribution<E>,
    ) {
        self.contributions
            .entry((slot, subcommittee))
            .or_insert(contribution);
    }

    /// The contribution decided for a subcommittee.
    pub fn contribution(
        &self,
        slot: Slot,
        subcommittee: u64,
    ) -> Option<&SyncCommitteeContribution<E>> {
        self.contributions.get(&(slot, subcommittee))
    }

    /// The subcommittees with a decided contribution at `slot`, in order.
    pub fn contributions_at(&self, slot: Slot) -> impl Iterator<Item = u64> + '_ {
        self.contributions
            .range((slot, 0)..=(slot, u64::MAX))
            .map(|((_, subcommittee), _)| *subcommittee)
    }

    /// Stores the block decided (and found safe) for `slot`.
    pub fn store_block(&mut self, slot: Slot, block: ProducedBlock<E>) {
        self.blocks.insert(slot, block);
    }

    /// The block decided for `slot`.
    pub fn block(&self, slot: Slot) -> Option<&ProducedBlock<E>> {
        self.blocks.get(&slot)
    }

    /// Forgets duties of slots before `slot` (after their deadlines).
    pub fn expire_before(&mut self, slot: Slot) {
        self.attestation_data = self.attestation_data.split_off(&slot);
        self.attesters.retain(|(duty, _), _| duty.slot >= slot);
        self.aggregates = self.aggregates.split_off(&(slot, CommitteeIndex(0)));
        self.contributions = self.contributions.split_off(&(slot, 0));
        self.blocks = self.blocks.split_off(&slot);
    }

    /// Values stored per validator.
    pub fn len(&self) -> usize {
        self.attesters.len()
    }

    /// Whether nothing is stored per validator.
    pub fn is_empty(&self) -> bool {
        self.attesters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::DutyType;
    use phalanx_eth::attestation::Checkpoint;
    use phalanx_eth::{Epoch, MinimalEthSpec, Root};

    fn data(slot: u64, root: u8) -> AttestationData {
        AttestationData {
            slot: Slot(slot),
            index: CommitteeIndex(0),
            beacon_block_root: Root::repeat_byte(root),
            source: Checkpoint {
                epoch: Epoch(0),
                root: Root::ZERO,
            },
            target: Checkpoint {
                epoch: Epoch(0),
                root: Root::ZERO,
            },
        }
    }

    #[test]
    fn a_second_different_value_is_refused() {
        let mut db = DutyDb::<MinimalEthSpec>::new();
        let duty = Duty::new(Slot(5), DutyType::Attester);
        let validator = PublicKeyBytes::repeat_byte(1);
        let (a, b) = (data(5, 1), data(5, 2));
        assert_eq!(db.store_attester(duty, validator, a), Ok(Stored::New));
        assert_eq!(db.store_attester(duty, validator, a), Ok(Stored::Same));
        assert!(db.store_attester(duty, validator, b).is_err());
        assert_eq!(db.attester(&duty, &validator), Some(&a));
        // Other validators and duties are independent.
        assert_eq!(
            db.store_attester(duty, PublicKeyBytes::repeat_byte(2), b),
            Ok(Stored::New)
        );
        assert_eq!(
            db.store_attester(Duty::new(Slot(6), DutyType::Attester), validator, b),
            Ok(Stored::New)
        );
        db.expire_before(Slot(6));
        assert_eq!(db.len(), 1);
        assert!(db.attester(&duty, &validator).is_none());
    }

    #[test]
    fn committee_data_expires_with_its_slot() {
        let mut db = DutyDb::<MinimalEthSpec>::new();
        db.store_committee_data(Slot(3), CommitteeIndex(1), data(3, 1));
        db.store_committee_data(Slot(4), CommitteeIndex(2), data(4, 2));
        assert_eq!(
            db.committee_data(Slot(3))
                .and_then(|c| c.get(&CommitteeIndex(1))),
            Some(&data(3, 1))
        );
        db.expire_before(Slot(4));
        assert!(db.committee_data(Slot(3)).is_none());
        assert!(db.committee_data(Slot(4)).is_some());
    }
}
