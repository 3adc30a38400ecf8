//! The HTTP edge: the beacon-API router, the availability switch and the
//! response shapes; handlers live by endpoint family in the submodules.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::{EthSpec, ForkName};
use serde::Serialize;
use serde_json::{json, Value};

use super::node::Node;
use super::Shared;
pub(super) use error::{ApiError, ApiResult, Failure};
use state::{
    block_root, deposit_contract, events, finality_checkpoints, fork_schedule, genesis, header,
    node_version, spec, state_fork, syncing, validator_get, validators_get, validators_post,
};
use submit::{
    publish_block, register_validators, submit_aggregates, submit_attestations,
    submit_contributions, submit_sync_messages, submit_voluntary_exit,
};
use validator::{
    aggregate_attestation, attestation_data, attester_duties, prepare_beacon_proposer,
    produce_block, proposer_duties, subscriptions, sync_committee_contribution, sync_duties,
};

mod error;
mod query;
mod state;
mod submit;
mod validator;

/// `{"data": …}`.
fn data(value: impl Serialize) -> Response {
    Json(json!({ "data": value })).into_response()
}

/// A response carrying versioned data: `{"version": …, "data": …}` with the
/// `Eth-Consensus-Version` header.
fn versioned(fork: ForkName, body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        CONSENSUS_VERSION_HEADER,
        HeaderValue::from_static(fork.as_str()),
    );
    response
}

/// `{"execution_optimistic": false, "finalized": …, "data": …}`.
fn state_data(finalized: bool, value: impl Serialize) -> Response {
    Json(json!({"execution_optimistic": false, "finalized": finalized, "data": value}))
        .into_response()
}

/// While the mock is down, every request is answered 503.
async fn availability(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.down.load(Ordering::SeqCst) {
        return ApiError::Down.into_response();
    }
    next.run(request).await
}

type NodeState<E> = State<Arc<Node<E>>>;

pub(super) fn router<E: EthSpec>(node: Arc<Node<E>>) -> Router {
    let shared = node.shared.clone();
    Router::new()
        .route("/eth/v1/beacon/genesis", get(genesis::<E>))
        .route("/eth/v1/config/spec", get(spec::<E>))
        .route("/eth/v1/config/fork_schedule", get(fork_schedule::<E>))
        .route(
            "/eth/v1/config/deposit_contract",
            get(deposit_contract::<E>),
        )
        .route("/eth/v1/node/version", get(node_version))
        .route("/eth/v1/node/syncing", get(syncing::<E>))
        .route("/eth/v1/node/health", get(|| async { StatusCode::OK }))
        .route(
            "/eth/v1/beacon/states/{state_id}/validators",
            get(validators_get::<E>).post(validators_post::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/validators/{validator_id}",
            get(validator_get::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/fork",
            get(state_fork::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state_id}/finality_checkpoints",
            get(finality_checkpoints::<E>),
        )
        .route("/eth/v1/beacon/headers/{block_id}", get(header::<E>))
        .route(
            "/eth/v1/beacon/blocks/{block_id}/root",
            get(block_root::<E>),
        )
        .route(
            "/eth/v1/validator/duties/attester/{epoch}",
            post(attester_duties::<E>),
        )
        .route(
            "/eth/v1/validator/duties/proposer/{epoch}",
            get(proposer_duties::<E>),
        )
        .route(
            "/eth/v1/validator/duties/sync/{epoch}",
            post(sync_duties::<E>),
        )
        .route(
            "/eth/v1/validator/attestation_data",
            get(attestation_data::<E>),
        )
        .route(
            "/eth/v3/validator/blocks/{slot}",
            get(
                |state: NodeState<E>, slot: Path<String>, query: RawQuery, headers: HeaderMap| {
                    produce_block(state, 3, slot, query, headers)
                },
            ),
        )
        .route(
            "/eth/v2/validator/blocks/{slot}",
            get(
                |state: NodeState<E>, slot: Path<String>, query: RawQuery, headers: HeaderMap| {
                    produce_block(state, 2, slot, query, headers)
                },
            ),
        )
        .route(
            "/eth/v1/beacon/blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, false, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, false, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/blinded_blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, true, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/blinded_blocks",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                publish_block(state, true, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/pool/attestations",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_attestations(state, 1, headers, body)
            }),
        )
        .route(
            "/eth/v2/beacon/pool/attestations",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_attestations(state, 2, headers, body)
            }),
        )
        .route(
            "/eth/v1/validator/aggregate_attestation",
            get(|state: NodeState<E>, query: RawQuery| aggregate_attestation(state, 1, query)),
        )
        .route(
            "/eth/v2/validator/aggregate_attestation",
            get(|state: NodeState<E>, query: RawQuery| aggregate_attestation(state, 2, query)),
        )
        .route(
            "/eth/v1/validator/aggregate_and_proofs",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_aggregates(state, 1, headers, body)
            }),
        )
        .route(
            "/eth/v2/validator/aggregate_and_proofs",
            post(|state: NodeState<E>, headers: HeaderMap, body: Bytes| {
                submit_aggregates(state, 2, headers, body)
            }),
        )
        .route(
            "/eth/v1/beacon/pool/sync_committees",
            post(submit_sync_messages::<E>),
        )
        .route(
            "/eth/v1/validator/sync_committee_contribution",
            get(sync_committee_contribution::<E>),
        )
        .route(
            "/eth/v1/validator/contribution_and_proofs",
            post(submit_contributions::<E>),
        )
        .route(
            "/eth/v1/beacon/pool/voluntary_exits",
            post(submit_voluntary_exit::<E>),
        )
        .route(
            "/eth/v1/validator/register_validator",
            post(register_validators::<E>),
        )
        .route(
            "/eth/v1/validator/prepare_beacon_proposer",
            post(prepare_beacon_proposer::<E>),
        )
        .route(
            "/eth/v1/validator/beacon_committee_subscriptions",
            post(subscriptions),
        )
        .route(
            "/eth/v1/validator/sync_committee_subscriptions",
            post(subscriptions),
        )
        .route("/eth/v1/events", get(events::<E>))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint on the beacon node mock".to_string())
        })
        // 405, as axum would, but with the beacon-API error body.
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"code": 405, "message": "method not allowed on this endpoint"})),
            )
        })
        .layer(axum::middleware::from_fn_with_state(shared, availability))
        .with_state(node)
}
