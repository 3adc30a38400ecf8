//! Attestations: the slot's attesters, their selection proofs (combined at
//! the DV endpoint when distributed), committee subscriptions and the
//! attestations at a third of the slot.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::api::AttesterDuty;
use phalanx_eth::attestation::{
    AttestationBase, AttestationData, BeaconCommitteeSelection, SingleAttestation,
};
use phalanx_eth::client::BeaconCommitteeSubscription;
use phalanx_eth::selection::is_aggregator;
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, SignatureBytes, Slot, ValidatorIndex};
use ssz_types::BitList;

use super::client::Vc;
use super::misbehaviour::accepted_malformed;
use super::stats::{Duty, DutyError, SentKind, Tally};
use crate::cluster::{sleep_until_ms, unix_ms};

impl<E: EthSpec> Vc<E> {
    pub(super) async fn attest_and_aggregate(&self, slot: Slot, fork: ForkName) {
        let duties: Vec<AttesterDuty> =
            match self.attester_duties(self.roots.epoch(slot), false).await {
                Ok(duties) => duties
                    .into_iter()
                    .filter(|duty| duty.slot == slot)
                    .collect(),
                Err(error) => {
                    self.shared.record_error(slot, "attester_duties", &error);
                    return;
                }
            };
        if duties.is_empty() {
            return;
        }
        let (aggregators, data) = tokio::join!(
            async {
                let aggregators = self.attester_selections(slot, &duties).await;
                self.subscribe_committees(slot, &duties, &aggregators).await;
                aggregators
            },
            self.attest(slot, fork, &duties),
        );
        self.aggregate(slot, fork, aggregators, data).await;
    }

    /// The attesters the (combined) selection proofs elect as aggregators,
    /// with those proofs.
    async fn attester_selections(
        &self,
        slot: Slot,
        duties: &[AttesterDuty],
    ) -> Vec<(AttesterDuty, SignatureBytes)> {
        let root = self.roots.selection_proof(slot);
        let own: Vec<BeaconCommitteeSelection> = duties
            .iter()
            .filter_map(|duty| {
                let validator = self.validator(&duty.pubkey)?;
                Some(BeaconCommitteeSelection {
                    validator_index: duty.validator_index,
                    slot,
                    selection_proof: self.sign(validator, root),
                })
            })
            .collect();
        let selections = if self.distributed {
            let endpoint = "beacon_committee_selections";
            let exchanged = if self.malformed_bodies() {
                let path = "eth/v1/validator/beacon_committee_selections";
                self.raw
                    .post(endpoint, path, None, &own)
                    .await
                    .and_then(|()| Err(accepted_malformed()))
            } else {
                let sent_ms = unix_ms();
                let exchanged = self.client.beacon_committee_selections(&own).await;
                let validators = own.iter().map(|selection| selection.validator_index);
                self.shared.record_sent(
                    SentKind::BeaconSelection,
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
        let proofs: BTreeMap<ValidatorIndex, SignatureBytes> = selections
            .into_iter()
            .filter(|selection| selection.slot == slot)
            .map(|selection| (selection.validator_index, selection.selection_proof))
            .collect();
        duties
            .iter()
            .filter_map(|duty| {
                let proof = proofs.get(&duty.validator_index)?;
                is_aggregator(duty.committee_length, proof).then(|| (duty.clone(), *proof))
            })
            .collect()
    }

    /// Tells the node which committees this slot's attesters are in and
    /// which of them aggregate. (Real clients do it ahead of the slot so the
    /// node can join subnets in time; a mock node does not need the notice.)
    async fn subscribe_committees(
        &self,
        slot: Slot,
        duties: &[AttesterDuty],
        aggregators: &[(AttesterDuty, SignatureBytes)],
    ) {
        let chosen: BTreeSet<ValidatorIndex> = aggregators
            .iter()
            .map(|(duty, _)| duty.validator_index)
            .collect();
        let subscriptions: Vec<BeaconCommitteeSubscription> = duties
            .iter()
            .map(|duty| BeaconCommitteeSubscription {
                validator_index: duty.validator_index,
                committee_index: duty.committee_index,
                committees_at_slot: duty.committees_at_slot,
                slot: duty.slot,
                is_aggregator: chosen.contains(&duty.validator_index),
            })
            .collect();
        let endpoint = "beacon_committee_subscriptions";
        let subscribe = self.client.beacon_committee_subscriptions(&subscriptions);
        let path = "eth/v1/validator/beacon_committee_subscriptions";
        if let Err(error) = self
            .send(endpoint, path, None, &subscriptions, subscribe)
            .await
        {
            self.shared.record_error(slot, endpoint, &error);
        }
    }

    /// Attests at 1/3 of the slot; returns the data attested to, by committee.
    async fn attest(
        &self,
        slot: Slot,
        fork: ForkName,
        duties: &[AttesterDuty],
    ) -> BTreeMap<CommitteeIndex, AttestationData> {
        let tally = Tally::start(&self.shared, Duty::Attester, slot, duties.len());
        sleep_until_ms(self.clock.at_ms(slot, 1, 3)).await;
        let mut committees: BTreeMap<CommitteeIndex, Vec<&AttesterDuty>> = BTreeMap::new();
        for duty in duties {
            committees
                .entry(duty.committee_index)
                .or_default()
                .push(duty);
        }
        let fetched = futures::future::join_all(committees.keys().map(|&committee| async move {
            let data = self
                .until_available(slot, || self.client.attestation_data(slot, committee))
                .await;
            (committee, data)
        }))
        .await;
        let mut attested = BTreeMap::new();
        let mut singles = Vec::new();
        let mut bases: Vec<AttestationBase<E>> = Vec::new();
        for (committee, data) in fetched {
            let members = committees.get(&committee).map_or(&[][..], Vec::as_slice);
            let data = match data {
                Ok(data) if data.slot == slot => data,
                Ok(data) => {
                    let error = format!("data for slot {} when slot {slot} was asked", data.slot);
                    tally.failed(members.len(), "attestation_data", &error);
                    continue;
                }
                Err(error) => {
                    tally.failed(members.len(), "attestation_data", &error);
                    continue;
                }
            };
            attested.insert(committee, data);
            let root = self.roots.attestation(&data);
            for duty in members {
                let Some(validator) = self.validator(&duty.pubkey) else {
                    tally.failed(
                        1,
                        "attestation",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                let signature = self.sign(validator, root);
                if fork.electra_enabled() {
                    singles.push(SingleAttestation {
                        committee_index: committee,
                        attester_index: duty.validator_index,
                        data,
                        signature,
                    });
                    continue;
                }
                match committee_bits::<E>(duty) {
                    Some(aggregation_bits) => bases.push(AttestationBase {
                        aggregation_bits,
                        data,
                        signature,
                    }),
                    None => tally.failed(
                        1,
                        "attestation",
                        &format!(
                            "position {} in a committee of {} does not fit the preset",
                            duty.validator_committee_index, duty.committee_length
                        ),
                    ),
                }
            }
        }
        let path = "eth/v2/beacon/pool/attestations";
        if !singles.is_empty() {
            let submit = self.client.submit_attestations(fork, &singles);
            let sent_ms = unix_ms();
            let result = self
                .send("submit_attestations", path, Some(fork), &singles, submit)
                .await;
            self.shared.record_sent(
                SentKind::Attestation,
                slot,
                singles.iter().map(|single| single.attester_index),
                sent_ms,
                result.is_ok(),
            );
            tally.settle("submit_attestations", singles.len(), result);
        }
        if !bases.is_empty() {
            let submit = self.client.submit_attestations(fork, &bases);
            let result = self
                .send("submit_attestations", path, Some(fork), &bases, submit)
                .await;
            tally.settle("submit_attestations", bases.len(), result);
        }
        attested
    }
}

/// The aggregation bits of a pre-Electra attestation by one member: the
/// committee's length with the member's bit set.
fn committee_bits<E: EthSpec>(
    duty: &AttesterDuty,
) -> Option<BitList<E::MaxValidatorsPerCommittee>> {
    let mut bits = BitList::with_capacity(usize::try_from(duty.committee_length).ok()?).ok()?;
    bits.set(usize::try_from(duty.validator_committee_index).ok()?, true)
        .ok()?;
    Some(bits)
}
