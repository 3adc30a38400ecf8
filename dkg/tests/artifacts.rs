//! Trusted-dealer clusters end to end on disk: locks that verify and are
//! identical in every operator's folder, tampering refused field by field,
//! keystores that decrypt with their own password only, threshold
//! signatures under each group key, and `combine` returning the original
//! keys from any t folders.

use std::net::Ipv4Addr;

use phalanx_crypto::keystore::{KdfSetting, Keystore};
use phalanx_crypto::threshold::combine as combine_partials;
use phalanx_crypto::SecretKey;
use phalanx_dkg::combine::combine;
use phalanx_dkg::dealer::{deal, DealtCluster};
use phalanx_dkg::definition::{BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::files::{write_operator_files, KEYS_DIR, LOCK_FILE};
use phalanx_dkg::{ClusterDefinition, ClusterLock};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ExecutionAddress;
use phalanx_p2p::NodeKey;
use rand::SeedableRng;

fn definition(n: usize, t: u32, validators: usize) -> (ClusterDefinition, Vec<NodeKey>) {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let enrs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.enr(
                1,
                Some(Ipv4Addr::LOCALHOST),
                Some(3610 + i as u16),
                Some(3630 + i as u16),
            )
        })
        .collect();
    let network = NetworkConfig::built_in("hoodi").expect("hoodi");
    let specs = (0..validators)
        .map(|i| {
            let mut spec = ValidatorSpec::standard(
                ExecutionAddress::repeat_byte(0x11),
                ExecutionAddress::repeat_byte(0x22),
            );
            spec.compounding = i % 2 == 1;
            spec
        })
        .collect();
    let definition = ClusterDefinition::new(
        "test cluster",
        NetworkSpec::of(&network),
        t,
        &enrs,
        specs,
        BuilderSpec {
            gas_limit: 36_000_000,
            timestamp: 1_700_000_000,
        },
        "2026-11-23T00:00:00Z",
    );
    (definition, keys)
}

fn dealt(n: usize, t: u32, validators: usize, secrets: Option<Vec<SecretKey>>) -> DealtCluster {
    let (definition, keys) = definition(n, t, validators);
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    deal(&definition, keys, secrets, &mut rng).expect("deals")
}

#[test]
fn a_dealt_cluster_signs_with_any_threshold_of_operators() {
    let cluster = dealt(4, 3, 2, None);
    cluster.lock.verify().expect("lock verifies");
    let message = b"block root";
    for (v, validator) in cluster.lock.validators.iter().enumerate() {
        for skip in 0..4 {
            let partials: Vec<_> = cluster
                .operators
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, o)| o.shares[v].sign(message))
                .collect();
            let signature = combine_partials(&partials, 3).expect("combines");
            assert!(signature.verify(&validator.public_key, message));
        }
    }
}

#[test]
fn every_field_of_a_lock_is_protected() {
    let lock = dealt(4, 3, 2, None).lock;
    let mut json: serde_json::Value = serde_json::to_value(&lock).expect("json");
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "name",
            Box::new(|j| j["definition"]["name"] = "other".into()),
        ),
        (
            "threshold",
            Box::new(|j| j["definition"]["threshold"] = 2.into()),
        ),
        (
            "withdrawal",
            Box::new(|j| {
                j["definition"]["validators"][0]["withdrawal_address"] =
                    "0x3333333333333333333333333333333333333333".into()
            }),
        ),
        (
            "public share",
            Box::new(|j| {
                let other = j["validators"][1]["public_shares"][0].clone();
                j["validators"][0]["public_shares"][0] = other;
            }),
        ),
        (
            "deposit amount",
            Box::new(|j| j["validators"][0]["deposit_data"]["amount"] = 31_000_000_000u64.into()),
        ),
        (
            "gas limit",
            Box::new(|j| {
                j["validators"][0]["builder_registration"]["message"]["gas_limit"] =
                    "30000000".into()
            }),
        ),
        (
            "lock hash",
            Box::new(|j| j["lock_hash"] = format!("0x{}", "00".repeat(32)).into()),
        ),
        (
            "operator signature",
            Box::new(|j| {
                let other = j["operator_signatures"][1].clone();
                j["operator_signatures"][0] = other;
            }),
        ),
        (
            "share signature",
            Box::new(|j| {
                j["share_signature"] =
                    j["validators"][0]["builder_registration"]["signature"].clone()
            }),
        ),
    ];
    let original = json.clone();
    for (what, edit) in edits {
        json = original.clone();
        edit(&mut json);
        let tampered: Result<ClusterLock, _> = serde_json::from_value(json.clone());
        if let Ok(tampered) = tampered {
            assert!(
                tampered.verify().is_err(),
                "a changed {what} must not verify"
            );
        }
    }
}

#[test]
fn a_bad_signature_among_many_validators_is_named() {
    // The validators' signatures are verified in batches over the cores;
    // the one that fails must still be named.
    let lock = dealt(4, 3, 70, None).lock;
    lock.verify_validators().expect("all signatures verify");
    let mut json: serde_json::Value = serde_json::to_value(&lock).expect("json");
    let other = json["validators"][3]["builder_registration"]["signature"].clone();
    json["validators"][66]["builder_registration"]["signature"] = other;
    let tampered: ClusterLock = serde_json::from_value(json).expect("still a lock");
    let error = tampered
        .verify_validators()
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("validator 66: builder registration signature does not verify"),
        "{error}"
    );
}

#[test]
fn folders_hold_identical_locks_and_combine_returns_the_original_keys() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let originals: Vec<SecretKey> = (0..3).map(|_| SecretKey::random(&mut rng)).collect();
    let copies: Vec<SecretKey> = originals
        .iter()
        .map(|k| SecretKey::from_bytes(k.to_bytes().as_ref()).expect("copy"))
        .collect();
    let cluster = dealt(4, 3, 3, Some(copies));
    let dir = tempfile::tempdir().expect("tempdir");
    let folders: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("node{i}")))
        .collect();
    for (folder, operator) in folders.iter().zip(&cluster.operators) {
        write_operator_files(
            folder,
            &cluster.lock,
            &operator.shares,
            KdfSetting::InsecureLowCost,
            None,
        )
        .expect("writes");
    }
    let first = std::fs::read(folders[0].join(LOCK_FILE)).expect("lock");
    for folder in &folders[1..] {
        assert_eq!(
            std::fs::read(folder.join(LOCK_FILE)).expect("lock"),
            first,
            "byte-identical locks"
        );
    }
    ClusterLock::load(&folders[2].join(LOCK_FILE)).expect("loads and verifies");

    // A keystore opens with its own password and no other.
    let keystore = Keystore::from_json(
        &std::fs::read_to_string(folders[0].join(KEYS_DIR).join("keystore-0.json")).expect("read"),
    )
    .expect("parses");
    let own =
        std::fs::read_to_string(folders[0].join(KEYS_DIR).join("keystore-0.txt")).expect("read");
    let other =
        std::fs::read_to_string(folders[0].join(KEYS_DIR).join("keystore-1.txt")).expect("read");
    assert_eq!(
        keystore.decrypt(&own).expect("decrypts").public_key(),
        cluster.operators[0].shares[0].public_share().key
    );
    assert!(keystore.decrypt(&other).is_err());

    for chosen in [[0usize, 1, 2], [1, 2, 3], [0, 2, 3]] {
        let paths: Vec<&std::path::Path> = chosen.iter().map(|&i| folders[i].as_path()).collect();
        let (_, recovered) = combine(&paths).expect("combines");
        for (original, recovered) in originals.iter().zip(&recovered) {
            assert_eq!(original.to_bytes().as_ref(), recovered.to_bytes().as_ref());
        }
    }
    let two: Vec<&std::path::Path> = folders[..2].iter().map(|p| p.as_path()).collect();
    let error = combine(&two).expect_err("two of four are not enough");
    assert!(error.to_string().contains("3 needed"), "{error}");
    // The same folder twice does not count twice.
    let twice: Vec<&std::path::Path> = vec![&folders[0], &folders[0], &folders[1]];
    assert!(combine(&twice).is_err());
}

#[test]
fn a_share_from_another_cluster_is_refused() {
    let a = dealt(4, 3, 1, None);
    let b = dealt(4, 3, 1, None);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good");
    let foreign = dir.path().join("foreign");
    write_operator_files(
        &good,
        &a.lock,
        &a.operators[0].shares,
        KdfSetting::InsecureLowCost,
        None,
    )
    .expect("writes");
    // b's share written under a's lock.
    write_operator_files(
        &foreign,
        &a.lock,
        &b.operators[1].shares,
        KdfSetting::InsecureLowCost,
        None,
    )
    .expect("writes");
    let error = combine(&[good.as_path(), foreign.as_path()]).expect_err("refused");
    assert!(error.to_string().contains("not a share"), "{error}");
}
