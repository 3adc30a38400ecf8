//! Bytes and JSON from validator clients, peers and beacon nodes are hostile
//! until decoded: the fork-directed decoders answer with typed errors, never
//! a panic.

use phalanx_eth::attestation::Attestation;
use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
use phalanx_eth::block_contents::{ProducedBlock, SignedBeaconBlock, SignedBlockContents};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{ForkName, MainnetEthSpec};
use proptest::prelude::*;

type E = MainnetEthSpec;

fn fork() -> impl Strategy<Value = ForkName> {
    proptest::sample::select(ForkName::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_ssz_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), fork in fork()) {
        let _ = BeaconBlock::<E>::from_ssz_bytes(&bytes, fork);
        let _ = BlindedBeaconBlock::<E>::from_ssz_bytes(&bytes, fork);
        let _ = SignedBeaconBlock::<E>::from_ssz_bytes(&bytes, fork);
        let _ = SignedBlockContents::<E>::from_ssz_bytes(&bytes, fork);
        let _ = Attestation::<E>::from_ssz_bytes(&bytes, fork);
    }

    #[test]
    fn random_text_never_panics(text in ".{0,300}", fork in fork()) {
        let _ = ProducedBlock::<E>::from_json(text.as_bytes(), Some(fork));
        let _ = NetworkConfig::from_yaml(&text);
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = BeaconBlock::<E>::from_json_value(value.clone(), fork);
            let _ = SignedBlockContents::<E>::from_json_value(value, fork);
        }
    }
}

#[test]
fn hostile_offsets_in_block_contents_are_refused() {
    // Offsets pointing backwards, past the end, and absurd lengths.
    for offsets in [
        [12u32, 8, 20],
        [12, 500, 600],
        [12, 12, 12],
        [0, 0, 0],
        [12, 16, 4_000_000],
    ] {
        let mut bytes = Vec::new();
        for offset in offsets {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        bytes.extend_from_slice(&[0u8; 40]);
        assert!(SignedBlockContents::<E>::from_ssz_bytes(&bytes, ForkName::Electra).is_err());
    }
}
