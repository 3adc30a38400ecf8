//! Aggregation duties: aggregate attestations and sync-committee
//! contributions.
//!
//! Both follow one shape. Each validator client sends its partial selection
//! proof and gets back the cluster's combined one (kept by `vc`);
//! the combined proof decides, for everyone alike, which validators
//! aggregate. At two thirds of the slot the node fetches the unsigned
//! aggregates its aggregators need (for the attestation data the cluster
//! decided, or the head its sync messages signed), the cluster agrees on one
//! set of them, and each validator client signs the decided aggregate with
//! the combined proof inside; those partials combine like any other.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    SignedAggregateAndProofBase, SignedAggregateAndProofElectra,
};
use phalanx_eth::selection::{
    is_aggregator, is_sync_committee_aggregator, sync_subcommittee, SYNC_COMMITTEE_SUBNET_COUNT,
};
use phalanx_eth::signing::roots;
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeContribution,
};
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};
use ssz::{Decode, Encode};
use tree_hash::TreeHash;

use super::consensus::DutyValidity;
use super::partials::OwnPartial;
use super::submit::Built;
use super::types::{Action, ApiFailure, Submission, VcResponse, VcSigned};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::error::InvalidValue;
use crate::scheme::SignatureScheme;
use crate::value::{decode_entries, encode_entries, DutyValue};

/// A signed aggregate in the layout of its fork (serialized as that layout).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged, bound = "E: EthSpec")]
pub enum AggregateSubmission<E: EthSpec> {
    /// Before Electra.
    Base(Box<SignedAggregateAndProofBase<E>>),
    /// Electra on.
    Electra(Box<SignedAggregateAndProofElectra<E>>),
}

/// A validator client's request for a decided aggregate, waiting.
#[derive(Debug)]
pub(super) struct PendingAggregate {
    pub id: u64,
    pub deadline_ms: u64,
    pub query: AggregateQuery,
}

/// What a validator client asks to aggregate.
#[derive(Clone, Copy, Debug)]
pub(super) enum AggregateQuery {
    /// `GET …/aggregate_attestation`.
    Attestation {
        slot: Slot,
        data_root: Root,
        committee_index: Option<CommitteeIndex>,
    },
    /// `GET …/sync_committee_contribution`.
    Contribution { slot: Slot, subcommittee_index: u64 },
}

impl AggregateQuery {
    fn slot(&self) -> Slot {
        match self {
            AggregateQuery::Attestation { slot, .. }
            | AggregateQuery::Contribution { slot, .. } => *slot,
        }
    }
}

/// The committee an aggregate covers: `data.index` before Electra, the one
/// bit of `committee_bits` after.
fn aggregate_committee<E: EthSpec>(
    aggregate: &Attestation<E>,
) -> Result<CommitteeIndex, InvalidValue> {
    match aggregate {
        Attestation::Base(a) => Ok(a.data.index),
        Attestation::Electra(a) => {
            let set: Vec<usize> = a
                .committee_bits
                .iter()
                .enumerate()
                .filter(|(_, b)| *b)
                .map(|(i, _)| i)
                .collect();
            match set.as_slice() {
                [one] => Ok(CommitteeIndex(*one as u64)),
                _ => Err(InvalidValue::AggregateCommittees(set.len())),
            }
        }
    }
}

fn set_bits<E: EthSpec>(aggregate: &Attestation<E>) -> (usize, usize) {
    match aggregate {
        Attestation::Base(a) => (a.aggregation_bits.num_set_bits(), a.aggregation_bits.len()),
        Attestation::Electra(a) => (a.aggregation_bits.num_set_bits(), a.aggregation_bits.len()),
    }
}

/// Checks a proposed set of aggregates for what is objectively wrong: the
/// slot, the layout of the fork, one committee per aggregate with a
/// validator of the cluster in it, the committee's length, at least one
/// attester, and the attestation data the cluster decided for the slot.
pub(super) fn check_aggregates<E: EthSpec, S: SignatureScheme>(
    slot: Slot,
    value: &DutyValue,
    validity: &DutyValidity<'_, E, S>,
) -> Result<(), InvalidValue> {
    let network = validity.network;
    let fork = network
        .fork_at_slot(slot)
        .map_err(InvalidValue::UnknownFork)?;
    for (committee, bytes) in decode_entries(value).map_err(InvalidValue::Malformed)? {
        let committee = CommitteeIndex(committee);
        let aggregate = Attestation::<E>::from_ssz_bytes(bytes, fork)
            .map_err(|e| InvalidValue::Malformed(e.to_string()))?;
        let data = aggregate.data();
        if data.slot != slot {
            return Err(InvalidValue::AggregateSlot {
                found: data.slot,
                slot,
            });
        }
        if aggregate_committee(&aggregate)? != committee {
            return Err(InvalidValue::AggregateOtherCommittee(committee));
        }
        if fork.electra_enabled() && data.index != CommitteeIndex(0) {
            return Err(InvalidValue::ElectraDataIndex);
        }
        let (set, length) = set_bits(&aggregate);
        if set == 0 {
            return Err(InvalidValue::NoAttester(committee));
        }
        let known_length = validity
            .scheduler
            .committee_lengths
            .get(&slot)
            .and_then(|lengths| lengths.get(&committee));
        match known_length {
            Some(&expected) if expected as usize != length => {
                return Err(InvalidValue::AggregateLength {
                    committee,
                    length,
                    expected,
                })
            }
            None if validity.scheduler.committee_lengths.contains_key(&slot) => {
                return Err(InvalidValue::NoClusterValidator(committee))
            }
            _ => {}
        }
        if let Some(decided) = validity
            .dutydb
            .committee_data(slot)
            .and_then(|by_committee| by_committee.get(&committee))
        {
            if decided != data {
                return Err(InvalidValue::NotDecidedData(committee));
            }
        }
    }
    Ok(())
}

/// Checks a proposed set of sync-committee contributions: the slot, the
/// subcommittee, at least one member.
pub(super) fn check_contributions<E: EthSpec>(
    slot: Slot,
    value: &DutyValue,
) -> Result<(), InvalidValue> {
    for (subcommittee, bytes) in decode_entries(value).map_err(InvalidValue::Malformed)? {
        let contribution = SyncCommitteeContribution::<E>::from_ssz_bytes(bytes)
            .map_err(|e| InvalidValue::Malformed(format!("sync committee contribution: {e:?}")))?;
        if contribution.slot != slot {
            return Err(InvalidValue::ContributionSlot {
                found: contribution.slot,
                slot,
            });
        }
        if subcommittee >= SYNC_COMMITTEE_SUBNET_COUNT
            || contribution.subcommittee_index != subcommittee
        {
            return Err(InvalidValue::Subcommittee(subcommittee));
        }
        if contribution.aggregation_bits.num_set_bits() == 0 {
            return Err(InvalidValue::NoMember(subcommittee));
        }
    }
    Ok(())
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// The validators whose combined selection proof makes them aggregate
    /// at `slot`, with their committees.
    fn attestation_aggregators(&self, slot: Slot) -> Vec<(PublicKeyBytes, CommitteeIndex)> {
        let prepare = Duty::new(slot, DutyType::PrepareAggregator);
        let root = roots::selection_proof(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            slot,
        );
        self.scheduler
            .attester
            .get(&slot)
            .into_iter()
            .flatten()
            .filter(|d| {
                self.vc
                    .selections
                    .get(&(prepare, d.pubkey, root))
                    .is_some_and(|proof| {
                        is_aggregator(d.committee_length, &S::signature_bytes(proof))
                    })
            })
            .map(|d| (d.pubkey, d.committee_index))
            .collect()
    }

    /// The sync-committee members whose combined selection proof makes them
    /// aggregate a subcommittee at `slot`.
    fn contribution_aggregators(&self, slot: Slot) -> Vec<(PublicKeyBytes, u64)> {
        let prepare = Duty::new(slot, DutyType::PrepareSyncContribution);
        let epoch = Slot(slot.0 + 1).epoch(self.cluster.slots_per_epoch);
        let mut found = Vec::new();
        for duty in self.scheduler.sync.get(&epoch).into_iter().flatten() {
            let subcommittees: BTreeSet<u64> = duty
                .validator_sync_committee_indices
                .iter()
                .map(|p| sync_subcommittee::<E>(*p))
                .collect();
            for subcommittee in subcommittees {
                let root = roots::sync_selection_proof(
                    &self.cluster.network,
                    self.cluster.genesis_validators_root,
                    slot,
                    subcommittee,
                );
                let elected = self
                    .vc
                    .selections
                    .get(&(prepare, duty.pubkey, root))
                    .is_some_and(|p| is_sync_committee_aggregator::<E>(&S::signature_bytes(p)));
                if elected {
                    found.push((duty.pubkey, subcommittee));
                }
            }
        }
        found
    }

    /// Starts the slot's aggregation duties once their time has come and
    /// what they need is known: the combined selection proofs and, for
    /// attestations, the decided data.
    pub(super) fn start_aggregations(
        &mut self,
        now_ms: u64,
        slot: Slot,
        actions: &mut Vec<Action<E>>,
    ) {
        let duty = Duty::new(slot, DutyType::Aggregator);
        let (start, deadline) = self.cluster.window(slot, DutyType::Aggregator);
        if now_ms >= start && now_ms < deadline && !self.scheduler.started.contains(&duty) {
            let aggregators = self.attestation_aggregators(slot);
            let mut requests: BTreeMap<CommitteeIndex, Root> = BTreeMap::new();
            for (_, committee) in &aggregators {
                if let Some(data) = self.decided_data(slot, *committee) {
                    requests.insert(*committee, data.tree_hash_root());
                }
            }
            if !requests.is_empty() {
                self.scheduler.started.insert(duty);
                self.tracker.started(duty, deadline);
                self.tracker.expect(
                    &duty,
                    aggregators
                        .iter()
                        .filter(|(_, c)| requests.contains_key(c))
                        .map(|(v, _)| *v),
                );
                actions.push(Action::FetchAggregates {
                    duty,
                    requests: requests.into_iter().collect(),
                });
            }
        }
        let duty = Duty::new(slot, DutyType::SyncContribution);
        let (start, deadline) = self.cluster.window(slot, DutyType::SyncContribution);
        if now_ms >= start && now_ms < deadline && !self.scheduler.started.contains(&duty) {
            let aggregators = self.contribution_aggregators(slot);
            if !aggregators.is_empty() {
                self.scheduler.started.insert(duty);
                self.tracker.started(duty, deadline);
                self.tracker
                    .expect(&duty, aggregators.iter().map(|(v, _)| *v));
                let subcommittees: BTreeSet<u64> = aggregators.iter().map(|(_, s)| *s).collect();
                actions.push(Action::FetchContributions {
                    duty,
                    block_root: self.signed_head(slot),
                    subcommittees: subcommittees.into_iter().collect(),
                });
            }
        }
    }

    /// The head the cluster's sync-committee messages of `slot` signed: the
    /// block root with the most partials behind it (ties: the lowest root).
    fn signed_head(&self, slot: Slot) -> Option<Root> {
        let duty = Duty::new(slot, DutyType::SyncMessage);
        let mut count: BTreeMap<Root, usize> = BTreeMap::new();
        for ((d, _, _), block_root) in &self.partials.block_roots {
            if *d == duty {
                *count.entry(*block_root).or_default() += 1;
            }
        }
        let best = count.values().copied().max()?;
        count
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(root, _)| root)
    }

    /// The beacon node's aggregates arrived: propose them.
    pub(super) fn on_aggregates(
        &mut self,
        duty: Duty,
        result: Result<Vec<(CommitteeIndex, Attestation<E>)>, String>,
        actions: &mut Vec<Action<E>>,
    ) {
        let value = result.ok().and_then(|mut aggregates| {
            aggregates.sort_by_key(|(c, _)| *c);
            aggregates.dedup_by_key(|(c, _)| *c);
            (!aggregates.is_empty()).then(|| {
                encode_entries(
                    &aggregates
                        .iter()
                        .map(|(c, a)| (c.0, a.as_ssz_bytes()))
                        .collect::<Vec<_>>(),
                )
            })
        });
        self.propose_or_join(duty, value, actions);
    }

    /// The beacon node's contributions arrived: propose them.
    pub(super) fn on_contributions(
        &mut self,
        duty: Duty,
        result: Result<Vec<SyncCommitteeContribution<E>>, String>,
        actions: &mut Vec<Action<E>>,
    ) {
        let value = result.ok().and_then(|mut contributions| {
            // The beacon node's empty contributions carry nothing to sign.
            contributions.retain(|c| c.aggregation_bits.num_set_bits() > 0);
            contributions.sort_by_key(|c| c.subcommittee_index);
            contributions.dedup_by_key(|c| c.subcommittee_index);
            (!contributions.is_empty()).then(|| {
                encode_entries(
                    &contributions
                        .iter()
                        .map(|c| (c.subcommittee_index, c.as_ssz_bytes()))
                        .collect::<Vec<_>>(),
                )
            })
        });
        self.propose_or_join(duty, value, actions);
    }

    /// Stores a decided set of aggregates or contributions and answers the
    /// validator client's waiting requests.
    pub(super) fn on_decided_aggregation(
        &mut self,
        duty: Duty,
        value: &DutyValue,
        actions: &mut Vec<Action<E>>,
    ) {
        let Ok(entries) = decode_entries(value) else {
            return;
        };
        let Ok(fork) = self.cluster.fork(duty.slot) else {
            return;
        };
        self.tracker.decided(&duty);
        for (key, bytes) in entries {
            match duty.kind {
                DutyType::Aggregator => {
                    if let Ok(aggregate) = Attestation::<E>::from_ssz_bytes(bytes, fork) {
                        self.dutydb
                            .store_aggregate(duty.slot, CommitteeIndex(key), aggregate);
                    }
                }
                DutyType::SyncContribution => {
                    if let Ok(contribution) = SyncCommitteeContribution::<E>::from_ssz_bytes(bytes)
                    {
                        self.dutydb.store_contribution(duty.slot, key, contribution);
                    }
                }
                _ => {}
            }
        }
        // Only aggregators whose committee has a decided aggregate can sign.
        let covered: BTreeSet<PublicKeyBytes> = match duty.kind {
            DutyType::Aggregator => self
                .attestation_aggregators(duty.slot)
                .into_iter()
                .filter(|(_, c)| self.dutydb.aggregate(duty.slot, *c).is_some())
                .map(|(v, _)| v)
                .collect(),
            _ => self
                .contribution_aggregators(duty.slot)
                .into_iter()
                .filter(|(_, s)| self.dutydb.contribution(duty.slot, *s).is_some())
                .map(|(v, _)| v)
                .collect(),
        };
        self.tracker.retain_expected(&duty, |v| covered.contains(v));
        self.answer_aggregate_requests(0, actions);
    }

    fn find_aggregate(&self, query: &AggregateQuery) -> Option<VcResponse<E>> {
        match *query {
            AggregateQuery::Attestation {
                slot,
                data_root,
                committee_index,
            } => self
                .dutydb
                .aggregates_at(slot)
                .find(|(committee, aggregate)| {
                    committee_index.is_none_or(|c| c == *committee)
                        && aggregate.data().tree_hash_root() == data_root
                })
                .map(|(_, aggregate)| VcResponse::Aggregate(Box::new(aggregate.clone()))),
            AggregateQuery::Contribution {
                slot,
                subcommittee_index,
            } => self
                .dutydb
                .contribution(slot, subcommittee_index)
                .map(|c| VcResponse::Contribution(Box::new(c.clone()))),
        }
    }

    /// Answers waiting requests whose aggregate is decided; at `now_ms`
    /// (0: no expiry) the overdue ones get a clear error.
    pub(super) fn answer_aggregate_requests(&mut self, now_ms: u64, actions: &mut Vec<Action<E>>) {
        let waiting = std::mem::take(&mut self.vc.pending_aggregates);
        for pending in waiting {
            if let Some(response) = self.find_aggregate(&pending.query) {
                actions.push(Action::Reply {
                    id: pending.id,
                    result: Ok(response),
                });
            } else if now_ms > 0 && now_ms >= pending.deadline_ms {
                let what = match pending.query {
                    AggregateQuery::Attestation { .. } => "aggregate attestation",
                    AggregateQuery::Contribution { .. } => "sync committee contribution",
                };
                actions.push(Action::Reply {
                    id: pending.id,
                    result: Err(ApiFailure::new(
                        503,
                        format!(
                            "the cluster decided no {what} for slot {} before the duty's deadline",
                            pending.query.slot()
                        ),
                    )),
                });
            } else {
                self.vc.pending_aggregates.push(pending);
            }
        }
    }

    /// A validator client asks for a decided aggregate or contribution: it
    /// is answered at once, or when the cluster decides, or with an error
    /// at the end of the slot.
    pub(super) fn on_vc_aggregate_query(
        &mut self,
        now_ms: u64,
        id: u64,
        query: AggregateQuery,
        actions: &mut Vec<Action<E>>,
    ) {
        if let Some(response) = self.find_aggregate(&query) {
            actions.push(Action::Reply {
                id,
                result: Ok(response),
            });
            return;
        }
        let slot = query.slot();
        let deadline_ms = self.cluster.slot_start_ms(Slot(slot.0 + 1));
        let refuse = if now_ms >= deadline_ms {
            Some(format!(
                "slot {slot} is over: its aggregate can no longer be made"
            ))
        } else if slot.0 > self.cluster.slot_at(now_ms).0 {
            Some(format!("slot {slot} has not begun"))
        } else if !self.selections_sought(&query) {
            // A client that is not DV-aware (Lodestar before 1.8) elects
            // itself with its share's proof; held to the end of the slot, it
            // would also skip its next slot's duties.
            Some(format!(
                "no selection proofs of slot {slot} were sent for combining, so no validator of the cluster aggregates: aggregators are elected by combined proofs (POST /eth/v1/validator/beacon_committee_selections or sync_committee_selections), which needs a DV-aware validator client"
            ))
        } else {
            None
        };
        match refuse {
            Some(message) => actions.push(Action::Reply {
                id,
                result: Err(ApiFailure::new(400, message)),
            }),
            None => self.vc.pending_aggregates.push(PendingAggregate {
                id,
                deadline_ms,
                query,
            }),
        }
    }

    /// Whether a selection proof of the query's slot and kind is combined or
    /// being combined: without one no aggregation duty can run there.
    fn selections_sought(&self, query: &AggregateQuery) -> bool {
        let kind = match query {
            AggregateQuery::Attestation { .. } => DutyType::PrepareAggregator,
            AggregateQuery::Contribution { .. } => DutyType::PrepareSyncContribution,
        };
        let duty = Duty::new(query.slot(), kind);
        self.vc.selections.keys().any(|(d, _, _)| *d == duty)
            || self
                .vc
                .pending_selections
                .iter()
                .any(|p| p.needed.iter().any(|(d, _, _)| *d == duty))
    }

    /// The combined selection proof of a validator for a duty and root.
    fn combined_proof(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
    ) -> Option<SignatureBytes> {
        self.vc
            .selections
            .get(&(duty, validator, root))
            .map(S::signature_bytes)
    }

    /// The aggregate and proof the cluster signs for an aggregator: the
    /// decided aggregate of its committee and its combined selection proof.
    fn aggregate_and_proof(
        &self,
        slot: Slot,
        validator: PublicKeyBytes,
    ) -> Result<AggregateAndProof<E>, String> {
        let duty = self
            .scheduler
            .attester
            .get(&slot)
            .and_then(|duties| duties.iter().find(|d| d.pubkey == validator))
            .ok_or_else(|| format!("validator {validator} has no attester duty at slot {slot}"))?;
        let proof = self
            .combined_proof(
                Duty::new(slot, DutyType::PrepareAggregator),
                validator,
                roots::selection_proof(
                    &self.cluster.network,
                    self.cluster.genesis_validators_root,
                    slot,
                ),
            )
            .ok_or_else(|| {
                format!(
                    "the cluster has no combined selection proof of validator {} for slot {slot}",
                    duty.validator_index
                )
            })?;
        if !is_aggregator(duty.committee_length, &proof) {
            return Err(format!(
                "the cluster's combined selection proof does not make validator {} an aggregator at slot {slot}",
                duty.validator_index
            ));
        }
        let aggregate = self
            .dutydb
            .aggregate(slot, duty.committee_index)
            .ok_or_else(|| {
                format!(
                    "the cluster decided no aggregate of committee {} at slot {slot}",
                    duty.committee_index
                )
            })?
            .clone();
        Ok(match aggregate {
            Attestation::Base(aggregate) => AggregateAndProof::Base(AggregateAndProofBase {
                aggregator_index: duty.validator_index,
                aggregate,
                selection_proof: proof,
            }),
            Attestation::Electra(aggregate) => {
                AggregateAndProof::Electra(AggregateAndProofElectra {
                    aggregator_index: duty.validator_index,
                    aggregate,
                    selection_proof: proof,
                })
            }
        })
    }

    /// The contribution and proof the cluster signs for an aggregator of a
    /// subcommittee.
    fn contribution_and_proof(
        &self,
        slot: Slot,
        validator: PublicKeyBytes,
        subcommittee: u64,
    ) -> Result<ContributionAndProof<E>, String> {
        let index = self
            .scheduler
            .index_of
            .get(&validator)
            .copied()
            .ok_or_else(|| format!("validator {validator} has no known index"))?;
        let proof = self
            .combined_proof(
                Duty::new(slot, DutyType::PrepareSyncContribution),
                validator,
                roots::sync_selection_proof(&self.cluster.network, self.cluster.genesis_validators_root, slot, subcommittee),
            )
            .ok_or_else(|| {
                format!(
                    "the cluster has no combined sync selection proof of validator {index} for slot {slot} subcommittee {subcommittee}"
                )
            })?;
        if !is_sync_committee_aggregator::<E>(&proof) {
            return Err(format!(
                "the cluster's combined selection proof does not make validator {index} aggregate subcommittee {subcommittee} at slot {slot}"
            ));
        }
        let contribution = self
            .dutydb
            .contribution(slot, subcommittee)
            .ok_or_else(|| {
                format!("the cluster decided no contribution of subcommittee {subcommittee} at slot {slot}")
            })?
            .clone();
        Ok(ContributionAndProof {
            aggregator_index: index,
            contribution,
            selection_proof: proof,
        })
    }

    /// One aggregate and proof of the own validator client.
    pub(super) fn own_aggregate(
        &mut self,
        signed: &VcSigned<AggregateAndProof<E>>,
    ) -> Result<Option<OwnPartial>, String> {
        let (index, slot, proof) = match &signed.message {
            AggregateAndProof::Base(m) => {
                (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
            }
            AggregateAndProof::Electra(m) => {
                (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
            }
        };
        let cluster_index = *self
            .scheduler
            .indices
            .get(&index)
            .ok_or_else(|| format!("validator {index} is not a validator of this cluster"))?;
        let validator = self.cluster.group_bytes[cluster_index];
        let expected = self.aggregate_and_proof(slot, validator)?;
        let expected_proof = match &expected {
            AggregateAndProof::Base(m) => m.selection_proof,
            AggregateAndProof::Electra(m) => m.selection_proof,
        };
        if proof != expected_proof {
            return Err(
                "the selection proof is not the cluster's combined one: ask beacon_committee_selections for it"
                    .into(),
            );
        }
        if expected != signed.message {
            return Err("the aggregate differs from the one the cluster decided".into());
        }
        let root = roots::aggregate_and_proof(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            &expected,
            slot,
        );
        Ok(Some(OwnPartial::new(
            Duty::new(slot, DutyType::Aggregator),
            cluster_index,
            root,
            signed.signature,
        )))
    }

    /// One contribution and proof of the own validator client.
    pub(super) fn own_contribution(
        &mut self,
        signed: &SignedContributionAndProof<E>,
    ) -> Result<Option<OwnPartial>, String> {
        let message = &signed.message;
        let index = message.aggregator_index;
        let cluster_index = *self
            .scheduler
            .indices
            .get(&index)
            .ok_or_else(|| format!("validator {index} is not a validator of this cluster"))?;
        let validator = self.cluster.group_bytes[cluster_index];
        let slot = message.contribution.slot;
        let expected =
            self.contribution_and_proof(slot, validator, message.contribution.subcommittee_index)?;
        if message.selection_proof != expected.selection_proof {
            return Err(
                "the selection proof is not the cluster's combined one: ask sync_committee_selections for it"
                    .into(),
            );
        }
        if *message != expected {
            return Err("the contribution differs from the one the cluster decided".into());
        }
        let root = roots::contribution_and_proof(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            &expected,
        );
        Ok(Some(OwnPartial::new(
            Duty::new(slot, DutyType::SyncContribution),
            cluster_index,
            root,
            signed.signature,
        )))
    }

    /// The signed aggregate or contribution for a combined signature: it
    /// waits for the decision, and is refused if the signature is not over
    /// what the cluster decided.
    pub(super) fn aggregation_submission(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
    ) -> Built<E> {
        if !self.aggregation_decided(duty) {
            return Built::Wait;
        }
        let Ok(fork) = self.cluster.fork(duty.slot) else {
            return Built::Nothing;
        };
        Built::or_refused(
            self.signed_aggregation(duty, validator, root, signature, fork),
            "partials combined over a root other than the decided aggregate's",
        )
    }

    /// The signed aggregate or contribution, if the signature is over what
    /// the cluster decided.
    fn signed_aggregation(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
        fork: ForkName,
    ) -> Option<Submission<E>> {
        match duty.kind {
            DutyType::Aggregator => {
                let message = self.aggregate_and_proof(duty.slot, validator).ok()?;
                if roots::aggregate_and_proof(
                    &self.cluster.network,
                    self.cluster.genesis_validators_root,
                    &message,
                    duty.slot,
                ) != root
                {
                    return None;
                }
                let signed = match message {
                    AggregateAndProof::Base(message) => {
                        AggregateSubmission::Base(Box::new(SignedAggregateAndProofBase {
                            message,
                            signature,
                        }))
                    }
                    AggregateAndProof::Electra(message) => {
                        AggregateSubmission::Electra(Box::new(SignedAggregateAndProofElectra {
                            message,
                            signature,
                        }))
                    }
                };
                Some(Submission::Aggregate(fork, signed))
            }
            DutyType::SyncContribution => {
                let subcommittees: BTreeSet<u64> =
                    self.dutydb.contributions_at(duty.slot).collect();
                subcommittees.into_iter().find_map(|subcommittee| {
                    let message = self
                        .contribution_and_proof(duty.slot, validator, subcommittee)
                        .ok()?;
                    (roots::contribution_and_proof(
                        &self.cluster.network,
                        self.cluster.genesis_validators_root,
                        &message,
                    ) == root)
                        .then(|| {
                            Submission::Contribution(Box::new(SignedContributionAndProof {
                                message,
                                signature,
                            }))
                        })
                })
            }
            _ => None,
        }
    }

    /// Whether the decided data a combined aggregation signature needs is
    /// there yet.
    fn aggregation_decided(&self, duty: Duty) -> bool {
        match duty.kind {
            DutyType::Aggregator => self.dutydb.aggregates_at(duty.slot).next().is_some(),
            DutyType::SyncContribution => self.dutydb.contributions_at(duty.slot).next().is_some(),
            _ => false,
        }
    }

    /// Whether a validator's combined selection proof makes it aggregate in
    /// its committee at `slot` (`None`: not known yet).
    pub fn is_cluster_aggregator(&self, slot: Slot, validator: PublicKeyBytes) -> Option<bool> {
        let duty = self
            .scheduler
            .attester
            .get(&slot)?
            .iter()
            .find(|d| d.pubkey == validator)?;
        let proof = self.combined_proof(
            Duty::new(slot, DutyType::PrepareAggregator),
            validator,
            roots::selection_proof(
                &self.cluster.network,
                self.cluster.genesis_validators_root,
                slot,
            ),
        )?;
        Some(is_aggregator(duty.committee_length, &proof))
    }
}
