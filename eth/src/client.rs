//! A typed async client for the beacon-node endpoints the duty pipeline
//! uses, over several beacon nodes with fallback.
//!
//! Every call has a timeout. A node that times out, cannot be reached,
//! answers 5xx or sends a body that does not decode is skipped for the next
//! one. A 4xx is the request's fault, so it is returned at once with the
//! node's message. The node that last answered is tried first next time.
//! Each attempt is reported to an optional observer (node, endpoint,
//! latency, outcome) so the node can export latency metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::api::{
    AttesterDuty, BlockEvent, ChainReorgEvent, Data, Duties, Event, Fork, Genesis, HeadEvent,
    NodeVersion, ProposerDuty, ProposerPreparation, SyncDuty, Syncing, ValidatorData,
    ValidatorsQuery,
};
use crate::attestation::{
    Attestation, AttestationData, BeaconCommitteeSelection, SyncCommitteeSelection,
};
use crate::block_contents::ProducedBlock;
use crate::config::NetworkConfig;
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::{CommitteeIndex, Epoch, Root, SignatureBytes, Slot, ValidatorIndex};
use crate::sync_committee::{
    SignedContributionAndProof, SyncCommitteeContribution, SyncCommitteeMessage,
};
use crate::validator::{SignedValidatorRegistration, SignedVoluntaryExit};

/// The header that names the fork of a request or response body.
pub const CONSENSUS_VERSION_HEADER: &str = "Eth-Consensus-Version";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error status.
    #[error("beacon node {node}: {endpoint} answered {status}: {message}")]
    Status {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
    /// No answer in time.
    #[error("beacon node {node}: {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// The timeout.
        timeout: Duration,
    },
    /// The node could not be reached.
    #[error("beacon node {node}: {endpoint}: {reason}")]
    Transport {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The body did not decode.
    #[error("beacon node {node}: {endpoint}: cannot decode the response: {reason}")]
    Decode {
        /// The node (without credentials).
        node: String,
        /// The endpoint called.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Every node failed.
    #[error("no beacon node answered {endpoint}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllFailed {
        /// The endpoint called.
        endpoint: &'static str,
        /// Each node's failure.
        errors: Vec<ClientError>,
    },
    /// A beacon-node address that is not a usable URL.
    #[error("invalid beacon node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The address given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status, if a node answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same call may succeed if made again: the node was
    /// unreachable, too slow or failing (5xx); a 4xx, an undecodable
    /// answer or a bad URL will not change.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status >= 500,
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::AllFailed { errors, .. } => errors.iter().any(ClientError::is_retriable),
            ClientError::Decode { .. } | ClientError::InvalidUrl { .. } => false,
        }
    }

    /// Whether a node refused a submission only because it already has the
    /// object, which for a cluster whose every node broadcasts the same
    /// object is success: Lodestar says `ATTESTATION_ALREADY_KNOWN`, or
    /// gossipsub's `PublishError.Duplicate` for a block another node
    /// published; others say "already known".
    pub fn is_already_known(&self) -> bool {
        match self {
            ClientError::Status { message, .. } => {
                let message = message.to_ascii_lowercase();
                message.contains("already_known")
                    || message.contains("already known")
                    || message.contains("publisherror.duplicate")
            }
            ClientError::AllFailed { errors, .. } => {
                errors.iter().any(ClientError::is_already_known)
            }
            _ => false,
        }
    }

    /// Whether the request itself is at fault (a 4xx), so that no other
    /// node is asked.
    fn is_final(&self) -> bool {
        matches!(self, ClientError::Status { status, .. } if (400..500).contains(status))
    }
}

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

struct Node {
    base: Url,
    display: String,
}

/// An entry of `POST /eth/v1/validator/beacon_committee_subscriptions`:
/// an attester asks its node to follow (and, as aggregator, join) its
/// committee's subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BeaconCommitteeSubscription {
    /// The attester.
    pub validator_index: ValidatorIndex,
    /// Its committee.
    pub committee_index: CommitteeIndex,
    /// Committees in the slot (the subnet depends on it).
    #[serde(with = "serde_utils::quoted_u64")]
    pub committees_at_slot: u64,
    /// The slot of the duty.
    pub slot: Slot,
    /// Whether its selection proof makes it an aggregator.
    pub is_aggregator: bool,
}

/// An entry of `POST /eth/v1/validator/sync_committee_subscriptions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SyncCommitteeSubscription {
    /// The sync-committee member.
    pub validator_index: ValidatorIndex,
    /// Its positions in the sync committee.
    #[serde(with = "serde_utils::quoted_u64_vec")]
    pub sync_committee_indices: Vec<u64>,
    /// The first epoch it no longer needs the subscription.
    pub until_epoch: Epoch,
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

/// One call, before it is sent to a node.
struct Request<'a> {
    endpoint: &'static str,
    method: Method,
    path: &'a str,
    body: Body,
    headers: &'a [(&'static str, String)],
    timeout: Duration,
}

/// A request body.
enum Body {
    None,
    Json(serde_json::Value),
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

    /// Calls `path` on the nodes in turn until one answers, and decodes the
    /// answer with `decode` (a body that does not decode counts as that
    /// node failing).
    async fn call<T>(
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

    async fn attempt(
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

    async fn get<T: DeserializeOwned>(
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

    async fn post<T: DeserializeOwned>(
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

    async fn submit(
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

    /// `GET /eth/v1/beacon/genesis`.
    pub async fn genesis(&self) -> Result<Genesis, ClientError> {
        let data: Data<Genesis> = self
            .get("genesis", "eth/v1/beacon/genesis", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/config/spec`, as a network configuration.
    pub async fn spec(&self) -> Result<NetworkConfig, ClientError> {
        let endpoint = "spec";
        self.call(
            Request {
                endpoint,
                method: Method::GET,
                path: "eth/v1/config/spec",
                body: Body::None,
                headers: &[],
                timeout: self.timeouts.default,
            },
            |bytes, _| {
                let data: Data<serde_json::Map<String, serde_json::Value>> =
                    serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                NetworkConfig::from_spec(&data.data).map_err(|e| e.to_string())
            },
        )
        .await
    }

    /// `GET /eth/v1/config/fork_schedule`.
    pub async fn fork_schedule(&self) -> Result<Vec<Fork>, ClientError> {
        let data: Data<Vec<Fork>> = self
            .get(
                "fork_schedule",
                "eth/v1/config/fork_schedule",
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/node/syncing`.
    pub async fn syncing(&self) -> Result<Syncing, ClientError> {
        let data: Data<Syncing> = self
            .get("syncing", "eth/v1/node/syncing", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/node/version`.
    pub async fn version(&self) -> Result<NodeVersion, ClientError> {
        let data: Data<NodeVersion> = self
            .get("version", "eth/v1/node/version", self.timeouts.default)
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/beacon/states/{state}/validators`, falling back to the
    /// `GET` form for nodes that do not serve the `POST` one.
    pub async fn validators(
        &self,
        state: &str,
        ids: &[String],
    ) -> Result<Vec<ValidatorData>, ClientError> {
        let path = format!("eth/v1/beacon/states/{state}/validators");
        let query = ValidatorsQuery {
            ids: ids.to_vec(),
            statuses: Vec::new(),
        };
        let body = serde_json::to_value(&query).unwrap_or_default();
        match self
            .post::<Data<Vec<ValidatorData>>>("validators", &path, body, &[], self.timeouts.duties)
            .await
        {
            Ok(data) => Ok(data.data),
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                // `id` repeated, the array form every beacon node accepts:
                // Lodestar 1.5.1 answers a comma-separated one with nothing.
                let query: Vec<String> = ids.iter().map(|id| format!("id={id}")).collect();
                let get_path = format!("{path}?{}", query.join("&"));
                let data: Data<Vec<ValidatorData>> = self
                    .get("validators", &get_path, self.timeouts.duties)
                    .await?;
                Ok(data.data)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /eth/v1/validator/duties/attester/{epoch}`.
    pub async fn attester_duties(
        &self,
        epoch: Epoch,
        indices: &[ValidatorIndex],
    ) -> Result<Duties<AttesterDuty>, ClientError> {
        self.post(
            "attester_duties",
            &format!("eth/v1/validator/duties/attester/{epoch}"),
            quoted_indices(indices),
            &[],
            self.timeouts.duties,
        )
        .await
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}`.
    pub async fn proposer_duties(&self, epoch: Epoch) -> Result<Duties<ProposerDuty>, ClientError> {
        self.get(
            "proposer_duties",
            &format!("eth/v1/validator/duties/proposer/{epoch}"),
            self.timeouts.duties,
        )
        .await
    }

    /// `POST /eth/v1/validator/duties/sync/{epoch}`.
    pub async fn sync_duties(
        &self,
        epoch: Epoch,
        indices: &[ValidatorIndex],
    ) -> Result<Duties<SyncDuty>, ClientError> {
        self.post(
            "sync_duties",
            &format!("eth/v1/validator/duties/sync/{epoch}"),
            quoted_indices(indices),
            &[],
            self.timeouts.duties,
        )
        .await
    }

    /// `GET /eth/v1/beacon/blocks/{block_id}/root` (`head`, `finalized`, a
    /// slot or a `0x` root).
    pub async fn block_root(&self, block_id: &str) -> Result<Root, ClientError> {
        #[derive(serde::Deserialize)]
        struct BlockRoot {
            root: Root,
        }
        let data: Data<BlockRoot> = self
            .get(
                "block_root",
                &format!("eth/v1/beacon/blocks/{block_id}/root"),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data.root)
    }

    /// `POST /eth/v1/validator/beacon_committee_selections`: a distributed
    /// validator's client sends its partial selection proofs and gets back
    /// the combined ones, which decide whether it aggregates.
    pub async fn beacon_committee_selections(
        &self,
        selections: &[BeaconCommitteeSelection],
    ) -> Result<Vec<BeaconCommitteeSelection>, ClientError> {
        let endpoint = "beacon_committee_selections";
        let data: Data<Vec<BeaconCommitteeSelection>> = self
            .post(
                endpoint,
                "eth/v1/validator/beacon_committee_selections",
                encode(endpoint, selections)?,
                &[],
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/validator/sync_committee_selections`: the sync-committee
    /// counterpart of [`BeaconNodeClient::beacon_committee_selections`].
    pub async fn sync_committee_selections(
        &self,
        selections: &[SyncCommitteeSelection],
    ) -> Result<Vec<SyncCommitteeSelection>, ClientError> {
        let endpoint = "sync_committee_selections";
        let data: Data<Vec<SyncCommitteeSelection>> = self
            .post(
                endpoint,
                "eth/v1/validator/sync_committee_selections",
                encode(endpoint, selections)?,
                &[],
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v1/validator/attestation_data`.
    pub async fn attestation_data(
        &self,
        slot: Slot,
        committee_index: CommitteeIndex,
    ) -> Result<AttestationData, ClientError> {
        let data: Data<AttestationData> = self
            .get(
                "attestation_data",
                &format!("eth/v1/validator/attestation_data?slot={slot}&committee_index={committee_index}"),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `GET /eth/v3/validator/blocks/{slot}`: a full or blinded block,
    /// whichever the node's builder choice gives. A node that does not
    /// serve v3 (404/405) is asked with v2, which gives a full block.
    pub async fn produce_block<E: EthSpec>(
        &self,
        slot: Slot,
        randao_reveal: &SignatureBytes,
        graffiti: Option<Root>,
        builder_boost_factor: Option<u64>,
    ) -> Result<ProducedBlock<E>, ClientError> {
        let mut query = format!("{slot}?randao_reveal={randao_reveal}");
        if let Some(graffiti) = graffiti {
            query.push_str(&format!("&graffiti={graffiti}"));
        }
        let v2_path = format!("eth/v2/validator/blocks/{query}");
        if let Some(factor) = builder_boost_factor {
            query.push_str(&format!("&builder_boost_factor={factor}"));
        }
        let v3_path = format!("eth/v3/validator/blocks/{query}");
        match self.produce_at(&v3_path).await {
            Err(e) if matches!(e.status(), Some(404 | 405)) => self.produce_at(&v2_path).await,
            other => other,
        }
    }

    async fn produce_at<E: EthSpec>(&self, path: &str) -> Result<ProducedBlock<E>, ClientError> {
        let accept = [(
            "accept",
            "application/octet-stream;q=1.0,application/json;q=0.9".to_string(),
        )];
        self.call(
            Request {
                endpoint: "produce_block",
                method: Method::GET,
                path,
                body: Body::None,
                headers: if self.ssz_blocks { &accept } else { &[] },
                timeout: self.timeouts.block_production,
            },
            |bytes, headers| {
                let header_fork = fork_header(headers)?;
                let ssz = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/octet-stream"));
                if !ssz {
                    return ProducedBlock::from_json(bytes, header_fork).map_err(|e| e.to_string());
                }
                let fork =
                    header_fork.ok_or("an SSZ block without the Eth-Consensus-Version header")?;
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let blinded = header("eth-execution-payload-blinded") == Some("true");
                let value = |name: &str| -> Result<U256, String> {
                    header(name).map_or(Ok(U256::ZERO), |text| {
                        text.parse()
                            .map_err(|e| format!("the {name} header is not a number: {e}"))
                    })
                };
                ProducedBlock::from_ssz(
                    bytes,
                    fork,
                    blinded,
                    value("eth-execution-payload-value")?,
                    value("eth-consensus-block-value")?,
                )
                .map_err(|e| e.to_string())
            },
        )
        .await
    }

    /// `POST /eth/v2/beacon/blocks` (or `blinded_blocks`) with the signed
    /// block (or block contents) as JSON; v1 for nodes without v2.
    pub async fn publish_block(
        &self,
        fork: ForkName,
        signed: impl Serialize,
        blinded: bool,
    ) -> Result<(), ClientError> {
        let (endpoint, v2_path, v1_path) = if blinded {
            (
                "publish_blinded_block",
                "eth/v2/beacon/blinded_blocks",
                "eth/v1/beacon/blinded_blocks",
            )
        } else {
            (
                "publish_block",
                "eth/v2/beacon/blocks",
                "eth/v1/beacon/blocks",
            )
        };
        self.submit_versioned(endpoint, fork, v2_path, v1_path, true, signed)
            .await
    }

    /// `POST /eth/v2/beacon/pool/attestations`: `SingleAttestation`s from
    /// Electra on, `Attestation`s before. Falls back to v1 for pre-Electra
    /// nodes that do not serve v2.
    pub async fn submit_attestations(
        &self,
        fork: ForkName,
        attestations: impl Serialize,
    ) -> Result<(), ClientError> {
        self.submit_versioned(
            "submit_attestations",
            fork,
            "eth/v2/beacon/pool/attestations",
            "eth/v1/beacon/pool/attestations",
            !fork.electra_enabled(),
            attestations,
        )
        .await
    }

    /// `GET /eth/v2/validator/aggregate_attestation`, falling back to v1 for
    /// pre-Electra nodes that do not serve v2.
    pub async fn aggregate_attestation<E: EthSpec>(
        &self,
        fork: ForkName,
        slot: Slot,
        attestation_data_root: Root,
        committee_index: CommitteeIndex,
    ) -> Result<Attestation<E>, ClientError> {
        let query = format!(
            "?attestation_data_root={attestation_data_root}&slot={slot}&committee_index={committee_index}"
        );
        let decode = |bytes: &[u8], headers: &HeaderMap| {
            let data: Data<serde_json::Value> =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            let body_fork = fork_header(headers)?.unwrap_or(fork);
            Attestation::from_json_value(data.data, body_fork).map_err(|e| e.to_string())
        };
        let v2 = self
            .call(
                Request {
                    endpoint: "aggregate_attestation",
                    method: Method::GET,
                    path: &format!("eth/v2/validator/aggregate_attestation{query}"),
                    body: Body::None,
                    headers: &[],
                    timeout: self.timeouts.default,
                },
                decode,
            )
            .await;
        match v2 {
            Err(e) if !fork.electra_enabled() && matches!(e.status(), Some(404 | 405)) => {
                self.call(
                    Request {
                        endpoint: "aggregate_attestation",
                        method: Method::GET,
                        path: &format!("eth/v1/validator/aggregate_attestation{query}"),
                        body: Body::None,
                        headers: &[],
                        timeout: self.timeouts.default,
                    },
                    decode,
                )
                .await
            }
            other => other,
        }
    }

    /// `POST /eth/v2/validator/aggregate_and_proofs`.
    pub async fn submit_aggregate_and_proofs(
        &self,
        fork: ForkName,
        signed_aggregates: impl Serialize,
    ) -> Result<(), ClientError> {
        self.submit_versioned(
            "submit_aggregate_and_proofs",
            fork,
            "eth/v2/validator/aggregate_and_proofs",
            "eth/v1/validator/aggregate_and_proofs",
            !fork.electra_enabled(),
            signed_aggregates,
        )
        .await
    }

    /// Posts to the v2 endpoint with the fork header; a node that does not
    /// serve v2 (404/405) gets the v1 endpoint instead, where v1 can carry
    /// the body (`v1_allowed`).
    async fn submit_versioned(
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

    /// `POST /eth/v1/beacon/pool/sync_committees`.
    pub async fn submit_sync_committee_messages(
        &self,
        messages: &[SyncCommitteeMessage],
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_sync_committee_messages",
            "eth/v1/beacon/pool/sync_committees",
            messages,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `GET /eth/v1/validator/sync_committee_contribution`.
    pub async fn sync_committee_contribution<E: EthSpec>(
        &self,
        slot: Slot,
        subcommittee_index: u64,
        beacon_block_root: Root,
    ) -> Result<SyncCommitteeContribution<E>, ClientError> {
        let data: Data<SyncCommitteeContribution<E>> = self
            .get(
                "sync_committee_contribution",
                &format!(
                    "eth/v1/validator/sync_committee_contribution?slot={slot}&subcommittee_index={subcommittee_index}&beacon_block_root={beacon_block_root}"
                ),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/validator/contribution_and_proofs`.
    pub async fn submit_contribution_and_proofs<E: EthSpec>(
        &self,
        contributions: &[SignedContributionAndProof<E>],
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_contribution_and_proofs",
            "eth/v1/validator/contribution_and_proofs",
            contributions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/beacon/pool/voluntary_exits`.
    pub async fn submit_voluntary_exit(
        &self,
        exit: &SignedVoluntaryExit,
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_voluntary_exit",
            "eth/v1/beacon/pool/voluntary_exits",
            exit,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/register_validator`.
    pub async fn register_validators(
        &self,
        registrations: &[SignedValidatorRegistration],
    ) -> Result<(), ClientError> {
        self.submit(
            "register_validators",
            "eth/v1/validator/register_validator",
            registrations,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/beacon_committee_subscriptions`.
    pub async fn beacon_committee_subscriptions(
        &self,
        subscriptions: &[BeaconCommitteeSubscription],
    ) -> Result<(), ClientError> {
        self.submit(
            "beacon_committee_subscriptions",
            "eth/v1/validator/beacon_committee_subscriptions",
            subscriptions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/sync_committee_subscriptions`.
    pub async fn sync_committee_subscriptions(
        &self,
        subscriptions: &[SyncCommitteeSubscription],
    ) -> Result<(), ClientError> {
        self.submit(
            "sync_committee_subscriptions",
            "eth/v1/validator/sync_committee_subscriptions",
            subscriptions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/prepare_beacon_proposer`.
    pub async fn prepare_beacon_proposer(
        &self,
        preparations: &[ProposerPreparation],
    ) -> Result<(), ClientError> {
        self.submit(
            "prepare_beacon_proposer",
            "eth/v1/validator/prepare_beacon_proposer",
            preparations,
            &[],
            self.timeouts.default,
        )
        .await
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

/// A request body as JSON; only a type whose `Serialize` can fail (a map
/// with non-string keys) makes this an error.
fn encode(endpoint: &'static str, body: impl Serialize) -> Result<serde_json::Value, ClientError> {
    serde_json::to_value(body).map_err(|e| ClientError::Decode {
        node: String::new(),
        endpoint,
        reason: format!("cannot encode the request: {e}"),
    })
}

fn json_decode<T: DeserializeOwned>(bytes: &[u8], _: &HeaderMap) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn fork_header(headers: &HeaderMap) -> Result<Option<ForkName>, String> {
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

fn quoted_indices(indices: &[ValidatorIndex]) -> serde_json::Value {
    serde_json::Value::Array(indices.iter().map(|i| i.to_string().into()).collect())
}

/// The beacon-API error body's message (`{"code":…, "message":…}`), or the
/// start of the raw body.
fn error_message(status: StatusCode, bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: String,
        #[serde(default)]
        failures: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(error) if error.failures.is_empty() => error.message,
        Ok(error) => format!(
            "{} ({} failures: {})",
            error.message,
            error.failures.len(),
            serde_json::Value::Array(error.failures)
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.chars().take(300).collect();
            if text.trim().is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no message")
                    .to_string()
            } else {
                text
            }
        }
    }
}

/// An error's text without the URL reqwest puts in it (it may carry credentials).
pub fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut reason = if error.is_connect() {
        "cannot connect".to_string()
    } else if error.is_body() || error.is_decode() {
        "broken response body".to_string()
    } else {
        "request failed".to_string()
    };
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> ClientError {
        ClientError::Status {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            status,
            message: message.into(),
        }
    }

    fn transport() -> ClientError {
        ClientError::Transport {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            reason: "cannot connect".into(),
        }
    }

    #[test]
    fn only_unreachable_slow_or_failing_nodes_are_worth_a_retry() {
        assert!(status(503, "busy").is_retriable());
        assert!(status(500, "internal").is_retriable());
        assert!(!status(400, "bad attestation").is_retriable());
        assert!(!status(404, "not found").is_retriable());
        assert!(transport().is_retriable());
        assert!(ClientError::Timeout {
            node: "http://bn".into(),
            endpoint: "submit_attestations",
            timeout: Duration::from_secs(4),
        }
        .is_retriable());
        assert!(!ClientError::Decode {
            node: "http://bn".into(),
            endpoint: "genesis",
            reason: "eof".into(),
        }
        .is_retriable());
        // Several nodes: one that may recover is enough.
        let all = |errors| ClientError::AllFailed {
            endpoint: "submit_attestations",
            errors,
        };
        assert!(all(vec![status(400, "bad"), transport()]).is_retriable());
        assert!(!all(vec![status(400, "bad"), status(422, "bad")]).is_retriable());
    }

    #[test]
    fn a_duplicate_broadcast_is_already_known() {
        let lodestar = status(
            400,
            "Error processing attestations: ATTESTATION_ERROR_ATTESTATION_ALREADY_KNOWN",
        );
        assert!(lodestar.is_already_known());
        assert!(status(500, "PublishError.Duplicate").is_already_known());
        assert!(status(400, "attestation already known").is_already_known());
        assert!(!status(400, "busy").is_already_known());
        assert!(!transport().is_already_known());
        let all = ClientError::AllFailed {
            endpoint: "publish_block",
            errors: vec![transport(), status(500, "PublishError.Duplicate")],
        };
        assert!(all.is_already_known());
    }
}
