//! Voluntary exits, a duty not bound to a slot: an exit is signed by each
//! operator's share (`phalanx exit`, or the validator client's own exit
//! command through the validator API); the partials are exchanged and
//! combined like any other, and the combined exit goes to the beacon node.

use phalanx_eth::signing::roots;
use phalanx_eth::validator::{SignedVoluntaryExit, VoluntaryExit};
use phalanx_eth::{Epoch, EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};

use super::partials::OwnPartial;
use super::types::Submission;
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// The duty an exit belongs to: the first slot of its epoch.
    fn exit_duty(&self, epoch: Epoch) -> Duty {
        Duty::new(Slot(epoch.0 * self.cluster.slots_per_epoch), DutyType::Exit)
    }

    /// A partial exit of this operator: verified, shared, combined.
    pub(super) fn own_exit(
        &mut self,
        now_ms: u64,
        signed: &SignedVoluntaryExit,
    ) -> Result<Option<OwnPartial>, String> {
        let exit = &signed.message;
        let cluster_index = *self
            .scheduler
            .indices
            .get(&exit.validator_index)
            .ok_or_else(|| {
                format!(
                    "validator {} is not a validator of this cluster",
                    exit.validator_index
                )
            })?;
        let now = self
            .cluster
            .slot_at(now_ms)
            .epoch(self.cluster.slots_per_epoch);
        if exit.epoch > now {
            return Err(format!(
                "the exit is for epoch {}, after the current epoch {now}: sign it for an epoch that has begun",
                exit.epoch
            ));
        }
        let duty = self.exit_duty(exit.epoch);
        let root = roots::voluntary_exit(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            exit,
            self.scheduler.current_slot.unwrap_or(Slot(0)),
        );
        self.track_unbound(now_ms, duty, self.cluster.group_bytes[cluster_index]);
        Ok(Some(OwnPartial::new(
            duty,
            cluster_index,
            root,
            signed.signature,
        )))
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
            epoch: duty.slot.epoch(self.cluster.slots_per_epoch),
            validator_index: *self.scheduler.index_of.get(&validator)?,
        };
        (roots::voluntary_exit(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            &message,
            self.scheduler.current_slot.unwrap_or(Slot(0)),
        ) == root)
            .then(|| Submission::Exit(Box::new(SignedVoluntaryExit { message, signature })))
    }
}
