//! Blocks. For now the header, which every fork shares; full bodies per
//! fork follow.

use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use tree_hash_derive::TreeHash;

use crate::primitives::{Root, SignatureBytes, Slot, ValidatorIndex};

/// `BeaconBlockHeader`: a block with its body replaced by the body's root.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash,
)]
pub struct BeaconBlockHeader {
    /// The block's slot.
    pub slot: Slot,
    /// The proposer.
    pub proposer_index: ValidatorIndex,
    /// The parent block's root.
    pub parent_root: Root,
    /// The post-state root.
    pub state_root: Root,
    /// hash_tree_root of the body.
    pub body_root: Root,
}

/// `SignedBeaconBlockHeader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SignedBeaconBlockHeader {
    /// The header.
    pub message: BeaconBlockHeader,
    /// The proposer's signature.
    pub signature: SignatureBytes,
}
