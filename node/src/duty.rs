//! Duties: what the cluster must do in a slot, for every validator that has
//! it. One consensus instance decides each duty's data for all its
//! validators at once, so the duty is the consensus instance key.

use std::fmt;

use phalanx_eth::Slot;
use serde::{Deserialize, Serialize};

/// The kinds of duty, in the order they happen in a slot where that matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyType {
    /// Block proposal (full or blinded), after the randao reveal.
    Proposer,
    /// The randao reveal a proposal needs.
    Randao,
    /// Attestation.
    Attester,
    /// Combining the aggregation selection proofs.
    PrepareAggregator,
    /// Aggregate attestation of a selected aggregator.
    Aggregator,
    /// Sync committee message (no consensus: each operator signs its head).
    SyncMessage,
    /// Combining sync-committee selection proofs.
    PrepareSyncContribution,
    /// Sync committee contribution of a selected aggregator.
    SyncContribution,
    /// Builder registration.
    BuilderRegistration,
    /// Voluntary exit.
    Exit,
}

impl DutyType {
    /// Every duty type.
    pub const ALL: [DutyType; 10] = [
        DutyType::Proposer,
        DutyType::Randao,
        DutyType::Attester,
        DutyType::PrepareAggregator,
        DutyType::Aggregator,
        DutyType::SyncMessage,
        DutyType::PrepareSyncContribution,
        DutyType::SyncContribution,
        DutyType::BuilderRegistration,
        DutyType::Exit,
    ];

    /// A stable one-byte code (signed into consensus messages).
    pub fn code(self) -> u8 {
        match self {
            DutyType::Proposer => 1,
            DutyType::Randao => 2,
            DutyType::Attester => 3,
            DutyType::PrepareAggregator => 4,
            DutyType::Aggregator => 5,
            DutyType::SyncMessage => 6,
            DutyType::PrepareSyncContribution => 7,
            DutyType::SyncContribution => 8,
            DutyType::BuilderRegistration => 9,
            DutyType::Exit => 10,
        }
    }

    /// The name used in logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            DutyType::Proposer => "proposer",
            DutyType::Randao => "randao",
            DutyType::Attester => "attester",
            DutyType::PrepareAggregator => "prepare_aggregator",
            DutyType::Aggregator => "aggregator",
            DutyType::SyncMessage => "sync_message",
            DutyType::PrepareSyncContribution => "prepare_sync_contribution",
            DutyType::SyncContribution => "sync_contribution",
            DutyType::BuilderRegistration => "builder_registration",
            DutyType::Exit => "exit",
        }
    }

    /// Whether the cluster agrees on the duty's data with consensus.
    /// Sync-committee messages need none (each operator signs its own head
    /// root and partials are grouped by signing root); selection proofs
    /// and randao reveals sign fixed data.
    pub fn needs_consensus(self) -> bool {
        matches!(
            self,
            DutyType::Proposer
                | DutyType::Attester
                | DutyType::Aggregator
                | DutyType::SyncContribution
        )
    }
}

/// A duty: a type in a slot.
///
/// On the wire it is the pair (slot number, type): compact, and free of
/// the beacon API's quoted numbers, which binary encodings cannot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "(u64, DutyType)", into = "(u64, DutyType)")]
pub struct Duty {
    /// The slot.
    pub slot: Slot,
    /// The type.
    pub kind: DutyType,
}

impl From<(u64, DutyType)> for Duty {
    fn from((slot, kind): (u64, DutyType)) -> Duty {
        Duty::new(Slot(slot), kind)
    }
}

impl From<Duty> for (u64, DutyType) {
    fn from(duty: Duty) -> (u64, DutyType) {
        (duty.slot.0, duty.kind)
    }
}

impl Duty {
    /// A duty of `kind` in `slot`.
    pub fn new(slot: Slot, kind: DutyType) -> Duty {
        Duty { slot, kind }
    }
}

impl fmt::Display for Duty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.slot.0, self.kind.name())
    }
}

impl phalanx_consensus::InstanceKey for Duty {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.slot.0.to_be_bytes());
        out.push(self.kind.code());
    }

    fn position(&self) -> u64 {
        self.slot.0
    }

    /// Only the duty types whose data is agreed on: the validity predicate
    /// refuses every other type's values (`InvalidValue::NotAgreedOn`), so
    /// their messages are refused before they are checked or buffered.
    fn runs_consensus(&self) -> bool {
        self.kind.needs_consensus()
    }

    /// Blocks are as large as the consensus protocol takes; every other
    /// type's value is small ([`crate::qbft::MAX_SMALL_VALUE`]), so that a
    /// peer cannot buffer block-sized values under their names.
    fn max_value_bytes(&self) -> usize {
        match self.kind {
            DutyType::Proposer => usize::MAX,
            _ => crate::qbft::MAX_SMALL_VALUE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_stable() {
        let mut codes: Vec<u8> = DutyType::ALL.iter().map(|d| d.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), DutyType::ALL.len());
        let mut bytes = Vec::new();
        phalanx_consensus::InstanceKey::write_bytes(
            &Duty::new(Slot(7), DutyType::Attester),
            &mut bytes,
        );
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 7, 3]);
        assert_eq!(
            Duty::new(Slot(7), DutyType::Attester).to_string(),
            "7/attester"
        );
        let agreed: Vec<DutyType> = DutyType::ALL
            .into_iter()
            .filter(|&kind| {
                phalanx_consensus::InstanceKey::runs_consensus(&Duty::new(Slot(7), kind))
            })
            .collect();
        assert_eq!(
            agreed,
            [
                DutyType::Proposer,
                DutyType::Attester,
                DutyType::Aggregator,
                DutyType::SyncContribution
            ]
        );
        let duty = Duty::new(Slot(9), DutyType::SyncMessage);
        let bytes = bincode::serialize(&duty).expect("encodes");
        assert_eq!(bincode::deserialize::<Duty>(&bytes).ok(), Some(duty));
    }
}
