//! When each duty starts and by when it must be done: all timing policy in
//! one place, as fractions of the network's slot duration, so that short
//! devnet slots and 12-second mainnet slots follow the same rules.

use std::time::Duration;

use crate::duty::DutyType;

/// Offsets from the start of a duty's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DutyTiming {
    /// When the node starts the duty (fetches data, starts consensus).
    pub start: Duration,
    /// After this the duty counts as failed; the tracker says why.
    pub deadline: Duration,
}

/// Start and deadline of a duty type for a slot duration.
///
/// - Proposals start at the slot's start (after the randao reveal) and must
///   be broadcast within the slot; one later than the first third misses
///   the slot's votes and may be orphaned, but still counts.
/// - Attestations start at one third, when the block should be known, and
///   must be out by two thirds, when aggregation starts.
/// - Aggregates and contributions start at two thirds and must be out by
///   the end of the slot.
/// - Sync-committee messages are due with attestations, but followed from
///   the slot's start (clients sign as soon as the head block arrives).
/// - Selection proofs and randao reveals have until the duty they serve.
/// - Builder registrations and exits are not slot-bound: they have an epoch
///   (32 slots on mainnet, here given in slots by the caller).
pub fn duty_timing(kind: DutyType, slot: Duration, slots_per_epoch: u32) -> DutyTiming {
    let third = slot / 3;
    let (start, deadline) = match kind {
        DutyType::Randao | DutyType::Proposer => (Duration::ZERO, slot),
        DutyType::Attester => (third, 2 * third),
        // Clients sign the head as soon as its block arrives, often before
        // the first third: the duty is followed from the slot's start.
        DutyType::SyncMessage => (Duration::ZERO, 2 * third),
        DutyType::PrepareAggregator | DutyType::PrepareSyncContribution => {
            (Duration::ZERO, 2 * third)
        }
        DutyType::Aggregator | DutyType::SyncContribution => (2 * third, slot),
        DutyType::BuilderRegistration | DutyType::Exit => (Duration::ZERO, slot * slots_per_epoch),
    };
    DutyTiming { start, deadline }
}

/// How long a consensus round lasts for a duty: the first round leaves
/// time for a slow leader within the duty's window, later rounds are
/// shorter so that several fit before the deadline.
pub fn round_timeout(kind: DutyType, slot: Duration, round: u64) -> Duration {
    let window = {
        let timing = duty_timing(kind, slot, 32);
        timing.deadline.saturating_sub(timing.start)
    };
    let first = (window / 4).max(Duration::from_millis(250));
    let later = (window / 8).max(Duration::from_millis(150));
    if round <= 1 {
        first
    } else {
        first + later * u32::try_from(round - 1).unwrap_or(u32::MAX).min(1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_slots_follow_the_thirds() {
        let slot = Duration::from_secs(12);
        let attester = duty_timing(DutyType::Attester, slot, 32);
        assert_eq!(
            (attester.start, attester.deadline),
            (Duration::from_secs(4), Duration::from_secs(8))
        );
        let aggregator = duty_timing(DutyType::Aggregator, slot, 32);
        assert_eq!(
            (aggregator.start, aggregator.deadline),
            (Duration::from_secs(8), slot)
        );
        let proposer = duty_timing(DutyType::Proposer, slot, 32);
        assert_eq!(proposer.deadline, slot);
        for kind in DutyType::ALL {
            let t = duty_timing(kind, slot, 32);
            assert!(t.start < t.deadline, "{kind:?}");
        }
    }

    #[test]
    fn several_rounds_fit_before_an_attestation_deadline() {
        let slot = Duration::from_secs(12);
        let window = Duration::from_secs(4);
        let mut elapsed = Duration::ZERO;
        let mut rounds = 0;
        while elapsed + round_timeout(DutyType::Attester, slot, rounds + 1) <= window {
            rounds += 1;
            elapsed += round_timeout(DutyType::Attester, slot, rounds);
        }
        assert!(rounds >= 2, "only {rounds} rounds fit");
    }
}
