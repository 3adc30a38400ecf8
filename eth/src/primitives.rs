//! The quantities of the consensus specs as distinct types: a `Slot` is not
//! an `Epoch`, and a `ValidatorIndex` is not a `CommitteeIndex`.
//!
//! Integers are written as quoted decimal strings in beacon-API JSON (and
//! accepted unquoted, as the spec tests write them); SSZ and tree-hash treat
//! each as the `uint64` it wraps.

use std::fmt;

use alloy_primitives::FixedBytes;
use ssz_derive::{Decode, Encode};
use tree_hash::{PackedEncoding, TreeHash, TreeHashType};

/// A 32-byte hash tree root.
pub type Root = alloy_primitives::B256;
/// A 4-byte fork version.
pub type Version = FixedBytes<4>;
/// A 4-byte domain type (the first bytes of a domain).
pub type DomainType = FixedBytes<4>;
/// A 32-byte signing domain.
pub type Domain = alloy_primitives::B256;
/// A 20-byte execution-layer address.
pub type ExecutionAddress = alloy_primitives::Address;
/// A compressed BLS public key as it travels in containers, not yet validated
/// (decoding to a [`phalanx_crypto::PublicKey`] does that).
pub type PublicKeyBytes = FixedBytes<48>;
/// A compressed BLS signature as it travels in containers, not yet validated.
pub type SignatureBytes = FixedBytes<96>;

macro_rules! uint64_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, Encode, Decode,
        )]
        #[serde(transparent)]
        #[ssz(struct_behaviour = "transparent")]
        pub struct $name(#[serde(with = "serde_utils::quoted_u64")] pub u64);

        impl $name {
            /// Wraps a number.
            pub const fn new(value: u64) -> Self {
                $name(value)
            }

            /// The number.
            pub const fn as_u64(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                $name(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl TreeHash for $name {
            fn tree_hash_type() -> TreeHashType {
                u64::tree_hash_type()
            }
            fn tree_hash_packed_encoding(&self) -> PackedEncoding {
                self.0.tree_hash_packed_encoding()
            }
            fn tree_hash_packing_factor() -> usize {
                u64::tree_hash_packing_factor()
            }
            fn tree_hash_root(&self) -> Root {
                self.0.tree_hash_root()
            }
        }
    };
}

uint64_newtype!(
    /// A slot number.
    Slot
);
uint64_newtype!(
    /// An epoch number.
    Epoch
);
uint64_newtype!(
    /// The index of a validator in the beacon state's registry.
    ValidatorIndex
);
uint64_newtype!(
    /// The index of a committee within its slot.
    CommitteeIndex
);
uint64_newtype!(
    /// An amount of ether in gwei.
    Gwei
);

impl Slot {
    /// The epoch this slot belongs to.
    pub fn epoch(self, slots_per_epoch: u64) -> Epoch {
        Epoch(self.0 / slots_per_epoch.max(1))
    }
}

impl Epoch {
    /// The first slot of this epoch.
    pub fn start_slot(self, slots_per_epoch: u64) -> Slot {
        Slot(self.0.saturating_mul(slots_per_epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_quoted_in_json_and_accepted_bare() {
        assert_eq!(serde_json::to_string(&Slot(7)).expect("json"), "\"7\"");
        assert_eq!(serde_json::from_str::<Slot>("\"7\"").ok(), Some(Slot(7)));
        assert_eq!(serde_json::from_str::<Slot>("7").ok(), Some(Slot(7)));
        assert!(serde_json::from_str::<Slot>("\"-1\"").is_err());
    }

    #[test]
    fn newtypes_hash_and_encode_as_uint64() {
        use ssz::Encode as _;
        assert_eq!(Epoch(5).as_ssz_bytes(), 5u64.to_le_bytes());
        assert_eq!(Epoch(5).tree_hash_root(), 5u64.tree_hash_root());
        assert_eq!(Slot(65).epoch(32), Epoch(2));
        assert_eq!(Epoch(2).start_slot(32), Slot(64));
    }
}
