//! Submission endpoints: blocks, attestations, aggregates, sync messages,
//! contributions, voluntary exits and builder registrations.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use phalanx_eth::attestation::{
    AttestationBase, SignedAggregateAndProofBase, SignedAggregateAndProofElectra, SingleAttestation,
};
use phalanx_eth::block_contents::{
    SignedBeaconBlock, SignedBlindedBeaconBlock, SignedBlockContents,
};
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{EthSpec, ForkName, Slot};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::query::{declared_fork, decode, parse_array, parse_body};
use super::NodeState;
use crate::beacon::checks::{AggregateParts, BlockParts};

/// The slot a signed block (or block contents) body names.
fn peek_block_slot(body: &Value) -> Option<Slot> {
    let message = body
        .get("signed_block")
        .and_then(|signed| signed.get("message"))
        .or_else(|| body.get("message"))?;
    match message.get("slot")? {
        Value::String(text) => text.parse().ok().map(Slot),
        Value::Number(number) => number.as_u64().map(Slot),
        _ => None,
    }
}

pub(super) async fn publish_block<E: EthSpec>(
    State(node): NodeState<E>,
    blinded: bool,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let body = parse_body(&body)?;
    let chain = &node.chain;
    // The layout is the one the header names or, without it, the fork of
    // the block's slot.
    let layout = match declared {
        Some(fork) => fork,
        None => {
            let slot = peek_block_slot(&body)
                .ok_or_else(|| ApiError::BadRequest("the body names no block slot".to_string()))?;
            chain.fork(slot).map_err(|name| {
                ApiError::BadRequest(format!(
                    "slot {slot} is in fork {name}, which this mock does not know"
                ))
            })?
        }
    };
    let now_ms = node.now_ms();
    node.process(vec![body], true, now_ms, |item| {
        let parts = if blinded {
            let signed = SignedBlindedBeaconBlock::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::blinded(&signed, declared)
        } else if layout >= ForkName::Deneb {
            let contents = SignedBlockContents::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::full(
                &contents.signed_block,
                Some((contents.kzg_proofs.len(), contents.blobs.len())),
                declared,
            )
        } else {
            let signed = SignedBeaconBlock::<E>::from_json_value(item.clone(), layout)
                .map_err(|e| e.to_string())?;
            BlockParts::full(&signed, None, declared)
        };
        Ok(chain.check_block(parts, now_ms))
    })
}

pub(super) async fn submit_attestations<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let items = parse_array(&body)?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    // v1 carries only the pre-Electra layout; v2 the layout of the named
    // fork (or of the current slot's fork when unnamed).
    let electra = version == 2
        && declared.map_or_else(
            || chain.electra_at(chain.slot_at(now_ms)),
            ForkName::electra_enabled,
        );
    node.process(items, false, now_ms, |item| {
        if electra {
            let attestation: SingleAttestation = decode("SingleAttestation", item)?;
            Ok(chain.check_single_attestation(&attestation, declared, now_ms))
        } else {
            let attestation: AttestationBase<E> = decode("Attestation", item)?;
            Ok(chain.check_attestation(&attestation, declared, now_ms))
        }
    })
}

pub(super) async fn submit_aggregates<E: EthSpec>(
    State(node): NodeState<E>,
    version: u8,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let declared = declared_fork(&headers)?;
    let items = parse_array(&body)?;
    let chain = &node.chain;
    let now_ms = node.now_ms();
    let electra = version == 2
        && declared.map_or_else(
            || chain.electra_at(chain.slot_at(now_ms)),
            ForkName::electra_enabled,
        );
    node.process(items, false, now_ms, |item| {
        let parts = if electra {
            let signed: SignedAggregateAndProofElectra<E> =
                decode("SignedAggregateAndProof", item)?;
            AggregateParts::electra(&signed, declared)
        } else {
            let signed: SignedAggregateAndProofBase<E> = decode("SignedAggregateAndProof", item)?;
            AggregateParts::base(&signed, declared)
        };
        Ok(chain.check_aggregate(parts, now_ms))
    })
}

pub(super) async fn submit_sync_messages<E: EthSpec>(
    State(node): NodeState<E>,
    body: Bytes,
) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let message: SyncCommitteeMessage = decode("SyncCommitteeMessage", item)?;
        Ok(node.chain.check_sync_message(&message, now_ms))
    })
}

pub(super) async fn submit_contributions<E: EthSpec>(
    State(node): NodeState<E>,
    body: Bytes,
) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let signed: SignedContributionAndProof<E> = decode("SignedContributionAndProof", item)?;
        Ok(node.chain.check_contribution(&signed, now_ms))
    })
}

pub(super) async fn submit_voluntary_exit<E: EthSpec>(
    State(node): NodeState<E>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(&body)?;
    let now_ms = node.now_ms();
    node.process(vec![body], true, now_ms, |item| {
        let exit: SignedVoluntaryExit = decode("SignedVoluntaryExit", item)?;
        Ok(node.chain.check_exit(&exit, now_ms))
    })
}

pub(super) async fn register_validators<E: EthSpec>(
    State(node): NodeState<E>,
    body: Bytes,
) -> ApiResult {
    let items = parse_array(&body)?;
    let now_ms = node.now_ms();
    node.process(items, false, now_ms, |item| {
        let registration: SignedValidatorRegistration =
            decode("SignedValidatorRegistrationV1", item)?;
        Ok(node.chain.check_registration(&registration, now_ms))
    })
}
