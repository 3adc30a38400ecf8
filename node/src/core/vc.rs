//! The own validator client's requests: each is routed to the duty it
//! belongs to, a list of partially signed objects is checked item by item
//! and its good partials go out in one batch, and requests that wait for a
//! decision or a combination (attestation data, selection proofs,
//! aggregates, blocks) are kept here until answered or past their deadline.
//! The combined selection proofs live here too: they answer the client and
//! elect the cluster's aggregators.

use phalanx_eth::signing::roots;
use std::collections::BTreeMap;

use phalanx_eth::attestation::{BeaconCommitteeSelection, SyncCommitteeSelection};
use phalanx_eth::{
    CommitteeIndex, EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex,
};

use super::aggregation::{AggregateQuery, PendingAggregate};
use super::partials::OwnPartial;
use super::proposer::{BlockWishes, EarlyBlock, PendingBlock};
use super::types::{Action, ApiFailure, VcRequest, VcResponse};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

/// The validator client's requests that wait, and the combined selection
/// proofs.
pub(super) struct Vc<S: SignatureScheme> {
    /// Attestation-data requests waiting for the decision.
    pub(super) pending: Vec<Pending>,
    /// Combined selection proofs by duty, validator and signing root.
    pub(super) selections: BTreeMap<(Duty, PublicKeyBytes, Root), S::Signature>,
    pub(super) pending_selections: Vec<PendingSelections>,
    pub(super) pending_aggregates: Vec<PendingAggregate>,
    pub(super) pending_blocks: Vec<PendingBlock>,
    /// Block requests that came before the epoch's proposers were known.
    pub(super) early_blocks: Vec<EarlyBlock>,
}

impl<S: SignatureScheme> Vc<S> {
    pub(super) fn new() -> Vc<S> {
        Vc {
            pending: Vec::new(),
            selections: BTreeMap::new(),
            pending_selections: Vec::new(),
            pending_aggregates: Vec::new(),
            pending_blocks: Vec::new(),
            early_blocks: Vec::new(),
        }
    }

    /// When waiting requests fall due, for the driver's next tick.
    pub(super) fn deadlines(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending
            .iter()
            .map(|p| p.deadline_ms)
            .chain(self.pending_selections.iter().map(|p| p.deadline_ms))
    }

    /// Forgets the selection proofs of duties before `keep`; waiting
    /// requests leave at their own deadlines.
    pub(super) fn prune(&mut self, keep: Slot) {
        self.selections.retain(|(duty, _, _), _| duty.slot >= keep);
    }
}

/// An attestation-data request waiting for the decision.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) id: u64,
    pub(super) deadline_ms: u64,
    pub(super) slot: Slot,
    pub(super) committee_index: CommitteeIndex,
}

/// Selection proofs a validator client waits for.
#[derive(Debug)]
pub(super) struct PendingSelections {
    id: u64,
    deadline_ms: u64,
    /// What combines each requested proof, in request order.
    pub(super) needed: Vec<(Duty, PublicKeyBytes, Root)>,
    request: SelectionRequest,
}

#[derive(Debug)]
enum SelectionRequest {
    Beacon(Vec<BeaconCommitteeSelection>),
    Sync(Vec<SyncCommitteeSelection>),
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    pub(super) fn on_vc(
        &mut self,
        now_ms: u64,
        id: u64,
        request: VcRequest<E>,
        actions: &mut Vec<Action<E>>,
    ) {
        let result = match request {
            VcRequest::AttestationData {
                slot,
                committee_index,
            } => match self.attestation_data_request(now_ms, id, slot, committee_index) {
                Some(result) => result,
                // Waits for the decision.
                None => return,
            },
            VcRequest::Attestations(attestations) => self.on_vc_attestations(attestations, actions),
            VcRequest::SyncMessages(messages) => self.on_vc_sync_messages(messages, actions),
            VcRequest::BeaconCommitteeSelections(selections) => {
                self.on_vc_selections(now_ms, id, SelectionRequest::Beacon(selections), actions);
                return;
            }
            VcRequest::SyncCommitteeSelections(selections) => {
                self.on_vc_selections(now_ms, id, SelectionRequest::Sync(selections), actions);
                return;
            }
            VcRequest::AggregateAttestation {
                slot,
                data_root,
                committee_index,
            } => {
                let query = AggregateQuery::Attestation {
                    slot,
                    data_root,
                    committee_index,
                };
                self.on_vc_aggregate_query(now_ms, id, query, actions);
                return;
            }
            VcRequest::SyncContribution {
                slot,
                subcommittee_index,
            } => {
                let query = AggregateQuery::Contribution {
                    slot,
                    subcommittee_index,
                };
                self.on_vc_aggregate_query(now_ms, id, query, actions);
                return;
            }
            VcRequest::AggregateAndProofs(list) => {
                self.own_partials(&list, "aggregates", actions, Self::own_aggregate)
            }
            VcRequest::ContributionAndProofs(list) => {
                self.own_partials(&list, "contributions", actions, Self::own_contribution)
            }
            VcRequest::ProduceBlock {
                slot,
                randao_reveal,
                graffiti,
                builder_boost_factor,
            } => {
                let wishes = BlockWishes {
                    graffiti,
                    builder_boost_factor,
                };
                self.on_vc_produce_block(now_ms, id, slot, randao_reveal, wishes, actions);
                return;
            }
            VcRequest::PublishBlock {
                slot,
                block_root,
                signature,
            } => self.on_vc_publish_block(slot, block_root, signature, actions),
            VcRequest::VoluntaryExits(exits) => {
                self.own_partials(&exits, "exits", actions, |core, exit| {
                    core.own_exit(now_ms, exit)
                })
            }
            VcRequest::Registrations(registrations) => self.own_partials(
                &registrations,
                "registrations",
                actions,
                |core, registration| core.own_registration(now_ms, registration),
            ),
            VcRequest::FeeRecipients(indices) => Ok(VcResponse::FeeRecipients(
                indices
                    .into_iter()
                    .map(|index| {
                        let cluster_index = self.scheduler.indices.get(&index)?;
                        self.fee_recipient(*cluster_index)
                    })
                    .collect(),
            )),
            VcRequest::Aggregators(queries) => Ok(VcResponse::Aggregators(
                queries
                    .into_iter()
                    .map(|(slot, index)| {
                        let cluster_index = self.scheduler.indices.get(&index)?;
                        self.is_cluster_aggregator(slot, self.cluster.group_bytes[*cluster_index])
                    })
                    .collect(),
            )),
        };
        actions.push(Action::Reply { id, result });
    }

    /// Requests that can no longer be answered get a clear error.
    pub(super) fn expire_requests(&mut self, now_ms: u64, actions: &mut Vec<Action<E>>) {
        let (expired, pending): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.vc.pending)
            .into_iter()
            .partition(|p| now_ms >= p.deadline_ms);
        self.vc.pending = pending;
        for p in expired {
            actions.push(Action::Reply {
                id: p.id,
                result: Err(ApiFailure::new(
                    503,
                    format!(
                        "the cluster decided no attestation data for slot {} committee {} before the duty's deadline",
                        p.slot, p.committee_index
                    ),
                )),
            });
        }
        let (expired, waiting): (Vec<PendingSelections>, Vec<PendingSelections>) =
            std::mem::take(&mut self.vc.pending_selections)
                .into_iter()
                .partition(|p| now_ms >= p.deadline_ms);
        self.vc.pending_selections = waiting;
        for p in expired {
            actions.push(Action::Reply {
                id: p.id,
                result: Err(ApiFailure::new(
                    503,
                    "too few operators' validator clients sent their selection proofs in time to combine them",
                )),
            });
        }
    }

    /// Answers the attestation-data requests whose data is decided.
    pub(super) fn answer_attestation_requests(&mut self, actions: &mut Vec<Action<E>>) {
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.vc.pending)
            .into_iter()
            .partition(|p| self.decided_data(p.slot, p.committee_index).is_some());
        self.vc.pending = waiting;
        for p in ready {
            if let Some(data) = self.decided_data(p.slot, p.committee_index) {
                actions.push(Action::Reply {
                    id: p.id,
                    result: Ok(VcResponse::AttestationData(data)),
                });
            }
        }
    }

    /// Takes a validator client's list of partially signed objects: each is
    /// checked and made to count on its own; the good ones go to the peers
    /// in one batch, the refused ones are named by their index in the request.
    /// Checks each item of a validator client's request with `check`,
    /// then verifies and accepts the partials of those that passed in one
    /// batch. `check` gives `None` for an item that needs nothing further.
    pub(super) fn own_partials<T>(
        &mut self,
        items: &[T],
        what: &str,
        actions: &mut Vec<Action<E>>,
        mut check: impl FnMut(&mut Self, &T) -> Result<Option<OwnPartial>, String>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        let mut failures = Vec::new();
        let mut checked = Vec::with_capacity(items.len());
        let mut at = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match check(self, item) {
                Ok(Some(own)) => {
                    at.push(i);
                    checked.push(own);
                }
                Ok(None) => {}
                Err(reason) => failures.push((i, reason)),
            }
        }
        let mut outgoing = Vec::new();
        let results = self.accept_own_partials(checked, &mut outgoing, actions);
        for (i, result) in at.into_iter().zip(results) {
            if let Err(reason) = result {
                failures.push((i, reason));
            }
        }
        failures.sort_by_key(|(i, _)| *i);
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        if failures.is_empty() {
            Ok(VcResponse::Accepted)
        } else {
            Err(ApiFailure {
                status: 400,
                message: format!("some {what} were not accepted"),
                failures,
            })
        }
    }

    /// Verifies and shares the validator client's partial selection proofs;
    /// answers with the combined ones once every one has combined.
    fn on_vc_selections(
        &mut self,
        now_ms: u64,
        id: u64,
        request: SelectionRequest,
        actions: &mut Vec<Action<E>>,
    ) {
        let items: Vec<(ValidatorIndex, Slot, Root, DutyType, SignatureBytes)> = match &request {
            SelectionRequest::Beacon(list) => list
                .iter()
                .map(|s| {
                    (
                        s.validator_index,
                        s.slot,
                        roots::selection_proof(
                            &self.cluster.network,
                            self.cluster.genesis_validators_root,
                            s.slot,
                        ),
                        DutyType::PrepareAggregator,
                        s.selection_proof,
                    )
                })
                .collect(),
            SelectionRequest::Sync(list) => list
                .iter()
                .map(|s| {
                    (
                        s.validator_index,
                        s.slot,
                        roots::sync_selection_proof(
                            &self.cluster.network,
                            self.cluster.genesis_validators_root,
                            s.slot,
                            s.subcommittee_index,
                        ),
                        DutyType::PrepareSyncContribution,
                        s.selection_proof,
                    )
                })
                .collect(),
        };
        let current = self.cluster.slot_at(now_ms);
        let mut failures = Vec::new();
        let mut outgoing = Vec::new();
        let mut needed = Vec::with_capacity(items.len());
        for (i, (index, slot, root, kind, proof)) in items.into_iter().enumerate() {
            let Some(&cluster_index) = self.scheduler.indices.get(&index) else {
                failures.push((
                    i,
                    format!("validator {index} is not a validator of this cluster"),
                ));
                continue;
            };
            if slot.0 + 1 < current.0 || slot.0 > current.0 + self.cluster.slots_per_epoch {
                failures.push((i, format!("slot {slot} is not current")));
                continue;
            }
            let duty = Duty::new(slot, kind);
            let own = OwnPartial::new(duty, cluster_index, root, proof);
            match self.accept_own_partial(own, &mut outgoing, actions) {
                Ok(()) => needed.push((duty, self.cluster.group_bytes[cluster_index], root)),
                Err(reason) => failures.push((i, reason)),
            }
        }
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        if !failures.is_empty() {
            actions.push(Action::Reply {
                id,
                result: Err(ApiFailure {
                    status: 400,
                    message: "some selection proofs were not accepted".into(),
                    failures,
                }),
            });
            return;
        }
        let last_slot = needed
            .iter()
            .map(|(d, _, _)| d.slot)
            .max()
            .unwrap_or(current);
        self.vc.pending_selections.push(PendingSelections {
            id,
            deadline_ms: self.cluster.slot_start_ms(Slot(last_slot.0 + 1)),
            needed,
            request,
        });
        self.answer_selections(actions);
    }

    /// Replies to every selection request whose proofs have all combined.
    pub(super) fn answer_selections(&mut self, actions: &mut Vec<Action<E>>) {
        let (done, waiting): (Vec<PendingSelections>, Vec<PendingSelections>) =
            std::mem::take(&mut self.vc.pending_selections)
                .into_iter()
                .partition(|p| p.needed.iter().all(|k| self.vc.selections.contains_key(k)));
        self.vc.pending_selections = waiting;
        for p in done {
            let combined: Vec<SignatureBytes> = p
                .needed
                .iter()
                .map(|k| S::signature_bytes(&self.vc.selections[k]))
                .collect();
            let response = match p.request {
                SelectionRequest::Beacon(mut list) => {
                    for (item, proof) in list.iter_mut().zip(combined) {
                        item.selection_proof = proof;
                    }
                    VcResponse::BeaconCommitteeSelections(list)
                }
                SelectionRequest::Sync(mut list) => {
                    for (item, proof) in list.iter_mut().zip(combined) {
                        item.selection_proof = proof;
                    }
                    VcResponse::SyncCommitteeSelections(list)
                }
            };
            actions.push(Action::Reply {
                id: p.id,
                result: Ok(response),
            });
        }
    }
}
