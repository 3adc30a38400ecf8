//! Seeded random schedules through the in-memory test committee: agreement,
//! validity and termination on every run, coverage of the dangerous cases,
//! and the deliberately broken engines the suite must catch.
//!
//! A failing run prints its seed and size; replay it with
//! `PHALANX_QBFT_SEED=<seed> PHALANX_QBFT_N=<n> cargo test -p phalanx-consensus --test committee replay`.

use phalanx_consensus::testing::{run, Scenario};
use phalanx_consensus::{Mutant, Round};

/// What a batch of runs reached.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    later_round: u64,
    carried: u64,
    faults_dropped: u64,
    failures: Vec<String>,
}

fn sweep(n: u32, seeds: std::ops::Range<u64>, mutant: Option<Mutant>) -> Tally {
    let mut tally = Tally::default();
    for seed in seeds {
        let mut scenario = Scenario::random(seed, n);
        scenario.mutant = mutant;
        let outcome = run(&scenario);
        tally.runs += 1;
        if outcome.max_decided_round(&scenario) >= Round(2) {
            tally.later_round += 1;
        }
        if outcome.decided_a_carried_value(&scenario) {
            tally.carried += 1;
        }
        tally.faults_dropped += outcome.faults_dropped;
        if let Err(error) = outcome.check(&scenario) {
            tally.failures.push(format!("seed {seed} n {n}: {error}"));
        }
    }
    tally
}

fn honest_sweep(n: u32, runs: u64) {
    let base = u64::from(n) * 1_000_000;
    let tally = sweep(n, base..base + runs, None);
    #[allow(clippy::print_stderr, reason = "the suite reports what it reached")]
    {
        eprintln!(
            "n={n}: {} runs, {} decided in round >= 2, {} decided a value carried from an \
             earlier prepared round, {} faulty messages dropped",
            tally.runs, tally.later_round, tally.carried, tally.faults_dropped
        );
    }
    assert!(
        tally.failures.is_empty(),
        "{} of {} runs failed (replay with PHALANX_QBFT_SEED / PHALANX_QBFT_N):\n{}",
        tally.failures.len(),
        tally.runs,
        tally.failures.join("\n")
    );
    if n >= 3 {
        assert!(
            tally.carried * 50 >= tally.runs,
            "n={n}: only {} of {} runs reached a decision on a carried prepared value",
            tally.carried,
            tally.runs
        );
    }
}

#[test]
fn random_schedules_n1() {
    honest_sweep(1, 400);
}

#[test]
fn random_schedules_n2() {
    honest_sweep(2, 800);
}

#[test]
fn random_schedules_n3() {
    honest_sweep(3, 1_300);
}

#[test]
fn random_schedules_n4() {
    honest_sweep(4, 2_000);
}

#[test]
fn random_schedules_n5() {
    honest_sweep(5, 1_500);
}

#[test]
fn random_schedules_n7() {
    honest_sweep(7, 1_500);
}

#[test]
fn random_schedules_n10() {
    honest_sweep(10, 1_400);
}

#[test]
fn random_schedules_n13() {
    honest_sweep(13, 1_100);
}

#[test]
fn replay() {
    let (Ok(seed), Ok(n)) = (
        std::env::var("PHALANX_QBFT_SEED"),
        std::env::var("PHALANX_QBFT_N"),
    ) else {
        return;
    };
    let seed: u64 = seed.parse().expect("PHALANX_QBFT_SEED is a number");
    let n: u32 = n.parse().expect("PHALANX_QBFT_N is a number");
    let scenario = Scenario::random(seed, n);
    let outcome = run(&scenario);
    #[allow(clippy::print_stderr, reason = "replaying a seed is for reading")]
    {
        eprintln!("{scenario:#?}\n{outcome:#?}");
    }
    outcome.check(&scenario).expect("replayed run");
}

/// The suite must fail a broken engine: a run of the same random schedules
/// with every node running the mutant must break agreement somewhere.
fn assert_caught(mutant: Mutant) {
    let mut caught = Vec::new();
    for n in [4, 5, 7] {
        let base = u64::from(n) * 1_000_000;
        let tally = sweep(n, base..base + 3_000, Some(mutant));
        caught.extend(tally.failures);
    }
    let agreement = caught.iter().filter(|f| f.contains("agreement")).count();
    #[allow(clippy::print_stderr, reason = "the suite reports what it caught")]
    {
        eprintln!(
            "{mutant:?}: {} failing runs, {agreement} breaking agreement; first: {:?}",
            caught.len(),
            caught.first()
        );
    }
    assert!(
        agreement > 0,
        "the suite did not catch the {mutant:?} mutant breaking agreement"
    );
}

#[test]
fn suite_catches_a_leader_proposing_its_own_value() {
    assert_caught(Mutant::ProposeOwnValue);
}

#[test]
fn suite_catches_a_commit_without_a_prepare_quorum() {
    assert_caught(Mutant::CommitWithoutPrepareQuorum);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for (seed, n) in [(11, 4), (12, 7), (13, 10)] {
        let scenario = Scenario::random(seed, n);
        let first = run(&scenario);
        let second = run(&scenario);
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
        assert_eq!(first.decisions, second.decisions, "seed {seed}");
        assert_ne!(
            first.trace_hash,
            run(&Scenario::random(seed + 1_000, n)).trace_hash,
            "different seeds should differ"
        );
    }
}

#[test]
fn without_faults_every_node_decides_after_three_message_delays() {
    for n in [1, 2, 3, 4, 7, 10, 13] {
        let mut scenario = Scenario::happy(n);
        scenario.network.min_delay = 10_000;
        scenario.network.max_delay = 10_000;
        let outcome = run(&scenario);
        outcome.check(&scenario).expect("happy run");
        // The leader's own prepare travels with its proposal, so some nodes
        // may decide a delay early; none later than the third.
        let latest = outcome.decisions.iter().flatten().map(|d| d.at).max();
        let latest = latest.expect("decided");
        assert!(latest <= 30_000, "n={n}: decided after {latest} µs");
        if n >= 4 {
            assert_eq!(latest, 30_000, "n={n}: proposal, prepare, commit");
        }
        assert!(outcome
            .decisions
            .iter()
            .flatten()
            .all(|d| d.round == Round(1)));
    }
}

#[test]
fn with_the_first_leader_silent_the_second_round_decides() {
    use phalanx_consensus::testing::{Fault, TestKey};
    use phalanx_consensus::{Committee, LeaderSelection, RotatingLeader};
    for n in [4, 7, 10, 13] {
        let mut scenario = Scenario::happy(n);
        scenario.network.min_delay = 10_000;
        scenario.network.max_delay = 10_000;
        let first = RotatingLeader.leader(&TestKey(0), Round(1), Committee::new(n).expect("size"));
        scenario.faults.insert(first.0, Fault::Silent);
        let outcome = run(&scenario);
        outcome.check(&scenario).expect("run with a silent leader");
        assert_eq!(outcome.max_decided_round(&scenario), Round(2), "n={n}");
        // One round timeout (1 s), then round change, proposal, prepare, commit.
        let latest = outcome.decisions.iter().flatten().map(|d| d.at).max();
        assert_eq!(latest, Some(1_000_000 + 40_000), "n={n}");
    }
}
