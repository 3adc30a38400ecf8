//! Blocks: the block the cluster decides for a slot (v3, full or
//! blinded; v2, full only), and the validator client's signed block, whose
//! signature counts towards the cluster's once the block is the decided
//! one.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
use phalanx_eth::block_contents::{ProducedBlockData, Signed, SignedBlockContents};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::{EthSpec, ForkName, Root, SignatureBytes, Slot};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::media::{is_ssz, ssz_response, wants_ssz};
use super::{error, failure, Shared};
use crate::core::{VcRequest, VcResponse};

#[derive(Deserialize)]
pub(super) struct BlockQuery {
    randao_reveal: String,
    graffiti: Option<String>,
    builder_boost_factor: Option<String>,
}

pub(super) async fn produce_block_v3<E: EthSpec>(
    State(state): State<Shared<E>>,
    Path(slot): Path<String>,
    Query(query): Query<BlockQuery>,
    headers: HeaderMap,
) -> Response {
    produce_block(state, slot, query, wants_ssz(&headers), true).await
}

pub(super) async fn produce_block_v2<E: EthSpec>(
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
pub(super) async fn produce_block<E: EthSpec>(
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
pub(super) async fn publish<E: EthSpec, const BLINDED: bool, const V2: bool>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    publish_block(state, headers, body, BLINDED, V2).await
}

/// The slot, root and signature of a signed block in a publish body, JSON
/// or SSZ, full (with or without contents) or blinded.
pub(super) fn signed_block_parts<E: EthSpec>(
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
pub(super) fn slot_in_json(body: &[u8]) -> Option<Slot> {
    let value: Json = serde_json::from_slice(body).ok()?;
    let message = value
        .pointer("/signed_block/message")
        .or_else(|| value.pointer("/message"))?;
    message.get("slot")?.as_str()?.parse().ok().map(Slot)
}

/// A signed block from the validator client: its signature counts towards
/// the cluster's once the block is the decided one.
pub(super) async fn publish_block<E: EthSpec>(
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
