//! The proxy to the beacon node: requests the node answers from its beacon
//! node, passed through the beacon-node client's fallback across beacon
//! nodes. An explicit allow-list of read-only endpoints and unsigned
//! submissions is proxied unchanged; everything else is refused, so a
//! signed object never leaves the node unexamined.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use phalanx_eth::client::{ClientError, CONSENSUS_VERSION_HEADER};
use phalanx_eth::EthSpec;
use serde_json::Value as Json;

use super::{error, ApiState, Shared};

/// The headers of a client's request that reach the beacon node.
const FORWARDED_HEADERS: [&str; 3] = ["accept", "content-type", CONSENSUS_VERSION_HEADER];

impl<E: EthSpec> ApiState<E> {
    /// Sends a request to the beacon nodes in fallback order with the
    /// client's media and fork headers; the first that answers (with
    /// anything but a 5xx or a transport error) wins.
    pub(super) async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, Response> {
        let mut forwarded = HeaderMap::new();
        for name in FORWARDED_HEADERS {
            if let Some(value) = headers.get(name) {
                if let Ok(name) = axum::http::HeaderName::from_bytes(name.as_bytes()) {
                    forwarded.insert(name, value.clone());
                }
            }
        }
        self.beacon_node
            .forward(method, path_and_query, &forwarded, body)
            .await
            .map_err(|e| {
                error(
                    503,
                    format!("no beacon node answered: {}", last_failure(&e)),
                )
            })
    }

    /// Forwards and returns the JSON answer, or the node's own error.
    pub(super) async fn forward_json(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Json>,
    ) -> Result<Json, Response> {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self
            .forward(method, path_and_query, &headers, bytes)
            .await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| error(502, format!("reading the beacon node's answer: {e}")))?;
        if !status.is_success() {
            return Err((
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                [("content-type", "application/json")],
                bytes,
            )
                .into_response());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| error(502, format!("the beacon node's answer is not JSON: {e}")))
    }
}

/// The failure of the last beacon node tried.
fn last_failure(error: &ClientError) -> &ClientError {
    match error {
        ClientError::AllFailed { errors, .. } => errors.last().unwrap_or(error),
        other => other,
    }
}

/// Posts a list the node rewrote to the beacon node; its answer goes back
/// to the client as it is.
pub(super) async fn forward_list<E: EthSpec>(
    state: &ApiState<E>,
    path: &str,
    headers: &HeaderMap,
    items: &impl serde::Serialize,
) -> Response {
    let body = Bytes::from(serde_json::to_vec(items).unwrap_or_default());
    match state.forward(Method::POST, path, headers, body).await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = response.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(response) => response,
    }
}

/// Read-only endpoints proxied unchanged (prefixes of GET paths).
pub(super) const READ_ONLY: &[&str] = &[
    "/eth/v1/beacon/genesis",
    "/eth/v1/config/",
    "/eth/v1/node/",
    "/eth/v1/beacon/headers",
    "/eth/v1/beacon/blocks/",
    "/eth/v2/beacon/blocks/",
    "/eth/v1/beacon/states/",
    "/eth/v1/beacon/blob_sidecars/",
    "/eth/v2/debug/beacon/states/",
    "/eth/v1/events",
];

/// Submissions without signatures that the beacon node needs as they are.
pub(super) const UNSIGNED_POSTS: &[&str] = &[
    "/eth/v1/validator/prepare_beacon_proposer",
    "/eth/v1/validator/beacon_committee_subscriptions",
    "/eth/v1/validator/sync_committee_subscriptions",
    "/eth/v1/validator/liveness/",
];

pub(super) async fn fallback<E: EthSpec>(
    State(state): State<Shared<E>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let path_and_query = uri.path_and_query().map_or(path, |p| p.as_str());
    let allowed = (method == Method::GET && READ_ONLY.iter().any(|p| path.starts_with(p)))
        || (method == Method::POST && UNSIGNED_POSTS.iter().any(|p| path.starts_with(p)));
    if !allowed {
        return error(
            404,
            format!(
                "{method} {path} is not served by the Phalanx validator API: it is not a read-only endpoint, and signed objects reach the beacon node only through the cluster"
            ),
        );
    }
    match state.forward(method, path_and_query, &headers, body).await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut builder = Response::builder().status(status);
            for name in ["content-type", CONSENSUS_VERSION_HEADER, "cache-control"] {
                if let Some(value) = response.headers().get(name) {
                    builder = builder.header(name, value.as_bytes());
                }
            }
            // Streamed, so that the event stream flows as it comes.
            builder
                .body(Body::from_stream(response.bytes_stream()))
                .unwrap_or_else(|e| error(502, e.to_string()))
        }
        Err(response) => response,
    }
}
