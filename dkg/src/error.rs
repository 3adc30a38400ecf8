//! The crate's errors.

/// Why a cluster artifact or ceremony step failed.
#[derive(Debug, thiserror::Error)]
pub enum DkgError {
    /// A cluster definition that is malformed or breaks a rule.
    #[error("cluster definition: {0}")]
    Definition(String),
    /// A cluster lock that does not verify.
    #[error("cluster lock: {0}")]
    Lock(String),
    /// A key, share or signature operation failed.
    #[error("keys: {0}")]
    Crypto(#[from] phalanx_crypto::Error),
    /// A keystore that cannot be read or written.
    #[error("keystore {path}: {reason}")]
    Keystore {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file that does not parse.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The ceremony stopped: these operators misbehaved.
    #[error("ceremony aborted (operators {culprits:?}): {reason}")]
    Aborted {
        /// The operators named.
        culprits: Vec<u32>,
        /// What happened.
        reason: String,
    },
    /// Something about the inputs that the user must fix.
    #[error("{0}")]
    Input(String),
}
