//! The beacon node's event stream (`head`, `block`, `chain_reorg`),
//! subscribed to on the first node that accepts it and parsed from
//! server-sent events.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{Stream, StreamExt};

use super::error::{error_message, without_url};
use super::{BeaconNodeClient, ClientError};
use crate::api::{BlockEvent, ChainReorgEvent, Event, HeadEvent};

impl BeaconNodeClient {
    /// `GET /eth/v1/events?topics=head,block,chain_reorg` from the first node
    /// that accepts the subscription. The stream ends when the node closes
    /// it; the caller reconnects.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<Event, ClientError>> + Send + 'static, ClientError> {
        let endpoint = "events";
        let mut errors = Vec::new();
        let start = self.preferred.load(Ordering::Relaxed) % self.nodes.len();
        for offset in 0..self.nodes.len() {
            let node = &self.nodes[(start + offset) % self.nodes.len()];
            let url = match node
                .base
                .join("eth/v1/events?topics=head,block,chain_reorg")
            {
                Ok(url) => url,
                Err(e) => {
                    errors.push(ClientError::InvalidUrl {
                        url: node.display.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let display = node.display.clone();
            let response = self
                .http
                .get(url)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .timeout(Duration::from_secs(365 * 24 * 3600))
                .send()
                .await;
            match response {
                Ok(response) if response.status().is_success() => {
                    return Ok(sse_events(display, response.bytes_stream()));
                }
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.bytes().await.unwrap_or_default();
                    errors.push(ClientError::Status {
                        node: display,
                        endpoint,
                        status: status.as_u16(),
                        message: error_message(status, &bytes),
                    });
                }
                Err(e) => errors.push(ClientError::Transport {
                    node: display,
                    endpoint,
                    reason: without_url(&e),
                }),
            }
        }
        Err(ClientError::AllFailed { endpoint, errors })
    }
}

/// Parses a server-sent-event byte stream into typed events. Unknown event
/// kinds are skipped; malformed data ends nothing, it yields an error item.
fn sse_events(
    node: String,
    bytes: impl Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
) -> impl Stream<Item = Result<Event, ClientError>> + Send + 'static {
    let state = (Box::pin(bytes), String::new(), node);
    futures::stream::unfold(state, |(mut bytes, mut buffer, node)| async move {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                match parse_sse_block(&block) {
                    Some(Ok(event)) => return Some((Ok(event), (bytes, buffer, node))),
                    Some(Err(reason)) => {
                        let error = ClientError::Decode {
                            node: node.clone(),
                            endpoint: "events",
                            reason,
                        };
                        return Some((Err(error), (bytes, buffer, node)));
                    }
                    None => continue,
                }
            }
            match bytes.next().await {
                Some(Ok(chunk)) => {
                    buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"))
                }
                Some(Err(e)) => {
                    let error = ClientError::Transport {
                        node: node.clone(),
                        endpoint: "events",
                        reason: without_url(&e),
                    };
                    return Some((Err(error), (bytes, String::new(), node)));
                }
                None => return None,
            }
        }
    })
}

/// One `event:`/`data:` block; `None` for comments and unknown events.
fn parse_sse_block(block: &str) -> Option<Result<Event, String>> {
    let mut kind = "";
    let mut data = String::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = value.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim());
        }
    }
    let parse = |data: &str| -> Result<Event, serde_json::Error> {
        Ok(match kind {
            "head" => Event::Head(serde_json::from_str::<HeadEvent>(data)?),
            "block" => Event::Block(serde_json::from_str::<BlockEvent>(data)?),
            _ => Event::ChainReorg(serde_json::from_str::<ChainReorgEvent>(data)?),
        })
    };
    match kind {
        "head" | "block" | "chain_reorg" => {
            Some(parse(&data).map_err(|e| format!("{kind} event: {e}")))
        }
        _ => None,
    }
}
