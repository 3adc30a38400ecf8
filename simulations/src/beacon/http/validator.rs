//! Validator endpoints: duties, attestation data, block production,
//! aggregates and contributions, proposer preparations and subscriptions.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use phalanx_eth::api::{AttesterDuty, ProposerDuty, ProposerPreparation, SyncDuty};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::selection::SYNC_COMMITTEE_SUBNET_COUNT;
use phalanx_eth::signing::roots;
use phalanx_eth::{Epoch, EthSpec, Root, SignatureBytes, Slot, ValidatorIndex};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::query::{parse_array, parse_indices, parse_u64, Query};
use super::{data, versioned, NodeState};
use crate::beacon::node::Node;
use crate::beacon::{infinity_signature, lock, CLOCK_DISPARITY_MS};

/// Refuses duties more than one epoch ahead, as beacon nodes do.
fn check_duty_epoch<E: EthSpec>(node: &Node<E>, epoch: Epoch) -> Result<(), ApiError> {
    let current = node.chain.epoch(node.current_slot());
    if epoch.0 > current.0 + 1 {
        return Err(ApiError::BadRequest(format!(
            "duties of epoch {epoch} are not known yet (current epoch {current}; at most one ahead)"
        )));
    }
    Ok(())
}

pub(super) async fn attester_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
    body: Bytes,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    check_duty_epoch(&node, epoch)?;
    let indices = parse_indices(&body)?;
    let mut all = node.chain.attester_duties(epoch);
    let duties: Vec<AttesterDuty> = indices
        .iter()
        .filter_map(|index| all.remove(index))
        .collect();
    Ok(Json(json!({
        "dependent_root": node.chain.attester_dependent_root(epoch),
        "execution_optimistic": false,
        "data": duties,
    }))
    .into_response())
}

pub(super) async fn proposer_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    check_duty_epoch(&node, epoch)?;
    let chain = &node.chain;
    let start = chain.start_slot(epoch).0;
    let duties: Vec<ProposerDuty> = (start..start + E::SLOTS_PER_EPOCH)
        // Slot 0 is genesis: nobody proposes there.
        .filter(|&slot| slot > 0)
        .filter_map(|slot| {
            let index = chain.proposer(Slot(slot))?;
            Some(ProposerDuty {
                pubkey: chain.pubkey(index)?,
                validator_index: ValidatorIndex(index),
                slot: Slot(slot),
            })
        })
        .collect();
    Ok(Json(json!({
        "dependent_root": chain.proposer_dependent_root(epoch),
        "execution_optimistic": false,
        "data": duties,
    }))
    .into_response())
}

pub(super) async fn sync_duties<E: EthSpec>(
    State(node): NodeState<E>,
    Path(epoch): Path<String>,
    body: Bytes,
) -> ApiResult {
    let epoch = Epoch(parse_u64("epoch", &epoch)?);
    let chain = &node.chain;
    let period = chain.sync_period(epoch);
    let current = chain.sync_period(chain.epoch(node.current_slot()));
    if period > current + 1 {
        return Err(ApiError::BadRequest(format!(
            "sync duties of epoch {epoch} (period {period}) are not known yet (current period {current}; at most one ahead)"
        )));
    }
    let committee = chain.sync_committee(period);
    let duties: Vec<SyncDuty> = parse_indices(&body)?
        .into_iter()
        .filter_map(|index| {
            let positions: Vec<u64> = committee
                .iter()
                .zip(0u64..)
                .filter_map(|(&member, position)| (member == index).then_some(position))
                .collect();
            if positions.is_empty() {
                return None;
            }
            Some(SyncDuty {
                pubkey: chain.pubkey(index)?,
                validator_index: ValidatorIndex(index),
                validator_sync_committee_indices: positions,
            })
        })
        .collect();
    Ok(Json(json!({"execution_optimistic": false, "data": duties})).into_response())
}

pub(super) async fn attestation_data<E: EthSpec>(
    State(node): NodeState<E>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let slot = Slot(query.required::<u64>("slot")?);
    let committee_index = query.required::<u64>("committee_index")?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let latest = chain.slot_at(now_ms + CLOCK_DISPARITY_MS);
    if slot > latest {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} has not started (current slot {})",
            chain.slot_at(now_ms)
        )));
    }
    if committee_index >= chain.committees_per_slot() {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} has no committee {committee_index} ({} committees)",
            chain.committees_per_slot()
        )));
    }
    Ok(data(chain.attestation_data(slot, committee_index)))
}

pub(super) async fn produce_block<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    Path(slot): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let slot = Slot(parse_u64("slot", &slot)?);
    let query = Query::parse(query);
    let randao_reveal: SignatureBytes = query.required("randao_reveal")?;
    let graffiti: Root = query.optional("graffiti")?.unwrap_or_default();
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let current = chain.slot_at(now_ms);
    if slot.0 == 0 {
        return Err(ApiError::BadRequest(
            "slot 0 is genesis: no block can be proposed there".to_string(),
        ));
    }
    if slot.0 > current.0 + 1 {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} is too far ahead (current slot {current})"
        )));
    }
    let proposer = chain
        .proposer(slot)
        .ok_or_else(|| ApiError::BadRequest("the chain has no validators".to_string()))?;
    let epoch = chain.epoch(slot);
    if query.get("skip_randao_verification").is_some() {
        if randao_reveal != infinity_signature() {
            return Err(ApiError::BadRequest(
                "skip_randao_verification needs the point at infinity as randao_reveal".to_string(),
            ));
        }
    } else {
        let root = roots::randao(&chain.network, chain.genesis_validators_root, epoch);
        if !chain.verify(proposer, root, &randao_reveal) {
            return Err(ApiError::BadRequest(format!(
                "randao_reveal is not the proposer's (validator {proposer}) signature of epoch {epoch}"
            )));
        }
    }
    let fee_recipient = lock(&node.fee_recipients)
        .get(&proposer)
        .copied()
        .unwrap_or_default();
    let produced = chain.produce_block(slot, randao_reveal, graffiti, fee_recipient)?;
    // SSZ when the client prefers it (its first choice), as beacon nodes do.
    let ssz = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/octet-stream"));
    let mut response = if ssz {
        let mut response = (
            [("content-type", "application/octet-stream")],
            produced.data_as_ssz_bytes(),
        )
            .into_response();
        response.headers_mut().insert(
            CONSENSUS_VERSION_HEADER,
            HeaderValue::from_static(produced.fork.as_str()),
        );
        response
    } else {
        let mut body = produced.to_json();
        if version == 2 {
            body = json!({"version": produced.fork.as_str(), "data": body["data"].take()});
        }
        versioned(produced.fork, body)
    };
    if version == 3 {
        let headers = response.headers_mut();
        let values = [
            ("Eth-Execution-Payload-Blinded", "false".to_string()),
            (
                "Eth-Execution-Payload-Value",
                produced.execution_payload_value.to_string(),
            ),
            (
                "Eth-Consensus-Block-Value",
                produced.consensus_block_value.to_string(),
            ),
        ];
        for (name, value) in values {
            let value = HeaderValue::from_str(&value)
                .map_err(|e| ApiError::Internal(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
    }
    Ok(response)
}

pub(super) async fn aggregate_attestation<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let root: Root = query.required("attestation_data_root")?;
    let slot = Slot(query.required::<u64>("slot")?);
    let committee_index: Option<u64> = if version == 2 {
        Some(query.required("committee_index")?)
    } else {
        query.optional("committee_index")?
    };
    let chain = &node.chain;
    if version == 1 && chain.electra_at(slot) {
        return Err(ApiError::BadRequest(format!(
            "slot {slot} is in {}: ask /eth/v2/validator/aggregate_attestation",
            chain.fork_name(slot)
        )));
    }
    let attestation = serde_json::to_value(node.aggregate(slot, root, committee_index)?)
        .map_err(|e| ApiError::Internal(format!("cannot encode the aggregate: {e}")))?;
    let fork = chain.network.layout_fork_at_slot(slot);
    if version == 2 {
        Ok(versioned(
            fork,
            json!({"version": fork.as_str(), "data": attestation}),
        ))
    } else {
        Ok(data(attestation))
    }
}

pub(super) async fn sync_committee_contribution<E: EthSpec>(
    State(node): NodeState<E>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::parse(query);
    let slot = Slot(query.required::<u64>("slot")?);
    let subcommittee: u64 = query.required("subcommittee_index")?;
    let root: Root = query.required("beacon_block_root")?;
    if subcommittee >= SYNC_COMMITTEE_SUBNET_COUNT {
        return Err(ApiError::BadRequest(format!(
            "there is no sync subcommittee {subcommittee} (there are {SYNC_COMMITTEE_SUBNET_COUNT})"
        )));
    }
    Ok(data(node.contribution(slot, root, subcommittee)?))
}

pub(super) async fn prepare_beacon_proposer<E: EthSpec>(
    State(node): NodeState<E>,
    body: Bytes,
) -> ApiResult {
    let preparations: Vec<ProposerPreparation> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("expected a list of proposer preparations: {e}"))
    })?;
    let mut fee_recipients = lock(&node.fee_recipients);
    for preparation in preparations {
        fee_recipients.insert(preparation.validator_index.0, preparation.fee_recipient);
    }
    Ok(StatusCode::OK.into_response())
}

/// Subnet subscriptions mean nothing to a node without peers: accepted.
pub(super) async fn subscriptions(body: Bytes) -> ApiResult {
    parse_array(&body)?;
    Ok(StatusCode::OK.into_response())
}
