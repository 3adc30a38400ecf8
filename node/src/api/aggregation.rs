//! Aggregation: the cluster's combined selection proofs (which decide who
//! aggregates), committee subscriptions with the cluster's aggregator
//! flags, the decided aggregate of a committee, and signed aggregates.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use phalanx_eth::attestation::{
    AggregateAndProof, BeaconCommitteeSelection, SignedAggregateAndProofBase,
    SignedAggregateAndProofElectra,
};
use phalanx_eth::{CommitteeIndex, EthSpec, ForkName, Root, Slot, ValidatorIndex};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::media::{
    is_ssz, list_items, parse_items, parse_list, required_fork, versioned_response,
};
use super::proxy::forward_list;
use super::{answer_submission, error, failure, Shared};
use crate::core::{ApiFailure, VcRequest, VcResponse, VcSigned};

pub(super) async fn beacon_committee_selections<E: EthSpec>(
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

/// Committee subscriptions go to the beacon node with `is_aggregator` as
/// the cluster's combined selection proof says (a validator client that
/// is not aware of distributed validators derives it from its own share's
/// proof, which means nothing).
pub(super) async fn beacon_committee_subscriptions<E: EthSpec>(
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

#[derive(Deserialize)]
pub(super) struct AggregateQuery {
    attestation_data_root: String,
    slot: String,
    committee_index: Option<String>,
}

pub(super) async fn aggregate_attestation_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<AggregateQuery>,
) -> Response {
    aggregate_attestation(state, headers, query, false).await
}

pub(super) async fn aggregate_attestation_v2<E: EthSpec>(
    State(state): State<Shared<E>>,
    headers: HeaderMap,
    Query(query): Query<AggregateQuery>,
) -> Response {
    aggregate_attestation(state, headers, query, true).await
}

/// The decided aggregate of a committee: v1 names the committee by the
/// data's index (before Electra), v2 by `committee_index`.
pub(super) async fn aggregate_attestation<E: EthSpec>(
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

pub(super) async fn aggregate_and_proofs_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    aggregate_and_proofs(state, body, None, false).await
}

pub(super) async fn aggregate_and_proofs_v2<E: EthSpec>(
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
pub(super) async fn aggregate_and_proofs<E: EthSpec>(
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
    let request_indices: Vec<usize> = (0..signed.len()).collect();
    answer_submission(
        state.ask(VcRequest::AggregateAndProofs(signed)).await,
        &request_indices,
    )
}
