//! The cluster simulator: built-in scenarios hold their invariants, faults
//! beyond the tolerance break liveness but never safety, and one seed gives
//! one trace.

use phalanx_sim::sim::{run, Fault, RunReport, Scenario};

fn scenario(operators: usize, validators: usize, epochs: u64, seed: u64) -> Scenario {
    let mut scenario = Scenario::new(operators, validators, epochs);
    scenario.seed = seed;
    // Half the chain is the cluster's, so that it proposes now and then.
    scenario.other_validators = validators;
    scenario
}

fn crash(node: usize, from_slot: u64) -> Fault {
    Fault::Crash {
        node,
        from_slot,
        until_slot: None,
        lose_disk: false,
        offset_ms: 0,
        restart_offset_ms: 0,
    }
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

#[test]
fn four_operators_without_faults_do_every_duty_on_time() {
    let report = run(&scenario(4, 8, 2, 1)).expect("runs");
    assert_all_on_time(&report);
    assert!(report.duties["proposer"].expected > 0, "{report:#?}");
    assert!(report.node_failures.is_empty(), "{report:#?}");
    assert_eq!(report.rounds.keys().copied().collect::<Vec<_>>(), vec![1]);
}

#[test]
fn one_seed_gives_one_trace() {
    let a = run(&scenario(4, 4, 1, 7)).expect("runs");
    let b = run(&scenario(4, 4, 1, 7)).expect("runs");
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    let c = run(&scenario(4, 4, 1, 8)).expect("runs");
    assert_ne!(a.trace_hash, c.trace_hash, "the seed must matter");
}

#[test]
fn f_crashed_operators_cost_nothing_for_n_4_7_10() {
    for (n, seed) in [(4usize, 11u64), (7, 12), (10, 13)] {
        let mut s = scenario(n, 4, 1, seed);
        let f = s.tolerance();
        assert_eq!(f, (n - 1) / 3);
        // f operators crash in the first slot and stay down, no two next
        // to each other in the leaders' rotation: an instance meets at most
        // one silent leader, and one round timeout fits every deadline.
        s.faults = (0..f).map(|k| crash(1 + 3 * k, 1)).collect();
        let report = run(&s).expect("runs");
        assert_all_on_time(&report);

        // f consecutive silent leaders can cost an instance f timeouts,
        // past a short duty's deadline by design: the report counts it,
        // and safety holds.
        s.faults = (n - f..n).map(|node| crash(node, 1)).collect();
        s.liveness_may_fail = true;
        let report = run(&s).expect("runs");
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
    }
}

#[test]
fn f_plus_one_crashed_loses_liveness_but_never_safety() {
    let mut s = scenario(4, 4, 1, 21);
    s.faults = vec![crash(2, 2), crash(3, 2)];
    s.liveness_may_fail = true;
    let report = run(&s).expect("runs");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let attester = &report.duties["attester"];
    assert!(attester.missed > 0, "{report:#?}");
    assert!(
        attester.on_time > 0,
        "the slots before the crash: {report:#?}"
    );
}

#[test]
fn a_partition_that_heals() {
    let mut s = scenario(4, 8, 2, 31);
    s.faults = vec![Fault::Partition {
        groups: vec![vec![0, 1], vec![2, 3]],
        from_slot: 4,
        until_slot: 8,
    }];
    s.liveness_may_fail = true;
    let report = run(&s).expect("runs");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let attester = &report.duties["attester"];
    assert!(attester.missed > 0, "no quorum while split: {report:#?}");
    // Before and after, duties succeed: at most the split's slots miss.
    assert!(attester.on_time >= attester.expected / 2, "{report:#?}");
}

#[test]
fn a_byzantine_operator_is_blamed_and_changes_nothing() {
    let mut s = scenario(4, 8, 1, 41);
    s.faults = vec![Fault::ByzantineNode { node: 1 }];
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
    assert!(
        report.dropped_by_sender.get(&1).copied().unwrap_or(0) > 0,
        "its bad partials are dropped and blamed on it: {report:#?}"
    );
    assert_eq!(report.dropped_by_sender.len(), 1, "{report:#?}");
}

#[test]
fn a_slow_beacon_node_and_a_crash_with_restart() {
    let mut s = scenario(4, 8, 2, 51);
    s.faults = vec![
        Fault::SlowBeaconNode {
            node: 0,
            delay_ms: 800,
            from_slot: 0,
            until_slot: 16,
        },
        Fault::Crash {
            node: 3,
            from_slot: 3,
            until_slot: Some(6),
            lose_disk: true,
            offset_ms: 0,
            restart_offset_ms: 0,
        },
    ];
    let report = run(&s).expect("runs");
    assert_all_on_time(&report);
}

/// The invariants catch a broken node: each deliberate defect makes a
/// built-in scenario fail.
mod broken_variants {
    use super::*;
    use phalanx_node::core::Defects;
    use phalanx_sim::sim::run_defective;

    #[test]
    fn a_combiner_one_partial_short_breaks_liveness() {
        let s = scenario(4, 8, 1, 61);
        let defects = Defects {
            combine_below_threshold: true,
            ..Defects::default()
        };
        let report = run_defective(&s, defects).expect("runs");
        assert!(
            report.violations.iter().any(|v| v.starts_with("liveness")),
            "{report:#?}"
        );
        // The same scenario without the defect holds.
        assert_all_on_time(&run(&s).expect("runs"));
    }

    #[test]
    fn partials_taken_unchecked_let_a_byzantine_operator_break_liveness() {
        let mut s = scenario(4, 8, 1, 62);
        s.faults = vec![Fault::ByzantineNode { node: 1 }];
        let defects = Defects {
            skip_partial_checks: true,
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
        let s = a_restart_into_a_reorg();
        let report = run(&s).expect("runs");
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
        // The restarted nodes' slashing databases made consensus refuse
        // the second vote, so the clients' second requests went unanswered.
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
            "{:#?}",
            report.violations
        );
    }
}
