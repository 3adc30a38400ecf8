//! The operation pools: attestation data and attestations, aggregates,
//! sync-committee messages and contributions, voluntary exits and builder
//! registrations.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::Serialize;

use super::transport::{fork_header, Body, Request};
use super::{BeaconNodeClient, ClientError};
use crate::api::Data;
use crate::attestation::{Attestation, AttestationData};
use crate::fork::ForkName;
use crate::preset::EthSpec;
use crate::primitives::{CommitteeIndex, Root, Slot};
use crate::sync_committee::{
    SignedContributionAndProof, SyncCommitteeContribution, SyncCommitteeMessage,
};
use crate::validator::{SignedValidatorRegistration, SignedVoluntaryExit};

impl BeaconNodeClient {
    /// `GET /eth/v1/validator/attestation_data`.
    pub async fn attestation_data(
        &self,
        slot: Slot,
        committee_index: CommitteeIndex,
    ) -> Result<AttestationData, ClientError> {
        let data: Data<AttestationData> = self
            .get(
                "attestation_data",
                &format!("eth/v1/validator/attestation_data?slot={slot}&committee_index={committee_index}"),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v2/beacon/pool/attestations`: `SingleAttestation`s from
    /// Electra on, `Attestation`s before. Falls back to v1 for pre-Electra
    /// nodes that do not serve v2.
    pub async fn submit_attestations(
        &self,
        fork: ForkName,
        attestations: impl Serialize,
    ) -> Result<(), ClientError> {
        self.submit_versioned(
            "submit_attestations",
            fork,
            "eth/v2/beacon/pool/attestations",
            "eth/v1/beacon/pool/attestations",
            !fork.electra_enabled(),
            attestations,
        )
        .await
    }

    /// `GET /eth/v2/validator/aggregate_attestation`, falling back to v1 for
    /// pre-Electra nodes that do not serve v2.
    pub async fn aggregate_attestation<E: EthSpec>(
        &self,
        fork: ForkName,
        slot: Slot,
        attestation_data_root: Root,
        committee_index: CommitteeIndex,
    ) -> Result<Attestation<E>, ClientError> {
        let query = format!(
            "?attestation_data_root={attestation_data_root}&slot={slot}&committee_index={committee_index}"
        );
        let decode = |bytes: &[u8], headers: &HeaderMap| {
            let data: Data<serde_json::Value> =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            let body_fork = fork_header(headers)?.unwrap_or(fork);
            Attestation::from_json_value(data.data, body_fork).map_err(|e| e.to_string())
        };
        let v2 = self
            .call(
                Request {
                    endpoint: "aggregate_attestation",
                    method: Method::GET,
                    path: &format!("eth/v2/validator/aggregate_attestation{query}"),
                    body: Body::None,
                    headers: &[],
                    timeout: self.timeouts.default,
                },
                decode,
            )
            .await;
        match v2 {
            Err(e) if !fork.electra_enabled() && matches!(e.status(), Some(404 | 405)) => {
                self.call(
                    Request {
                        endpoint: "aggregate_attestation",
                        method: Method::GET,
                        path: &format!("eth/v1/validator/aggregate_attestation{query}"),
                        body: Body::None,
                        headers: &[],
                        timeout: self.timeouts.default,
                    },
                    decode,
                )
                .await
            }
            other => other,
        }
    }

    /// `POST /eth/v2/validator/aggregate_and_proofs`.
    pub async fn submit_aggregate_and_proofs(
        &self,
        fork: ForkName,
        signed_aggregates: impl Serialize,
    ) -> Result<(), ClientError> {
        self.submit_versioned(
            "submit_aggregate_and_proofs",
            fork,
            "eth/v2/validator/aggregate_and_proofs",
            "eth/v1/validator/aggregate_and_proofs",
            !fork.electra_enabled(),
            signed_aggregates,
        )
        .await
    }

    /// `POST /eth/v1/beacon/pool/sync_committees`.
    pub async fn submit_sync_committee_messages(
        &self,
        messages: &[SyncCommitteeMessage],
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_sync_committee_messages",
            "eth/v1/beacon/pool/sync_committees",
            messages,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `GET /eth/v1/validator/sync_committee_contribution`.
    pub async fn sync_committee_contribution<E: EthSpec>(
        &self,
        slot: Slot,
        subcommittee_index: u64,
        beacon_block_root: Root,
    ) -> Result<SyncCommitteeContribution<E>, ClientError> {
        let data: Data<SyncCommitteeContribution<E>> = self
            .get(
                "sync_committee_contribution",
                &format!(
                    "eth/v1/validator/sync_committee_contribution?slot={slot}&subcommittee_index={subcommittee_index}&beacon_block_root={beacon_block_root}"
                ),
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/validator/contribution_and_proofs`.
    pub async fn submit_contribution_and_proofs<E: EthSpec>(
        &self,
        contributions: &[SignedContributionAndProof<E>],
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_contribution_and_proofs",
            "eth/v1/validator/contribution_and_proofs",
            contributions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/beacon/pool/voluntary_exits`.
    pub async fn submit_voluntary_exit(
        &self,
        exit: &SignedVoluntaryExit,
    ) -> Result<(), ClientError> {
        self.submit(
            "submit_voluntary_exit",
            "eth/v1/beacon/pool/voluntary_exits",
            exit,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/register_validator`.
    pub async fn register_validators(
        &self,
        registrations: &[SignedValidatorRegistration],
    ) -> Result<(), ClientError> {
        self.submit(
            "register_validators",
            "eth/v1/validator/register_validator",
            registrations,
            &[],
            self.timeouts.default,
        )
        .await
    }
}
