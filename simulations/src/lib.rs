//! Simulated Ethereum parts for tests, demos and the cluster simulator.
//!
//! - [`beacon`]: a beacon-node mock serving a deterministic simulated chain
//!   over the beacon REST API, checking and recording every submission.
//! - [`vc`]: a validator-client mock that uses a beacon-node (or Phalanx
//!   validator) API exactly as a real validator client does, signing with
//!   the keys it is given.
//! - [`cluster`]: a local cluster on this machine (ports, the dealer or the
//!   key-generation ceremony, the mocks, nodes in this process or as child
//!   processes), for `phalanx devnet`, tests and benchmarks.
//! - [`sim`]: the deterministic cluster simulator, which runs the node's own
//!   cores in virtual time against a simulated network, chain and clients.

pub mod beacon;
pub mod cluster;
pub mod sim;
pub mod vc;
