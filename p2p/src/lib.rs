//! Authenticated libp2p networking between the operators of a cluster.
//!
//! Identity first: each operator has a secp256k1 node key ([`NodeKey`],
//! kept in a file only its owner can read) whose libp2p peer id and ENR
//! ([`Enr`], EIP-778) name the operator in cluster definitions and locks.
//!
//! Then the [`Network`]: libp2p over TCP (noise, yamux) and QUIC, with DNS
//! and a circuit-relay client with hole punching for operators behind NAT.
//! Only the operators of the cluster lock (and the configured relays) may
//! connect — every other peer id is refused at the handshake — and each
//! new connection runs `peerinfo`, which drops a peer running another
//! cluster lock and exposes clock offsets and versions. Other crates
//! register [`Protocol`]s (`/phalanx/<name>/<version>`, each with a size
//! limit checked before a message is read and a bounded queue per peer)
//! and send to one or all operators with an acknowledgement per message.

mod codec;
mod enr;
mod error;
mod gate;
mod handshakes;
mod identity;
mod metrics;
mod network;
mod peerinfo;
mod relay;
mod rlp;
pub mod seal;

pub use codec::{decode, decode_borrowed, encode, encoded_len, read_frame, CodecError};
pub use enr::{Enr, MAX_RECORD_SIZE};
pub use error::{IdentityError, SendError, StartError};
pub use identity::{peer_id_of, verify, NodeKey, NODE_KEY_FILE};
pub use libp2p::{Multiaddr, PeerId};
pub use network::{
    Inbound, Inbox, Network, NetworkConfig, Protocol, QueueSlot, LANES_PER_PEER,
    LARGEST_MESSAGES_PER_PEER,
};
pub use peerinfo::PeerInfo;
pub use relay::{RelayAccess, RelayLimits, RelayServer};
pub use rlp::RlpError;
