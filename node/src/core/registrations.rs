//! Builder registrations, a duty not bound to a slot. They come from the
//! lock, signed by the group key at the ceremony so that every operator
//! submits identical bytes, and go to the beacon node every epoch with the
//! builder API on. A new fee recipient or gas limit is re-signed through the
//! cluster by posting partial registrations that name the group key; their
//! message travels with the partials, so every node, the ones whose
//! operator did not sign included, combines and keeps the new one, which
//! then also sets the validator's fee recipient.

use phalanx_eth::signing::roots;
use std::collections::BTreeMap;

use phalanx_eth::validator::{SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::{EthSpec, ExecutionAddress, PublicKeyBytes, Root, SignatureBytes, Slot};

use super::partials::OwnPartial;
use super::scheduler::unbound_kept;
use super::types::{Action, Submission};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

/// The validators' current registrations and the messages of new ones
/// being combined.
pub(super) struct Registrations {
    /// Whether blocks may come from builders (registrations are then
    /// submitted every epoch).
    builder_api: bool,
    /// Each validator's current registration (the lock's until the cluster
    /// signs a new one).
    pub(super) current: BTreeMap<PublicKeyBytes, SignedValidatorRegistration>,
    /// The message of each new registration being combined, by duty and
    /// signing root.
    pub(super) messages: BTreeMap<(Duty, Root), ValidatorRegistration>,
}

impl Registrations {
    pub(super) fn new(
        builder_api: bool,
        current: BTreeMap<PublicKeyBytes, SignedValidatorRegistration>,
    ) -> Registrations {
        Registrations {
            builder_api,
            current,
            messages: BTreeMap::new(),
        }
    }

    /// Forgets the messages of registrations whose duty expired.
    pub(super) fn prune(&mut self, keep: Slot, keep_unbound: Slot) {
        self.messages
            .retain(|(duty, _), _| unbound_kept(duty, keep, keep_unbound));
    }
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Where a validator's execution fees go: its current builder
    /// registration's fee recipient (the lock's, until the cluster signs a
    /// new one), or the lock's.
    pub(super) fn fee_recipient(&self, cluster_index: usize) -> Option<ExecutionAddress> {
        self.registrations
            .current
            .get(&self.cluster.group_bytes[cluster_index])
            .map(|r| r.message.fee_recipient)
            .or(self.cluster.validators[cluster_index].fee_recipient)
    }

    /// The duty a new registration is combined under: the epoch of its
    /// timestamp, the same on every operator whenever each signs it.
    pub(super) fn registration_duty(&self, message: &ValidatorRegistration) -> Duty {
        let epoch = self
            .slot_at(message.timestamp.saturating_mul(1000))
            .epoch(self.cluster.slots_per_epoch);
        Duty::new(
            Slot(epoch.0 * self.cluster.slots_per_epoch),
            DutyType::BuilderRegistration,
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
        let root = roots::validator_registration(&self.cluster.network, message);
        if let Some(&cluster_index) = self.cluster.by_group.get(&message.pubkey) {
            if message.timestamp.saturating_mul(1000) > now_ms {
                return Err(format!(
                    "the registration's timestamp {} is in the future: the operators agree on one that has passed",
                    message.timestamp
                ));
            }
            let duty = self.registration_duty(message);
            self.registrations
                .messages
                .insert((duty, root), message.clone());
            self.track_unbound(now_ms, duty, message.pubkey);
            return Ok(Some(OwnPartial::new(
                duty,
                cluster_index,
                root,
                signed.signature,
            )));
        }
        let me = self.cluster.me.as_usize();
        let cluster_index = self
            .cluster
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
            &self.cluster.validators[cluster_index].shares[me],
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
        let message: ValidatorRegistration =
            self.registrations.messages.get(&(duty, root))?.clone();
        let signed = SignedValidatorRegistration { message, signature };
        let newer = self
            .registrations
            .current
            .get(&validator)
            .is_none_or(|current| current.message.timestamp <= signed.message.timestamp);
        if newer {
            self.registrations.current.insert(validator, signed.clone());
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
        if !self.registrations.builder_api
            || !slot.0.is_multiple_of(self.cluster.slots_per_epoch)
            || self.scheduler.indices.is_empty()
        {
            return;
        }
        let duty = Duty::new(slot, DutyType::BuilderRegistration);
        let registrations: Vec<SignedValidatorRegistration> =
            self.registrations.current.values().cloned().collect();
        if registrations.is_empty() {
            return;
        }
        for validator in self
            .registrations
            .current
            .keys()
            .copied()
            .collect::<Vec<_>>()
        {
            self.track_unbound(now_ms, duty, validator);
        }
        actions.push(Action::Submit {
            duty,
            validator: registrations[0].message.pubkey,
            submission: Submission::Registrations(registrations),
        });
    }
}
