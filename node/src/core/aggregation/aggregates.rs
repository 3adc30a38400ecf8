//! Aggregate attestations: which validators aggregate (their combined
//! selection proofs), the consensus check of a proposed set of aggregates,
//! the aggregate and proof the cluster signs, the validator client's
//! signature of it, and the signed aggregate submitted.

use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, Attestation,
    SignedAggregateAndProofBase, SignedAggregateAndProofElectra,
};
use phalanx_eth::selection::is_aggregator;
use phalanx_eth::signing::roots;
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};

use crate::core::consensus::DutyValidity;
use crate::core::partials::OwnPartial;
use crate::core::types::{Action, Submission, VcSigned};
use crate::core::Core;
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
pub(in crate::core) fn check_aggregates<E: EthSpec, S: SignatureScheme>(
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

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// The validators whose combined selection proof makes them aggregate
    /// at `slot`, with their committees.
    pub(super) fn attestation_aggregators(
        &self,
        slot: Slot,
    ) -> Vec<(PublicKeyBytes, CommitteeIndex)> {
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

    /// The beacon node's aggregates arrived: propose them.
    pub(in crate::core) fn on_aggregates(
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

    /// The aggregate and proof the cluster signs for an aggregator: the
    /// decided aggregate of its committee and its combined selection proof.
    pub(in crate::core) fn aggregate_and_proof(
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

    /// One aggregate and proof of the own validator client.
    pub(in crate::core) fn own_aggregate(
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

    /// The signed aggregate, if the signature is over the aggregate and
    /// proof the cluster decided.
    pub(super) fn signed_aggregate(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
        fork: ForkName,
    ) -> Option<Submission<E>> {
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
