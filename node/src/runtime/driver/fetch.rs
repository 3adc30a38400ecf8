//! What the core asks of the beacon node: validator indices, duties and
//! proposers, attestation data, aggregates, sync-committee contributions
//! and blocks. Each answer, or why there is none, comes back as an event.

use phalanx_eth::api::ProposerPreparation;
use phalanx_eth::client::ClientError;
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, PublicKeyBytes, Root, SignatureBytes, ValidatorIndex,
};

use super::Driver;
use crate::core::Event;
use crate::duty::Duty;

impl<E: EthSpec> Driver<E> {
    /// Looks up the validator indices of the cluster's group keys.
    pub(super) fn resolve_indices(&self, keys: Vec<PublicKeyBytes>) {
        let (client, events) = (self.client.clone(), self.events.clone());
        let known = self.metrics.validators_known.clone();
        tokio::spawn(async move {
            let ids: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let event = match client.validators("head", &ids).await {
                Ok(found) => {
                    known.set(found.len() as i64);
                    Event::Indices(
                        found
                            .into_iter()
                            .map(|v| (v.validator.pubkey, v.index))
                            .collect(),
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking up the validators' indices");
                    Event::IndicesFailed(e.to_string())
                }
            };
            let _ = events.send(event);
        });
    }

    /// Tells the beacon node the lock's fee recipients, then fetches the
    /// epoch's attester and sync duties.
    pub(super) fn resolve_duties(
        &self,
        epoch: Epoch,
        indices: Vec<ValidatorIndex>,
        preparations: Vec<ProposerPreparation>,
    ) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(async move {
            if !preparations.is_empty() {
                if let Err(e) = client.prepare_beacon_proposer(&preparations).await {
                    tracing::warn!(%epoch, error = %e, "telling the beacon node the lock's fee recipients");
                }
            }
            let attester = client.attester_duties(epoch, &indices).await;
            let sync = client.sync_duties(epoch, &indices).await;
            let event = match (attester, sync) {
                (Ok(attester), Ok(sync)) => Event::Duties {
                    epoch,
                    attester: attester.data,
                    sync: sync.data,
                },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(%epoch, error = %e, "resolving duties");
                    Event::DutiesFailed {
                        epoch,
                        error: e.to_string(),
                    }
                }
            };
            let _ = events.send(event);
        });
    }

    /// Fetches the epoch's proposers.
    pub(super) fn resolve_proposers(&self, epoch: Epoch) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(async move {
            let result = client
                .proposer_duties(epoch)
                .await
                .map(|duties| duties.data)
                .map_err(|e| {
                    tracing::warn!(%epoch, error = %e, "looking up the epoch's proposers");
                    e.to_string()
                });
            let _ = events.send(Event::Proposers { epoch, result });
        });
    }

    /// Fetches the attestation data of each committee; one failure fails
    /// the duty's data (the cluster agrees on all of it or none).
    pub(super) fn fetch_attestation_data(&self, duty: Duty, committees: Vec<CommitteeIndex>) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(async move {
            let mut entries = Vec::with_capacity(committees.len());
            let mut failure: Option<ClientError> = None;
            for committee in committees {
                match client.attestation_data(duty.slot, committee).await {
                    Ok(data) => entries.push((committee, data)),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let result = match failure {
                None => Ok(entries),
                Some(e) => {
                    tracing::warn!(%duty, error = %e, "no attestation data from the beacon node");
                    Err(e.to_string())
                }
            };
            let _ = events.send(Event::AttestationData { duty, result });
        });
    }

    /// Fetches the aggregate of each committee's decided data, in the
    /// layout of the slot's fork.
    pub(super) fn fetch_aggregates(&self, duty: Duty, requests: Vec<(CommitteeIndex, Root)>) {
        let (client, events) = (self.client.clone(), self.events.clone());
        // The aggregates' layout is needed regardless: a fork unknown to
        // this build reads as the latest known.
        let fork = self.network.layout_fork_at_slot(duty.slot);
        tokio::spawn(async move {
            let mut aggregates = Vec::with_capacity(requests.len());
            let mut failure = None;
            for (committee, data_root) in requests {
                match client
                    .aggregate_attestation::<E>(fork, duty.slot, data_root, committee)
                    .await
                {
                    Ok(aggregate) => aggregates.push((committee, aggregate)),
                    Err(e) => {
                        tracing::warn!(%duty, %committee, error = %e, "no aggregate attestation from the beacon node");
                        failure = Some(e.to_string());
                    }
                }
            }
            let result = some_or_failure(aggregates, failure);
            let _ = events.send(Event::Aggregates { duty, result });
        });
    }

    /// Fetches each subcommittee's contribution over the cluster's head
    /// (or the beacon node's, when the cluster has none).
    pub(super) fn fetch_contributions(
        &self,
        duty: Duty,
        block_root: Option<Root>,
        subcommittees: Vec<u64>,
    ) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(async move {
            let block_root = match block_root {
                Some(root) => Ok(root),
                None => client.block_root("head").await,
            };
            let result = match block_root {
                Err(e) => Err(e.to_string()),
                Ok(root) => {
                    let mut contributions = Vec::new();
                    let mut failure = None;
                    for subcommittee in subcommittees {
                        match client
                            .sync_committee_contribution::<E>(duty.slot, subcommittee, root)
                            .await
                        {
                            Ok(c) => contributions.push(c),
                            Err(e) => {
                                tracing::warn!(%duty, subcommittee, error = %e, "no sync committee contribution from the beacon node");
                                failure = Some(e.to_string());
                            }
                        }
                    }
                    some_or_failure(contributions, failure)
                }
            };
            let _ = events.send(Event::Contributions { duty, result });
        });
    }

    /// Asks for a block with the combined randao reveal.
    pub(super) fn fetch_block(
        &self,
        duty: Duty,
        randao_reveal: SignatureBytes,
        graffiti: Option<Root>,
        builder_boost_factor: Option<u64>,
    ) {
        let (client, events) = (self.client.clone(), self.events.clone());
        tokio::spawn(async move {
            let result = client
                .produce_block::<E>(duty.slot, &randao_reveal, graffiti, builder_boost_factor)
                .await
                .map(Box::new)
                .map_err(|e| {
                    tracing::warn!(%duty, error = %e, "no block from the beacon node");
                    e.to_string()
                });
            let _ = events.send(Event::Block { duty, result });
        });
    }
}

/// What several requests to the beacon node gave: some answers beat none
/// (the others' proposals may cover the rest); with none, the last error.
fn some_or_failure<T>(found: Vec<T>, failure: Option<String>) -> Result<Vec<T>, String> {
    match failure {
        Some(e) if found.is_empty() => Err(e),
        _ => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_answers_beat_none() {
        assert_eq!(
            some_or_failure(vec![1, 2], Some("503".into())),
            Ok(vec![1, 2])
        );
        assert_eq!(
            some_or_failure::<u8>(vec![], Some("503".into())),
            Err("503".into())
        );
        assert_eq!(some_or_failure::<u8>(vec![], None), Ok(vec![]));
    }
}
