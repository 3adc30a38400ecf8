//! The deterministic cluster simulator: whole clusters of the node's own
//! cores in virtual time, with a simulated network, beacon chain and
//! validator clients, faults by schedule, and the safety and liveness
//! invariants checked on every run.
//!
//! A run is a pure function of its [`Scenario`] (its seed included): the
//! same scenario gives the same trace hash, bit for bit.

pub mod builtin;
pub mod cost;
pub mod flood;
pub mod report;
pub mod scenario;
pub mod signing;
mod world;

use std::collections::{BTreeMap, BTreeSet};

use phalanx_eth::{EthSpec, MainnetEthSpec, MinimalEthSpec, PublicKeyBytes, Root, Slot};
use phalanx_node::core::Defects;
use phalanx_node::duty::DutyType;
use phalanx_node::scheme::Bls;
use phalanx_node::tracker::Outcome;
use serde::Serialize;

pub use builtin::{builtin, BUILTINS};
pub use scenario::{
    DelayDistribution, Fault, FloodStrategy, Link, LinkModel, NetworkModel, Preset, RandomFaults,
    Scenario, ScenarioError,
};
pub use signing::{Cheap, Signatures, SimScheme};
pub use world::{Broadcast, FloodSent, NodeCpu, Observed, SubmissionCheck};

use cost::Metered;
use world::World;

/// What a run found.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The scenario's name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// SHA-256 over every processed event, hex.
    pub trace_hash: String,
    /// Events processed.
    pub events: u64,
    /// Broken invariants, each saying what and where. Empty on success.
    pub violations: Vec<String>,
    /// Per duty type: the chain-level outcome of the cluster's duties.
    pub duties: BTreeMap<String, DutyCounts>,
    /// Broadcast latency into the slot, per duty type: p50, p90, p99 (ms).
    pub latency_ms: BTreeMap<String, [u64; 3]>,
    /// Consensus decisions by the round they were decided in.
    pub rounds: BTreeMap<u64, u64>,
    /// Consensus messages sent between nodes.
    pub consensus_messages: u64,
    /// Partial signatures sent between nodes.
    pub partials_sent: u64,
    /// Bytes of consensus messages sent between nodes (as encoded on the
    /// wire, without transport framing).
    pub consensus_bytes: u64,
    /// Bytes of partial-signature batches sent between nodes.
    pub partial_bytes: u64,
    /// The signature scheme of the run: `bls` or `cheap`.
    pub signatures: String,
    /// Peer messages each node dropped, by sender: the blame.
    pub dropped_by_sender: BTreeMap<usize, u64>,
    /// Requests of validator clients their nodes refused.
    pub vc_refused: u64,
    /// Decided values a node refused to sign (slashing protection, a
    /// second value for a duty) and combinations that did not verify.
    pub refused: u64,
    /// Per node: its duty outcomes that failed, by reason.
    pub node_failures: BTreeMap<usize, BTreeMap<String, u64>>,
    /// Per slot: the cluster's duties and how many were on time.
    pub per_slot: Vec<SlotCounts>,
    /// Every broadcast's time into its slot (ms), per duty type, sorted.
    pub latency_samples: BTreeMap<String, Vec<u64>>,
    /// Partial signatures each operator sent its peers.
    pub partials_by_operator: BTreeMap<usize, u64>,
    /// The faults the run had, those drawn from the seed included.
    pub faults: Vec<Fault>,
    /// The latest any duty was broadcast after its deadline, in ms (0 if
    /// none was late).
    pub worst_lateness_ms: u64,
    /// Per node: how its processor was used (virtual time).
    pub cpu: BTreeMap<usize, NodeCpu>,
    /// Per flood strategy: what a flooding operator sent its peers.
    pub flood: BTreeMap<String, FloodSent>,
}

/// One slot's duties.
#[derive(Debug, Default, Serialize)]
pub struct SlotCounts {
    /// The slot.
    pub slot: u64,
    /// Duties the chain gave the cluster.
    pub expected: u64,
    /// Broadcast by their deadline.
    pub on_time: u64,
}

/// The cluster's duties of one type over the run.
#[derive(Debug, Default, Serialize)]
pub struct DutyCounts {
    /// Duties the chain gave the cluster.
    pub expected: u64,
    /// Broadcast (by some node) by the deadline.
    pub on_time: u64,
    /// Broadcast, but after the deadline.
    pub late: u64,
    /// Never broadcast.
    pub missed: u64,
    /// Of the late and missed: in slots whose faults exceeded the
    /// tolerance, where theory lets duties fail.
    pub beyond_tolerance: u64,
}

/// One hash over the trace hashes of several runs, in seed order: two
/// sweeps ran alike, bit for bit, when theirs match.
pub fn sweep_hash(reports: &[RunReport]) -> String {
    use sha2::{Digest, Sha256};
    let mut ordered: Vec<&RunReport> = reports.iter().collect();
    ordered.sort_by_key(|r| r.seed);
    let mut hasher = Sha256::new();
    for report in ordered {
        hasher.update(report.seed.to_le_bytes());
        hasher.update(report.trace_hash.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Runs `scenario` and checks its invariants.
pub fn run(scenario: &Scenario) -> Result<RunReport, ScenarioError> {
    run_checked(scenario, Defects::default())
}

/// [`run`] with every node carrying `defects`: for the tests that prove the
/// invariants catch a broken node.
#[cfg(feature = "test-utils")]
#[doc(hidden)]
pub fn run_defective(scenario: &Scenario, defects: Defects) -> Result<RunReport, ScenarioError> {
    run_checked(scenario, defects)
}

fn run_checked(scenario: &Scenario, defects: Defects) -> Result<RunReport, ScenarioError> {
    scenario.validate()?;
    let scenario = &scenario.with_drawn_faults();
    Ok(match (scenario.preset, scenario.signatures) {
        (Preset::Minimal, Signatures::Bls) => {
            run_with::<MinimalEthSpec, Metered<Bls>>(scenario, defects)
        }
        (Preset::Minimal, Signatures::Cheap) => {
            run_with::<MinimalEthSpec, Metered<Cheap>>(scenario, defects)
        }
        (Preset::Mainnet, Signatures::Bls) => {
            run_with::<MainnetEthSpec, Metered<Bls>>(scenario, defects)
        }
        (Preset::Mainnet, Signatures::Cheap) => {
            run_with::<MainnetEthSpec, Metered<Cheap>>(scenario, defects)
        }
    })
}

fn run_with<E: EthSpec, S: SimScheme>(scenario: &Scenario, defects: Defects) -> RunReport {
    let mut world = World::<E, S>::new(scenario, defects);
    let trace = world.run();
    let mut report = RunReport {
        name: scenario.name.clone(),
        seed: scenario.seed,
        trace_hash: hex::encode(trace),
        events: world.observed.events,
        violations: Vec::new(),
        duties: BTreeMap::new(),
        latency_ms: BTreeMap::new(),
        rounds: BTreeMap::new(),
        consensus_messages: world.observed.consensus_messages,
        partials_sent: world.observed.partials_sent,
        consensus_bytes: world.observed.consensus_bytes,
        partial_bytes: world.observed.partial_bytes,
        signatures: scenario.signatures.name().to_string(),
        dropped_by_sender: BTreeMap::new(),
        vc_refused: world.observed.vc_refused.len() as u64,
        refused: world.observed.refused.len() as u64,
        node_failures: BTreeMap::new(),
        per_slot: Vec::new(),
        latency_samples: BTreeMap::new(),
        partials_by_operator: world.observed.partials_by_operator.clone(),
        faults: scenario.faults.clone(),
        worst_lateness_ms: 0,
        cpu: world.observed.cpu.clone(),
        flood: world
            .observed
            .flood
            .iter()
            .map(|(name, sent)| (name.to_string(), *sent))
            .collect(),
    };
    check_agreement(&world, &mut report);
    check_validity(&world, &mut report);
    check_signatures(&world, &mut report);
    check_slashing(&world, &mut report);
    check_liveness(&world, scenario, &mut report);
    for ((_, sender, _), count) in &world.observed.dropped {
        *report.dropped_by_sender.entry(*sender).or_default() += count;
    }
    for (node, outcomes) in &world.observed.outcomes {
        for (_, outcome) in outcomes {
            if let Outcome::Failed(failure) = outcome {
                *report
                    .node_failures
                    .entry(*node)
                    .or_default()
                    .entry(failure.label().to_string())
                    .or_default() += 1;
            }
        }
    }
    report
}

/// No two nodes decided different values for one duty.
fn check_agreement<E: EthSpec, S: SimScheme>(world: &World<E, S>, report: &mut RunReport) {
    for (duty, by_node) in &world.observed.decisions {
        let values: BTreeSet<[u8; 32]> = by_node.values().map(|(hash, _)| *hash).collect();
        if values.len() > 1 {
            report.violations.push(format!(
                "agreement: {} different values decided for {duty:?} ({by_node:?})",
                values.len()
            ));
        }
        if let Some((_, round)) = by_node.values().next() {
            *report.rounds.entry(*round).or_default() += 1;
        }
    }
}

/// Every decided value was proposed by an operator of the cluster (QBFT's
/// validity): a value from elsewhere, such as another cluster's, is never
/// decided.
fn check_validity<E: EthSpec, S: SimScheme>(world: &World<E, S>, report: &mut RunReport) {
    for (duty, by_node) in &world.observed.decisions {
        for (node, (hash, _)) in by_node {
            if !world.observed.proposed.contains(&(*duty, *hash)) {
                report.violations.push(format!(
                    "validity: node {node} decided for {duty:?} a value no operator of the cluster proposed"
                ));
            }
        }
    }
}

/// Every broadcast signature verifies under its validator's group key.
fn check_signatures<E: EthSpec, S: SimScheme>(world: &World<E, S>, report: &mut RunReport) {
    for b in &world.observed.broadcasts {
        if !b.check.valid {
            report.violations.push(format!(
                "signature: node {} broadcast a {:?} at slot {} for {} that does not verify under the group key",
                b.node, b.duty.kind, b.duty.slot, b.validator
            ));
        }
    }
}

/// No slashable pair among everything broadcast for one group key: two
/// blocks for one slot, two votes for one target, or a surround.
fn check_slashing<E: EthSpec, S: SimScheme>(world: &World<E, S>, report: &mut RunReport) {
    let mut blocks: BTreeMap<(PublicKeyBytes, Slot), BTreeSet<Root>> = BTreeMap::new();
    let mut votes: BTreeMap<PublicKeyBytes, BTreeSet<(u64, u64, Root)>> = BTreeMap::new();
    for b in &world.observed.broadcasts {
        if let Some(slot) = b.check.block_slot {
            blocks
                .entry((b.validator, slot))
                .or_default()
                .insert(b.check.signing_root);
        }
        if let Some((source, target)) = b.check.vote {
            votes
                .entry(b.validator)
                .or_default()
                .insert((source, target, b.check.signing_root));
        }
    }
    for ((validator, slot), roots) in &blocks {
        if roots.len() > 1 {
            report.violations.push(format!(
                "slashing: {} different blocks signed for slot {slot} by {validator}",
                roots.len()
            ));
        }
    }
    for (validator, list) in &votes {
        let list: Vec<_> = list.iter().collect();
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                let double = a.1 == b.1 && a.2 != b.2;
                let surround = (a.0 < b.0 && b.1 < a.1) || (b.0 < a.0 && a.1 < b.1);
                if double || surround {
                    report.violations.push(format!(
                        "slashing: {validator} signed votes {:?} and {:?} ({})",
                        (a.0, a.1),
                        (b.0, b.1),
                        if double {
                            "double vote"
                        } else {
                            "surround vote"
                        }
                    ));
                }
            }
        }
    }
}

/// Every attestation, block and sync-committee message the chain gave the
/// cluster was broadcast by its deadline; unless the scenario says its
/// faults may break liveness, a missing one is a violation.
fn check_liveness<E: EthSpec, S: SimScheme>(
    world: &World<E, S>,
    scenario: &Scenario,
    report: &mut RunReport,
) {
    let slot_ms = scenario.slot_ms;
    let deadline = |kind: DutyType| -> u64 {
        let timing = phalanx_node::timing::duty_timing(
            kind,
            std::time::Duration::from_millis(slot_ms),
            E::SLOTS_PER_EPOCH as u32,
        );
        timing.deadline.as_millis() as u64
    };
    // The first broadcast of each (kind, slot, validator), into its slot.
    let mut first: BTreeMap<(DutyType, Slot, PublicKeyBytes), u64> = BTreeMap::new();
    for b in &world.observed.broadcasts {
        let into_slot = b.at_ms.saturating_sub(b.duty.slot.0 * slot_ms);
        first
            .entry((b.duty.kind, b.duty.slot, b.validator))
            .and_modify(|t| *t = (*t).min(into_slot))
            .or_insert(into_slot);
    }
    let keys = world.group_keys();
    let mut latencies: BTreeMap<DutyType, Vec<u64>> = BTreeMap::new();
    // The last slot's duties may end after the run: it is left out.
    for slot in (0..world.last_slot().0).map(Slot) {
        let mut expected: Vec<(DutyType, PublicKeyBytes)> = world
            .cluster_attesters(slot)
            .iter()
            .map(|d| (DutyType::Attester, d.pubkey))
            .collect();
        expected.extend(
            world
                .cluster_proposer(slot)
                .map(|i| (DutyType::Proposer, keys[i])),
        );
        expected.extend(
            world
                .cluster_sync_members(slot)
                .into_iter()
                .map(|i| (DutyType::SyncMessage, keys[i])),
        );
        expected.extend(
            world
                .cluster_aggregators(slot)
                .into_iter()
                .map(|key| (DutyType::Aggregator, key)),
        );
        // One contribution per elected member, whatever its subcommittees.
        let contributors: BTreeSet<PublicKeyBytes> = world
            .cluster_sync_aggregators(slot)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        expected.extend(
            contributors
                .into_iter()
                .map(|key| (DutyType::SyncContribution, key)),
        );
        let mut this_slot = SlotCounts {
            slot: slot.0,
            ..SlotCounts::default()
        };
        let beyond_tolerance = scenario.beyond_tolerance(slot.0);
        for (kind, validator) in expected {
            let counts = report.duties.entry(kind.name().to_string()).or_default();
            counts.expected += 1;
            this_slot.expected += 1;
            match first.get(&(kind, slot, validator)) {
                Some(&at) if at <= deadline(kind) => {
                    counts.on_time += 1;
                    this_slot.on_time += 1;
                    latencies.entry(kind).or_default().push(at);
                }
                Some(&at) => {
                    counts.late += 1;
                    report.worst_lateness_ms = report.worst_lateness_ms.max(at - deadline(kind));
                    latencies.entry(kind).or_default().push(at);
                    if beyond_tolerance {
                        counts.beyond_tolerance += 1;
                    } else if !scenario.liveness_may_fail {
                        report.violations.push(format!(
                            "liveness: the {} of {validator} at slot {slot} was broadcast {at} ms into the slot, after its deadline",
                            kind.name()
                        ));
                    }
                }
                None => {
                    counts.missed += 1;
                    if beyond_tolerance {
                        counts.beyond_tolerance += 1;
                    } else if !scenario.liveness_may_fail {
                        report.violations.push(format!(
                            "liveness: the {} of {validator} at slot {slot} was never broadcast",
                            kind.name()
                        ));
                    }
                }
            }
        }
        report.per_slot.push(this_slot);
    }
    for (kind, mut list) in latencies {
        list.sort_unstable();
        let at = |q: usize| list[((list.len() - 1) * q) / 100];
        report
            .latency_ms
            .insert(kind.name().to_string(), [at(50), at(90), at(99)]);
        report.latency_samples.insert(kind.name().to_string(), list);
    }
}
