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

    /// The partials of one sender a receiver verifies per slot: one full
    /// batch of every kind. An honest operator sends each partial once,
    /// and in one slot it signs at most one window's duties of each kind,
    /// so it never reaches the budget; a faulty one is held to verifying
    /// work linear in the budget per slot (each partial is decoded and
    /// checked once, in one batch check, never bisected).
    pub fn budget(&self) -> usize {
        DutyType::ALL
            .into_iter()
            .map(|kind| self.of_kind(kind))
            .sum()
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

/// The partial-signature protocol's name on p2p.
pub const PARSIGEX_PROTOCOL_NAME: &str = "parsigex";
/// The partial-signature protocol's version; a change of
/// [`PartialMessage`]'s encoding takes a new one (1.1.0 added the
/// registration).
pub const PARSIGEX_PROTOCOL_VERSION: &str = "1.1.0";

/// The protocol, sized for [`MAX_PARTIALS_PER_BATCH`] partials of about
/// 240 bytes each, or about 330 with a registration.
pub fn parsigex_protocol() -> Protocol {
    Protocol {
        name: PARSIGEX_PROTOCOL_NAME,
        version: PARSIGEX_PROTOCOL_VERSION,
        max_size: MAX_PARTIALS_PER_BATCH * 384,
        queue_per_peer: 1024,
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
        assert_eq!(
            limits.budget(),
            10 * (2 * 4 * 34 + 3 * 34 + 5 * 3),
            "one full batch of each kind"
        );
        assert!(limits.admits(&vec![partial(DutyType::Attester); 30]));
        assert!(!limits.admits(&vec![partial(DutyType::Attester); 31]));
        assert!(limits.admits(&vec![partial(DutyType::SyncContribution); 1360]));
        assert!(!limits.admits(&vec![partial(DutyType::SyncContribution); 1361]));
        // A large cluster is held to the protocol's maximum.
        let large = BatchLimits::new(10_000, 32);
        assert_eq!(large.batch(), MAX_PARTIALS_PER_BATCH);
        assert_eq!(large.of_kind(DutyType::Exit), MAX_PARTIALS_PER_BATCH);
        assert!(large.budget() <= DutyType::ALL.len() * MAX_PARTIALS_PER_BATCH);
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
