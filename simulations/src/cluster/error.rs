//! Why a local cluster could not be assembled.

use phalanx_dkg::DkgError;
use phalanx_p2p::IdentityError;

/// Why a local cluster could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file, folder or socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An operator's node key could not be read or written.
    #[error("operator {operator}'s node key: {source}")]
    NodeKey {
        /// The operator's index.
        operator: usize,
        /// The cause.
        source: IdentityError,
    },
    /// Dealing, or reading or writing the cluster's files.
    #[error(transparent)]
    Dkg(#[from] DkgError),
    /// An operator's key-generation ceremony failed.
    #[error("operator {operator}'s ceremony: {source}")]
    Ceremony {
        /// The operator's index.
        operator: usize,
        /// The cause.
        source: DkgError,
    },
    /// An operator's ceremony task ended without an outcome (it panicked).
    #[error("operator {operator}'s ceremony task ended without an outcome")]
    CeremonyTask {
        /// The operator's index.
        operator: usize,
    },
    /// The operators' ceremonies ended with different locks.
    #[error("the operators' locks differ")]
    LocksDiffer,
    /// A cluster needs at least one operator.
    #[error("a cluster needs at least one operator")]
    NoOperators,
}

impl ClusterError {
    /// An I/O error, saying what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
        let what = what.into();
        move |source| ClusterError::Io { what, source }
    }
}
