//! What the core reports: answers to the validator client's requests,
//! decisions, duty outcomes, peers' dropped messages and refusals to sign
//! (to logs and metrics), and new builder registrations (to disk).

use phalanx_consensus::OperatorIndex;
use phalanx_eth::validator::SignedValidatorRegistration;
use phalanx_eth::{EthSpec, PublicKeyBytes};

use super::Driver;
use crate::core::{ApiFailure, VcResponse};
use crate::duty::Duty;
use crate::error::DropReason;
use crate::runtime::metrics::{outcome_label, DropLabels, DutyLabels, PenaltyLabels, TypeLabels};
use crate::runtime::now_ms;
use crate::runtime::penalties::PENALTY;
use crate::runtime::persistence::save_registration;
use crate::tracker::Outcome;

impl<E: EthSpec> Driver<E> {
    /// Answers a validator-client request, if it still waits.
    pub(super) fn reply(&mut self, id: u64, result: Result<VcResponse<E>, ApiFailure>) {
        if let Some(reply) = self.replies.remove(&id) {
            let _ = reply.send(result);
        }
    }

    /// Consensus decided a duty in `round`.
    pub(super) fn decided(&self, duty: Duty, round: u64) {
        tracing::debug!(%duty, round, "decided");
        self.metrics
            .decided_round
            .get_or_create(&TypeLabels {
                duty: duty.kind.name().into(),
            })
            .observe(round as f64);
    }

    /// A duty's outcome: one line per duty, and its count.
    pub(super) fn outcome(&self, duty: Duty, outcome: Outcome) {
        let label = outcome_label(&outcome);
        match &outcome {
            Outcome::Success => {
                tracing::info!(
                    slot = duty.slot.0,
                    duty = duty.kind.name(),
                    "duty succeeded"
                )
            }
            Outcome::Failed(failure) => tracing::warn!(
                slot = duty.slot.0,
                duty = duty.kind.name(),
                reason = label,
                detail = ?failure,
                "duty failed"
            ),
        }
        self.metrics
            .duties
            .get_or_create(&DutyLabels {
                duty: duty.kind.name().into(),
                outcome: label,
            })
            .inc();
    }

    /// The core dropped a peer's message: logged once per peer and reason
    /// in a window (a flood must not become a flood of lines), counted
    /// always.
    pub(super) fn dropped(&mut self, from: OperatorIndex, reason: &DropReason) {
        let (what, label) = (reason.what(), reason.label());
        if let Some(not_logged) = self.drop_log.admit(from, label, now_ms()) {
            tracing::warn!(
                peer = from.0,
                what,
                reason = label,
                not_logged,
                "dropped a peer's message (the same since the last line: not_logged)"
            );
        }
        self.metrics
            .dropped
            .get_or_create(&DropLabels {
                peer: from.to_string(),
                what: what.into(),
                reason: label.into(),
            })
            .inc();
    }

    /// A peer's message was dropped as a fault: a penalty point, and past
    /// the threshold a disconnection (see [`crate::runtime::penalties`]).
    pub(super) fn penalise(&mut self, from: OperatorIndex, reason: &'static str, points: f64) {
        self.metrics
            .peer_penalties
            .get_or_create(&PenaltyLabels {
                peer: from.to_string(),
                reason: reason.into(),
            })
            .inc();
        let Some(score) = self.scores.fault(from, points, now_ms()) else {
            return;
        };
        let Some(peer) = self.peers.get(from.as_usize()).copied() else {
            return;
        };
        tracing::warn!(
            peer = from.0,
            %peer,
            score,
            reason,
            penalty_secs = PENALTY.as_secs(),
            "an operator keeps sending faulty messages: disconnecting it for a while"
        );
        self.net.penalise(peer, PENALTY);
    }

    /// Keeps a registration the cluster combined: it outlives a restart.
    pub(super) fn registered(&self, registration: &SignedValidatorRegistration) {
        save_registration(&self.data_dir, registration);
    }
}

/// Slashing protection refused to let a decided value be signed.
pub(super) fn refused(duty: Duty, validator: PublicKeyBytes, reason: &str) {
    tracing::warn!(%duty, %validator, reason, "refused to sign");
}
