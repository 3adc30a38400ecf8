//! Exits and registrations: voluntary exits signed with a share (broadcast
//! once enough operators signed the same exit), builder registrations,
//! and proposer preparations, whose fee recipients are the lock's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phalanx_eth::api::ProposerPreparation;
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::EthSpec;

use super::media::{all_items, is_ssz, list_items, parse_items};
use super::proxy::forward_list;
use super::{answer_submission, error, failure, Shared};
use crate::core::{VcRequest, VcResponse};

/// A voluntary exit signed with this operator's share: it is broadcast
/// once enough operators have signed the same exit.
pub(super) async fn voluntary_exit<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
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
pub(super) async fn register_validator<E: EthSpec>(
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
    let request_indices: Vec<usize> = (0..registrations.len()).collect();
    answer_submission(
        state.ask(VcRequest::Registrations(registrations)).await,
        &request_indices,
    )
}

/// Fee recipients go to the beacon node as the lock says for the
/// cluster's validators: every operator's node builds the same payloads,
/// and the validity check refuses a block that pays anyone else.
pub(super) async fn prepare_beacon_proposer<E: EthSpec>(
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
