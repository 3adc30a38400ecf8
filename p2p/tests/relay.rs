//! A relay that serves given peers: their circuits work, and a stranger is
//! refused at the handshake, so it can neither reserve a slot nor open a
//! circuit.

use std::collections::BTreeSet;
use std::time::Duration;

use phalanx_p2p::{
    Multiaddr, Network, NetworkConfig, NodeKey, PeerId, Protocol, RelayAccess, RelayLimits,
    RelayServer,
};
use prometheus_client::registry::Registry;

fn config(key: &NodeKey, operators: &[PeerId], relay: &Multiaddr) -> NetworkConfig {
    NetworkConfig {
        key: key.clone(),
        operators: operators.to_vec(),
        addresses: Vec::new(),
        relays: vec![relay.clone()],
        // Nobody listens but on the relay: peers meet only through it.
        listen: Vec::new(),
        lock_hash: [9; 32],
        version: "phalanx/test".into(),
        protocols: vec![Protocol {
            name: "chat",
            version: "1.0.0",
            max_size: 1024,
            queue_per_peer: 8,
        }],
        send_timeout: Duration::from_secs(5),
    }
}

fn metric(registry: &Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_for_given_peers_refuses_a_stranger() {
    let operators: Vec<NodeKey> = (0..2).map(|_| NodeKey::generate()).collect();
    let stranger = NodeKey::generate();
    let served: BTreeSet<PeerId> = operators.iter().map(NodeKey::peer_id).collect();

    let mut relay_registry = Registry::default();
    let relay = RelayServer::start(
        &NodeKey::generate(),
        &["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        &[],
        RelayLimits::default(),
        RelayAccess::Only(served.clone()),
        &mut relay_registry,
    )
    .expect("relay starts");
    let relay_address = relay.listen_addresses(1).await.remove(0);

    let ids: Vec<PeerId> = served.iter().copied().collect();
    let mut networks = Vec::new();
    for key in &operators {
        let (network, _inbox) =
            Network::start(config(key, &ids, &relay_address), &mut Registry::default())
                .expect("starts");
        networks.push((network, _inbox));
    }
    // The stranger believes it shares a cluster with the first operator.
    let stranger_lock = [stranger.peer_id(), ids[0]];
    let (outsider, _outsider_inbox) = Network::start(
        config(&stranger, &stranger_lock, &relay_address),
        &mut Registry::default(),
    )
    .expect("starts");

    for (network, _) in &networks {
        assert!(
            network.wait_for_peers(1, Duration::from_secs(30)).await,
            "the served operators reach each other through the relay"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(&relay_registry, "phalanx_relay_refused_peers_total") < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never refused the stranger"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        outsider.verified_peers().is_empty(),
        "the stranger reached an operator"
    );
    for (network, _) in &networks {
        network.shutdown();
    }
    outsider.shutdown();
    relay.shutdown();
}
