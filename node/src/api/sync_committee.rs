//! The sync committee: members' messages, the cluster's combined
//! selection proofs, the decided contribution of a subcommittee, and
//! signed contributions.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use phalanx_eth::attestation::SyncCommitteeSelection;
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::{EthSpec, Root, Slot};
use serde::Deserialize;
use serde_json::json;
use ssz::Encode;

use super::media::{parse_items, parse_list, versioned_response};
use super::{answer_submission, error, failure, Shared};
use crate::core::{ApiFailure, VcRequest, VcResponse};

pub(super) async fn submit_sync_messages<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
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
    let request_indices: Vec<usize> = (0..messages.len()).collect();
    answer_submission(
        state.ask(VcRequest::SyncMessages(messages)).await,
        &request_indices,
    )
}

pub(super) async fn sync_committee_selections<E: EthSpec>(
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

#[derive(Deserialize)]
pub(super) struct ContributionQuery {
    slot: String,
    subcommittee_index: String,
    beacon_block_root: String,
}

/// The decided contribution of a subcommittee. The cluster agrees on one
/// head per slot; a validator client whose own head differs still gets the
/// cluster's, which is what its aggregate will carry.
pub(super) async fn sync_committee_contribution<E: EthSpec>(
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

pub(super) async fn contribution_and_proofs<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    let signed =
        match parse_items::<SignedContributionAndProof<E>>(&body, "SignedContributionAndProof") {
            Ok(signed) => signed,
            Err(response) => return response,
        };
    let request_indices: Vec<usize> = (0..signed.len()).collect();
    answer_submission(
        state.ask(VcRequest::ContributionAndProofs(signed)).await,
        &request_indices,
    )
}
