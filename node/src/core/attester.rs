//! The attester duty: at a third of the slot the node fetches attestation
//! data for the committees of its validators, the cluster agrees on it
//! (checked for slot, epochs, committees and slashing safety), the decided
//! data is recorded in the slashing database and the decided-value store,
//! the validator client gets it and signs it, and the combined signature
//! goes out as an attestation in the layout of the slot's fork.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::attestation::{Attestation, AttestationBase, AttestationData, SingleAttestation};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::signing::roots;
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};
use ssz_types::BitList;

use super::partials::OwnPartial;
use super::submit::Built;
use super::types::{
    Action, ApiFailure, AttestationSubmission, Attester, Submission, VcAttestation, VcResponse,
};
use super::vc::Pending;
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::error::InvalidValue;
use crate::scheme::SignatureScheme;
use crate::slashing::{Safety, SlashingDb};
use crate::tracker::Failure;
use crate::value::{decode_attestation_data, encode_attestation_data, DutyValue};
use phalanx_consensus as qbft;

/// What consensus checks of proposed attestation data: per committee, the
/// slot, the target epoch of the slot, a source not after the target, the
/// committee index of the fork's layout, a committee with a cluster
/// validator, every such committee present, and no slashable vote for any
/// of its validators.
pub(super) fn check_attestation_data(
    slot: Slot,
    entries: &[(CommitteeIndex, AttestationData)],
    committees: Option<&BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>>>,
    network: &NetworkConfig,
    genesis_validators_root: Root,
    slashing: &SlashingDb,
) -> Result<(), InvalidValue> {
    let epoch = slot.epoch(network.slots_per_epoch());
    let electra = network
        .fork_at_slot(slot)
        .map_err(InvalidValue::UnknownFork)?;
    let electra = electra.electra_enabled();
    for (committee, data) in entries {
        if data.slot != slot {
            return Err(InvalidValue::DataSlot {
                found: data.slot,
                slot,
            });
        }
        if data.target.epoch != epoch {
            return Err(InvalidValue::TargetEpoch {
                found: data.target.epoch,
                epoch,
            });
        }
        if data.source.epoch > data.target.epoch {
            return Err(InvalidValue::SourceAfterTarget);
        }
        let expected_index = if electra {
            CommitteeIndex(0)
        } else {
            *committee
        };
        if data.index != expected_index {
            return Err(InvalidValue::DataIndex {
                committee: *committee,
                index: data.index,
            });
        }
        if let Some(known) = committees {
            if !known.contains_key(committee) {
                return Err(InvalidValue::NoClusterValidator(*committee));
            }
            let root = roots::attestation(network, genesis_validators_root, data);
            for validator in known.get(committee).into_iter().flatten() {
                slashing
                    .check_attestation(validator, data.source.epoch, data.target.epoch, root)
                    .map_err(|reason| InvalidValue::SlashableAttestation {
                        validator: *validator,
                        reason,
                    })?;
            }
        }
    }
    if let Some(known) = committees {
        if let Some(missing) = known.keys().find(|c| !entries.iter().any(|(e, _)| e == *c)) {
            return Err(InvalidValue::MissingCommittee(*missing));
        }
    }
    Ok(())
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Starts the slot's attester duty at its time: fetches the data of
    /// the cluster's committees (one answer serves all from Electra on).
    pub(super) fn start_attester(&mut self, now_ms: u64, slot: Slot, actions: &mut Vec<Action<E>>) {
        let attester = Duty::new(slot, DutyType::Attester);
        let (start, deadline) = self.cluster.window(slot, DutyType::Attester);
        if now_ms >= start && now_ms < deadline && !self.scheduler.started.contains(&attester) {
            if let Some(duties) = self.scheduler.attester.get(&slot) {
                self.scheduler.started.insert(attester);
                self.tracker.started(attester, deadline);
                self.tracker
                    .expect(&attester, duties.iter().map(|d| d.pubkey));
                let electra = self.cluster.fork(slot).is_ok_and(ForkName::electra_enabled);
                let committees: BTreeSet<CommitteeIndex> = if electra {
                    [CommitteeIndex(0)].into()
                } else {
                    duties.iter().map(|d| d.committee_index).collect()
                };
                actions.push(Action::FetchAttestationData {
                    duty: attester,
                    committees: committees.into_iter().collect(),
                });
            }
        }
    }

    pub(super) fn on_attestation_data(
        &mut self,
        duty: Duty,
        result: Result<Vec<(CommitteeIndex, AttestationData)>, String>,
        actions: &mut Vec<Action<E>>,
    ) {
        let event = match result {
            Ok(mut entries) => {
                self.tracker.fetched(&duty);
                // From Electra on one answer serves every committee.
                if self
                    .cluster
                    .fork(duty.slot)
                    .is_ok_and(ForkName::electra_enabled)
                {
                    if let Some((_, data)) = entries.first().copied() {
                        entries = self
                            .scheduler
                            .attester
                            .get(&duty.slot)
                            .map(|duties| {
                                duties
                                    .iter()
                                    .map(|d| d.committee_index)
                                    .collect::<BTreeSet<_>>()
                                    .into_iter()
                                    .map(|c| (c, data))
                                    .collect()
                            })
                            .unwrap_or_default();
                    }
                }
                entries.sort_by_key(|(c, _)| *c);
                entries.dedup_by_key(|(c, _)| *c);
                if entries.is_empty() {
                    qbft::Event::Join { instance: duty }
                } else {
                    qbft::Event::Propose {
                        instance: duty,
                        value: encode_attestation_data(&entries),
                    }
                }
            }
            // Without data of its own the node follows the others' proposals.
            Err(_) => qbft::Event::Join { instance: duty },
        };
        self.run_consensus(event, actions);
    }

    pub(super) fn on_decided_attestation(
        &mut self,
        duty: Duty,
        value: &DutyValue,
        actions: &mut Vec<Action<E>>,
    ) {
        let Ok(entries) = decode_attestation_data(value) else {
            return;
        };
        self.tracker.decided(&duty);
        let duties = self
            .scheduler
            .attester
            .get(&duty.slot)
            .cloned()
            .unwrap_or_default();
        for (committee, data) in &entries {
            self.dutydb
                .store_committee_data(duty.slot, *committee, *data);
            let root = roots::attestation(
                &self.cluster.network,
                self.cluster.genesis_validators_root,
                data,
            );
            for validator in duties
                .iter()
                .filter(|d| d.committee_index == *committee)
                .map(|d| d.pubkey)
            {
                #[cfg(feature = "test-utils")]
                if self.cluster.defects.accept_second_value {
                    self.dutydb.replace_attester(duty, validator, *data);
                }
                let checked = if self.accepts_second_value() {
                    Ok(Safety::Safe)
                } else {
                    self.slashing.check_and_insert_attestation(
                        validator,
                        data.source.epoch,
                        data.target.epoch,
                        root,
                    )
                };
                match checked {
                    Ok(Safety::Safe | Safety::SameData) => {
                        if let Err(conflict) = self.dutydb.store_attester(duty, validator, *data) {
                            actions.push(Action::Refused {
                                duty,
                                validator,
                                reason: conflict.to_string(),
                            });
                        }
                    }
                    Err(e) => {
                        self.tracker.failed(&duty, Failure::Slashing(e.to_string()));
                        actions.push(Action::Refused {
                            duty,
                            validator,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        self.answer_attestation_requests(actions);
    }

    /// Whether the deliberate defect lets a second, different value past
    /// the slashing check and the decided-value store.
    fn accepts_second_value(&self) -> bool {
        #[cfg(feature = "test-utils")]
        {
            self.cluster.defects.accept_second_value
        }
        #[cfg(not(feature = "test-utils"))]
        {
            false
        }
    }

    /// The decided data a validator client gets for a committee: from
    /// Electra on every committee of the slot votes the same data.
    pub(super) fn decided_data(
        &self,
        slot: Slot,
        committee: CommitteeIndex,
    ) -> Option<AttestationData> {
        let decided = self.dutydb.committee_data(slot)?;
        if let Some(data) = decided.get(&committee) {
            return Some(*data);
        }
        if self.cluster.fork(slot).is_ok_and(ForkName::electra_enabled) {
            return decided.values().next().copied();
        }
        None
    }

    /// A validator client asks for the decided data of a committee: given
    /// at once, refused, or `None` while it waits for the decision.
    pub(super) fn attestation_data_request(
        &mut self,
        now_ms: u64,
        id: u64,
        slot: Slot,
        committee_index: CommitteeIndex,
    ) -> Option<Result<VcResponse<E>, ApiFailure>> {
        if let Some(data) = self.decided_data(slot, committee_index) {
            return Some(Ok(VcResponse::AttestationData(data)));
        }
        // A late attestation still beats none: the validator client may
        // wait for the decision until the slot ends.
        let deadline_ms = self.cluster.slot_start_ms(Slot(slot.0 + 1));
        let electra = self.cluster.fork(slot).is_ok_and(ForkName::electra_enabled);
        let not_ours =
            !electra
                && self
                    .scheduler
                    .duties_known
                    .contains(&slot.epoch(self.cluster.slots_per_epoch))
                && self.scheduler.attester.get(&slot).is_some_and(|duties| {
                    !duties.iter().any(|d| d.committee_index == committee_index)
                });
        let refusal = if not_ours {
            format!("no validator of this cluster attests in committee {committee_index} at slot {slot}")
        } else if now_ms >= deadline_ms {
            format!("slot {slot} is over: its attestation can no longer be made")
        } else if slot.0 > self.cluster.slot_at(now_ms).0 + 1 {
            format!("slot {slot} is too far in the future")
        } else {
            self.vc.pending.push(Pending {
                id,
                deadline_ms,
                slot,
                committee_index,
            });
            return None;
        };
        Some(Err(ApiFailure::new(400, refusal)))
    }

    pub(super) fn on_vc_attestations(
        &mut self,
        attestations: Vec<VcAttestation>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        self.own_partials(
            &attestations,
            "attestations",
            actions,
            Self::own_attestation,
        )
    }

    fn own_attestation(
        &mut self,
        attestation: &VcAttestation,
    ) -> Result<Option<OwnPartial>, String> {
        let slot = attestation.data.slot;
        let duty = Duty::new(slot, DutyType::Attester);
        let attester = self
            .scheduler
            .attester
            .get(&slot)
            .and_then(|duties| {
                duties.iter().find(|d| match attestation.attester {
                    Attester::Index(index) => d.validator_index == index,
                    Attester::ValidatorCommitteeIndex(in_committee) => {
                        d.committee_index == attestation.committee_index
                            && d.validator_committee_index == in_committee
                    }
                })
            })
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no cluster validator has this attester duty at slot {slot} in committee {}",
                    attestation.committee_index
                )
            })?;
        if attester.committee_index != attestation.committee_index {
            return Err(format!(
                "validator {} attests in committee {}, not {}",
                attester.validator_index, attester.committee_index, attestation.committee_index
            ));
        }
        let decided = self
            .dutydb
            .attester(&duty, &attester.pubkey)
            .copied()
            .ok_or_else(|| {
                format!(
                    "the cluster has no decided attestation data for validator {} at slot {slot}",
                    attester.validator_index
                )
            })?;
        if decided != attestation.data {
            return Err(
                "the attestation data differs from the data the cluster decided".to_string(),
            );
        }
        let root = roots::attestation(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            &decided,
        );
        let cluster_index = self.cluster.by_group[&attester.pubkey];
        Ok(Some(OwnPartial::new(
            duty,
            cluster_index,
            root,
            attestation.signature,
        )))
    }

    /// The attestation for a combined signature over the decided data.
    pub(super) fn attestation_submission(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature_bytes: SignatureBytes,
    ) -> Built<E> {
        let Some(data) = self.dutydb.attester(&duty, &validator).copied() else {
            return Built::Wait;
        };
        let Some(attester) = self.scheduler.attester_duty(duty.slot, &validator).cloned() else {
            return Built::Nothing;
        };
        let signing_root = roots::attestation(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            &data,
        );
        if signing_root != root {
            return Built::Refused("partials combined over a root other than the decided data's");
        }
        let Ok(fork) = self.cluster.fork(duty.slot) else {
            return Built::Nothing;
        };
        let attestation = if fork.electra_enabled() {
            AttestationSubmission::Single(Box::new(SingleAttestation {
                committee_index: attester.committee_index,
                attester_index: attester.validator_index,
                data,
                signature: signature_bytes,
            }))
        } else {
            let Ok(mut bits) = BitList::<E::MaxValidatorsPerCommittee>::with_capacity(
                attester.committee_length as usize,
            ) else {
                return Built::Nothing;
            };
            if bits
                .set(attester.validator_committee_index as usize, true)
                .is_err()
            {
                return Built::Nothing;
            }
            AttestationSubmission::Base(Box::new(Attestation::Base(AttestationBase {
                aggregation_bits: bits,
                data,
                signature: signature_bytes,
            })))
        };
        Built::Ready(Submission::Attestation(fork, attestation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slashing::{MemoryDisk, NotSafe};
    use phalanx_eth::attestation::Checkpoint;
    use phalanx_eth::Epoch;

    fn network() -> NetworkConfig {
        NetworkConfig::devnet(ForkName::Deneb, 12_000)
    }

    fn slashing() -> SlashingDb {
        SlashingDb::open_in_memory(&MemoryDisk::new(), Root::ZERO).expect("in-memory database")
    }

    /// Data of `slot` for `committee` before Electra, source and target as
    /// an honest beacon node gives them.
    fn data(slot: u64, committee: u64) -> AttestationData {
        let epoch = Epoch(slot / network().slots_per_epoch());
        AttestationData {
            slot: Slot(slot),
            index: CommitteeIndex(committee),
            beacon_block_root: Root::repeat_byte(7),
            source: Checkpoint {
                epoch: Epoch(epoch.0.saturating_sub(1)),
                root: Root::repeat_byte(1),
            },
            target: Checkpoint {
                epoch,
                root: Root::repeat_byte(2),
            },
        }
    }

    fn committees(list: &[u64]) -> BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>> {
        list.iter()
            .map(|&c| {
                (
                    CommitteeIndex(c),
                    vec![PublicKeyBytes::repeat_byte(c as u8)],
                )
            })
            .collect()
    }

    fn check(
        slot: u64,
        entries: &[(CommitteeIndex, AttestationData)],
        known: Option<&BTreeMap<CommitteeIndex, Vec<PublicKeyBytes>>>,
        slashing: &SlashingDb,
    ) -> Result<(), InvalidValue> {
        check_attestation_data(Slot(slot), entries, known, &network(), Root::ZERO, slashing)
    }

    #[test]
    fn honest_data_of_every_committee_passes() {
        let known = committees(&[1, 3]);
        let entries = [
            (CommitteeIndex(1), data(70, 1)),
            (CommitteeIndex(3), data(70, 3)),
        ];
        assert_eq!(check(70, &entries, Some(&known), &slashing()), Ok(()));
        // Without the duties known, only the data itself is checked.
        assert_eq!(check(70, &entries[..1], None, &slashing()), Ok(()));
    }

    #[test]
    fn a_wrong_target_epoch_is_refused() {
        let mut wrong = data(70, 1);
        wrong.target.epoch = Epoch(wrong.target.epoch.0 + 1);
        let result = check(70, &[(CommitteeIndex(1), wrong)], None, &slashing());
        assert!(result.is_err_and(|e| matches!(e, InvalidValue::TargetEpoch { .. })));
    }

    #[test]
    fn a_missing_or_foreign_committee_is_refused() {
        let known = committees(&[1, 3]);
        let only_one = [(CommitteeIndex(1), data(70, 1))];
        let missing = check(70, &only_one, Some(&known), &slashing());
        assert_eq!(
            missing,
            Err(InvalidValue::MissingCommittee(CommitteeIndex(3)))
        );
        let with_foreign = [
            (CommitteeIndex(1), data(70, 1)),
            (CommitteeIndex(2), data(70, 2)),
            (CommitteeIndex(3), data(70, 3)),
        ];
        let foreign = check(70, &with_foreign, Some(&known), &slashing());
        assert_eq!(
            foreign,
            Err(InvalidValue::NoClusterValidator(CommitteeIndex(2)))
        );
    }

    #[test]
    fn a_slashable_vote_is_refused() {
        let known = committees(&[1]);
        let mut db = slashing();
        let first = data(70, 1);
        let root = roots::attestation(&network(), Root::ZERO, &first);
        db.check_and_insert_attestation(
            PublicKeyBytes::repeat_byte(1),
            first.source.epoch,
            first.target.epoch,
            root,
        )
        .expect("first vote is safe");
        let mut double = first;
        double.beacon_block_root = Root::repeat_byte(9);
        let result = check(70, &[(CommitteeIndex(1), double)], Some(&known), &db);
        assert!(result.is_err_and(|e| matches!(
            e,
            InvalidValue::SlashableAttestation {
                reason: NotSafe::DoubleVote(_),
                ..
            }
        )));
    }
}
