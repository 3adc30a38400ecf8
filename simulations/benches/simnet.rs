//! The simulator's speed: simulated duty instances per second of wall time
//! for whole clusters in virtual time, with the cheap signature scheme (for
//! sweeps) and with real BLS signatures.
//!
//! ```sh
//! cargo bench -p phalanx-sim --bench simnet
//! ```
//!
//! A duty instance is one duty of one validator the chain gave the cluster
//! (an attestation, a block, a sync-committee message), carried through
//! every node: its validator client signs, the node verifies, exchanges,
//! agrees, combines and broadcasts, and the invariants are checked.

use phalanx_sim::sim::{run, Scenario, Signatures};

#[expect(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only_cheap = std::env::args().any(|a| a == "--cheap");
    let schemes: &[Signatures] = if only_cheap {
        &[Signatures::Cheap]
    } else {
        &[Signatures::Cheap, Signatures::Bls]
    };
    for &signatures in schemes {
        for (operators, validators, epochs) in [(4usize, 100usize, 10u64), (10, 1000, 1)] {
            bench(operators, validators, epochs, signatures);
        }
    }
}

#[expect(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn bench(operators: usize, validators: usize, epochs: u64, signatures: Signatures) {
    let mut scenario = Scenario::new(operators, validators, epochs);
    scenario.signatures = signatures;
    scenario.name = format!(
        "{operators} operators x {validators} validators x {epochs} epochs, {} signatures",
        signatures.name()
    );
    let started = now();
    let report = run(&scenario).expect("a valid scenario");
    let seconds = started.elapsed().as_secs_f64();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let instances: u64 = report.duties.values().map(|c| c.expected).sum();
    println!(
        "{}: {instances} duty instances in {seconds:.2} s = {:.0} per second; {} events ({:.0} per second); {} consensus decisions",
        scenario.name,
        instances as f64 / seconds,
        report.events,
        report.events as f64 / seconds,
        report.rounds.values().sum::<u64>()
    );
}
