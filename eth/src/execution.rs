//! The execution layer as the beacon chain sees it: payloads and their
//! headers (for blinded blocks), withdrawals, and Electra's execution
//! requests.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use ssz_types::typenum::{U1048576, U1073741824, U256 as N256, U32};
use ssz_types::{FixedVector, VariableList};
use tree_hash_derive::TreeHash;

use crate::preset::EthSpec;
use crate::primitives::{
    ExecutionAddress, Gwei, PublicKeyBytes, Root, SignatureBytes, ValidatorIndex,
};

/// `Transaction`: opaque RLP bytes.
pub type Transaction = VariableList<u8, U1073741824>;
/// `MAX_TRANSACTIONS_PER_PAYLOAD` transactions.
pub type Transactions = VariableList<Transaction, U1048576>;
/// `BYTES_PER_LOGS_BLOOM` bytes.
pub type LogsBloom = FixedVector<u8, N256>;
/// At most `MAX_EXTRA_DATA_BYTES` bytes.
pub type ExtraData = VariableList<u8, U32>;

/// `Withdrawal`: an automatic withdrawal paid by a payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct Withdrawal {
    /// The withdrawal's global index.
    #[serde(with = "serde_utils::quoted_u64")]
    pub index: u64,
    /// The validator withdrawn from.
    pub validator_index: ValidatorIndex,
    /// The recipient.
    pub address: ExecutionAddress,
    /// The amount.
    pub amount: Gwei,
}

/// Declares a payload or payload header: the fields every fork shares, then
/// the fork's own. Payloads are generic over the preset (the withdrawals
/// list); headers, with roots in place of lists, are not.
macro_rules! payload_fields {
    ($(#[$meta:meta])* $name:ident $(<$preset:ident>)? { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
        // Every field type serializes for any preset: no inferred bounds.
        #[serde(bound = "")]
        pub struct $name $(<$preset: EthSpec>)? {
            /// The parent execution block's hash.
            pub parent_hash: Root,
            /// The fee recipient.
            pub fee_recipient: ExecutionAddress,
            /// The execution state root.
            pub state_root: Root,
            /// The receipts root.
            pub receipts_root: Root,
            /// The logs bloom filter.
            #[serde(with = "ssz_types::serde_utils::hex_fixed_vec")]
            pub logs_bloom: LogsBloom,
            /// The beacon chain's randao mix.
            pub prev_randao: Root,
            /// The execution block number.
            #[serde(with = "serde_utils::quoted_u64")]
            pub block_number: u64,
            /// The gas limit.
            #[serde(with = "serde_utils::quoted_u64")]
            pub gas_limit: u64,
            /// The gas used.
            #[serde(with = "serde_utils::quoted_u64")]
            pub gas_used: u64,
            /// Unix seconds.
            #[serde(with = "serde_utils::quoted_u64")]
            pub timestamp: u64,
            /// Free bytes for the builder.
            #[serde(with = "ssz_types::serde_utils::hex_var_list")]
            pub extra_data: ExtraData,
            /// EIP-1559 base fee.
            #[serde(with = "serde_utils::quoted_u256")]
            pub base_fee_per_gas: U256,
            /// The execution block's hash.
            pub block_hash: Root,
            $($extra)*
        }
    };
}

payload_fields!(
    /// `ExecutionPayload` of Bellatrix.
    ExecutionPayloadBellatrix {
        /// The transactions.
        #[serde(with = "ssz_types::serde_utils::list_of_hex_var_list")]
        pub transactions: Transactions,
    }
);

payload_fields!(
    /// `ExecutionPayload` of Capella.
    ExecutionPayloadCapella<E> {
        /// The transactions.
        #[serde(with = "ssz_types::serde_utils::list_of_hex_var_list")]
        pub transactions: Transactions,
        /// The withdrawals paid.
        pub withdrawals: VariableList<Withdrawal, E::MaxWithdrawalsPerPayload>,
    }
);

payload_fields!(
    /// `ExecutionPayload` of Deneb, unchanged in Electra and Fulu.
    ExecutionPayloadDeneb<E> {
        /// The transactions.
        #[serde(with = "ssz_types::serde_utils::list_of_hex_var_list")]
        pub transactions: Transactions,
        /// The withdrawals paid.
        pub withdrawals: VariableList<Withdrawal, E::MaxWithdrawalsPerPayload>,
        /// Blob gas used (EIP-4844).
        #[serde(with = "serde_utils::quoted_u64")]
        pub blob_gas_used: u64,
        /// Excess blob gas (EIP-4844).
        #[serde(with = "serde_utils::quoted_u64")]
        pub excess_blob_gas: u64,
    }
);

payload_fields!(
    /// `ExecutionPayloadHeader` of Bellatrix: the payload with its
    /// transactions as their root.
    ExecutionPayloadHeaderBellatrix {
        /// hash_tree_root of the transactions.
        pub transactions_root: Root,
    }
);

payload_fields!(
    /// `ExecutionPayloadHeader` of Capella: the payload with its lists as roots.
    ExecutionPayloadHeaderCapella {
        /// hash_tree_root of the transactions.
        pub transactions_root: Root,
        /// hash_tree_root of the withdrawals.
        pub withdrawals_root: Root,
    }
);

payload_fields!(
    /// `ExecutionPayloadHeader` of Deneb, unchanged in Electra and Fulu.
    ExecutionPayloadHeaderDeneb {
        /// hash_tree_root of the transactions.
        pub transactions_root: Root,
        /// hash_tree_root of the withdrawals.
        pub withdrawals_root: Root,
        /// Blob gas used (EIP-4844).
        #[serde(with = "serde_utils::quoted_u64")]
        pub blob_gas_used: u64,
        /// Excess blob gas (EIP-4844).
        #[serde(with = "serde_utils::quoted_u64")]
        pub excess_blob_gas: u64,
    }
);

/// `DepositRequest` (EIP-6110): a deposit seen by the execution layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct DepositRequest {
    /// The validator's public key.
    pub pubkey: PublicKeyBytes,
    /// Withdrawal credentials.
    pub withdrawal_credentials: Root,
    /// The amount.
    pub amount: Gwei,
    /// The deposit signature.
    pub signature: SignatureBytes,
    /// The deposit's index in the contract.
    #[serde(with = "serde_utils::quoted_u64")]
    pub index: u64,
}

/// `WithdrawalRequest` (EIP-7002): a withdrawal triggered from the execution layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct WithdrawalRequest {
    /// The withdrawal address that asks.
    pub source_address: ExecutionAddress,
    /// The validator.
    pub validator_pubkey: PublicKeyBytes,
    /// The amount (0 for a full exit).
    pub amount: Gwei,
}

/// `ConsolidationRequest` (EIP-7251).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct ConsolidationRequest {
    /// The withdrawal address that asks.
    pub source_address: ExecutionAddress,
    /// The validator consolidated away.
    pub source_pubkey: PublicKeyBytes,
    /// The validator consolidated into.
    pub target_pubkey: PublicKeyBytes,
}

/// `ExecutionRequests` (Electra).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
#[serde(bound = "E: EthSpec")]
pub struct ExecutionRequests<E: EthSpec> {
    /// Deposits.
    pub deposits: VariableList<DepositRequest, E::MaxDepositRequestsPerPayload>,
    /// Withdrawals.
    pub withdrawals: VariableList<WithdrawalRequest, E::MaxWithdrawalRequestsPerPayload>,
    /// Consolidations.
    pub consolidations: VariableList<ConsolidationRequest, E::MaxConsolidationRequestsPerPayload>,
}

/// Implements `to_header` for a payload: the shared fields copied, the
/// lists replaced by their roots, the fork's own scalars copied.
macro_rules! payload_to_header {
    (
        impl[$($generics:tt)*] $payload:ty => $header:ident,
        roots: [$($list:ident => $root:ident),*],
        copied: [$($extra:ident),*]
    ) => {
        impl<$($generics)*> $payload {
            /// The header of this payload: its lists replaced by their roots.
            pub fn to_header(&self) -> $header {
                $header {
                    parent_hash: self.parent_hash,
                    fee_recipient: self.fee_recipient,
                    state_root: self.state_root,
                    receipts_root: self.receipts_root,
                    logs_bloom: self.logs_bloom.clone(),
                    prev_randao: self.prev_randao,
                    block_number: self.block_number,
                    gas_limit: self.gas_limit,
                    gas_used: self.gas_used,
                    timestamp: self.timestamp,
                    extra_data: self.extra_data.clone(),
                    base_fee_per_gas: self.base_fee_per_gas,
                    block_hash: self.block_hash,
                    $($root: tree_hash::TreeHash::tree_hash_root(&self.$list),)*
                    $($extra: self.$extra,)*
                }
            }
        }
    };
}

payload_to_header!(
    impl[] ExecutionPayloadBellatrix => ExecutionPayloadHeaderBellatrix,
    roots: [transactions => transactions_root],
    copied: []
);
payload_to_header!(
    impl[E: EthSpec] ExecutionPayloadCapella<E> => ExecutionPayloadHeaderCapella,
    roots: [transactions => transactions_root, withdrawals => withdrawals_root],
    copied: []
);
payload_to_header!(
    impl[E: EthSpec] ExecutionPayloadDeneb<E> => ExecutionPayloadHeaderDeneb,
    roots: [transactions => transactions_root, withdrawals => withdrawals_root],
    copied: [blob_gas_used, excess_blob_gas]
);
