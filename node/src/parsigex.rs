//! Partial-signature exchange: what one node tells the others after its
//! validator client signed. Each partial travels with the signing root it
//! signs, so a receiver verifies it against the sender's public share
//! before it counts, whatever the receiver has decided so far.

use phalanx_p2p::Protocol;
use serde::{Deserialize, Serialize};

use crate::duty::{Duty, DutyType};
use crate::parsigdb::roots_per_duty;

/// One partial signature of one validator for one duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialMessage {
    /// The duty.
    pub duty: Duty,
    /// The validator's group public key (48 bytes).
    pub validator: Vec<u8>,
    /// The signing root signed.
    pub signing_root: [u8; 32],
    /// The sender's partial signature (96 bytes, compressed).
    pub signature: Vec<u8>,
    /// The head block root a sync-committee message signs: sync messages
    /// need no consensus, so the receiver learns it here.
    pub block_root: Option<[u8; 32]>,
    /// A new builder registration's message (SSZ): it is not agreed on
    /// either, and every node needs it to combine and keep the result.
    pub registration: Option<Vec<u8>>,
}

/// The partials one node sends in one go (one duty's worth, usually).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialBatch(pub Vec<PartialMessage>);

/// The most partials in one batch: every validator of a large cluster.
/// A cluster's own bound ([`BatchLimits::batch`]) is usually far lower.
pub const MAX_PARTIALS_PER_BATCH: usize = 20_000;

/// What one peer's partials may cost a receiver, derived from the cluster
/// lock (its validators) and the chain (slots per epoch).
///
/// An honest batch is what one operator's node accepted from its
/// validator client in one go (one request, or one proposal's partial), and
/// names duties of one kind. The validator client's widest request spans
/// `slots_per_epoch + 2` slots (selection proofs are taken from the slot
/// before the current one to an epoch ahead), so at most three epochs. A
/// validator has one duty of each per-slot kind (sync messages, sync
/// selection proofs and contributions, randao, proposals) per slot, and one
/// of each per-epoch kind (attestations, selection proofs, aggregates, and
/// exits and registrations, whose duties sit at an epoch's first slot) per
/// epoch; each duty takes at most [`roots_per_duty`] roots. Every bound is
/// at most [`MAX_PARTIALS_PER_BATCH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    validators: usize,
    slots_per_epoch: u64,
}

impl BatchLimits {
    /// The limits of a cluster of `validators` on a chain of
    /// `slots_per_epoch`.
    pub fn new(validators: usize, slots_per_epoch: u64) -> BatchLimits {
        BatchLimits {
            validators,
            slots_per_epoch,
        }
    }

    /// The most partials one validator has of `kind` in one honest batch.
    pub fn per_validator(&self, kind: DutyType) -> usize {
        let window_slots =
            usize::try_from(self.slots_per_epoch.saturating_add(2)).unwrap_or(usize::MAX);
        let duties = match kind {
            DutyType::SyncMessage
            | DutyType::PrepareSyncContribution
            | DutyType::SyncContribution
            | DutyType::Randao
            | DutyType::Proposer => window_slots,
            DutyType::Attester
            | DutyType::PrepareAggregator
            | DutyType::Aggregator
            | DutyType::Exit
            | DutyType::BuilderRegistration => 3,
        };
        duties.saturating_mul(roots_per_duty(kind))
    }

    /// The most partials of `kind` in one batch.
    pub fn of_kind(&self, kind: DutyType) -> usize {
        self.validators
            .saturating_mul(self.per_validator(kind))
            .min(MAX_PARTIALS_PER_BATCH)
    }

    /// The most partials in one batch: the largest kind's bound.
    pub fn batch(&self) -> usize {
        DutyType::ALL
            .into_iter()
            .map(|kind| self.of_kind(kind))
            .max()
            .unwrap_or(0)
    }

    /// The partials an honest operator sends in one epoch, at most: per
    /// validator one attestation, selection proof, aggregate, exit,
    /// registration, randao reveal and proposal, and per sync-committee
    /// seat (at most [`SYNC_COMMITTEE_SEATS`] in a cluster) one message,
    /// selection proof and contribution a slot.
    pub fn partials_per_epoch(&self) -> usize {
        let seats = self.validators.min(SYNC_COMMITTEE_SEATS);
        let slots = usize::try_from(self.slots_per_epoch).unwrap_or(usize::MAX);
        self.validators
            .saturating_mul(7)
            .saturating_add(seats.saturating_mul(3).saturating_mul(slots))
    }

    /// The distinct signing roots an honest operator sends in one epoch,
    /// at most (each distinct root costs the receiver a hash to the curve
    /// and a Miller loop): per validator an attestation's committee, an
    /// aggregate, an exit and a registration; per slot the selection
    /// proofs' and the sync messages' few; per sync-committee seat a
    /// contribution a slot.
    pub fn roots_per_epoch(&self) -> usize {
        let seats = self.validators.min(SYNC_COMMITTEE_SEATS);
        let slots = usize::try_from(self.slots_per_epoch).unwrap_or(usize::MAX);
        self.validators
            .saturating_mul(4)
            .saturating_add(slots.saturating_mul(8))
            .saturating_add(seats.saturating_mul(slots))
    }

    /// A sender's verification budget: what it may have verified at once
    /// (two epochs' worth of partials and of distinct roots, so that an
    /// honest operator catching up never runs out) and what comes back
    /// each slot (one epoch's worth spread over its slots).
    pub fn budget(&self) -> Budget {
        let slots = usize::try_from(self.slots_per_epoch.max(1)).unwrap_or(usize::MAX);
        Budget {
            partials: self.partials_per_epoch().saturating_mul(2),
            roots: self.roots_per_epoch().saturating_mul(2),
            partials_per_slot: self.partials_per_epoch().div_ceil(slots),
            roots_per_slot: self.roots_per_epoch().div_ceil(slots),
        }
    }

    /// Whether `batch` is within the bounds, as a whole and per kind;
    /// nothing is decoded.
    pub fn admits(&self, batch: &[PartialMessage]) -> bool {
        if batch.len() > self.batch() {
            return false;
        }
        let mut counts = [0usize; DutyType::ALL.len()];
        for partial in batch {
            let at = DutyType::ALL
                .iter()
                .position(|kind| *kind == partial.duty.kind)
                .unwrap_or_else(|| unreachable!("every kind is listed"));
            counts[at] += 1;
        }
        DutyType::ALL
            .into_iter()
            .zip(counts)
            .all(|(kind, count)| count <= self.of_kind(kind))
    }
}

/// The seats of the sync committee (mainnet's SYNC_COMMITTEE_SIZE): a
/// cluster holds at most so many.
pub const SYNC_COMMITTEE_SEATS: usize = 512;

/// A sender's verification budget ([`BatchLimits::budget`]): how many
/// partials and distinct roots it may have verified at once, and how many
/// of each come back per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Partials at most at once.
    pub partials: usize,
    /// Distinct roots at most at once.
    pub roots: usize,
    /// Partials back per slot.
    pub partials_per_slot: usize,
    /// Distinct roots back per slot.
    pub roots_per_slot: usize,
}

/// What is left of one sender's [`Budget`], as of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    slot: u64,
    partials: usize,
    roots: usize,
}

impl Allowance {
    /// A full allowance at `slot`.
    pub fn full(budget: &Budget, slot: u64) -> Allowance {
        Allowance {
            slot,
            partials: budget.partials,
            roots: budget.roots,
        }
    }

    /// Takes `partials` and `roots` at `slot` (after what came back since
    /// the last take): false, and nothing taken, if there is not enough.
    pub fn take(&mut self, budget: &Budget, slot: u64, partials: usize, roots: usize) -> bool {
        let slots = usize::try_from(slot.saturating_sub(self.slot)).unwrap_or(usize::MAX);
        if slot > self.slot {
            self.slot = slot;
        }
        self.partials = self
            .partials
            .saturating_add(slots.saturating_mul(budget.partials_per_slot))
            .min(budget.partials);
        self.roots = self
            .roots
            .saturating_add(slots.saturating_mul(budget.roots_per_slot))
            .min(budget.roots);
        if partials > self.partials || roots > self.roots {
            return false;
        }
        self.partials -= partials;
        self.roots -= roots;
        true
    }

    /// Spends everything left: a sender whose batch did not verify waits
    /// for its budget to come back before anything of it is verified again.
    pub fn exhaust(&mut self) {
        self.partials = 0;
        self.roots = 0;
    }
}

/// The partial-signature protocol's name on p2p.
pub const PARSIGEX_PROTOCOL_NAME: &str = "parsigex";
/// The partial-signature protocol's version; a change of
/// [`PartialMessage`]'s encoding or of the p2p framing takes a new one
/// (1.1.0 added the registration; 2.0.0: long-lived streams, each greeted
/// by the receiver before its first frame).
pub const PARSIGEX_PROTOCOL_VERSION: &str = "2.0.0";

/// The protocol, sized for [`MAX_PARTIALS_PER_BATCH`] partials of about
/// 240 bytes each, or about 330 with a registration.
pub fn parsigex_protocol() -> Protocol {
    Protocol {
        name: PARSIGEX_PROTOCOL_NAME,
        version: PARSIGEX_PROTOCOL_VERSION,
        max_size: MAX_PARTIALS_PER_BATCH * 384,
        // An honest peer sends one batch per duty it signed, a few a slot;
        // a burst beyond waits for room at the receiver.
        queue_per_peer: 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::Slot;

    fn partial(kind: DutyType) -> PartialMessage {
        PartialMessage {
            duty: Duty::new(Slot(1), kind),
            validator: vec![0xaa; 48],
            signing_root: [1; 32],
            signature: vec![0xbb; 96],
            block_root: None,
            registration: None,
        }
    }

    #[test]
    fn batches_are_bounded_by_what_the_duties_carry() {
        // Mainnet: 32 slots per epoch; 10 validators.
        let limits = BatchLimits::new(10, 32);
        assert_eq!(limits.per_validator(DutyType::Attester), 3);
        assert_eq!(limits.per_validator(DutyType::SyncMessage), 34);
        assert_eq!(
            limits.per_validator(DutyType::PrepareSyncContribution),
            4 * 34
        );
        assert_eq!(limits.batch(), 10 * 4 * 34);
        let budget = limits.budget();
        assert_eq!(budget.partials, 2 * (10 * 7 + 10 * 3 * 32));
        assert_eq!(budget.roots, 2 * (10 * 4 + 32 * 8 + 10 * 32));
        assert!(budget.partials >= limits.batch(), "an honest batch fits");
        assert!(limits.admits(&vec![partial(DutyType::Attester); 30]));
        assert!(!limits.admits(&vec![partial(DutyType::Attester); 31]));
        assert!(limits.admits(&vec![partial(DutyType::SyncContribution); 1360]));
        assert!(!limits.admits(&vec![partial(DutyType::SyncContribution); 1361]));
        // A large cluster is held to the protocol's maximum.
        let large = BatchLimits::new(10_000, 32);
        assert_eq!(large.batch(), MAX_PARTIALS_PER_BATCH);
        assert_eq!(large.of_kind(DutyType::Exit), MAX_PARTIALS_PER_BATCH);
        let budget = large.budget();
        assert!(budget.partials >= large.batch(), "an honest batch fits");
        // The distinct roots of an epoch: 40,000 for the validators, 256
        // for the slots, 16,384 for a full sync committee's contributions.
        assert_eq!(budget.roots_per_slot, (40_000 + 256 + 512 * 32) / 32);
    }

    #[test]
    fn an_allowance_is_taken_comes_back_by_the_slot_and_can_be_exhausted() {
        let budget = Budget {
            partials: 100,
            roots: 10,
            partials_per_slot: 30,
            roots_per_slot: 3,
        };
        let mut allowance = Allowance::full(&budget, 5);
        assert!(allowance.take(&budget, 5, 90, 9));
        assert!(!allowance.take(&budget, 5, 20, 1), "10 partials left");
        assert!(!allowance.take(&budget, 5, 1, 2), "1 root left");
        assert!(allowance.take(&budget, 5, 10, 1));
        // Two slots later 60 partials and 6 roots are back.
        assert!(!allowance.take(&budget, 7, 61, 1));
        assert!(allowance.take(&budget, 7, 60, 6));
        // Never more than the budget comes back.
        assert!(!allowance.take(&budget, 100, 101, 0));
        assert!(allowance.take(&budget, 100, 100, 10));
        allowance.exhaust();
        assert!(!allowance.take(&budget, 100, 1, 0));
        assert!(allowance.take(&budget, 101, 30, 3));
    }

    #[test]
    fn a_full_batch_fits_the_protocol_limit() {
        let message = PartialMessage {
            duty: Duty::new(Slot(u64::MAX), DutyType::SyncMessage),
            validator: vec![0xaa; 48],
            signing_root: [1; 32],
            signature: vec![0xbb; 96],
            block_root: Some([2; 32]),
            registration: Some(vec![3; 84]),
        };
        let batch = PartialBatch(vec![message; MAX_PARTIALS_PER_BATCH]);
        let bytes = bincode::serialize(&batch).expect("encodes");
        assert!(bytes.len() <= parsigex_protocol().max_size);
        assert_eq!(
            bincode::deserialize::<PartialBatch>(&bytes).expect("decodes"),
            batch
        );
    }
}
