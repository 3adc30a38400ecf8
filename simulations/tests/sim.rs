//! The cluster simulator: built-in scenarios hold their invariants, faults
//! beyond the tolerance break liveness but never safety, and one seed gives
//! one trace.

use phalanx_eth::ForkName;
use phalanx_sim::sim::{
    run, DelayDistribution, Fault, FloodStrategy, LinkModel, RunReport, Scenario, Signatures,
};

fn scenario(operators: usize, validators: usize, epochs: u64, seed: u64) -> Scenario {
    let mut scenario = Scenario::new(operators, validators, epochs);
    scenario.seed = seed;
    // Half the chain is the cluster's, so that it proposes now and then.
    scenario.other_validators = validators;
    scenario
}

fn assert_all_on_time(report: &RunReport) {
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    for (kind, counts) in &report.duties {
        assert!(counts.expected > 0, "{kind}: {report:#?}");
        assert_eq!(counts.on_time, counts.expected, "{kind}: {report:#?}");
    }
    for kind in [
        "attester",
        "sync_message",
        "aggregator",
        "sync_contribution",
    ] {
        assert!(
            report.duties.contains_key(kind),
            "no {kind} duty: {report:#?}"
        );
    }
}

fn builtin(name: &str) -> Scenario {
    phalanx_sim::sim::builtin(name).unwrap_or_else(|| panic!("no built-in scenario {name}"))
}

#[test]
fn four_operators_without_faults_do_every_duty_on_time() {
    let mut s = builtin("healthy");
    s.seed = 1;
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
    assert!(report.duties["proposer"].expected > 0, "{report:#?}");
    assert!(report.node_failures.is_empty(), "{report:#?}");
    assert_eq!(report.rounds.keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(report.consensus_bytes > 0 && report.partial_bytes > 0);
}

#[test]
fn one_seed_gives_one_trace() {
    for signatures in [Signatures::Bls, Signatures::Cheap] {
        let mut s = scenario(4, 4, 1, 7);
        s.signatures = signatures;
        let a = run(&s).expect("runs");
        let b = run(&s).expect("runs");
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.events, b.events);
        s.seed = 8;
        let c = run(&s).expect("runs");
        assert_ne!(a.trace_hash, c.trace_hash, "the seed must matter");
    }
}

#[test]
fn f_crashed_operators_cost_nothing_for_n_4_7_10() {
    for (name, seed) in [
        ("f-crashed-4", 11u64),
        ("f-crashed-7", 12),
        ("f-crashed-10", 13),
    ] {
        let mut s = builtin(name);
        s.seed = seed;
        assert_eq!(s.tolerance(), (s.operators - 1) / 3);
        assert_eq!(s.faults.len(), s.tolerance());
        let report = run(&s).expect("runs");
        assert_all_on_time(&report);
    }
    // f consecutive crashed leaders would cost an instance f round
    // timeouts, past a short duty's deadline; but the nodes notice who is
    // down (as `phalanx run` polls its connections) and cut the rounds
    // those lead short, so every duty stays on time, in round 2 or 3.
    let mut s = builtin("f-consecutive-leaders-crashed-7");
    s.seed = 14;
    assert!(!s.liveness_may_fail);
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
    assert!(
        report.rounds.keys().any(|&round| round >= 3),
        "two dead leaders in a row were skipped: {report:#?}"
    );
}

#[test]
fn f_plus_one_crashed_loses_liveness_but_never_safety() {
    let mut s = builtin("f-plus-one-crashed");
    s.seed = 21;
    let report = run(&s).expect("runs");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let attester = &report.duties["attester"];
    assert!(attester.missed > 0, "{report:#?}");
    assert!(
        attester.on_time > 0,
        "the slots before the crash: {report:#?}"
    );
    assert!(!(0..2).any(|slot| s.beyond_tolerance(slot)));
    assert!(s.beyond_tolerance(2));
}

#[test]
fn a_partition_that_heals() {
    let mut s = builtin("partition-heals");
    s.seed = 31;
    assert!(
        !s.liveness_may_fail,
        "liveness is checked outside the split"
    );
    let report = run(&s).expect("runs");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let attester = &report.duties["attester"];
    assert!(attester.missed > 0, "no quorum while split: {report:#?}");
    // Every failure falls in the split's slots.
    for (kind, c) in &report.duties {
        assert_eq!(c.late + c.missed, c.beyond_tolerance, "{kind}: {report:#?}");
    }
    for slot in &report.per_slot {
        if !(4..8).contains(&slot.slot) {
            assert_eq!(
                slot.on_time, slot.expected,
                "slot {}: {report:#?}",
                slot.slot
            );
        }
    }
}

#[test]
fn a_byzantine_operator_is_blamed_and_changes_nothing() {
    let mut s = builtin("byzantine-operator");
    s.seed = 41;
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
    assert!(
        report.dropped_by_sender.get(&1).copied().unwrap_or(0) > 0,
        "its bad partials are dropped and blamed on it: {report:#?}"
    );
    assert_eq!(report.dropped_by_sender.len(), 1, "{report:#?}");
}

/// One byzantine operator floods the others with every strategy at once,
/// at a line rate: the honest nodes must not notice. Every duty on time,
/// every invariant held, and the flood blamed on its sender.
#[test]
fn a_flooding_operator_cannot_hurt_the_honest_ones() {
    let mut s = builtin("byzantine-flood");
    s.seed = 71;
    let report = run(&s).expect("runs");
    for strategy in FloodStrategy::ALL {
        let sent = report.flood.get(strategy.name());
        assert!(
            sent.is_some_and(|s| s.messages > 0),
            "{strategy:?}: {sent:?}"
        );
    }
    assert_all_on_time(&report);
    assert!(report.dropped_by_sender.get(&1).copied().unwrap_or(0) > 0);
    assert_eq!(report.dropped_by_sender.len(), 1, "{report:#?}");
}

/// Replayed messages of another cluster of the same operators, validly
/// signed by them, must never make this cluster decide their value.
#[test]
fn another_clusters_messages_are_never_decided() {
    let mut s = builtin("byzantine-flood");
    s.seed = 72;
    s.faults = vec![Fault::ByzantineFlood {
        node: 1,
        strategies: vec![FloodStrategy::CrossCluster],
        per_slot: 12,
        batch: 1,
        proposal_bytes: 1,
        from_slot: 0,
        until_slot: None,
    }];
    let report = run(&s).expect("runs");
    assert!(report.flood["cross_cluster"].messages > 0, "{report:#?}");
    assert_all_on_time(&report);
}

/// Events wait for a busy node: on processors a hundred times slower than
/// the benchmarked machine, the honest cluster's own work makes it late,
/// and events wait longer for every node (which, late, gets less done).
#[test]
fn a_slow_processor_delays_the_node() {
    let mut s = builtin("healthy");
    s.epochs = 1;
    s.seed = 73;
    s.signatures = Signatures::Cheap;
    let fast = run(&s).expect("runs");
    assert_all_on_time(&fast);
    s.node_speed = 0.01;
    let slow = run(&s).expect("runs");
    assert!(
        slow.violations.iter().any(|v| v.starts_with("liveness")),
        "{:#?}",
        slow.violations
    );
    assert!(slow.worst_lateness_ms > 0);
    for (node, cpu) in &fast.cpu {
        assert!(cpu.busy_us > 0);
        let slow = &slow.cpu[node];
        assert!(slow.busy_us > 10 * cpu.busy_us, "{node}: {slow:?} {cpu:?}");
        assert!(
            slow.max_wait_ms > 10 * cpu.max_wait_ms,
            "{node}: {slow:?} {cpu:?}"
        );
    }
}

#[test]
fn a_slow_beacon_node_and_a_crash_with_restart() {
    let mut s = builtin("slow-beacon-node");
    s.seed = 51;
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
}

#[test]
fn a_slow_link_and_a_slow_validator_client_cost_nothing() {
    let mut s = builtin("healthy");
    s.epochs = 1;
    s.seed = 71;
    s.signatures = Signatures::Cheap;
    // Operator 2 is far from everyone: its messages take up to 1.5 s.
    s.network.links = (0..4)
        .filter(|&n| n != 2)
        .map(|n| LinkModel {
            between: [2, n],
            min_delay_ms: 600,
            max_delay_ms: 1_500,
            distribution: Some(DelayDistribution::Pareto),
            loss: 0.0,
            duplication: 0.0,
        })
        .collect();
    s.faults = vec![Fault::SlowValidatorClient {
        node: 2,
        delay_ms: 900,
        from_slot: 0,
        until_slot: 8,
    }];
    assert!(!(0..8).any(|slot| s.beyond_tolerance(slot)));
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
    // The far operator's partials arrive too late to matter, but arrive.
    assert!(report.partials_by_operator.get(&2).copied().unwrap_or(0) > 0);
    // A link naming a node the cluster does not have is refused.
    s.network.links[0].between = [2, 9];
    assert!(s.validate().is_err());
}

#[test]
fn a_wide_area_network_with_long_tailed_delays_costs_nothing() {
    let mut s = builtin("wide-area");
    s.seed = 81;
    s.signatures = Signatures::Cheap;
    let wide = run(&s).expect("runs");
    assert_all_on_time(&wide);
    // The delays show in the latency: the same cluster on the default
    // network broadcasts sooner.
    s.network = Default::default();
    let near = run(&s).expect("runs");
    assert_all_on_time(&near);
    let p50 = |report: &RunReport| {
        let mut all: Vec<u64> = report.latency_samples.values().flatten().copied().collect();
        all.sort_unstable();
        all[all.len() / 2]
    };
    assert!(
        p50(&wide) > p50(&near) + 30,
        "median latency {} ms across continents, {} ms nearby",
        p50(&wide),
        p50(&near)
    );
}

#[test]
fn the_forks_before_capella_do_every_duty_on_time() {
    for fork in [ForkName::Altair, ForkName::Bellatrix] {
        let mut s = builtin("healthy");
        s.fork = fork;
        s.epochs = 1;
        s.signatures = Signatures::Cheap;
        let report = run(&s).expect("runs");
        assert_all_on_time(&report);
        assert!(
            report.duties["proposer"].expected > 0,
            "{fork}: {report:#?}"
        );
    }
    let mut s = builtin("healthy");
    s.fork = ForkName::Phase0;
    assert!(s.validate().is_err(), "no sync committees before Altair");
}

#[test]
fn the_scenario_files_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("the scenarios folder") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let scenario =
            Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!scenario.name.is_empty());
        files += 1;
    }
    assert!(files >= 2);
}

/// A sweep on the cheap signatures: faults drawn from each seed, on at most
/// f operators, and every duty on time in every run. Every twelfth seed
/// runs on real BLS, as `phalanx simnet --seeds` samples it.
#[test]
fn random_faults_within_the_tolerance_cost_nothing() {
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..24u64 {
        let mut s = builtin("random-faults");
        s.seed = seed;
        s.signatures = if seed % 12 == 0 {
            Signatures::Bls
        } else {
            Signatures::Cheap
        };
        let report = run(&s).expect("runs");
        assert_eq!(report.faults.len(), 4);
        for fault in &report.faults {
            kinds.insert(
                format!("{fault:?}")
                    .split([' ', '{'])
                    .next()
                    .map(str::to_string),
            );
        }
        assert!(
            report.violations.is_empty(),
            "seed {seed}, faults {:#?}: {:#?}",
            report.faults,
            report.violations
        );
    }
    assert!(
        kinds.len() >= 8,
        "the draws cover the fault kinds: {kinds:?}"
    );
}

/// The invariants catch a broken node: each deliberate defect makes a
/// built-in scenario fail.
mod broken_variants {
    use super::*;
    use phalanx_node::core::Defects;
    use phalanx_sim::sim::run_defective;

    /// Each defect is caught on real BLS and on the cheap scheme alike:
    /// the cheap one keeps the threshold behaviour the invariants rely on.
    const SCHEMES: [Signatures; 2] = [Signatures::Bls, Signatures::Cheap];

    #[test]
    fn a_combiner_one_partial_short_breaks_liveness() {
        for signatures in SCHEMES {
            let mut s = builtin("healthy");
            s.epochs = 1;
            s.seed = 61;
            s.signatures = signatures;
            let defects = Defects {
                combine_below_threshold: true,
                ..Defects::default()
            };
            let report = run_defective(&s, defects).expect("runs");
            assert!(
                report.violations.iter().any(|v| v.starts_with("liveness")),
                "{signatures:?}: {report:#?}"
            );
            // The same scenario without the defect holds.
            assert_all_on_time(&run(&s).expect("runs"));
        }
    }

    #[test]
    fn partials_taken_unchecked_let_a_byzantine_operator_break_liveness() {
        for signatures in SCHEMES {
            let mut s = builtin("byzantine-operator");
            s.seed = 62;
            s.signatures = signatures;
            let defects = Defects {
                skip_partial_checks: true,
                ..Defects::default()
            };
            let report = run_defective(&s, defects).expect("runs");
            assert!(
                report.violations.iter().any(|v| v.starts_with("liveness")),
                "{signatures:?}: {report:#?}"
            );
            assert_all_on_time(&run(&s).expect("runs"));
        }
    }

    /// The flood scenario catches a node that checks peers' partials the
    /// old way: unbudgeted, a bad batch bisected at the receiver's cost.
    /// Only the invalid-partial flood runs, to keep the test short.
    #[test]
    fn bisecting_a_flood_of_bad_partials_breaks_liveness() {
        let mut s = builtin("byzantine-flood");
        s.seed = 71;
        s.epochs = 1;
        if let Some(Fault::ByzantineFlood { strategies, .. }) = s.faults.first_mut() {
            *strategies = vec![FloodStrategy::InvalidPartials];
        }
        let defects = Defects {
            bisect_peer_batches: true,
            ..Defects::default()
        };
        let report = run_defective(&s, defects).expect("runs");
        assert!(
            report.violations.iter().any(|v| v.starts_with("liveness")),
            "{report:#?}"
        );
        assert_all_on_time(&run(&s).expect("runs"));
    }

    /// The whole cluster restarts (disks kept) in the middle of slot 3's
    /// attestation, and its beacon nodes now follow another head: the
    /// restarted nodes decide a second, different vote for the same duty,
    /// and each validator client asks again and signs it. Only the
    /// slashing database stands between that and a double vote.
    fn a_restart_into_a_reorg() -> Scenario {
        let mut s = scenario(4, 8, 1, 63);
        let third = s.slot_ms / 3;
        for node in 0..4 {
            s.faults.push(Fault::Crash {
                node,
                from_slot: 3,
                until_slot: Some(3),
                lose_disk: false,
                offset_ms: third + 400,
                restart_offset_ms: third + 500,
            });
            s.faults.push(Fault::DivergingBeaconNode {
                node,
                slot: 3,
                from_ms: third + 450,
            });
            s.faults
                .push(Fault::DoubleSubmittingValidatorClient { node });
        }
        // Restarted cores have forgotten the slot's selection proofs, so
        // its aggregation is lost: by design, not a broken invariant.
        s.liveness_may_fail = true;
        s
    }

    #[test]
    fn a_store_that_takes_a_second_value_signs_a_double_vote() {
        for signatures in SCHEMES {
            let mut s = a_restart_into_a_reorg();
            s.signatures = signatures;
            let report = run(&s).expect("runs");
            assert!(report.violations.is_empty(), "{:#?}", report.violations);
            // The restarted nodes' slashing databases made consensus refuse
            // the second vote, so the clients' second requests went
            // unanswered.
            assert!(report.vc_refused > 0, "{report:#?}");
            let defects = Defects {
                accept_second_value: true,
                ..Defects::default()
            };
            let report = run_defective(&s, defects).expect("runs");
            assert!(
                report
                    .violations
                    .iter()
                    .any(|v| v.starts_with("slashing") && v.contains("double vote")),
                "{signatures:?}: {:#?}",
                report.violations
            );
        }
    }
}
