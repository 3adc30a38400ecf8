//! A local cluster on this machine: what `phalanx devnet`, the command
//! line's run tests, the node benchmark and the validator-client tests
//! assemble, built once.
//!
//! - [`ports`]: free loopback ports, each handed out once per process.
//! - [`Operator`]: an operator's folder, node key and loopback addresses.
//! - [`Cluster`]: the lock and every operator's key shares, made by the
//!   trusted dealer, by the key-generation ceremony over p2p on loopback,
//!   or read back from the operators' folders (as `phalanx create
//!   cluster` writes them); the validators of the chain it runs on
//!   ([`OtherValidators`], [`beacon_config`] for the beacon-node mock);
//!   a validator-client mock per operator.
//! - Nodes: [`InProcessNode`] runs the node's runtime in a task;
//!   [`ChildProcess`] runs `phalanx run` (see [`Operator::run_command`])
//!   as a child process, killed when dropped, its log kept.
//! - The wall clock a local cluster runs by: [`unix_ms`],
//!   [`sleep_until_ms`], [`genesis_ms_in`].

mod clock;
mod error;
mod keys;
mod node;
mod operator;
pub mod ports;
mod process;

pub use clock::{genesis_ms_in, sleep_until_ms, unix_ms};
pub use error::ClusterError;
pub use keys::{beacon_config, Cluster, OtherValidators, GENESIS_VALIDATORS_ROOT};
pub use node::InProcessNode;
pub use operator::Operator;
pub use process::ChildProcess;
