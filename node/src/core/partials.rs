//! Partial signatures, own and peers': each is checked against the signing
//! root its duty expects and verified under the signer's share (in batches),
//! stored in the partial-signature store, and combined once a validator has
//! the threshold; the combined signature is verified under the group key
//! before it goes to [`super::submit`]. Peers' partials that fail a check
//! are dropped with a reason.

use phalanx_eth::signing::roots;
use std::collections::{BTreeMap, BTreeSet};

use phalanx_consensus::OperatorIndex;
use phalanx_crypto::threshold::ShareIndex;
use phalanx_eth::validator::ValidatorRegistration;
use phalanx_eth::{EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::types::{Action, Defects};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::error::{DropReason, PartialRejection};
use crate::parsigdb::ParSigDb;
use crate::parsigex::PartialMessage;
use crate::scheme::{Check, Partial, SignatureScheme};
use crate::sigagg::{self, Combination};

/// The partial signatures of the duties not yet expired.
pub(super) struct Partials<S: SignatureScheme> {
    parsigs: ParSigDb<S::Signature>,
    /// Sets at the threshold during the current event (see `combine_ready`).
    ready: Vec<Ready<S>>,
    /// The threshold combinations are made at (one short with the defect;
    /// the tracker keeps the real one).
    threshold: usize,
    /// Weights batch verification.
    rng: ChaCha20Rng,
    /// The head each sync-committee partial signs, by duty, validator and
    /// signing root.
    pub(super) block_roots: BTreeMap<(Duty, PublicKeyBytes, Root), Root>,
}

impl<S: SignatureScheme> Partials<S> {
    pub(super) fn new(threshold: usize, seed: [u8; 32]) -> Partials<S> {
        Partials {
            parsigs: ParSigDb::new(threshold),
            ready: Vec::new(),
            threshold,
            rng: ChaCha20Rng::from_seed(seed),
            block_roots: BTreeMap::new(),
        }
    }

    /// Forgets duties before `keep`, exits and registrations before
    /// `keep_unbound`.
    pub(super) fn prune(&mut self, keep: Slot, keep_unbound: Slot) {
        self.parsigs.expire_before(keep, keep_unbound);
        self.block_roots.retain(|(duty, _, _), _| duty.slot >= keep);
    }
}

/// A validator's partials that reached the threshold, to be combined.
struct Ready<S: SignatureScheme> {
    duty: Duty,
    validator: PublicKeyBytes,
    root: Root,
    partials: Vec<Partial<S::Signature>>,
}

/// A partial signature of the own validator client, before it is checked.
pub(super) struct OwnPartial {
    pub(super) duty: Duty,
    /// The validator's cluster index.
    pub(super) cluster_index: usize,
    pub(super) root: Root,
    pub(super) signature: SignatureBytes,
    /// The head a sync-committee message signs.
    pub(super) block_root: Option<Root>,
}

impl OwnPartial {
    /// A partial over `root` that carries nothing besides.
    pub(super) fn new(
        duty: Duty,
        cluster_index: usize,
        root: Root,
        signature: SignatureBytes,
    ) -> Self {
        OwnPartial {
            duty,
            cluster_index,
            root,
            signature,
            block_root: None,
        }
    }
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Verifies one of the own validator client's partials and makes it
    /// count: stored, sent to the peers, combined at the threshold.
    pub(super) fn accept_own_partial(
        &mut self,
        own: OwnPartial,
        outgoing: &mut Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<(), String> {
        let mut results = self.accept_own_partials(vec![own], outgoing, actions);
        results
            .pop()
            .unwrap_or_else(|| unreachable!("one result per partial"))
    }

    /// [`Self::accept_own_partial`] for a validator client's whole request:
    /// the signatures are verified in one batch (most share a signing root),
    /// and each bad one is named in its own result.
    pub(super) fn accept_own_partials(
        &mut self,
        owns: Vec<OwnPartial>,
        outgoing: &mut Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); owns.len()];
        let mut decoded = Vec::with_capacity(owns.len());
        for (k, own) in owns.iter().enumerate() {
            match S::decode_signature(own.signature.as_slice()) {
                Ok(signature) => decoded.push((k, signature)),
                Err(e) => results[k] = Err(e),
            }
        }
        let me = self.cluster.me.as_usize();
        let checks: Vec<Check<'_, S>> = decoded
            .iter()
            .map(|(k, signature)| {
                let own = &owns[*k];
                Check {
                    message: own.root.as_slice(),
                    public_key: &self.cluster.validators[own.cluster_index].shares[me],
                    signature,
                }
            })
            .collect();
        let invalid = invalid_partials(&checks, self.cluster.defects, &mut self.partials.rng);
        drop(checks);
        for (j, (k, signature)) in decoded.into_iter().enumerate() {
            let OwnPartial {
                duty,
                cluster_index,
                root,
                block_root,
                ..
            } = owns[k];
            let (index, share) = self.cluster.own_share(cluster_index);
            let validator = self.cluster.group_bytes[cluster_index];
            if invalid.contains(&j) {
                results[k] = Err(format!(
                    "the signature does not verify under this operator's share {} of validator {validator}",
                    S::public_key_bytes(share),
                ));
                continue;
            }
            if let Some(block_root) = block_root {
                self.partials
                    .block_roots
                    .insert((duty, validator, root), block_root);
            }
            let registration = (duty.kind == DutyType::BuilderRegistration)
                .then(|| self.registrations.messages.get(&(duty, root)))
                .flatten()
                .map(ssz::Encode::as_ssz_bytes);
            outgoing.push(PartialMessage {
                duty,
                validator: validator.to_vec(),
                signing_root: root.0,
                signature: S::signature_bytes(&signature).to_vec(),
                block_root: block_root.map(|r| r.0),
                registration,
            });
            let partial = Partial { index, signature };
            results[k] = self
                .store_partial(duty, validator, root, partial, self.cluster.me)
                .map_err(|e| e.to_string());
        }
        self.combine_ready(actions);
        results
    }

    /// Stores a verified partial; at the threshold its set waits in
    /// `ready` for [`Self::combine_ready`].
    fn store_partial(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        partial: Partial<S::Signature>,
        from: OperatorIndex,
    ) -> Result<(), crate::parsigdb::ParSigError> {
        self.tracker.partial(&duty, validator, from);
        if let Some(partials) = self
            .partials
            .parsigs
            .insert(duty, validator, root, partial)?
        {
            self.partials.ready.push(Ready {
                duty,
                validator,
                root,
                partials,
            });
        }
        Ok(())
    }

    /// Combines every set that reached the threshold during this event,
    /// verifies the group signatures in one batch, and submits them.
    fn combine_ready(&mut self, actions: &mut Vec<Action<E>>) {
        let ready = std::mem::take(&mut self.partials.ready);
        if ready.is_empty() {
            return;
        }
        let combinations: Vec<Combination<'_, S>> = ready
            .iter()
            .map(|r| Combination {
                partials: &r.partials,
                group_key: &self.cluster.validators[self.cluster.by_group[&r.validator]].group,
                message: r.root.as_slice(),
            })
            .collect();
        let results = sigagg::aggregate_all(
            &combinations,
            self.partials.threshold,
            &mut self.partials.rng,
        );
        drop(combinations);
        for (r, result) in ready.into_iter().zip(results) {
            match result {
                Ok(signature) => self.submit(r.duty, r.validator, r.root, signature, actions),
                Err(e) => actions.push(Action::Refused {
                    duty: r.duty,
                    validator: r.validator,
                    reason: format!("combining: {e}"),
                }),
            }
        }
    }

    pub(super) fn on_peer_partials(
        &mut self,
        from: OperatorIndex,
        partials: Vec<PartialMessage>,
        actions: &mut Vec<Action<E>>,
    ) {
        if from == self.cluster.me
            || from.as_usize()
                >= self
                    .cluster
                    .validators
                    .first()
                    .map_or(0, |v| v.shares.len())
        {
            return;
        }
        let Ok(share_index) = ShareIndex::new(u64::from(from.0) + 1) else {
            return;
        };
        // Decode everything first, then verify the batch at once.
        struct Decoded<G> {
            duty: Duty,
            validator: PublicKeyBytes,
            cluster_index: usize,
            root: Root,
            signature: G,
            block_root: Option<Root>,
            registration: Option<ValidatorRegistration>,
        }
        let mut decoded = Vec::with_capacity(partials.len());
        for message in partials {
            let validator = match <[u8; 48]>::try_from(message.validator.as_slice()) {
                Ok(bytes) => PublicKeyBytes::from(bytes),
                Err(_) => {
                    actions.push(dropped(from, PartialRejection::MalformedValidator));
                    continue;
                }
            };
            let Some(&cluster_index) = self.cluster.by_group.get(&validator) else {
                actions.push(dropped(from, PartialRejection::UnknownValidator));
                continue;
            };
            let Ok(signature) = S::decode_signature(&message.signature) else {
                actions.push(dropped(from, PartialRejection::MalformedSignature));
                continue;
            };
            if !matches!(
                message.duty.kind,
                DutyType::Attester
                    | DutyType::SyncMessage
                    | DutyType::PrepareAggregator
                    | DutyType::PrepareSyncContribution
                    | DutyType::Aggregator
                    | DutyType::SyncContribution
                    | DutyType::Randao
                    | DutyType::Proposer
                    | DutyType::Exit
                    | DutyType::BuilderRegistration
            ) {
                actions.push(dropped(from, PartialRejection::UnsupportedDuty));
                continue;
            }
            // Nothing is signed for slots more than two epochs ahead: kept,
            // such partials would only pile up until then.
            let horizon = self
                .scheduler
                .current_slot
                .map(|slot| slot.0.saturating_add(2 * self.cluster.slots_per_epoch));
            if horizon.is_some_and(|horizon| message.duty.slot.0 > horizon) {
                actions.push(dropped(from, PartialRejection::DutyOutOfWindow));
                continue;
            }
            let root = Root::from(message.signing_root);
            let block_root = message.block_root.map(Root::from);
            if message.duty.kind == DutyType::SyncMessage {
                // The root must be what the block root it names gives.
                match block_root {
                    Some(block)
                        if roots::sync_committee_message(
                            &self.cluster.network,
                            self.cluster.genesis_validators_root,
                            message.duty.slot,
                            block,
                        ) == root => {}
                    _ => {
                        actions.push(dropped(from, PartialRejection::SyncRootMismatch));
                        continue;
                    }
                }
            }
            if message.duty.kind == DutyType::Randao
                && roots::randao(
                    &self.cluster.network,
                    self.cluster.genesis_validators_root,
                    message.duty.slot.epoch(self.cluster.slots_per_epoch),
                ) != root
            {
                actions.push(dropped(from, PartialRejection::RandaoRootMismatch));
                continue;
            }
            if message.duty.kind == DutyType::PrepareAggregator
                && roots::selection_proof(
                    &self.cluster.network,
                    self.cluster.genesis_validators_root,
                    message.duty.slot,
                ) != root
            {
                actions.push(dropped(from, PartialRejection::SelectionRootMismatch));
                continue;
            }
            let mut registration = None;
            if message.duty.kind == DutyType::BuilderRegistration {
                // The message must name the validator and give the root.
                match message
                    .registration
                    .as_deref()
                    .map(<ValidatorRegistration as ssz::Decode>::from_ssz_bytes)
                {
                    Some(Ok(r))
                        if r.pubkey == validator
                            && roots::validator_registration(&self.cluster.network, &r) == root
                            && self.registration_duty(&r) == message.duty =>
                    {
                        registration = Some(r);
                    }
                    _ => {
                        actions.push(dropped(from, PartialRejection::RegistrationMismatch));
                        continue;
                    }
                }
            }
            decoded.push(Decoded {
                duty: message.duty,
                validator,
                cluster_index,
                root,
                signature,
                block_root,
                registration,
            });
        }
        if decoded.is_empty() {
            return;
        }
        let checks: Vec<Check<'_, S>> = decoded
            .iter()
            .map(|d| Check {
                message: d.root.as_slice(),
                public_key: &self.cluster.validators[d.cluster_index].shares[from.as_usize()],
                signature: &d.signature,
            })
            .collect();
        let invalid = invalid_partials(&checks, self.cluster.defects, &mut self.partials.rng);
        drop(checks);
        for (i, d) in decoded.into_iter().enumerate() {
            if invalid.contains(&i) {
                actions.push(dropped(from, PartialRejection::InvalidPartial));
                continue;
            }
            if let Some(block_root) = d.block_root {
                self.partials
                    .block_roots
                    .insert((d.duty, d.validator, d.root), block_root);
            }
            let partial = Partial {
                index: share_index,
                signature: d.signature,
            };
            if self
                .store_partial(d.duty, d.validator, d.root, partial, from)
                .is_err()
            {
                actions.push(dropped(from, PartialRejection::EquivocatingPartial));
            } else if let Some(registration) = d.registration {
                self.registrations
                    .messages
                    .insert((d.duty, d.root), registration);
            }
        }
        self.combine_ready(actions);
    }
}

/// The indices in `checks` of the partials that do not verify, checked
/// in one batch (none are checked with the deliberate defect that skips
/// them).
fn invalid_partials<S: SignatureScheme>(
    checks: &[Check<'_, S>],
    defects: Defects,
    rng: &mut ChaCha20Rng,
) -> BTreeSet<usize> {
    if checks.is_empty() || defects.skips_partial_checks() {
        return BTreeSet::new();
    }
    S::find_invalid(checks, rng).into_iter().collect()
}

fn dropped<E: EthSpec>(from: OperatorIndex, reason: PartialRejection) -> Action<E> {
    Action::Dropped {
        from,
        reason: DropReason::Partial(reason),
    }
}
