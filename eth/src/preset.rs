//! Presets: the constants that fix list lengths, and so SSZ layouts and
//! roots. Mainnet is used in production; minimal by tests and small devnets.
//! Containers are generic over an [`EthSpec`], as in Lighthouse.

use std::fmt::Debug;

use ssz_types::typenum::{self, Unsigned};

/// A preset's sizes as type-level numbers, for the SSZ list types.
pub trait EthSpec: 'static + Clone + Copy + Debug + Default + PartialEq + Eq + Send + Sync {
    /// `MAX_VALIDATORS_PER_COMMITTEE`.
    type MaxValidatorsPerCommittee: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_COMMITTEES_PER_SLOT`.
    type MaxCommitteesPerSlot: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT` (Electra aggregation bits).
    type MaxValidatorsPerSlot: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `SYNC_COMMITTEE_SIZE`.
    type SyncCommitteeSize: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `SYNC_COMMITTEE_SIZE / SYNC_COMMITTEE_SUBNET_COUNT`.
    type SyncSubcommitteeSize: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_WITHDRAWALS_PER_PAYLOAD`.
    type MaxWithdrawalsPerPayload: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_BLOB_COMMITMENTS_PER_BLOCK`.
    type MaxBlobCommitmentsPerBlock: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_BLOB_COMMITMENTS_PER_BLOCK * CELLS_PER_EXT_BLOB`: Fulu's cell proofs per block.
    type MaxCellProofsPerBlock: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_DEPOSIT_REQUESTS_PER_PAYLOAD`.
    type MaxDepositRequestsPerPayload: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD`.
    type MaxWithdrawalRequestsPerPayload: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;
    /// `MAX_CONSOLIDATION_REQUESTS_PER_PAYLOAD`.
    type MaxConsolidationRequestsPerPayload: Unsigned + Clone + Debug + PartialEq + Eq + Send + Sync;

    /// The preset's name as configs write it (`mainnet`, `minimal`).
    const NAME: &'static str;
    /// `SLOTS_PER_EPOCH`.
    const SLOTS_PER_EPOCH: u64;
}

/// The mainnet preset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MainnetEthSpec;

impl EthSpec for MainnetEthSpec {
    type MaxValidatorsPerCommittee = typenum::U2048;
    type MaxCommitteesPerSlot = typenum::U64;
    type MaxValidatorsPerSlot = typenum::U131072;
    type SyncCommitteeSize = typenum::U512;
    type SyncSubcommitteeSize = typenum::U128;
    type MaxWithdrawalsPerPayload = typenum::U16;
    type MaxBlobCommitmentsPerBlock = typenum::U4096;
    type MaxCellProofsPerBlock = typenum::U524288;
    type MaxDepositRequestsPerPayload = typenum::U8192;
    type MaxWithdrawalRequestsPerPayload = typenum::U16;
    type MaxConsolidationRequestsPerPayload = typenum::U2;
    const NAME: &'static str = "mainnet";
    const SLOTS_PER_EPOCH: u64 = 32;
}

/// The minimal preset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinimalEthSpec;

impl EthSpec for MinimalEthSpec {
    type MaxValidatorsPerCommittee = typenum::U2048;
    type MaxCommitteesPerSlot = typenum::U4;
    type MaxValidatorsPerSlot = typenum::U8192;
    type SyncCommitteeSize = typenum::U32;
    type SyncSubcommitteeSize = typenum::U8;
    type MaxWithdrawalsPerPayload = typenum::U4;
    // 4096 as in mainnet since consensus-specs 1.6 (earlier minimal presets,
    // and the consensus-spec tests generated with them, used 32).
    type MaxBlobCommitmentsPerBlock = typenum::U4096;
    type MaxCellProofsPerBlock = typenum::U524288;
    // As in mainnet; confirmed by the spec tests and the executable spec.
    type MaxDepositRequestsPerPayload = typenum::U8192;
    type MaxWithdrawalRequestsPerPayload = typenum::U16;
    type MaxConsolidationRequestsPerPayload = typenum::U2;
    const NAME: &'static str = "minimal";
    const SLOTS_PER_EPOCH: u64 = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_products<E: EthSpec>() {
        assert_eq!(
            E::MaxValidatorsPerSlot::to_usize(),
            E::MaxValidatorsPerCommittee::to_usize() * E::MaxCommitteesPerSlot::to_usize()
        );
        // CELLS_PER_EXT_BLOB is 128 in every preset.
        assert_eq!(
            E::MaxCellProofsPerBlock::to_usize(),
            E::MaxBlobCommitmentsPerBlock::to_usize() * 128
        );
        // SYNC_COMMITTEE_SUBNET_COUNT is 4 in every preset.
        assert_eq!(
            E::SyncSubcommitteeSize::to_usize() * 4,
            E::SyncCommitteeSize::to_usize()
        );
    }

    #[test]
    fn derived_sizes_are_consistent() {
        check_products::<MainnetEthSpec>();
        check_products::<MinimalEthSpec>();
    }
}
