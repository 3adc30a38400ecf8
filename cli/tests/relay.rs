//! `phalanx relay` starts, creates its key, prints the addresses operators
//! configure, and stops when killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_relay_prints_its_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args([
            "relay",
            "--p2p-tcp-address",
            "127.0.0.1:0",
            "--p2p-udp-address",
            "127.0.0.1:0",
            "--monitoring-address",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addresses = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        if line.contains("relay address") {
            addresses.push(line.clone());
        }
        if line.contains("relay running") {
            break;
        }
    }
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(
        addresses.len(),
        2,
        "a TCP and a QUIC address: {addresses:?}"
    );
    assert!(
        addresses.iter().all(|a| a.contains("/p2p/16Uiu2")),
        "{addresses:?}"
    );
    assert!(
        dir.path().join("enr-private-key").exists(),
        "the relay keeps a stable identity"
    );
}
