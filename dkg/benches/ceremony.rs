//! Ceremony cost: wall time and peak memory of a whole key-generation
//! ceremony — every operator of the cluster in this one process, one thread
//! each, messages passed through channels (the computation, without the
//! network), all sharing this machine's cores — for
//! (4 operators: 1, 100, 1,000 validators) and (7 operators: 1,000), and
//! separately the cost of encrypting keystores.
//!
//! `cargo bench -p phalanx-dkg --bench ceremony`
//!
//! Each configuration runs in a fresh child process so that its peak
//! memory (VmHWM) is its own.

use std::net::Ipv4Addr;
use std::time::Duration;

use phalanx_crypto::keystore::{KdfSetting, Keystore};
use phalanx_crypto::SecretKey;
use phalanx_dkg::ceremony::{Action, Ceremony, Envelope};
use phalanx_dkg::definition::{default_threshold, BuilderSpec, NetworkSpec, ValidatorSpec};
use phalanx_dkg::ClusterDefinition;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::ExecutionAddress;
use phalanx_p2p::NodeKey;

#[expect(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(n: usize, validators: usize) -> Duration {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let enrs: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.enr(1, Some(Ipv4Addr::LOCALHOST), Some(4000 + i as u16), None))
        .collect();
    let network = NetworkConfig::built_in("mainnet").expect("mainnet");
    let definition = ClusterDefinition::new(
        "bench",
        NetworkSpec::of(&network),
        default_threshold(n),
        &enrs,
        (0..validators)
            .map(|_| {
                ValidatorSpec::standard(
                    ExecutionAddress::repeat_byte(1),
                    ExecutionAddress::repeat_byte(2),
                )
            })
            .collect(),
        BuilderSpec {
            gas_limit: 36_000_000,
            timestamp: 1_606_824_023,
        },
        "2026-11-23T00:00:00Z",
    );
    let start = now();
    // One thread per operator, as if each ran on its own machine (here
    // they share this machine's cores); messages pass through channels.
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| std::sync::mpsc::channel::<Envelope>())
        .unzip();
    std::thread::scope(|scope| {
        for (i, (key, inbox)) in keys.iter().zip(receivers).enumerate() {
            let senders = senders.clone();
            let definition = definition.clone();
            scope.spawn(move || {
                let mut rng = rand::rngs::OsRng;
                let mut ceremony =
                    Ceremony::new(definition, key.clone(), &mut rng).expect("ceremony");
                let mut pending = ceremony.start(&mut rng).expect("start");
                loop {
                    for action in pending.drain(..) {
                        match action {
                            Action::Broadcast(e) => {
                                for (to, sender) in senders.iter().enumerate() {
                                    if to != i {
                                        let _ = sender.send(e.clone());
                                    }
                                }
                            }
                            Action::Send(to, e) => {
                                let _ = senders[to as usize].send(e);
                            }
                            Action::Done(_) => return,
                            Action::Abort(a) => panic!("aborted: {}", a.reason),
                        }
                    }
                    let envelope = inbox.recv().expect("messages keep coming until done");
                    pending = ceremony.receive(envelope);
                }
            });
        }
    });
    start.elapsed()
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn child(n: usize, validators: usize) {
    let elapsed = run(n, validators);
    println!(
        "ceremony {n} operators x {validators:>4} validators: {:>8.2} s wall, peak memory {:>7.1} MiB (all {n} operators in one process, {} cores)",
        elapsed.as_secs_f64(),
        peak_memory_mib(),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn keystores() {
    let mut rng = rand::rngs::OsRng;
    let keys: Vec<SecretKey> = (0..8).map(|_| SecretKey::random(&mut rng)).collect();
    for (setting, name) in [
        (KdfSetting::StandardScrypt, "scrypt n=2^18"),
        (KdfSetting::StandardPbkdf2, "pbkdf2 c=2^18"),
    ] {
        let start = now();
        std::thread::scope(|scope| {
            for chunk in keys.chunks(keys.len().div_ceil(2)) {
                scope.spawn(move || {
                    let mut rng = rand::rngs::OsRng;
                    for key in chunk {
                        Keystore::encrypt(key, "password", "", setting, &mut rng)
                            .expect("encrypts");
                    }
                });
            }
        });
        let per = start.elapsed().as_secs_f64() / keys.len() as f64;
        println!(
            "keystores ({name}), 2 threads: {per:.3} s per keystore; 1,000 validators x 1 operator = {:.0} s",
            per * 1000.0
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let n = args[pos + 1].parse().expect("n");
        let v = args[pos + 2].parse().expect("validators");
        child(n, v);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let exe = std::env::current_exe().expect("exe");
    for (n, v) in [(4, 1), (4, 100), (4, 1000), (7, 1000)] {
        let status = std::process::Command::new(&exe)
            .args(["--child", &n.to_string(), &v.to_string()])
            .status()
            .expect("child runs");
        assert!(status.success());
    }
    keystores();
}
