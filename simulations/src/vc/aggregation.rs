//! Aggregation at two thirds of the slot: each elected attester's aggregate
//! fetched, signed as an aggregate and proof and submitted.

use std::collections::BTreeMap;

use phalanx_eth::api::AttesterDuty;
use phalanx_eth::attestation::{
    AggregateAndProofBase, AggregateAndProofElectra, Attestation, AttestationData,
    SignedAggregateAndProofBase, SignedAggregateAndProofElectra,
};
use phalanx_eth::client::ClientError;
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, SignatureBytes, Slot};
use tree_hash::TreeHash;

use super::client::Vc;
use super::stats::{Duty, Tally};
use crate::cluster::sleep_until_ms;

impl<E: EthSpec> Vc<E> {
    /// Aggregates at 2/3 of the slot, for every elected attester.
    pub(super) async fn aggregate(
        &self,
        slot: Slot,
        fork: ForkName,
        aggregators: Vec<(AttesterDuty, SignatureBytes)>,
        attested: BTreeMap<CommitteeIndex, AttestationData>,
    ) {
        if aggregators.is_empty() {
            return;
        }
        let tally = Tally::start(&self.shared, Duty::Aggregator, slot, aggregators.len());
        sleep_until_ms(self.clock.at_ms(slot, 2, 3)).await;
        let mut committees: BTreeMap<CommitteeIndex, Vec<(AttesterDuty, SignatureBytes)>> =
            BTreeMap::new();
        for (duty, proof) in aggregators {
            committees
                .entry(duty.committee_index)
                .or_default()
                .push((duty, proof));
        }
        let fetched = futures::future::join_all(committees.keys().map(|&committee| {
            let attested = attested.get(&committee).copied();
            async move {
                (
                    committee,
                    self.fetch_aggregate(slot, fork, committee, attested).await,
                )
            }
        }))
        .await;
        let mut electra = Vec::new();
        let mut base = Vec::new();
        for (committee, aggregate) in fetched {
            let members = committees.get(&committee).map_or(&[][..], Vec::as_slice);
            let aggregate = match aggregate {
                Ok(aggregate) => aggregate,
                Err((endpoint, error)) => {
                    tally.failed(members.len(), endpoint, &error);
                    continue;
                }
            };
            for (duty, selection_proof) in members {
                let Some(validator) = self.validator(&duty.pubkey) else {
                    tally.failed(
                        1,
                        "aggregate",
                        &"a duty for a key this client does not hold",
                    );
                    continue;
                };
                match (&aggregate, fork.electra_enabled()) {
                    (Attestation::Electra(aggregate), true) => {
                        let message = AggregateAndProofElectra {
                            aggregator_index: duty.validator_index,
                            aggregate: aggregate.clone(),
                            selection_proof: *selection_proof,
                        };
                        let signature =
                            self.sign(validator, self.roots.aggregate_and_proof(slot, &message));
                        electra.push(SignedAggregateAndProofElectra { message, signature });
                    }
                    (Attestation::Base(aggregate), false) => {
                        let message = AggregateAndProofBase {
                            aggregator_index: duty.validator_index,
                            aggregate: aggregate.clone(),
                            selection_proof: *selection_proof,
                        };
                        let signature =
                            self.sign(validator, self.roots.aggregate_and_proof(slot, &message));
                        base.push(SignedAggregateAndProofBase { message, signature });
                    }
                    _ => tally.failed(
                        1,
                        "aggregate_attestation",
                        &format!("an aggregate in the wrong layout for {fork}"),
                    ),
                }
            }
        }
        let path = "eth/v2/validator/aggregate_and_proofs";
        if !electra.is_empty() {
            let submit = self.client.submit_aggregate_and_proofs(fork, &electra);
            let result = self
                .send(
                    "submit_aggregate_and_proofs",
                    path,
                    Some(fork),
                    &electra,
                    submit,
                )
                .await;
            tally.settle("submit_aggregate_and_proofs", electra.len(), result);
        }
        if !base.is_empty() {
            let submit = self.client.submit_aggregate_and_proofs(fork, &base);
            let result = self
                .send(
                    "submit_aggregate_and_proofs",
                    path,
                    Some(fork),
                    &base,
                    submit,
                )
                .await;
            tally.settle("submit_aggregate_and_proofs", base.len(), result);
        }
    }

    /// One committee's aggregate for the data attested to (fetched now if
    /// attesting did not get it).
    async fn fetch_aggregate(
        &self,
        slot: Slot,
        fork: ForkName,
        committee: CommitteeIndex,
        attested: Option<AttestationData>,
    ) -> Result<Attestation<E>, (&'static str, ClientError)> {
        let data = match attested {
            Some(data) => data,
            None => self
                .until_available(slot, || self.client.attestation_data(slot, committee))
                .await
                .map_err(|error| ("attestation_data", error))?,
        };
        let data_root = data.tree_hash_root();
        self.until_available(slot, || {
            self.client
                .aggregate_attestation::<E>(fork, slot, data_root, committee)
        })
        .await
        .map_err(|error| ("aggregate_attestation", error))
    }
}
