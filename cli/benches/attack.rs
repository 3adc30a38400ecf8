//! One byzantine operator against three honest ones: three `phalanx run`
//! processes (operators 0–2, threshold 3 of 4, so every honest node is
//! needed) with their own beacon-node and validator-client mocks on
//! 127.0.0.1 at mainnet timing, and operator 3 replaced by an attacker
//! that holds its node key, its place in the lock and its key shares, and
//! runs one strategy after another as fast as the machine lets it. The
//! attacker is a process of its own (this bench, started again with a
//! plan) at a lower priority (`nice -n 10`): on the field it works on its
//! own machine, and here it must not take the two cores from the honest
//! nodes and their mocks more than a remote attacker could.
//!
//! ```sh
//! cargo bench -p phalanx --bench attack -- --validators 1000 --minutes 10
//! cargo bench -p phalanx --bench attack -- --minutes 2 --strategies invalid-partials,stream-flood
//! ```
//!
//! Each phase lasts `--minutes`: first `quiet` (the attacker is connected
//! and says nothing: the honest baseline), then each strategy. Per phase
//! the bench prints the attestation duties that an honest node broadcast by
//! the deadline (two thirds into the slot), the honest nodes' CPU per slot,
//! their peak resident memory over the phase (VmHWM, reset at the phase's
//! start) against 1.5× the quiet phase's, and the range of their resident
//! memory sampled once a slot (flat means no growth). The strategies:
//!
//! - `invalid-partials`: batches of one partial signature per validator,
//!   each over its own random root, with a valid curve point that
//!   verifies under nothing.
//! - `random-roots`: valid partials signed with the attacker's own shares
//!   over random roots, for every duty the cluster's validators have in
//!   this epoch and the next (asked of a beacon node, as any operator can).
//! - `big-proposals`: proposals of the largest value the protocol takes,
//!   repeated with new values, for every instance the attacker leads.
//! - `future-spam`: prepares, commits and round changes for instances not
//!   started yet, of every duty type (also those never agreed on), in every
//!   round, with new hashes.
//! - `round-change-amplification`: round changes with ever higher rounds
//!   for decided instances, signed and unsigned.
//! - `stream-flood`: as many concurrent streams as the transport opens,
//!   each carrying a frame of the largest size the protocol takes.
//! - `cross-cluster-replay`: messages signed with the attacker's node key
//!   for another cluster with the same operators.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use phalanx_consensus::{
    Committee, Kind, LeaderSelection, Message, OperatorIndex, RotatingLeader, Round, SignedMessage,
    Signer, Value, ValueHash, Wire,
};
use phalanx_crypto::SecretKey;
use phalanx_eth::config::PresetBase;
use phalanx_eth::devnet::Devnet;
use phalanx_eth::{ForkName, Slot};
use phalanx_node::duty::{Duty, DutyType};
use phalanx_node::parsigex::{
    parsigex_protocol, PartialBatch, PartialMessage, MAX_PARTIALS_PER_BATCH,
};
use phalanx_node::qbft::{consensus_protocol, NodeSigner};
use phalanx_node::value::DutyValue;
use phalanx_p2p::{Network, NetworkConfig as P2pConfig, PeerId};
use phalanx_sim::beacon::{BeaconMock, SubmissionKind};
use phalanx_sim::cluster::{
    beacon_config, genesis_ms_in, ports, sleep_until_ms, unix_ms, ChildProcess, Cluster, Operator,
    OtherValidators,
};
use phalanx_sim::vc::VcMock;
use rand::{Rng, RngCore, SeedableRng};
use tokio::sync::watch;

#[allow(dead_code, reason = "each bench uses a part of the shared readings")]
mod support;
use support::{clock_ticks, cpu_ticks, definition, status_kib};

const OPERATORS: usize = 4;
const THRESHOLD: u32 = 3;
const HONEST: usize = 3;
const ATTACKER: usize = 3;

#[derive(Parser)]
#[command(about = "One byzantine operator against three honest phalanx run processes")]
struct Args {
    /// Distributed validators of the cluster.
    #[arg(long, default_value_t = 1000)]
    validators: usize,
    /// Minutes of each phase (the quiet baseline, then each strategy).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// The strategies to run, in order (default: all).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<Strategy>,
    /// Sends the attacker keeps in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Validators on the chain in all: the cluster's first, then others.
    #[arg(long, default_value_t = 100_000)]
    chain_validators: usize,
    /// Slot duration in milliseconds.
    #[arg(long, default_value_t = 12_000)]
    slot_ms: u64,
    /// The run's folder (a new temporary one if omitted; kept either way).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `phalanx` executable to run (default: the one built with this bench).
    #[arg(long)]
    phalanx: Option<PathBuf>,
    /// Passed by `cargo bench`; without it (`cargo test`) nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Runs as the attacker's process, with the plan in this file (the
    /// bench starts it so).
    #[arg(long, hide = true)]
    attacker: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Strategy {
    InvalidPartials,
    RandomRoots,
    BigProposals,
    FutureSpam,
    RoundChangeAmplification,
    StreamFlood,
    CrossClusterReplay,
}

impl Strategy {
    const ALL: [Strategy; 7] = [
        Strategy::InvalidPartials,
        Strategy::RandomRoots,
        Strategy::BigProposals,
        Strategy::FutureSpam,
        Strategy::RoundChangeAmplification,
        Strategy::StreamFlood,
        Strategy::CrossClusterReplay,
    ];

    fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Strategy::InvalidPartials => "invalid-partials",
            Strategy::RandomRoots => "random-roots",
            Strategy::BigProposals => "big-proposals",
            Strategy::FutureSpam => "future-spam",
            Strategy::RoundChangeAmplification => "round-change-amplification",
            Strategy::StreamFlood => "stream-flood",
            Strategy::CrossClusterReplay => "cross-cluster-replay",
        }
    }
}

/// What the attacker knows and holds.
struct Attacker {
    network: Network,
    peers: Vec<PeerId>,
    signer: NodeSigner,
    lock_hash: [u8; 32],
    committee: Committee,
    /// The cluster's validators (group keys).
    validators: Vec<[u8; 48]>,
    /// The attacker's key shares, by validator.
    shares: Vec<SecretKey>,
    genesis_ms: u64,
    slot_ms: u64,
    consensus_limit: usize,
    parsigex_limit: usize,
    /// A valid compressed G2 point that verifies under none of the keys.
    stray_signature: Vec<u8>,
    /// The duties of the cluster's validators in the current and next
    /// epoch, by validator (as the attacker's beacon node gives them):
    /// what random roots are worth sending for.
    schedule: std::sync::RwLock<std::collections::BTreeMap<usize, Vec<Duty>>>,
}

/// What one phase's attack sent.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    messages: u64,
    bytes: u64,
    refused: u64,
}

impl Attacker {
    fn current_slot(&self) -> u64 {
        unix_ms().saturating_sub(self.genesis_ms) / self.slot_ms
    }

    fn sign(&self, message: Message<Duty>) -> SignedMessage<Duty> {
        let signature = self.signer.sign(&message.signing_bytes(&self.lock_hash));
        SignedMessage { message, signature }
    }

    /// Signed for a cluster with another lock hash and the same operators.
    fn sign_for_another_cluster(&self, message: Message<Duty>) -> SignedMessage<Duty> {
        let mut other = self.lock_hash;
        other[0] ^= 0xff;
        let signature = self.signer.sign(&message.signing_bytes(&other));
        SignedMessage { message, signature }
    }

    fn me(&self) -> OperatorIndex {
        OperatorIndex(ATTACKER as u32)
    }

    /// One message of `strategy`, encoded, with the protocol it goes on.
    fn next(&self, strategy: Strategy, rng: &mut impl RngCore) -> (&'static str, Vec<u8>) {
        let slot = self.current_slot();
        match strategy {
            Strategy::InvalidPartials => {
                // One partial per validator, as an honest batch has, so that
                // it passes the batch bounds and reaches verification.
                let partials = self
                    .validators
                    .iter()
                    .take(MAX_PARTIALS_PER_BATCH)
                    .map(|validator| PartialMessage {
                        duty: Duty::new(Slot(slot), DutyType::Attester),
                        validator: validator.to_vec(),
                        signing_root: rng.gen(),
                        signature: self.stray_signature.clone(),
                        block_root: None,
                        registration: None,
                    })
                    .collect();
                (
                    "parsigex",
                    self.encode(&PartialBatch(partials), self.parsigex_limit),
                )
            }
            Strategy::RandomRoots => {
                // Valid signatures: the root is signed, not the duty, so
                // one signature serves every duty of a validator. The
                // duties are those the validator has (a node refuses the
                // others), or, until they are known, every type and slot
                // of the window.
                let (v, duties) = {
                    let schedule = self.schedule.read().unwrap_or_else(|e| e.into_inner());
                    if schedule.is_empty() {
                        let v = rng.gen_range(0..self.validators.len());
                        let duties: Vec<Duty> = DutyType::ALL
                            .iter()
                            .flat_map(|&kind| {
                                (slot.saturating_sub(2)..slot + 64)
                                    .map(move |s| Duty::new(Slot(s), kind))
                            })
                            .collect();
                        (v, duties)
                    } else {
                        let at = rng.gen_range(0..schedule.len());
                        let (v, duties) = schedule.iter().nth(at).unwrap_or_else(|| unreachable!());
                        let current = Slot(slot.saturating_sub(2));
                        let duties = duties
                            .iter()
                            .filter(|d| d.slot >= current)
                            .copied()
                            .collect();
                        (*v, duties)
                    }
                };
                let root: [u8; 32] = rng.gen();
                let signature = self.shares[v].sign(&root).to_bytes().to_vec();
                let partials = duties
                    .into_iter()
                    .map(|duty| PartialMessage {
                        duty,
                        validator: self.validators[v].to_vec(),
                        signing_root: root,
                        signature: signature.clone(),
                        block_root: None,
                        registration: None,
                    })
                    .collect();
                (
                    "parsigex",
                    self.encode(&PartialBatch(partials), self.parsigex_limit),
                )
            }
            Strategy::BigProposals => {
                let led: Vec<Duty> = (slot..slot + 3)
                    .flat_map(|s| DutyType::ALL.map(|kind| Duty::new(Slot(s), kind)))
                    .filter(|duty| {
                        RotatingLeader.leader(duty, Round::FIRST, self.committee) == self.me()
                    })
                    .collect();
                let duty = led
                    .get(rng.gen_range(0..led.len().max(1)))
                    .copied()
                    .unwrap_or(Duty::new(Slot(slot + 1), DutyType::Attester));
                // The largest value that fits the frame with its envelope.
                let mut value = vec![0u8; self.consensus_limit.saturating_sub(4096)];
                let head = value.len().min(64);
                rng.fill_bytes(&mut value[..head]);
                let value = DutyValue(value);
                let proposal = self.sign(Message {
                    instance: duty,
                    round: Round::FIRST,
                    sender: self.me(),
                    kind: Kind::Proposal(value.value_hash()),
                });
                let wire: Wire<Duty, DutyValue> = Wire::Proposal {
                    proposal,
                    value,
                    justification: Default::default(),
                };
                ("qbft", self.encode(&wire, self.consensus_limit))
            }
            Strategy::FutureSpam => {
                let kind = DutyType::ALL[rng.gen_range(0..DutyType::ALL.len())];
                let duty = Duty::new(Slot(slot + 1), kind);
                let round = Round(rng.gen_range(1..=64));
                let hash = ValueHash(rng.gen());
                let message = Message {
                    instance: duty,
                    round,
                    sender: self.me(),
                    kind: match rng.gen_range(0..3) {
                        0 => Kind::Prepare(hash),
                        1 => Kind::Commit(hash),
                        _ => Kind::RoundChange(None),
                    },
                };
                let signed = self.sign(message);
                let wire: Wire<Duty, DutyValue> = match signed.message.kind {
                    Kind::Prepare(_) => Wire::Prepare(signed),
                    Kind::Commit(_) => Wire::Commit(signed),
                    _ => Wire::RoundChange {
                        round_change: signed,
                        prepared: None,
                    },
                };
                ("qbft", self.encode(&wire, self.consensus_limit))
            }
            Strategy::RoundChangeAmplification => {
                let duty = Duty::new(Slot(slot.saturating_sub(1)), DutyType::Attester);
                let round = Round(rng.gen_range(2..u64::MAX));
                let message = Message {
                    instance: duty,
                    round,
                    sender: self.me(),
                    kind: Kind::RoundChange(None),
                };
                let round_change = if rng.gen_bool(0.5) {
                    self.sign(message)
                } else {
                    SignedMessage {
                        message,
                        signature: phalanx_consensus::MessageSignature(vec![0; 65]),
                    }
                };
                let wire: Wire<Duty, DutyValue> = Wire::RoundChange {
                    round_change,
                    prepared: None,
                };
                ("qbft", self.encode(&wire, self.consensus_limit))
            }
            Strategy::StreamFlood => {
                let mut bytes = vec![0u8; self.parsigex_limit];
                rng.fill_bytes(&mut bytes[..64]);
                ("parsigex", bytes)
            }
            Strategy::CrossClusterReplay => {
                let duty = Duty::new(Slot(slot), DutyType::Attester);
                let hash = ValueHash(rng.gen());
                let message = Message {
                    instance: duty,
                    round: Round::FIRST,
                    sender: self.me(),
                    kind: Kind::Commit(hash),
                };
                let wire: Wire<Duty, DutyValue> =
                    Wire::Commit(self.sign_for_another_cluster(message));
                ("qbft", self.encode(&wire, self.consensus_limit))
            }
        }
    }

    fn encode<T: serde::Serialize>(&self, message: &T, limit: usize) -> Vec<u8> {
        phalanx_p2p::encode(message, limit).unwrap_or_default()
    }
}

/// Runs `strategy` until `stop` turns true, with `concurrency` sends in
/// flight to each honest peer.
async fn attack(
    attacker: Arc<Attacker>,
    strategy: Strategy,
    concurrency: usize,
    stop: watch::Receiver<bool>,
) -> Sent {
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let attacker = attacker.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(worker as u64);
            let mut sent = Sent::default();
            while !*stop.borrow() {
                let (protocol, bytes) = {
                    let attacker = attacker.clone();
                    let seed: u64 = rng.gen();
                    tokio::task::spawn_blocking(move || {
                        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
                        attacker.next(strategy, &mut rng)
                    })
                    .await
                    .unwrap_or(("qbft", Vec::new()))
                };
                let peer = attacker.peers[worker % HONEST];
                let len = bytes.len() as u64;
                match attacker.network.send(peer, protocol, bytes).await {
                    Ok(()) => {
                        sent.messages += 1;
                        sent.bytes += len;
                    }
                    Err(_) => sent.refused += 1,
                }
            }
            sent
        }));
    }
    let mut total = Sent::default();
    for task in tasks {
        if let Ok(sent) = task.await {
            total.messages += sent.messages;
            total.bytes += sent.bytes;
            total.refused += sent.refused;
        }
    }
    total
}

/// Keeps the attacker's schedule: each slot, the duties of the cluster's
/// validators (the chain's first) in the current and the next epoch, from
/// a beacon node of the chain.
async fn follow_duties(attacker: Arc<Attacker>, beacon: String) {
    use phalanx_eth::{Epoch, ValidatorIndex};
    let Ok(client) = phalanx_eth::client::BeaconNodeClient::new(&[beacon], Default::default())
    else {
        return;
    };
    let position: std::collections::HashMap<[u8; 48], usize> = attacker
        .validators
        .iter()
        .enumerate()
        .map(|(i, key)| (*key, i))
        .collect();
    let indices: Vec<ValidatorIndex> = (0..attacker.validators.len() as u64)
        .map(ValidatorIndex)
        .collect();
    let spe = 32; // the bench runs on the mainnet preset
    loop {
        let slot = attacker.current_slot();
        let epoch = slot / spe;
        let mut schedule: std::collections::BTreeMap<usize, Vec<Duty>> = Default::default();
        let mut add = |key: &phalanx_eth::PublicKeyBytes, duty: Duty| {
            if let Some(&v) = position.get(key.as_slice()) {
                schedule.entry(v).or_default().push(duty);
            }
        };
        for e in [epoch, epoch + 1] {
            if let Ok(duties) = client.attester_duties(Epoch(e), &indices).await {
                for d in duties.data {
                    add(&d.pubkey, Duty::new(d.slot, DutyType::Attester));
                    add(&d.pubkey, Duty::new(d.slot, DutyType::Aggregator));
                }
            }
            if let Ok(duties) = client.proposer_duties(Epoch(e)).await {
                for d in duties.data {
                    add(&d.pubkey, Duty::new(d.slot, DutyType::Proposer));
                }
            }
            if let Ok(duties) = client.sync_duties(Epoch(e), &indices).await {
                for d in duties.data {
                    for s in e * spe..(e + 1) * spe {
                        add(&d.pubkey, Duty::new(Slot(s), DutyType::SyncContribution));
                    }
                }
            }
        }
        if !schedule.is_empty() {
            *attacker.schedule.write().unwrap_or_else(|e| e.into_inner()) = schedule;
        }
        sleep_until_ms(attacker.genesis_ms + (slot + 1) * attacker.slot_ms).await;
    }
}

/// The attacker's process: joins the cluster as operator 3 with the plan's
/// key folder, lock and shares, runs each phase's strategy from its start
/// to its end, and writes what it sent in each.
async fn run_attacker(plan_path: &std::path::Path) -> Result<()> {
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(plan_path)?)?;
    let text = |key: &str| -> Result<String> {
        plan[key]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the plan has no {key}"))
    };
    let number = |key: &str| -> Result<u64> {
        plan[key]
            .as_u64()
            .with_context(|| format!("the plan has no {key}"))
    };
    let folder = PathBuf::from(text("folder")?);
    let key = phalanx_p2p::NodeKey::load(&folder.join(phalanx_p2p::NODE_KEY_FILE))?;
    let lock = phalanx_dkg::ClusterLock::load(&folder.join(phalanx_dkg::files::LOCK_FILE))?;
    let peers: Vec<PeerId> = lock
        .definition
        .enrs()?
        .iter()
        .map(|e| e.peer_id())
        .collect();
    let mut honest = Vec::new();
    for entry in plan["honest"]
        .as_array()
        .context("the plan has no honest")?
    {
        let peer: PeerId = entry["peer"].as_str().context("peer")?.parse()?;
        let address: phalanx_p2p::Multiaddr =
            entry["address"].as_str().context("address")?.parse()?;
        honest.push((peer, address));
    }
    let shares = plan["shares"]
        .as_array()
        .context("the plan has no shares")?
        .iter()
        .map(|hex| {
            let bytes = from_hex(hex.as_str().unwrap_or_default())?;
            Ok(SecretKey::from_bytes(&bytes)?)
        })
        .collect::<Result<Vec<SecretKey>>>()?;
    let consensus = consensus_protocol(number("max_blobs")?);
    let parsigex = parsigex_protocol();
    let mut registry = prometheus_client::registry::Registry::default();
    let (network, mut inbox) = Network::start(
        P2pConfig {
            key: key.clone(),
            operators: peers.clone(),
            addresses: honest.clone(),
            relays: Vec::new(),
            listen: vec![text("listen")?.parse()?],
            lock_hash: lock.hash_bytes()?,
            version: "phalanx/attacker".into(),
            protocols: vec![consensus.clone(), parsigex.clone()],
            send_timeout: Duration::from_secs(4),
        },
        &mut registry,
    )?;
    // What the honest nodes send the attacker is read and forgotten.
    for name in [consensus.name, parsigex.name] {
        if let Some(mut rx) = inbox.take(name) {
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
        }
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let stray = SecretKey::random(&mut rng).sign(b"nobody's message");
    let attacker = Arc::new(Attacker {
        network,
        peers: honest.iter().map(|(peer, _)| *peer).collect(),
        signer: NodeSigner(key),
        lock_hash: lock.hash_bytes()?,
        committee: Committee::new(OPERATORS as u32)?,
        validators: lock
            .validators
            .iter()
            .map(|v| v.public_key.to_bytes())
            .collect(),
        shares,
        genesis_ms: number("genesis_ms")?,
        slot_ms: number("slot_ms")?,
        consensus_limit: consensus.max_size,
        parsigex_limit: parsigex.max_size,
        stray_signature: stray.to_bytes().to_vec(),
        schedule: Default::default(),
    });
    tokio::spawn(follow_duties(attacker.clone(), text("beacon")?));
    let concurrency = usize::try_from(number("concurrency")?)?;
    let mut sent = Vec::new();
    for phase in plan["phases"]
        .as_array()
        .context("the plan has no phases")?
    {
        let start_ms = phase["start_ms"].as_u64().context("start_ms")?;
        let end_ms = phase["end_ms"].as_u64().context("end_ms")?;
        sleep_until_ms(start_ms).await;
        let strategy = phase["strategy"].as_str().and_then(Strategy::from_name);
        let (stop_tx, stop_rx) = watch::channel(false);
        let running =
            strategy.map(|s| tokio::spawn(attack(attacker.clone(), s, concurrency, stop_rx)));
        sleep_until_ms(end_ms).await;
        let _ = stop_tx.send(true);
        let phase_sent = match running {
            Some(task) => task.await.unwrap_or_default(),
            None => Sent::default(),
        };
        sent.push(serde_json::json!({
            "messages": phase_sent.messages,
            "bytes": phase_sent.bytes,
            "refused": phase_sent.refused,
        }));
    }
    std::fs::write(text("result")?, serde_json::to_vec_pretty(&sent)?)?;
    attacker.network.shutdown();
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        bail!("odd hex length");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?))
        .collect()
}

/// One phase's figures.
#[derive(Debug)]
struct Phase {
    name: &'static str,
    slots: std::ops::Range<u64>,
    on_time: usize,
    duties: usize,
    cpu_per_slot_s: Vec<f64>,
    peak_kib: Vec<u64>,
    rss_min_kib: u64,
    rss_max_kib: u64,
    sent: Sent,
}

impl Phase {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "phase": self.name,
            "slots": [self.slots.start, self.slots.end],
            "attestations_on_time": self.on_time,
            "attestation_duties": self.duties,
            "cpu_per_slot_s": self.cpu_per_slot_s,
            "peak_kib": self.peak_kib,
            "rss_min_kib": self.rss_min_kib,
            "rss_max_kib": self.rss_max_kib,
            "sent_messages": self.sent.messages,
            "sent_bytes": self.sent.bytes,
            "refused": self.sent.refused,
        })
    }
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn main() -> Result<()> {
    let args = Args::parse();
    if !args.bench {
        println!(
            "phalanx-attack bench: skipped (run it with `cargo bench -p phalanx --bench attack`)"
        );
        return Ok(());
    }
    if args.validators == 0 || args.chain_validators < args.validators {
        bail!("--validators must be at least 1 and at most --chain-validators");
    }
    if let Some(plan) = &args.attacker {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(run_attacker(plan));
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("phalanx-attack-bench-{}", unix_ms())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("phalanx-attack bench in {}", dir.display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args, dir))
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
async fn run(args: Args, dir: PathBuf) -> Result<()> {
    let n = args.validators;
    let slot_ms = args.slot_ms;
    let network = Devnet::new(ForkName::Fulu, slot_ms)
        .preset(PresetBase::Mainnet)
        .build();
    let folder = |i: usize| format!("node{i}");
    for i in 0..OPERATORS {
        let node_dir = dir.join(folder(i));
        if node_dir.exists() {
            std::fs::remove_dir_all(&node_dir)?;
        }
    }
    let operators = Operator::create_all(&dir, OPERATORS, folder)?;
    let beacons: Vec<SocketAddr> = (0..HONEST)
        .map(|_| ports::loopback_tcp())
        .collect::<std::io::Result<_>>()?;
    let cluster = tokio::task::spawn_blocking({
        let definition = definition("phalanx-attack-bench", n, THRESHOLD, &network, &operators)?;
        let node_keys = operators.iter().map(|o| o.node_key.clone()).collect();
        move || Cluster::deal(&definition, node_keys)
    })
    .await
    .context("dealing")??;
    cluster.write_lock(&operators)?;
    let exe = args
        .phalanx
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_phalanx")));
    let mut nodes = Vec::with_capacity(HONEST);
    for (operator, beacon) in operators.iter().take(HONEST).zip(&beacons) {
        let command = operator.run_command(&exe, &format!("http://{beacon}"), false, false);
        let log = dir.join(format!("node{}.log", operator.index));
        nodes.push(ChildProcess::spawn(command, &log)?);
    }
    loop {
        let waiting = nodes
            .iter_mut()
            .filter(|node| !node.log_contains("waiting for the beacon node"))
            .count();
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(why) = node.exited() {
                bail!("node {i} exited: {why}");
            }
        }
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The attacker: operator 3's key, lock and shares, in a process of its
    // own at a lower priority (an attacker's work is done on its own
    // machine; here it shares the two cores and must not starve the honest
    // nodes and mocks of them more than a remote one would).
    let genesis_ms = genesis_ms_in(20_000);
    let strategies = if args.strategies.is_empty() {
        Strategy::ALL.to_vec()
    } else {
        args.strategies.clone()
    };
    let phase_slots = ((args.minutes * 60_000.0) / slot_ms as f64).ceil().max(2.0) as u64;
    let slot_start = |slot: u64| genesis_ms + slot * slot_ms;
    let mut plan: Vec<(&'static str, Option<Strategy>, std::ops::Range<u64>)> = Vec::new();
    let mut next_slot = 3u64;
    for (name, strategy) in
        std::iter::once(("quiet", None)).chain(strategies.iter().map(|s| (s.name(), Some(*s))))
    {
        plan.push((name, strategy, next_slot..next_slot + phase_slots));
        next_slot += phase_slots;
    }
    let attacker_plan = dir.join("attacker-plan.json");
    let attacker_result = dir.join("attacker-result.json");
    let _ = std::fs::remove_file(&attacker_result);
    let plan_json = serde_json::json!({
        "folder": operators[ATTACKER].dir,
        "listen": operators[ATTACKER].p2p_listen().to_string(),
        "beacon": format!("http://{}", beacons[0]),
        "honest": operators.iter().take(HONEST).map(|o| serde_json::json!({
            "peer": o.node_key.peer_id().to_string(),
            "address": o.p2p_listen().to_string(),
        })).collect::<Vec<_>>(),
        // Secrets of a throw-away test cluster, in the bench's own folder.
        "shares": cluster.share_keys(ATTACKER).iter().map(|k| to_hex(&k.to_bytes()[..])).collect::<Vec<_>>(),
        "genesis_ms": genesis_ms,
        "slot_ms": slot_ms,
        "max_blobs": network.max_blobs_per_block_ever(),
        "concurrency": args.concurrency,
        "phases": plan.iter().map(|(_, strategy, slots)| serde_json::json!({
            "strategy": strategy.map(Strategy::name),
            "start_ms": slot_start(slots.start),
            "end_ms": slot_start(slots.end),
        })).collect::<Vec<_>>(),
        "result": attacker_result,
    });
    std::fs::write(&attacker_plan, serde_json::to_vec_pretty(&plan_json)?)?;
    let mut nice = std::process::Command::new("nice");
    nice.arg("-n")
        .arg("10")
        .arg(std::env::current_exe()?)
        .arg("--bench")
        .arg("--attacker")
        .arg(&attacker_plan);
    let mut attacker = ChildProcess::spawn(nice, &dir.join("attacker.log"))?;

    let chain = cluster.chain_validators(OtherValidators::UpTo(args.chain_validators));
    let mut mocks = Vec::with_capacity(HONEST);
    for beacon in &beacons {
        let mut config = beacon_config(network.clone(), genesis_ms, chain.clone(), 7);
        config.listen = *beacon;
        mocks.push(BeaconMock::start(config).await?);
    }
    drop(chain);
    let vcs: Vec<VcMock> = cluster.validator_clients(&operators[..HONEST], |_, _| {});
    sleep_until_ms(genesis_ms).await;

    let pids: Vec<String> = nodes
        .iter()
        .map(|n| n.id().map_or_else(String::new, |id| id.to_string()))
        .collect();
    let ticks = clock_ticks() as f64;
    let mut phases = Vec::new();
    println!(
        "{n} validators, {HONEST} honest nodes and an attacker, phases of {phase_slots} slots"
    );
    for (name, _, slots) in plan {
        sleep_until_ms(slot_start(slots.start)).await;
        for pid in &pids {
            // Resets VmHWM, so that the peak is this phase's.
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
        let mut cpu_per_slot_s = Vec::new();
        let (mut rss_min, mut rss_max) = (u64::MAX, 0u64);
        let mut last: Vec<u64> = pids.iter().map(|p| cpu_ticks(p).unwrap_or(0)).collect();
        for slot in slots.clone() {
            sleep_until_ms(slot_start(slot + 1)).await;
            let now: Vec<u64> = pids.iter().map(|p| cpu_ticks(p).unwrap_or(0)).collect();
            let used: u64 = now
                .iter()
                .zip(&last)
                .map(|(a, b)| a.saturating_sub(*b))
                .sum();
            cpu_per_slot_s.push(used as f64 / ticks / HONEST as f64);
            last = now;
            for pid in &pids {
                let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
                rss_min = rss_min.min(rss);
                rss_max = rss_max.max(rss);
            }
            for (i, node) in nodes.iter_mut().enumerate() {
                if let Some(why) = node.exited() {
                    bail!("honest node {i} exited during {name}: {why}");
                }
            }
            if let Some(why) = attacker.exited() {
                bail!("the attacker exited during {name}: {why}");
            }
        }
        let peak_kib = pids
            .iter()
            .map(|p| status_kib(p, "VmHWM:").unwrap_or(0))
            .collect();
        phases.push(Phase {
            name,
            slots,
            on_time: 0,
            duties: 0,
            cpu_per_slot_s,
            peak_kib,
            rss_min_kib: rss_min,
            rss_max_kib: rss_max,
            sent: Sent::default(),
        });
    }
    sleep_until_ms(slot_start(next_slot + 1)).await;
    // What the attacker sent in each phase, once it has written it.
    let mut waited = 0;
    while attacker.exited().is_none() && waited < 600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    attacker.stop();
    let sent: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&attacker_result).context("the attacker's result")?)?;
    for (phase, sent) in phases.iter_mut().zip(&sent) {
        phase.sent = Sent {
            messages: sent["messages"].as_u64().unwrap_or(0),
            bytes: sent["bytes"].as_u64().unwrap_or(0),
            refused: sent["refused"].as_u64().unwrap_or(0),
        };
    }
    for vc in vcs {
        vc.stop().await;
    }
    for node in &mut nodes {
        node.stop();
    }

    // Attestation duties of each phase, and which an honest node broadcast by the deadline.
    let client = phalanx_eth::client::BeaconNodeClient::new(
        &[mocks[0].url()],
        phalanx_eth::client::Timeouts::default(),
    )?;
    let indices: Vec<phalanx_eth::ValidatorIndex> =
        (0..n as u64).map(phalanx_eth::ValidatorIndex).collect();
    let per_epoch = network.slots_per_epoch();
    let mut duties = std::collections::BTreeSet::new();
    for epoch in 0..=next_slot / per_epoch {
        for duty in client
            .attester_duties(phalanx_eth::Epoch(epoch), &indices)
            .await?
            .data
        {
            duties.insert((duty.slot.0, duty.validator_index.0));
        }
    }
    let deadline_ms = |slot: u64| slot * slot_ms + 2 * slot_ms / 3;
    let mut on_time = std::collections::BTreeSet::new();
    for mock in &mocks {
        for s in mock.submissions() {
            if s.kind == SubmissionKind::Attestation
                && s.valid
                && s.received_ms <= deadline_ms(s.slot)
            {
                on_time.insert((s.slot, s.validator_index));
            }
        }
    }
    for phase in &mut phases {
        let in_phase: Vec<&(u64, u64)> = duties
            .iter()
            .filter(|(slot, _)| phase.slots.contains(slot))
            .collect();
        phase.duties = in_phase.len();
        phase.on_time = in_phase.iter().filter(|d| on_time.contains(**d)).count();
    }

    let quiet_peak = phases
        .first()
        .map(|p| p.peak_kib.iter().copied().max().unwrap_or(0))
        .unwrap_or(0);
    println!();
    println!(
        "| phase | attestations on time | CPU per honest node per slot (mean, max) | peak RSS (max node) vs 1.5× quiet | RSS range over the phase | attacker sent (refused) |"
    );
    println!("|---|---|---|---|---|---|");
    for phase in &phases {
        let mean =
            phase.cpu_per_slot_s.iter().sum::<f64>() / phase.cpu_per_slot_s.len().max(1) as f64;
        let max = phase.cpu_per_slot_s.iter().copied().fold(0.0, f64::max);
        let peak = phase.peak_kib.iter().copied().max().unwrap_or(0);
        println!(
            "| {} | {} of {} ({:.2} %) | {:.0} ms, {:.0} ms | {:.1} MiB ≤ {:.1} MiB: {} | {:.1}–{:.1} MiB | {} msgs, {:.1} MB ({}) |",
            phase.name,
            phase.on_time,
            phase.duties,
            100.0 * phase.on_time as f64 / phase.duties.max(1) as f64,
            mean * 1000.0,
            max * 1000.0,
            peak as f64 / 1024.0,
            quiet_peak as f64 * 1.5 / 1024.0,
            if peak as f64 <= quiet_peak as f64 * 1.5 { "yes" } else { "NO" },
            phase.rss_min_kib as f64 / 1024.0,
            phase.rss_max_kib as f64 / 1024.0,
            phase.sent.messages,
            phase.sent.bytes as f64 / 1e6,
            phase.sent.refused,
        );
    }
    let result = serde_json::json!({
        "validators": n,
        "slot_ms": slot_ms,
        "phases": phases.iter().map(Phase::to_json).collect::<Vec<_>>(),
    });
    let path = dir.join("result.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)?;
    println!("result in {}", path.display());
    Ok(())
}
