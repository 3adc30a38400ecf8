//! The sync committee: messages at a third of the slot, selection proofs
//! per subcommittee and contributions at two thirds.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::api::SyncDuty;
use phalanx_eth::attestation::SyncCommitteeSelection;
use phalanx_eth::selection::{is_sync_committee_aggregator, sync_subcommittee};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeContribution,
    SyncCommitteeMessage,
};
use phalanx_eth::{EthSpec, ForkName, Root, Slot, ValidatorIndex};

use super::client::Vc;
use super::misbehaviour::accepted_malformed;
use super::stats::{Duty, DutyError, SentKind, Tally};
use crate::cluster::{sleep_until_ms, unix_ms};

impl<E: EthSpec> Vc<E> {
    pub(super) async fn sync_committee(&self, slot: Slot, fork: ForkName) {
        if fork < ForkName::Altair {
            return;
        }
        // The messages of `slot` are checked by the block of the next slot
        // against the committee of that slot's period, so at a period's
        // last slot the next period's members sign.
        let epoch = self.roots.epoch(Slot(slot.as_u64() + 1));
        let duties = match self.sync_duties(epoch, false).await {
            Ok(duties) => duties,
            Err(error) => {
                self.shared.record_error(slot, "sync_duties", &error);
                return;
            }
        };
        if duties.is_empty() {
            return;
        }
        let (aggregators, root) = tokio::join!(
            self.sync_selections(slot, &duties),
            self.sync_messages(slot, &duties),
        );
        self.contribute(slot, aggregators, root).await;
    }

    /// The (member, subcommittee) pairs the (combined) selection proofs
    /// elect as contribution aggregators, with those proofs.
    async fn sync_selections(
        &self,
        slot: Slot,
        duties: &[SyncDuty],
    ) -> Vec<SyncCommitteeSelection> {
        let mut own = Vec::new();
        for duty in duties {
            let Some(validator) = self.validator(&duty.pubkey) else {
                continue;
            };
            for subcommittee_index in
                sync_subcommittees::<E>(&duty.validator_sync_committee_indices)
            {
                let root = self.roots.sync_selection_proof(slot, subcommittee_index);
                own.push(SyncCommitteeSelection {
                    validator_index: duty.validator_index,
                    slot,
                    subcommittee_index,
                    selection_proof: self.sign(validator, root),
                });
            }
        }
        let selections = if self.distributed && !own.is_empty() {
            let endpoint = "sync_committee_selections";
            let exchanged = if self.malformed_bodies() {
                let path = "eth/v1/validator/sync_committee_selections";
                self.raw
                    .post(endpoint, path, None, &own)
                    .await
                    .and_then(|()| Err(accepted_malformed()))
            } else {
                let sent_ms = unix_ms();
                let exchanged = self.client.sync_committee_selections(&own).await;
                let validators = own.iter().map(|selection| selection.validator_index);
                self.shared.record_sent(
                    SentKind::SyncSelection,
                    slot,
                    validators,
                    sent_ms,
                    exchanged.is_ok(),
                );
                exchanged.map_err(DutyError::from)
            };
            match exchanged {
                Ok(combined) => combined,
                Err(error) => {
                    self.shared.record_error(slot, endpoint, &error);
                    return Vec::new();
                }
            }
        } else {
            own
        };
        let ours: BTreeSet<ValidatorIndex> =
            duties.iter().map(|duty| duty.validator_index).collect();
        selections
            .into_iter()
            .filter(|selection| {
                selection.slot == slot
                    && ours.contains(&selection.validator_index)
                    && is_sync_committee_aggregator::<E>(&selection.selection_proof)
            })
            .collect()
    }

    /// Signs the head block root at 1/3 of the slot; returns the root signed.
    async fn sync_messages(&self, slot: Slot, duties: &[SyncDuty]) -> Option<Root> {
        let tally = Tally::start(&self.shared, Duty::SyncMessage, slot, duties.len());
        sleep_until_ms(self.clock.at_ms(slot, 1, 3)).await;
        let root = match self
            .until_available(slot, || self.client.block_root("head"))
            .await
        {
            Ok(root) => root,
            Err(error) => {
                tally.failed(duties.len(), "block_root", &error);
                return None;
            }
        };
        let signing_root = self.roots.sync_message(slot, root);
        let mut messages = Vec::new();
        for duty in duties {
            let Some(validator) = self.validator(&duty.pubkey) else {
                tally.failed(
                    1,
                    "sync_message",
                    &"a duty for a key this client does not hold",
                );
                continue;
            };
            messages.push(SyncCommitteeMessage {
                slot,
                beacon_block_root: root,
                validator_index: duty.validator_index,
                signature: self.sign(validator, signing_root),
            });
        }
        if !messages.is_empty() {
            let submit = self.client.submit_sync_committee_messages(&messages);
            let sent_ms = unix_ms();
            let result = self
                .send(
                    "submit_sync_committee_messages",
                    "eth/v1/beacon/pool/sync_committees",
                    None,
                    &messages,
                    submit,
                )
                .await;
            self.shared.record_sent(
                SentKind::SyncMessage,
                slot,
                messages.iter().map(|message| message.validator_index),
                sent_ms,
                result.is_ok(),
            );
            tally.settle("submit_sync_committee_messages", messages.len(), result);
        }
        Some(root)
    }

    /// Contributes at 2/3 of the slot, for every elected (member, subcommittee).
    async fn contribute(
        &self,
        slot: Slot,
        aggregators: Vec<SyncCommitteeSelection>,
        signed_root: Option<Root>,
    ) {
        if aggregators.is_empty() {
            return;
        }
        let tally = Tally::start(
            &self.shared,
            Duty::SyncContribution,
            slot,
            aggregators.len(),
        );
        sleep_until_ms(self.clock.at_ms(slot, 2, 3)).await;
        let root = match signed_root {
            Some(root) => root,
            None => match self
                .until_available(slot, || self.client.block_root("head"))
                .await
            {
                Ok(root) => root,
                Err(error) => {
                    tally.failed(aggregators.len(), "block_root", &error);
                    return;
                }
            },
        };
        let mut subcommittees: BTreeMap<u64, Vec<&SyncCommitteeSelection>> = BTreeMap::new();
        for selection in &aggregators {
            subcommittees
                .entry(selection.subcommittee_index)
                .or_default()
                .push(selection);
        }
        let fetched =
            futures::future::join_all(subcommittees.keys().map(|&subcommittee| async move {
                let contribution = self
                    .until_available(slot, || {
                        self.client
                            .sync_committee_contribution::<E>(slot, subcommittee, root)
                    })
                    .await;
                (subcommittee, contribution)
            }))
            .await;
        let mut signed = Vec::new();
        for (subcommittee, contribution) in fetched {
            let members = subcommittees
                .get(&subcommittee)
                .map_or(&[][..], Vec::as_slice);
            let contribution: SyncCommitteeContribution<E> = match contribution {
                Ok(contribution) => contribution,
                Err(error) => {
                    tally.failed(members.len(), "sync_committee_contribution", &error);
                    continue;
                }
            };
            for selection in members {
                let Some(validator) = self.validator_by_index(selection.validator_index) else {
                    tally.failed(
                        1,
                        "contribution",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                let message = ContributionAndProof {
                    aggregator_index: selection.validator_index,
                    contribution: contribution.clone(),
                    selection_proof: selection.selection_proof,
                };
                let signature = self.sign(validator, self.roots.contribution_and_proof(&message));
                signed.push(SignedContributionAndProof { message, signature });
            }
        }
        if !signed.is_empty() {
            let submit = self.client.submit_contribution_and_proofs(&signed);
            let result = self
                .send(
                    "submit_contribution_and_proofs",
                    "eth/v1/validator/contribution_and_proofs",
                    None,
                    &signed,
                    submit,
                )
                .await;
            tally.settle("submit_contribution_and_proofs", signed.len(), result);
        }
    }
}

/// The sync subcommittees a member's positions in the committee fall in.
fn sync_subcommittees<E: EthSpec>(positions: &[u64]) -> BTreeSet<u64> {
    positions
        .iter()
        .map(|position| sync_subcommittee::<E>(*position))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::{MainnetEthSpec, MinimalEthSpec};

    #[test]
    fn sync_positions_map_to_subcommittees() {
        assert_eq!(
            sync_subcommittees::<MinimalEthSpec>(&[0, 7, 8, 31]),
            BTreeSet::from([0, 1, 3])
        );
        assert_eq!(
            sync_subcommittees::<MainnetEthSpec>(&[127, 128, 511]),
            BTreeSet::from([0, 1, 3])
        );
    }
}
