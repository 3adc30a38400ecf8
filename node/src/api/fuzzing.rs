//! The validator API's body decoders, reachable from outside the crate for
//! the fuzzing harness only (feature `fuzzing`): each runs exactly what its
//! route runs on a request body before anything reaches the core.

use axum::body::Bytes;
use phalanx_eth::api::ProposerPreparation;
use phalanx_eth::attestation::SyncCommitteeSelection;
use phalanx_eth::attestation::{
    AttestationBase, BeaconCommitteeSelection, SignedAggregateAndProofBase,
    SignedAggregateAndProofElectra, SingleAttestation,
};
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{EthSpec, ForkName};

use super::attestations::{base_attestation, single_attestation};
use super::blocks::{signed_block_parts, slot_in_json};
use super::media::{list_items, parse_items, parse_list};

/// A body the validator API takes, by the route that takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `POST /eth/v2/beacon/pool/attestations` (Electra and later).
    SingleAttestations,
    /// `POST /eth/v1/beacon/pool/attestations`.
    Attestations,
    /// `POST /eth/v2/validator/aggregate_and_proofs` (Electra and later).
    AggregatesElectra,
    /// `POST /eth/v1/validator/aggregate_and_proofs`.
    Aggregates,
    /// `POST /eth/v1/validator/register_validator`.
    Registrations,
    /// `POST /eth/v1/beacon/pool/voluntary_exits`.
    Exit,
    /// `POST /eth/v1/validator/contribution_and_proofs`.
    Contributions,
    /// `POST /eth/v1/beacon/pool/sync_committees`.
    SyncMessages,
    /// `POST /eth/v1/validator/beacon_committee_selections`.
    BeaconSelections,
    /// `POST /eth/v1/validator/sync_committee_selections`.
    SyncSelections,
    /// `POST /eth/v1/validator/prepare_beacon_proposer`.
    Preparations,
    /// `POST /eth/v2/beacon/blocks`, full or blinded.
    Block {
        /// A blinded block.
        blinded: bool,
    },
}

impl Body {
    /// Every body, for harnesses that pick one by a byte of their input.
    pub const ALL: [Body; 13] = [
        Body::SingleAttestations,
        Body::Attestations,
        Body::AggregatesElectra,
        Body::Aggregates,
        Body::Registrations,
        Body::Exit,
        Body::Contributions,
        Body::SyncMessages,
        Body::BeaconSelections,
        Body::SyncSelections,
        Body::Preparations,
        Body::Block { blinded: false },
        Body::Block { blinded: true },
    ];
}

/// Decodes `body` as its route does (SSZ where the route takes it),
/// returning how many items decoded, or the route's refusal as text.
pub fn decode<E: EthSpec>(
    which: Body,
    body: &[u8],
    ssz: bool,
    fork: ForkName,
) -> Result<usize, String> {
    let bytes = Bytes::copy_from_slice(body);
    let refused = |_| "refused".to_string();
    let ok = |items: Vec<Result<(), String>>| items.iter().filter(|i| i.is_ok()).count();
    match which {
        Body::SingleAttestations => {
            list_items(&bytes, ssz, "SingleAttestation", |a: SingleAttestation| {
                single_attestation(a).map(drop)
            })
            .map(ok)
            .map_err(refused)
        }
        Body::Attestations => list_items(&bytes, ssz, "Attestation", |a: AttestationBase<E>| {
            base_attestation::<E>(a).map(drop)
        })
        .map(ok)
        .map_err(refused),
        Body::AggregatesElectra => list_items(
            &bytes,
            ssz,
            "SignedAggregateAndProof",
            |_: SignedAggregateAndProofElectra<E>| Ok(()),
        )
        .map(ok)
        .map_err(refused),
        Body::Aggregates => list_items(
            &bytes,
            ssz,
            "SignedAggregateAndProof",
            |_: SignedAggregateAndProofBase<E>| Ok(()),
        )
        .map(ok)
        .map_err(refused),
        Body::Registrations => list_items(
            &bytes,
            ssz,
            "SignedValidatorRegistration",
            |_: SignedValidatorRegistration| Ok(()),
        )
        .map(ok)
        .map_err(refused),
        Body::Exit => serde_json::from_slice::<SignedVoluntaryExit>(body)
            .map(|_| 1)
            .map_err(|e| e.to_string()),
        Body::Contributions => {
            parse_items::<SignedContributionAndProof<E>>(&bytes, "SignedContributionAndProof")
                .map(|items| items.len())
                .map_err(refused)
        }
        Body::SyncMessages => parse_list(&bytes)
            .map(|items| {
                items
                    .into_iter()
                    .filter(|item| {
                        serde_json::from_value::<SyncCommitteeMessage>(item.clone()).is_ok()
                    })
                    .count()
            })
            .map_err(refused),
        Body::BeaconSelections => {
            parse_items::<BeaconCommitteeSelection>(&bytes, "BeaconCommitteeSelection")
                .map(|items| items.len())
                .map_err(refused)
        }
        Body::SyncSelections => {
            parse_items::<SyncCommitteeSelection>(&bytes, "SyncCommitteeSelection")
                .map(|items| items.len())
                .map_err(refused)
        }
        Body::Preparations => parse_items::<ProposerPreparation>(&bytes, "ProposerPreparation")
            .map(|items| items.len())
            .map_err(refused),
        Body::Block { blinded } => {
            if !ssz {
                let _ = slot_in_json(body);
            }
            signed_block_parts::<E>(body, ssz, fork, blinded).map(|_| 1)
        }
    }
}
