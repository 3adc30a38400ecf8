//! In-process ceremonies over real libp2p on 127.0.0.1: (n, t, validators)
//! = (4, 3, 1), (4, 3, 10), (7, 5, 10), (10, 7, 2). Every operator's lock
//! is byte-identical and verifies, each group key is the combination of its
//! public shares, a signature from any t operators verifies, and the
//! deposit data verify (part of the lock's verification).

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use phalanx_crypto::threshold::{combine, recover_public_key};
use phalanx_dkg::definition::{BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::runner::{run_ceremony, RunConfig};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ExecutionAddress;
use phalanx_p2p::NodeKey;
use prometheus_client::registry::Registry;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn ceremony(n: usize, t: u32, validators: usize) {
    ceremony_with_restart(n, t, validators, None).await;
}

/// Runs a ceremony; operator `restart` (if any) stops after a few messages
/// as if its process died, and is started again from its saved state.
async fn ceremony_with_restart(n: usize, t: u32, validators: usize, restart: Option<usize>) {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let enrs: Vec<_> = keys
        .iter()
        .zip(&ports)
        .map(|(k, port)| k.enr(1, Some(Ipv4Addr::LOCALHOST), Some(*port), None))
        .collect();
    let network = NetworkConfig::built_in("hoodi").expect("hoodi");
    let definition = ClusterDefinition::new(
        "p2p ceremony",
        NetworkSpec::of(&network),
        t,
        &enrs,
        (0..validators)
            .map(|_| {
                ValidatorSpec::standard(
                    ExecutionAddress::repeat_byte(3),
                    ExecutionAddress::repeat_byte(4),
                )
            })
            .collect(),
        BuilderSpec {
            gas_limit: 36_000_000,
            timestamp: 1_742_213_400,
        },
        "2026-11-23T00:00:00Z",
    );
    let state_dir = tempfile::tempdir().expect("tempdir");
    let runs = keys.iter().zip(&ports).enumerate().map(|(i, (key, port))| {
        let config = RunConfig {
            definition: definition.clone(),
            node_key: key.clone(),
            listen: vec![format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr")],
            relays: Vec::new(),
            extra_addresses: Vec::new(),
            timeout: Duration::from_secs(90),
            state_file: Some(state_dir.path().join(format!("state-{i}.json"))),
            interrupt_after: None,
        };
        let restarts = restart == Some(i);
        tokio::spawn(async move {
            let mut registry = Registry::default();
            if restarts {
                let interrupted = RunConfig {
                    interrupt_after: Some(4),
                    ..config.clone()
                };
                let first = run_ceremony(interrupted, &mut Registry::default()).await;
                assert!(first.is_err(), "the first run was interrupted");
                assert!(
                    config.state_file.as_ref().is_some_and(|p| p.exists()),
                    "state saved"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let result = run_ceremony(config.clone(), &mut registry).await;
            if result.is_ok() {
                assert!(
                    !config.state_file.as_ref().is_some_and(|p| p.exists()),
                    "state removed on success"
                );
            }
            result
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("ceremony succeeds"))
        .collect();
    let first = serde_json::to_vec(&outcomes[0].lock).expect("json");
    for outcome in &outcomes {
        assert_eq!(
            serde_json::to_vec(&outcome.lock).expect("json"),
            first,
            "byte-identical locks"
        );
        outcome
            .lock
            .verify()
            .expect("lock verifies, deposits included");
    }
    let t = t as usize;
    for (v, validator) in outcomes[0].lock.validators.iter().enumerate() {
        let shares = validator.indexed_shares().expect("shares");
        assert_eq!(
            recover_public_key(&shares[n - t..], t).expect("recover"),
            validator.public_key
        );
        let message = b"an attestation";
        let partials: Vec<_> = outcomes
            .iter()
            .skip(n - t)
            .map(|o| o.shares[v].sign(message))
            .collect();
        assert!(combine(&partials, t)
            .expect("combine")
            .verify(&validator.public_key, message));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_operators_one_validator() {
    ceremony(4, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_operators_ten_validators() {
    ceremony(4, 3, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_operators_ten_validators() {
    ceremony(7, 5, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_operators_two_validators() {
    ceremony(10, 7, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarting_mid_ceremony_completes_it() {
    ceremony_with_restart(4, 3, 3, Some(2)).await;
}
