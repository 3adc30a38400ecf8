//! Messages about a validator's life cycle: deposits, builder registrations
//! and voluntary exits.

use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use tree_hash_derive::TreeHash;

use crate::primitives::{
    Epoch, ExecutionAddress, Gwei, PublicKeyBytes, Root, SignatureBytes, ValidatorIndex,
};

/// `DepositMessage`: what a deposit's signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct DepositMessage {
    /// The validator's public key.
    pub pubkey: PublicKeyBytes,
    /// 0x01 or 0x02 prefix, then the withdrawal address.
    pub withdrawal_credentials: Root,
    /// The amount deposited.
    pub amount: Gwei,
}

/// `DepositData`: a deposit message with its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct DepositData {
    /// The validator's public key.
    pub pubkey: PublicKeyBytes,
    /// 0x01 or 0x02 prefix, then the withdrawal address.
    pub withdrawal_credentials: Root,
    /// The amount deposited.
    pub amount: Gwei,
    /// The validator's signature over the deposit message.
    pub signature: SignatureBytes,
}

/// `VoluntaryExit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct VoluntaryExit {
    /// The earliest epoch the exit may be processed.
    pub epoch: Epoch,
    /// The exiting validator.
    pub validator_index: ValidatorIndex,
}

/// `SignedVoluntaryExit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SignedVoluntaryExit {
    /// The exit.
    pub message: VoluntaryExit,
    /// The validator's signature over it.
    pub signature: SignatureBytes,
}

/// `ValidatorRegistrationV1` of the builder API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct ValidatorRegistration {
    /// Where the builder should pay.
    pub fee_recipient: ExecutionAddress,
    /// The gas limit the validator prefers.
    #[serde(with = "serde_utils::quoted_u64")]
    pub gas_limit: u64,
    /// Unix seconds; a later registration replaces an earlier one.
    #[serde(with = "serde_utils::quoted_u64")]
    pub timestamp: u64,
    /// The validator.
    pub pubkey: PublicKeyBytes,
}

/// `SignedValidatorRegistrationV1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SignedValidatorRegistration {
    /// The registration.
    pub message: ValidatorRegistration,
    /// The validator's signature over it.
    pub signature: SignatureBytes,
}
