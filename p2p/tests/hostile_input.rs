//! Every decoder of the crate against arbitrary and truncated bytes: ENRs
//! (text and RLP), message frames and their serde + bincode payloads. None
//! may panic, and none may allocate beyond its limit (a frame's announced
//! length is checked before its body is read).

use phalanx_p2p::{decode, encode, Enr, NodeKey, PeerInfo};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_enr_text_never_panics(text in "enr:[A-Za-z0-9_-]{0,420}") {
        let _ = text.parse::<Enr>();
    }

    #[test]
    fn arbitrary_rlp_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Enr::from_rlp(&bytes);
    }

    #[test]
    fn truncated_or_flipped_records_are_refused(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
        let key = NodeKey::generate();
        let record = key
            .enr(5, Some(std::net::Ipv4Addr::new(192, 168, 1, 2)), Some(3610), Some(3630))
            .to_rlp();
        let cut = cut % record.len();
        prop_assert!(Enr::from_rlp(&record[..cut]).is_err());
        let mut flipped = record.clone();
        let at = flip % flipped.len();
        flipped[at] ^= 1 << bit;
        if let Ok(enr) = Enr::from_rlp(&flipped) {
            // Only a flip that leaves the signed content intact can pass,
            // and then it must still name the same key.
            prop_assert_eq!(enr.public_key(), key.public_key());
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let _ = decode::<PeerInfo>(&bytes, 512);
        let _ = decode::<Vec<Vec<u8>>>(&bytes, 1_024);
        let _ = decode::<(u64, String, Vec<[u8; 32]>)>(&bytes, 1_024);
    }

    #[test]
    fn truncated_payloads_are_refused(cut in 0usize..100, version in "[a-z0-9./]{0,40}") {
        let info = PeerInfo { version, lock_hash: [3; 32], unix_millis: 1_700_000_000_000 };
        let bytes = encode(&info, 512).expect("encodes");
        let cut = cut % bytes.len();
        prop_assert!(decode::<PeerInfo>(&bytes[..cut], 512).is_err());
        prop_assert_eq!(decode::<PeerInfo>(&bytes, 512).expect("decodes"), info);
    }
}

#[test]
fn announced_lengths_beyond_the_limit_never_allocate() {
    // A Vec<u8> claiming 2^40 elements, inside a 16-byte payload.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 8]);
    assert!(decode::<Vec<u8>>(&bytes, 1 << 20).is_err());
    // A String claiming 2^62 bytes.
    let bytes = (1u64 << 62).to_le_bytes().to_vec();
    assert!(decode::<String>(&bytes, 1 << 20).is_err());
}
