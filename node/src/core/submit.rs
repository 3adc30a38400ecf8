//! Submission: a combined, verified signature becomes the object the
//! beacon node takes (each duty's module builds its own), or waits here
//! for the decision it needs when it combined first. Combined selection
//! proofs and randao reveals are not submitted: they answer the validator
//! client and fetch the block.

use std::collections::BTreeMap;

use phalanx_eth::{EthSpec, PublicKeyBytes, Root, Slot};

use super::types::{Action, Submission};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

/// What a duty's module made of a combined signature.
pub(super) enum Built<E: EthSpec> {
    /// The object to submit.
    Ready(Submission<E>),
    /// The decision the object needs is not there yet.
    Wait,
    /// The signature is over something other than what was decided.
    Refused(&'static str),
    /// Nothing to submit.
    Nothing,
}

impl<E: EthSpec> Built<E> {
    /// `Ready` if built, else refused with `reason`.
    pub(super) fn or_refused(built: Option<Submission<E>>, reason: &'static str) -> Built<E> {
        built.map_or(Built::Refused(reason), Built::Ready)
    }
}

/// Combined signatures that wait for their duty's decision.
pub(super) struct Waiting<S: SignatureScheme> {
    combined: BTreeMap<(Duty, PublicKeyBytes), (Root, S::Signature)>,
}

impl<S: SignatureScheme> Waiting<S> {
    pub(super) fn new() -> Waiting<S> {
        Waiting {
            combined: BTreeMap::new(),
        }
    }

    fn insert(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: S::Signature,
    ) {
        self.combined.insert((duty, validator), (root, signature));
    }

    /// Takes the signatures waiting for `duty`, in validator order.
    pub(super) fn take(&mut self, duty: Duty) -> Vec<(PublicKeyBytes, Root, S::Signature)> {
        let waiting: Vec<(PublicKeyBytes, Root, S::Signature)> = self
            .combined
            .iter()
            .filter(|((d, _), _)| *d == duty)
            .map(|((_, validator), (root, signature))| (*validator, *root, *signature))
            .collect();
        for (validator, _, _) in &waiting {
            self.combined.remove(&(duty, *validator));
        }
        waiting
    }

    /// Forgets duties before `keep`.
    pub(super) fn prune(&mut self, keep: Slot) {
        self.combined.retain(|(duty, _), _| duty.slot >= keep);
    }
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Builds the object for a combined signature and submits it, or waits
    /// for the decision it needs.
    pub(super) fn submit(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: S::Signature,
        actions: &mut Vec<Action<E>>,
    ) {
        if matches!(
            duty.kind,
            DutyType::PrepareAggregator | DutyType::PrepareSyncContribution
        ) {
            self.vc
                .selections
                .insert((duty, validator, root), signature);
            self.answer_selections(actions);
            return;
        }
        if duty.kind == DutyType::Randao {
            self.on_randao(duty.slot, signature, actions);
            return;
        }
        let signature_bytes = S::signature_bytes(&signature);
        let built = match duty.kind {
            DutyType::Exit => Built::or_refused(
                self.exit_submission(duty, validator, root, signature_bytes),
                CANNOT_REBUILD,
            ),
            DutyType::BuilderRegistration => Built::or_refused(
                self.registration_submission(duty, validator, root, signature_bytes, actions),
                CANNOT_REBUILD,
            ),
            DutyType::Proposer => self.block_submission(duty.slot, root, signature_bytes),
            DutyType::Attester => {
                self.attestation_submission(duty, validator, root, signature_bytes)
            }
            DutyType::Aggregator | DutyType::SyncContribution => {
                self.aggregation_submission(duty, validator, root, signature_bytes)
            }
            DutyType::SyncMessage => self
                .sync_message_submission(duty, validator, root, signature_bytes)
                .map_or(Built::Nothing, Built::Ready),
            _ => Built::Nothing,
        };
        match built {
            Built::Ready(submission) => actions.push(Action::Submit {
                duty,
                validator,
                submission,
            }),
            Built::Wait => self.waiting.insert(duty, validator, root, signature),
            Built::Refused(reason) => actions.push(Action::Refused {
                duty,
                validator,
                reason: reason.into(),
            }),
            Built::Nothing => {}
        }
    }
}

/// Why an exit or registration that combined is not submitted.
const CANNOT_REBUILD: &str = "partials combined over a message this node cannot rebuild";
