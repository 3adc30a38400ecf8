//! Duties: the keys' validator indices, attester, proposer and sync duties
//! fetched per epoch and refreshed at every epoch start, and the sync
//! committee subscriptions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use phalanx_eth::api::{AttesterDuty, ProposerDuty, SyncDuty};
use phalanx_eth::client::{ClientError, SyncCommitteeSubscription};
use phalanx_eth::{Epoch, EthSpec, ForkName, Slot, ValidatorIndex};

use super::client::Vc;

/// Duties fetched per epoch.
#[derive(Default)]
pub(super) struct DutyBook {
    attester: BTreeMap<Epoch, Vec<AttesterDuty>>,
    proposer: BTreeMap<Epoch, Vec<ProposerDuty>>,
    sync: BTreeMap<Epoch, Vec<SyncDuty>>,
}

impl DutyBook {
    fn prune(&mut self, before: Epoch) {
        self.attester.retain(|epoch, _| *epoch >= before);
        self.proposer.retain(|epoch, _| *epoch >= before);
        self.sync.retain(|epoch, _| *epoch >= before);
    }
}

impl<E: EthSpec> Vc<E> {
    /// Asks the node for the indices of the keys not yet found.
    pub(super) async fn resolve_indices(&self) -> Result<(), ClientError> {
        let missing: Vec<String> = {
            let known: BTreeSet<usize> = self.known_indices().values().copied().collect();
            self.validators
                .iter()
                .enumerate()
                .filter(|(position, _)| !known.contains(position))
                .map(|(_, validator)| validator.pubkey.to_string())
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let found = self.client.validators("head", &missing).await?;
        let mut known = self.known_indices();
        for data in found {
            if let Some(&position) = self.by_pubkey.get(&data.validator.pubkey) {
                known.insert(data.index, position);
            }
        }
        Ok(())
    }

    pub(super) async fn attester_duties(
        &self,
        epoch: Epoch,
        refresh: bool,
    ) -> Result<Vec<AttesterDuty>, ClientError> {
        if !refresh {
            if let Some(duties) = self.book().attester.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let indices = self.our_indices();
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let duties: Vec<AttesterDuty> = self
            .client
            .attester_duties(epoch, &indices)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().attester.insert(epoch, duties.clone());
        Ok(duties)
    }

    pub(super) async fn proposer_duties(
        &self,
        epoch: Epoch,
        refresh: bool,
    ) -> Result<Vec<ProposerDuty>, ClientError> {
        if !refresh {
            if let Some(duties) = self.book().proposer.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let duties: Vec<ProposerDuty> = self
            .client
            .proposer_duties(epoch)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().proposer.insert(epoch, duties.clone());
        Ok(duties)
    }

    pub(super) async fn sync_duties(
        &self,
        epoch: Epoch,
        refresh: bool,
    ) -> Result<Vec<SyncDuty>, ClientError> {
        if self
            .roots
            .network
            .fork_at(epoch)
            .unwrap_or(ForkName::Phase0)
            < ForkName::Altair
        {
            return Ok(Vec::new());
        }
        if !refresh {
            if let Some(duties) = self.book().sync.get(&epoch) {
                return Ok(duties.clone());
            }
        }
        let indices = self.our_indices();
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let duties: Vec<SyncDuty> = self
            .client
            .sync_duties(epoch, &indices)
            .await?
            .data
            .into_iter()
            .filter(|duty| self.by_pubkey.contains_key(&duty.pubkey))
            .collect();
        self.book().sync.insert(epoch, duties.clone());
        Ok(duties)
    }

    /// At an epoch's start: keys not yet found, the duties of this epoch
    /// and the next, and the fee recipients.
    pub(super) async fn refresh_epoch(self: Arc<Self>, epoch: Epoch) {
        let slot = epoch.start_slot(self.roots.network.slots_per_epoch());
        if self.known_indices().len() < self.validators.len() {
            if let Err(error) = self.resolve_indices().await {
                self.shared.record_error(slot, "validators", &error);
            }
        }
        for (epoch, current) in [(epoch, true), (Epoch(epoch.as_u64() + 1), false)] {
            if let Err(error) = self.attester_duties(epoch, true).await {
                self.shared.record_error(slot, "attester_duties", &error);
            }
            // Nodes need not serve next epoch's proposers; the slot asks
            // again when the epoch has come.
            match self.proposer_duties(epoch, true).await {
                Err(error) if current => self.shared.record_error(slot, "proposer_duties", &error),
                _ => {}
            }
            if let Err(error) = self.sync_duties(epoch, true).await {
                self.shared.record_error(slot, "sync_duties", &error);
            }
        }
        self.book().prune(Epoch(epoch.as_u64().saturating_sub(1)));
        self.subscribe_sync_committee(slot, epoch).await;
        self.prepare_proposers(slot).await;
    }

    /// Tells the node which members of this and the next epoch's sync
    /// committee are ours, until the end of the last epoch they sit in.
    async fn subscribe_sync_committee(&self, slot: Slot, epoch: Epoch) {
        let mut members: BTreeMap<ValidatorIndex, SyncCommitteeSubscription> = BTreeMap::new();
        {
            let book = self.book();
            for (epoch, duties) in book.sync.range(epoch..=Epoch(epoch.as_u64() + 1)) {
                for duty in duties {
                    let member = members.entry(duty.validator_index).or_insert_with(|| {
                        SyncCommitteeSubscription {
                            validator_index: duty.validator_index,
                            sync_committee_indices: duty.validator_sync_committee_indices.clone(),
                            until_epoch: *epoch,
                        }
                    });
                    member.until_epoch = Epoch(epoch.as_u64() + 1);
                }
            }
        }
        if members.is_empty() {
            return;
        }
        let subscriptions: Vec<SyncCommitteeSubscription> = members.into_values().collect();
        let endpoint = "sync_committee_subscriptions";
        let subscribe = self.client.sync_committee_subscriptions(&subscriptions);
        let path = "eth/v1/validator/sync_committee_subscriptions";
        if let Err(error) = self
            .send(endpoint, path, None, &subscriptions, subscribe)
            .await
        {
            self.shared.record_error(slot, endpoint, &error);
        }
    }
}
