//! `phalanx devnet`: a whole distributed-validator cluster on this machine,
//! with no outside service. Four operators run the key-generation ceremony
//! over p2p on loopback, four nodes run on the embedded simulated beacon
//! chain, four validator-client mocks sign with their shares. One node is
//! stopped at epoch 2 and restarted at epoch 4; a live table shows each
//! slot's duties as the beacon chain received them, and a summary ends it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use phalanx_crypto::keystore::KdfSetting;
use phalanx_dkg::definition::{BuilderSpec, ClusterDefinition, NetworkSpec, ValidatorSpec};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{ExecutionAddress, ForkName, Gwei};
use phalanx_sim::beacon::{BeaconMock, Submission, SubmissionKind};
use phalanx_sim::cluster::{
    beacon_config, genesis_ms_in, ports, unix_ms, Cluster, InProcessNode, Operator,
    OtherValidators, GENESIS_VALIDATORS_ROOT,
};
use phalanx_sim::vc::{Misbehaviour, VcMock};

const OPERATORS: usize = 4;
const THRESHOLD: u32 = 3;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DevnetFork {
    Altair,
    Bellatrix,
    Capella,
    Deneb,
    Electra,
    Fulu,
}

impl DevnetFork {
    fn fork(self) -> ForkName {
        match self {
            DevnetFork::Altair => ForkName::Altair,
            DevnetFork::Bellatrix => ForkName::Bellatrix,
            DevnetFork::Capella => ForkName::Capella,
            DevnetFork::Deneb => ForkName::Deneb,
            DevnetFork::Electra => ForkName::Electra,
            DevnetFork::Fulu => ForkName::Fulu,
        }
    }
}

#[derive(Args)]
pub(crate) struct DevnetArgs {
    /// Where the operators' folders, the submissions record and the summary
    /// go (a new temporary folder if omitted; kept either way).
    #[arg(long, env = "PHALANX_DEVNET_DIR")]
    dir: Option<PathBuf>,
    /// Distributed validators to create.
    #[arg(long, default_value_t = 8)]
    validators: usize,
    /// Other validators on the simulated chain (fill the committees).
    #[arg(long, default_value_t = 24)]
    other_validators: usize,
    /// Epochs to run (8 slots each, minimal preset).
    #[arg(long, default_value_t = 6)]
    epochs: u64,
    /// Slot duration in milliseconds.
    #[arg(long, default_value_t = 2000)]
    slot_ms: u64,
    /// The fork the chain is in from genesis.
    #[arg(long, value_enum, default_value_t = DevnetFork::Electra)]
    fork: DevnetFork,
    /// Do not stop node 3 at epoch 2 (and restart it at epoch 4).
    #[arg(long)]
    no_chaos: bool,
}

impl DevnetArgs {
    /// The devnet's folder, created (a new temporary one unless `--dir`).
    pub(crate) fn prepare_dir(&self) -> Result<PathBuf> {
        let dir = match &self.dir {
            Some(dir) => dir.clone(),
            None => std::env::temp_dir().join(format!("phalanx-devnet-{}", unix_ms())),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Fixes the folder (so that logs and output share it).
    pub(crate) fn set_dir(&mut self, dir: PathBuf) {
        self.dir = Some(dir);
    }
}

/// Runs the devnet.
#[expect(
    clippy::print_stdout,
    reason = "the live table and summary are the command's output"
)]
pub(crate) async fn devnet(args: DevnetArgs) -> Result<()> {
    if args.validators == 0 || args.epochs < 2 {
        bail!("a devnet needs at least one validator and two epochs");
    }
    let dir = args.prepare_dir()?;
    let network = NetworkConfig::devnet(args.fork.fork(), args.slot_ms);
    let slots_per_epoch = network.slots_per_epoch();
    println!("Phalanx devnet in {} (logs in devnet.log)", dir.display());
    println!(
        "{OPERATORS} operators, threshold {THRESHOLD}, {} distributed validators, {} fork, {} ms slots, {} epochs",
        args.validators,
        args.fork.fork(),
        args.slot_ms,
        args.epochs
    );

    // 1. Operators: node keys and ENRs on loopback.
    let operators = Operator::create_all(&dir, OPERATORS, |i| format!("operator-{i}"))?;
    let enrs: Vec<_> = operators
        .iter()
        .map(|o| Ok(o.enr(Some(ports::udp()?))))
        .collect::<Result<_>>()?;

    // 2. The key-generation ceremony over p2p.
    let genesis_estimate = unix_ms() / 1000 + 30;
    let specs = (0..args.validators)
        .map(|i| ValidatorSpec {
            withdrawal_address: ExecutionAddress::repeat_byte(0x10 + (i % 200) as u8),
            compounding: false,
            // What the validator-client mocks ask for (an operator whose client
            // asks otherwise is overruled by the lock, with a warning).
            fee_recipient: phalanx_sim::vc::FEE_RECIPIENT,
            deposit_amount: Gwei(32_000_000_000),
        })
        .collect();
    let definition = ClusterDefinition::new(
        "phalanx-devnet",
        NetworkSpec::of(&network),
        THRESHOLD,
        &enrs,
        specs,
        BuilderSpec {
            gas_limit: 30_000_000,
            timestamp: genesis_estimate,
        },
        "2026-01-01T00:00:00Z",
    );
    definition.validate()?;
    println!("Running the key-generation ceremony over p2p on 127.0.0.1 …");
    let started_ms = unix_ms();
    let cluster = Cluster::ceremony(&definition, &operators, Duration::from_secs(120)).await?;
    // Devnet keystores use the low-cost KDF: they guard nothing of value.
    cluster.write_operator_files(&operators, KdfSetting::InsecureLowCost)?;
    let lock = &cluster.lock;
    println!(
        "Ceremony done in {:.1} s: lock {}",
        (unix_ms() - started_ms) as f64 / 1000.0,
        lock.lock_hash
    );

    // 3. The simulated beacon chain, genesis a few slots ahead.
    let validators = cluster.chain_validators(OtherValidators::Random(args.other_validators));
    let genesis_ms = genesis_ms_in(4 * args.slot_ms);
    let record = dir.join("submissions.jsonl");
    let chain_validators = validators.clone();
    let mut config = beacon_config(network.clone(), genesis_ms, validators, genesis_ms);
    config.record = Some(record.clone());
    let beacon = BeaconMock::start(config)
        .await
        .context("starting the beacon-node mock")?;
    let beacon_url = beacon.url();
    // What an independent checker needs to recompute every signing root.
    let fork_version = network
        .fork_version(args.fork.fork())
        .unwrap_or(network.genesis_fork_version);
    std::fs::write(
        dir.join("chain.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "preset": "minimal",
            "fork": args.fork.fork().to_string(),
            "fork_version": fork_version.to_string(),
            "genesis_validators_root": GENESIS_VALIDATORS_ROOT.to_string(),
            "cluster_validators": args.validators,
            "validators": chain_validators.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))?,
    )?;
    println!("Simulated beacon node at {beacon_url}");

    // 4. Nodes and validator clients.
    let mut nodes: Vec<Option<InProcessNode>> = operators
        .iter()
        .map(|o| Some(InProcessNode::start(o, lock, &beacon_url)))
        .collect();
    let vcs: Vec<VcMock> = cluster.validator_clients(&operators, |_, config| {
        config.misbehaviour = Misbehaviour::Honest;
    });

    // 5. The live table.
    println!();
    println!(
        "{:>5} {:>5}  {:<12} {:<12} {:<12}  nodes",
        "slot", "epoch", "attestations", "sync", "blocks"
    );
    let group_indices: BTreeSet<u64> = (0..args.validators as u64).collect();
    let last_slot = args.epochs * slots_per_epoch;
    let chaos = !args.no_chaos;
    let mut slot = 0u64;
    while slot < last_slot {
        let slot_end = genesis_ms + (slot + 1) * args.slot_ms;
        let now = unix_ms();
        if now < slot_end {
            tokio::time::sleep(Duration::from_millis(slot_end - now + 50)).await;
        }
        let epoch = slot / slots_per_epoch;
        let next_epoch_start = (slot + 1).is_multiple_of(slots_per_epoch);
        if chaos && next_epoch_start && epoch + 1 == 2 {
            if let Some(node) = nodes[3].take() {
                node.stop().await;
                println!("      --- node 3 stopped (epoch 2) ---");
            }
        }
        if chaos && next_epoch_start && epoch + 1 == 4 && nodes[3].is_none() {
            nodes[3] = Some(InProcessNode::start(&operators[3], lock, &beacon_url));
            println!("      --- node 3 restarted (epoch 4) ---");
        }
        let submissions = beacon.submissions();
        let count = |kind: SubmissionKind| {
            let (ok, bad) = distinct(&submissions, kind, slot, &group_indices);
            (ok, bad)
        };
        let (att, att_bad) = count(SubmissionKind::Attestation);
        let (sync, sync_bad) = count(SubmissionKind::SyncMessage);
        let (blocks, _) = count(SubmissionKind::Block);
        let up: String = nodes
            .iter()
            .map(|n| if n.is_some() { '●' } else { '○' })
            .collect();
        println!(
            "{:>5} {:>5}  {:<12} {:<12} {:<12}  {up}",
            slot,
            epoch,
            with_bad(att, att_bad),
            with_bad(sync, sync_bad),
            blocks
        );
        slot += 1;
    }

    // 6. Stop everything and summarise.
    let mut vc_stats = Vec::new();
    for vc in vcs {
        vc_stats.push(vc.stop().await);
    }
    for node in nodes.into_iter().flatten() {
        if let Some(Err(e)) = node.stop().await {
            println!("a node stopped with an error: {e}");
        }
    }
    let submissions = beacon.submissions();
    beacon.shutdown();
    let summary = summarise(
        &submissions,
        &group_indices,
        args.slot_ms,
        last_slot / slots_per_epoch,
    );
    println!();
    println!(
        "{:<14} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "duty", "expected", "succeeded", "p50 ms", "p90 ms", "p99 ms"
    );
    for line in &summary.lines {
        println!(
            "{:<14} {:>10} {:>10} {:>8} {:>8} {:>8}",
            line.kind,
            line.expected.map_or("-".to_string(), |e| e.to_string()),
            line.succeeded,
            line.p50,
            line.p90,
            line.p99
        );
    }
    if summary.invalid > 0 {
        println!("{} submissions did not verify", summary.invalid);
    }
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "vc": vc_stats,
        "invalid_submissions": summary.invalid,
        "duties": summary.lines.iter().map(|l| serde_json::json!({
            "duty": l.kind, "expected": l.expected, "succeeded": l.succeeded,
            "p50_ms": l.p50, "p90_ms": l.p90, "p99_ms": l.p99,
        })).collect::<Vec<_>>(),
    }))?;
    std::fs::write(dir.join("summary.json"), text)?;
    println!();
    println!(
        "Every submission is in {}; the summary in {}",
        record.display(),
        dir.join("summary.json").display()
    );
    if summary.invalid > 0 {
        bail!("{} submissions did not verify", summary.invalid);
    }
    Ok(())
}

fn with_bad(ok: usize, bad: usize) -> String {
    if bad == 0 {
        ok.to_string()
    } else {
        format!("{ok} ({bad} bad)")
    }
}

/// Distinct valid and invalid (validator) submissions of a kind in a slot,
/// counting only the cluster's validators.
fn distinct(
    submissions: &[Submission],
    kind: SubmissionKind,
    slot: u64,
    ours: &BTreeSet<u64>,
) -> (usize, usize) {
    let mut ok = BTreeSet::new();
    let mut bad = 0;
    for s in submissions
        .iter()
        .filter(|s| s.kind == kind && s.slot == slot && ours.contains(&s.validator_index))
    {
        if s.valid {
            ok.insert(s.validator_index);
        } else {
            bad += 1;
        }
    }
    (ok.len(), bad)
}

struct SummaryLine {
    kind: &'static str,
    expected: Option<u64>,
    succeeded: usize,
    p50: u64,
    p90: u64,
    p99: u64,
}

struct Summary {
    lines: Vec<SummaryLine>,
    invalid: usize,
}

fn summarise(
    submissions: &[Submission],
    ours: &BTreeSet<u64>,
    slot_ms: u64,
    epochs: u64,
) -> Summary {
    let kinds: [(SubmissionKind, &'static str, Option<u64>); 5] = [
        (
            SubmissionKind::Attestation,
            "attester",
            Some(ours.len() as u64 * epochs),
        ),
        (SubmissionKind::SyncMessage, "sync_message", None),
        (SubmissionKind::Block, "proposer", None),
        (SubmissionKind::Aggregate, "aggregator", None),
        (SubmissionKind::Contribution, "contribution", None),
    ];
    let mut lines = Vec::new();
    for (kind, name, expected) in kinds {
        // The first valid submission per (slot, validator) counts.
        let mut first: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for s in submissions
            .iter()
            .filter(|s| s.kind == kind && s.valid && ours.contains(&s.validator_index))
        {
            let latency = s.received_ms.saturating_sub(s.slot * slot_ms);
            first
                .entry((s.slot, s.validator_index))
                .and_modify(|l| *l = (*l).min(latency))
                .or_insert(latency);
        }
        let mut latencies: Vec<u64> = first.values().copied().collect();
        latencies.sort_unstable();
        let pct = |p: usize| {
            latencies
                .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        lines.push(SummaryLine {
            kind: name,
            expected,
            succeeded: first.len(),
            p50: pct(50),
            p90: pct(90),
            p99: pct(99),
        });
    }
    Summary {
        lines,
        invalid: submissions
            .iter()
            .filter(|s| !s.valid && ours.contains(&s.validator_index))
            .count(),
    }
}
