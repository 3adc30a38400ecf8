//! Duties and what serves them: attester, proposer and sync duties, the
//! combined selection proofs of a distributed validator, subnet
//! subscriptions, and the fee recipients of proposers.

use serde::Serialize;

use super::transport::encode;
use super::{BeaconNodeClient, ClientError};
use crate::api::{AttesterDuty, Data, Duties, ProposerDuty, ProposerPreparation, SyncDuty};
use crate::attestation::{BeaconCommitteeSelection, SyncCommitteeSelection};
use crate::primitives::{CommitteeIndex, Epoch, Slot, ValidatorIndex};

/// An entry of `POST /eth/v1/validator/beacon_committee_subscriptions`:
/// an attester asks its node to follow (and, as aggregator, join) its
/// committee's subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BeaconCommitteeSubscription {
    /// The attester.
    pub validator_index: ValidatorIndex,
    /// Its committee.
    pub committee_index: CommitteeIndex,
    /// Committees in the slot (the subnet depends on it).
    #[serde(with = "serde_utils::quoted_u64")]
    pub committees_at_slot: u64,
    /// The slot of the duty.
    pub slot: Slot,
    /// Whether its selection proof makes it an aggregator.
    pub is_aggregator: bool,
}

/// An entry of `POST /eth/v1/validator/sync_committee_subscriptions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SyncCommitteeSubscription {
    /// The sync-committee member.
    pub validator_index: ValidatorIndex,
    /// Its positions in the sync committee.
    #[serde(with = "serde_utils::quoted_u64_vec")]
    pub sync_committee_indices: Vec<u64>,
    /// The first epoch it no longer needs the subscription.
    pub until_epoch: Epoch,
}

impl BeaconNodeClient {
    /// `POST /eth/v1/validator/duties/attester/{epoch}`.
    pub async fn attester_duties(
        &self,
        epoch: Epoch,
        indices: &[ValidatorIndex],
    ) -> Result<Duties<AttesterDuty>, ClientError> {
        self.post(
            "attester_duties",
            &format!("eth/v1/validator/duties/attester/{epoch}"),
            quoted_indices(indices),
            &[],
            self.timeouts.duties,
        )
        .await
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}`.
    pub async fn proposer_duties(&self, epoch: Epoch) -> Result<Duties<ProposerDuty>, ClientError> {
        self.get(
            "proposer_duties",
            &format!("eth/v1/validator/duties/proposer/{epoch}"),
            self.timeouts.duties,
        )
        .await
    }

    /// `POST /eth/v1/validator/duties/sync/{epoch}`.
    pub async fn sync_duties(
        &self,
        epoch: Epoch,
        indices: &[ValidatorIndex],
    ) -> Result<Duties<SyncDuty>, ClientError> {
        self.post(
            "sync_duties",
            &format!("eth/v1/validator/duties/sync/{epoch}"),
            quoted_indices(indices),
            &[],
            self.timeouts.duties,
        )
        .await
    }

    /// `POST /eth/v1/validator/beacon_committee_selections`: a distributed
    /// validator's client sends its partial selection proofs and gets back
    /// the combined ones, which decide whether it aggregates.
    pub async fn beacon_committee_selections(
        &self,
        selections: &[BeaconCommitteeSelection],
    ) -> Result<Vec<BeaconCommitteeSelection>, ClientError> {
        let endpoint = "beacon_committee_selections";
        let data: Data<Vec<BeaconCommitteeSelection>> = self
            .post(
                endpoint,
                "eth/v1/validator/beacon_committee_selections",
                encode(endpoint, selections)?,
                &[],
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/validator/sync_committee_selections`: the sync-committee
    /// counterpart of [`BeaconNodeClient::beacon_committee_selections`].
    pub async fn sync_committee_selections(
        &self,
        selections: &[SyncCommitteeSelection],
    ) -> Result<Vec<SyncCommitteeSelection>, ClientError> {
        let endpoint = "sync_committee_selections";
        let data: Data<Vec<SyncCommitteeSelection>> = self
            .post(
                endpoint,
                "eth/v1/validator/sync_committee_selections",
                encode(endpoint, selections)?,
                &[],
                self.timeouts.default,
            )
            .await?;
        Ok(data.data)
    }

    /// `POST /eth/v1/validator/beacon_committee_subscriptions`.
    pub async fn beacon_committee_subscriptions(
        &self,
        subscriptions: &[BeaconCommitteeSubscription],
    ) -> Result<(), ClientError> {
        self.submit(
            "beacon_committee_subscriptions",
            "eth/v1/validator/beacon_committee_subscriptions",
            subscriptions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/sync_committee_subscriptions`.
    pub async fn sync_committee_subscriptions(
        &self,
        subscriptions: &[SyncCommitteeSubscription],
    ) -> Result<(), ClientError> {
        self.submit(
            "sync_committee_subscriptions",
            "eth/v1/validator/sync_committee_subscriptions",
            subscriptions,
            &[],
            self.timeouts.default,
        )
        .await
    }

    /// `POST /eth/v1/validator/prepare_beacon_proposer`.
    pub async fn prepare_beacon_proposer(
        &self,
        preparations: &[ProposerPreparation],
    ) -> Result<(), ClientError> {
        self.submit(
            "prepare_beacon_proposer",
            "eth/v1/validator/prepare_beacon_proposer",
            preparations,
            &[],
            self.timeouts.default,
        )
        .await
    }
}

fn quoted_indices(indices: &[ValidatorIndex]) -> serde_json::Value {
    serde_json::Value::Array(indices.iter().map(|i| i.to_string().into()).collect())
}
