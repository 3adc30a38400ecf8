//! The sync-committee message duty: each validator client signs its own
//! head (no consensus); the node checks that the partial's root is what
//! that head gives, keeps the head with the partial, and submits the
//! combined message.

use phalanx_eth::signing::roots;
use phalanx_eth::sync_committee::SyncCommitteeMessage;
use phalanx_eth::{EthSpec, PublicKeyBytes, Root, SignatureBytes, Slot};

use super::partials::OwnPartial;
use super::types::{Action, ApiFailure, Submission, VcResponse};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::scheme::SignatureScheme;

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Starts the slot's sync-committee message duty at its time.
    pub(super) fn start_sync_messages(&mut self, now_ms: u64, slot: Slot) {
        let sync = Duty::new(slot, DutyType::SyncMessage);
        let (start, deadline) = self.cluster.window(slot, DutyType::SyncMessage);
        if now_ms >= start && now_ms < deadline && !self.scheduler.started.contains(&sync) {
            let members = self
                .scheduler
                .sync_members_at(slot, self.cluster.slots_per_epoch);
            if !members.is_empty() {
                self.scheduler.started.insert(sync);
                self.tracker.started(sync, deadline);
                // Sync messages need no data from the beacon node here: each
                // validator client signs its own head.
                self.tracker.fetched(&sync);
                self.tracker.expect(&sync, members);
            }
        }
    }

    pub(super) fn on_vc_sync_messages(
        &mut self,
        messages: Vec<SyncCommitteeMessage>,
        actions: &mut Vec<Action<E>>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        self.own_partials(
            &messages,
            "sync committee messages",
            actions,
            Self::own_sync_message,
        )
    }

    fn own_sync_message(
        &mut self,
        message: &SyncCommitteeMessage,
    ) -> Result<Option<OwnPartial>, String> {
        let cluster_index = *self
            .scheduler
            .indices
            .get(&message.validator_index)
            .ok_or_else(|| {
                format!(
                    "validator {} is not a validator of this cluster",
                    message.validator_index
                )
            })?;
        if !self
            .scheduler
            .sync_members_at(message.slot, self.cluster.slots_per_epoch)
            .contains(&self.cluster.group_bytes[cluster_index])
        {
            return Err(format!(
                "validator {} is not in the sync committee at slot {}",
                message.validator_index, message.slot
            ));
        }
        let root = roots::sync_committee_message(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            message.slot,
            message.beacon_block_root,
        );
        let duty = Duty::new(message.slot, DutyType::SyncMessage);
        Ok(Some(OwnPartial {
            duty,
            cluster_index,
            root,
            signature: message.signature,
            block_root: Some(message.beacon_block_root),
        }))
    }

    /// The sync-committee message for a combined signature.
    pub(super) fn sync_message_submission(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        root: Root,
        signature_bytes: SignatureBytes,
    ) -> Option<Submission<E>> {
        let block_root = *self.partials.block_roots.get(&(duty, validator, root))?;
        let index = *self.scheduler.index_of.get(&validator)?;
        Some(Submission::SyncMessage(Box::new(SyncCommitteeMessage {
            slot: duty.slot,
            beacon_block_root: block_root,
            validator_index: index,
            signature: signature_bytes,
        })))
    }
}
