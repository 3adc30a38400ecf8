//! The distributed-validator node (in progress).
//!
//! - [`slashing`]: the persistent slashing-protection database of the
//!   cluster's group keys, with EIP-3076 import and export. The node checks
//!   every value it lets its validator client sign against it, so no
//!   restart or bug can make the cluster sign a slashable pair.

pub mod slashing;
