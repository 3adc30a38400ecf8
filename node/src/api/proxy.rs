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

/// Whether `method` on `path` is proxied to the beacon node unchanged:
/// only a path in normal form, which the beacon-node client's URL joining
/// leaves as it is, so that the prefix matched is the endpoint reached.
fn proxied(method: &Method, path: &str) -> bool {
    normal_path(path)
        && ((method == Method::GET && READ_ONLY.iter().any(|p| path.starts_with(p)))
            || (method == Method::POST && UNSIGNED_POSTS.iter().any(|p| path.starts_with(p))))
}

/// A path without dot segments (`.`, `..`), empty segments, backslashes or
/// percent-escapes: URL resolution would turn any of those into another
/// path (`%2e%2e` is `..`). No beacon-API path needs them.
fn normal_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    // A trailing slash leaves one empty last segment, which is harmless.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !path.contains(['%', '\\'])
        && rest
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

pub(super) async fn fallback<E: EthSpec>(
    State(state): State<Shared<E>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let path_and_query = uri.path_and_query().map_or(path, |p| p.as_str());
    if !normal_path(path) {
        return error(
            400,
            format!("{path}: dot segments, empty segments, backslashes and percent-escapes are refused in paths"),
        );
    }
    if !proxied(&method, path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the beacon-node client sends a proxied path: joined to the
    /// beacon node's base URL, which resolves dot segments.
    fn reached(path: &str) -> String {
        let base = reqwest::Url::parse("http://beacon.example:5052/").expect("base");
        base.join(path.trim_start_matches('/'))
            .expect("joins")
            .path()
            .to_string()
    }

    #[test]
    fn dot_segments_cannot_leave_the_allow_list() {
        let escapes = [
            "/eth/v1/validator/liveness/../../beacon/pool/voluntary_exits",
            "/eth/v1/validator/liveness/%2e%2e/%2E%2E/beacon/pool/voluntary_exits",
            "/eth/v1/validator/liveness/.%2e/.%2E/beacon/pool/attester_slashings",
            "/eth/v1/validator/prepare_beacon_proposer/../../beacon/pool/bls_to_execution_changes",
            "/eth/v1/validator/liveness/..%2f..%2fbeacon/pool/voluntary_exits",
            "/eth/v1/validator/liveness/..\\..\\beacon/pool/voluntary_exits",
            "/eth/v1/validator/liveness/./../../beacon/pool/voluntary_exits",
        ];
        for path in escapes {
            assert!(
                !proxied(&Method::POST, path),
                "{path} reaches {} on the beacon node",
                reached(path)
            );
        }
        for path in [
            "/eth/v1/node/../../eth/v1/beacon/pool/attestations",
            "/eth/v1/config/%2e%2e/%2e%2e/v1/beacon/pool/voluntary_exits",
            "/eth/v1/beacon/states/head/./validators",
        ] {
            assert!(
                !proxied(&Method::GET, path),
                "{path} reaches {}",
                reached(path)
            );
        }
    }

    #[test]
    fn every_proxied_path_reaches_what_it_names() {
        let allowed = [
            (Method::GET, "/eth/v1/beacon/genesis"),
            (Method::GET, "/eth/v1/config/spec"),
            (Method::GET, "/eth/v1/node/syncing"),
            (Method::GET, "/eth/v1/beacon/states/head/validators"),
            (Method::GET, "/eth/v2/debug/beacon/states/0x1234"),
            (Method::GET, "/eth/v1/events"),
            (Method::POST, "/eth/v1/validator/liveness/12"),
            (Method::POST, "/eth/v1/validator/prepare_beacon_proposer"),
        ];
        for (method, path) in allowed {
            assert!(proxied(&method, path), "{method} {path} is refused");
            assert_eq!(reached(path), path);
        }
        assert!(!proxied(
            &Method::POST,
            "/eth/v1/beacon/pool/voluntary_exits"
        ));
        assert!(!proxied(&Method::GET, "/eth/v1/keystores"));
    }
}
