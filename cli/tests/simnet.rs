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
    assert_eq!(page.matches("<svg").count(), 5, "{page}");
    // Each node's processor by the cost model: busy time and waits.
    assert!(page.contains("<h2>Processor (virtual time"), "{page}");
    assert!(page.contains("<td>operator 3</td>"), "{page}");
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
    // Links slower than a third of a slot: no fault beyond the tolerance
    // excuses the missed attestations, so liveness breaks, and without
    // --liveness-may-fail that is a failure.
    let flags = [
        "--validators",
        "4",
        "--epochs",
        "1",
        "--delay-ms",
        "1500-2500",
    ];
    let output = phalanx()
        .arg("simnet")
        .args(flags)
        .args(["--seed", "5"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("seed 5 broke"), "{stdout}");
    assert!(stdout.contains("liveness"), "{stdout}");
    assert!(
        stdout.contains(
            "replay: phalanx simnet --validators 4 --epochs 1 --delay-ms 1500-2500 --signatures bls --seed 5"
        ),
        "{stdout}"
    );
    // The same with the failure expected holds its (safety) invariants.
    let output = phalanx()
        .arg("simnet")
        .args(flags)
        .args(["--seed", "5", "--liveness-may-fail"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_sweep_runs_built_in_scenarios_on_cheap_signatures_with_a_bls_sample() {
    let list = phalanx().args(["simnet", "--list"]).output().expect("runs");
    let list = String::from_utf8_lossy(&list.stdout);
    for name in [
        "f-crashed-7",
        "byzantine-operator",
        "partition-heals",
        "random-faults",
    ] {
        assert!(list.contains(&format!("builtin:{name}")), "{list}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("reports.jsonl");
    let output = phalanx()
        .args([
            "simnet",
            "--scenario",
            "builtin:random-faults",
            "--epochs",
            "1",
            "--seeds",
            "6",
            "--bls-every",
            "3",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("signatures: 2 run(s) on real BLS, 4 on the cheap scheme"),
        "{stdout}"
    );
    assert!(stdout.contains("per duty instance"), "{stdout}");
    let reports = std::fs::read_to_string(&json).expect("reports written");
    let runs: Vec<(u64, String, usize)> = reports
        .lines()
        .map(|line| {
            let report: serde_json::Value = serde_json::from_str(line).expect("json");
            (
                report["seed"].as_u64().expect("seed"),
                report["signatures"]
                    .as_str()
                    .expect("signatures")
                    .to_string(),
                report["faults"].as_array().expect("faults").len(),
            )
        })
        .collect();
    let bls: Vec<u64> = runs
        .iter()
        .filter(|(_, s, _)| s == "bls")
        .map(|(seed, _, _)| *seed)
        .collect();
    assert_eq!(bls, vec![0, 3], "{runs:?}");
    assert!(runs.iter().all(|(_, _, faults)| *faults == 4), "{runs:?}");
    let unknown = phalanx()
        .args(["simnet", "--scenario", "builtin:nothing"])
        .output()
        .expect("runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no built-in scenario nothing"));
}

/// The trace line `phalanx simnet` prints last but one: "… hash H".
fn trace_hash(args: &[&str]) -> String {
    let output = phalanx()
        .args(["simnet", "--scenario", "builtin:healthy", "--epochs", "1"])
        .args(["--signatures", "cheap"])
        .args(args)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("trace"))
        .unwrap_or_else(|| panic!("no trace line: {stdout}"));
    let hash = line.rsplit(' ').next().expect("a hash").to_string();
    assert_eq!(hash.len(), 64, "{line}");
    hash
}

#[test]
fn the_same_seed_prints_the_same_trace_hash() {
    let one = trace_hash(&["--seed", "3"]);
    assert_eq!(one, trace_hash(&["--seed", "3"]));
    assert_ne!(one, trace_hash(&["--seed", "4"]));
    // A sweep is hashed as a whole, whatever order its runs finish in.
    let sweep = trace_hash(&["--seed", "3", "--seeds", "3"]);
    assert_eq!(sweep, trace_hash(&["--seed", "3", "--seeds", "3"]));
    assert_ne!(sweep, one);
}
