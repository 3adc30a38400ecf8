//! One call over the beacon nodes with fallback: the node that last
//! answered first, each attempt with its timeout and reported to the
//! observer; and the pass-through a proxy uses. Bodies are JSON; answers
//! are decoded by the caller's decoder, and a body that does not decode
//! counts as that node failing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{error_message, without_url};
use super::{BeaconNodeClient, ClientError, Node, CONSENSUS_VERSION_HEADER};
use crate::fork::ForkName;

/// How one attempt went, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A successful answer.
    Ok,
    /// An error status.
    Status(u16),
    /// A timeout.
    Timeout,
    /// The node could not be reached or its body did not decode.
    Failed,
}

/// One attempt of one call.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The node (without credentials).
    pub node: String,
    /// The endpoint.
    pub endpoint: &'static str,
    /// Time to the full answer.
    pub latency: Duration,
    /// How it went.
    pub outcome: Outcome,
}

/// Receives a record of every attempt.
pub type Observer = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// One call, before it is sent to a node.
pub(super) struct Request<'a> {
    pub(super) endpoint: &'static str,
    pub(super) method: Method,
    pub(super) path: &'a str,
    pub(super) body: Body,
    pub(super) headers: &'a [(&'static str, String)],
    pub(super) timeout: Duration,
}

/// A request body.
pub(super) enum Body {
    /// No body.
    None,
    /// A JSON body.
    Json(serde_json::Value),
}

impl BeaconNodeClient {
    /// Calls `path` on the nodes in turn until one answers, and decodes the
    /// answer with `decode` (a body that does not decode counts as that
    /// node failing).
    pub(super) async fn call<T>(
        &self,
        request: Request<'_>,
        decode: impl Fn(&[u8], &HeaderMap) -> Result<T, String>,
    ) -> Result<T, ClientError> {
        let start = self.preferred.load(Ordering::Relaxed) % self.nodes.len();
        let mut errors = Vec::new();
        for offset in 0..self.nodes.len() {
            let index = (start + offset) % self.nodes.len();
            let node = &self.nodes[index];
            #[expect(
                clippy::disallowed_methods,
                reason = "latency of real I/O, reported to metrics"
            )]
            let began = Instant::now();
            let result = self
                .attempt(node, &request)
                .await
                .and_then(|(bytes, headers)| {
                    decode(&bytes, &headers).map_err(|reason| ClientError::Decode {
                        node: node.display.clone(),
                        endpoint: request.endpoint,
                        reason,
                    })
                });
            if let Some(observer) = &self.observer {
                let outcome = match &result {
                    Ok(_) => Outcome::Ok,
                    Err(ClientError::Status { status, .. }) => Outcome::Status(*status),
                    Err(ClientError::Timeout { .. }) => Outcome::Timeout,
                    Err(_) => Outcome::Failed,
                };
                observer(&CallRecord {
                    node: node.display.clone(),
                    endpoint: request.endpoint,
                    latency: began.elapsed(),
                    outcome,
                });
            }
            match result {
                Ok(value) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(error) if error.is_final() => return Err(error),
                Err(error) => {
                    tracing::debug!(node = %node.display, endpoint = request.endpoint, %error, "beacon node call failed; trying the next");
                    errors.push(error);
                }
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        Err(ClientError::AllFailed {
            endpoint: request.endpoint,
            errors,
        })
    }

    pub(super) async fn attempt(
        &self,
        node: &Node,
        request: &Request<'_>,
    ) -> Result<(bytes::Bytes, HeaderMap), ClientError> {
        let Request {
            endpoint,
            ref method,
            path,
            ref body,
            headers,
            timeout,
        } = *request;
        let url =
            node.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| ClientError::InvalidUrl {
                    url: format!("{}/{path}", node.display),
                    reason: e.to_string(),
                })?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Body::Json(json) = body {
            request = request.json(json);
        }
        let fail = |error: reqwest::Error| {
            if error.is_timeout() {
                ClientError::Timeout {
                    node: node.display.clone(),
                    endpoint,
                    timeout,
                }
            } else {
                ClientError::Transport {
                    node: node.display.clone(),
                    endpoint,
                    reason: without_url(&error),
                }
            }
        };
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(fail)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                node: node.display.clone(),
                endpoint,
                status: status.as_u16(),
                message: error_message(status, &bytes),
            });
        }
        Ok((bytes, response_headers))
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        self.call(
            Request {
                endpoint,
                method: Method::GET,
                path,
                body: Body::None,
                headers: &[],
                timeout,
            },
            json_decode,
        )
        .await
    }

    pub(super) async fn post<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        body: serde_json::Value,
        headers: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<T, ClientError> {
        self.call(
            Request {
                endpoint,
                method: Method::POST,
                path,
                body: Body::Json(body),
                headers,
                timeout,
            },
            json_decode,
        )
        .await
    }

    pub(super) async fn submit(
        &self,
        endpoint: &'static str,
        path: &str,
        body: impl Serialize,
        headers: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Decode {
            node: String::new(),
            endpoint,
            reason: format!("cannot encode the request: {e}"),
        })?;
        self.call(
            Request {
                endpoint,
                method: Method::POST,
                path,
                body: Body::Json(body),
                headers,
                timeout,
            },
            |_, _| Ok(()),
        )
        .await
    }

    /// Posts to the v2 endpoint with the fork header; a node that does not
    /// serve v2 (404/405) gets the v1 endpoint instead, where v1 can carry
    /// the body (`v1_allowed`).
    pub(super) async fn submit_versioned(
        &self,
        endpoint: &'static str,
        fork: ForkName,
        v2_path: &str,
        v1_path: &str,
        v1_allowed: bool,
        body: impl Serialize,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_value(body).unwrap_or_default();
        let headers = [(CONSENSUS_VERSION_HEADER, fork.to_string())];
        let timeout = self.timeouts.default;
        match self
            .submit(endpoint, v2_path, &body, &headers, timeout)
            .await
        {
            Err(e) if v1_allowed && matches!(e.status(), Some(404 | 405)) => {
                self.submit(endpoint, v1_path, &body, &[], timeout).await
            }
            other => other,
        }
    }

    /// Passes a request through to the beacon nodes unchanged, for a proxy.
    ///
    /// The nodes are tried in fallback order, with only the given `headers`
    /// and `body`; the first answer that is not a 5xx is returned unread,
    /// whatever its status, so that the caller can pass it on (an event
    /// stream as it comes). There is no timeout, as a stream lasts as long
    /// as its reader wants. Answers do not move the preferred node, and
    /// are not reported to the observer: a pass-through's latency is its
    /// caller's.
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: bytes::Bytes,
    ) -> Result<reqwest::Response, ClientError> {
        let endpoint = "forward";
        let mut errors = Vec::new();
        let start = self.preferred.load(Ordering::Relaxed) % self.nodes.len();
        for offset in 0..self.nodes.len() {
            let node = &self.nodes[(start + offset) % self.nodes.len()];
            let url = match node.base.join(path_and_query.trim_start_matches('/')) {
                Ok(url) => url,
                Err(e) => {
                    errors.push(ClientError::InvalidUrl {
                        url: format!("{}{path_and_query}", node.display),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let mut request = self.http.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            if !body.is_empty() {
                request = request.body(body.clone());
            }
            match request.send().await {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.bytes().await.unwrap_or_default();
                    errors.push(ClientError::Status {
                        node: node.display.clone(),
                        endpoint,
                        status: status.as_u16(),
                        message: error_message(status, &bytes),
                    });
                }
                Err(e) => errors.push(ClientError::Transport {
                    node: node.display.clone(),
                    endpoint,
                    reason: without_url(&e),
                }),
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        Err(ClientError::AllFailed { endpoint, errors })
    }
}

/// A request body as JSON; only a type whose `Serialize` can fail (a map
/// with non-string keys) makes this an error.
pub(super) fn encode(
    endpoint: &'static str,
    body: impl Serialize,
) -> Result<serde_json::Value, ClientError> {
    serde_json::to_value(body).map_err(|e| ClientError::Decode {
        node: String::new(),
        endpoint,
        reason: format!("cannot encode the request: {e}"),
    })
}

pub(super) fn json_decode<T: DeserializeOwned>(bytes: &[u8], _: &HeaderMap) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

pub(super) fn fork_header(headers: &HeaderMap) -> Result<Option<ForkName>, String> {
    match headers.get(CONSENSUS_VERSION_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map_err(|e| e.to_string())?
            .parse()
            .map(Some)
            .map_err(|e: crate::Error| e.to_string()),
    }
}
