//! The strategies of a byzantine operator that tries to exhaust its
//! honest peers' processors and memory ([`Fault::ByzantineFlood`]); the
//! simulated network carries them out (`world/flood.rs`).
//!
//! [`Fault::ByzantineFlood`]: super::Fault::ByzantineFlood

use serde::{Deserialize, Serialize};

/// One way a byzantine operator tries to exhaust its peers
/// ([`Fault::ByzantineFlood`](super::Fault::ByzantineFlood)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloodStrategy {
    /// A batch of attestation partials over distinct roots, every one of
    /// them failing verification (a valid point, signed over other bytes).
    InvalidPartials,
    /// A batch of partials that verify, signed with its own share over
    /// roots nobody else signs: many per duty and validator.
    RandomRoots,
    /// For each instance of the slot whose first round it leads (or the
    /// first round it leads): the same oversized proposal again, and one of
    /// another value.
    Proposals,
    /// Signed prepares, commits and round changes for instances up to two
    /// epochs ahead, of every duty type, those without consensus included.
    FutureInstances,
    /// Round changes to huge rounds for the instances of past slots (those
    /// decided), half signed and half with a signature that does not verify.
    RoundChanges,
    /// Consensus messages of another cluster of the same operators (same
    /// node keys), replayed: proposal, prepares, commits and the decided
    /// message of another value for each attestation instance of the slot.
    CrossCluster,
}

impl FloodStrategy {
    /// Every strategy.
    pub const ALL: [FloodStrategy; 6] = [
        FloodStrategy::InvalidPartials,
        FloodStrategy::RandomRoots,
        FloodStrategy::Proposals,
        FloodStrategy::FutureInstances,
        FloodStrategy::RoundChanges,
        FloodStrategy::CrossCluster,
    ];

    /// The name in scenario files, reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FloodStrategy::InvalidPartials => "invalid_partials",
            FloodStrategy::RandomRoots => "random_roots",
            FloodStrategy::Proposals => "proposals",
            FloodStrategy::FutureInstances => "future_instances",
            FloodStrategy::RoundChanges => "round_changes",
            FloodStrategy::CrossCluster => "cross_cluster",
        }
    }
}

impl std::str::FromStr for FloodStrategy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        FloodStrategy::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = FloodStrategy::ALL.iter().map(|s| s.name()).collect();
                format!("unknown flood strategy {name}: {}", names.join(", "))
            })
    }
}
