//! The validator-client mock: it drives a beacon node's REST API (or a
//! Phalanx node's validator API, which looks the same) the way a real
//! validator client does, signing with the keys it is given.
//!
//! [`VcMock::spawn`] starts one task. It bootstraps (genesis, spec, the
//! keys' validator indices, builder registrations), then wakes at every
//! slot start and spawns that slot's work:
//!
//! - at the start: the proposal (randao reveal, produce, sign, publish) and
//!   the selection proofs of attesters and sync-committee members (exchanged
//!   for the combined ones at the DV selection endpoints when
//!   `distributed`);
//! - at 1/3 of the slot: attestations and sync-committee messages;
//! - at 2/3: aggregates and contributions by the members the (combined)
//!   selection proofs elect.
//!
//! Duties are fetched for the current and the next epoch and refreshed at
//! every epoch start, together with `prepare_beacon_proposer` and the
//! committee subscriptions. Every
//! signature goes through one signer that applies the configured
//! [`Misbehaviour`], and every body through one place that can garble it
//! instead. Each duty's outcome is counted in [`VcStats`].
//!
//! Where each part lives: `client` (the running client and its slot loop),
//! `clock`, `roots` (what each object's signature signs), `duties`,
//! `proposer`, `attester`, `aggregation`, `sync_committee`, `registration`
//! (fee recipients and builder registrations), `misbehaviour` (the faults it
//! injects) and `stats` (what it counts). This module holds the handle and
//! its configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use phalanx_crypto::SecretKey;
use phalanx_eth::api::Genesis;
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::config::{NetworkConfig, PresetBase};
use phalanx_eth::{ExecutionAddress, MainnetEthSpec, MinimalEthSpec, Slot};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

mod aggregation;
mod attester;
mod client;
mod clock;
mod duties;
mod misbehaviour;
mod proposer;
mod registration;
mod roots;
mod stats;
mod sync_committee;

use client::Vc;
pub(crate) use roots::Roots;
use stats::Shared;
pub use stats::{Duty, DutyStats, SentKind, SentPartial, VcStats};

/// Where every validator asks its execution fees to go (0x00…01).
pub const FEE_RECIPIENT: ExecutionAddress = ExecutionAddress::with_last_byte(1);

/// The gas limit every builder registration asks for.
pub const GAS_LIMIT: u64 = 30_000_000;

/// The pause between start-up attempts while the node is not up.
const BOOTSTRAP_RETRY: Duration = Duration::from_millis(500);

/// What a [`VcMock`] connects to, signs with and how it behaves.
#[derive(Clone, Debug)]
pub struct VcMockConfig {
    /// The beacon node's (or the Phalanx validator API's) base URL.
    pub url: String,
    /// The keys it signs with: whole validator keys or key shares.
    pub keys: Vec<SecretKey>,
    /// Whether to exchange selection proofs at the DV selection endpoints.
    pub distributed: bool,
    /// Graffiti for proposed blocks (UTF-8, at most 32 bytes are used).
    pub graffiti: Option<String>,
    /// Honest, or the fault to inject.
    pub misbehaviour: Misbehaviour,
    /// Names this client in logs.
    pub label: String,
    /// Whether to keep a [`SentPartial`] of every attestation, sync message
    /// and selection proof sent (for latency measurements).
    pub record_sent: bool,
    /// Whether to ask for produced blocks as SSZ, as Lighthouse and Teku
    /// do, rather than JSON.
    pub ssz_blocks: bool,
}

impl VcMockConfig {
    /// An honest, non-distributed client of `keys` against `url`.
    pub fn new(url: impl Into<String>, keys: Vec<SecretKey>) -> VcMockConfig {
        VcMockConfig {
            url: url.into(),
            keys,
            distributed: false,
            graffiti: None,
            misbehaviour: Misbehaviour::Honest,
            label: "vc".into(),
            record_sent: false,
            ssz_blocks: false,
        }
    }
}

/// A fault the mock injects into everything it sends, to test how the node
/// it talks to copes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A correct validator client.
    #[default]
    Honest,
    /// Every signature is 96 bytes that are not a G2 point.
    GarbageSignatures,
    /// Every signature is valid, but by another (fixed, per key) random key.
    WrongKey,
    /// Every signature is by the right key, but over a different root.
    WrongMessage,
    /// Every body posted is not valid JSON for its endpoint.
    MalformedJson,
}

/// A running validator-client mock.
pub struct VcMock {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl VcMock {
    /// Starts the client on the current tokio runtime (it panics outside
    /// one); it runs until [`VcMock::stop`] or until dropped.
    pub fn spawn(config: VcMockConfig) -> VcMock {
        let shared = Arc::new(Shared {
            label: config.label.clone(),
            stats: Mutex::new(VcStats::new()),
            stopping: AtomicBool::new(false),
            sent: config.record_sent.then(|| Mutex::new(Vec::new())),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(main_task(config, shared.clone(), stopped));
        VcMock {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A snapshot of the counts so far.
    pub fn stats(&self) -> VcStats {
        self.shared.stats().clone()
    }

    /// What was sent so far (empty unless [`VcMockConfig::record_sent`]).
    pub fn sent_partials(&self) -> Vec<SentPartial> {
        self.shared.sent.as_ref().map_or_else(Vec::new, |sent| {
            sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
        })
    }

    /// Stops the client, waits for its tasks to end, and returns the final
    /// counts. Duties in flight are abandoned and not counted.
    pub async fn stop(mut self) -> VcStats {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::warn!(vc = %self.shared.label, %error, "validator-client mock task ended badly");
            }
        }
        self.stats()
    }
}

impl Drop for VcMock {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What start-up learns from the node before the preset is known.
struct Bootstrap {
    client: BeaconNodeClient,
    genesis: Genesis,
    network: NetworkConfig,
}

async fn main_task(config: VcMockConfig, shared: Arc<Shared>, stop: oneshot::Receiver<()>) {
    let mut tasks = JoinSet::new();
    tokio::select! {
        _ = stop => {}
        _ = drive(config, shared.clone(), &mut tasks) => {}
    }
    // Waits for the aborted duties to be dropped, so their tallies have
    // settled before the final counts are read.
    tasks.shutdown().await;
}

async fn drive(config: VcMockConfig, shared: Arc<Shared>, tasks: &mut JoinSet<()>) {
    let Some(boot) = bootstrap(&config, &shared).await else {
        return;
    };
    match boot.network.preset {
        PresetBase::Mainnet => {
            Arc::new(Vc::<MainnetEthSpec>::new(config, shared, boot))
                .run(tasks)
                .await
        }
        PresetBase::Minimal => {
            Arc::new(Vc::<MinimalEthSpec>::new(config, shared, boot))
                .run(tasks)
                .await
        }
    }
}

/// Reads genesis and spec, retrying while the node is not up.
async fn bootstrap(config: &VcMockConfig, shared: &Arc<Shared>) -> Option<Bootstrap> {
    let client = match BeaconNodeClient::new(std::slice::from_ref(&config.url), Timeouts::default())
    {
        Ok(client) => client,
        Err(error) => {
            shared.record_error(Slot(0), "start", &error);
            return None;
        }
    };
    loop {
        match tokio::join!(client.genesis(), client.spec()) {
            (Ok(genesis), Ok(network)) => {
                return Some(Bootstrap {
                    client,
                    genesis,
                    network,
                })
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(vc = %config.label, %error, "node not up yet");
            }
        }
        tokio::time::sleep(BOOTSTRAP_RETRY).await;
    }
}
