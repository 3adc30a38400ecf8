//! The validator-client mock against the beacon-node mock: a minimal-preset
//! Electra network with 1-second slots, every duty of two epochs performed
//! and checked by the beacon mock; a client signing with the wrong keys,
//! which the mock must refuse; and a distributed client whose selection
//! proofs go through a stand-in for a one-operator Phalanx node.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use phalanx_crypto::SecretKey;
use phalanx_eth::config::{NetworkConfig, PresetBase};
use phalanx_eth::devnet::Devnet;
use phalanx_eth::{ForkName, PublicKeyBytes, Root};
use phalanx_sim::beacon::{BeaconMock, BeaconMockConfig, Submission, SubmissionKind};
use phalanx_sim::cluster::{sleep_until_ms, unix_ms};
use phalanx_sim::vc::{Duty, Misbehaviour, VcMock, VcMockConfig, VcStats};
use rand::SeedableRng;

const VALIDATORS: usize = 16;
const SLOTS_PER_EPOCH: u64 = 8;

/// A minimal-preset network, every fork up to Electra from genesis,
/// 1-second slots.
fn network() -> NetworkConfig {
    Devnet::new(ForkName::Electra, 1000)
        .preset(PresetBase::Minimal)
        .build()
}

struct Run {
    stats: VcStats,
    submissions: Vec<Submission>,
    /// Calls to the DV selection endpoints (with `distributed`).
    selections: u64,
}

/// Runs a beacon mock and one VC mock holding all keys until `slots` slots
/// after genesis have passed; with `distributed`, the client talks to a
/// [`SelectionProxy`] in front of the beacon mock.
async fn run(seed: u64, misbehaviour: Misbehaviour, distributed: bool, slots: u64) -> Run {
    run_with_outage(seed, misbehaviour, distributed, slots, None).await
}

/// [`run`], with the beacon mock answering 503 during `outage` (slots).
async fn run_with_outage(
    seed: u64,
    misbehaviour: Misbehaviour,
    distributed: bool,
    slots: u64,
    outage: Option<Range<u64>>,
) -> Run {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let keys: Vec<SecretKey> = (0..VALIDATORS)
        .map(|_| SecretKey::random(&mut rng))
        .collect();
    let validators = keys
        .iter()
        .map(|key| PublicKeyBytes::from(key.public_key().to_bytes()))
        .collect();
    // Genesis a little ahead, at a whole second: start-up happens before it.
    let genesis_time = unix_ms() / 1000 + 3;
    let beacon = BeaconMock::start(BeaconMockConfig {
        network: network(),
        genesis_time,
        genesis_validators_root: Root::repeat_byte(0x5a),
        validators,
        seed,
        record: None,
        listen: "127.0.0.1:0".parse().expect("socket address"),
    })
    .await
    .expect("beacon mock starts");

    let proxy = if distributed {
        Some(SelectionProxy::start(beacon.url()).await)
    } else {
        None
    };
    let url = proxy
        .as_ref()
        .map_or_else(|| beacon.url(), |proxy| proxy.url.clone());
    let mut config = VcMockConfig::new(url, keys);
    config.distributed = distributed;
    // The distributed client takes its blocks as SSZ, the others as JSON.
    config.ssz_blocks = distributed;
    config.misbehaviour = misbehaviour;
    config.graffiti = Some("phalanx vc test".into());
    config.label = format!("vc-{misbehaviour:?}");
    let vc = VcMock::spawn(config);

    // Just before the next slot: the last slot's aggregates (due at 2/3 of
    // it) are in, and nothing of the next slot has started.
    let end_ms = (genesis_time + slots) * 1000 - 100;
    if let Some(outage) = outage {
        sleep_until_ms((genesis_time + outage.start) * 1000).await;
        beacon.set_down(true);
        sleep_until_ms((genesis_time + outage.end) * 1000).await;
        beacon.set_down(false);
    }
    sleep_until_ms(end_ms).await;
    let stats = vc.stop().await;
    let submissions = beacon.submissions();
    beacon.shutdown();
    let selections = proxy.map_or(0, |proxy| proxy.selections.load(Ordering::SeqCst));
    Run {
        stats,
        submissions,
        selections,
    }
}

/// Stands in for a Phalanx node of one operator in front of the beacon
/// mock: it answers the DV selection endpoints with the proofs it is sent
/// (with one share, the combined proof is the partial one) and forwards
/// everything else.
struct SelectionProxy {
    url: String,
    selections: Arc<AtomicU64>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    selections: Arc<AtomicU64>,
}

impl SelectionProxy {
    async fn start(upstream: String) -> SelectionProxy {
        let selections = Arc::new(AtomicU64::new(0));
        let state = Arc::new(ProxyState {
            upstream,
            http: reqwest::Client::new(),
            selections: selections.clone(),
        });
        let router = Router::new()
            .route("/eth/v1/validator/beacon_committee_selections", post(echo))
            .route("/eth/v1/validator/sync_committee_selections", post(echo))
            .fallback(forward)
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        SelectionProxy { url, selections }
    }
}

async fn echo(State(state): State<Arc<ProxyState>>, body: Bytes) -> Response {
    state.selections.fetch_add(1, Ordering::SeqCst);
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(selections) => Json(serde_json::json!({ "data": selections })).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = state
        .http
        .request(parts.method, format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = (status, body).into_response();
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

fn of_kind(submissions: &[Submission], kind: SubmissionKind) -> Vec<&Submission> {
    submissions
        .iter()
        .filter(|submission| submission.kind == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_client_performs_every_duty_of_two_epochs() {
    let epochs = 2;
    let Run {
        stats, submissions, ..
    } = run(1, Misbehaviour::Honest, false, epochs * SLOTS_PER_EPOCH).await;
    let stats_json = serde_json::to_string_pretty(&stats).expect("stats as JSON");

    let invalid: Vec<&Submission> = submissions
        .iter()
        .filter(|s| !s.valid || !s.accepted)
        .collect();
    assert!(invalid.is_empty(), "invalid submissions: {invalid:#?}");
    assert!(stats.errors.is_empty(), "errors: {stats_json}");
    for duty in Duty::ALL {
        let counts = stats.duty(duty);
        assert_eq!(counts.failed, 0, "{duty:?} failed: {stats_json}");
        assert_eq!(
            counts.attempted, counts.submitted,
            "{duty:?} not all submitted: {stats_json}"
        );
    }

    // Every validator attests once an epoch, exactly once.
    let attestations = of_kind(&submissions, SubmissionKind::Attestation);
    let attesters: BTreeSet<(u64, u64)> = attestations
        .iter()
        .map(|s| (s.slot / SLOTS_PER_EPOCH, s.validator_index))
        .collect();
    assert_eq!(
        attesters.len(),
        VALIDATORS * epochs as usize,
        "{stats_json}"
    );
    assert_eq!(attestations.len(), attesters.len(), "{stats_json}");
    assert_eq!(
        stats.duty(Duty::Attester).submitted,
        attestations.len() as u64
    );

    // The client holds every key, so it proposes in every slot but genesis.
    let blocks = of_kind(&submissions, SubmissionKind::Block).len()
        + of_kind(&submissions, SubmissionKind::BlindedBlock).len();
    assert_eq!(blocks as u64, epochs * SLOTS_PER_EPOCH - 1, "{stats_json}");
    assert_eq!(stats.duty(Duty::Proposer).submitted, blocks as u64);

    let sync_messages = of_kind(&submissions, SubmissionKind::SyncMessage);
    assert!(!sync_messages.is_empty(), "no sync messages: {stats_json}");
    assert_eq!(
        stats.duty(Duty::SyncMessage).submitted,
        sync_messages.len() as u64
    );

    // Aggregation ends late in a slot; whatever the client counts as
    // submitted, the node has (the converse may miss one cut short by
    // the stop).
    let aggregates = of_kind(&submissions, SubmissionKind::Aggregate);
    assert!(!aggregates.is_empty(), "no aggregates: {stats_json}");
    assert!(stats.duty(Duty::Aggregator).submitted <= aggregates.len() as u64);
    let contributions = of_kind(&submissions, SubmissionKind::Contribution);
    assert!(!contributions.is_empty(), "no contributions: {stats_json}");
    assert!(stats.duty(Duty::SyncContribution).submitted <= contributions.len() as u64);

    let registrations = of_kind(&submissions, SubmissionKind::Registration);
    assert_eq!(registrations.len(), VALIDATORS, "{stats_json}");
    assert_eq!(stats.duty(Duty::PrepareProposer).failed, 0);
    assert!(stats.duty(Duty::PrepareProposer).submitted >= VALIDATORS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_by_the_wrong_keys_are_refused_and_counted() {
    let Run {
        stats, submissions, ..
    } = run(2, Misbehaviour::WrongKey, false, SLOTS_PER_EPOCH).await;
    let stats_json = serde_json::to_string_pretty(&stats).expect("stats as JSON");

    let attestations = of_kind(&submissions, SubmissionKind::Attestation);
    assert!(!attestations.is_empty(), "no attestations: {stats_json}");
    assert!(
        attestations.iter().all(|s| !s.valid),
        "an attestation by a wrong key was valid"
    );
    assert!(
        submissions.iter().all(|s| !s.valid),
        "a signed submission by a wrong key was valid"
    );

    let attester = stats.duty(Duty::Attester);
    assert_eq!(attester.submitted, 0, "{stats_json}");
    assert_eq!(attester.failed, attester.attempted, "{stats_json}");
    assert!(attester.failed >= VALIDATORS as u64, "{stats_json}");
    assert!(stats.duty(Duty::SyncMessage).failed > 0, "{stats_json}");
    // The randao reveal is wrong too, so no block is even produced.
    assert!(stats.duty(Duty::Proposer).failed > 0, "{stats_json}");
    assert_eq!(stats.duty(Duty::Proposer).submitted, 0, "{stats_json}");
    assert_eq!(
        stats.duty(Duty::Registration).failed,
        VALIDATORS as u64,
        "{stats_json}"
    );
    assert!(
        stats
            .errors
            .iter()
            .any(|e| e.contains("submit_attestations")),
        "{stats_json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_client_aggregates_with_the_combined_proofs() {
    let Run {
        stats,
        submissions,
        selections,
    } = run(3, Misbehaviour::Honest, true, SLOTS_PER_EPOCH).await;
    let stats_json = serde_json::to_string_pretty(&stats).expect("stats as JSON");

    assert!(stats.errors.is_empty(), "errors: {stats_json}");
    assert!(
        submissions.iter().all(|s| s.valid && s.accepted),
        "an invalid submission"
    );
    // Both selection endpoints, every slot with attesters or sync members.
    assert!(
        selections >= 2 * (SLOTS_PER_EPOCH - 1),
        "{selections} selection calls"
    );
    let aggregates = of_kind(&submissions, SubmissionKind::Aggregate);
    assert!(!aggregates.is_empty(), "no aggregates: {stats_json}");
    assert!(stats.duty(Duty::Aggregator).submitted <= aggregates.len() as u64);
    assert_eq!(stats.duty(Duty::Aggregator).failed, 0, "{stats_json}");
    let contributions = of_kind(&submissions, SubmissionKind::Contribution);
    assert!(!contributions.is_empty(), "no contributions: {stats_json}");
    assert!(stats.duty(Duty::SyncContribution).submitted <= contributions.len() as u64);
    assert_eq!(stats.duty(Duty::SyncContribution).failed, 0, "{stats_json}");
    // Its blocks came as SSZ (through the proxy, headers and all).
    let blocks = of_kind(&submissions, SubmissionKind::Block);
    assert!(blocks.len() as u64 >= SLOTS_PER_EPOCH - 2, "{stats_json}");
    assert_eq!(stats.duty(Duty::Proposer).failed, 0, "{stats_json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_rides_out_a_node_outage() {
    let Run {
        stats, submissions, ..
    } = run_with_outage(4, Misbehaviour::Honest, false, SLOTS_PER_EPOCH, Some(3..5)).await;
    let stats_json = serde_json::to_string_pretty(&stats).expect("stats as JSON");

    assert!(
        submissions.iter().all(|s| s.valid && s.accepted),
        "an invalid submission"
    );
    // The duties of the slots the node was down for failed, with its 503…
    assert!(stats.duty(Duty::Attester).failed > 0, "{stats_json}");
    assert!(
        stats.errors.iter().any(|e| e.contains("503")),
        "{stats_json}"
    );
    // …and the client was back at work in the slots after.
    let attested_after: BTreeSet<u64> = of_kind(&submissions, SubmissionKind::Attestation)
        .iter()
        .map(|s| s.slot)
        .filter(|&slot| slot >= 5)
        .collect();
    assert_eq!(
        attested_after,
        (5..SLOTS_PER_EPOCH).collect::<BTreeSet<u64>>(),
        "{stats_json}"
    );
    let proposed_after = of_kind(&submissions, SubmissionKind::Block)
        .iter()
        .filter(|s| s.slot >= 5)
        .count() as u64;
    // Real time on a shared machine: one block of the slots after may miss
    // its moment under load (a CI build beside it), never most of them.
    assert!(
        proposed_after + 1 >= SLOTS_PER_EPOCH - 5,
        "{proposed_after} blocks after the outage: {stats_json}"
    );
}
