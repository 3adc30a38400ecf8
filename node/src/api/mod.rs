//! The validator API: the beacon-node REST endpoints a validator client
//! uses, served to this operator's validator client with its key shares
//! presented as the validators' keys.
//!
//! Requests that need a cluster decision or carry a signature go to the
//! core ([`crate::core::VcRequest`]); duties and validator lookups go to the
//! beacon node with keys mapped between shares and group keys; an explicit
//! allow-list of read-only endpoints is proxied unchanged. Everything else
//! is refused with the beacon API's error body, so a signed object never
//! leaves the node unexamined.
//!
//! - This module: the server, its routes and state, asking the core, and
//!   the beacon API's error body.
//! - `media`: content negotiation (JSON or SSZ, 415) and list bodies.
//! - `proxy`: forwarding to the beacon nodes through the beacon-node
//!   client's fallback, and the allow-list.
//! - Handlers by duty: `attestations`, `aggregation`, `blocks`,
//!   `sync_committee`, `exits_and_registrations`, and `duties`
//!   (duties and validator lookups).

// Handlers answer with a whole `Response` on every path, errors included.
#![allow(clippy::result_large_err)]

mod aggregation;
mod attestations;
mod blocks;
mod duties;
mod exits_and_registrations;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod media;
mod proxy;
mod sync_committee;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use phalanx_eth::client::BeaconNodeClient;
use phalanx_eth::config::{NetworkConfig, UnknownFork};
use phalanx_eth::{EthSpec, ForkName, PublicKeyBytes, Slot};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot};

use self::aggregation::{
    aggregate_and_proofs_v1, aggregate_and_proofs_v2, aggregate_attestation_v1,
    aggregate_attestation_v2, beacon_committee_selections, beacon_committee_subscriptions,
};
use self::attestations::{attestation_data, submit_attestations_v1, submit_attestations_v2};
use self::blocks::{produce_block_v2, produce_block_v3, publish};
use self::duties::{duties_get, duties_post, validator_get, validators_get, validators_post};
use self::exits_and_registrations::{prepare_beacon_proposer, register_validator, voluntary_exit};
use self::media::{body_limit, media_type};
use self::proxy::fallback;
use self::sync_committee::{
    contribution_and_proofs, submit_sync_messages, sync_committee_contribution,
    sync_committee_selections,
};
use crate::core::{ApiFailure, VcRequest, VcResponse};

/// A validator client's request for the core, and where its answer goes.
pub struct CoreRequest<E: EthSpec> {
    /// The request.
    pub request: VcRequest<E>,
    /// The reply channel.
    pub reply: oneshot::Sender<Result<VcResponse<E>, ApiFailure>>,
}

/// What the validator API needs.
pub struct ApiConfig<E: EthSpec> {
    /// Where requests for the core go.
    pub core: mpsc::Sender<CoreRequest<E>>,
    /// The beacon nodes, with fallback, for what is proxied.
    pub beacon_node: Arc<BeaconNodeClient>,
    /// Group key → this operator's public share.
    pub shares: BTreeMap<PublicKeyBytes, PublicKeyBytes>,
    /// The network.
    pub network: NetworkConfig,
    /// How long a request may wait for the cluster.
    pub request_timeout: Duration,
}

struct ApiState<E: EthSpec> {
    core: mpsc::Sender<CoreRequest<E>>,
    beacon_node: Arc<BeaconNodeClient>,
    to_share: BTreeMap<String, String>,
    to_group: BTreeMap<String, String>,
    network: NetworkConfig,
    request_timeout: Duration,
}

type Shared<E> = Arc<ApiState<E>>;

/// Starts the validator API on `address`; returns the bound address and
/// the server's task (aborting it closes the listener).
pub async fn serve<E: EthSpec>(
    address: SocketAddr,
    config: ApiConfig<E>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let hex = |k: &PublicKeyBytes| format!("{k}");
    let state = Arc::new(ApiState {
        core: config.core,
        beacon_node: config.beacon_node,
        to_share: config
            .shares
            .iter()
            .map(|(g, s)| (hex(g), hex(s)))
            .collect(),
        to_group: config
            .shares
            .iter()
            .map(|(g, s)| (hex(s), hex(g)))
            .collect(),
        network: config.network,
        request_timeout: config.request_timeout,
    });
    let limit = body_limit(&state.network);
    let app = router::<E>(state)
        .layer(axum::middleware::from_fn(media_type))
        .layer(DefaultBodyLimit::max(limit));
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "validator API stopped");
        }
    });
    Ok((bound, task))
}

fn router<E: EthSpec>(state: Shared<E>) -> Router {
    Router::new()
        .route(
            "/eth/v1/validator/attestation_data",
            get(attestation_data::<E>),
        )
        .route(
            "/eth/v1/beacon/pool/attestations",
            post(submit_attestations_v1::<E>),
        )
        .route(
            "/eth/v2/beacon/pool/attestations",
            post(submit_attestations_v2::<E>),
        )
        .route(
            "/eth/v1/beacon/pool/sync_committees",
            post(submit_sync_messages::<E>),
        )
        .route(
            "/eth/v1/validator/beacon_committee_selections",
            post(beacon_committee_selections::<E>),
        )
        .route(
            "/eth/v1/validator/sync_committee_selections",
            post(sync_committee_selections::<E>),
        )
        .route(
            "/eth/v1/validator/duties/attester/{epoch}",
            post(duties_post::<E>),
        )
        .route(
            "/eth/v1/validator/aggregate_attestation",
            get(aggregate_attestation_v1::<E>),
        )
        .route(
            "/eth/v2/validator/aggregate_attestation",
            get(aggregate_attestation_v2::<E>),
        )
        .route(
            "/eth/v1/validator/aggregate_and_proofs",
            post(aggregate_and_proofs_v1::<E>),
        )
        .route(
            "/eth/v2/validator/aggregate_and_proofs",
            post(aggregate_and_proofs_v2::<E>),
        )
        .route(
            "/eth/v1/validator/sync_committee_contribution",
            get(sync_committee_contribution::<E>),
        )
        .route(
            "/eth/v1/validator/contribution_and_proofs",
            post(contribution_and_proofs::<E>),
        )
        .route(
            "/eth/v1/validator/beacon_committee_subscriptions",
            post(beacon_committee_subscriptions::<E>),
        )
        .route(
            "/eth/v1/validator/prepare_beacon_proposer",
            post(prepare_beacon_proposer::<E>),
        )
        .route(
            "/eth/v1/beacon/pool/voluntary_exits",
            post(voluntary_exit::<E>),
        )
        .route(
            "/eth/v1/validator/register_validator",
            post(register_validator::<E>),
        )
        .route(
            "/eth/v3/validator/blocks/{slot}",
            get(produce_block_v3::<E>),
        )
        .route(
            "/eth/v2/validator/blocks/{slot}",
            get(produce_block_v2::<E>),
        )
        .route("/eth/v1/beacon/blocks", post(publish::<E, false, false>))
        .route("/eth/v2/beacon/blocks", post(publish::<E, false, true>))
        .route(
            "/eth/v1/beacon/blinded_blocks",
            post(publish::<E, true, false>),
        )
        .route(
            "/eth/v2/beacon/blinded_blocks",
            post(publish::<E, true, true>),
        )
        .route(
            "/eth/v1/validator/duties/sync/{epoch}",
            post(duties_post::<E>),
        )
        .route(
            "/eth/v1/validator/duties/proposer/{epoch}",
            get(duties_get::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state}/validators",
            get(validators_get::<E>).post(validators_post::<E>),
        )
        .route(
            "/eth/v1/beacon/states/{state}/validators/{id}",
            get(validator_get::<E>),
        )
        .fallback(fallback::<E>)
        .with_state(state)
}

/// The beacon API's error body.
fn error(status: u16, message: impl Into<String>) -> Response {
    failure(ApiFailure {
        status,
        message: message.into(),
        failures: Vec::new(),
    })
}

fn failure(f: ApiFailure) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = json!({"code": f.status, "message": f.message});
    if !f.failures.is_empty() {
        body["failures"] = Json::Array(
            f.failures
                .iter()
                .map(|(index, message)| json!({"index": index, "message": message}))
                .collect(),
        );
    }
    (status, axum::Json(body)).into_response()
}

impl<E: EthSpec> ApiState<E> {
    /// Asks the core and waits for its answer, at most the request timeout.
    async fn ask(&self, request: VcRequest<E>) -> Result<VcResponse<E>, ApiFailure> {
        let (reply, answer) = oneshot::channel();
        let sent = self.core.send(CoreRequest { request, reply }).await;
        if sent.is_err() {
            return Err(ApiFailure {
                status: 503,
                message: "the node is shutting down".into(),
                failures: Vec::new(),
            });
        }
        match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiFailure {
                status: 503,
                message: "the node is shutting down".into(),
                failures: Vec::new(),
            }),
            Err(_) => Err(ApiFailure {
                status: 503,
                message: format!(
                    "the cluster did not answer within {:?}",
                    self.request_timeout
                ),
                failures: Vec::new(),
            }),
        }
    }

    fn fork_at(&self, slot: Slot) -> Result<ForkName, Response> {
        self.network
            .fork_at_slot(slot)
            .map_err(|UnknownFork(name)| {
                error(500, format!("fork {name} is unknown to this build"))
            })
    }
}

/// The answer to a list submission; the core names refused items by their
/// index in what it was asked, `request_indices` maps them back to the
/// client's list (the API may have left items out).
fn answer_submission<E: EthSpec>(
    result: Result<VcResponse<E>, ApiFailure>,
    request_indices: &[usize],
) -> Response {
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(mut f) => {
            for (index, _) in &mut f.failures {
                *index = request_indices.get(*index).copied().unwrap_or(*index);
            }
            failure(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_follow_the_beacon_api() {
        let response = failure(ApiFailure {
            status: 400,
            message: "bad".into(),
            failures: vec![(2, "wrong".into())],
        });
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
