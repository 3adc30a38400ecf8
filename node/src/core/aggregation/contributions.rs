//! Sync-committee contributions: which members aggregate a subcommittee,
//! the head the cluster's sync messages signed, the consensus check of a
//! proposed set of contributions, the contribution and proof the cluster
//! signs, the validator client's signature of it, and the signed
//! contribution submitted.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::selection::{
    is_sync_committee_aggregator, sync_subcommittee, SYNC_COMMITTEE_SUBNET_COUNT,
};
use phalanx_eth::signing::roots;
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncCommitteeContribution,
};
use phalanx_eth::{EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use ssz::{Decode, Encode};

use crate::core::partials::OwnPartial;
use crate::core::types::{Action, Submission};
use crate::core::Core;
use crate::duty::{Duty, DutyType};
use crate::error::InvalidValue;
use crate::scheme::SignatureScheme;
use crate::value::{decode_entries, encode_entries, DutyValue};

/// Checks a proposed set of sync-committee contributions: the slot, the
/// subcommittee, at least one member.
pub(in crate::core) fn check_contributions<E: EthSpec>(
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
    /// The sync-committee members whose combined selection proof makes them
    /// aggregate a subcommittee at `slot`.
    pub(super) fn contribution_aggregators(&self, slot: Slot) -> Vec<(PublicKeyBytes, u64)> {
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

    /// The head the cluster's sync-committee messages of `slot` signed: the
    /// block root with the most partials behind it (ties: the lowest root).
    pub(super) fn signed_head(&self, slot: Slot) -> Option<Root> {
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

    /// The beacon node's contributions arrived: propose them.
    pub(in crate::core) fn on_contributions(
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

    /// The contribution and proof the cluster signs for an aggregator of a
    /// subcommittee.
    pub(super) fn contribution_and_proof(
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

    /// One contribution and proof of the own validator client.
    pub(in crate::core) fn own_contribution(
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

    /// The signed contribution, if the signature is over a contribution
    /// and proof the cluster decided.
    pub(super) fn signed_contribution(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
    ) -> Option<Submission<E>> {
        let subcommittees: BTreeSet<u64> = self.dutydb.contributions_at(duty.slot).collect();
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
}
