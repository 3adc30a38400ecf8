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
//!
//! [`aggregates`] holds what is particular to aggregate attestations,
//! [`contributions`] what is particular to sync-committee contributions;
//! this module the shared flow: starting the duties, storing decisions,
//! answering the validator client's requests, and building submissions.

mod aggregates;
mod contributions;

pub(super) use aggregates::check_aggregates;
pub use aggregates::AggregateSubmission;
pub(super) use contributions::check_contributions;

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::attestation::Attestation;
use phalanx_eth::sync_committee::SyncCommitteeContribution;
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};
use ssz::Decode;
use tree_hash::TreeHash;

use crate::core::submit::Built;
use crate::core::types::{Action, ApiFailure, Submission, VcResponse};
use crate::core::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;
use crate::value::{decode_entries, DutyValue};

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

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
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
            DutyType::Aggregator => self.signed_aggregate(duty, validator, root, signature, fork),
            DutyType::SyncContribution => {
                self.signed_contribution(duty, validator, root, signature)
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
}
