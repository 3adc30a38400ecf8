//! `phalanx create cluster`, `create dkg` and `combine`, run as an operator
//! would: folders that verify, existing keys split with their slashing
//! history and recovered intact.

use std::path::Path;
use std::process::{Command, Output};

use phalanx_crypto::keystore::{KdfSetting, Keystore};
use phalanx_crypto::SecretKey;
use phalanx_dkg::ClusterLock;

const ADDRESS: &str = "0x52908400098527886E0F7030069857D2E4169EE7";

fn phalanx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .env_remove("PHALANX_DATA_DIR")
        .output()
        .expect("runs")
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn create_cluster_writes_verifying_identical_locks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("cluster");
    let output = phalanx(&[
        "create",
        "cluster",
        "--nodes",
        "4",
        "--num-validators",
        "2",
        "--insecure-keys",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--cluster-dir",
        path(&cluster),
    ]);
    ok(&output);
    let first = std::fs::read(cluster.join("node0/cluster-lock.json")).expect("lock");
    for i in 0..4 {
        let node = cluster.join(format!("node{i}"));
        assert_eq!(
            std::fs::read(node.join("cluster-lock.json")).expect("lock"),
            first
        );
        let lock = ClusterLock::load(&node.join("cluster-lock.json")).expect("verifies");
        assert_eq!(lock.definition.threshold, 3);
        assert!(node.join("enr-private-key").exists());
        assert!(node.join("validator_keys/keystore-1.json").exists());
        assert!(node.join("validator_keys/keystore-1.txt").exists());
    }
    // Refuses to overwrite.
    let again = phalanx(&[
        "create",
        "cluster",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--cluster-dir",
        path(&cluster),
    ]);
    assert!(!again.status.success());
}

#[test]
fn split_existing_keys_then_combine_returns_them_with_their_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("existing");
    std::fs::create_dir_all(&keys_dir).expect("mkdir");
    let mut rng = rand::rngs::OsRng;
    let originals: Vec<SecretKey> = (0..2).map(|_| SecretKey::random(&mut rng)).collect();
    for (i, key) in originals.iter().enumerate() {
        let keystore = Keystore::encrypt(key, "hunter2", "", KdfSetting::InsecureLowCost, &mut rng)
            .expect("encrypts");
        std::fs::write(
            keys_dir.join(format!("keystore-{i}.json")),
            keystore.to_json(),
        )
        .expect("write");
        std::fs::write(keys_dir.join(format!("keystore-{i}.txt")), "hunter2\n").expect("write");
    }
    let history = serde_json::json!({
        "metadata": {"interchange_format_version": "5",
            "genesis_validators_root": format!("0x{}", "11".repeat(32))},
        "data": originals.iter().map(|k| serde_json::json!({
            "pubkey": k.public_key().to_hex(),
            "signed_blocks": [{"slot": "100"}],
            "signed_attestations": [{"source_epoch": "2", "target_epoch": "3"}]
        })).chain(std::iter::once(serde_json::json!({
            "pubkey": SecretKey::random(&mut rng).public_key().to_hex(),
            "signed_blocks": [], "signed_attestations": []
        }))).collect::<Vec<_>>()
    });
    let history_path = dir.path().join("interchange.json");
    std::fs::write(&history_path, history.to_string()).expect("write");

    let cluster = dir.path().join("cluster");
    ok(&phalanx(&[
        "create",
        "cluster",
        "--nodes",
        "4",
        "--insecure-keys",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--split-existing-keys",
        path(&keys_dir),
        "--slashing-protection",
        path(&history_path),
        "--cluster-dir",
        path(&cluster),
    ]));
    for i in 0..4 {
        let text =
            std::fs::read_to_string(cluster.join(format!("node{i}/slashing-protection.json")))
                .expect("history carried into every folder");
        let carried: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            carried["data"].as_array().expect("data").len(),
            2,
            "only the split keys' history"
        );
    }
    let lock = ClusterLock::load(&cluster.join("node1/cluster-lock.json")).expect("verifies");
    for (validator, original) in lock.validators.iter().zip(&originals) {
        assert_eq!(validator.public_key, original.public_key());
    }

    let out = dir.path().join("recovered");
    let dirs = format!(
        "{},{},{}",
        path(&cluster.join("node3")),
        path(&cluster.join("node0")),
        path(&cluster.join("node2"))
    );
    ok(&phalanx(&[
        "combine",
        "--insecure-keys",
        "--operator-dirs",
        &dirs,
        "--output-dir",
        path(&out),
    ]));
    for (i, original) in originals.iter().enumerate() {
        let keystore = Keystore::from_json(
            &std::fs::read_to_string(out.join(format!("keystore-{i}.json"))).expect("keystore"),
        )
        .expect("parses");
        let password =
            std::fs::read_to_string(out.join(format!("keystore-{i}.txt"))).expect("password");
        let recovered = keystore.decrypt(&password).expect("decrypts");
        assert_eq!(recovered.to_bytes().as_ref(), original.to_bytes().as_ref());
    }
    let too_few = phalanx(&[
        "combine",
        "--operator-dirs",
        &format!(
            "{},{}",
            path(&cluster.join("node0")),
            path(&cluster.join("node1"))
        ),
        "--output-dir",
        path(&dir.path().join("nope")),
    ]);
    assert!(!too_few.status.success());
    assert!(String::from_utf8_lossy(&too_few.stderr).contains("3 needed"));
}

#[test]
fn create_dkg_writes_a_definition_and_refuses_unsafe_thresholds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut enrs = Vec::new();
    for i in 0..4 {
        let data = dir.path().join(format!("op{i}"));
        let output = phalanx(&["create", "enr", "--data-dir", path(&data)]);
        ok(&output);
        enrs.push(
            String::from_utf8(output.stdout)
                .expect("utf-8")
                .trim()
                .to_string(),
        );
    }
    let file = dir.path().join("cluster-definition.json");
    let output = phalanx(&[
        "create",
        "dkg",
        "--operator-enrs",
        &enrs.join(","),
        "--num-validators",
        "3",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--network",
        "sepolia",
        "--output-file",
        path(&file),
    ]);
    ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("definition hash: 0x"), "{stdout}");
    let definition: phalanx_dkg::ClusterDefinition =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("parses");
    definition.validate().expect("valid");
    assert_eq!(definition.threshold, 3);
    assert_eq!(definition.validators.len(), 3);
    assert_eq!(definition.network.name, "sepolia");

    let unsafe_threshold = phalanx(&[
        "create",
        "dkg",
        "--operator-enrs",
        &enrs.join(","),
        "--threshold",
        "2",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--output-file",
        path(&dir.path().join("other.json")),
    ]);
    assert!(!unsafe_threshold.status.success());
    let stderr = String::from_utf8_lossy(&unsafe_threshold.stderr);
    assert!(stderr.contains("not above half"), "{stderr}");
}

#[test]
fn four_operators_run_a_ceremony_as_separate_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..4)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port()
        })
        .collect();
    let mut enrs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let output = phalanx(&[
            "create",
            "enr",
            "--data-dir",
            path(&dir.path().join(format!("op{i}"))),
            "--p2p-tcp-port",
            &port.to_string(),
        ]);
        ok(&output);
        enrs.push(
            String::from_utf8(output.stdout)
                .expect("utf-8")
                .trim()
                .to_string(),
        );
    }
    let definition = dir.path().join("cluster-definition.json");
    ok(&phalanx(&[
        "create",
        "dkg",
        "--operator-enrs",
        &enrs.join(","),
        "--num-validators",
        "2",
        "--withdrawal-addresses",
        ADDRESS,
        "--fee-recipient-addresses",
        ADDRESS,
        "--output-file",
        path(&definition),
    ]));
    let children: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Command::new(env!("CARGO_BIN_EXE_phalanx"))
                .args([
                    "dkg",
                    "--insecure-keys",
                    "--timeout",
                    "120",
                    "--definition-file",
                    path(&definition),
                    "--data-dir",
                    path(&dir.path().join(format!("op{i}"))),
                    "--p2p-tcp-address",
                    &format!("127.0.0.1:{port}"),
                ])
                .env_remove("PHALANX_DATA_DIR")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("starts")
        })
        .collect();
    for child in children {
        ok(&child.wait_with_output().expect("finishes"));
    }
    let first = std::fs::read(dir.path().join("op0/cluster-lock.json")).expect("lock");
    for i in 0..4 {
        let op = dir.path().join(format!("op{i}"));
        assert_eq!(
            std::fs::read(op.join("cluster-lock.json")).expect("lock"),
            first
        );
        ClusterLock::load(&op.join("cluster-lock.json")).expect("verifies");
        assert!(op.join("validator_keys/keystore-1.json").exists());
    }
    // And the shares combine back to the validators' keys.
    let out = dir.path().join("recovered");
    let dirs = format!(
        "{},{},{}",
        path(&dir.path().join("op1")),
        path(&dir.path().join("op2")),
        path(&dir.path().join("op3"))
    );
    ok(&phalanx(&[
        "combine",
        "--insecure-keys",
        "--operator-dirs",
        &dirs,
        "--output-dir",
        path(&out),
    ]));
}
