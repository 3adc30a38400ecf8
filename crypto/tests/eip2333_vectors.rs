//! The EIP-2333 key-derivation test cases (seed → master SK → child SK).

use phalanx_crypto::derivation::{derive_child_sk, derive_master_sk};
use phalanx_crypto::SecretKey;
use phalanx_test_support::{hex_bytes, vectors_dir};
use serde_json::Value;

/// A decimal integer below 2^256 as 32 big-endian bytes.
fn decimal_to_be32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for digit in text.bytes() {
        assert!(digit.is_ascii_digit(), "not decimal: {text}");
        let mut carry = u32::from(digit - b'0');
        for byte in out.iter_mut().rev() {
            let value = u32::from(*byte) * 10 + carry;
            *byte = value as u8;
            carry = value >> 8;
        }
        assert_eq!(carry, 0, "overflow: {text}");
    }
    out
}

fn key_bytes(key: &SecretKey) -> [u8; 32] {
    *key.to_bytes()
}

#[test]
fn decimal_conversion_is_right() {
    let mut expected = [0u8; 32];
    expected[30] = 0x01;
    expected[31] = 0x00;
    assert_eq!(decimal_to_be32("256"), expected);
}

#[test]
fn eip2333_vectors_derive() {
    let Some(dir) = vectors_dir("eip2333") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("vectors.json")).expect("vectors.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("json");
    assert_eq!(cases.len(), 4, "EIP-2333 has four test cases");
    for case in cases {
        let seed = hex_bytes(&case["seed"]);
        let master = derive_master_sk(&seed).expect("seed is long enough");
        let master_expected = case["master_SK"].as_str().expect("master_SK");
        assert_eq!(
            key_bytes(&master),
            decimal_to_be32(master_expected),
            "master"
        );

        let index = u32::try_from(case["child_index"].as_u64().expect("index")).expect("u32");
        let child = derive_child_sk(&master, index);
        let child_expected = case["child_SK"].as_str().expect("child_SK");
        assert_eq!(
            key_bytes(&child),
            decimal_to_be32(child_expected),
            "child {index}"
        );
    }
}
