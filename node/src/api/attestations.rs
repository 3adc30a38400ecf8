//! Attestations: the data the cluster decided for a committee, and the
//! validator client's signed attestations (phase 0 layout through v1,
//! Electra's `SingleAttestation` through v2), which count towards the
//! cluster's once they sign the decided data.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use phalanx_eth::attestation::{AttestationBase, SingleAttestation};
use phalanx_eth::{CommitteeIndex, EthSpec, Slot};
use serde::Deserialize;
use serde_json::json;
use ssz::Encode;

use super::media::{is_ssz, list_items, required_fork, ssz_response, wants_ssz};
use super::{answer_submission, error, failure, Shared};
use crate::core::{ApiFailure, Attester, VcAttestation, VcRequest, VcResponse};

#[derive(Deserialize)]
pub(super) struct AttestationDataQuery {
    slot: String,
    committee_index: String,
}

pub(super) async fn attestation_data<E: EthSpec>(
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

pub(super) async fn submit_attestations_v1<E: EthSpec>(
    State(state): State<Shared<E>>,
    body: Bytes,
) -> Response {
    submit_attestations::<E>(state, body, false, false).await
}

pub(super) async fn submit_attestations_v2<E: EthSpec>(
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

/// An attestation of the Electra layout as the core takes it.
pub(super) fn single_attestation(a: SingleAttestation) -> Result<VcAttestation, String> {
    Ok(VcAttestation {
        data: a.data,
        attester: Attester::Index(a.attester_index),
        committee_index: a.committee_index,
        signature: a.signature,
    })
}

/// An attestation of the phase 0 layout as the core takes it: it must name
/// one attester.
pub(super) fn base_attestation<E: EthSpec>(a: AttestationBase<E>) -> Result<VcAttestation, String> {
    let mut set = a.aggregation_bits.iter().enumerate().filter(|(_, b)| *b);
    match (set.next(), set.next()) {
        (Some((in_committee, _)), None) => Ok(VcAttestation {
            data: a.data,
            attester: Attester::ValidatorCommitteeIndex(in_committee as u64),
            committee_index: a.data.index,
            signature: a.signature,
        }),
        _ => Err(
            "an attestation from a validator client has exactly one aggregation bit set"
                .to_string(),
        ),
    }
}

pub(super) async fn submit_attestations<E: EthSpec>(
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
    let request_indices: Vec<usize> = attestations.iter().map(|(i, _)| *i).collect();
    let request = VcRequest::Attestations(attestations.into_iter().map(|(_, a)| a).collect());
    answer_submission(state.ask(request).await, &request_indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use phalanx_eth::{Root, SignatureBytes, ValidatorIndex};

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
                attester: Attester::ValidatorCommitteeIndex(2),
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
}
