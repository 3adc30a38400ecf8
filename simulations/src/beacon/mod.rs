//! The beacon-node mock: a deterministic simulated chain served over the
//! standard beacon-node REST API, so that validator clients and the Phalanx
//! node can run with no outside service.
//!
//! - The chain (`Chain`) is a pure function of the seed and the slot:
//!   every slot has a block whose root is `sha256("block" ‖ seed ‖ slot)`;
//!   shuffling, proposers and sync committees come from seeded hashes. Time
//!   is an input (milliseconds since genesis); only the HTTP edge reads the
//!   clock.
//! - Every submission (attestation, aggregate, block, sync message,
//!   contribution, exit, registration) is checked as a beacon node would:
//!   the right signer, the spec domain of its epoch, the BLS signature. It is
//!   answered 200 or 400 and kept as a [`Submission`], in memory and
//!   optionally as a JSON line.
//! - Accepted attestations and sync-committee messages are pooled, so that
//!   aggregators fetch real aggregates of what was sent.
//!
//! Start one with [`BeaconMock::start`], on a network configuration such as
//! a [`Devnet`]'s.
//!
//! Where each part lives: `chain` (slots, forks, roots, committees, duties),
//! `checks` (verifying a submission), `production` (attestation data and
//! blocks), `pools` (what aggregators draw from), `node` (the server state
//! and its slot ticker) and `http` (router, handlers, query parsing, error
//! responses). This module holds the handle, its configuration and what a
//! submission records.
//!
//! [`Devnet`]: phalanx_eth::devnet::Devnet

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use phalanx_crypto::Signature;
use phalanx_eth::config::{NetworkConfig, PresetBase};
use phalanx_eth::{MainnetEthSpec, MinimalEthSpec, PublicKeyBytes, Root, SignatureBytes};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

mod chain;
mod checks;
mod http;
mod node;
mod pools;
mod production;

pub(crate) use chain::Chain;
use node::Node;

/// `MAXIMUM_GOSSIP_CLOCK_DISPARITY`: how early a message for a slot may come.
const CLOCK_DISPARITY_MS: u64 = 500;
/// `ATTESTATION_PROPAGATION_SLOT_RANGE`: how old an attestation may be.
const ATTESTATION_PROPAGATION_SLOT_RANGE: u64 = 32;

/// How to start a [`BeaconMock`].
#[derive(Clone, Debug)]
pub struct BeaconMockConfig {
    /// The network: preset, fork epochs and versions, slot duration.
    pub network: NetworkConfig,
    /// Unix seconds of slot 0.
    pub genesis_time: u64,
    /// The chain's genesis validators root, which every signature binds.
    pub genesis_validators_root: Root,
    /// The validators: validator `i` has index `i`; all are active from
    /// genesis with 32 ETH.
    pub validators: Vec<PublicKeyBytes>,
    /// Fixes block roots, shuffling, proposers and sync committees.
    pub seed: u64,
    /// If set, every accepted or refused submission is appended to this
    /// file as one JSON line.
    pub record: Option<PathBuf>,
    /// Where to listen (`127.0.0.1:0` in tests).
    pub listen: SocketAddr,
}

/// What kind of message a [`Submission`] carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionKind {
    /// An attestation: `Attestation` before Electra, `SingleAttestation` from Electra on.
    Attestation,
    /// A signed aggregate and proof.
    Aggregate,
    /// A signed full block (block contents from Deneb on).
    Block,
    /// A signed blinded block.
    BlindedBlock,
    /// A sync-committee message.
    SyncMessage,
    /// A signed contribution and proof.
    Contribution,
    /// A signed voluntary exit.
    VoluntaryExit,
    /// A signed builder registration.
    Registration,
}

/// One submitted message as the mock checked it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    /// What it is.
    pub kind: SubmissionKind,
    /// The fork in force at `slot`.
    pub fork: String,
    /// The slot it is for (an exit: its epoch's first slot; a registration:
    /// the slot it arrived in).
    pub slot: u64,
    /// The validator that must have signed it; `u64::MAX` when the message
    /// names none (e.g. aggregation bits that do not point at one member).
    pub validator_index: u64,
    /// `0x` hex of the signer's key; empty when the chain has no such validator.
    pub pubkey: String,
    /// `0x` hex of exactly what `signature` must sign.
    pub signing_root: String,
    /// `0x` hex of the signature submitted.
    pub signature: String,
    /// Whether `signature` is `pubkey`'s BLS signature over `signing_root`.
    pub valid: bool,
    /// Whether every check passed (`valid` and the rest: signer, data, timing),
    /// so that the mock answered 200.
    #[serde(default)]
    pub accepted: bool,
    /// What failed, when refused.
    #[serde(default)]
    pub error: Option<String>,
    /// The submitted JSON object.
    pub body: Value,
    /// Milliseconds since genesis at reception (0 before genesis).
    pub received_ms: u64,
}

/// A running beacon-node mock. Dropping it (or [`BeaconMock::shutdown`])
/// stops the server and ends open event streams.
pub struct BeaconMock {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl BeaconMock {
    /// Binds `config.listen` and serves the simulated chain until dropped.
    pub async fn start(config: BeaconMockConfig) -> std::io::Result<BeaconMock> {
        let record = match &config.record {
            Some(path) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
            None => None,
        };
        let (disconnect, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            down: AtomicBool::new(false),
            submissions: Mutex::new(Vec::new()),
            record,
            disconnect,
        });
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let (stop, stop_receiver) = watch::channel(false);
        let router = match config.network.preset {
            PresetBase::Mainnet => {
                Node::<MainnetEthSpec>::start(config, shared.clone(), stop_receiver.clone())
            }
            PresetBase::Minimal => {
                Node::<MinimalEthSpec>::start(config, shared.clone(), stop_receiver.clone())
            }
        };
        let mut stopped = stop_receiver;
        tokio::spawn(async move {
            let signal = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "beacon mock server failed");
            }
        });
        tracing::info!(%address, "beacon mock listening");
        Ok(BeaconMock {
            address,
            shared,
            stop,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// While down, every request is answered 503 and event streams end.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.shared
                .disconnect
                .send_modify(|generation| *generation += 1);
        }
    }

    /// Everything submitted so far, in order of arrival.
    pub fn submissions(&self) -> Vec<Submission> {
        lock(&self.shared.submissions).clone()
    }

    /// Stops the server (the same as dropping the mock).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for BeaconMock {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        // Open event streams would otherwise hold the graceful shutdown.
        self.shared
            .disconnect
            .send_modify(|generation| *generation += 1);
    }
}

/// What the server's handlers share with the [`BeaconMock`] handle.
struct Shared {
    down: AtomicBool,
    submissions: Mutex<Vec<Submission>>,
    record: Option<Mutex<File>>,
    /// Bumped to end every open event stream.
    disconnect: watch::Sender<u64>,
}

impl Shared {
    fn record(&self, submission: Submission) {
        if let Some(file) = &self.record {
            match serde_json::to_string(&submission) {
                Ok(mut line) => {
                    line.push('\n');
                    // One write per line, so a reader never sees half of one.
                    let mut file = lock(file);
                    if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.flush())
                    {
                        tracing::warn!(%error, "cannot append to the submission record");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot encode a submission"),
            }
        }
        lock(&self.submissions).push(submission);
    }
}

/// Locks a mutex; a panic elsewhere while holding it leaves data that is
/// still consistent here (every update is a single push or insert).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn digest_u64(parts: &[&[u8]]) -> u64 {
    let hash = digest(parts);
    let mut word = [0u8; 8];
    word.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(word)
}

fn infinity_signature() -> SignatureBytes {
    SignatureBytes::from(Signature::infinity().to_bytes())
}
