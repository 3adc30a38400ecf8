//! The node's error types.
//!
//! The core's: why a core cannot be built from its configuration.

/// A core could not be built: the cluster does not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The validators carry different numbers of shares.
    #[error("invalid cluster: validators have different numbers of shares")]
    SharesDiffer,
    /// More operators than an index can name.
    #[error("invalid cluster: too many operators")]
    TooManyOperators,
    /// This operator's index is not in the cluster.
    #[error("invalid cluster: operator {me} of {operators}")]
    NotAnOperator {
        /// This operator's index.
        me: u32,
        /// The cluster's operators.
        operators: u32,
    },
    /// A threshold of 0 or above the number of operators.
    #[error("invalid cluster: threshold {threshold} of {operators}")]
    Threshold {
        /// The threshold asked for.
        threshold: usize,
        /// The cluster's operators.
        operators: u32,
    },
    /// The consensus engine refused the committee or its configuration.
    #[error("invalid cluster: {0}")]
    Consensus(#[from] phalanx_consensus::Error),
}
