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
use phalanx_eth::selection::SYNC_COMMITTEE_SUBNET_COUNT;
use phalanx_eth::validator::{ValidatorRegistration, VoluntaryExit};
use phalanx_eth::{EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::proposer::facts;
use super::scheduler::unbound_kept;
use super::types::{Action, Defects, UNBOUND_EPOCHS};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::error::{DropReason, PartialRejection};
use crate::parsigdb::{replaces_older, roots_per_duty, ParSigDb, ParSigError};
use crate::parsigex::{Allowance, BatchLimits, Budget, PartialMessage};
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
    /// Per peer: what is left of its verification budget
    /// ([`BatchLimits::budget`]).
    allowances: BTreeMap<OperatorIndex, Allowance>,
}

impl<S: SignatureScheme> Partials<S> {
    pub(super) fn new(threshold: usize, seed: [u8; 32]) -> Partials<S> {
        Partials {
            parsigs: ParSigDb::new(threshold),
            ready: Vec::new(),
            threshold,
            rng: ChaCha20Rng::from_seed(seed),
            block_roots: BTreeMap::new(),
            allowances: BTreeMap::new(),
        }
    }

    /// Takes `partials` with `roots` distinct roots from `from`'s
    /// allowance at `slot`: false, and nothing taken, when it has not
    /// enough left.
    fn charge(
        &mut self,
        from: OperatorIndex,
        slot: Slot,
        partials: usize,
        roots: usize,
        budget: &Budget,
    ) -> bool {
        self.allowances
            .entry(from)
            .or_insert_with(|| Allowance::full(budget, slot.0))
            .take(budget, slot.0, partials, roots)
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

    /// A peer's batch of partials. Each is checked on its own for what is
    /// cheap (its validator, duty window, and its root against what the
    /// duty gives or what this node decided), then the rest are verified
    /// together under the sender's shares. An honest node verifies its own
    /// partials before it sends them, so a batch that does not verify
    /// comes from a faulty peer and is dropped whole, with one rejection:
    /// finding the bad partials would cost the receiver a bisection of
    /// the sender's choosing. The batch is refused unread beyond the
    /// cluster's bounds ([`BatchLimits`]), and unverified once the sender's
    /// budget for the slot is spent.
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
        let limits = BatchLimits::new(self.cluster.validators.len(), self.cluster.slots_per_epoch);
        if !limits.admits(&partials) && !self.cluster.defects.bisects_peer_batches() {
            actions.push(dropped(from, PartialRejection::BatchTooLarge));
            return;
        }
        // Every partial of the batch is charged before any is looked at:
        // even the cheap checks (a root computed, a drop reported) cost
        // this node's loop, and a flood of batches that fail them must not
        // hold up honest peers' messages.
        let budget = limits.budget();
        let slot = self.scheduler.current_slot.unwrap_or(Slot(0));
        if !self.cluster.defects.bisects_peer_batches()
            && !self.partials.charge(from, slot, partials.len(), 0, &budget)
        {
            actions.push(dropped(from, PartialRejection::OverBudget));
            return;
        }
        let mut candidates = Vec::with_capacity(partials.len());
        // The roots each (duty, validator) has from this sender, stored and
        // in this batch: a root beyond what the duty has is refused here,
        // before it costs any verification.
        let mut roots_by_duty: BTreeMap<(Duty, PublicKeyBytes), Vec<Root>> = BTreeMap::new();
        for message in partials {
            match self.check_peer_partial(&message) {
                Ok(checked) => {
                    if !replaces_older(checked.duty.kind)
                        && !self.cluster.defects.bisects_peer_batches()
                    {
                        let held = roots_by_duty
                            .entry((checked.duty, checked.validator))
                            .or_insert_with(|| {
                                self.partials.parsigs.roots_of(
                                    &checked.duty,
                                    &checked.validator,
                                    share_index.get(),
                                )
                            });
                        if !held.contains(&checked.root) {
                            if held.len() >= roots_per_duty(checked.duty.kind) {
                                actions.push(dropped(from, PartialRejection::TooManyRoots));
                                continue;
                            }
                            held.push(checked.root);
                        }
                    }
                    candidates.push((checked, message.signature));
                }
                Err(reason) => actions.push(dropped(from, reason)),
            }
        }
        if candidates.is_empty() {
            return;
        }
        let roots: BTreeSet<&Root> = candidates.iter().map(|(c, _)| &c.root).collect();
        let roots = roots.len();
        if !self.cluster.defects.bisects_peer_batches()
            && !self.partials.charge(from, slot, 0, roots, &budget)
        {
            actions.push(dropped(from, PartialRejection::OverBudget));
            return;
        }
        let mut decoded = Vec::with_capacity(candidates.len());
        for (checked, signature) in candidates {
            match S::decode_signature(&signature) {
                Ok(signature) => decoded.push((checked, signature)),
                Err(_) => actions.push(dropped(from, PartialRejection::MalformedSignature)),
            }
        }
        if decoded.is_empty() {
            return;
        }
        let checks: Vec<Check<'_, S>> = decoded
            .iter()
            .map(|(d, signature)| Check {
                message: d.root.as_slice(),
                public_key: &self.cluster.validators[d.cluster_index].shares[from.as_usize()],
                signature,
            })
            .collect();
        if self.cluster.defects.bisects_peer_batches() {
            let invalid: BTreeSet<usize> = S::find_invalid(&checks, &mut self.partials.rng)
                .into_iter()
                .collect();
            drop(checks);
            let mut index = 0;
            decoded.retain(|_| {
                index += 1;
                !invalid.contains(&(index - 1))
            });
            if !invalid.is_empty() {
                actions.push(dropped(from, PartialRejection::InvalidBatch));
            }
            self.store_peer_partials(from, share_index, decoded, actions);
            return;
        }
        let verified = self.cluster.defects.skips_partial_checks()
            || S::verify_all(&checks, &mut self.partials.rng);
        drop(checks);
        if !verified {
            // Nothing of this sender is verified again until its budget
            // has come back: a flood of bad batches costs one budget.
            if let Some(allowance) = self.partials.allowances.get_mut(&from) {
                allowance.exhaust();
            }
            actions.push(dropped(from, PartialRejection::InvalidBatch));
            return;
        }
        self.store_peer_partials(from, share_index, decoded, actions);
    }

    /// Stores a peer's verified partials and combines what reached the
    /// threshold.
    fn store_peer_partials(
        &mut self,
        from: OperatorIndex,
        share_index: ShareIndex,
        decoded: Vec<(Checked, S::Signature)>,
        actions: &mut Vec<Action<E>>,
    ) {
        for (d, signature) in decoded {
            let partial = Partial {
                index: share_index,
                signature,
            };
            match self.store_partial(d.duty, d.validator, d.root, partial, from) {
                Ok(()) => {
                    if let Some(block_root) = d.block_root {
                        self.partials
                            .block_roots
                            .insert((d.duty, d.validator, d.root), block_root);
                    }
                    if let Some(registration) = d.registration {
                        self.registrations
                            .messages
                            .insert((d.duty, d.root), registration);
                    }
                }
                Err(ParSigError::Equivocation { .. }) => {
                    actions.push(dropped(from, PartialRejection::EquivocatingPartial))
                }
                Err(ParSigError::TooManyRoots { .. }) => {
                    actions.push(dropped(from, PartialRejection::TooManyRoots))
                }
            }
        }
        self.combine_ready(actions);
    }

    /// The checks of a peer's partial that need no signature decoded: its
    /// validator and duty window, and its root against what the duty gives
    /// or what this node decided for it.
    fn check_peer_partial(&self, message: &PartialMessage) -> Result<Checked, PartialRejection> {
        let validator = <[u8; 48]>::try_from(message.validator.as_slice())
            .map(PublicKeyBytes::from)
            .map_err(|_| PartialRejection::MalformedValidator)?;
        let &cluster_index = self
            .cluster
            .by_group
            .get(&validator)
            .ok_or(PartialRejection::UnknownValidator)?;
        let duty = message.duty;
        let spe = self.cluster.slots_per_epoch;
        let network = &self.cluster.network;
        let gvr = self.cluster.genesis_validators_root;
        if let Some(current) = self.scheduler.current_slot {
            // Nothing is signed for slots more than two epochs ahead: kept,
            // such partials would only pile up until then. A validator
            // client knows the duties of its epoch and the next, so a
            // slot-bound duty lies at most in the epoch after the one of
            // the sender's slot (this node's, give or take one). Partials
            // of duties this node already forgot could never combine.
            let beyond = if replaces_older(duty.kind) {
                duty.slot.0 > current.0.saturating_add(2 * spe)
            } else {
                duty.slot.epoch(spe).0 > Slot(current.0.saturating_add(1)).epoch(spe).0 + 1
            };
            if beyond {
                return Err(PartialRejection::DutyOutOfWindow);
            }
            let keep = Slot(current.0.saturating_sub(2));
            let keep_unbound = Slot(current.0.saturating_sub(UNBOUND_EPOCHS * spe));
            if !unbound_kept(&duty, keep, keep_unbound) {
                return Err(PartialRejection::DutyExpired);
            }
        }
        if !self.cluster.defects.bisects_peer_batches()
            && !self.scheduler.may_have(duty, spe, Some(&validator))
        {
            return Err(PartialRejection::Unscheduled);
        }
        let root = Root::from(message.signing_root);
        let block_root = message.block_root.map(Root::from);
        let mut registration = None;
        match duty.kind {
            DutyType::SyncMessage => {
                // The root must be what the block root it names gives.
                let given = block_root
                    .map(|block| roots::sync_committee_message(network, gvr, duty.slot, block));
                if given != Some(root) {
                    return Err(PartialRejection::SyncRootMismatch);
                }
            }
            DutyType::Randao => {
                if roots::randao(network, gvr, duty.slot.epoch(spe)) != root {
                    return Err(PartialRejection::RandaoRootMismatch);
                }
            }
            DutyType::PrepareAggregator => {
                if roots::selection_proof(network, gvr, duty.slot) != root {
                    return Err(PartialRejection::SelectionRootMismatch);
                }
            }
            DutyType::PrepareSyncContribution => {
                // One selection proof per subcommittee, each over its root.
                if !(0..SYNC_COMMITTEE_SUBNET_COUNT).any(|subcommittee| {
                    roots::sync_selection_proof(network, gvr, duty.slot, subcommittee) == root
                }) {
                    return Err(PartialRejection::SelectionRootMismatch);
                }
            }
            DutyType::Exit => {
                if !self.exit_root_matches(duty, validator, root) {
                    return Err(PartialRejection::ExitRootMismatch);
                }
            }
            DutyType::BuilderRegistration => {
                // The message must name the validator and give the root.
                match message
                    .registration
                    .as_deref()
                    .map(<ValidatorRegistration as ssz::Decode>::from_ssz_bytes)
                {
                    Some(Ok(r))
                        if r.pubkey == validator
                            && roots::validator_registration(network, &r) == root
                            && self.registration_duty(&r) == duty =>
                    {
                        registration = Some(r);
                    }
                    _ => return Err(PartialRejection::RegistrationMismatch),
                }
            }
            DutyType::Attester
            | DutyType::Aggregator
            | DutyType::Proposer
            | DutyType::SyncContribution => {
                if self
                    .decided_root(duty, validator)
                    .is_some_and(|decided| decided != root)
                {
                    return Err(PartialRejection::DecidedRootMismatch);
                }
            }
        }
        Ok(Checked {
            duty,
            validator,
            cluster_index,
            root,
            block_root,
            registration,
        })
    }

    /// The root a partial of `duty` must sign for `validator`, once this
    /// node decided the duty's value and can tell: the decided attestation
    /// data's, the decided block's, the aggregate and proof of the decided
    /// aggregate. Sync contributions (a validator may aggregate several
    /// subcommittees) are bounded by the roots a duty has instead.
    fn decided_root(&self, duty: Duty, validator: PublicKeyBytes) -> Option<Root> {
        let network = &self.cluster.network;
        let gvr = self.cluster.genesis_validators_root;
        match duty.kind {
            DutyType::Attester => self
                .dutydb
                .attester(&duty, &validator)
                .map(|data| roots::attestation(network, gvr, data)),
            DutyType::Proposer => self
                .dutydb
                .block(duty.slot)
                .map(|block| roots::block(network, gvr, duty.slot, facts(block).root)),
            DutyType::Aggregator => self
                .aggregate_and_proof(duty.slot, validator)
                .ok()
                .map(|message| roots::aggregate_and_proof(network, gvr, &message, duty.slot)),
            _ => None,
        }
    }

    /// Whether an exit partial's root is the voluntary exit its duty (the
    /// first slot of the exit's epoch) and validator give; when the
    /// validator's index is not known yet only the duty is checked. The
    /// exit's domain follows the current slot's fork, so the roots of the
    /// slots either side of this node's are taken too: a peer's clock may
    /// be a slot off at a fork.
    fn exit_root_matches(&self, duty: Duty, validator: PublicKeyBytes, root: Root) -> bool {
        let spe = self.cluster.slots_per_epoch;
        if !duty.slot.0.is_multiple_of(spe) {
            return false;
        }
        let Some(&validator_index) = self.scheduler.index_of.get(&validator) else {
            return true;
        };
        let exit = VoluntaryExit {
            epoch: duty.slot.epoch(spe),
            validator_index,
        };
        let current = self.scheduler.current_slot.unwrap_or(Slot(0)).0;
        [
            current.saturating_sub(1),
            current,
            current.saturating_add(1),
        ]
        .into_iter()
        .any(|slot| {
            roots::voluntary_exit(
                &self.cluster.network,
                self.cluster.genesis_validators_root,
                &exit,
                Slot(slot),
            ) == root
        })
    }

    /// The partials this node holds, its own and its peers', of the duties
    /// not yet expired.
    pub fn stored_partials(&self) -> usize {
        self.partials.parsigs.len()
    }

    /// The bytes of peers' consensus messages waiting for instances not
    /// started here.
    pub fn buffered_consensus_bytes(&self) -> usize {
        self.consensus.engine.buffered_bytes()
    }
}

/// A peer's partial that passed the checks needing no signature decoded.
struct Checked {
    duty: Duty,
    validator: PublicKeyBytes,
    cluster_index: usize,
    root: Root,
    block_root: Option<Root>,
    registration: Option<ValidatorRegistration>,
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
