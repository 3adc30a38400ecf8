//! The pluggable parts: which values are acceptable, who leads a round, and
//! how long a round lasts.

use std::fmt;
use std::time::Duration;

use crate::types::{Committee, InstanceKey, OperatorIndex, Round};

/// Decides whether a proposed value may be prepared.
///
/// The node checks only what is objectively wrong with a value and slashing
/// safety, never whether it differs from its own beacon node's data: an
/// honest leader whose data differs must still be followed.
///
/// The engine does not own its predicate: [`crate::Engine::handle`] takes
/// it with every event, so the predicate can read its owner's current state
/// (duties, decided values, slashing history) without sharing it.
pub trait Validity<K, V> {
    /// Why a value is refused; its text goes into
    /// [`crate::RejectReason::InvalidValue`] for logs.
    type Error: fmt::Display;

    /// `Ok` if `value` may be agreed on for `instance`, else why not.
    fn check(&self, instance: &K, value: &V) -> Result<(), Self::Error>;
}

/// Accepts every value: for clusters whose values are checked elsewhere, and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl<K, V> Validity<K, V> for AcceptAll {
    type Error = std::convert::Infallible;

    fn check(&self, _instance: &K, _value: &V) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// [`Validity`] with its error rendered, so the engine's instances can take
/// any predicate as one trait object.
pub(crate) trait CheckValue<K, V> {
    /// [`Validity::check`], the error as its text.
    fn check_value(&self, instance: &K, value: &V) -> Result<(), String>;
}

impl<K, V, P: Validity<K, V> + ?Sized> CheckValue<K, V> for P {
    fn check_value(&self, instance: &K, value: &V) -> Result<(), String> {
        self.check(instance, value).map_err(|e| e.to_string())
    }
}

/// Names the leader of each round of each instance.
pub trait LeaderSelection<K> {
    /// The operator that proposes in `round` of `instance`.
    fn leader(&self, instance: &K, round: Round, committee: Committee) -> OperatorIndex;
}

/// The default leader: a hash of the instance key picks the first round's
/// leader and each later round passes to the next operator. Leaders thus
/// rotate across duties (no operator leads every duty of a slot), and n
/// consecutive rounds of one instance have n different leaders.
#[derive(Clone, Copy, Debug, Default)]
pub struct RotatingLeader;

impl<K: InstanceKey> LeaderSelection<K> for RotatingLeader {
    fn leader(&self, instance: &K, round: Round, committee: Committee) -> OperatorIndex {
        let mut bytes = Vec::with_capacity(64);
        instance.write_bytes(&mut bytes);
        let start = fnv1a(&bytes);
        let n = u64::from(committee.size());
        let index = (start % n + round.0.saturating_sub(1) % n) % n;
        OperatorIndex(u32::try_from(index).unwrap_or(0))
    }
}

/// FNV-1a, 64-bit: a stable hash that every operator computes alike.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// How long each round of an instance lasts before a round change.
pub trait RoundTimeout<K> {
    /// The time `round` of `instance` may take, counted from its start.
    fn timeout(&self, instance: &K, round: Round) -> Duration;
}

/// Round r lasts `base + (r - 1) · step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearTimeout {
    /// The first round's duration.
    pub base: Duration,
    /// What each later round adds.
    pub step: Duration,
}

impl<K> RoundTimeout<K> for LinearTimeout {
    fn timeout(&self, _instance: &K, round: Round) -> Duration {
        let extra = u32::try_from(round.0.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_add(self.step.saturating_mul(extra))
    }
}

/// Round r lasts `base · 2^(r-1)`, capped at `max`: quick retries first,
/// then enough time for slow links to catch up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncreasingTimeout {
    /// The first round's duration.
    pub base: Duration,
    /// The longest a round may last.
    pub max: Duration,
}

impl<K> RoundTimeout<K> for IncreasingTimeout {
    fn timeout(&self, _instance: &K, round: Round) -> Duration {
        let doublings = u32::try_from(round.0.saturating_sub(1).min(31)).unwrap_or(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Key(u64);

    impl InstanceKey for Key {
        fn write_bytes(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0.to_be_bytes());
        }
        fn position(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn rounds_of_an_instance_have_distinct_leaders() {
        let committee = Committee::new(7).expect("size");
        for key in 0..50 {
            let leaders: std::collections::BTreeSet<_> = (1..=7)
                .map(|r| RotatingLeader.leader(&Key(key), Round(r), committee))
                .collect();
            assert_eq!(leaders.len(), 7, "instance {key}");
        }
    }

    #[test]
    fn first_round_leaders_spread_across_instances() {
        let committee = Committee::new(4).expect("size");
        let mut counts = [0u32; 4];
        for key in 0..400 {
            counts[RotatingLeader
                .leader(&Key(key), Round::FIRST, committee)
                .as_usize()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    }

    #[test]
    fn timeouts_grow_as_documented() {
        let linear = LinearTimeout {
            base: Duration::from_millis(1000),
            step: Duration::from_millis(250),
        };
        let t = |r| RoundTimeout::<Key>::timeout(&linear, &Key(0), Round(r));
        assert_eq!(t(1), Duration::from_millis(1000));
        assert_eq!(t(3), Duration::from_millis(1500));
        let increasing = IncreasingTimeout {
            base: Duration::from_millis(500),
            max: Duration::from_secs(5),
        };
        let t = |r| RoundTimeout::<Key>::timeout(&increasing, &Key(0), Round(r));
        assert_eq!(t(1), Duration::from_millis(500));
        assert_eq!(t(2), Duration::from_millis(1000));
        assert_eq!(t(4), Duration::from_millis(4000));
        assert_eq!(t(5), Duration::from_secs(5));
        assert_eq!(t(u64::MAX), Duration::from_secs(5));
    }
}
