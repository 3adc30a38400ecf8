//! QBFT consensus as a pure state machine.
//!
//! The nodes of a cluster must agree, for every duty, on exactly what to
//! sign: beacon nodes can return different data, and partial signatures over
//! different data cannot be combined. This crate decides one value per
//! *instance* (the node keys instances by duty) with QBFT: Moniz, "The
//! Istanbul BFT Consensus Algorithm" (arXiv 2002.03613), as the ConsenSys
//! QBFT specification states it, plus a DECIDED message that lets a lagging
//! node decide at once.
//!
//! There is no I/O, no clock and nothing Ethereum-specific here:
//!
//! - [`Engine::handle`] takes an [`Event`] (a local value to propose, a
//!   message from a peer, a timer that fired, time moving on) and returns
//!   [`Action`]s (messages to broadcast or send, timers to set, decisions,
//!   and dropped messages with their [`RejectReason`]).
//! - Values are generic ([`Value`]: anything with a hash); messages carry
//!   the hash, and the full value travels only in proposals, in round
//!   changes that report a prepared value, and in decided messages.
//! - Instance keys are generic ([`InstanceKey`]: ordered, encodable, with a
//!   position in time such as the slot).
//! - Messages are signed by the sender's node key through [`Signer`] and
//!   checked with [`Verifier`]; the node plugs in secp256k1 from `p2p`.
//!   The signed bytes include the cluster's lock hash ([`Parts::lock_hash`]),
//!   so a message of one cluster never counts in another.
//! - Policies are pluggable: which values are acceptable ([`Validity`]),
//!   who leads each round ([`LeaderSelection`], default [`RotatingLeader`]),
//!   and how long rounds last ([`RoundTimeout`]: [`LinearTimeout`],
//!   [`IncreasingTimeout`]).
//!
//! Modules: `types` (rounds, operators, committee arithmetic), `message`
//! (signed messages and wire forms), `policy`, `engine` (many instances,
//! verification, buffering, expiry), `instance` (the QBFT rules of one
//! instance). With the `test-utils` feature, [`testing`] wires n engines
//! through a seeded in-memory network with byzantine nodes.

mod engine;
mod error;
mod instance;
mod message;
mod policy;
#[cfg(feature = "test-utils")]
pub mod testing;
mod types;

#[cfg(feature = "test-utils")]
pub use engine::Mutant;
pub use engine::{Action, Config, Decision, Engine, Event, Parts};
pub use error::{Error, RejectReason};
pub use message::{
    Kind, Message, MessageSignature, Prepared, PreparedCertificate, ProposalJustification,
    SignedMessage, Signer, Verifier, Wire,
};
pub use policy::{
    AcceptAll, IncreasingTimeout, LeaderSelection, LinearTimeout, RotatingLeader, RoundTimeout,
    Validity,
};
pub use types::{
    Committee, InstanceKey, OperatorIndex, Round, Value, ValueHash, MAX_COMMITTEE_SIZE,
};
