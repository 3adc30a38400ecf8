//! The running client: its keys, typed and raw clients and clocks, how it
//! sends and retries, and the loop that starts every slot's work.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use phalanx_eth::api::Genesis;
use phalanx_eth::client::{BeaconNodeClient, ClientError, Timeouts};
use phalanx_eth::config::UnknownFork;
use phalanx_eth::{EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot, ValidatorIndex};
use serde::Serialize;
use tokio::task::JoinSet;

use super::clock::SlotClock;
use super::duties::DutyBook;
use super::misbehaviour::{RawPoster, Validator};
use super::roots::Roots;
use super::stats::{DutyError, Shared};
use super::{Bootstrap, Misbehaviour, VcMockConfig, BOOTSTRAP_RETRY};
use crate::cluster::{sleep_until_ms, unix_ms};

/// The running client, generic over the network's preset.
pub(super) struct Vc<E: EthSpec> {
    label: String,
    pub(super) client: BeaconNodeClient,
    pub(super) raw: RawPoster,
    misbehaviour: Misbehaviour,
    pub(super) distributed: bool,
    pub(super) graffiti: Option<Root>,
    pub(super) roots: Roots,
    pub(super) clock: SlotClock,
    pub(super) genesis: Genesis,
    pub(super) validators: Vec<Validator>,
    pub(super) by_pubkey: BTreeMap<PublicKeyBytes, usize>,
    /// Validator indices found so far, to positions in `validators`.
    indices: Mutex<BTreeMap<ValidatorIndex, usize>>,
    duties: Mutex<DutyBook>,
    pub(super) shared: Arc<Shared>,
    spec: PhantomData<E>,
}

impl<E: EthSpec> Vc<E> {
    pub(super) fn new(config: VcMockConfig, shared: Arc<Shared>, boot: Bootstrap) -> Vc<E> {
        let slot_ms = boot.network.slot_duration_ms;
        // A request may take at most a slot (but at least a second): a hung
        // node then costs one slot's duties, never later ones.
        let request = Duration::from_millis(slot_ms.clamp(1000, 12_000));
        let timeouts = Timeouts {
            default: request,
            duties: request * 2,
            block_production: request,
            block_publication: request,
        };
        let base = config.url.trim_end_matches('/').to_string();
        // The URL was accepted at bootstrap, so only the timeouts differ
        // and the bootstrap client is merely a fallback.
        let client = BeaconNodeClient::new(std::slice::from_ref(&config.url), timeouts)
            .unwrap_or(boot.client);
        let client = if config.ssz_blocks {
            client.preferring_ssz_blocks()
        } else {
            client
        };
        let validators: Vec<Validator> = config
            .keys
            .into_iter()
            .map(|key| Validator::new(key, config.misbehaviour))
            .collect();
        let by_pubkey = validators
            .iter()
            .enumerate()
            .map(|(position, validator)| (validator.pubkey, position))
            .collect();
        Vc {
            label: config.label,
            client,
            raw: RawPoster {
                http: reqwest::Client::new(),
                base,
                timeout: request,
            },
            misbehaviour: config.misbehaviour,
            distributed: config.distributed,
            graffiti: config.graffiti.as_deref().map(graffiti_root),
            roots: Roots::from_genesis(boot.network.clone(), &boot.genesis),
            clock: SlotClock::new(boot.genesis.genesis_time, slot_ms),
            genesis: boot.genesis,
            validators,
            by_pubkey,
            indices: Mutex::new(BTreeMap::new()),
            duties: Mutex::new(DutyBook::default()),
            shared,
            spec: PhantomData,
        }
    }

    pub(super) fn book(&self) -> MutexGuard<'_, DutyBook> {
        self.duties.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn known_indices(&self) -> MutexGuard<'_, BTreeMap<ValidatorIndex, usize>> {
        self.indices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn our_indices(&self) -> Vec<ValidatorIndex> {
        self.known_indices().keys().copied().collect()
    }

    pub(super) fn validator(&self, pubkey: &PublicKeyBytes) -> Option<&Validator> {
        self.by_pubkey
            .get(pubkey)
            .and_then(|&position| self.validators.get(position))
    }

    pub(super) fn validator_by_index(&self, index: ValidatorIndex) -> Option<&Validator> {
        let position = *self.known_indices().get(&index)?;
        self.validators.get(position)
    }

    pub(super) fn sign(&self, validator: &Validator, root: Root) -> SignatureBytes {
        validator.sign(root, self.misbehaviour)
    }

    pub(super) fn malformed_bodies(&self) -> bool {
        self.misbehaviour == Misbehaviour::MalformedJson
    }

    /// Sends `body` with the typed call `honest`, or garbled to `path` when
    /// the client is to send malformed JSON.
    pub(super) async fn send<T: Serialize + Sync>(
        &self,
        endpoint: &'static str,
        path: &str,
        fork: Option<ForkName>,
        body: &T,
        honest: impl Future<Output = Result<(), ClientError>>,
    ) -> Result<(), DutyError> {
        if self.malformed_bodies() {
            self.raw.post(endpoint, path, fork, body).await
        } else {
            honest.await.map_err(DutyError::from)
        }
    }

    /// Calls `call` again while the node answers 404 (the data is not
    /// there yet), until the end of `slot`.
    pub(super) async fn until_available<T, Fut>(
        &self,
        slot: Slot,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, ClientError>
    where
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let retry_until = self.clock.start_ms(Slot(slot.as_u64() + 1));
        let pause = (self.clock.slot_ms / 20).clamp(20, 250);
        loop {
            match call().await {
                Err(error) if error.status() == Some(404) && unix_ms() + pause < retry_until => {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    pub(super) async fn run(self: Arc<Self>, tasks: &mut JoinSet<()>) {
        loop {
            match self.resolve_indices().await {
                Ok(()) if !self.known_indices().is_empty() => break,
                Ok(()) => {
                    tracing::debug!(vc = %self.label, "none of the keys is a known validator yet")
                }
                Err(error) => tracing::debug!(vc = %self.label, %error, "validators not resolved"),
            }
            tokio::time::sleep(BOOTSTRAP_RETRY).await;
        }
        let slots_per_epoch = self.roots.network.slots_per_epoch();
        let mut slot = self.clock.first_slot(unix_ms());
        tracing::info!(vc = %self.label, validators = self.known_indices().len(), first_slot = %slot, "validator-client mock started");
        tasks.spawn(self.clone().register(slot));
        tasks.spawn(self.clone().refresh_epoch(slot.epoch(slots_per_epoch)));
        let mut refreshed = slot.epoch(slots_per_epoch);
        loop {
            sleep_until_ms(self.clock.start_ms(slot)).await;
            while tasks.try_join_next().is_some() {}
            // A client that fell behind (a stalled runtime) joins the
            // current slot instead of working through stale ones.
            if let Some(current) = self.clock.slot_at(unix_ms()) {
                slot = slot.max(current);
            }
            let epoch = slot.epoch(slots_per_epoch);
            if epoch > refreshed {
                refreshed = epoch;
                tasks.spawn(self.clone().refresh_epoch(epoch));
            }
            tasks.spawn(self.clone().run_slot(slot));
            slot = Slot(slot.as_u64() + 1);
        }
    }

    /// Everything of one slot; nothing of it outlives the next slot.
    async fn run_slot(self: Arc<Self>, slot: Slot) {
        let fork = match self.roots.network.fork_at_slot(slot) {
            Ok(fork) => fork,
            Err(UnknownFork(name)) => {
                self.shared.record_error(
                    slot,
                    "fork",
                    &format!("fork {name} is unknown to this build; not signing"),
                );
                return;
            }
        };
        let deadline = self.clock.start_ms(Slot(slot.as_u64() + 2));
        let work = async {
            tokio::join!(
                self.propose(slot, fork),
                self.attest_and_aggregate(slot, fork),
                self.sync_committee(slot, fork),
            )
        };
        // Duties cut short are counted as failed by their tallies.
        let _ = tokio::time::timeout(
            Duration::from_millis(deadline.saturating_sub(unix_ms())),
            work,
        )
        .await;
    }
}

/// Graffiti as the 32 bytes a block carries: UTF-8, zero-padded, cut at 32.
fn graffiti_root(text: &str) -> Root {
    let mut bytes = [0u8; 32];
    let length = text.len().min(32);
    bytes[..length].copy_from_slice(&text.as_bytes()[..length]);
    Root::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graffiti_is_padded_and_cut() {
        assert_eq!(&graffiti_root("phalanx")[..8], b"phalanx\0");
        assert_eq!(graffiti_root(&"x".repeat(40)), Root::repeat_byte(b'x'));
    }
}
