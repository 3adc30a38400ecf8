//! The node under load: four `phalanx run` processes (one per operator,
//! threshold 3) on this machine over real p2p on 127.0.0.1, each with its
//! own beacon-node mock and validator-client mock, at mainnet timing.
//!
//! ```sh
//! cargo bench -p phalanx --bench node -- --validators 100
//! cargo bench -p phalanx --bench node -- --validators 1000
//! cargo bench -p phalanx --bench node -- --validators 10000
//! ```
//!
//! - The chain: mainnet preset (32-slot epochs, 512-member sync committee),
//!   12-second slots, Fulu from genesis, 100,000 validators of which the
//!   cluster's are the first; the others have keys nobody holds. With the
//!   mock's four committees per slot, committees have about 780 members and
//!   1 attester in 48 aggregates (mainnet: about 1 in 30); the cluster holds
//!   ten times the share of sync-committee seats it would among mainnet's
//!   ~1,000,000 validators. (A chain of 1,000,000 made the mock's
//!   attester-duty endpoint, which recomputes every validator's duty per
//!   request, take longer than the node's 6-second timeout.)
//! - The cluster is dealt directly (trusted dealer) and the validator-client
//!   mocks sign with the raw share keys: no keystore is written or read.
//! - Each node has its own beacon-node mock (the same deterministic chain),
//!   so every broadcast is known by node; the mocks and the validator-client
//!   mocks run in this process, sharing the two cores with the nodes.
//! - After a warm-up, a window of slots is measured: the nodes' CPU time
//!   (utime + stime of /proc/<pid>/stat) over the window divided by the
//!   validator-duties they completed in it, against the BLS work a
//!   validator-duty needs, measured here first; the latency of every
//!   attestation from the validator client's partial submission to its
//!   node's broadcast; the share broadcast by the deadline (2/3 of the
//!   slot); each node's memory (VmHWM, VmRSS of /proc/<pid>/status).
//!
//! The run's folder keeps the nodes' logs and `result.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use phalanx_crypto::batch::{verify_signature_sets, SignatureSet};
use phalanx_crypto::threshold::{combine, split};
use phalanx_crypto::{SecretKey, Signature};
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::config::PresetBase;
use phalanx_eth::devnet::Devnet;
use phalanx_eth::{Epoch, ForkName, ValidatorIndex};
use phalanx_sim::beacon::{BeaconMock, Submission, SubmissionKind};
use phalanx_sim::cluster::{
    beacon_config, genesis_ms_in, ports, sleep_until_ms, unix_ms, ChildProcess, Cluster, Operator,
    OtherValidators,
};
use phalanx_sim::vc::{SentKind, SentPartial, VcMock};

mod support;
use support::{clock_ticks, cpu_ticks, definition, instant, machine_busy_ticks, status_kib};

const OPERATORS: usize = 4;
const THRESHOLD: u32 = 3;

#[derive(Parser)]
#[command(about = "Four phalanx run processes under load at mainnet timing")]
struct Args {
    /// Distributed validators of the cluster.
    #[arg(long, default_value_t = 100)]
    validators: usize,
    /// Slots measured (default: 32, one epoch, up to 1,000 validators; 16 above).
    #[arg(long)]
    slots: Option<u64>,
    /// Slots after genesis before the measured window opens.
    #[arg(long, default_value_t = 3)]
    warmup_slots: u64,
    /// Validators on the chain in all: the cluster's first, then others.
    #[arg(long, default_value_t = 100_000)]
    chain_validators: usize,
    /// Slot duration in milliseconds.
    #[arg(long, default_value_t = 12_000)]
    slot_ms: u64,
    /// The fork in force from genesis.
    #[arg(long, default_value = "fulu")]
    fork: ForkName,
    /// The run's folder (a new temporary one if omitted; kept either way).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `phalanx` executable to run (default: the one built with this bench).
    #[arg(long)]
    phalanx: Option<PathBuf>,
    /// Passed by `cargo bench`; without it (`cargo test`) nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
}

// ---------------------------------------------------------------------------
// The BLS work of one validator-duty
// ---------------------------------------------------------------------------

/// Microseconds of each BLS operation a node does per validator-duty.
#[derive(Clone, Copy, Debug)]
struct Baseline {
    /// Verify the own validator client's partial against the own share.
    verify_own_us: f64,
    /// Batch-verify the three peers' partials of the duty (one batch of 3).
    batch_peers_us: f64,
    /// Combine t = 3 partials (mean over the four 3-subsets of 4 operators).
    combine_us: f64,
    /// Verify the combined signature under the group key.
    verify_combined_us: f64,
    /// Three sets' share of a batch of 512 sets (distinct keys and messages),
    /// CPU time over both cores: what batching across validators costs.
    batch_peers_amortized_us: f64,
}

impl Baseline {
    /// The BLS work of one validator-duty as the goal counts it.
    fn total_us(&self) -> f64 {
        self.verify_own_us + self.batch_peers_us + self.combine_us + self.verify_combined_us
    }

    /// The same with the peers' partials batched across validators.
    fn total_amortized_us(&self) -> f64 {
        self.verify_own_us
            + self.batch_peers_amortized_us
            + self.combine_us
            + self.verify_combined_us
    }

    fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "verify_own_us": self.verify_own_us,
            "batch_peers_us": self.batch_peers_us,
            "combine_us": self.combine_us,
            "verify_combined_us": self.verify_combined_us,
            "batch_peers_amortized_us": self.batch_peers_amortized_us,
            "total_us": self.total_us(),
            "total_amortized_us": self.total_amortized_us(),
        })
    }
}

/// The fastest of `blocks` blocks of `iterations` calls, per call, in µs:
/// on a shared machine the fastest block is the one least disturbed.
fn time_us(blocks: usize, iterations: usize, mut f: impl FnMut()) -> f64 {
    (0..blocks)
        .map(|_| {
            let start = instant();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / iterations as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn measure_baseline() -> Result<Baseline> {
    let mut rng = rand::rngs::OsRng;
    let secret = SecretKey::random(&mut rng);
    let group = secret.public_key();
    let dealt = split(&secret, THRESHOLD as usize, OPERATORS, &mut rng)?;
    let shares = dealt.secret_shares;
    let public: Vec<_> = shares.iter().map(|s| s.public_share().key).collect();
    let message = [0x5au8; 32];
    let partials: Vec<_> = shares.iter().map(|s| s.sign(&message)).collect();
    let own = &partials[0];
    let verify_own_us = time_us(30, 20, || {
        assert!(own.signature.verify(&public[0], &message));
    });
    let peers: Vec<SignatureSet<'_>> = (1..OPERATORS)
        .map(|i| SignatureSet::new(&message, &public[i], &partials[i].signature))
        .collect();
    let batch_peers_us = time_us(30, 10, || {
        assert!(verify_signature_sets(&peers, &mut rng));
    });
    let subsets: Vec<Vec<_>> = (0..OPERATORS)
        .map(|left_out| {
            partials
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != left_out)
                .map(|(_, p)| *p)
                .collect()
        })
        .collect();
    let combine_us = time_us(30, 20, || {
        for subset in &subsets {
            assert!(combine(subset, THRESHOLD as usize).is_ok());
        }
    }) / subsets.len() as f64;
    let combined = combine(&subsets[0], THRESHOLD as usize)?;
    let verify_combined_us = time_us(30, 20, || {
        assert!(combined.verify(&group, &message));
    });

    // Batches across validators, as a node gets them from one peer.
    const BATCH: usize = 512;
    let keys: Vec<SecretKey> = (0..BATCH).map(|_| SecretKey::random(&mut rng)).collect();
    let messages: Vec<[u8; 32]> = (0..BATCH).map(|i| [(i % 251) as u8; 32]).collect();
    let publics: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
    let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let sets: Vec<SignatureSet<'_>> = (0..BATCH)
        .map(|i| SignatureSet::new(&messages[i], &publics[i], &signatures[i]))
        .collect();
    let own_pid = std::process::id().to_string();
    let ticks = clock_ticks() as f64;
    // CPU time, as the batch's hashing runs on both cores; the least of a
    // few measurements, each a few hundred clock ticks long.
    let rounds = 4;
    let batch_peers_amortized_us = (0..5)
        .map(|_| {
            let before = cpu_ticks(&own_pid).unwrap_or(0);
            for _ in 0..rounds {
                assert!(verify_signature_sets(&sets, &mut rng));
            }
            let cpu_s = cpu_ticks(&own_pid).unwrap_or(0).saturating_sub(before) as f64 / ticks;
            cpu_s * 1e6 / (rounds * BATCH) as f64 * 3.0
        })
        .fold(f64::INFINITY, f64::min);
    Ok(Baseline {
        verify_own_us,
        batch_peers_us,
        combine_us,
        verify_combined_us,
        batch_peers_amortized_us,
    })
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/// The process id of a node, for /proc.
fn pid(node: &ChildProcess) -> String {
    node.id().map_or_else(String::new, |id| id.to_string())
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[derive(Debug, Default)]
struct Latency {
    samples: usize,
    p50_ms: Option<i64>,
    p99_ms: Option<i64>,
    max_ms: Option<i64>,
}

impl Latency {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.samples,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        })
    }
}

fn latency(mut values: Vec<i64>) -> Latency {
    values.sort_unstable();
    Latency {
        samples: values.len(),
        p50_ms: percentile(&values, 0.50),
        p99_ms: percentile(&values, 0.99),
        max_ms: values.last().copied(),
    }
}

fn show(l: &Latency) -> String {
    match (l.p50_ms, l.p99_ms, l.max_ms) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "p50 {p50} ms, p99 {p99} ms, max {max} ms ({} samples)",
            l.samples
        ),
        _ => "no samples".into(),
    }
}

/// The first valid broadcast of each (slot, validator) of a kind at one
/// beacon-node mock: ms since genesis.
fn broadcasts(
    submissions: &[Submission],
    kind: SubmissionKind,
    window: &std::ops::Range<u64>,
) -> BTreeMap<(u64, u64), u64> {
    let mut first = BTreeMap::new();
    for s in submissions {
        if s.kind == kind && s.valid && window.contains(&s.slot) {
            first
                .entry((s.slot, s.validator_index))
                .and_modify(|at: &mut u64| *at = (*at).min(s.received_ms))
                .or_insert(s.received_ms);
        }
    }
    first
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn main() -> Result<()> {
    let args = Args::parse();
    if !args.bench {
        println!("phalanx-node bench: skipped (run it with `cargo bench -p phalanx --bench node`)");
        return Ok(());
    }
    if args.validators == 0 || args.chain_validators < args.validators {
        bail!("--validators must be at least 1 and at most --chain-validators");
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "phalanx-node-bench-{}-{}",
            args.validators,
            unix_ms()
        )),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("phalanx-node bench in {}", dir.display());

    let baseline = measure_baseline()?;
    println!(
        "BLS per validator-duty: verify own {:.0} µs + batch of 3 peers {:.0} µs + combine {:.0} µs + verify combined {:.0} µs = {:.0} µs (peers batched across validators: {:.0} µs for 3 → {:.0} µs)",
        baseline.verify_own_us,
        baseline.batch_peers_us,
        baseline.combine_us,
        baseline.verify_combined_us,
        baseline.total_us(),
        baseline.batch_peers_amortized_us,
        baseline.total_amortized_us(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Mocks verify signatures inside their handlers: more workers than
        // cores keep one busy handler from stalling the others.
        .worker_threads(8)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args, dir, baseline))
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
async fn run(args: Args, dir: PathBuf, baseline: Baseline) -> Result<()> {
    let n = args.validators;
    let slots = args.slots.unwrap_or(if n <= 1000 { 32 } else { 16 });
    let network = Devnet::new(args.fork, args.slot_ms)
        .preset(PresetBase::Mainnet)
        .build();
    let slot_ms = args.slot_ms;
    let folder = |i: usize| format!("node{i}");
    for i in 0..OPERATORS {
        let node_dir = dir.join(folder(i));
        if node_dir.exists() {
            std::fs::remove_dir_all(&node_dir)?;
        }
    }
    let operators = Operator::create_all(&dir, OPERATORS, folder)?;
    // Each node has its own beacon-node mock.
    let beacons: Vec<SocketAddr> = (0..OPERATORS)
        .map(|_| ports::loopback_tcp())
        .collect::<std::io::Result<_>>()?;

    let dealing = instant();
    let cluster = tokio::task::spawn_blocking({
        let definition = definition("phalanx-node-bench", n, THRESHOLD, &network, &operators)?;
        let node_keys = operators.iter().map(|o| o.node_key.clone()).collect();
        move || Cluster::deal(&definition, node_keys)
    })
    .await
    .context("dealing")??;
    println!(
        "dealt {n} validators to {OPERATORS} operators (threshold {THRESHOLD}) in {:.1} s",
        dealing.elapsed().as_secs_f64()
    );
    cluster.write_lock(&operators)?;
    let exe = args
        .phalanx
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_phalanx")));

    // The nodes load and verify the lock, then wait for their beacon nodes.
    let starting = instant();
    let mut nodes = Vec::with_capacity(OPERATORS);
    for (operator, beacon) in operators.iter().zip(&beacons) {
        let command = operator.run_command(&exe, &format!("http://{beacon}"), false, false);
        let log = dir.join(format!("node{}.log", operator.index));
        nodes.push(ChildProcess::spawn(command, &log)?);
    }
    loop {
        let mut waiting = 0;
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(why) = node.exited() {
                bail!("node {i} exited: {why}");
            }
            if !node.log_contains("waiting for the beacon node") {
                waiting += 1;
            }
        }
        if waiting == 0 {
            break;
        }
        if starting.elapsed() > Duration::from_secs(900) {
            bail!("{waiting} nodes did not load their lock in 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "nodes loaded and verified the lock in {:.1} s",
        starting.elapsed().as_secs_f64()
    );

    // The chain: the cluster's validators, then keys that nobody holds (not
    // even valid points: the mocks decode them cheaply, as nothing).
    let chain = cluster.chain_validators(OtherValidators::UpTo(args.chain_validators));
    let genesis_ms = genesis_ms_in(20_000);
    let mut mocks = Vec::with_capacity(OPERATORS);
    for beacon in &beacons {
        let mut config = beacon_config(network.clone(), genesis_ms, chain.clone(), 7);
        config.listen = *beacon;
        mocks.push(
            BeaconMock::start(config)
                .await
                .context("starting a beacon-node mock")?,
        );
    }
    drop(chain);
    let vcs: Vec<VcMock> = cluster.validator_clients(&operators, |_, config| {
        config.record_sent = true;
    });

    sleep_until_ms(genesis_ms).await;
    let http = reqwest::Client::new();
    for (i, (node, operator)) in nodes.iter_mut().zip(&operators).enumerate() {
        if let Some(why) = node.exited() {
            bail!("node {i} exited: {why}");
        }
        let ready = http
            .get(format!("http://{}/readyz", operator.monitoring))
            .send()
            .await;
        match ready {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => println!(
                "node {i} not ready at genesis: {}",
                r.text().await.unwrap_or_default()
            ),
            Err(e) => println!("node {i} not ready at genesis: {e}"),
        }
    }

    // The window.
    let first = args.warmup_slots;
    let window = first..first + slots;
    let slot_start = |slot: u64| genesis_ms + slot * slot_ms;
    let ticks_per_s = clock_ticks() as f64;
    let pids: Vec<String> = nodes.iter().map(pid).collect();
    let own_pid = std::process::id().to_string();
    println!(
        "genesis at {genesis_ms}; warm-up {first} slots, then {slots} slots measured ({:.0} s)",
        (slots * slot_ms) as f64 / 1000.0
    );
    sleep_until_ms(slot_start(window.start)).await;
    let cpu_at = |pids: &[String]| -> Vec<u64> {
        pids.iter()
            .map(|p| cpu_ticks(p).unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let start_ticks = cpu_at(&pids);
    let bench_start_ticks = cpu_ticks(&own_pid).unwrap_or(0);
    let machine_start_ticks = machine_busy_ticks();
    let mut per_slot_cpu_s = Vec::new();
    let mut last = start_ticks.clone();
    for slot in window.clone() {
        sleep_until_ms(slot_start(slot + 1)).await;
        let now = cpu_at(&pids);
        let used: u64 = now
            .iter()
            .zip(&last)
            .map(|(a, b)| a.saturating_sub(*b))
            .sum();
        per_slot_cpu_s.push(used as f64 / ticks_per_s);
        last = now;
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(why) = node.exited() {
                bail!("node {i} exited during the window: {why}");
            }
        }
    }
    let end_ticks = last;
    let bench_cpu_s = cpu_ticks(&own_pid)
        .unwrap_or(0)
        .saturating_sub(bench_start_ticks) as f64
        / ticks_per_s;
    let machine_cpu_s =
        machine_busy_ticks().saturating_sub(machine_start_ticks) as f64 / ticks_per_s;
    let memory: Vec<(u64, u64)> = pids
        .iter()
        .map(|p| {
            (
                status_kib(p, "VmHWM:").unwrap_or(0),
                status_kib(p, "VmRSS:").unwrap_or(0),
            )
        })
        .collect();
    let node_cpu_s: Vec<f64> = end_ticks
        .iter()
        .zip(&start_ticks)
        .map(|(a, b)| a.saturating_sub(*b) as f64 / ticks_per_s)
        .collect();

    // Late broadcasts of the window's last slot still count (as late).
    sleep_until_ms(slot_start(window.end + 1)).await;
    let mut metrics = Vec::new();
    for operator in &operators {
        let text = match http
            .get(format!("http://{}/metrics", operator.monitoring))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        metrics.push(
            text.lines()
                .filter(|l| {
                    (l.starts_with("phalanx_duty_outcomes")
                        || l.starts_with("phalanx_peer_dropped"))
                        && !l.starts_with('#')
                })
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
    }
    let sent: Vec<Vec<SentPartial>> = vcs.iter().map(VcMock::sent_partials).collect();
    let mut vc_stats = Vec::new();
    for vc in vcs {
        vc_stats.push(vc.stop().await);
    }
    for node in &mut nodes {
        node.stop();
    }

    // What the window's duties were, from the chain.
    let client = BeaconNodeClient::new(&[mocks[0].url()], Timeouts::default())?;
    let indices: Vec<ValidatorIndex> = (0..n as u64).map(ValidatorIndex).collect();
    let per_epoch = network.slots_per_epoch();
    let epochs: BTreeSet<u64> = window.clone().map(|s| s / per_epoch).collect();
    let mut attester_duties = BTreeSet::new();
    for &epoch in &epochs {
        for duty in client.attester_duties(Epoch(epoch), &indices).await?.data {
            if window.contains(&duty.slot.0) {
                attester_duties.insert((duty.slot.0, duty.validator_index.0));
            }
        }
    }
    // The sync committee signing at slot s is the one of slot s + 1's epoch.
    let mut sync_members: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let sync_epochs: BTreeSet<u64> = window.clone().map(|s| (s + 1) / per_epoch).collect();
    for &epoch in &sync_epochs {
        let duties = client.sync_duties(Epoch(epoch), &indices).await?.data;
        sync_members.insert(epoch, duties.iter().map(|d| d.validator_index.0).collect());
    }
    let sync_duties: BTreeSet<(u64, u64)> = window
        .clone()
        .flat_map(|slot| {
            sync_members
                .get(&((slot + 1) / per_epoch))
                .into_iter()
                .flatten()
                .map(move |&v| (slot, v))
        })
        .collect();

    // Per node: broadcasts and their latencies.
    let deadline_ms = |slot: u64| slot * slot_ms + 2 * slot_ms / 3;
    let mut attestation_latency = Vec::new();
    let mut attestation_into_slot = Vec::new();
    let mut threshold_latency = Vec::new();
    let mut sync_latency = Vec::new();
    let mut selection_latency = Vec::new();
    let mut sync_selection_latency = Vec::new();
    let mut on_time_any: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut broadcast_any: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut node_rows = Vec::new();
    let mut node_duties_total = 0usize;
    // When the t-th validator client had sent each attestation's partial.
    let mut sent_by_duty: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for list in &sent {
        for s in list.iter().filter(|s| s.kind == SentKind::Attestation) {
            sent_by_duty
                .entry((s.slot, s.validator_index))
                .or_default()
                .push(s.sent_ms);
        }
    }
    for (i, mock) in mocks.iter().enumerate() {
        let submissions = mock.submissions();
        let attestations = broadcasts(&submissions, SubmissionKind::Attestation, &window);
        let sync = broadcasts(&submissions, SubmissionKind::SyncMessage, &window);
        let aggregates = broadcasts(&submissions, SubmissionKind::Aggregate, &window);
        let contributions = broadcasts(&submissions, SubmissionKind::Contribution, &window);
        let blocks = broadcasts(&submissions, SubmissionKind::Block, &window).len()
            + broadcasts(&submissions, SubmissionKind::BlindedBlock, &window).len();
        drop(submissions);
        let in_window: Vec<&SentPartial> = sent[i]
            .iter()
            .filter(|s| window.contains(&s.slot))
            .collect();
        let own_sent: BTreeMap<(SentKind, u64, u64), &SentPartial> = in_window
            .iter()
            .filter(|s| matches!(s.kind, SentKind::Attestation | SentKind::SyncMessage))
            .map(|s| ((s.kind, s.slot, s.validator_index), *s))
            .collect();
        let mut on_time = 0usize;
        for (&(slot, validator), &received) in &attestations {
            if !attester_duties.contains(&(slot, validator)) {
                continue;
            }
            broadcast_any.insert((slot, validator));
            if received <= deadline_ms(slot) {
                on_time += 1;
                on_time_any.insert((slot, validator));
            }
            let at = (genesis_ms + received) as i64;
            attestation_into_slot.push(received as i64 - (slot * slot_ms) as i64);
            if let Some(s) = own_sent.get(&(SentKind::Attestation, slot, validator)) {
                attestation_latency.push(at - s.sent_ms as i64);
            }
            if let Some(times) = sent_by_duty.get_mut(&(slot, validator)) {
                times.sort_unstable();
                if let Some(t) = times.get(THRESHOLD as usize - 1) {
                    threshold_latency.push(at - *t as i64);
                }
            }
        }
        for (&(slot, validator), &received) in &sync {
            if let Some(s) = own_sent.get(&(SentKind::SyncMessage, slot, validator)) {
                sync_latency.push((genesis_ms + received) as i64 - s.sent_ms as i64);
            }
        }
        // A sync-committee member in several subcommittees sends (and the
        // cluster combines) one proof for each.
        let mut selections = 0usize;
        let mut sync_selections = 0usize;
        for s in &in_window {
            let Some(answered) = s.answered_ms else {
                continue;
            };
            match s.kind {
                SentKind::BeaconSelection => {
                    selections += 1;
                    selection_latency.push(answered as i64 - s.sent_ms as i64);
                }
                SentKind::SyncSelection => {
                    sync_selections += 1;
                    sync_selection_latency.push(answered as i64 - s.sent_ms as i64);
                }
                _ => {}
            }
        }
        let duties = attestations.len()
            + sync.len()
            + aggregates.len()
            + contributions.len()
            + blocks
            + selections
            + sync_selections;
        node_duties_total += duties;
        node_rows.push(serde_json::json!({
            "node": i,
            "cpu_s": node_cpu_s[i],
            "vm_hwm_kib": memory[i].0,
            "vm_rss_kib": memory[i].1,
            "attestations": attestations.len(),
            "attestations_on_time": on_time,
            "sync_messages": sync.len(),
            "aggregates": aggregates.len(),
            "contributions": contributions.len(),
            "blocks": blocks,
            "selection_proofs": selections,
            "sync_selection_proofs": sync_selections,
            "validator_duties": duties,
            "metrics": metrics[i],
            "vc": vc_stats[i],
        }));
    }
    let total_cpu_s: f64 = node_cpu_s.iter().sum();
    let cpu_per_duty_us = if node_duties_total > 0 {
        total_cpu_s * 1e6 / node_duties_total as f64
    } else {
        f64::NAN
    };
    let expected = attester_duties.len();
    let on_time_share = if expected > 0 {
        on_time_any.len() as f64 / expected as f64
    } else {
        f64::NAN
    };
    let per_node_on_time: usize = node_rows
        .iter()
        .filter_map(|r| r["attestations_on_time"].as_u64())
        .sum::<u64>() as usize;
    let attestation_latency = latency(attestation_latency);
    let threshold_latency = latency(threshold_latency);
    let attestation_into_slot = latency(attestation_into_slot);
    let sync_latency = latency(sync_latency);
    let selection_latency = latency(selection_latency);
    let sync_selection_latency = latency(sync_selection_latency);
    let busiest_slot_cpu_s = per_slot_cpu_s.iter().copied().fold(0.0, f64::max);
    let other_cpu_s = (machine_cpu_s - total_cpu_s - bench_cpu_s).max(0.0);

    println!();
    println!(
        "{n} validators, {} on the chain, mainnet preset, {}, {slot_ms} ms slots; slots {}..{} measured",
        args.chain_validators, args.fork, window.start, window.end
    );
    println!(
        "attester duties in the window: {expected}; broadcast by some node: {}; by the deadline (2/3 slot) by some node: {} ({:.2} %); node broadcasts by the deadline: {per_node_on_time} of {}",
        broadcast_any.len(),
        on_time_any.len(),
        on_time_share * 100.0,
        expected * OPERATORS
    );
    println!(
        "attestation latency, own VC's partial sent → own node's broadcast received: {}",
        show(&attestation_latency)
    );
    println!(
        "attestation latency, 3rd VC's partial sent → each node's broadcast received: {}",
        show(&threshold_latency)
    );
    println!(
        "attestation broadcast, time into its slot: {}",
        show(&attestation_into_slot)
    );
    println!(
        "sync-committee duties in the window: {} (members × slots); latency own partial → broadcast: {}",
        sync_duties.len(),
        show(&sync_latency)
    );
    println!(
        "selection proofs (exchanged and combined) latency: attesters {}; sync members {}",
        show(&selection_latency),
        show(&sync_selection_latency)
    );
    for row in &node_rows {
        println!(
            "node {}: cpu {:.1} s, validator-duties {} (attestations {}, selections {}, sync messages {}, sync selections {}, aggregates {}, contributions {}, blocks {}), VmHWM {:.1} MiB, VmRSS {:.1} MiB",
            row["node"],
            row["cpu_s"].as_f64().unwrap_or(0.0),
            row["validator_duties"],
            row["attestations"],
            row["selection_proofs"],
            row["sync_messages"],
            row["sync_selection_proofs"],
            row["aggregates"],
            row["contributions"],
            row["blocks"],
            row["vm_hwm_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            row["vm_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
        for line in row["metrics"].as_array().into_iter().flatten() {
            if let Some(line) = line.as_str() {
                if !line.contains("outcome=\"success\"") {
                    println!("    {line}");
                }
            }
        }
    }
    println!(
        "CPU: nodes {total_cpu_s:.1} s over {:.0} s ({:.0} % of 2 cores; busiest slot {busiest_slot_cpu_s:.1} s); this process (mocks) {bench_cpu_s:.1} s; other processes {other_cpu_s:.1} s",
        (slots * slot_ms) as f64 / 1000.0,
        total_cpu_s / ((slots * slot_ms) as f64 / 1000.0 * 2.0) * 100.0,
    );
    println!(
        "CPU per validator-duty per node: {cpu_per_duty_us:.0} µs; BLS baseline {:.0} µs → {:.2}× (against peers batched across validators, {:.0} µs: {:.2}×)",
        baseline.total_us(),
        cpu_per_duty_us / baseline.total_us(),
        baseline.total_amortized_us(),
        cpu_per_duty_us / baseline.total_amortized_us(),
    );

    let result = serde_json::json!({
        "validators": n,
        "chain_validators": args.chain_validators,
        "fork": args.fork.to_string(),
        "preset": "mainnet",
        "slot_ms": slot_ms,
        "window": [window.start, window.end],
        "genesis_ms": genesis_ms,
        "baseline": baseline.to_json(),
        "attester_duties": expected,
        "attestations_broadcast_any": broadcast_any.len(),
        "attestations_on_time_any": on_time_any.len(),
        "attestation_on_time_share": on_time_share,
        "node_broadcasts_on_time": per_node_on_time,
        "attestation_latency": attestation_latency.to_json(),
        "attestation_threshold_latency": threshold_latency.to_json(),
        "attestation_into_slot": attestation_into_slot.to_json(),
        "sync_duties": sync_duties.len(),
        "sync_latency": sync_latency.to_json(),
        "selection_latency": selection_latency.to_json(),
        "sync_selection_latency": sync_selection_latency.to_json(),
        "node_cpu_s": total_cpu_s,
        "per_slot_node_cpu_s": per_slot_cpu_s,
        "bench_process_cpu_s": bench_cpu_s,
        "other_processes_cpu_s": other_cpu_s,
        "node_validator_duties": node_duties_total,
        "cpu_per_validator_duty_us": cpu_per_duty_us,
        "ratio": cpu_per_duty_us / baseline.total_us(),
        "ratio_amortized": cpu_per_duty_us / baseline.total_amortized_us(),
        "nodes": node_rows,
    });
    let path = dir.join("result.json");
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    println!("result in {}", path.display());
    write_sent(&dir, &sent)?;
    for mock in mocks {
        mock.shutdown();
    }
    Ok(())
}

/// Every recorded partial, for a closer look (one JSON line each).
fn write_sent(dir: &Path, sent: &[Vec<SentPartial>]) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("sent.jsonl"))?);
    for (i, list) in sent.iter().enumerate() {
        for s in list {
            let mut value = serde_json::to_value(s)?;
            value["vc"] = serde_json::json!(i);
            writeln!(file, "{value}")?;
        }
    }
    Ok(())
}
