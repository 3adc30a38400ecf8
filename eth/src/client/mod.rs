//! A typed async client for the beacon-node endpoints the duty pipeline
//! uses, over several beacon nodes with fallback.
//!
//! Every call has a timeout. A node that times out, cannot be reached,
//! answers 5xx or sends a body that does not decode is skipped for the next
//! one. A 4xx is the request's fault, so it is returned at once with the
//! node's message. The node that last answered is tried first next time.
//! Each attempt is reported to an optional observer (node, endpoint,
//! latency, outcome) so the node can export latency metrics.
//!
//! - This module: the client, its nodes and timeouts.
//! - `transport`: one call over the nodes with fallback, its observation,
//!   and the pass-through a proxy uses.
//! - `error`: [`ClientError`] and the retry policy it carries.
//! - Endpoints by concern: `chain` (genesis, spec, sync status, validators),
//!   `duties` (duties, selections, subscriptions, fee recipients), `blocks`
//!   (production and publication), `pools` (attestations, aggregates, sync
//!   committee, exits, registrations) and `events` (the event stream).

mod blocks;
mod chain;
mod duties;
mod error;
mod events;
mod pools;
mod transport;

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use url::Url;

pub use self::duties::{BeaconCommitteeSubscription, SyncCommitteeSubscription};
pub use self::error::{without_url, ClientError};
pub use self::transport::{CallRecord, Observer, Outcome};

/// The header that names the fork of a request or response body.
pub const CONSENSUS_VERSION_HEADER: &str = "Eth-Consensus-Version";

/// Timeouts per kind of call.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Small reads and submissions.
    pub default: Duration,
    /// Duties, which can be large.
    pub duties: Duration,
    /// Block production (the node may wait for builders).
    pub block_production: Duration,
    /// Block publication.
    pub block_publication: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            default: Duration::from_secs(4),
            duties: Duration::from_secs(6),
            block_production: Duration::from_secs(6),
            block_publication: Duration::from_secs(6),
        }
    }
}

/// A beacon node: its base URL, and how it is named in messages.
struct Node {
    base: Url,
    display: String,
}

/// A client over one or more beacon nodes.
pub struct BeaconNodeClient {
    nodes: Vec<Node>,
    http: reqwest::Client,
    preferred: AtomicUsize,
    timeouts: Timeouts,
    observer: Option<Observer>,
    ssz_blocks: bool,
}

impl BeaconNodeClient {
    /// A client for the given beacon-node URLs, tried in this order.
    pub fn new(urls: &[String], timeouts: Timeouts) -> Result<BeaconNodeClient, ClientError> {
        if urls.is_empty() {
            return Err(ClientError::InvalidUrl {
                url: String::new(),
                reason: "at least one beacon node is needed".into(),
            });
        }
        let nodes = urls
            .iter()
            .map(|url| {
                let mut base = Url::parse(url).map_err(|e| ClientError::InvalidUrl {
                    url: redact(url),
                    reason: e.to_string(),
                })?;
                if !matches!(base.scheme(), "http" | "https") {
                    return Err(ClientError::InvalidUrl {
                        url: redact(url),
                        reason: "the scheme must be http or https".into(),
                    });
                }
                if !base.path().ends_with('/') {
                    let path = format!("{}/", base.path());
                    base.set_path(&path);
                }
                let mut display = base.clone();
                let _ = display.set_password(None);
                let _ = display.set_username("");
                Ok(Node {
                    base,
                    display: display.as_str().trim_end_matches('/').to_string(),
                })
            })
            .collect::<Result<Vec<Node>, ClientError>>()?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(BeaconNodeClient {
            nodes,
            http,
            preferred: AtomicUsize::new(0),
            timeouts,
            observer: None,
            ssz_blocks: false,
        })
    }

    /// Asks for produced blocks as SSZ (JSON is still understood, for
    /// nodes that answer with it).
    pub fn preferring_ssz_blocks(mut self) -> BeaconNodeClient {
        self.ssz_blocks = true;
        self
    }

    /// Reports every attempt to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> BeaconNodeClient {
        self.observer = Some(observer);
        self
    }

    /// The nodes, without credentials, in fallback order.
    pub fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.display.clone()).collect()
    }
}

/// A URL for messages, without credentials.
fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_string(),
    }
}
