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

// Handlers answer with a whole `Response` on every path, errors included.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use phalanx_eth::api::ProposerPreparation;
use phalanx_eth::attestation::{
    AggregateAndProof, AttestationBase, BeaconCommitteeSelection, SignedAggregateAndProofBase,
    SignedAggregateAndProofElectra, SingleAttestation, SyncCommitteeSelection,
};
use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
use phalanx_eth::block_contents::{ProducedBlockData, Signed, SignedBlockContents};
use phalanx_eth::client::{without_url, CONSENSUS_VERSION_HEADER};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{
    CommitteeIndex, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex,
};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use ssz::Encode;
use tokio::sync::{mpsc, oneshot};

use crate::core::{ApiFailure, Attester, Event, VcAttestation, VcRequest, VcResponse, VcSigned};

/// A request for the core and where its answer goes.
pub struct CoreRequest<E: EthSpec> {
    /// The event (a [`Event::Vc`]).
    pub event: Event<E>,
    /// The reply channel.
    pub reply: oneshot::Sender<Result<VcResponse<E>, ApiFailure>>,
}

/// What the validator API needs.
pub struct ApiConfig<E: EthSpec> {
    /// Where requests for the core go.
    pub core: mpsc::Sender<CoreRequest<E>>,
    /// The beacon nodes, in fallback order.
    pub beacon_nodes: Vec<String>,
    /// Group key → this operator's public share.
    pub shares: BTreeMap<PublicKeyBytes, PublicKeyBytes>,
    /// The network.
    pub network: NetworkConfig,
    /// How long a request may wait for the cluster.
    pub request_timeout: Duration,
}

struct ApiState<E: EthSpec> {
    core: mpsc::Sender<CoreRequest<E>>,
    beacon_nodes: Vec<String>,
    http: reqwest::Client,
    to_share: BTreeMap<String, String>,
    to_group: BTreeMap<String, String>,
    network: NetworkConfig,
    request_timeout: Duration,
    next_id: AtomicU64,
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
        beacon_nodes: config
            .beacon_nodes
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect(),
        http: reqwest::Client::builder()
            .build()
            .map_err(std::io::Error::other)?,
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
        next_id: AtomicU64::new(1),
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

/// The POST routes whose body may be SSZ (`application/octet-stream`), as
/// the beacon API lists them.
const SSZ_BODIES: &[&str] = &[
    "/eth/v2/beacon/pool/attestations",
    "/eth/v2/validator/aggregate_and_proofs",
    "/eth/v1/validator/register_validator",
    "/eth/v1/beacon/blocks",
    "/eth/v2/beacon/blocks",
    "/eth/v1/beacon/blinded_blocks",
    "/eth/v2/beacon/blinded_blocks",
];

/// A request body's media type, lower case, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("content-type")?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    (!media.is_empty()).then(|| media.to_ascii_lowercase())
}

/// Whether a request's body is SSZ.
fn is_ssz(headers: &HeaderMap) -> bool {
    content_type(headers).as_deref() == Some("application/octet-stream")
}

/// Refuses a POST body in a media type its route does not take with 415,
/// so that a client falls back to JSON, as the beacon API has it.
async fn media_type(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() == Method::POST {
        match content_type(request.headers()).as_deref() {
            None | Some("application/json") => {}
            Some("application/octet-stream") if SSZ_BODIES.contains(&request.uri().path()) => {}
            Some(other) => {
                return error(
                    415,
                    format!(
                        "{other} bodies are not taken at {}: send application/json",
                        request.uri().path()
                    ),
                )
            }
        }
    }
    next.run(request).await
}

/// The largest request body the API reads. A signed block with as many
/// blobs as the network ever allows, in JSON (a 128 KiB blob is twice that
/// in hex, and Fulu adds 128 cell proofs per blob), on top of room for a
/// large client's lists of attestations or registrations.
fn body_limit(network: &NetworkConfig) -> usize {
    const FLOOR: usize = 16 << 20;
    const PER_BLOB: usize = 300 << 10;
    let blobs = usize::try_from(network.max_blobs_per_block_ever()).unwrap_or(usize::MAX);
    FLOOR.saturating_add(blobs.saturating_mul(PER_BLOB))
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
    async fn ask(&self, request: VcRequest<E>) -> Result<VcResponse<E>, ApiFailure> {
        let (reply, answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .core
            .send(CoreRequest {
                event: Event::Vc { id, request },
                reply,
            })
            .await;
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
            .fork_at(slot.epoch(self.network.slots_per_epoch()))
            .map_err(|name| error(500, format!("fork {name} is unknown to this build")))
    }

    /// Sends a request to the beacon nodes in order; the first that answers
    /// (with anything but a 5xx or a transport error) wins.
    async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, Response> {
        let mut last = String::from("no beacon node configured");
        for base in &self.beacon_nodes {
            let url = format!("{base}{path_and_query}");
            let mut request = self.http.request(method.clone(), &url);
            for name in ["accept", "content-type", CONSENSUS_VERSION_HEADER] {
                if let Some(value) = headers.get(name) {
                    request = request.header(name, value.as_bytes());
                }
            }
            if !body.is_empty() {
                request = request.body(body.clone());
            }
            match request.send().await {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) => last = format!("{base} answered {}", response.status()),
                Err(e) => last = format!("{base}: {}", without_url(&e)),
            }
        }
        Err(error(503, format!("no beacon node answered: {last}")))
    }

    /// Forwards and returns the JSON answer, or the node's own error.
    async fn forward_json(
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

    /// Replaces group keys by this operator's shares in `pubkey` fields.
    fn keys_to_shares(&self, value: &mut Json) {
        match value {
            Json::Object(map) => {
                for (key, field) in map.iter_mut() {
                    if key == "pubkey" {
                        if let Some(share) = field.as_str().and_then(|k| self.to_share.get(k)) {
                            *field = Json::String(share.clone());
                        }
                    } else {
                        self.keys_to_shares(field);
                    }
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|v| self.keys_to_shares(v)),
            _ => {}
        }
    }

    /// A validator id from the client: a share key becomes its group key.
    fn id_to_group(&self, id: &str) -> String {
        self.to_group
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

#[derive(Deserialize)]
struct AttestationDataQuery {
    slot: String,
    committee_index: String,
}

async fn attestation_data<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<AttestationDataQuery>,
) -> Response {
    let (Ok(slot), Ok(committee)) = (
        query.slot.parse::<u64>(),
        query.committee_index.parse::<u64>(),
    ) else {
        return error(400, "slot and committee_index must be unsigned integers");
    };
    let request = VcRequest::AttestationData {
        slot: Slot(slot),
        committee_index: CommitteeIndex(committee),
    };
    match state.ask(request).await {
        Ok(VcResponse::AttestationData(data)) => {
            if wants_ssz(&headers) {
                ssz_response(data.as_ssz_bytes(), None)
            } else {
                axum::Json(json!({"data": data})).into_response()
            }
        }
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(f) => failure(f),
    }
}

fn wants_ssz(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept.contains("application/octet-stream") && !accept.starts_with("application/json")
        })
}

fn ssz_response(bytes: Vec<u8>, fork: Option<ForkName>) -> Response {
    let mut response = (
        [("content-type", "application/octet-stream")],
        Body::from(bytes),
    )
        .into_response();
    if let Some(fork) = fork {
        if let Ok(value) = HeaderValue::from_str(fork.as_str()) {
            response
                .headers_mut()
                .insert(CONSENSUS_VERSION_HEADER, value);
        }
    }
    response
}

fn parse_list(body: &Bytes) -> Result<Vec<Json>, Response> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Array(items)) => Ok(items),
        Ok(_) => Err(error(400, "the body must be a JSON array")),
        Err(e) => Err(error(400, format!("the body is not valid JSON: {e}"))),
    }
}

async fn submit_attestations_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    submit_attestations::<E>(state, body, false, false).await
}

async fn submit_attestations_v2<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let electra = match required_fork(&headers) {
        Ok(fork) => fork.electra_enabled(),
        Err(response) => return response,
    };
    submit_attestations::<E>(state, body, electra, is_ssz(&headers)).await
}

/// The fork a v2 submission names in its consensus-version header, which
/// it must carry.
fn required_fork(headers: &HeaderMap) -> Result<ForkName, Response> {
    match headers
        .get(CONSENSUS_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(name) => name
            .parse::<ForkName>()
            .map_err(|e| error(400, format!("{CONSENSUS_VERSION_HEADER}: {e}"))),
        None => Err(error(
            400,
            format!("the {CONSENSUS_VERSION_HEADER} header is required"),
        )),
    }
}

/// The items of a list body: from JSON one by one, so that a bad item is
/// named, or from SSZ (`List[T, N]`) all at once.
fn list_items<T, U>(
    body: &Bytes,
    ssz: bool,
    what: &str,
    convert: impl Fn(T) -> Result<U, String>,
) -> Result<Vec<Result<U, String>>, Response>
where
    T: serde::de::DeserializeOwned + ssz::Decode,
{
    if ssz {
        let items = <Vec<T> as ssz::Decode>::from_ssz_bytes(body).map_err(|e| {
            error(
                400,
                format!("the body is not the SSZ of a list of {what}: {e:?}"),
            )
        })?;
        return Ok(items.into_iter().map(&convert).collect());
    }
    Ok(parse_list(body)?
        .into_iter()
        .map(|item| {
            serde_json::from_value::<T>(item)
                .map_err(|e| format!("not a {what}: {e}"))
                .and_then(&convert)
        })
        .collect())
}

/// An attestation of the Electra layout as the core takes it.
fn single_attestation(a: SingleAttestation) -> Result<VcAttestation, String> {
    Ok(VcAttestation {
        data: a.data,
        attester: Attester::Index(a.attester_index),
        committee_index: a.committee_index,
        signature: a.signature,
    })
}

/// An attestation of the phase 0 layout as the core takes it: it must name
/// one attester.
fn base_attestation<E: EthSpec>(a: AttestationBase<E>) -> Result<VcAttestation, String> {
    let mut set = a.aggregation_bits.iter().enumerate().filter(|(_, b)| *b);
    match (set.next(), set.next()) {
        (Some((position, _)), None) => Ok(VcAttestation {
            data: a.data,
            attester: Attester::Position(position as u64),
            committee_index: a.data.index,
            signature: a.signature,
        }),
        _ => Err(
            "an attestation from a validator client has exactly one aggregation bit set"
                .to_string(),
        ),
    }
}

async fn submit_attestations<E: EthSpec>(
    state: Shared<E>,
    body: Bytes,
    electra: bool,
    ssz: bool,
) -> Response {
    let items = if electra {
        list_items(&body, ssz, "SingleAttestation", single_attestation)
    } else {
        list_items(&body, ssz, "Attestation", base_attestation::<E>)
    };
    let items = match items {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut attestations = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (i, parsed) in items.into_iter().enumerate() {
        match parsed {
            Ok(attestation) => {
                if let Ok(fork) = state.fork_at(attestation.data.slot) {
                    if fork.electra_enabled() != electra {
                        failures.push((
                            i,
                            format!("the {fork} fork takes the other attestation layout"),
                        ));
                        continue;
                    }
                }
                attestations.push((i, attestation));
            }
            Err(reason) => failures.push((i, reason)),
        }
    }
    if !failures.is_empty() {
        return failure(ApiFailure {
            status: 400,
            message: "some attestations are malformed; none were accepted".into(),
            failures,
        });
    }
    let positions: Vec<usize> = attestations.iter().map(|(i, _)| *i).collect();
    let request = VcRequest::Attestations(attestations.into_iter().map(|(_, a)| a).collect());
    answer_submission(state.ask(request).await, &positions)
}

fn answer_submission<E: EthSpec>(
    result: Result<VcResponse<E>, ApiFailure>,
    positions: &[usize],
) -> Response {
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(mut f) => {
            for (index, _) in &mut f.failures {
                *index = positions.get(*index).copied().unwrap_or(*index);
            }
            failure(f)
        }
    }
}

async fn submit_sync_messages<E: EthSpec>(State(state): State<Shared<E>>, body: Bytes) -> Response {
    let items = match parse_list(&body) {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut messages = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<SyncCommitteeMessage>(item) {
            Ok(message) => messages.push(message),
            Err(e) => failures.push((i, format!("not a SyncCommitteeMessage: {e}"))),
        }
    }
    if !failures.is_empty() {
        return failure(ApiFailure {
            status: 400,
            message: "some sync committee messages are malformed; none were accepted".into(),
            failures,
        });
    }
    let positions: Vec<usize> = (0..messages.len()).collect();
    answer_submission(
        state.ask(VcRequest::SyncMessages(messages)).await,
        &positions,
    )
}

/// Parses a JSON array of `T`, naming every item that does not parse.
fn parse_items<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    what: &str,
) -> Result<Vec<T>, Response> {
    let items = parse_list(body)?
        .into_iter()
        .map(|item| serde_json::from_value::<T>(item).map_err(|e| format!("not a {what}: {e}")))
        .collect();
    all_items(items, what)
}

/// Every item, or a 400 naming each that did not parse.
fn all_items<T>(items: Vec<Result<T, String>>, what: &str) -> Result<Vec<T>, Response> {
    let mut parsed = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Ok(value) => parsed.push(value),
            Err(reason) => failures.push((i, reason)),
        }
    }
    if failures.is_empty() {
        Ok(parsed)
    } else {
        Err(failure(ApiFailure {
            status: 400,
            message: format!("some items are not a {what}; none were accepted"),
            failures,
        }))
    }
}

async fn beacon_committee_selections<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    let selections =
        match parse_items::<BeaconCommitteeSelection>(&body, "BeaconCommitteeSelection") {
            Ok(selections) => selections,
            Err(response) => return response,
        };
    match state
        .ask(VcRequest::BeaconCommitteeSelections(selections))
        .await
    {
        Ok(VcResponse::BeaconCommitteeSelections(combined)) => {
            axum::Json(json!({ "data": combined })).into_response()
        }
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(f) => failure(f),
    }
}

async fn sync_committee_selections<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    let selections = match parse_items::<SyncCommitteeSelection>(&body, "SyncCommitteeSelection") {
        Ok(selections) => selections,
        Err(response) => return response,
    };
    match state
        .ask(VcRequest::SyncCommitteeSelections(selections))
        .await
    {
        Ok(VcResponse::SyncCommitteeSelections(combined)) => {
            axum::Json(json!({ "data": combined })).into_response()
        }
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(f) => failure(f),
    }
}

/// A voluntary exit signed with this operator's share: it is broadcast
/// once enough operators have signed the same exit.
async fn voluntary_exit<E: EthSpec>(State(state): State<Shared<E>>, body: Bytes) -> Response {
    let exit = match serde_json::from_slice::<SignedVoluntaryExit>(&body) {
        Ok(exit) => exit,
        Err(e) => return error(400, format!("not a SignedVoluntaryExit: {e}")),
    };
    match state.ask(VcRequest::VoluntaryExits(vec![exit])).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(mut f) => {
            if let Some((_, reason)) = f.failures.pop() {
                f.message = reason;
            }
            failure(f)
        }
    }
}

/// Builder registrations: the client's own (naming its share) are checked
/// and acknowledged — the cluster submits the lock's; partials of a new
/// registration naming the group key are combined through the cluster.
async fn register_validator<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const WHAT: &str = "SignedValidatorRegistration";
    let registrations =
        match list_items::<SignedValidatorRegistration, _>(&body, is_ssz(&headers), WHAT, Ok)
            .and_then(|items| all_items(items, WHAT))
        {
            Ok(registrations) => registrations,
            Err(response) => return response,
        };
    let positions: Vec<usize> = (0..registrations.len()).collect();
    answer_submission(
        state.ask(VcRequest::Registrations(registrations)).await,
        &positions,
    )
}

/// Fee recipients go to the beacon node as the lock says for the
/// cluster's validators: every operator's node builds the same payloads,
/// and the validity check refuses a block that pays anyone else.
async fn prepare_beacon_proposer<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut items = match parse_items::<ProposerPreparation>(&body, "ProposerPreparation") {
        Ok(items) => items,
        Err(response) => return response,
    };
    let indices = items.iter().map(|p| p.validator_index).collect();
    if let Ok(VcResponse::FeeRecipients(locked)) =
        state.ask(VcRequest::FeeRecipients(indices)).await
    {
        for (item, locked) in items.iter_mut().zip(locked) {
            if let Some(locked) = locked {
                if item.fee_recipient != locked {
                    tracing::warn!(
                        validator = %item.validator_index,
                        asked = %item.fee_recipient,
                        lock = %locked,
                        "the validator client asks for another fee recipient than the lock's; the lock's is used"
                    );
                    item.fee_recipient = locked;
                }
            }
        }
    }
    forward_list(
        &state,
        "/eth/v1/validator/prepare_beacon_proposer",
        &headers,
        &items,
    )
    .await
}

/// Posts a list the node rewrote to the beacon node; its answer goes back
/// to the client as it is.
async fn forward_list<E: EthSpec>(
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

#[derive(Deserialize)]
struct BlockQuery {
    randao_reveal: String,
    graffiti: Option<String>,
    builder_boost_factor: Option<String>,
}

async fn produce_block_v3<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(slot): Path<String>,
    Query(query): Query<BlockQuery>,
    headers: HeaderMap,
) -> Response {
    produce_block(state, slot, query, wants_ssz(&headers), true).await
}

async fn produce_block_v2<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(slot): Path<String>,
    Query(query): Query<BlockQuery>,
    headers: HeaderMap,
) -> Response {
    produce_block(state, slot, query, wants_ssz(&headers), false).await
}

/// The block the cluster decides for a slot, after the client's randao
/// reveal has combined with its peers'. v2 answers full blocks only, so
/// the node then asks its beacon node for a local payload. As SSZ the
/// body is the block (or its contents) alone and the rest are headers.
async fn produce_block<E: EthSpec>(
    state: Shared<E>,
    slot: String,
    query: BlockQuery,
    ssz: bool,
    v3: bool,
) -> Response {
    let Ok(slot) = slot.parse::<u64>() else {
        return error(400, "the slot must be an unsigned integer");
    };
    let Ok(randao_reveal) = query.randao_reveal.parse::<SignatureBytes>() else {
        return error(
            400,
            "randao_reveal must be a 0x-prefixed 96-byte hex string",
        );
    };
    // The beacon API writes graffiti as 32 bytes of hex; Lodestar 1.5.1
    // sends its text, which its own beacon node pads with zeros: take both.
    let graffiti = match query.graffiti.as_deref() {
        None => None,
        Some(text) => match text.parse::<Root>() {
            Ok(graffiti) => Some(graffiti),
            Err(_) if !text.starts_with("0x") && text.len() <= 32 => {
                let mut bytes = [0u8; 32];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Some(Root::from(bytes))
            }
            Err(_) => {
                return error(
                    400,
                    "graffiti must be 32 bytes of 0x-prefixed hex or at most 32 bytes of text",
                )
            }
        },
    };
    let builder_boost_factor = match query.builder_boost_factor.as_deref().map(str::parse::<u64>) {
        _ if !v3 => Some(0),
        None => None,
        Some(Ok(factor)) => Some(factor),
        Some(Err(_)) => return error(400, "builder_boost_factor must be an unsigned integer"),
    };
    let request = VcRequest::ProduceBlock {
        slot: Slot(slot),
        randao_reveal,
        graffiti,
        builder_boost_factor,
    };
    let block = match state.ask(request).await {
        Ok(VcResponse::Block(block)) => block,
        Ok(other) => return error(500, format!("unexpected answer {other:?}")),
        Err(f) => return failure(f),
    };
    let blinded = matches!(block.data, ProducedBlockData::Blinded(_));
    if !v3 && blinded {
        return error(
            500,
            "the cluster decided a blinded block, which /eth/v2/validator/blocks cannot carry: use v3",
        );
    }
    let mut response = if ssz {
        ssz_response(block.data_as_ssz_bytes(), None)
    } else if v3 {
        axum::Json(block.to_json()).into_response()
    } else {
        // `block_value` is what Lodestar's clients before v3 compare local
        // and builder blocks by; others ignore it.
        let body = block.to_json();
        axum::Json(json!({
            "version": body["version"],
            "data": body["data"],
            "block_value": block.execution_payload_value.to_string(),
        }))
        .into_response()
    };
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(CONSENSUS_VERSION_HEADER, block.fork.as_str().to_string());
    if v3 {
        set("eth-execution-payload-blinded", blinded.to_string());
        set(
            "eth-execution-payload-value",
            block.execution_payload_value.to_string(),
        );
        set(
            "eth-consensus-block-value",
            block.consensus_block_value.to_string(),
        );
    }
    response
}

/// `POST /eth/v{1,2}/beacon/{blocks,blinded_blocks}`.
async fn publish<E: EthSpec, const BLINDED: bool, const V2: bool>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    publish_block(state, headers, body, BLINDED, V2).await
}

/// The slot, root and signature of a signed block in a publish body, JSON
/// or SSZ, full (with or without contents) or blinded.
fn signed_block_parts<E: EthSpec>(
    body: &[u8],
    ssz: bool,
    fork: ForkName,
    blinded: bool,
) -> Result<(Slot, Root, SignatureBytes), String> {
    let json = || {
        serde_json::from_slice::<Json>(body).map_err(|e| format!("the body is not valid JSON: {e}"))
    };
    if blinded {
        let signed = if ssz {
            Signed::<BlindedBeaconBlock<E>>::from_ssz_bytes(body, fork)
        } else {
            Signed::<BlindedBeaconBlock<E>>::from_json_value(json()?, fork)
        }
        .map_err(|e| e.to_string())?;
        let block = &signed.message;
        return Ok((block.slot(), block.tree_hash_root(), signed.signature));
    }
    if fork >= ForkName::Deneb {
        let contents = if ssz {
            SignedBlockContents::<E>::from_ssz_bytes(body, fork)
        } else {
            SignedBlockContents::<E>::from_json_value(json()?, fork)
        }
        .map_err(|e| e.to_string())?;
        let block = &contents.signed_block;
        return Ok((
            block.message.slot(),
            block.message.tree_hash_root(),
            block.signature,
        ));
    }
    let signed = if ssz {
        Signed::<BeaconBlock<E>>::from_ssz_bytes(body, fork)
    } else {
        Signed::<BeaconBlock<E>>::from_json_value(json()?, fork)
    }
    .map_err(|e| e.to_string())?;
    let block = &signed.message;
    Ok((block.slot(), block.tree_hash_root(), signed.signature))
}

/// The slot a v1 JSON publish body carries (its fork follows from it).
fn slot_in_json(body: &[u8]) -> Option<Slot> {
    let value: Json = serde_json::from_slice(body).ok()?;
    let message = value
        .pointer("/signed_block/message")
        .or_else(|| value.pointer("/message"))?;
    message.get("slot")?.as_str()?.parse().ok().map(Slot)
}

/// A signed block from the validator client: its signature counts towards
/// the cluster's once the block is the decided one.
async fn publish_block<E: EthSpec>(
    state: Shared<E>,
    headers: HeaderMap,
    body: Bytes,
    blinded: bool,
    v2: bool,
) -> Response {
    let ssz = is_ssz(&headers);
    let header_fork = headers
        .get(CONSENSUS_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::parse::<ForkName>);
    let fork = match header_fork {
        Some(Ok(fork)) => fork,
        Some(Err(e)) => return error(400, format!("{CONSENSUS_VERSION_HEADER}: {e}")),
        None if v2 || ssz => {
            return error(
                400,
                format!("the {CONSENSUS_VERSION_HEADER} header is required"),
            )
        }
        None => match slot_in_json(&body).map(|slot| state.fork_at(slot)) {
            Some(Ok(fork)) => fork,
            Some(Err(response)) => return response,
            None => return error(400, "the body is not a signed block"),
        },
    };
    let (slot, block_root, signature) = match signed_block_parts::<E>(&body, ssz, fork, blinded) {
        Ok(parts) => parts,
        Err(e) => return error(400, format!("not a signed {fork} block: {e}")),
    };
    let request = VcRequest::PublishBlock {
        slot,
        block_root,
        signature,
    };
    match state.ask(request).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(f) => failure(f),
    }
}

#[derive(Deserialize)]
struct AggregateQuery {
    attestation_data_root: String,
    slot: String,
    committee_index: Option<String>,
}

async fn aggregate_attestation_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<AggregateQuery>,
) -> Response {
    aggregate_attestation(state, headers, query, false).await
}

async fn aggregate_attestation_v2<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<AggregateQuery>,
) -> Response {
    aggregate_attestation(state, headers, query, true).await
}

/// The decided aggregate of a committee: v1 names the committee by the
/// data's index (before Electra), v2 by `committee_index`.
async fn aggregate_attestation<E: EthSpec>(
    state: Shared<E>,
    headers: HeaderMap,
    query: AggregateQuery,
    v2: bool,
) -> Response {
    let Ok(slot) = query.slot.parse::<u64>() else {
        return error(400, "slot must be an unsigned integer");
    };
    let Ok(data_root) = query.attestation_data_root.parse::<Root>() else {
        return error(
            400,
            "attestation_data_root must be a 0x-prefixed 32-byte hex string",
        );
    };
    let committee_index = match query.committee_index.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(index)) => Some(CommitteeIndex(index)),
        Some(Err(_)) => return error(400, "committee_index must be an unsigned integer"),
    };
    let slot = Slot(slot);
    let fork = match state.fork_at(slot) {
        Ok(fork) => fork,
        Err(response) => return response,
    };
    if v2 && committee_index.is_none() {
        return error(400, "committee_index is required");
    }
    if !v2 && fork.electra_enabled() {
        return error(
            400,
            format!("from Electra on aggregates are served by /eth/v2/validator/aggregate_attestation (slot {slot} is in {fork})"),
        );
    }
    let request = VcRequest::AggregateAttestation {
        slot,
        data_root,
        committee_index,
    };
    match state.ask(request).await {
        Ok(VcResponse::Aggregate(aggregate)) => versioned_response(
            &headers,
            aggregate.as_ssz_bytes(),
            json!(aggregate),
            v2.then_some(fork),
        ),
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(f) => failure(f),
    }
}

/// A `{"data": …}` body (with `version` and the fork header when `fork` is
/// given), or the SSZ bytes when the client prefers them.
fn versioned_response(
    headers: &HeaderMap,
    ssz: Vec<u8>,
    data: Json,
    fork: Option<ForkName>,
) -> Response {
    if wants_ssz(headers) {
        return ssz_response(ssz, fork);
    }
    let mut response = match fork {
        Some(fork) => axum::Json(json!({"version": fork.as_str(), "data": data})).into_response(),
        None => axum::Json(json!({ "data": data })).into_response(),
    };
    if let Some(value) = fork.and_then(|f| HeaderValue::from_str(f.as_str()).ok()) {
        response
            .headers_mut()
            .insert(CONSENSUS_VERSION_HEADER, value);
    }
    response
}

async fn aggregate_and_proofs_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    aggregate_and_proofs(state, body, None, false).await
}

async fn aggregate_and_proofs_v2<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fork = match required_fork(&headers) {
        Ok(fork) => fork,
        Err(response) => return response,
    };
    aggregate_and_proofs(state, body, Some(fork), is_ssz(&headers)).await
}

/// Signed aggregates in the layout of `fork` (v1: the phase 0 layout).
async fn aggregate_and_proofs<E: EthSpec>(
    state: Shared<E>,
    body: Bytes,
    fork: Option<ForkName>,
    ssz: bool,
) -> Response {
    let electra = fork.is_some_and(ForkName::electra_enabled);
    const WHAT: &str = "SignedAggregateAndProof";
    let items = if electra {
        list_items(&body, ssz, WHAT, |s: SignedAggregateAndProofElectra<E>| {
            Ok(VcSigned {
                message: AggregateAndProof::Electra(s.message),
                signature: s.signature,
            })
        })
    } else {
        list_items(&body, ssz, WHAT, |s: SignedAggregateAndProofBase<E>| {
            Ok(VcSigned {
                message: AggregateAndProof::Base(s.message),
                signature: s.signature,
            })
        })
    };
    let items = match items {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut signed = Vec::with_capacity(items.len());
    let mut failures = Vec::new();
    for (i, parsed) in items.into_iter().enumerate() {
        match parsed {
            Ok(item) => {
                let slot = match &item.message {
                    AggregateAndProof::Base(m) => m.aggregate.data.slot,
                    AggregateAndProof::Electra(m) => m.aggregate.data.slot,
                };
                match state.fork_at(slot) {
                    Ok(at) if at.electra_enabled() != electra => failures.push((
                        i,
                        format!("slot {slot} is in {at}, which takes the other aggregate layout"),
                    )),
                    _ => signed.push(item),
                }
            }
            Err(reason) => failures.push((i, reason)),
        }
    }
    if !failures.is_empty() {
        return failure(ApiFailure {
            status: 400,
            message: "some aggregates are malformed; none were accepted".into(),
            failures,
        });
    }
    let positions: Vec<usize> = (0..signed.len()).collect();
    answer_submission(
        state.ask(VcRequest::AggregateAndProofs(signed)).await,
        &positions,
    )
}

#[derive(Deserialize)]
struct ContributionQuery {
    slot: String,
    subcommittee_index: String,
    beacon_block_root: String,
}

/// The decided contribution of a subcommittee. The cluster agrees on one
/// head per slot; a validator client whose own head differs still gets the
/// cluster's, which is what its aggregate will carry.
async fn sync_committee_contribution<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<ContributionQuery>,
) -> Response {
    let (Ok(slot), Ok(subcommittee_index)) = (
        query.slot.parse::<u64>(),
        query.subcommittee_index.parse::<u64>(),
    ) else {
        return error(400, "slot and subcommittee_index must be unsigned integers");
    };
    if query.beacon_block_root.parse::<Root>().is_err() {
        return error(
            400,
            "beacon_block_root must be a 0x-prefixed 32-byte hex string",
        );
    }
    let request = VcRequest::SyncContribution {
        slot: Slot(slot),
        subcommittee_index,
    };
    match state.ask(request).await {
        Ok(VcResponse::Contribution(contribution)) => versioned_response(
            &headers,
            contribution.as_ssz_bytes(),
            json!(contribution),
            None,
        ),
        Ok(other) => error(500, format!("unexpected answer {other:?}")),
        Err(f) => failure(f),
    }
}

async fn contribution_and_proofs<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    let signed =
        match parse_items::<SignedContributionAndProof<E>>(&body, "SignedContributionAndProof") {
            Ok(signed) => signed,
            Err(response) => return response,
        };
    let positions: Vec<usize> = (0..signed.len()).collect();
    answer_submission(
        state.ask(VcRequest::ContributionAndProofs(signed)).await,
        &positions,
    )
}

/// Committee subscriptions go to the beacon node with `is_aggregator` as
/// the cluster's combined selection proof says (a validator client that
/// is not aware of distributed validators derives it from its own share's
/// proof, which means nothing).
async fn beacon_committee_subscriptions<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut items = match parse_list(&body) {
        Ok(items) => items,
        Err(response) => return response,
    };
    let mut queries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match (field("validator_index"), field("slot")) {
            (Some(index), Some(slot)) => queries.push((Slot(slot), ValidatorIndex(index))),
            _ => {
                return failure(ApiFailure {
                    status: 400,
                    message: "a subscription needs validator_index and slot as quoted integers"
                        .into(),
                    failures: vec![(i, "missing or malformed validator_index or slot".into())],
                })
            }
        }
    }
    if let Ok(VcResponse::Aggregators(flags)) = state.ask(VcRequest::Aggregators(queries)).await {
        for (item, flag) in items.iter_mut().zip(flags) {
            if let Some(flag) = flag {
                item["is_aggregator"] = Json::Bool(flag);
            }
        }
    }
    forward_list(
        &state,
        "/eth/v1/validator/beacon_committee_subscriptions",
        &headers,
        &items,
    )
    .await
}

async fn duties_post<E: EthSpec>(
    State(state): State<Shared<E>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let indices = match serde_json::from_slice::<Json>(&body) {
        Ok(value @ Json::Array(_)) => value,
        Ok(_) => return error(400, "the body must be a JSON array of validator indices"),
        Err(e) => return error(400, format!("the body is not valid JSON: {e}")),
    };
    match state
        .forward_json(Method::POST, uri.path(), Some(indices))
        .await
    {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

async fn duties_get<E: EthSpec>(State(state): State<Shared<E>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    match state.forward_json(Method::GET, path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

async fn validators_get<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(state_id): Path<String>,
    // Pairs, not a struct: `id` and `status` come repeated (`id=1&id=2`,
    // as Lodestar sends them) or comma-separated.
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let mut path = format!("/eth/v1/beacon/states/{state_id}/validators");
    // Forwarded repeated, the array form every beacon node accepts
    // (Lodestar 1.5.1 answers a comma-separated `id` with no validators).
    let mut params = Vec::new();
    for (key, values) in &query {
        if key != "id" && key != "status" {
            continue;
        }
        for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let value = if key == "id" {
                state.id_to_group(value)
            } else {
                value.to_string()
            };
            params.push(format!("{key}={value}"));
        }
    }
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    match state.forward_json(Method::GET, &path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

async fn validators_post<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(state_id): Path<String>,
    body: Bytes,
) -> Response {
    let mut request: Json = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value @ Json::Object(_)) => value,
            Ok(_) => return error(400, "the body must be a JSON object"),
            Err(e) => return error(400, format!("the body is not valid JSON: {e}")),
        }
    };
    if let Some(Json::Array(ids)) = request.get_mut("ids") {
        for id in ids.iter_mut() {
            if let Some(text) = id.as_str() {
                *id = Json::String(state.id_to_group(text));
            }
        }
    }
    let path = format!("/eth/v1/beacon/states/{state_id}/validators");
    match state.forward_json(Method::POST, &path, Some(request)).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

async fn validator_get<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path((state_id, id)): Path<(String, String)>,
) -> Response {
    let path = format!(
        "/eth/v1/beacon/states/{state_id}/validators/{}",
        state.id_to_group(&id)
    );
    match state.forward_json(Method::GET, &path, None).await {
        Ok(mut value) => {
            state.keys_to_shares(&mut value);
            axum::Json(value).into_response()
        }
        Err(response) => response,
    }
}

/// Read-only endpoints proxied unchanged (prefixes of GET paths).
const READ_ONLY: &[&str] = &[
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
const UNSIGNED_POSTS: &[&str] = &[
    "/eth/v1/validator/prepare_beacon_proposer",
    "/eth/v1/validator/beacon_committee_subscriptions",
    "/eth/v1/validator/sync_committee_subscriptions",
    "/eth/v1/validator/liveness/",
];

async fn fallback<E: EthSpec>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssz_is_served_only_when_preferred() {
        let mut headers = HeaderMap::new();
        assert!(!wants_ssz(&headers));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/octet-stream"),
        );
        assert!(wants_ssz(&headers));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, application/octet-stream;q=0.9"),
        );
        assert!(!wants_ssz(&headers));
    }

    fn single(index: u64) -> SingleAttestation {
        SingleAttestation {
            committee_index: CommitteeIndex(3),
            attester_index: ValidatorIndex(index),
            data: phalanx_eth::attestation::AttestationData {
                slot: Slot(9),
                index: CommitteeIndex(0),
                beacon_block_root: Root::repeat_byte(1),
                source: phalanx_eth::attestation::Checkpoint {
                    epoch: phalanx_eth::Epoch(0),
                    root: Root::repeat_byte(2),
                },
                target: phalanx_eth::attestation::Checkpoint {
                    epoch: phalanx_eth::Epoch(1),
                    root: Root::repeat_byte(3),
                },
            },
            signature: SignatureBytes::repeat_byte(index as u8),
        }
    }

    #[test]
    fn a_list_body_reads_the_same_from_json_and_ssz() {
        let list = vec![single(5), single(6)];
        let json = Bytes::from(serde_json::to_vec(&list).expect("json"));
        let ssz = Bytes::from(ssz::Encode::as_ssz_bytes(&list));
        let read = |body: &Bytes, ssz: bool| -> Vec<String> {
            list_items(body, ssz, "SingleAttestation", single_attestation)
                .unwrap_or_else(|_| panic!("reads"))
                .into_iter()
                .map(|item| format!("{:?}", item.expect("an attestation")))
                .collect()
        };
        let from_json = read(&json, false);
        assert_eq!(from_json.len(), 2);
        assert!(
            from_json[1].contains("Index(ValidatorIndex(6))"),
            "{from_json:?}"
        );
        assert_eq!(from_json, read(&ssz, true));

        // Phase 0 attestations from a client name one attester each.
        type Base = AttestationBase<phalanx_eth::MinimalEthSpec>;
        let base = |bits: &[usize]| {
            let mut aggregation_bits = ssz_types::BitList::with_capacity(8).expect("bits");
            for &bit in bits {
                aggregation_bits.set(bit, true).expect("a bit");
            }
            Base {
                aggregation_bits,
                data: single(1).data,
                signature: SignatureBytes::repeat_byte(7),
            }
        };
        let ssz = Bytes::from(ssz::Encode::as_ssz_bytes(&vec![base(&[2]), base(&[1, 4])]));
        let items = list_items(
            &ssz,
            true,
            "Attestation",
            base_attestation::<phalanx_eth::MinimalEthSpec>,
        )
        .unwrap_or_else(|_| panic!("reads"));
        assert!(matches!(
            &items[0],
            Ok(VcAttestation {
                attester: Attester::Position(2),
                ..
            })
        ));
        assert!(items[1]
            .as_ref()
            .is_err_and(|e| e.contains("exactly one aggregation bit")));

        // Bytes that are no such list are refused whole.
        let refused = list_items(
            &Bytes::from_static(&[1, 2, 3]),
            true,
            "SingleAttestation",
            single_attestation,
        )
        .expect_err("refused");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_body_in_a_media_type_its_route_does_not_take_gets_415() {
        let app = Router::new()
            .route(
                "/eth/v2/beacon/pool/attestations",
                post(|| async { "taken" }),
            )
            .route(
                "/eth/v1/beacon/pool/sync_committees",
                post(|| async { "taken" }),
            )
            .layer(axum::middleware::from_fn(media_type));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let post = |path: &str, media: Option<&'static str>| {
            let mut request = http.post(format!("http://{address}{path}")).body("[]");
            if let Some(media) = media {
                request = request.header("content-type", media);
            }
            request.send()
        };
        let cases = [
            (
                "/eth/v2/beacon/pool/attestations",
                Some("application/octet-stream"),
                200,
            ),
            (
                "/eth/v1/beacon/pool/sync_committees",
                Some("application/octet-stream"),
                415,
            ),
            (
                "/eth/v1/beacon/pool/sync_committees",
                Some("Application/JSON; charset=utf-8"),
                200,
            ),
            ("/eth/v2/beacon/pool/attestations", Some("text/plain"), 415),
            ("/eth/v1/beacon/pool/sync_committees", None, 200),
            ("/eth/v1/beacon/pool/sync_committees", Some(""), 200),
        ];
        for (path, media, expected) in cases {
            let response = post(path, media).await.expect("answers");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, expected, "{path} {media:?}: {text}");
            if expected == 415 {
                assert!(text.contains("send application/json"), "{text}");
            }
        }
        server.abort();
    }

    #[test]
    fn a_block_with_every_blob_fits_the_body_limit() {
        let mainnet = NetworkConfig::built_in("mainnet").expect("mainnet");
        let blobs = mainnet.max_blobs_per_block_ever() as usize;
        // A Fulu block's blobs and cell proofs as JSON hex strings.
        let per_blob = 2 * 131_072 + 4 + 128 * (2 * 48 + 4);
        assert!(body_limit(&mainnet) > blobs * per_blob + (2 << 20));
        assert!(body_limit(&mainnet) < 64 << 20);
    }

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
