//! The Ethereum BLS test vectors (`ethereum/bls12-381-tests`): every case,
//! including every case that must fail.

use phalanx_crypto::batch::{find_invalid, verify_signature_sets};
use phalanx_crypto::bls::hash_to_g2;
use phalanx_crypto::{Error, PublicKey, SecretKey, Signature, SignatureSet};
use phalanx_test_support::{hex_bytes, json_cases, vectors_dir};
use rand::rngs::OsRng;
use serde_json::Value;

/// Runs `check` on every case of a vector folder and fails listing every
/// case that disagreed. Returns how many cases ran.
fn run(folder: &str, check: impl Fn(&Value) -> bool) -> usize {
    let Some(dir) = vectors_dir(&format!("bls/{folder}")) else {
        return 0;
    };
    let cases = json_cases(&dir);
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    let failures: Vec<&str> = cases
        .iter()
        .filter(|(_, case)| !check(case))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(failures.is_empty(), "{folder}: failing cases {failures:?}");
    cases.len()
}

fn public_keys(value: &Value) -> Option<Vec<PublicKey>> {
    value
        .as_array()?
        .iter()
        .map(|k| PublicKey::from_bytes(&hex_bytes(k)).ok())
        .collect()
}

fn signature(value: &Value) -> Option<Signature> {
    Signature::from_bytes(&hex_bytes(value)).ok()
}

fn messages(value: &Value) -> Vec<Vec<u8>> {
    value
        .as_array()
        .expect("message list")
        .iter()
        .map(hex_bytes)
        .collect()
}

#[test]
fn sign() {
    run("sign", |case| {
        let input = &case["input"];
        let produced = SecretKey::from_bytes(&hex_bytes(&input["privkey"]))
            .ok()
            .map(|sk| sk.sign(&hex_bytes(&input["message"])).to_bytes().to_vec());
        let expected = case["output"].as_str().map(|_| hex_bytes(&case["output"]));
        produced == expected
    });
}

#[test]
fn verify() {
    run("verify", |case| {
        let input = &case["input"];
        let verified = match (
            PublicKey::from_bytes(&hex_bytes(&input["pubkey"])),
            signature(&input["signature"]),
        ) {
            (Ok(pk), Some(sig)) => sig.verify(&pk, &hex_bytes(&input["message"])),
            _ => false,
        };
        Some(verified) == case["output"].as_bool()
    });
}

#[test]
fn aggregate() {
    run("aggregate", |case| {
        let signatures: Option<Vec<Signature>> = case["input"]
            .as_array()
            .expect("signature list")
            .iter()
            .map(signature)
            .collect();
        let produced = signatures
            .and_then(|sigs| Signature::aggregate(&sigs).ok())
            .map(|sig| sig.to_bytes().to_vec());
        let expected = case["output"].as_str().map(|_| hex_bytes(&case["output"]));
        produced == expected
    });
}

#[test]
fn aggregate_of_nothing_is_a_typed_error() {
    assert_eq!(
        Signature::aggregate(&[]),
        Err(Error::Empty {
            operation: "aggregate"
        })
    );
}

#[test]
fn fast_aggregate_verify() {
    run("fast_aggregate_verify", |case| {
        let input = &case["input"];
        let verified = match (
            public_keys(&input["pubkeys"]),
            signature(&input["signature"]),
        ) {
            (Some(pks), Some(sig)) => {
                sig.fast_aggregate_verify(&hex_bytes(&input["message"]), &pks)
            }
            _ => false,
        };
        Some(verified) == case["output"].as_bool()
    });
}

#[test]
fn aggregate_verify() {
    run("aggregate_verify", |case| {
        let input = &case["input"];
        let msgs = messages(&input["messages"]);
        let msg_refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let verified = match (
            public_keys(&input["pubkeys"]),
            signature(&input["signature"]),
        ) {
            (Some(pks), Some(sig)) => sig.aggregate_verify(&msg_refs, &pks),
            _ => false,
        };
        Some(verified) == case["output"].as_bool()
    });
}

#[test]
fn batch_verify() {
    run("batch_verify", |case| {
        let input = &case["input"];
        let msgs = messages(&input["messages"]);
        let sigs: Option<Vec<Signature>> = input["signatures"]
            .as_array()
            .expect("signature list")
            .iter()
            .map(signature)
            .collect();
        let verified = match (public_keys(&input["pubkeys"]), sigs) {
            (Some(pks), Some(sigs)) => {
                let sets: Vec<SignatureSet<'_>> = (0..pks.len())
                    .map(|i| SignatureSet::new(&msgs[i], &pks[i], &sigs[i]))
                    .collect();
                let batch = verify_signature_sets(&sets, &mut OsRng);
                // Identification must agree with the batch verdict.
                assert_eq!(batch, find_invalid(&sets, &mut OsRng).is_empty());
                batch
            }
            _ => false,
        };
        Some(verified) == case["output"].as_bool()
    });
}

#[test]
fn deserialization_g1() {
    let ran = run("deserialization_G1", |case| {
        let decoded = match PublicKey::from_bytes(&hex_bytes(&case["input"]["pubkey"])) {
            Ok(_) => true,
            // A valid encoding of infinity (the vector expects it to decode),
            // which Ethereum's KeyValidate then refuses as a public key.
            Err(Error::InfinityPublicKey) => true,
            Err(_) => false,
        };
        Some(decoded) == case["output"].as_bool()
    });
    if ran > 0 {
        let mut infinity = [0u8; 48];
        infinity[0] = 0xc0;
        assert_eq!(
            PublicKey::from_bytes(&infinity),
            Err(Error::InfinityPublicKey)
        );
    }
}

#[test]
fn deserialization_g2() {
    run("deserialization_G2", |case| {
        let decoded = signature(&case["input"]["signature"]).is_some();
        Some(decoded) == case["output"].as_bool()
    });
}

#[test]
fn hash_to_g2_matches() {
    const DST: &[u8] = b"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_";
    run("hash_to_G2", |case| {
        let msg = case["input"]["msg"].as_str().expect("msg");
        let point = hash_to_g2(msg.as_bytes(), DST);
        // The vector writes each Fp2 coordinate as "c0,c1"; the encoding is c1 ‖ c0.
        let coordinate = |name: &str| -> Vec<u8> {
            let text = case["output"][name].as_str().expect("coordinate");
            let (c0, c1) = text.split_once(',').expect("two parts");
            let mut bytes = hex_bytes(&Value::from(c1));
            bytes.extend(hex_bytes(&Value::from(c0)));
            bytes
        };
        point[..96] == coordinate("x")[..] && point[96..] == coordinate("y")[..]
    });
}
