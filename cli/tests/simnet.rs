//! `phalanx simnet` end to end: a scenario file and flags, a sweep over
//! seeds, and a failing seed reported with the command that replays it.

use std::process::Command;

fn phalanx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
}

#[test]
fn a_scenario_file_runs_and_its_invariants_hold() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../simulations/scenarios/partition-heals.toml"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("reports.jsonl");
    let html = dir.path().join("report.html");
    let output = phalanx()
        .args([
            "simnet",
            "--scenario",
            file,
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--json",
        ])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("partition-heals: 4 operators"), "{stdout}");
    assert!(stdout.contains("every invariant held"), "{stdout}");
    let reports = std::fs::read_to_string(&json).expect("reports written");
    let seeds: Vec<u64> = reports
        .lines()
        .map(|line| {
            let report: serde_json::Value = serde_json::from_str(line).expect("json");
            report["seed"].as_u64().expect("seed")
        })
        .collect();
    assert_eq!(seeds, vec![0, 1]);
    // The HTML report stands alone: plots inline, the partition shaded.
    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert_eq!(page.matches("<svg").count(), 4, "{page}");
    assert!(page.contains("Every invariant held"), "{page}");
    assert!(
        page.contains("<title>Partition"),
        "the partition's window: {page}"
    );
    assert!(
        !page.contains("<script") && !page.contains("src=\""),
        "{page}"
    );
}

#[test]
fn a_broken_invariant_fails_the_run_and_names_the_seed_to_replay() {
    // Two of four crashed is beyond the tolerance: liveness must break,
    // and without --liveness-may-fail that is a failure.
    let output = phalanx()
        .args([
            "simnet",
            "--validators",
            "4",
            "--epochs",
            "1",
            "--crashed",
            "2",
            "--seed",
            "5",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("seed 5 broke"), "{stdout}");
    assert!(
        stdout.contains("replay: phalanx simnet --validators 4 --epochs 1 --crashed 2 --seed 5"),
        "{stdout}"
    );
    // The same with the failure expected holds its (safety) invariants.
    let output = phalanx()
        .args([
            "simnet",
            "--validators",
            "4",
            "--epochs",
            "1",
            "--crashed",
            "2",
            "--seed",
            "5",
            "--liveness-may-fail",
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
