//! In-process clusters on 127.0.0.1: all-to-all messaging for 4 and 7
//! operators, a stranger and a peer of another cluster refused, an
//! oversized message refused unread, a restarted node reconnected within
//! 5 s, and two operators that reach each other only through a relay.

use std::time::Duration;

use phalanx_p2p::{
    Inbox, Multiaddr, Network, NetworkConfig, NodeKey, PeerId, Protocol, RelayAccess, RelayLimits,
    RelayServer, SendError,
};
use prometheus_client::registry::Registry;

const LOCK: [u8; 32] = [7; 32];

fn chat(max_size: usize) -> Protocol {
    Protocol {
        name: "chat",
        version: "1.0.0",
        max_size,
        queue_per_peer: 64,
    }
}

struct Node {
    key: NodeKey,
    network: Network,
    inbox: Inbox,
    registry: Registry,
}

fn config(key: &NodeKey, operators: &[PeerId], listen: Vec<Multiaddr>) -> NetworkConfig {
    NetworkConfig {
        key: key.clone(),
        operators: operators.to_vec(),
        addresses: Vec::new(),
        relays: Vec::new(),
        listen,
        lock_hash: LOCK,
        version: "phalanx/test".into(),
        protocols: vec![chat(64 * 1024)],
        send_timeout: Duration::from_secs(5),
    }
}

fn loopback() -> Vec<Multiaddr> {
    vec![
        "/ip4/127.0.0.1/tcp/0".parse().expect("addr"),
        "/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("addr"),
    ]
}

fn start(config: NetworkConfig) -> Node {
    let mut registry = Registry::default();
    let key = config.key.clone();
    let (network, inbox) = Network::start(config, &mut registry).expect("network starts");
    Node {
        key,
        network,
        inbox,
        registry,
    }
}

/// Starts n operators on loopback and tells each the others' addresses.
async fn cluster(n: usize) -> Vec<Node> {
    let keys: Vec<NodeKey> = (0..n).map(|_| NodeKey::generate()).collect();
    let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
    let nodes: Vec<Node> = keys
        .iter()
        .map(|key| start(config(key, &operators, loopback())))
        .collect();
    introduce(&nodes).await;
    nodes
}

async fn introduce(nodes: &[Node]) {
    for node in nodes {
        let addresses = node.network.listen_addresses(2).await;
        for other in nodes {
            if other.key.peer_id() != node.key.peer_id() {
                for address in &addresses {
                    other
                        .network
                        .add_address(node.key.peer_id(), address.clone());
                }
            }
        }
    }
}

fn metrics(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text
}

fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn all_to_all(n: usize) {
    let mut nodes = cluster(n).await;
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(n - 1, Duration::from_secs(20))
                .await,
            "every operator connects and verifies the others"
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let results = node
            .network
            .broadcast_message("chat", &format!("hello from {i}"))
            .await
            .expect("encodes");
        assert_eq!(results.len(), n - 1);
        for (peer, result) in results {
            result.unwrap_or_else(|e| panic!("{i} -> {peer}: {e}"));
        }
    }
    for node in &mut nodes {
        let mut receiver = node.inbox.take("chat").expect("chat inbox");
        let mut senders = std::collections::BTreeSet::new();
        for _ in 0..n - 1 {
            let inbound = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
                .await
                .expect("in time")
                .expect("message");
            let text: String = inbound.decode().expect("decodes");
            assert!(text.starts_with("hello from "));
            senders.insert(inbound.peer);
        }
        assert_eq!(
            senders.len(),
            n - 1,
            "one message from every other operator"
        );
    }
    let text = metrics(&nodes[0].registry);
    assert!(
        metric_value(&text, "phalanx_p2p_connections{") >= (n - 1) as f64,
        "{text}"
    );
    for node in &nodes {
        node.network.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_operators_reach_each_other() {
    all_to_all(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_operators_reach_each_other() {
    all_to_all(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_lock_is_refused_at_the_handshake() {
    let nodes = cluster(2).await;
    let stranger_key = NodeKey::generate();
    let mut operators = vec![nodes[0].key.peer_id(), stranger_key.peer_id()];
    operators.dedup();
    let stranger = start(config(&stranger_key, &operators, loopback()));
    for address in nodes[0].network.listen_addresses(2).await {
        stranger
            .network
            .add_address(nodes[0].key.peer_id(), address);
    }
    assert!(
        !stranger
            .network
            .wait_for_peers(1, Duration::from_secs(3))
            .await,
        "the stranger never gets a verified connection"
    );
    let text = metrics(&nodes[0].registry);
    assert!(
        metric_value(
            &text,
            "phalanx_p2p_refused_peers_total{reason=\"not_in_lock\"}"
        ) >= 1.0,
        "{text}"
    );
    let error = stranger
        .network
        .send(nodes[0].key.peer_id(), "chat", b"hi".to_vec())
        .await
        .expect_err("no way in");
    assert!(
        matches!(error, SendError::Timeout(_) | SendError::Failed { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_another_lock_is_refused() {
    let keys: Vec<NodeKey> = (0..2).map(|_| NodeKey::generate()).collect();
    let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
    let honest = start(config(&keys[0], &operators, loopback()));
    let mut other_cluster = config(&keys[1], &operators, loopback());
    other_cluster.lock_hash = [8; 32];
    let other = start(other_cluster);
    let nodes = vec![honest, other];
    introduce(&nodes).await;
    assert!(
        !nodes[0]
            .network
            .wait_for_peers(1, Duration::from_secs(3))
            .await,
        "a peer of another cluster is never verified"
    );
    // Each side names the other as running another lock.
    assert_eq!(
        nodes[0].network.peers_with_another_lock(),
        vec![keys[1].peer_id()]
    );
    assert_eq!(
        nodes[1].network.peers_with_another_lock(),
        vec![keys[0].peer_id()]
    );
    let text = metrics(&nodes[0].registry);
    assert!(
        metric_value(
            &text,
            "phalanx_p2p_refused_peers_total{reason=\"lock_mismatch\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(nodes[1]
        .network
        .send(nodes[0].key.peer_id(), "chat", b"hi".to_vec())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_unread() {
    let keys: Vec<NodeKey> = (0..2).map(|_| NodeKey::generate()).collect();
    let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
    // The sender believes the protocol allows 64 KiB; the receiver allows 1 KiB.
    let mut small = config(&keys[1], &operators, loopback());
    small.protocols = vec![chat(1024)];
    let mut nodes = vec![
        start(config(&keys[0], &operators, loopback())),
        start(small),
    ];
    introduce(&nodes).await;
    assert!(
        nodes[0]
            .network
            .wait_for_peers(1, Duration::from_secs(20))
            .await
    );
    assert!(
        nodes[1]
            .network
            .wait_for_peers(1, Duration::from_secs(20))
            .await
    );
    let error = nodes[0]
        .network
        .send(keys[1].peer_id(), "chat", vec![1u8; 60 * 1024])
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, SendError::Refused { reason, .. } if reason == "too_large"),
        "{error}"
    );
    // A message within the limit still arrives, and nothing else was queued.
    nodes[0]
        .network
        .send(keys[1].peer_id(), "chat", vec![2u8; 100])
        .await
        .expect("fits");
    let mut inbox = nodes[1].inbox.take("chat").expect("inbox");
    let first = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("in time")
        .expect("message");
    assert_eq!(first.bytes, vec![2u8; 100]);
    let text = metrics(&nodes[1].registry);
    assert_eq!(
        metric_value(
            &text,
            "phalanx_p2p_messages_dropped_total{protocol=\"chat\",reason=\"too_large\"}"
        ),
        1.0,
        "{text}"
    );
    // The sender refuses locally what exceeds its own limit.
    let error = nodes[0]
        .network
        .send(keys[1].peer_id(), "chat", vec![0u8; 65 * 1024])
        .await
        .expect_err("too large to send");
    assert!(matches!(error, SendError::TooLarge { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_reconnected_within_five_seconds() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut nodes = cluster(4).await;
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(3, Duration::from_secs(20))
                .await
        );
    }
    let restarted_key = nodes[3].key.clone();
    // The same TCP address; QUIC on a fresh port (the old UDP socket may
    // linger a moment after shutdown).
    let mut addresses: Vec<Multiaddr> = nodes[3]
        .network
        .listen_addresses(2)
        .await
        .into_iter()
        .filter(|a| a.to_string().contains("/tcp/"))
        .collect();
    addresses.push("/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("addr"));
    let operators: Vec<PeerId> = nodes.iter().map(|n| n.key.peer_id()).collect();
    let old = nodes.pop().expect("node 3");
    old.network.shutdown();
    drop(old);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        nodes[0].network.verified_peers().len() < 3,
        "the others notice the node is gone"
    );

    // Same key, same addresses; it knows nobody's address: the others dial it.
    let restarted = start(config(&restarted_key, &operators, addresses));
    let started = tokio::time::Instant::now();
    for node in &nodes {
        assert!(
            node.network.wait_for_peers(3, Duration::from_secs(5)).await,
            "reconnected within 5 s"
        );
    }
    let elapsed = started.elapsed();
    nodes[0]
        .network
        .send(restarted_key.peer_id(), "chat", b"welcome back".to_vec())
        .await
        .expect("delivered after the restart");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    restarted.network.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_reach_each_other_through_a_relay() {
    let mut relay_registry = Registry::default();
    let relay_key = NodeKey::generate();
    let relay = RelayServer::start(
        &relay_key,
        &["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        &[],
        RelayLimits::default(),
        RelayAccess::Anyone,
        &mut relay_registry,
    )
    .expect("relay starts");
    let relay_address = relay.listen_addresses(1).await.remove(0);

    let keys: Vec<NodeKey> = (0..2).map(|_| NodeKey::generate()).collect();
    let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
    // Neither listens anywhere but on the relay: they can reach each other
    // only through it.
    let mut nodes: Vec<Node> = keys
        .iter()
        .map(|key| {
            let mut config = config(key, &operators, Vec::new());
            config.relays = vec![relay_address.clone()];
            start(config)
        })
        .collect();
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(1, Duration::from_secs(30))
                .await,
            "connected through the relay"
        );
    }
    nodes[0]
        .network
        .send_message(keys[1].peer_id(), "chat", &"via the relay".to_string())
        .await
        .expect("delivered");
    let mut inbox = nodes[1].inbox.take("chat").expect("inbox");
    let message = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("in time")
        .expect("message");
    assert_eq!(
        message.decode::<String>().expect("decodes"),
        "via the relay"
    );
    let text = metrics(&nodes[0].registry);
    assert!(text.contains("kind=\"relayed\""), "{text}");
    for node in &mut nodes {
        node.network.shutdown();
    }
    relay.shutdown();
}

/// A burst, as at a duty's start when every operator broadcasts its
/// consensus messages at once: every message arrives (they go on each
/// operator's lanes; libp2p's one-stream accept queue is met only when a
/// lane opens, and a lane reset then is opened again before carrying any).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_messages_from_every_operator_all_arrive() {
    const PER_NODE: usize = 40;
    let mut nodes = cluster(4).await;
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(3, Duration::from_secs(20))
                .await
        );
    }
    let sends = nodes.iter().enumerate().flat_map(|(i, node)| {
        (0..PER_NODE).map(move |m| async move {
            let results = node
                .network
                .broadcast_message("chat", &format!("{i}:{m}"))
                .await
                .expect("encodes");
            results
                .into_iter()
                .filter_map(|(peer, r)| r.err().map(|e| format!("{i} -> {peer}: {e}")))
                .collect::<Vec<_>>()
        })
    });
    let failures: Vec<String> = futures::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} sends failed: {:?}",
        failures.len(),
        4 * 3 * PER_NODE,
        &failures[..failures.len().min(5)]
    );
    for node in &mut nodes {
        let mut receiver = node.inbox.take("chat").expect("chat inbox");
        for _ in 0..3 * PER_NODE {
            tokio::time::timeout(Duration::from_secs(5), receiver.recv())
                .await
                .expect("in time")
                .expect("message");
        }
    }
    let retries: f64 = nodes
        .iter()
        .map(|n| metric_value(&metrics(&n.registry), "phalanx_p2p_stream_retries_total"))
        .sum();
    #[allow(clippy::print_stderr, reason = "the figure explains the test")]
    {
        eprintln!("messages sent again after a reset stream: {retries}");
    }
    for node in &nodes {
        node.network.shutdown();
    }
}

/// A penalised operator is disconnected at once, refused while the
/// penalty lasts (its own dials included) and connected again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_penalised_operator_is_refused_for_a_while_then_reconnected() {
    let nodes = cluster(2).await;
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(1, Duration::from_secs(20))
                .await
        );
    }
    let offender = nodes[1].key.peer_id();
    let penalty = Duration::from_secs(3);
    let started = tokio::time::Instant::now();
    nodes[0].network.penalise(offender, penalty);
    assert!(nodes[0].network.verified_peers().is_empty());
    // It dials back at once and is refused at the handshake.
    let mut refused = 0.0;
    while refused < 1.0 && started.elapsed() < penalty {
        tokio::time::sleep(Duration::from_millis(100)).await;
        refused = metric_value(
            &metrics(&nodes[0].registry),
            "phalanx_p2p_refused_peers_total{reason=\"penalised\"}",
        );
    }
    assert!(refused >= 1.0, "its dials are refused");
    assert!(
        nodes[0].network.verified_peers().is_empty(),
        "still refused"
    );
    assert!(
        nodes[0]
            .network
            .wait_for_peers(1, Duration::from_secs(15))
            .await,
        "connected again after the penalty"
    );
    assert!(started.elapsed() >= penalty, "{:?}", started.elapsed());
    nodes[0]
        .network
        .send(offender, "chat", b"welcome back".to_vec())
        .await
        .expect("delivered after the penalty");
    for node in &nodes {
        node.network.shutdown();
    }
}

/// A burst of 200 concurrent sends from one honest operator: every one is
/// accepted on its first stream, none sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_operator_is_accepted_without_resends() {
    const BURST: usize = 200;
    let mut nodes = cluster(2).await;
    for node in &nodes {
        assert!(
            node.network
                .wait_for_peers(1, Duration::from_secs(20))
                .await
        );
    }
    let to = nodes[1].key.peer_id();
    let mut inbox = nodes[1].inbox.take("chat").expect("inbox");
    // The consumer keeps up; 200 exceed the queue of 64 otherwise.
    let consumer = tokio::spawn(async move {
        let mut received = 0;
        while received < BURST {
            if inbox.recv().await.is_none() {
                break;
            }
            received += 1;
        }
        received
    });
    let sender = &nodes[0].network;
    let sends = (0..BURST).map(|i| sender.send(to, "chat", vec![i as u8; 100]));
    let results = futures::future::join_all(sends).await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert_eq!(consumer.await.expect("consumer"), BURST);
    let text = metrics(&nodes[0].registry);
    assert_eq!(
        metric_value(&text, "phalanx_p2p_stream_retries_total"),
        0.0,
        "messages sent again after a reset stream"
    );
    for node in &mut nodes {
        node.network.shutdown();
    }
}
