//! The crate's errors.

/// Why a node key or ENR cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file others can read.
    #[error("{path} is readable by others (mode {mode:o}): run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file that already exists.
    #[error(
        "{0} already exists; a node key is never overwritten (move it away to make a new one)"
    )]
    Exists(String),
    /// Bytes that are not a key.
    #[error("invalid node key: {0}")]
    InvalidKey(String),
    /// A malformed or wrongly signed ENR.
    #[error("invalid ENR: {0}")]
    Enr(String),
}

/// Why a message could not be sent or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer is not one of the cluster's operators.
    #[error("peer {0} is not a cluster operator")]
    UnknownPeer(String),
    /// The message is larger than the protocol allows.
    #[error("message of {size} bytes exceeds the {limit}-byte limit of {protocol}")]
    TooLarge {
        /// The protocol.
        protocol: String,
        /// Encoded size.
        size: usize,
        /// The protocol's limit.
        limit: usize,
    },
    /// The protocol was not registered when the network started.
    #[error("protocol {0} is not registered")]
    UnknownProtocol(String),
    /// No acknowledgement within the send timeout.
    #[error("no acknowledgement from {0} in time")]
    Timeout(String),
    /// The peer could not be reached or the stream failed.
    #[error("sending to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered that it dropped the message (queue full or undecodable).
    #[error("{peer} refused the message: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// The network task has stopped.
    #[error("the network has stopped")]
    Stopped,
    /// Encoding the message failed.
    #[error("encoding: {0}")]
    Encode(String),
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address libp2p refused.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// A bad configuration value.
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// Building the transport failed.
    #[error("building the libp2p transport: {0}")]
    Transport(String),
}
