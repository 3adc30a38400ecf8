//! The scheduler: which duties the cluster's validators have and when each
//! starts. It owns the validators' indices, their attester, sync-committee
//! and proposer duties per epoch (with the committees the validity checks
//! read), the duties started so far, and the rule that a failed lookup is
//! retried a slot after it was asked. Every tick it asks for what is
//! missing and starts what is due; at each new slot it has every part of
//! the core forget what is past its deadline.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::api::{AttesterDuty, ProposerDuty, ProposerPreparation, SyncDuty};
use phalanx_eth::{CommitteeIndex, Epoch, EthSpec, PublicKeyBytes, Slot, ValidatorIndex};

use super::proposer::Proposer;
use super::types::{Action, UNBOUND_EPOCHS};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

/// A lookup the scheduler wants made of the beacon node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// The validators' indices.
    Indices,
    /// The proposers of an epoch.
    Proposers(Epoch),
    /// The attester and sync duties of an epoch.
    Duties(Epoch),
}

/// The duties of the cluster's validators and what is known of them.
pub(super) struct Scheduler<S: SignatureScheme> {
    /// The cluster index of each validator index.
    pub(super) indices: BTreeMap<ValidatorIndex, usize>,
    pub(super) index_of: BTreeMap<PublicKeyBytes, ValidatorIndex>,
    indices_requested_ms: Option<u64>,
    duties_requested: BTreeMap<Epoch, u64>,
    /// Epochs whose duties are known or asked for.
    pub(super) duties_known: BTreeSet<Epoch>,
    proposers_requested: BTreeMap<Epoch, u64>,
    proposers_known: BTreeSet<Epoch>,
    /// Epochs whose proposers the beacon node gave.
    pub(super) proposers_resolved: BTreeSet<Epoch>,
    /// Per slot: the cluster's attester duties.
    pub(super) attester: BTreeMap<Slot, Vec<AttesterDuty>>,
    /// Per epoch: the cluster's sync-committee duties.
    pub(super) sync: BTreeMap<Epoch, Vec<SyncDuty>>,
    /// Per slot: the cluster's committees and their validators.
    pub(super) committees: BTreeMap<Slot, BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>>>,
    /// Per slot: the length of each committee with a cluster validator.
    pub(super) committee_lengths: BTreeMap<Slot, BTreeMap<CommitteeIndex, u64>>,
    /// Per slot: the cluster's proposer.
    pub(super) proposers: BTreeMap<Slot, Proposer<S>>,
    /// Duties started (each starts once).
    pub(super) started: BTreeSet<Duty>,
    /// The slot of the last tick.
    pub(super) current_slot: Option<Slot>,
}

impl<S: SignatureScheme> Scheduler<S> {
    pub(super) fn new() -> Scheduler<S> {
        Scheduler {
            indices: BTreeMap::new(),
            index_of: BTreeMap::new(),
            indices_requested_ms: None,
            duties_requested: BTreeMap::new(),
            duties_known: BTreeSet::new(),
            proposers_requested: BTreeMap::new(),
            proposers_known: BTreeSet::new(),
            proposers_resolved: BTreeSet::new(),
            attester: BTreeMap::new(),
            sync: BTreeMap::new(),
            committees: BTreeMap::new(),
            committee_lengths: BTreeMap::new(),
            proposers: BTreeMap::new(),
            started: BTreeSet::new(),
            current_slot: None,
        }
    }

    /// The lookups due at `now_ms` in `epoch`: the indices while some are
    /// missing, then this epoch's proposers and the duties of this epoch
    /// and the next. Each is asked once; one that failed is asked again
    /// `retry_after_ms` after it was asked (a slot), not at every tick.
    pub(super) fn lookups(
        &mut self,
        now_ms: u64,
        epoch: Epoch,
        retry_after_ms: u64,
        validators: usize,
    ) -> Vec<Lookup> {
        let mut due = Vec::new();
        if self.indices.len() < validators
            && self
                .indices_requested_ms
                .is_none_or(|at| now_ms >= at + retry_after_ms)
        {
            self.indices_requested_ms = Some(now_ms);
            due.push(Lookup::Indices);
        }
        if !self.indices.is_empty() {
            let proposers_due = !self.proposers_known.contains(&epoch)
                && self
                    .proposers_requested
                    .get(&epoch)
                    .is_none_or(|at| now_ms >= at + retry_after_ms);
            if proposers_due {
                self.proposers_requested.insert(epoch, now_ms);
                self.proposers_known.insert(epoch);
                due.push(Lookup::Proposers(epoch));
            }
            for epoch in [epoch, Epoch(epoch.0 + 1)] {
                let duties_due = !self.duties_known.contains(&epoch)
                    && self
                        .duties_requested
                        .get(&epoch)
                        .is_none_or(|at| now_ms >= at + retry_after_ms);
                if duties_due {
                    self.duties_requested.insert(epoch, now_ms);
                    self.duties_known.insert(epoch);
                    due.push(Lookup::Duties(epoch));
                }
            }
        }
        due
    }

    /// The beacon node's indices of the cluster's group keys.
    pub(super) fn on_indices(
        &mut self,
        found: Vec<(PublicKeyBytes, ValidatorIndex)>,
        by_group: &BTreeMap<PublicKeyBytes, usize>,
    ) {
        for (key, index) in found {
            if let Some(&cluster_index) = by_group.get(&key) {
                self.indices.insert(index, cluster_index);
                self.index_of.insert(key, index);
            }
        }
        // New indices mean the known duties may be incomplete.
        self.duties_requested.clear();
        self.duties_known.clear();
    }

    /// Looking up the proposers of `epoch` failed: asked again a slot
    /// after the request.
    pub(super) fn proposers_failed(&mut self, epoch: Epoch) {
        self.proposers_known.remove(&epoch);
    }

    /// Looking up the duties of `epoch` failed: asked again a slot after
    /// the request.
    pub(super) fn duties_failed(&mut self, epoch: Epoch) {
        self.duties_known.remove(&epoch);
    }

    /// The chain reorganised: the proposers of `epoch` and the duties of
    /// it and the next are looked up again; until then the known ones stand.
    pub(super) fn on_reorg(&mut self, epoch: Epoch) {
        self.proposers_known.remove(&epoch);
        for epoch in [epoch, Epoch(epoch.0 + 1)] {
            self.duties_known.remove(&epoch);
            self.duties_requested.remove(&epoch);
        }
    }

    /// The members who sign sync-committee messages at `slot`: the next
    /// slot's block checks them, so at a period's last slot the next
    /// period's committee signs (as the honest validator guide says).
    pub(super) fn sync_members_at(&self, slot: Slot, spe: u64) -> BTreeSet<PublicKeyBytes> {
        self.sync_members(Slot(slot.0 + 1).epoch(spe))
    }

    fn sync_members(&self, epoch: Epoch) -> BTreeSet<PublicKeyBytes> {
        self.sync
            .get(&epoch)
            .map(|duties| duties.iter().map(|d| d.pubkey).collect())
            .unwrap_or_default()
    }

    /// The attester duty of a validator at `slot`.
    pub(super) fn attester_duty(
        &self,
        slot: Slot,
        validator: &PublicKeyBytes,
    ) -> Option<&AttesterDuty> {
        self.attester
            .get(&slot)
            .and_then(|duties| duties.iter().find(|d| d.pubkey == *validator))
    }

    /// Whether `who` (a validator, or with `None` any of the cluster's)
    /// may have `duty`, by the duties the beacon node gave: the attester's
    /// slot for attestations, selection proofs and aggregates; the slot's
    /// proposer for blocks and randao reveals; the sync committee (of the
    /// slot's epoch or, at a period's end, of the next) for its messages,
    /// selection proofs and contributions. While an epoch's duties are not
    /// known, anyone may; exits and registrations have no schedule.
    pub(super) fn may_have(&self, duty: Duty, spe: u64, who: Option<&PublicKeyBytes>) -> bool {
        let is = |key: &PublicKeyBytes| who.is_none_or(|who| who == key);
        let epoch = duty.slot.epoch(spe);
        match duty.kind {
            DutyType::Attester | DutyType::PrepareAggregator | DutyType::Aggregator => {
                // Attester and sync duties are given together: an epoch
                // with sync duties on record has its attester duties too.
                !self.sync.contains_key(&epoch)
                    || self
                        .attester
                        .get(&duty.slot)
                        .is_some_and(|duties| duties.iter().any(|d| is(&d.pubkey)))
            }
            DutyType::Proposer | DutyType::Randao => {
                !self.proposers_resolved.contains(&epoch)
                    || self
                        .proposers
                        .get(&duty.slot)
                        .is_some_and(|proposer| is(&proposer.key))
            }
            DutyType::SyncMessage
            | DutyType::PrepareSyncContribution
            | DutyType::SyncContribution => {
                [epoch, Slot(duty.slot.0 + 1).epoch(spe)]
                    .iter()
                    .any(|epoch| {
                        self.sync
                            .get(epoch)
                            .is_none_or(|members| members.iter().any(|m| is(&m.pubkey)))
                    })
            }
            DutyType::Exit | DutyType::BuilderRegistration => true,
        }
    }

    /// Forgets what is before `keep` (slots) and before the epoch before
    /// `slot`'s; started exits and registrations stay until `keep_unbound`.
    fn prune(&mut self, slot: Slot, keep: Slot, keep_unbound: Slot, spe: u64) {
        self.attester = self.attester.split_off(&keep);
        self.started
            .retain(|duty| unbound_kept(duty, keep, keep_unbound));
        let epoch = slot.epoch(spe);
        let keep_epoch = Epoch(epoch.0.saturating_sub(1));
        self.sync = self.sync.split_off(&keep_epoch);
        self.duties_known = self.duties_known.split_off(&keep_epoch);
        self.duties_requested = self.duties_requested.split_off(&keep_epoch);
        self.proposers_known = self.proposers_known.split_off(&keep_epoch);
        self.proposers_resolved = self.proposers_resolved.split_off(&keep_epoch);
        self.proposers_requested = self.proposers_requested.split_off(&keep_epoch);
        self.committees = self.committees.split_off(&keep);
        self.committee_lengths = self.committee_lengths.split_off(&keep);
        self.proposers = self.proposers.split_off(&keep);
    }
}

/// Whether a duty is kept: slot-bound duties from `keep` on, exits and
/// registrations from `keep_unbound` on.
pub(super) fn unbound_kept(duty: &Duty, keep: Slot, keep_unbound: Slot) -> bool {
    duty.slot >= keep
        || (matches!(duty.kind, DutyType::Exit | DutyType::BuilderRegistration)
            && duty.slot >= keep_unbound)
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    pub(super) fn tick(&mut self, now_ms: u64, actions: &mut Vec<Action<E>>) {
        let slot = self.cluster.slot_at(now_ms);
        let epoch = slot.epoch(self.cluster.slots_per_epoch);
        if self.scheduler.current_slot != Some(slot) {
            self.scheduler.current_slot = Some(slot);
            self.new_slot(slot, actions);
            self.submit_registrations(now_ms, slot, actions);
        }
        // Indices, then the duties of this epoch and the next; failures
        // are retried a slot later.
        let lookups = self.scheduler.lookups(
            now_ms,
            epoch,
            self.cluster.slot_ms,
            self.cluster.validators.len(),
        );
        for lookup in lookups {
            actions.push(match lookup {
                Lookup::Indices => Action::ResolveIndices(self.cluster.group_bytes.clone()),
                Lookup::Proposers(epoch) => Action::ResolveProposers { epoch },
                Lookup::Duties(epoch) => Action::ResolveDuties {
                    epoch,
                    indices: self.scheduler.indices.keys().copied().collect(),
                    preparations: self.preparations(),
                },
            });
        }
        self.start_due_duties(now_ms, slot, actions);
        // Requests that can no longer be answered get a clear error.
        self.expire_requests(now_ms, actions);
        self.answer_aggregate_requests(now_ms, actions);
        self.answer_block_requests(now_ms, actions);
        for (duty, outcome) in self.tracker.outcomes(now_ms) {
            actions.push(Action::Outcome { duty, outcome });
        }
    }

    /// A new slot: consensus moves on, and every part forgets what is past
    /// its deadline. Everything two slots old is past every deadline. Exits
    /// and registrations are not bound to a slot: operators sign them when
    /// they get to it, within UNBOUND_EPOCHS of the duty's epoch.
    fn new_slot(&mut self, slot: Slot, actions: &mut Vec<Action<E>>) {
        self.advance_consensus(slot, actions);
        let spe = self.cluster.slots_per_epoch;
        let keep = Slot(slot.0.saturating_sub(2));
        let keep_unbound = Slot(slot.0.saturating_sub(UNBOUND_EPOCHS * spe));
        self.partials.prune(keep, keep_unbound);
        self.dutydb.expire_before(keep);
        self.scheduler.prune(slot, keep, keep_unbound, spe);
        self.registrations.prune(keep, keep_unbound);
        self.waiting.prune(keep);
        self.vc.prune(keep);
        self.proposals.prune(keep);
    }

    /// Starts the duties whose time has come and whose duties are known.
    fn start_due_duties(&mut self, now_ms: u64, slot: Slot, actions: &mut Vec<Action<E>>) {
        self.start_proposer(now_ms, slot, actions);
        self.start_attester(now_ms, slot, actions);
        self.start_sync_messages(now_ms, slot);
        // The previous slot's aggregations may still be due when a tick
        // falls exactly on the slot boundary: only this slot's are started.
        self.start_aggregations(now_ms, slot, actions);
    }

    /// The fee recipients of the validators whose index is known.
    fn preparations(&self) -> Vec<ProposerPreparation> {
        self.scheduler
            .indices
            .iter()
            .filter_map(|(index, cluster_index)| {
                self.fee_recipient(*cluster_index)
                    .map(|fee_recipient| ProposerPreparation {
                        validator_index: *index,
                        fee_recipient,
                    })
            })
            .collect()
    }

    /// Starts tracking an exit or registration duty the first time it is
    /// seen; its deadline is when its partials stop waiting for the other
    /// operators', UNBOUND_EPOCHS after its epoch.
    pub(super) fn track_unbound(&mut self, now_ms: u64, duty: Duty, validator: PublicKeyBytes) {
        if self.scheduler.started.insert(duty) {
            let spe = self.cluster.slots_per_epoch;
            let end = duty.slot.0 + UNBOUND_EPOCHS * spe;
            let deadline = self.cluster.genesis_time_ms + end * self.cluster.slot_ms;
            let epoch_ms = self.cluster.slot_ms * spe;
            self.tracker.started(duty, deadline.max(now_ms + epoch_ms));
            self.tracker.fetched(&duty);
            self.tracker.decided(&duty);
        }
        self.tracker.expect(&duty, [validator]);
    }

    /// The current epoch's proposers: the cluster's are kept, and block
    /// requests that came before them are taken up.
    pub(super) fn on_proposers(
        &mut self,
        now_ms: u64,
        epoch: Epoch,
        duties: Vec<ProposerDuty>,
        actions: &mut Vec<Action<E>>,
    ) {
        let spe = self.cluster.slots_per_epoch;
        self.scheduler.proposers_resolved.insert(epoch);
        self.scheduler
            .proposers
            .retain(|slot, _| slot.epoch(spe) != epoch);
        for duty in duties {
            let Some(&cluster_index) = self.cluster.by_group.get(&duty.pubkey) else {
                continue;
            };
            if duty.slot.epoch(spe) != epoch {
                continue;
            }
            let proposer = Proposer {
                index: duty.validator_index,
                key: duty.pubkey,
                group: self.cluster.validators[cluster_index].group.clone(),
                fee_recipient: self.fee_recipient(cluster_index),
            };
            self.scheduler.proposers.insert(duty.slot, proposer);
        }
        for waiting in std::mem::take(&mut self.vc.early_blocks) {
            if waiting.slot.epoch(spe) == epoch {
                self.on_vc_produce_block(
                    now_ms,
                    waiting.id,
                    waiting.slot,
                    waiting.randao_reveal,
                    waiting.wishes,
                    actions,
                );
            } else {
                self.vc.early_blocks.push(waiting);
            }
        }
    }

    pub(super) fn on_duties(
        &mut self,
        epoch: Epoch,
        attester: Vec<AttesterDuty>,
        sync: Vec<SyncDuty>,
    ) {
        let ours = |key: &PublicKeyBytes| self.cluster.by_group.contains_key(key);
        let mut by_slot: BTreeMap<Slot, Vec<AttesterDuty>> = BTreeMap::new();
        for duty in attester.into_iter().filter(|d| ours(&d.pubkey)) {
            if duty.slot.epoch(self.cluster.slots_per_epoch) == epoch {
                by_slot.entry(duty.slot).or_default().push(duty);
            }
        }
        // A new answer replaces the epoch's duties (after a reorganisation
        // some slots may have lost their cluster validators).
        let spe = self.cluster.slots_per_epoch;
        let in_epoch = |slot: &Slot| slot.epoch(spe) == epoch;
        self.scheduler.attester.retain(|slot, _| !in_epoch(slot));
        let scheduler = &mut self.scheduler;
        scheduler.committees.retain(|slot, _| !in_epoch(slot));
        scheduler
            .committee_lengths
            .retain(|slot, _| !in_epoch(slot));
        for (slot, mut duties) in by_slot {
            duties.sort_by_key(|d| (d.committee_index, d.validator_committee_index));
            let mut committees: BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>> = BTreeMap::new();
            let mut lengths: BTreeMap<CommitteeIndex, u64> = BTreeMap::new();
            for duty in &duties {
                committees
                    .entry(duty.committee_index)
                    .or_default()
                    .push(duty.pubkey);
                lengths.insert(duty.committee_index, duty.committee_length);
            }
            scheduler.committees.insert(slot, committees);
            scheduler.committee_lengths.insert(slot, lengths);
            scheduler.attester.insert(slot, duties);
        }
        let sync: Vec<SyncDuty> = sync.into_iter().filter(|d| ours(&d.pubkey)).collect();
        self.scheduler.sync.insert(epoch, sync);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Bls;

    const SLOT_MS: u64 = 12_000;

    fn scheduler_with_indices() -> Scheduler<Bls> {
        let mut scheduler = Scheduler::new();
        let mut by_group = BTreeMap::new();
        by_group.insert(PublicKeyBytes::repeat_byte(1), 0);
        scheduler.on_indices(
            vec![(PublicKeyBytes::repeat_byte(1), ValidatorIndex(7))],
            &by_group,
        );
        scheduler
    }

    #[test]
    fn missing_indices_are_asked_again_a_slot_later() {
        let mut scheduler = Scheduler::<Bls>::new();
        assert_eq!(
            scheduler.lookups(1_000, Epoch(0), SLOT_MS, 1),
            vec![Lookup::Indices]
        );
        assert!(scheduler
            .lookups(1_000 + SLOT_MS - 1, Epoch(0), SLOT_MS, 1)
            .is_empty());
        assert_eq!(
            scheduler.lookups(1_000 + SLOT_MS, Epoch(0), SLOT_MS, 1),
            vec![Lookup::Indices]
        );
    }

    #[test]
    fn failed_duties_are_asked_again_a_slot_after_the_request() {
        let mut scheduler = scheduler_with_indices();
        assert_eq!(
            scheduler.lookups(0, Epoch(3), SLOT_MS, 1),
            vec![
                Lookup::Proposers(Epoch(3)),
                Lookup::Duties(Epoch(3)),
                Lookup::Duties(Epoch(4)),
            ]
        );
        // Known (or asked for): nothing more at the next ticks.
        assert!(scheduler.lookups(SLOT_MS, Epoch(3), SLOT_MS, 1).is_empty());
        scheduler.duties_failed(Epoch(4));
        scheduler.proposers_failed(Epoch(3));
        // Not before a slot has passed since the request...
        assert!(scheduler
            .lookups(SLOT_MS - 1, Epoch(3), SLOT_MS, 1)
            .is_empty());
        // ...then once.
        assert_eq!(
            scheduler.lookups(SLOT_MS, Epoch(3), SLOT_MS, 1),
            vec![Lookup::Proposers(Epoch(3)), Lookup::Duties(Epoch(4))]
        );
        assert!(scheduler
            .lookups(SLOT_MS + 1, Epoch(3), SLOT_MS, 1)
            .is_empty());
    }

    #[test]
    fn a_reorg_asks_for_the_duties_at_once() {
        let mut scheduler = scheduler_with_indices();
        scheduler.lookups(0, Epoch(3), SLOT_MS, 1);
        scheduler.on_reorg(Epoch(3));
        assert_eq!(
            scheduler.lookups(1, Epoch(3), SLOT_MS, 1),
            vec![Lookup::Duties(Epoch(3)), Lookup::Duties(Epoch(4))]
        );
    }

    #[test]
    fn exits_outlive_slot_bound_duties() {
        let (keep, keep_unbound) = (Slot(100), Slot(10));
        assert!(!unbound_kept(
            &Duty::new(Slot(99), DutyType::Attester),
            keep,
            keep_unbound
        ));
        assert!(unbound_kept(
            &Duty::new(Slot(99), DutyType::Exit),
            keep,
            keep_unbound
        ));
        assert!(!unbound_kept(
            &Duty::new(Slot(9), DutyType::Exit),
            keep,
            keep_unbound
        ));
        assert!(unbound_kept(
            &Duty::new(Slot(100), DutyType::Attester),
            keep,
            keep_unbound
        ));
    }
}
