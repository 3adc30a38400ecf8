//! Duties that are not bound to a slot: voluntary exits and builder
//! registrations.
//!
//! An exit is signed by each operator's share (`phalanx exit`, or the
//! validator client's own exit command through the validator API); the
//! partials are exchanged and combined like any other, and the combined
//! exit goes to the beacon node. Builder registrations come from the lock,
//! signed by the group key at the ceremony so that every operator submits
//! identical bytes; a new fee recipient or gas limit is re-signed through
//! the cluster by posting partial registrations that name the group key.
//! Their message travels with the partials, so every node, the ones whose
//! operator did not sign included, combines and keeps the new one.

use phalanx_eth::signing::{
    application_builder_domain, compute_signing_root, voluntary_exit_domain,
};
use phalanx_eth::validator::{
    SignedValidatorRegistration, SignedVoluntaryExit, ValidatorRegistration, VoluntaryExit,
};
use phalanx_eth::{Epoch, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};

use super::{Action, Core, OwnPartial, Submission, UNBOUND_EPOCHS};
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// The domain an exit is verified under by a chain at `now_slot`: the
    /// Capella version from Deneb on (EIP-7044), before that the version
    /// of the exit's epoch.
    fn exit_root(&self, exit: &VoluntaryExit) -> Root {
        let now = self
            .current_slot
            .unwrap_or(Slot(0))
            .epoch(self.slots_per_epoch);
        let fork = self.network.fork_at(now).unwrap_or(ForkName::Fulu);
        let capella = self
            .network
            .fork_version(ForkName::Capella)
            .unwrap_or_else(|| self.network.fork_version_at(exit.epoch));
        let domain = voluntary_exit_domain(
            fork,
            self.network.fork_version_at(exit.epoch),
            capella,
            self.genesis_validators_root,
        );
        compute_signing_root(exit, domain)
    }

    /// The duty an exit belongs to: the first slot of its epoch.
    fn exit_duty(&self, epoch: Epoch) -> Duty {
        Duty::new(Slot(epoch.0 * self.slots_per_epoch), DutyType::Exit)
    }

    /// A partial exit of this operator: verified, shared, combined.
    pub(super) fn own_exit(
        &mut self,
        now_ms: u64,
        signed: &SignedVoluntaryExit,
    ) -> Result<Option<OwnPartial>, String> {
        let exit = &signed.message;
        let position = *self.indices.get(&exit.validator_index).ok_or_else(|| {
            format!(
                "validator {} is not a validator of this cluster",
                exit.validator_index
            )
        })?;
        let now = self.slot_at(now_ms).epoch(self.slots_per_epoch);
        if exit.epoch > now {
            return Err(format!(
                "the exit is for epoch {}, after the current epoch {now}: sign it for an epoch that has begun",
                exit.epoch
            ));
        }
        let duty = self.exit_duty(exit.epoch);
        let root = self.exit_root(exit);
        self.track_unbound(now_ms, duty, self.group_bytes[position]);
        Ok(Some(OwnPartial::new(
            duty,
            position,
            root,
            signed.signature,
        )))
    }

    /// Starts tracking an exit or registration duty the first time it is
    /// seen; its deadline is when its partials stop waiting for the other
    /// operators', UNBOUND_EPOCHS after its epoch.
    pub(super) fn track_unbound(&mut self, now_ms: u64, duty: Duty, validator: PublicKeyBytes) {
        if self.started.insert(duty) {
            let end = duty.slot.0 + UNBOUND_EPOCHS * self.slots_per_epoch;
            let deadline = self.genesis_time_ms + end * self.slot_ms;
            let epoch_ms = self.slot_ms * self.slots_per_epoch;
            self.tracker.started(duty, deadline.max(now_ms + epoch_ms));
            self.tracker.fetched(&duty);
            self.tracker.decided(&duty);
        }
        self.tracker.expect(&duty, [validator]);
    }

    /// The combined exit, if the combined signature is over the exit of
    /// this validator at the duty's epoch.
    pub(super) fn exit_submission(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
    ) -> Option<Submission<E>> {
        let message = VoluntaryExit {
            epoch: duty.slot.epoch(self.slots_per_epoch),
            validator_index: *self.index_of.get(&validator)?,
        };
        (self.exit_root(&message) == root)
            .then(|| Submission::Exit(Box::new(SignedVoluntaryExit { message, signature })))
    }

    /// The duty a new registration is combined under: the epoch of its
    /// timestamp, the same on every operator whenever each signs it.
    pub(super) fn registration_duty(&self, message: &ValidatorRegistration) -> Duty {
        let epoch = self
            .slot_at(message.timestamp.saturating_mul(1000))
            .epoch(self.slots_per_epoch);
        Duty::new(
            Slot(epoch.0 * self.slots_per_epoch),
            DutyType::BuilderRegistration,
        )
    }

    /// What a builder registration's signature signs.
    pub(super) fn registration_root(&self, message: &ValidatorRegistration) -> Root {
        compute_signing_root(
            message,
            application_builder_domain(self.network.genesis_fork_version),
        )
    }

    /// A builder registration from the validator client or from
    /// `phalanx`: one naming this operator's share is the client's own,
    /// acknowledged (the lock's registration is what the cluster submits);
    /// one naming the group key is a partial of a new registration, signed
    /// through the cluster.
    pub(super) fn own_registration(
        &mut self,
        now_ms: u64,
        signed: &SignedValidatorRegistration,
    ) -> Result<Option<OwnPartial>, String> {
        let message = &signed.message;
        let root = self.registration_root(message);
        if let Some(&position) = self.by_group.get(&message.pubkey) {
            if message.timestamp.saturating_mul(1000) > now_ms {
                return Err(format!(
                    "the registration's timestamp {} is in the future: the operators agree on one that has passed",
                    message.timestamp
                ));
            }
            let duty = self.registration_duty(message);
            self.registration_messages
                .insert((duty, root), message.clone());
            self.track_unbound(now_ms, duty, message.pubkey);
            return Ok(Some(OwnPartial::new(
                duty,
                position,
                root,
                signed.signature,
            )));
        }
        let me = self.me as usize;
        let position = self
            .validators
            .iter()
            .position(|v| S::public_key_bytes(&v.shares[me]) == message.pubkey)
            .ok_or_else(|| {
                format!(
                    "{} is neither a validator of this cluster nor this operator's share of one",
                    message.pubkey
                )
            })?;
        let signature = S::decode_signature(signed.signature.as_slice())?;
        if !S::verify(
            &self.validators[position].shares[me],
            root.as_slice(),
            &signature,
        ) {
            return Err("the signature does not verify under the share it names".into());
        }
        Ok(None)
    }

    /// The combined registration, once a new one has combined: it replaces
    /// the validator's current one.
    pub(super) fn registration_submission(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature: SignatureBytes,
        actions: &mut Vec<Action<E>>,
    ) -> Option<Submission<E>> {
        let message: ValidatorRegistration = self.registration_messages.get(&(duty, root))?.clone();
        let signed = SignedValidatorRegistration { message, signature };
        let newer = self
            .registrations
            .get(&validator)
            .is_none_or(|current| current.message.timestamp <= signed.message.timestamp);
        if newer {
            self.registrations.insert(validator, signed.clone());
            actions.push(Action::Registered(signed.clone()));
        }
        Some(Submission::Registrations(vec![signed]))
    }

    /// At each epoch's start with the builder API on: every validator's
    /// current registration goes to the beacon node.
    pub(super) fn submit_registrations(
        &mut self,
        now_ms: u64,
        slot: Slot,
        actions: &mut Vec<Action<E>>,
    ) {
        if !self.builder_api
            || !slot.0.is_multiple_of(self.slots_per_epoch)
            || self.indices.is_empty()
        {
            return;
        }
        let duty = Duty::new(slot, DutyType::BuilderRegistration);
        let registrations: Vec<SignedValidatorRegistration> =
            self.registrations.values().cloned().collect();
        if registrations.is_empty() {
            return;
        }
        for validator in self.registrations.keys().copied().collect::<Vec<_>>() {
            self.track_unbound(now_ms, duty, validator);
        }
        actions.push(Action::Submit {
            duty,
            validator: registrations[0].message.pubkey,
            submission: Submission::Registrations(registrations),
        });
    }
}
