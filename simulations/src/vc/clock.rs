//! Slot arithmetic against genesis in Unix milliseconds (the wall clock
//! itself is `crate::cluster::unix_ms`, the one clock of the runtime edges).

use phalanx_eth::Slot;

/// Slot arithmetic against genesis, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotClock {
    genesis_ms: u64,
    pub(super) slot_ms: u64,
}

impl SlotClock {
    pub(super) fn new(genesis_time: u64, slot_ms: u64) -> SlotClock {
        SlotClock {
            genesis_ms: genesis_time.saturating_mul(1000),
            slot_ms: slot_ms.max(1),
        }
    }

    /// When `slot` starts.
    pub(super) fn start_ms(&self, slot: Slot) -> u64 {
        self.genesis_ms
            .saturating_add(slot.as_u64().saturating_mul(self.slot_ms))
    }

    /// `numerator / denominator` of the way into `slot`.
    pub(super) fn at_ms(&self, slot: Slot, numerator: u64, denominator: u64) -> u64 {
        self.start_ms(slot)
            .saturating_add(self.slot_ms * numerator / denominator.max(1))
    }

    /// The slot at `now_ms`, `None` before genesis.
    pub(super) fn slot_at(&self, now_ms: u64) -> Option<Slot> {
        now_ms
            .checked_sub(self.genesis_ms)
            .map(|elapsed| Slot(elapsed / self.slot_ms))
    }

    /// The first slot a client started at `now_ms` works in: slot 0 before
    /// genesis, else the current slot if less than a third of it has passed
    /// (its attestations are still due), else the next.
    pub(super) fn first_slot(&self, now_ms: u64) -> Slot {
        match self.slot_at(now_ms) {
            None => Slot(0),
            Some(slot) if now_ms < self.at_ms(slot, 1, 3) => slot,
            Some(slot) => Slot(slot.as_u64() + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_clock_counts_from_genesis() {
        let clock = SlotClock::new(100, 1000);
        assert_eq!(clock.start_ms(Slot(0)), 100_000);
        assert_eq!(clock.start_ms(Slot(5)), 105_000);
        assert_eq!(clock.at_ms(Slot(5), 1, 3), 105_333);
        assert_eq!(clock.at_ms(Slot(5), 2, 3), 105_666);
        assert_eq!(clock.slot_at(99_999), None);
        assert_eq!(clock.slot_at(100_000), Some(Slot(0)));
        assert_eq!(clock.slot_at(105_999), Some(Slot(5)));
        assert_eq!(clock.first_slot(50_000), Slot(0));
        assert_eq!(clock.first_slot(105_200), Slot(5));
        assert_eq!(clock.first_slot(105_400), Slot(6));
        let mainnet = SlotClock::new(1_606_824_023, 12_000);
        assert_eq!(mainnet.at_ms(Slot(1), 1, 3), 1_606_824_039_000);
    }
}
