//! The node's errors: why the node could not start or stopped
//! ([`NodeError`]), and what is wrong with a file of its data directory.
//!
//! Each condition an operator or a caller may act on has its own variant;
//! the messages say what to check. The core's errors follow in their own
//! section.

use std::net::SocketAddr;
use std::path::PathBuf;

use phalanx_eth::client::ClientError;
use phalanx_eth::{PublicKeyBytes, Version};

use crate::slashing::SlashingDbError;

/// Why the node stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node key is not one of the lock's operators.
    #[error(
        "this node key is not one of the cluster lock's operators: check the data directory's enr-private-key against the lock"
    )]
    NotAnOperator,
    /// The lock's operator records or its hash do not decode.
    #[error("{0}")]
    Lock(#[from] phalanx_dkg::DkgError),
    /// The builder registrations the cluster signed after the lock are
    /// damaged.
    #[error("{}: {problem}", path.display())]
    Registrations {
        /// The registrations file.
        path: PathBuf,
        /// What is wrong with it.
        problem: RegistrationsProblem,
    },
    /// The slashing database could not be opened.
    #[error("{0}")]
    SlashingDb(#[from] SlashingDbError),
    /// The slashing-protection history to import could not be read.
    #[error("{}: {source}", path.display())]
    SlashingHistoryRead {
        /// The history file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The slashing-protection history is not an EIP-3076 interchange.
    #[error("{}: {reason}", path.display())]
    SlashingHistoryFormat {
        /// The history file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// The slashing-protection history does not import.
    #[error("importing {}: {source}", path.display())]
    SlashingHistoryImport {
        /// The history file.
        path: PathBuf,
        /// Why the database refused it.
        source: SlashingDbError,
    },
    /// The lock's validators and operators do not make a cluster.
    #[error("{0}")]
    Core(#[from] crate::core::CoreError),
    /// The beacon-node addresses are unusable.
    #[error("beacon node: {0}")]
    BeaconNode(#[source] ClientError),
    /// The beacon node is on another network than the lock's.
    #[error(
        "beacon node: the beacon node is on a network with genesis fork version {found}, the cluster lock's is {lock} ({network})"
    )]
    OtherNetwork {
        /// The genesis fork version the beacon node names.
        found: Version,
        /// The lock's genesis fork version.
        lock: Version,
        /// The lock's network name.
        network: String,
    },
    /// p2p could not start.
    #[error("p2p: {0}")]
    P2p(#[from] phalanx_p2p::StartError),
    /// The validator API could not listen.
    #[error("validator API on {address}: {source}")]
    ValidatorApi {
        /// The address asked for.
        address: SocketAddr,
        /// Why it could not be bound.
        source: std::io::Error,
    },
}

/// What is wrong with the file of builder registrations; it is refused at
/// start-up rather than half used.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationsProblem {
    /// The file could not be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The file is not a map of registrations by validator.
    #[error("{0}")]
    Format(#[from] serde_json::Error),
    /// A registration of a validator outside the cluster.
    #[error("{0} is not a validator of the cluster")]
    NotInCluster(PublicKeyBytes),
    /// A registration its validator's group key did not sign.
    #[error("the registration of {0} is not signed by its key")]
    NotSigned(PublicKeyBytes),
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_to_check() {
        let refused = NodeError::Registrations {
            path: PathBuf::from("/data/builder-registrations.json"),
            problem: RegistrationsProblem::NotSigned(PublicKeyBytes::repeat_byte(1)),
        };
        let text = refused.to_string();
        assert!(
            text.starts_with("/data/builder-registrations.json: the registration of 0x0101"),
            "{text}"
        );
        assert!(text.ends_with("is not signed by its key"), "{text}");
        let other = NodeError::OtherNetwork {
            found: Version::from([1, 0, 0, 0]),
            lock: Version::from([0, 0, 0, 0]),
            network: "mainnet".into(),
        };
        assert_eq!(
            other.to_string(),
            "beacon node: the beacon node is on a network with genesis fork version 0x01000000, the cluster lock's is 0x00000000 (mainnet)"
        );
    }
}
