//! Authenticated libp2p networking between the operators of a cluster.
//!
//! Identity first: each operator has a secp256k1 node key ([`NodeKey`],
//! kept in a file only its owner can read) whose libp2p peer id and ENR
//! ([`Enr`], EIP-778) name the operator in cluster definitions and locks.

mod enr;
mod error;
mod identity;
mod rlp;

pub use enr::{Enr, MAX_RECORD_SIZE};
pub use error::{IdentityError, SendError, StartError};
pub use identity::{peer_id_of, verify, NodeKey, NODE_KEY_FILE};
pub use rlp::RlpError;
