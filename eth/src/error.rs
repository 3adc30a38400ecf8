//! Errors of the eth crate.

/// What went wrong decoding or interpreting Ethereum data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A fork name this build does not know (a newer network, or a typo).
    #[error("unknown fork {0:?}: this build knows phase0 to fulu")]
    UnknownFork(String),
    /// A container that does not exist at the given fork.
    #[error("{container} does not exist at fork {fork}")]
    NotAtFork {
        /// The container asked for.
        container: &'static str,
        /// The fork in force.
        fork: crate::ForkName,
    },
    /// SSZ bytes that do not decode as the container.
    #[error("invalid SSZ for {container}: {reason}")]
    Ssz {
        /// The container being decoded.
        container: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// JSON that does not decode as the container.
    #[error("invalid JSON for {container}: {reason}")]
    Json {
        /// The container being decoded.
        container: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
}
