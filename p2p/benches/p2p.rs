//! Loopback messaging figures: one-to-all broadcast latency (until every
//! acknowledgement is back) with 4 and 10 nodes, p50/p99, and messages per
//! second for 1 KiB and 64 KiB messages. All nodes run in this process on
//! 127.0.0.1, over TCP (noise, yamux).
//!
//! `cargo bench -p phalanx-p2p --bench p2p`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use phalanx_p2p::{Network, NetworkConfig, NodeKey, PeerId, Protocol};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

const PROTOCOL: Protocol = Protocol {
    name: "bench",
    version: "1.0.0",
    max_size: 1 << 20,
    queue_per_peer: 4096,
};

async fn cluster(n: usize, received: Arc<AtomicU64>) -> Vec<Network> {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
    let mut networks = Vec::new();
    for key in &keys {
        let mut registry = Registry::default();
        let (network, mut inbox) = Network::start(
            NetworkConfig {
                key: key.clone(),
                operators: operators.clone(),
                addresses: Vec::new(),
                relays: Vec::new(),
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
                lock_hash: [1; 32],
                version: "bench".into(),
                protocols: vec![PROTOCOL],
                send_timeout: Duration::from_secs(10),
            },
            &mut registry,
        )
        .expect("network");
        let mut receiver = inbox.take("bench").expect("inbox");
        let received = received.clone();
        tokio::spawn(async move {
            while receiver.recv().await.is_some() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
        networks.push(network);
    }
    for network in &networks {
        let addresses = network.listen_addresses(1).await;
        for other in &networks {
            if other.local_peer_id() != network.local_peer_id() {
                for address in &addresses {
                    other.add_address(network.local_peer_id(), address.clone());
                }
            }
        }
    }
    for network in &networks {
        assert!(
            network.wait_for_peers(n - 1, Duration::from_secs(30)).await,
            "cluster up"
        );
    }
    networks
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
async fn latency(n: usize, size: usize, rounds: usize) {
    let received = Arc::new(AtomicU64::new(0));
    let networks = cluster(n, received).await;
    let payload = vec![0xabu8; size];
    for _ in 0..50 {
        networks[0].broadcast("bench", payload.clone()).await;
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let results = networks[0].broadcast("bench", payload.clone()).await;
        samples.push(start.elapsed());
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    }
    samples.sort();
    println!(
        "broadcast {size:>6} B to {:>2} peers: p50 {:>8.3} ms  p99 {:>8.3} ms  ({rounds} broadcasts)",
        n - 1,
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
    );
    for network in &networks {
        network.shutdown();
    }
}

#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
async fn throughput(n: usize, size: usize, seconds: u64) {
    let received = Arc::new(AtomicU64::new(0));
    let networks = cluster(n, received.clone()).await;
    let payload = Arc::new(vec![0xcdu8; size]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut senders = Vec::new();
    // Every node broadcasts, 8 broadcasts in flight each.
    for network in &networks {
        for _ in 0..8 {
            let network = network.clone();
            let payload = payload.clone();
            senders.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    network.broadcast("bench", payload.to_vec()).await;
                }
            }));
        }
    }
    let start = Instant::now();
    for sender in senders {
        let _ = sender.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let messages = received.load(Ordering::Relaxed) as f64;
    println!(
        "all-to-all {size:>6} B, {n:>2} nodes: {:>9.0} messages/s delivered ({:.1} MiB/s)",
        messages / elapsed,
        messages * size as f64 / elapsed / (1 << 20) as f64,
    );
    for network in &networks {
        network.shutdown();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        latency(4, 1024, 2_000).await;
        latency(10, 1024, 1_000).await;
        latency(4, 64 * 1024, 1_000).await;
        latency(10, 64 * 1024, 500).await;
        throughput(4, 1024, 3).await;
        throughput(4, 64 * 1024, 3).await;
        throughput(10, 1024, 3).await;
        throughput(10, 64 * 1024, 3).await;
    });
}
