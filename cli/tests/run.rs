//! Four `phalanx run` processes over real p2p on 127.0.0.1, the beacon-node
//! mock and four validator-client mocks signing with their share keystores,
//! for four epochs of the minimal preset: every attester and sync-committee
//! duty of every validator reaches the chain with a signature that verifies
//! under the group key, also while one process is killed; the restarted
//! process does duties again within a slot or two.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use phalanx_eth::block_contents::BYTES_PER_BLOB;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::PublicKeyBytes;
use phalanx_sim::beacon::{BeaconMock, SubmissionKind};
use phalanx_sim::cluster::{
    beacon_config, genesis_ms_in, ports, sleep_until_ms, unix_ms, ChildProcess, Cluster, Operator,
    OtherValidators,
};
use phalanx_sim::vc::{Duty as VcDuty, Misbehaviour, VcMock, VcMockConfig};

const ADDRESS: &str = "0x52908400098527886E0F7030069857D2E4169EE7";
const SLOT_MS: u64 = 3000;
const VALIDATORS: usize = 4;
const EPOCHS: u64 = 4;

const DEVNET_YAML: &str = "PRESET_BASE: minimal
CONFIG_NAME: phalanx-run-test
GENESIS_FORK_VERSION: 0x10000000
SLOT_DURATION_MS: 3000
SECONDS_PER_SLOT: 3
DEPOSIT_CHAIN_ID: 1337
BLOB_SCHEDULE: []
ALTAIR_FORK_VERSION: 0x01000000
ALTAIR_FORK_EPOCH: 0
BELLATRIX_FORK_VERSION: 0x02000000
BELLATRIX_FORK_EPOCH: 0
CAPELLA_FORK_VERSION: 0x03000000
CAPELLA_FORK_EPOCH: 0
DENEB_FORK_VERSION: 0x04000000
DENEB_FORK_EPOCH: 0
ELECTRA_FORK_VERSION: 0x05000000
ELECTRA_FORK_EPOCH: 0
";

/// The fee recipient of the re-signed registration.
const NEW_FEE_RECIPIENT: &str = "0x00000000000000000000000000000000000000aa";

/// Starts `phalanx run` of `operator` against `beacon` (comma-separated
/// URLs), logging JSON to `dir/node<i>.<run>.log`.
fn start(operator: &Operator, beacon: &str, dir: &Path, run: u32) -> ChildProcess {
    let command =
        operator.run_command(Path::new(env!("CARGO_BIN_EXE_phalanx")), beacon, true, true);
    let log = dir.join(format!("node{}.{run}.log", operator.index));
    ChildProcess::spawn(command, &log).expect("phalanx run starts")
}

async fn ready(monitoring: SocketAddr) -> (u16, String) {
    match reqwest::get(format!("http://{monitoring}/readyz")).await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The tests of this file run one at a time: each starts processes whose
/// slot timing a concurrent one would disturb on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Writes a 4-operator cluster of the test devnet under `dir/cluster`
/// with `phalanx create cluster`; returns its operators and the cluster.
fn create_cluster(dir: &Path) -> (Vec<Operator>, Cluster) {
    let network_file = dir.join("devnet.yaml");
    std::fs::write(&network_file, DEVNET_YAML).expect("network file");
    let cluster = dir.join("cluster");
    let base = ports::tcp_block(4).expect("four free ports");
    let output = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "create",
            "cluster",
            "--nodes",
            "4",
            "--num-validators",
            &VALIDATORS.to_string(),
            "--insecure-keys",
            "--network",
            path(&network_file),
            "--builder-timestamp",
            "1700000000",
            "--withdrawal-addresses",
            ADDRESS,
            "--fee-recipient-addresses",
            ADDRESS,
            "--p2p-tcp-port",
            &base.to_string(),
            "--cluster-dir",
            path(&cluster),
        ])
        .output()
        .expect("create cluster runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let operators: Vec<Operator> = (0..4)
        .map(|i| {
            Operator::open(i, cluster.join(format!("node{i}")), base + i as u16)
                .expect("an operator's folder")
        })
        .collect();
    let cluster = Cluster::load(&operators).expect("the cluster's lock and keystores");
    (operators, cluster)
}

/// A test's folder: removed when the test passes, kept (and its path
/// printed) when it fails, for the nodes' logs.
struct TestDir(Option<tempfile::TempDir>);

impl TestDir {
    fn new() -> TestDir {
        TestDir(Some(tempfile::tempdir().expect("tempdir")))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().map_or(Path::new("."), |d| d.path())
    }
}

impl Drop for TestDir {
    #[allow(clippy::print_stderr, reason = "a failed test names its kept folder")]
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!(
                    "the test's folder, with the nodes' logs, is kept: {}",
                    dir.keep().display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_do_every_duty_through_a_crash_and_restart() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let network = NetworkConfig::from_yaml(DEVNET_YAML).expect("devnet config");
    let (nodes, cluster) = create_cluster(dir.path());
    let lock = &cluster.lock;

    // The chain: the cluster's validators first, then others.
    let validators = cluster.chain_validators(OtherValidators::Random(12));
    let genesis_ms = genesis_ms_in(12_000);
    let mut config = beacon_config(network.clone(), genesis_ms, validators, 7);
    config.record = Some(dir.path().join("submissions.jsonl"));
    let beacon = BeaconMock::start(config).await.expect("beacon mock");
    let url = beacon.url();

    let mut children: Vec<ChildProcess> = nodes
        .iter()
        .map(|n| start(n, &url, dir.path(), 0))
        .collect();
    let vcs: Vec<VcMock> = cluster.validator_clients(&nodes, |i, config| {
        // Two clients take their blocks as SSZ, two as JSON: the
        // proposals need three.
        config.ssz_blocks = i % 2 == 0;
    });

    // Faulty clients beside operator 1's honest one, with its keys: every
    // request of theirs must be refused with a 4xx, and change nothing.
    let faulty: Vec<VcMock> = [
        Misbehaviour::GarbageSignatures,
        Misbehaviour::WrongKey,
        Misbehaviour::WrongMessage,
        Misbehaviour::MalformedJson,
    ]
    .into_iter()
    .map(|misbehaviour| {
        let mut config = VcMockConfig::new(
            format!("http://{}", nodes[1].validator_api),
            cluster.share_keys(1),
        );
        config.distributed = true;
        config.misbehaviour = misbehaviour;
        config.label = format!("faulty-{misbehaviour:?}");
        VcMock::spawn(config)
    })
    .collect();
    let slot_start = |slot: u64| genesis_ms + slot * SLOT_MS;
    // Before genesis every node connects and becomes ready.
    sleep_until_ms(genesis_ms).await;
    for node in &nodes {
        let (status, text) = ready(node.monitoring).await;
        assert_eq!(status, 200, "node not ready at genesis: {text}");
    }
    // Epoch 1: operator 3's process is killed; epoch 2: it restarts.
    sleep_until_ms(slot_start(8)).await;
    children[3].stop();
    sleep_until_ms(slot_start(16)).await;
    children[3] = start(&nodes[3], &url, dir.path(), 1);
    sleep_until_ms(slot_start(EPOCHS * 8) + 500).await;

    for vc in vcs {
        vc.stop().await;
    }
    for vc in faulty {
        let stats = vc.stop().await;
        let attestations = stats.duty(VcDuty::Attester);
        assert!(attestations.attempted > 0, "{stats:?}");
        assert_eq!(
            attestations.submitted, 0,
            "a faulty attestation was accepted: {stats:?}"
        );
        assert!(
            stats.errors.iter().any(|e| e.contains("answered 400")),
            "no clear refusal: {:?}",
            stats.errors
        );
    }
    // The slots the cluster's validators propose in, from the chain.
    let http = reqwest::Client::new();
    let mut proposal_slots = Vec::new();
    for epoch in 0..EPOCHS {
        let duties: serde_json::Value = http
            .get(format!("{url}/eth/v1/validator/duties/proposer/{epoch}"))
            .send()
            .await
            .expect("proposer duties")
            .json()
            .await
            .expect("JSON");
        for duty in duties["data"].as_array().expect("duties") {
            let index: u64 = duty["validator_index"]
                .as_str()
                .and_then(|i| i.parse().ok())
                .expect("index");
            if (index as usize) < VALIDATORS {
                proposal_slots.push(
                    duty["slot"]
                        .as_str()
                        .expect("slot")
                        .parse::<u64>()
                        .expect("slot"),
                );
            }
        }
    }
    // Three operators exit validator 0 with `phalanx exit`; the cluster
    // combines and broadcasts the exit.
    let exiting = format!(
        "{}",
        PublicKeyBytes::from(lock.validators[0].public_key.to_bytes())
    );
    for node in &nodes[..3] {
        let output = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args([
                "exit",
                "--data-dir",
                path(&node.dir),
                "--validator-public-key",
                &exiting,
                "--validator-api-url",
                &format!("http://{}", node.validator_api),
            ])
            .output()
            .expect("phalanx exit runs");
        assert!(
            output.status.success(),
            "phalanx exit: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // And a new builder registration of validator 1, signed the same way,
    // with a timestamp the operators agreed on.
    let agreed = (unix_ms() / 1000).to_string();
    let registering = format!(
        "{}",
        PublicKeyBytes::from(lock.validators[1].public_key.to_bytes())
    );
    for node in &nodes[..3] {
        let output = Command::new(env!("CARGO_BIN_EXE_phalanx"))
            .args([
                "register",
                "--data-dir",
                path(&node.dir),
                "--validator-public-key",
                &registering,
                "--fee-recipient",
                NEW_FEE_RECIPIENT,
                "--gas-limit",
                "36000000",
                "--timestamp",
                &agreed,
                "--validator-api-url",
                &format!("http://{}", node.validator_api),
            ])
            .output()
            .expect("phalanx register runs");
        assert!(
            output.status.success(),
            "phalanx register: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for child in &mut children {
        child.stop();
    }
    let submissions = beacon.submissions();
    beacon.shutdown();

    let ours = |index: u64| (index as usize) < VALIDATORS;
    let bad: Vec<_> = submissions
        .iter()
        .filter(|s| ours(s.validator_index) && !s.valid)
        .collect();
    assert!(bad.is_empty(), "invalid submissions: {bad:?}");
    // Every validator attests in every epoch, the crashed one included.
    for epoch in 0..EPOCHS {
        for validator in 0..VALIDATORS as u64 {
            let attested = submissions.iter().any(|s| {
                s.kind == SubmissionKind::Attestation
                    && s.valid
                    && s.validator_index == validator
                    && s.slot / 8 == epoch
            });
            assert!(
                attested,
                "validator {validator} missed its attestation in epoch {epoch}"
            );
        }
    }
    // Sync-committee messages of the cluster's members in every slot after the first.
    for slot in 1..EPOCHS * 8 {
        let signed = submissions.iter().any(|s| {
            s.kind == SubmissionKind::SyncMessage
                && s.valid
                && ours(s.validator_index)
                && s.slot == slot
        });
        assert!(
            signed,
            "no sync-committee message of the cluster at slot {slot}"
        );
    }
    // Every proposal of the cluster's validators, through the crash too.
    assert!(
        !proposal_slots.is_empty(),
        "the chain gave the cluster no proposal"
    );
    for slot in &proposal_slots {
        assert!(
            submissions
                .iter()
                .any(|s| s.kind == SubmissionKind::Block && s.valid && s.slot == *slot),
            "no valid block of the cluster at slot {slot}"
        );
    }
    // Aggregates and contributions in every epoch; registrations from the
    // lock; and the exit.
    for epoch in 0..EPOCHS {
        for kind in [SubmissionKind::Aggregate, SubmissionKind::Contribution] {
            assert!(
                submissions.iter().any(|s| s.kind == kind
                    && s.valid
                    && ours(s.validator_index)
                    && s.slot / 8 == epoch),
                "no valid {kind:?} of the cluster in epoch {epoch}"
            );
        }
    }
    assert!(submissions
        .iter()
        .any(|s| s.kind == SubmissionKind::Registration && s.valid && ours(s.validator_index)));
    assert!(
        submissions
            .iter()
            .any(|s| s.kind == SubmissionKind::VoluntaryExit && s.valid && s.validator_index == 0),
        "the exit of validator 0 was not broadcast"
    );
    assert!(
        submissions
            .iter()
            .any(|s| s.kind == SubmissionKind::Registration
                && s.valid
                && s.validator_index == 1
                && s.body.to_string().contains(&NEW_FEE_RECIPIENT[2..])),
        "the new registration of validator 1 was not submitted"
    );
    // Every node keeps it for its next start, operator 3's too, who did
    // not sign it: the message travels with the partials.
    for node in &nodes {
        let kept = std::fs::read_to_string(node.dir.join("builder-registrations.json"))
            .expect("the registration is kept");
        assert!(kept.contains(&NEW_FEE_RECIPIENT[2..]), "{kept}");
    }
    // The signing history exports as EIP-3076: every validator attested.
    let exported = dir.path().join("interchange.json");
    let output = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "slashing-protection",
            "export",
            "--data-dir",
            path(&nodes[0].dir),
            "--output-file",
            path(&exported),
        ])
        .output()
        .expect("export runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let interchange: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).expect("file")).expect("JSON");
    let histories = interchange["data"].as_array().expect("data");
    assert_eq!(histories.len(), VALIDATORS);
    assert!(histories.iter().all(|h| !h["signed_attestations"]
        .as_array()
        .expect("list")
        .is_empty()));
    // The restarted process did duties again soon after it came back.
    let log = children[3].log();
    let first_success = log
        .lines()
        .filter(|l| l.contains("duty succeeded"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fields"]["slot"].as_u64())
        .min();
    assert!(
        first_success.is_some_and(|slot| slot <= 18),
        "the restarted node's first successful duty: {first_success:?}"
    );
}

/// One node with a dead first beacon node falls back to the second; when
/// that one goes down too, `/readyz` says so. Malformed requests of a
/// validator client get a 4xx with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_node_fallback_readiness_and_malformed_requests() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let network = NetworkConfig::from_yaml(DEVNET_YAML).expect("devnet config");
    let (operators, cluster) = create_cluster(dir.path());
    let lock = &cluster.lock;
    let beacon = BeaconMock::start(beacon_config(
        network,
        unix_ms() / 1000 * 1000,
        cluster.chain_validators(OtherValidators::Random(0)),
        1,
    ))
    .await
    .expect("beacon mock");
    let dead = format!("http://127.0.0.1:{}", ports::tcp().expect("a free port"));
    let node = &operators[0];
    // A damaged file of re-signed builder registrations is refused at
    // start-up, naming it.
    let registrations = node.dir.join("builder-registrations.json");
    std::fs::write(&registrations, "{not json").expect("write");
    let mut refused = start(node, &beacon.url(), dir.path(), 9);
    let status = refused.wait().expect("exits");
    assert!(!status.success());
    let log = refused.log();
    assert!(log.contains("builder-registrations.json"), "{log}");
    std::fs::remove_file(&registrations).expect("remove");
    let mut child = start(node, &format!("{dead},{}", beacon.url()), dir.path(), 0);
    let http = reqwest::Client::new();
    let metrics = format!("http://{}/metrics", node.monitoring);
    // The validators' indices come from the second beacon node.
    let mut known = false;
    for _ in 0..60 {
        if let Ok(response) = http.get(&metrics).send().await {
            let text = response.text().await.unwrap_or_default();
            if text.contains(&format!(
                "phalanx_validators_known {}",
                lock.validators.len()
            )) {
                known = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(known, "the node never learnt its validators' indices");
    // Every beacon-node call is in the metrics, by endpoint and outcome,
    // with its latency. The duties are asked for a tick after the indices
    // are known, so a loaded machine may not have asked yet: wait for them.
    let expected = [
        "phalanx_beacon_node_calls_total{",
        "endpoint=\"attester_duties\",outcome=\"ok\"",
        "phalanx_beacon_node_latency_seconds_count{endpoint=",
    ];
    let mut text = String::new();
    for _ in 0..60 {
        text = http
            .get(&metrics)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        if expected.iter().all(|e| text.contains(e)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for expected in expected {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    // Alone, it is not ready for want of peers, and says so.
    let (status, text) = ready(node.monitoring).await;
    assert_eq!(status, 503);
    assert!(text.contains("operators connected"), "{text}");
    assert!(!text.contains("beacon node"), "{text}");

    let api = format!("http://{}", node.validator_api);
    let post = |path: &str, body: &'static str, version: Option<&'static str>| {
        let mut request = http
            .post(format!("{api}{path}"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(version) = version {
            request = request.header("Eth-Consensus-Version", version);
        }
        request.send()
    };
    let cases = [
        (
            "/eth/v2/beacon/pool/attestations",
            "{not json",
            Some("electra"),
            "not valid JSON",
        ),
        (
            "/eth/v2/beacon/pool/attestations",
            "[{\"committee_index\":\"x\"}]",
            Some("electra"),
            "not a SingleAttestation",
        ),
        (
            "/eth/v2/beacon/pool/attestations",
            "[]",
            None,
            "Eth-Consensus-Version",
        ),
        (
            "/eth/v1/beacon/pool/sync_committees",
            "{}",
            None,
            "JSON array",
        ),
        (
            "/eth/v1/beacon/pool/voluntary_exits",
            "{}",
            None,
            "not a SignedVoluntaryExit",
        ),
        ("/eth/v2/beacon/blocks", "{}", None, "Eth-Consensus-Version"),
        (
            "/eth/v2/validator/aggregate_and_proofs",
            "[{\"message\":{}}]",
            Some("electra"),
            "not a SignedAggregateAndProof",
        ),
        (
            "/eth/v1/validator/contribution_and_proofs",
            "{}",
            None,
            "JSON array",
        ),
        (
            "/eth/v1/beacon/pool/bls_to_execution_changes",
            "[]",
            None,
            "not served",
        ),
    ];
    for (path, body, version, expected) in cases {
        let response = post(path, body, version).await.expect("answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!((400..500).contains(&status), "{path}: {status} {text}");
        assert!(text.contains(expected), "{path}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text).expect("an error body");
        assert_eq!(body["code"].as_u64(), Some(u64::from(status)));
    }
    // A body sent in chunks (no content length) is read whole.
    let chunks: Vec<Result<&'static str, std::io::Error>> =
        vec![Ok("[{\"committee_"), Ok("index\":"), Ok("\"x\"}]")];
    let response = http
        .post(format!("{api}/eth/v2/beacon/pool/attestations"))
        .header("content-type", "application/json")
        .header("Eth-Consensus-Version", "electra")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.unwrap_or_default();
    assert!(text.contains("not a SingleAttestation"), "{text}");
    // SSZ where the beacon API takes it, 415 (so a client falls back to
    // JSON) where it does not.
    let ssz = |path: &str, body: &'static [u8]| {
        http.post(format!("{api}{path}"))
            .header("content-type", "application/octet-stream")
            .header("Eth-Consensus-Version", "electra")
            .body(body)
            .send()
    };
    let response = ssz("/eth/v2/beacon/pool/attestations", &[1, 2, 3])
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.unwrap_or_default();
    assert!(
        text.contains("not the SSZ of a list of SingleAttestation"),
        "{text}"
    );
    let response = ssz("/eth/v1/beacon/pool/sync_committees", &[0; 8])
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 415);
    // A block with its blobs runs to megabytes of JSON: read and judged,
    // not refused for its size. A body beyond any block is refused (413).
    let blob = format!("\"0x{}\"", "00".repeat(BYTES_PER_BLOB));
    let contents = format!(
        "{{\"signed_block\":{{}},\"kzg_proofs\":[],\"blobs\":[{}]}}",
        vec![blob; 24].join(",")
    );
    assert!(contents.len() > 6 << 20);
    let response = http
        .post(format!("{api}/eth/v2/beacon/blocks"))
        .header("content-type", "application/json")
        .header("Eth-Consensus-Version", "electra")
        .body(contents)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400, "a large block is read");
    // (By hand, writing while reading: the node answers once it has read
    // past its limit, and stops reading.)
    let stream = tokio::net::TcpStream::connect(node.validator_api)
        .await
        .expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let size: usize = 96 << 20;
    let head = format!(
        "POST /eth/v2/beacon/blocks HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         eth-consensus-version: electra\r\ncontent-length: {size}\r\n\r\n",
        node.validator_api
    );
    let writing = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..size >> 20 {
            writer.write_all(&chunk).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read(&mut reader, &mut answer),
    )
    .await
    .expect("answered")
    .expect("reads");
    writing.abort();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let response = http
        .get(format!(
            "{api}/eth/v1/validator/attestation_data?slot=abc&committee_index=0"
        ))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    // The read-only proxy serves the chain's genesis.
    let response = http
        .get(format!("{api}/eth/v1/beacon/genesis"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);

    // Both beacon nodes down: /readyz names it.
    beacon.set_down(true);
    let mut named = false;
    for _ in 0..20 {
        let (_, text) = ready(node.monitoring).await;
        if text.contains("beacon node") {
            named = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(named, "readyz never said the beacon nodes are down");
    child.stop();
    beacon.shutdown();
}
