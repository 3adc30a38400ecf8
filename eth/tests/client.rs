//! The beacon-node client against local HTTP servers standing in for beacon
//! nodes (127.0.0.1 only).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use phalanx_eth::api::Event;
use phalanx_eth::client::{BeaconNodeClient, CallRecord, ClientError, Outcome, Timeouts};
use phalanx_eth::{CommitteeIndex, Epoch, ForkName, Slot, ValidatorIndex};
use serde_json::{json, Value};

const ROOT: &str = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

/// An address where nothing listens.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

fn good_node(published: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new()
        .route(
            "/eth/v1/beacon/genesis",
            get(|| async {
                Json(json!({"data": {
                    "genesis_time": "1606824023",
                    "genesis_validators_root": ROOT,
                    "genesis_fork_version": "0x00000000"
                }}))
            }),
        )
        .route(
            "/eth/v1/validator/duties/attester/{epoch}",
            post(|Path(epoch): Path<u64>, Json(indices): Json<Vec<String>>| async move {
                let duties: Vec<Value> = indices
                    .iter()
                    .map(|index| json!({
                        "pubkey": format!("0x{}", "ab".repeat(48)),
                        "validator_index": index,
                        "committee_index": "3",
                        "committee_length": "128",
                        "committees_at_slot": "64",
                        "validator_committee_index": "9",
                        "slot": (epoch * 32 + 5).to_string(),
                    }))
                    .collect();
                Json(json!({"dependent_root": ROOT, "execution_optimistic": false, "data": duties}))
            }),
        )
        .route(
            "/eth/v1/validator/attestation_data",
            get(|Query(query): Query<std::collections::HashMap<String, String>>| async move {
                if !query.contains_key("committee_index") {
                    return (StatusCode::BAD_REQUEST, Json(json!({"code": 400, "message": "committee_index is required"}))).into_response();
                }
                Json(json!({"data": {
                    "slot": query.get("slot").cloned().unwrap_or_default(),
                    "index": "0",
                    "beacon_block_root": ROOT,
                    "source": {"epoch": "1", "root": ROOT},
                    "target": {"epoch": "2", "root": ROOT}
                }}))
                .into_response()
            }),
        )
        .route(
            "/eth/v2/beacon/blocks",
            post(move |headers: HeaderMap, Json(_body): Json<Value>| {
                let published = published.clone();
                async move {
                    match headers.get("Eth-Consensus-Version").and_then(|v| v.to_str().ok()) {
                        Some(version) => {
                            published.lock().expect("lock").push(version.to_string());
                            StatusCode::OK.into_response()
                        }
                        None => (StatusCode::BAD_REQUEST, Json(json!({"code": 400, "message": "Eth-Consensus-Version header is required"}))).into_response(),
                    }
                }
            }),
        )
        .route(
            "/eth/v1/events",
            get(|| async {
                let head = json!({"slot": "10", "block": ROOT, "state": ROOT, "epoch_transition": false,
                    "previous_duty_dependent_root": ROOT, "current_duty_dependent_root": ROOT, "execution_optimistic": false});
                let reorg = json!({"slot": "11", "depth": "2", "old_head_block": ROOT, "new_head_block": ROOT,
                    "old_head_state": ROOT, "new_head_state": ROOT, "epoch": "0", "execution_optimistic": false});
                let body = format!(
                    ": keep-alive\n\nevent: head\ndata: {head}\n\nevent: payload_attributes\ndata: {{}}\n\nevent: chain_reorg\ndata: {reorg}\n\nevent: block\ndata: {{\"slot\": \"oops\"}}\n\n"
                );
                ([("content-type", "text/event-stream")], body)
            }),
        )
}

fn failing_node(status: StatusCode) -> Router {
    Router::new().fallback(move || async move {
        (
            status,
            Json(json!({"code": status.as_u16(), "message": "node is unwell"})),
        )
    })
}

fn recorder() -> (Arc<Mutex<Vec<CallRecord>>>, phalanx_eth::client::Observer) {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    (
        records,
        Arc::new(move |record: &CallRecord| sink.lock().expect("lock").push(record.clone())),
    )
}

fn outcomes(records: &Arc<Mutex<Vec<CallRecord>>>) -> Vec<Outcome> {
    records
        .lock()
        .expect("lock")
        .drain(..)
        .map(|r| r.outcome)
        .collect()
}

#[tokio::test]
async fn falls_back_past_dead_and_failing_nodes_then_prefers_the_good_one() {
    let good = serve(good_node(Arc::default())).await;
    let broken = serve(failing_node(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let dead = closed_port().await;
    let (records, observer) = recorder();
    let client = BeaconNodeClient::new(&[dead, broken, good], Timeouts::default())
        .expect("valid urls")
        .with_observer(observer);

    let genesis = client.genesis().await.expect("the third node answers");
    assert_eq!(genesis.genesis_time, 1_606_824_023);
    assert_eq!(genesis.genesis_validators_root.to_string(), ROOT);
    assert_eq!(
        outcomes(&records),
        vec![Outcome::Failed, Outcome::Status(500), Outcome::Ok]
    );

    // The node that answered is asked first next time.
    client.genesis().await.expect("answers");
    assert_eq!(outcomes(&records), vec![Outcome::Ok]);
}

#[tokio::test]
async fn a_client_error_is_returned_with_the_nodes_message_and_not_retried() {
    let bad_request = serve(failing_node(StatusCode::BAD_REQUEST)).await;
    let good = serve(good_node(Arc::default())).await;
    let (records, observer) = recorder();
    let client = BeaconNodeClient::new(&[bad_request, good], Timeouts::default())
        .expect("valid urls")
        .with_observer(observer);
    let error = client
        .attestation_data(Slot(5), CommitteeIndex(1))
        .await
        .expect_err("400");
    assert_eq!(error.status(), Some(400));
    assert!(error.to_string().contains("node is unwell"), "{error}");
    assert_eq!(outcomes(&records), vec![Outcome::Status(400)]);
}

#[tokio::test]
async fn every_failure_is_reported_when_no_node_answers() {
    let broken = serve(failing_node(StatusCode::SERVICE_UNAVAILABLE)).await;
    let dead = closed_port().await;
    let client = BeaconNodeClient::new(&[broken, dead], Timeouts::default()).expect("valid urls");
    match client.genesis().await {
        Err(ClientError::AllFailed { endpoint, errors }) => {
            assert_eq!(endpoint, "genesis");
            assert_eq!(errors.len(), 2);
            assert_eq!(errors[0].status(), Some(503));
            assert!(matches!(errors[1], ClientError::Transport { .. }));
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_nodes_time_out() {
    let slow = serve(Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "too late"
    }))
    .await;
    let timeouts = Timeouts {
        default: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let client = BeaconNodeClient::new(&[slow], timeouts).expect("valid url");
    let error = client.genesis().await.expect_err("times out");
    assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn credentials_never_appear_in_errors() {
    let dead = closed_port().await;
    let with_secret = dead.replace("http://", "http://operator:hunter2@");
    let client = BeaconNodeClient::new(&[with_secret], Timeouts::default()).expect("valid url");
    assert!(client.nodes().iter().all(|n| !n.contains("hunter2")));
    let error = client.genesis().await.expect_err("nothing listens");
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
    assert!(BeaconNodeClient::new(&["ftp://x".into()], Timeouts::default()).is_err());
    assert!(BeaconNodeClient::new(&[], Timeouts::default()).is_err());
}

#[tokio::test]
async fn duties_data_and_publication_use_the_right_shapes() {
    let published = Arc::new(Mutex::new(Vec::new()));
    let good = serve(good_node(published.clone())).await;
    let client = BeaconNodeClient::new(&[good], Timeouts::default()).expect("valid url");

    let duties = client
        .attester_duties(Epoch(3), &[ValidatorIndex(7), ValidatorIndex(9)])
        .await
        .expect("duties");
    assert_eq!(duties.data.len(), 2);
    assert_eq!(duties.data[1].validator_index, ValidatorIndex(9));
    assert_eq!(duties.data[0].slot, Slot(3 * 32 + 5));
    assert_eq!(duties.data[0].committees_at_slot, 64);
    assert_eq!(
        duties.dependent_root.map(|r| r.to_string()),
        Some(ROOT.to_string())
    );

    let data = client
        .attestation_data(Slot(77), CommitteeIndex(0))
        .await
        .expect("attestation data");
    assert_eq!(data.slot, Slot(77));

    client
        .publish_block(ForkName::Fulu, json!({"signed_block": {}}), false)
        .await
        .expect("published");
    assert_eq!(*published.lock().expect("lock"), vec!["fulu".to_string()]);
}

#[tokio::test]
async fn events_stream_typed_head_and_reorg_and_flags_bad_data() {
    let good = serve(good_node(Arc::default())).await;
    let client = BeaconNodeClient::new(&[good], Timeouts::default()).expect("valid url");
    let events: Vec<_> = client.events().await.expect("subscribed").collect().await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(&events[0], Ok(Event::Head(head)) if head.slot == Slot(10)));
    assert!(matches!(&events[1], Ok(Event::ChainReorg(reorg)) if reorg.depth == 2));
    assert!(matches!(&events[2], Err(ClientError::Decode { .. })));
}

#[tokio::test]
async fn capella_era_nodes_get_v1_submissions_but_electra_ones_do_not() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let v1_only = serve(Router::new().route(
        "/eth/v1/beacon/pool/attestations",
        post(move |Json(body): Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                StatusCode::OK
            }
        }),
    ))
    .await;
    let client = BeaconNodeClient::new(&[v1_only], Timeouts::default()).expect("valid url");
    client
        .submit_attestations(ForkName::Capella, json!([{"data": {}}]))
        .await
        .expect("falls back to v1");
    assert_eq!(received.lock().expect("lock").len(), 1);
    let error = client
        .submit_attestations(ForkName::Electra, json!([]))
        .await
        .expect_err("Electra attestations need v2");
    assert_eq!(error.status(), Some(404));
}

#[tokio::test]
async fn nodes_without_v3_produce_through_v2_and_publish_through_v1() {
    let Some(dir) =
        phalanx_test_support::vectors_dir("ssz_static/minimal/capella/BeaconBlock/case_0")
    else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("value.yaml")).expect("value.yaml");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let block = serde_json::to_value(yaml).expect("json");
    let answer = json!({"version": "capella", "data": block});
    let published = Arc::new(Mutex::new(0));
    let count = published.clone();
    let capella_node = serve(
        Router::new()
            .route(
                "/eth/v2/validator/blocks/{slot}",
                get(move || {
                    let answer = answer.clone();
                    async move { Json(answer) }
                }),
            )
            .route(
                "/eth/v1/beacon/blocks",
                post(move || {
                    let count = count.clone();
                    async move {
                        *count.lock().expect("lock") += 1;
                        StatusCode::OK
                    }
                }),
            ),
    )
    .await;
    let client = BeaconNodeClient::new(&[capella_node], Timeouts::default()).expect("valid url");
    let produced = client
        .produce_block::<phalanx_eth::MinimalEthSpec>(
            Slot(1),
            &phalanx_eth::SignatureBytes::repeat_byte(1),
            None,
            Some(90),
        )
        .await
        .expect("v2 fallback");
    assert_eq!(produced.fork, ForkName::Capella);
    assert!(matches!(
        produced.data,
        phalanx_eth::block_contents::ProducedBlockData::Full(_)
    ));
    client
        .publish_block(ForkName::Capella, json!({}), false)
        .await
        .expect("v1 fallback");
    assert_eq!(*published.lock().expect("lock"), 1);
}

#[tokio::test]
async fn nodes_without_post_validators_get_the_ids_repeated() {
    // Lodestar 1.5.1 serves only the GET form, and answers a comma-separated
    // `id` with no validators: only `id=…&id=…` finds them.
    let queries = Arc::new(Mutex::new(Vec::new()));
    let seen = queries.clone();
    let node = serve(Router::new().route(
        "/eth/v1/beacon/states/{state}/validators",
        get(move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                let query = uri.query().unwrap_or_default().to_string();
                seen.lock().expect("lock").push(query.clone());
                let record = |index: &str| {
                    json!({
                        "index": index,
                        "balance": "32000000000",
                        "status": "active_ongoing",
                        "validator": {
                            "pubkey": format!("0x{}", "a".repeat(96)),
                            "withdrawal_credentials": ROOT,
                            "effective_balance": "32000000000",
                            "slashed": false,
                            "activation_eligibility_epoch": "0",
                            "activation_epoch": "0",
                            "exit_epoch": "18446744073709551615",
                            "withdrawable_epoch": "18446744073709551615"
                        }
                    })
                };
                let found: Vec<Value> = query
                    .split('&')
                    .filter_map(|pair| pair.strip_prefix("id="))
                    .filter(|id| !id.contains(','))
                    .map(record)
                    .collect();
                Json(json!({ "data": found }))
            }
        }),
    ))
    .await;
    let client = BeaconNodeClient::new(&[node], Timeouts::default()).expect("valid url");
    let validators = client
        .validators("head", &["1".to_string(), "2".to_string()])
        .await
        .expect("GET fallback");
    assert_eq!(validators.len(), 2);
    assert_eq!(queries.lock().expect("lock").as_slice(), ["id=1&id=2"]);
}

#[tokio::test]
async fn a_forwarded_request_passes_through_to_the_first_node_that_is_not_failing() {
    // A down node and an unwell one are skipped; a 4xx answer is passed on
    // as it is, with only the headers given.
    let echo = Router::new().fallback(|headers: HeaderMap, body: String| async move {
        let accept = headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        (
            StatusCode::NOT_FOUND,
            [("content-type", "text/plain")],
            format!("accept={accept} body={body}"),
        )
    });
    let nodes = vec![
        closed_port().await,
        serve(failing_node(StatusCode::SERVICE_UNAVAILABLE)).await,
        serve(echo).await,
    ];
    let client = BeaconNodeClient::new(&nodes, Timeouts::default()).expect("client");
    let mut headers = HeaderMap::new();
    headers.insert(
        "accept",
        "application/octet-stream".parse().expect("a value"),
    );
    let response = client
        .forward(
            axum::http::Method::POST,
            "/eth/v1/validator/liveness/3?x=1",
            &headers,
            "[\"1\"]".into(),
        )
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.text().await.expect("a body"),
        "accept=application/octet-stream body=[\"1\"]"
    );

    // Every node failing: each one's failure, the unwell node's message kept.
    let failing = vec![
        closed_port().await,
        serve(failing_node(StatusCode::INTERNAL_SERVER_ERROR)).await,
    ];
    let client = BeaconNodeClient::new(&failing, Timeouts::default()).expect("client");
    let error = client
        .forward(
            axum::http::Method::GET,
            "/eth/v1/node/version",
            &HeaderMap::new(),
            Default::default(),
        )
        .await
        .expect_err("no node answers");
    let ClientError::AllFailed { errors, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[1].status(), Some(500));
    assert!(error.to_string().contains("node is unwell"), "{error}");
}
