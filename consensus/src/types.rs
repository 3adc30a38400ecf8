//! The protocol's quantities as newtypes, the committee arithmetic, and the
//! two traits a user implements for its instance keys and values.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A QBFT round; the first round of every instance is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Round(pub u64);

impl Round {
    /// The round every instance starts in.
    pub const FIRST: Round = Round(1);

    /// The round after this one.
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An operator's position in the cluster lock, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OperatorIndex(pub u32);

impl OperatorIndex {
    /// The index as a `usize`, for indexing per-operator tables.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for OperatorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 32-byte hash that messages carry instead of the value itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValueHash(pub [u8; 32]);

impl fmt::Debug for ValueHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x")?;
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…")
    }
}

/// The largest cluster the engine accepts; per-operator tables are sized by it.
pub const MAX_COMMITTEE_SIZE: u32 = 1024;

/// The operators of a cluster and the thresholds QBFT derives from their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committee {
    size: u32,
}

impl Committee {
    /// A committee of `size` operators, 1 to [`MAX_COMMITTEE_SIZE`].
    pub fn new(size: u32) -> Result<Committee, crate::Error> {
        if size == 0 || size > MAX_COMMITTEE_SIZE {
            return Err(crate::Error::CommitteeSize(size));
        }
        Ok(Committee { size })
    }

    /// n, the number of operators.
    pub fn size(self) -> u32 {
        self.size
    }

    /// ceil(2n/3): messages needed to prepare, commit or justify a round.
    pub fn quorum(self) -> usize {
        (2 * self.size as usize).div_ceil(3)
    }

    /// floor((n-1)/3): faulty operators the committee tolerates.
    pub fn faults(self) -> usize {
        (self.size as usize - 1) / 3
    }

    /// Whether `operator` belongs to the committee.
    pub fn contains(self, operator: OperatorIndex) -> bool {
        operator.0 < self.size
    }

    /// Every operator, in index order.
    pub fn operators(self) -> impl Iterator<Item = OperatorIndex> {
        (0..self.size).map(OperatorIndex)
    }
}

/// What identifies one consensus instance: for the node, a duty.
///
/// Keys are ordered (the engine keeps instances in ordered maps, so nothing
/// depends on hash iteration order) and have a `position`, a number that
/// grows with time, such as the duty's slot: the engine accepts messages for
/// instances not started yet only within a window of positions around the
/// current one, and forgets instances that fall behind it.
pub trait InstanceKey: Clone + Ord + fmt::Debug {
    /// Appends a canonical encoding of the key; it is part of every signed message.
    fn write_bytes(&self, out: &mut Vec<u8>);
    /// The key's place in time (the node uses the slot).
    fn position(&self) -> u64;
    /// Whether instances of this key's type ever run consensus. Messages
    /// for keys that never do are refused before they are checked or
    /// buffered: the node, for one, names duties such as randao reveals
    /// that it signs without agreeing on anything.
    fn runs_consensus(&self) -> bool {
        true
    }
    /// The most bytes ([`Value::byte_len`]) a value of this key's type
    /// has. A message carrying a larger one is refused before it is
    /// checked or buffered: the node, for one, agrees on blocks of
    /// megabytes but on attestation data of a few kilobytes, and a peer
    /// must not fill its buffer with the former under the latter's name.
    fn max_value_bytes(&self) -> usize {
        usize::MAX
    }
}

/// A value the committee can agree on: anything with a collision-resistant hash.
pub trait Value: Clone + fmt::Debug {
    /// The hash that stands for the value in prepares, commits and round changes.
    fn value_hash(&self) -> ValueHash;
    /// The bytes the value holds (its encoded length, near enough): what
    /// the engine counts against its per-peer buffer limit in bytes.
    fn byte_len(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_and_faults_follow_the_formulas() {
        let table = [
            (1, 1, 0),
            (2, 2, 0),
            (3, 2, 0),
            (4, 3, 1),
            (5, 4, 1),
            (6, 4, 1),
            (7, 5, 2),
            (10, 7, 3),
            (13, 9, 4),
        ];
        for (n, quorum, faults) in table {
            let committee = Committee::new(n).expect("valid size");
            assert_eq!(committee.quorum(), quorum, "quorum of {n}");
            assert_eq!(committee.faults(), faults, "faults of {n}");
        }
    }

    #[test]
    fn two_quorums_share_an_honest_operator() {
        for n in 1..=200 {
            let c = Committee::new(n).expect("valid size");
            assert!(
                2 * c.quorum() > n as usize + c.faults(),
                "quorums of {n} may not intersect in an honest operator"
            );
            assert!(c.quorum() <= n as usize - c.faults(), "{n}: no liveness");
        }
    }

    #[test]
    fn sizes_outside_the_range_are_refused() {
        assert!(Committee::new(0).is_err());
        assert!(Committee::new(MAX_COMMITTEE_SIZE + 1).is_err());
    }
}
