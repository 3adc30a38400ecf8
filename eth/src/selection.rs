//! Which validators aggregate: the selection rules of the phase 0 and
//! Altair validator guides, applied to a selection proof (for a
//! distributed validator, the cluster's combined one).

use sha2::{Digest, Sha256};
use ssz_types::typenum::Unsigned;

use crate::preset::EthSpec;
use crate::primitives::SignatureBytes;

/// `TARGET_AGGREGATORS_PER_COMMITTEE` (phase 0).
pub const TARGET_AGGREGATORS_PER_COMMITTEE: u64 = 16;
/// `TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE` (Altair).
pub const TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE: u64 = 16;
/// `SYNC_COMMITTEE_SUBNET_COUNT`, the same in every preset.
pub const SYNC_COMMITTEE_SUBNET_COUNT: u64 = 4;

/// `bytes_to_uint64(hash(signature)[0:8])`, which both rules reduce.
fn selection_value(signature: &SignatureBytes) -> u64 {
    let digest = Sha256::digest(signature.as_slice());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(prefix)
}

/// `is_aggregator`: whether the proof elects its validator to aggregate a
/// committee of `committee_length`.
pub fn is_aggregator(committee_length: u64, selection_proof: &SignatureBytes) -> bool {
    let modulo = (committee_length / TARGET_AGGREGATORS_PER_COMMITTEE).max(1);
    selection_value(selection_proof).is_multiple_of(modulo)
}

/// `is_sync_committee_aggregator`.
pub fn is_sync_committee_aggregator<E: EthSpec>(selection_proof: &SignatureBytes) -> bool {
    let modulo = (E::SyncCommitteeSize::to_u64()
        / SYNC_COMMITTEE_SUBNET_COUNT
        / TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE)
        .max(1);
    selection_value(selection_proof).is_multiple_of(modulo)
}

/// The subcommittee a position in the sync committee falls in.
pub fn sync_subcommittee<E: EthSpec>(position: u64) -> u64 {
    position / E::SyncSubcommitteeSize::to_u64().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MainnetEthSpec, MinimalEthSpec};

    #[test]
    fn aggregator_selection_follows_the_spec_arithmetic() {
        // sha256([0x11; 96])[..8] as little-endian is 2154568890823163240,
        // which is 0 mod 10, 0 mod 8 and 104 mod 128 (computed independently
        // with Python's hashlib); sha256([0; 96]) gives 4 mod 10.
        let chosen = SignatureBytes::repeat_byte(0x11);
        let other = SignatureBytes::repeat_byte(0x00);
        assert_eq!(selection_value(&chosen), 2_154_568_890_823_163_240);
        // Committees under 32 members: everyone aggregates.
        assert!(is_aggregator(2, &other) && is_aggregator(31, &other));
        // 160 members: modulo 10.
        assert!(is_aggregator(160, &chosen));
        assert!(!is_aggregator(160, &other));
        // 2048 members: modulo 128.
        assert!(!is_aggregator(2048, &chosen));
        // Minimal sync committees (32 members) are too small to thin out.
        assert!(is_sync_committee_aggregator::<MinimalEthSpec>(&other));
        // Mainnet: 512 / 4 / 16 = modulo 8; 0xab gives 5 mod 8.
        assert!(is_sync_committee_aggregator::<MainnetEthSpec>(&chosen));
        assert!(!is_sync_committee_aggregator::<MainnetEthSpec>(
            &SignatureBytes::repeat_byte(0xab)
        ));
    }

    #[test]
    fn positions_fall_in_subcommittees_by_the_preset() {
        assert_eq!(sync_subcommittee::<MainnetEthSpec>(127), 0);
        assert_eq!(sync_subcommittee::<MainnetEthSpec>(128), 1);
        assert_eq!(sync_subcommittee::<MinimalEthSpec>(31), 3);
    }
}
