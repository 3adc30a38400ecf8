//! Read endpoints: genesis, config, node status, states, headers and
//! blocks, and the event stream.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use phalanx_eth::api::{Genesis, NodeVersion, Syncing};
use phalanx_eth::{EthSpec, Slot};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::error::{ApiError, ApiResult};
use super::query::Query;
use super::{data, state_data, NodeState};
use crate::beacon::infinity_signature;
use crate::beacon::node::Node;

/// Event topics a subscription may name; only `head` and `block` are ever sent.
const KNOWN_TOPICS: &[&str] = &[
    "head",
    "block",
    "chain_reorg",
    "finalized_checkpoint",
    "attestation",
    "single_attestation",
    "voluntary_exit",
    "contribution_and_proof",
    "payload_attributes",
    "blob_sidecar",
    "data_column_sidecar",
    "block_gossip",
    "bls_to_execution_change",
    "proposer_slashing",
    "attester_slashing",
    "light_client_finality_update",
    "light_client_optimistic_update",
];

pub(super) async fn genesis<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(Genesis {
        genesis_time: node.chain.genesis_time,
        genesis_validators_root: node.chain.genesis_validators_root,
        genesis_fork_version: node.chain.network.genesis_fork_version,
    })
}

pub(super) async fn spec<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(node.chain.spec())
}

pub(super) async fn fork_schedule<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(node.chain.fork_schedule())
}

pub(super) async fn deposit_contract<E: EthSpec>(State(node): NodeState<E>) -> Response {
    let network = &node.chain.network;
    data(json!({
        "chain_id": network.deposit_chain_id.to_string(),
        "address": format!("{:#x}", network.deposit_contract_address),
    }))
}

pub(super) async fn node_version() -> Response {
    data(NodeVersion {
        version: format!("phalanx-beacon-mock/v{}", env!("CARGO_PKG_VERSION")),
    })
}

pub(super) async fn syncing<E: EthSpec>(State(node): NodeState<E>) -> Response {
    data(Syncing {
        head_slot: node.current_slot(),
        sync_distance: Slot(0),
        is_syncing: false,
        is_optimistic: false,
        el_offline: false,
    })
}

fn resolve_state<E: EthSpec>(node: &Node<E>, state_id: &str) -> Result<(Slot, bool), ApiError> {
    let now_ms = node.now_ms();
    let slot = node
        .chain
        .resolve_id(state_id, now_ms, |chain, slot| chain.state_root(slot))?;
    Ok((
        slot,
        node.chain.is_finalized(slot, node.chain.slot_at(now_ms)),
    ))
}

fn resolve_block<E: EthSpec>(node: &Node<E>, block_id: &str) -> Result<(Slot, bool), ApiError> {
    let now_ms = node.now_ms();
    let slot = node
        .chain
        .resolve_id(block_id, now_ms, |chain, slot| chain.block_root(slot))?;
    Ok((
        slot,
        node.chain.is_finalized(slot, node.chain.slot_at(now_ms)),
    ))
}

pub(super) async fn validators_get<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    let query = Query::parse(query);
    let validators = node
        .chain
        .select_validators(&query.all("id"), &query.all("status"))?;
    Ok(state_data(finalized, validators))
}

pub(super) async fn validators_post<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        ids: Option<Vec<String>>,
        #[serde(default)]
        statuses: Option<Vec<String>>,
    }
    let body: Body = if body.is_empty() {
        Body {
            ids: None,
            statuses: None,
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected {{\"ids\": [...], \"statuses\": [...]}}: {e}"
            ))
        })?
    };
    let validators = node.chain.select_validators(
        &body.ids.unwrap_or_default(),
        &body.statuses.unwrap_or_default(),
    )?;
    Ok(state_data(finalized, validators))
}

pub(super) async fn validator_get<E: EthSpec>(
    State(node): NodeState<E>,
    Path((state_id, validator_id)): Path<(String, String)>,
) -> ApiResult {
    let (_, finalized) = resolve_state(&node, &state_id)?;
    let validator = node
        .chain
        .select_validators(std::slice::from_ref(&validator_id), &[])?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("no validator {validator_id}")))?;
    Ok(state_data(finalized, validator))
}

pub(super) async fn state_fork<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_state(&node, &state_id)?;
    let epoch = node.chain.epoch(slot);
    let fork = node
        .chain
        .fork_schedule()
        .into_iter()
        .rfind(|f| f.epoch <= epoch)
        .ok_or_else(|| ApiError::Internal("the fork schedule is empty".to_string()))?;
    Ok(state_data(finalized, fork))
}

pub(super) async fn finality_checkpoints<E: EthSpec>(
    State(node): NodeState<E>,
    Path(state_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_state(&node, &state_id)?;
    let (previous_justified, current_justified, finalized_checkpoint) =
        node.chain.finality(node.chain.epoch(slot));
    Ok(state_data(
        finalized,
        json!({
            "previous_justified": previous_justified,
            "current_justified": current_justified,
            "finalized": finalized_checkpoint,
        }),
    ))
}

pub(super) async fn header<E: EthSpec>(
    State(node): NodeState<E>,
    Path(block_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_block(&node, &block_id)?;
    Ok(state_data(
        finalized,
        json!({
            "root": node.chain.block_root(slot),
            "canonical": true,
            "header": {
                "message": node.chain.header(slot),
                "signature": infinity_signature(),
            },
        }),
    ))
}

pub(super) async fn block_root<E: EthSpec>(
    State(node): NodeState<E>,
    Path(block_id): Path<String>,
) -> ApiResult {
    let (slot, finalized) = resolve_block(&node, &block_id)?;
    Ok(state_data(
        finalized,
        json!({ "root": node.chain.block_root(slot) }),
    ))
}

pub(super) async fn events<E: EthSpec>(
    State(node): NodeState<E>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let topics = Query::parse(query).all("topics");
    if topics.is_empty() {
        return Err(ApiError::BadRequest(
            "query parameter topics is required".to_string(),
        ));
    }
    if let Some(unknown) = topics.iter().find(|t| !KNOWN_TOPICS.contains(&t.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown event topic {unknown:?}"
        )));
    }
    let head = topics.iter().any(|t| t == "head");
    let block = topics.iter().any(|t| t == "block");
    let slots = node.events.subscribe();
    let mut disconnect = node.shared.disconnect.subscribe();
    disconnect.mark_unchanged();
    let stream = futures::stream::unfold(
        (slots, disconnect, node),
        move |(mut slots, mut disconnect, node)| async move {
            loop {
                tokio::select! {
                    _ = disconnect.changed() => return None,
                    received = slots.recv() => match received {
                        Ok(slot) => {
                            let events = node.slot_events(slot, head, block);
                            return Some((events, (slots, disconnect, node)));
                        }
                        // A slow reader skips the slots it missed.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                }
            }
        },
    )
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
