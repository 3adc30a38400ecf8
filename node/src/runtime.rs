//! The runtime: drives the [`Core`] with tokio, libp2p and HTTP.
//!
//! One task owns the core and feeds it events: a clock tick, the validator
//! API's requests, peers' messages and the answers of calls it asked for.
//! Every action becomes a spawned call whose answer comes back as an
//! event, so a slow beacon node or peer never blocks the pipeline.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phalanx_consensus::Wire;
use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::api::Event as BnEvent;
use phalanx_eth::client::{BeaconNodeClient, ClientError, Timeouts};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::sync_committee::SignedContributionAndProof;
use phalanx_eth::validator::SignedValidatorRegistration;
use phalanx_eth::{EthSpec, ForkName, MainnetEthSpec, MinimalEthSpec, PublicKeyBytes, Root, Slot};
use phalanx_p2p::{Multiaddr, Network, NetworkConfig as P2pConfig, NodeKey, PeerId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::{self, ApiConfig, CoreRequest};
use crate::core::{
    Action, AggregateSubmission, AttestationSubmission, BlockSubmission, Core, CoreConfig, Defects,
    Event, Submission, ValidatorKeys,
};
use crate::duty::Duty;
pub use crate::error::NodeError;
use crate::error::RegistrationsProblem;
use crate::parsigex::{parsigex_protocol, PartialBatch};
use crate::qbft::{consensus_protocol, LockVerifier, NodeSigner};
use crate::slashing::SlashingDb;
use crate::timing::duty_timing;
use crate::tracker::Outcome;
use crate::value::DutyValue;

/// The slashing database's file in the data directory.
pub const SLASHING_DB_FILE: &str = "slashing-protection.jsonl";
/// Builder registrations the cluster signed after the lock, in the data
/// directory: they replace the lock's.
pub const REGISTRATIONS_FILE: &str = "builder-registrations.json";

/// What the node needs to run.
pub struct NodeConfig {
    /// The verified cluster lock.
    pub lock: ClusterLock,
    /// This operator's node key (one of the lock's operators).
    pub node_key: NodeKey,
    /// The data directory (slashing database, imported history).
    pub data_dir: PathBuf,
    /// Beacon-node URLs, in fallback order.
    pub beacon_nodes: Vec<String>,
    /// Where the validator API listens.
    pub validator_api: SocketAddr,
    /// p2p listen addresses.
    pub p2p_listen: Vec<Multiaddr>,
    /// Relays.
    pub relays: Vec<Multiaddr>,
    /// Operators' addresses besides those in their ENRs.
    pub extra_addresses: Vec<(PeerId, Multiaddr)>,
    /// The graffiti of the cluster's blocks when the validator client asks
    /// for none.
    pub graffiti: Option<Root>,
    /// Whether blocks may come from builders (the validators' registrations
    /// are submitted every epoch).
    pub builder_api: bool,
}

/// The readiness problem of operators that connect with another cluster
/// lock, named by their index in ours.
fn other_lock_problem(operators: &[PeerId], others: &[PeerId]) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let names: Vec<String> = others
        .iter()
        .map(|peer| match operators.iter().position(|p| p == peer) {
            Some(index) => format!("operator {index} ({peer})"),
            None => peer.to_string(),
        })
        .collect();
    Some(format!(
        "{} run(s) another cluster lock: compare cluster-lock.json with theirs",
        names.join(", ")
    ))
}

/// Readiness for `/readyz`: empty when ready, else the reasons.
#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<&'static str, String>>,
}

impl Health {
    /// Records or clears a problem.
    pub fn set(&self, what: &'static str, problem: Option<String>) {
        let mut problems = self
            .problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match problem {
            Some(reason) => problems.insert(what, reason),
            None => problems.remove(what),
        };
    }

    /// The current problems (empty: ready).
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DutyLabels {
    duty: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    peer: String,
    what: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    duty: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    endpoint: String,
    outcome: String,
}

/// The node's metrics.
struct Metrics {
    /// Duty outcomes by type and outcome (`success` or the failure reason).
    duties: Family<DutyLabels, Counter>,
    /// Messages from peers dropped, by peer, kind and reason.
    dropped: Family<DropLabels, Counter>,
    /// The consensus round in which duties were decided.
    decided_round: Family<TypeLabels, Histogram>,
    /// Consensus rounds that timed out, by duty type.
    round_timeouts: Family<TypeLabels, Counter>,
    /// When into its slot each combined signature went to the beacon node.
    broadcast_delay: Family<TypeLabels, Histogram>,
    /// Partial signatures received, by the operator that sent them.
    partials_received: Family<PeerLabels, Counter>,
    /// Beacon-node call latency, by endpoint.
    beacon_latency: Family<EndpointLabels, Histogram>,
    /// Beacon-node calls, by endpoint and outcome (`ok`, an HTTP status,
    /// `timeout`, `failed`).
    beacon_calls: Family<CallLabels, Counter>,
    /// Connected operators.
    peers: Gauge,
    /// Validators of the cluster whose index the beacon node knows.
    validators_known: Gauge,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            duties: Family::default(),
            dropped: Family::default(),
            decided_round: Family::new_with_constructor(|| {
                Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
            }),
            round_timeouts: Family::default(),
            broadcast_delay: Family::new_with_constructor(|| {
                Histogram::new([0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0])
            }),
            partials_received: Family::default(),
            beacon_latency: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
            }),
            beacon_calls: Family::default(),
            peers: Gauge::default(),
            validators_known: Gauge::default(),
        };
        registry.register(
            "phalanx_duty_outcomes",
            "Duty outcomes by type and outcome (success or the failure reason)",
            metrics.duties.clone(),
        );
        registry.register(
            "phalanx_peer_dropped_messages",
            "Messages from peers dropped, by peer, kind and reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "phalanx_consensus_decided_round",
            "The consensus round in which duties were decided",
            metrics.decided_round.clone(),
        );
        registry.register(
            "phalanx_consensus_round_timeouts",
            "Consensus rounds that timed out, by duty type",
            metrics.round_timeouts.clone(),
        );
        registry.register(
            "phalanx_duty_broadcast_delay_seconds",
            "When into its slot each combined signature went to the beacon node, by duty type",
            metrics.broadcast_delay.clone(),
        );
        registry.register(
            "phalanx_partials_received",
            "Partial signatures received, by the operator (lock position) that sent them",
            metrics.partials_received.clone(),
        );
        registry.register(
            "phalanx_beacon_node_latency_seconds",
            "Beacon-node call latency, by endpoint",
            metrics.beacon_latency.clone(),
        );
        registry.register(
            "phalanx_beacon_node_calls",
            "Beacon-node calls, by endpoint and outcome (ok, an HTTP status, timeout, failed)",
            metrics.beacon_calls.clone(),
        );
        registry.register(
            "phalanx_p2p_connected_operators",
            "Operators connected",
            metrics.peers.clone(),
        );
        registry.register(
            "phalanx_validators_known",
            "Validators of the cluster whose index the beacon node knows",
            metrics.validators_known.clone(),
        );
        metrics
    }
}

/// Reports every beacon-node call to the metrics: latency by endpoint,
/// and the count by endpoint and outcome.
fn beacon_observer(metrics: &Metrics) -> phalanx_eth::client::Observer {
    let (latency, calls) = (metrics.beacon_latency.clone(), metrics.beacon_calls.clone());
    Arc::new(move |record: &phalanx_eth::client::CallRecord| {
        use phalanx_eth::client::Outcome as Call;
        latency
            .get_or_create(&EndpointLabels {
                endpoint: record.endpoint.into(),
            })
            .observe(record.latency.as_secs_f64());
        let outcome = match record.outcome {
            Call::Ok => "ok".to_string(),
            Call::Status(status) => status.to_string(),
            Call::Timeout => "timeout".to_string(),
            Call::Failed => "failed".to_string(),
        };
        calls
            .get_or_create(&CallLabels {
                endpoint: record.endpoint.into(),
                outcome,
            })
            .inc();
    })
}

/// 32 bytes from the operating system's random source.
fn unpredictable_seed() -> [u8; 32] {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

#[expect(
    clippy::disallowed_methods,
    reason = "the runtime is the edge where the clock is read; the core takes time as input"
)]
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Checks the set-up and the beacon node, then runs until `shutdown`.
/// Once every metric is registered, `publish` gets the registry (to serve
/// it).
pub async fn run(
    config: NodeConfig,
    registry: Registry,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send,
    publish: impl FnOnce(Registry) + Send,
) -> Result<(), NodeError> {
    let me = config
        .lock
        .operator_index(&config.node_key.public_key())
        .ok_or(NodeError::NotAnOperator)?;
    let client = BeaconNodeClient::new(&config.beacon_nodes, Timeouts::default())
        .map_err(NodeError::BeaconNode)?;
    // The beacon node may still be starting: wait for it, saying so.
    let (genesis, network) = loop {
        match (client.genesis().await, client.spec().await) {
            (Ok(genesis), Ok(network)) => break (genesis, network),
            (Err(e), _) | (_, Err(e)) => {
                health.set("beacon_node", Some(format!("beacon node unreachable: {e}")));
                tracing::warn!(error = %e, "waiting for the beacon node");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    health.set("beacon_node", None);
    let lock_version = config.lock.definition.network.genesis_fork_version;
    // `/eth/v1/beacon/genesis` names either the config's GENESIS_FORK_VERSION
    // (Lighthouse) or the version in force at slot 0 (Lodestar); they differ
    // on a chain that starts in a later fork, as devnets do.
    let genesis_state_version = network.fork_version_at(phalanx_eth::Epoch(0));
    if ![lock_version, genesis_state_version].contains(&genesis.genesis_fork_version)
        || network.genesis_fork_version != lock_version
    {
        return Err(NodeError::OtherNetwork {
            found: genesis.genesis_fork_version,
            lock: lock_version,
            network: config.lock.definition.network.name.clone(),
        });
    }
    match network.preset {
        phalanx_eth::config::PresetBase::Mainnet => {
            run_with::<MainnetEthSpec>(
                config,
                me,
                client,
                genesis.genesis_time,
                genesis.genesis_validators_root,
                network,
                registry,
                health,
                shutdown,
                publish,
            )
            .await
        }
        phalanx_eth::config::PresetBase::Minimal => {
            run_with::<MinimalEthSpec>(
                config,
                me,
                client,
                genesis.genesis_time,
                genesis.genesis_validators_root,
                network,
                registry,
                health,
                shutdown,
                publish,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_with<E: EthSpec>(
    config: NodeConfig,
    me: usize,
    client: BeaconNodeClient,
    genesis_time: u64,
    genesis_validators_root: Root,
    network: NetworkConfig,
    mut registry: Registry,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send,
    publish: impl FnOnce(Registry) + Send,
) -> Result<(), NodeError> {
    let lock = &config.lock;
    let metrics = Metrics::register(&mut registry);
    let client = Arc::new(client.with_observer(beacon_observer(&metrics)));
    let enrs = lock.definition.enrs()?;
    let peers: Vec<PeerId> = enrs.iter().map(|e| e.peer_id()).collect();
    let mut addresses: Vec<(PeerId, Multiaddr)> = enrs
        .iter()
        .flat_map(|e| e.multiaddrs().into_iter().map(move |a| (e.peer_id(), a)))
        .collect();
    addresses.extend(config.extra_addresses.iter().cloned());
    let consensus = consensus_protocol(network.max_blobs_per_block_ever());
    let parsigex = parsigex_protocol();
    let (net, mut inbox) = Network::start(
        P2pConfig {
            key: config.node_key.clone(),
            operators: peers.clone(),
            addresses,
            relays: config.relays.clone(),
            listen: config.p2p_listen.clone(),
            lock_hash: lock.hash_bytes()?,
            version: format!("phalanx/{}", env!("CARGO_PKG_VERSION")),
            protocols: vec![consensus.clone(), parsigex.clone()],
            send_timeout: Duration::from_secs(4),
        },
        &mut registry,
    )?;
    let net = Arc::new(net);

    let signed_registrations = load_registrations(&config.data_dir, lock)?;
    let validators: Vec<ValidatorKeys> = lock
        .validators
        .iter()
        .zip(&lock.definition.validators)
        .map(|(v, spec)| ValidatorKeys {
            group: v.public_key,
            shares: v.public_shares.clone(),
            fee_recipient: Some(spec.fee_recipient),
            registration: Some(
                signed_registrations
                    .get(&PublicKeyBytes::from(v.public_key.to_bytes()))
                    .filter(|r| r.message.timestamp >= v.builder_registration.message.timestamp)
                    .cloned()
                    .unwrap_or_else(|| v.builder_registration.clone()),
            ),
        })
        .collect();
    let shares: BTreeMap<PublicKeyBytes, PublicKeyBytes> = validators
        .iter()
        .map(|v| {
            (
                PublicKeyBytes::from(v.group.to_bytes()),
                PublicKeyBytes::from(v.shares[me].to_bytes()),
            )
        })
        .collect();
    let slashing = open_slashing(&config.data_dir, genesis_validators_root)?;
    let operator_keys: Vec<[u8; 33]> = enrs.iter().map(|e| e.public_key()).collect();
    let mut core: Core<E> = Core::new(
        CoreConfig {
            me: me as u32,
            threshold: lock.definition.threshold as usize,
            validators,
            network: network.clone(),
            genesis_time_ms: genesis_time.saturating_mul(1000),
            genesis_validators_root,
            seed: unpredictable_seed(),
            graffiti: config.graffiti,
            builder_api: config.builder_api,
            defects: Defects::default(),
        },
        Box::new(NodeSigner(config.node_key.clone())),
        Box::new(LockVerifier::new(operator_keys)),
        slashing,
    )?;

    let (api_tx, mut api_rx) = mpsc::channel::<CoreRequest<E>>(1024);
    let (bound, api_task) = api::serve::<E>(
        config.validator_api,
        ApiConfig {
            core: api_tx,
            beacon_nodes: config.beacon_nodes.clone(),
            shares,
            network: network.clone(),
            request_timeout: network.slot_duration(),
        },
    )
    .await
    .map_err(|source| NodeError::ValidatorApi {
        address: config.validator_api,
        source,
    })?;
    tracing::info!(address = %bound, operator = me, validators = lock.validators.len(), "validator API listening");

    // Peers' messages become events.
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event<E>>();
    let index_of: Arc<HashMap<PeerId, u32>> = Arc::new(
        peers
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i as u32))
            .collect(),
    );
    let dropped = metrics.dropped.clone();
    // Every task of this node, stopped with it.
    let mut tasks = vec![api_task];
    if let Some(mut rx) = inbox.take(consensus.name) {
        let (tx, index_of, dropped) = (events_tx.clone(), index_of.clone(), dropped.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(inbound) = rx.recv().await {
                let Some(&from) = index_of.get(&inbound.peer) else {
                    continue;
                };
                match inbound.decode::<Wire<Duty, DutyValue>>() {
                    Ok(message) => {
                        let _ = tx.send(Event::Consensus { from, message });
                    }
                    Err(e) => {
                        tracing::warn!(peer = from, error = %e, "malformed consensus message dropped");
                        dropped
                            .get_or_create(&DropLabels {
                                peer: from.to_string(),
                                what: "consensus".into(),
                                reason: "malformed".into(),
                            })
                            .inc();
                    }
                }
            }
        }));
    }
    if let Some(mut rx) = inbox.take(parsigex.name) {
        let (tx, index_of, dropped) = (events_tx.clone(), index_of.clone(), dropped.clone());
        let received = metrics.partials_received.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(inbound) = rx.recv().await {
                let Some(&from) = index_of.get(&inbound.peer) else {
                    continue;
                };
                match inbound.decode::<PartialBatch>() {
                    Ok(PartialBatch(partials)) => {
                        received
                            .get_or_create(&PeerLabels {
                                peer: from.to_string(),
                            })
                            .inc_by(partials.len() as u64);
                        let _ = tx.send(Event::Partials { from, partials });
                    }
                    Err(e) => {
                        tracing::warn!(peer = from, error = %e, "malformed partial signatures dropped");
                        dropped
                            .get_or_create(&DropLabels {
                                peer: from.to_string(),
                                what: "partial".into(),
                                reason: "malformed".into(),
                            })
                            .inc();
                    }
                }
            }
        }));
    }

    // Reorganisations that may move duties: resolved again.
    {
        let (client, events) = (client.clone(), events_tx.clone());
        let spe = network.slots_per_epoch();
        tasks.push(tokio::spawn(async move {
            let mut dependent: Option<(phalanx_eth::Epoch, Root)> = None;
            loop {
                match client.events().await {
                    Ok(stream) => {
                        tokio::pin!(stream);
                        while let Some(event) = futures::StreamExt::next(&mut stream).await {
                            let epoch = match event {
                                Ok(BnEvent::ChainReorg(reorg)) => {
                                    tracing::info!(slot = %reorg.slot, depth = reorg.depth, "the beacon node's chain reorganised; resolving duties again");
                                    Some(reorg.epoch)
                                }
                                Ok(BnEvent::Head(head)) => {
                                    let epoch = head.slot.epoch(spe);
                                    let changed = match (head.current_duty_dependent_root, dependent) {
                                        (Some(root), Some((known_epoch, known))) => {
                                            known_epoch == epoch && known != root
                                        }
                                        _ => false,
                                    };
                                    if let Some(root) = head.current_duty_dependent_root {
                                        dependent = Some((epoch, root));
                                    }
                                    changed.then_some(epoch)
                                }
                                Ok(BnEvent::Block(_)) => None,
                                Err(e) => {
                                    tracing::debug!(error = %e, "beacon node event stream");
                                    None
                                }
                            };
                            if let Some(epoch) = epoch {
                                let _ = events.send(Event::Reorg { epoch });
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "subscribing to the beacon node's events"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }

    // Which operators this node cannot reach: the core cuts short a
    // consensus round such an operator leads.
    {
        let (net, events, peers) = (net.clone(), events_tx.clone(), peers.clone());
        tasks.push(tokio::spawn(async move {
            let mut known: Option<Vec<u32>> = None;
            loop {
                let verified: std::collections::HashSet<PeerId> =
                    net.verified_peers().into_iter().collect();
                let unreachable: Vec<u32> = peers
                    .iter()
                    .enumerate()
                    .filter(|&(i, peer)| i != me && !verified.contains(peer))
                    .map(|(i, _)| i as u32)
                    .collect();
                if known.as_ref() != Some(&unreachable) {
                    if !unreachable.is_empty() {
                        tracing::info!(operators = ?unreachable, "operators unreachable: rounds they lead are cut short");
                    }
                    let _ = events.send(Event::Unreachable(unreachable.clone()));
                    known = Some(unreachable);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }

    // Readiness: beacon node synced, enough peers.
    {
        let (client, health, net) = (client.clone(), health.clone(), net.clone());
        let needed = (lock.definition.threshold as usize).saturating_sub(1);
        let operators = peers.clone();
        let peers_gauge = metrics.peers.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match client.syncing().await {
                    Ok(s) if s.is_syncing => {
                        health.set("beacon_node", Some("the beacon node is syncing".into()))
                    }
                    Ok(_) => health.set("beacon_node", None),
                    Err(e) => health.set("beacon_node", Some(format!("beacon node down: {e}"))),
                }
                let connected = net.verified_peers().len();
                peers_gauge.set(connected as i64);
                // An operator on another lock matters when it is missed.
                health.set(
                    "peers",
                    (connected < needed).then(|| {
                        let mut problem = format!(
                            "{connected} operators connected, {needed} needed to reach the threshold"
                        );
                        if let Some(why) =
                            other_lock_problem(&operators, &net.peers_with_another_lock())
                        {
                            problem = format!("{problem}; {why}");
                        }
                        problem
                    }),
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }));
    }

    let mut driver = Driver {
        client,
        net: net.clone(),
        peers,
        events: events_tx,
        replies: HashMap::new(),
        timers: HashMap::new(),
        metrics,
        next_reply: 1 << 62,
        network: network.clone(),
        genesis_ms: genesis_time.saturating_mul(1000),
        data_dir: config.data_dir.clone(),
        _spec: std::marker::PhantomData,
    };
    publish(registry);
    // The core says when it next needs a tick: at the next duty start or
    // deadline, and a few times a second for housekeeping.
    let tick = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(tick);
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            _ = &mut tick => {
                let now = now_ms();
                let wait = core.next_tick_ms(now).saturating_sub(now);
                tick.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(wait));
                Event::Tick
            }
            Some(request) = api_rx.recv() => {
                let CoreRequest { event, reply } = request;
                // The API's id is replaced by one the driver owns.
                let Event::Vc { request, .. } = event else { continue };
                let id = driver.next_reply;
                driver.next_reply += 1;
                driver.replies.insert(id, reply);
                Event::Vc { id, request }
            }
            Some(event) = events_rx.recv() => event,
        };
        let actions = core.handle(now_ms(), event);
        driver.execute(actions);
    }
    for task in tasks {
        task.abort();
    }
    for (_, timer) in driver.timers.drain() {
        timer.abort();
    }
    net.shutdown();
    Ok(())
}

/// The registrations the cluster signed after the lock, each checked: its
/// validator is the cluster's and the group key signed it. A damaged file
/// is refused at start-up, saying why.
fn load_registrations(
    data_dir: &std::path::Path,
    lock: &ClusterLock,
) -> Result<BTreeMap<PublicKeyBytes, SignedValidatorRegistration>, NodeError> {
    let path = data_dir.join(REGISTRATIONS_FILE);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let refuse = |problem: RegistrationsProblem| NodeError::Registrations {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| refuse(e.into()))?;
    let registrations: BTreeMap<PublicKeyBytes, SignedValidatorRegistration> =
        serde_json::from_str(&text).map_err(|e| refuse(e.into()))?;
    let domain = phalanx_eth::signing::application_builder_domain(
        lock.definition.network.genesis_fork_version,
    );
    for (key, registration) in &registrations {
        let validator = lock
            .validators
            .iter()
            .find(|v| PublicKeyBytes::from(v.public_key.to_bytes()) == *key)
            .ok_or_else(|| refuse(RegistrationsProblem::NotInCluster(*key)))?;
        let root = phalanx_eth::signing::compute_signing_root(&registration.message, domain);
        let verified = phalanx_crypto::Signature::from_bytes(registration.signature.as_slice())
            .map(|s| s.verify(&validator.public_key, root.as_slice()))
            .unwrap_or(false);
        if registration.message.pubkey != *key || !verified {
            return Err(refuse(RegistrationsProblem::NotSigned(*key)));
        }
    }
    Ok(registrations)
}

/// Keeps a registration the cluster signed (written whole, then renamed).
fn save_registration(data_dir: &std::path::Path, registration: &SignedValidatorRegistration) {
    let path = data_dir.join(REGISTRATIONS_FILE);
    let mut all: BTreeMap<PublicKeyBytes, SignedValidatorRegistration> =
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
    all.insert(registration.message.pubkey, registration.clone());
    let temporary = path.with_extension("json.tmp");
    let written = serde_json::to_vec_pretty(&all)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&temporary, bytes))
        .and_then(|()| std::fs::rename(&temporary, &path));
    match written {
        Ok(()) => {
            tracing::info!(validator = %registration.message.pubkey, fee_recipient = %registration.message.fee_recipient, "a new builder registration replaces the lock's")
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot keep the new builder registration; after a restart the lock's applies again")
        }
    }
}

fn open_slashing(data_dir: &std::path::Path, gvr: Root) -> Result<SlashingDb, NodeError> {
    let path = data_dir.join(SLASHING_DB_FILE);
    let new = !path.exists();
    let mut db = SlashingDb::open(&path, gvr)?;
    let history = data_dir.join(phalanx_dkg::files::SLASHING_PROTECTION_FILE);
    if new && history.exists() {
        let text =
            std::fs::read_to_string(&history).map_err(|source| NodeError::SlashingHistoryRead {
                path: history.clone(),
                source,
            })?;
        let interchange =
            phalanx_eth::interchange::Interchange::from_json(&text).map_err(|reason| {
                NodeError::SlashingHistoryFormat {
                    path: history.clone(),
                    reason,
                }
            })?;
        db.import(&interchange)
            .map_err(|source| NodeError::SlashingHistoryImport {
                path: history.clone(),
                source,
            })?;
        tracing::info!(file = %history.display(), "imported the validators' slashing-protection history");
    }
    Ok(db)
}

/// Executes the core's actions.
struct Driver<E: EthSpec> {
    client: Arc<BeaconNodeClient>,
    net: Arc<Network>,
    peers: Vec<PeerId>,
    events: mpsc::UnboundedSender<Event<E>>,
    replies: HashMap<
        u64,
        tokio::sync::oneshot::Sender<Result<crate::core::VcResponse<E>, crate::core::ApiFailure>>,
    >,
    timers: HashMap<Duty, JoinHandle<()>>,
    metrics: Metrics,
    next_reply: u64,
    network: NetworkConfig,
    genesis_ms: u64,
    data_dir: PathBuf,
    _spec: std::marker::PhantomData<E>,
}

impl<E: EthSpec> Driver<E> {
    /// The earliest deadline of the duties a submission serves (Unix ms).
    fn deadline(&self, owners: &[(Duty, PublicKeyBytes)]) -> u64 {
        let slot = self.network.slot_duration();
        let spe = u32::try_from(self.network.slots_per_epoch()).unwrap_or(32);
        owners
            .iter()
            .map(|(duty, _)| {
                let start = self.genesis_ms + duty.slot.0 * self.network.slot_duration_ms;
                start + duty_timing(duty.kind, slot, spe).deadline.as_millis() as u64
            })
            .min()
            .unwrap_or(0)
    }

    /// The fork in force at `slot` (the last known one for slots beyond
    /// this build's schedule).
    fn fork(&self, slot: Slot) -> ForkName {
        let epoch = slot.epoch(self.network.slots_per_epoch());
        self.network.fork_at(epoch).unwrap_or(ForkName::Fulu)
    }

    fn execute(&mut self, actions: Vec<Action<E>>) {
        let mut attestations: BTreeMap<ForkName, Batch<AttestationSubmission<E>>> = BTreeMap::new();
        let mut sync_messages = Vec::new();
        let mut sync_owners = Vec::new();
        let mut aggregates: BTreeMap<ForkName, Batch<AggregateSubmission<E>>> = BTreeMap::new();
        let mut contributions: Batch<SignedContributionAndProof<E>> = (Vec::new(), Vec::new());
        for action in actions {
            match action {
                Action::ResolveIndices(keys) => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    let known = self.metrics.validators_known.clone();
                    tokio::spawn(async move {
                        let ids: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                        let event = match client.validators("head", &ids).await {
                            Ok(found) => {
                                known.set(found.len() as i64);
                                Event::Indices(
                                    found
                                        .into_iter()
                                        .map(|v| (v.validator.pubkey, v.index))
                                        .collect(),
                                )
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "looking up the validators' indices");
                                Event::IndicesFailed(e.to_string())
                            }
                        };
                        let _ = events.send(event);
                    });
                }
                Action::ResolveDuties {
                    epoch,
                    indices,
                    preparations,
                } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    tokio::spawn(async move {
                        if !preparations.is_empty() {
                            if let Err(e) = client.prepare_beacon_proposer(&preparations).await {
                                tracing::warn!(%epoch, error = %e, "telling the beacon node the lock's fee recipients");
                            }
                        }
                        let attester = client.attester_duties(epoch, &indices).await;
                        let sync = client.sync_duties(epoch, &indices).await;
                        let event = match (attester, sync) {
                            (Ok(attester), Ok(sync)) => Event::Duties {
                                epoch,
                                attester: attester.data,
                                sync: sync.data,
                            },
                            (Err(e), _) | (_, Err(e)) => {
                                tracing::warn!(%epoch, error = %e, "resolving duties");
                                Event::DutiesFailed {
                                    epoch,
                                    error: e.to_string(),
                                }
                            }
                        };
                        let _ = events.send(event);
                    });
                }
                Action::ResolveProposers { epoch } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    tokio::spawn(async move {
                        let result = client
                            .proposer_duties(epoch)
                            .await
                            .map(|duties| duties.data)
                            .map_err(|e| {
                                tracing::warn!(%epoch, error = %e, "looking up the epoch's proposers");
                                e.to_string()
                            });
                        let _ = events.send(Event::Proposers { epoch, result });
                    });
                }
                Action::FetchAttestationData { duty, committees } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    tokio::spawn(async move {
                        let mut entries = Vec::with_capacity(committees.len());
                        let mut failure: Option<ClientError> = None;
                        for committee in committees {
                            match client.attestation_data(duty.slot, committee).await {
                                Ok(data) => entries.push((committee, data)),
                                Err(e) => {
                                    failure = Some(e);
                                    break;
                                }
                            }
                        }
                        let result = match failure {
                            None => Ok(entries),
                            Some(e) => {
                                tracing::warn!(%duty, error = %e, "no attestation data from the beacon node");
                                Err(e.to_string())
                            }
                        };
                        let _ = events.send(Event::AttestationData { duty, result });
                    });
                }
                Action::FetchAggregates { duty, requests } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    let fork = self.fork(duty.slot);
                    tokio::spawn(async move {
                        let mut aggregates = Vec::with_capacity(requests.len());
                        let mut failure = None;
                        for (committee, data_root) in requests {
                            match client
                                .aggregate_attestation::<E>(fork, duty.slot, data_root, committee)
                                .await
                            {
                                Ok(aggregate) => aggregates.push((committee, aggregate)),
                                Err(e) => {
                                    tracing::warn!(%duty, %committee, error = %e, "no aggregate attestation from the beacon node");
                                    failure = Some(e.to_string());
                                }
                            }
                        }
                        let result = some_or_failure(aggregates, failure);
                        let _ = events.send(Event::Aggregates { duty, result });
                    });
                }
                Action::FetchContributions {
                    duty,
                    block_root,
                    subcommittees,
                } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    tokio::spawn(async move {
                        let block_root = match block_root {
                            Some(root) => Ok(root),
                            None => client.block_root("head").await,
                        };
                        let result = match block_root {
                            Err(e) => Err(e.to_string()),
                            Ok(root) => {
                                let mut contributions = Vec::new();
                                let mut failure = None;
                                for subcommittee in subcommittees {
                                    match client
                                        .sync_committee_contribution::<E>(
                                            duty.slot,
                                            subcommittee,
                                            root,
                                        )
                                        .await
                                    {
                                        Ok(c) => contributions.push(c),
                                        Err(e) => {
                                            tracing::warn!(%duty, subcommittee, error = %e, "no sync committee contribution from the beacon node");
                                            failure = Some(e.to_string());
                                        }
                                    }
                                }
                                some_or_failure(contributions, failure)
                            }
                        };
                        let _ = events.send(Event::Contributions { duty, result });
                    });
                }
                Action::FetchBlock {
                    duty,
                    randao_reveal,
                    graffiti,
                    builder_boost_factor,
                } => {
                    let (client, events) = (self.client.clone(), self.events.clone());
                    tokio::spawn(async move {
                        let result = client
                            .produce_block::<E>(
                                duty.slot,
                                &randao_reveal,
                                graffiti,
                                builder_boost_factor,
                            )
                            .await
                            .map(Box::new)
                            .map_err(|e| {
                                tracing::warn!(%duty, error = %e, "no block from the beacon node");
                                e.to_string()
                            });
                        let _ = events.send(Event::Block { duty, result });
                    });
                }
                Action::ConsensusBroadcast(message) => {
                    let net = self.net.clone();
                    tokio::spawn(async move {
                        if let Ok(results) = net.broadcast_message("qbft", &message).await {
                            for (peer, result) in results {
                                if let Err(e) = result {
                                    tracing::debug!(%peer, error = %e, "consensus message not delivered");
                                }
                            }
                        }
                    });
                }
                Action::ConsensusSend { to, message } => {
                    if let Some(peer) = self.peers.get(to as usize).copied() {
                        let net = self.net.clone();
                        tokio::spawn(async move {
                            if let Err(e) = net.send_message(peer, "qbft", &message).await {
                                tracing::debug!(%peer, error = %e, "consensus message not delivered");
                            }
                        });
                    }
                }
                Action::SetTimer { duty, round, after } => {
                    let events = self.events.clone();
                    let timeouts = self.metrics.round_timeouts.get_or_create(&TypeLabels {
                        duty: duty.kind.name().into(),
                    });
                    let timeouts = timeouts.clone();
                    let handle = tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        // Not stopped or replaced by then: the round timed out.
                        tracing::debug!(%duty, round = round.0, ?after, "consensus round timed out");
                        timeouts.inc();
                        let _ = events.send(Event::Timer { duty, round });
                    });
                    if let Some(old) = self.timers.insert(duty, handle) {
                        old.abort();
                    }
                }
                Action::StopTimer(duty) => {
                    if let Some(old) = self.timers.remove(&duty) {
                        old.abort();
                    }
                }
                Action::SendPartials(partials) => {
                    let net = self.net.clone();
                    tokio::spawn(async move {
                        match net
                            .broadcast_message("parsigex", &PartialBatch(partials))
                            .await
                        {
                            Ok(results) => {
                                for (peer, result) in results {
                                    if let Err(e) = result {
                                        tracing::debug!(%peer, error = %e, "partial signatures not delivered");
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "partial signatures not sent"),
                        }
                    });
                }
                Action::Submit {
                    duty,
                    validator,
                    submission,
                } => {
                    let slot_start = self.genesis_ms + duty.slot.0 * self.network.slot_duration_ms;
                    self.metrics
                        .broadcast_delay
                        .get_or_create(&TypeLabels {
                            duty: duty.kind.name().into(),
                        })
                        .observe(now_ms().saturating_sub(slot_start) as f64 / 1000.0);
                    match submission {
                        Submission::Attestation(fork, attestation) => {
                            let entry = attestations.entry(fork).or_default();
                            entry.0.push(attestation);
                            entry.1.push((duty, validator));
                        }
                        Submission::SyncMessage(message) => {
                            sync_messages.push(*message);
                            sync_owners.push((duty, validator));
                        }
                        Submission::Aggregate(fork, aggregate) => {
                            let entry = aggregates.entry(fork).or_default();
                            entry.0.push(aggregate);
                            entry.1.push((duty, validator));
                        }
                        Submission::Block(fork, block) => {
                            let (client, events) = (self.client.clone(), self.events.clone());
                            let deadline = self.deadline(&[(duty, validator)]);
                            tokio::spawn(async move {
                                let result = match block {
                                    BlockSubmission::Full(signed) => {
                                        retrying(deadline, || {
                                            client.publish_block(fork, &signed, false)
                                        })
                                        .await
                                    }
                                    BlockSubmission::Contents(contents) => {
                                        retrying(deadline, || {
                                            client.publish_block(fork, &contents, false)
                                        })
                                        .await
                                    }
                                    BlockSubmission::Blinded(signed) => {
                                        retrying(deadline, || {
                                            client.publish_block(fork, &signed, true)
                                        })
                                        .await
                                    }
                                };
                                report(&events, vec![(duty, validator)], result);
                            });
                        }
                        Submission::Exit(exit) => {
                            let (client, events) = (self.client.clone(), self.events.clone());
                            let deadline = self.deadline(&[(duty, validator)]);
                            tokio::spawn(async move {
                                let result =
                                    retrying(deadline, || client.submit_voluntary_exit(&exit))
                                        .await;
                                if result.is_ok() {
                                    tracing::info!(validator = %exit.message.validator_index, epoch = %exit.message.epoch, "voluntary exit broadcast");
                                }
                                report(&events, vec![(duty, validator)], result);
                            });
                        }
                        Submission::Registrations(registrations) => {
                            let (client, events) = (self.client.clone(), self.events.clone());
                            let deadline = self.deadline(&[(duty, validator)]);
                            tokio::spawn(async move {
                                let owners = registrations
                                    .iter()
                                    .map(|r| (duty, r.message.pubkey))
                                    .collect();
                                let result = retrying(deadline, || {
                                    client.register_validators(&registrations)
                                })
                                .await;
                                report(&events, owners, result);
                            });
                        }
                        Submission::Contribution(contribution) => {
                            contributions.0.push(*contribution);
                            contributions.1.push((duty, validator));
                        }
                    }
                }
                Action::Reply { id, result } => {
                    if let Some(reply) = self.replies.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Action::Decided { duty, round, .. } => {
                    tracing::debug!(%duty, round, "decided");
                    self.metrics
                        .decided_round
                        .get_or_create(&TypeLabels {
                            duty: duty.kind.name().into(),
                        })
                        .observe(round as f64);
                }
                Action::Outcome { duty, outcome } => {
                    let label = match &outcome {
                        Outcome::Success => "success".to_string(),
                        Outcome::Failed(failure) => failure.label().to_string(),
                    };
                    match &outcome {
                        Outcome::Success => {
                            tracing::info!(
                                slot = duty.slot.0,
                                duty = duty.kind.name(),
                                "duty succeeded"
                            )
                        }
                        Outcome::Failed(failure) => tracing::warn!(
                            slot = duty.slot.0,
                            duty = duty.kind.name(),
                            reason = label,
                            detail = ?failure,
                            "duty failed"
                        ),
                    }
                    self.metrics
                        .duties
                        .get_or_create(&DutyLabels {
                            duty: duty.kind.name().into(),
                            outcome: label,
                        })
                        .inc();
                }
                Action::Dropped { from, what, reason } => {
                    tracing::warn!(peer = from, what, reason, "dropped a peer's message");
                    self.metrics
                        .dropped
                        .get_or_create(&DropLabels {
                            peer: from.to_string(),
                            what: what.into(),
                            reason,
                        })
                        .inc();
                }
                Action::Registered(registration) => {
                    save_registration(&self.data_dir, &registration);
                }
                Action::Refused {
                    duty,
                    validator,
                    reason,
                } => {
                    tracing::warn!(%duty, %validator, reason, "refused to sign");
                }
            }
        }
        // Each batch holds one fork's layout: the core builds every object
        // in the layout of its slot's fork, and batches are keyed by fork.
        for (fork, (items, owners)) in attestations {
            let (client, events) = (self.client.clone(), self.events.clone());
            let deadline = self.deadline(&owners);
            tokio::spawn(async move {
                let result = retrying(deadline, || client.submit_attestations(fork, &items)).await;
                report(&events, owners, result);
            });
        }
        for (fork, (items, owners)) in aggregates {
            let (client, events) = (self.client.clone(), self.events.clone());
            let deadline = self.deadline(&owners);
            tokio::spawn(async move {
                let result = retrying(deadline, || {
                    client.submit_aggregate_and_proofs(fork, &items)
                })
                .await;
                report(&events, owners, result);
            });
        }
        if !contributions.0.is_empty() {
            let (client, events) = (self.client.clone(), self.events.clone());
            let (list, owners) = contributions;
            let deadline = self.deadline(&owners);
            tokio::spawn(async move {
                let result =
                    retrying(deadline, || client.submit_contribution_and_proofs(&list)).await;
                report(&events, owners, result);
            });
        }
        if !sync_messages.is_empty() {
            let (client, events) = (self.client.clone(), self.events.clone());
            let deadline = self.deadline(&sync_owners);
            tokio::spawn(async move {
                let result = retrying(deadline, || {
                    client.submit_sync_committee_messages(&sync_messages)
                })
                .await;
                report(&events, sync_owners, result);
            });
        }
    }
}

/// Submits, and submits again after a transport error or a 5xx (the beacon
/// node was busy or restarting) until `deadline_ms`; a 4xx is final.
async fn retrying<F, Fut>(deadline_ms: u64, mut submit: F) -> Result<(), ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        let result = submit().await;
        match &result {
            Err(e)
                if e.is_retriable()
                    && !e.is_already_known()
                    && now_ms() + wait.as_millis() as u64 <= deadline_ms =>
            {
                tracing::debug!(error = %e, retry_in = ?wait, "submission failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            _ => return result,
        }
    }
}

/// What several requests to the beacon node gave: some answers beat none
/// (the others' proposals may cover the rest); with none, the last error.
fn some_or_failure<T>(found: Vec<T>, failure: Option<String>) -> Result<Vec<T>, String> {
    match failure {
        Some(e) if found.is_empty() => Err(e),
        _ => Ok(found),
    }
}

/// Objects to submit in one call, and whose they are.
type Batch<T> = (Vec<T>, Vec<(Duty, PublicKeyBytes)>);

/// Tells the core how a submission went, per duty.
fn report<E: EthSpec>(
    events: &mpsc::UnboundedSender<Event<E>>,
    owners: Vec<(Duty, PublicKeyBytes)>,
    result: Result<(), ClientError>,
) {
    let mut by_duty: BTreeMap<Duty, Vec<PublicKeyBytes>> = BTreeMap::new();
    for (duty, validator) in owners {
        by_duty.entry(duty).or_default().push(validator);
    }
    // Every operator's node broadcasts the same object; a beacon node that
    // already has it from another says so, which is success.
    let result = match result {
        Err(e) if e.is_already_known() => Ok(()),
        other => other,
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, "the beacon node refused a submission");
    }
    for (duty, validators) in by_duty {
        let _ = events.send(Event::Submitted {
            duty,
            validators,
            result: result.clone().map_err(|e| e.to_string()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failure(status: Option<u16>) -> ClientError {
        match status {
            Some(status) => ClientError::Status {
                node: "bn".into(),
                endpoint: "submit",
                status,
                message: "busy".into(),
            },
            None => ClientError::Transport {
                node: "bn".into(),
                endpoint: "submit",
                reason: "connection refused".into(),
            },
        }
    }

    #[tokio::test]
    async fn submissions_are_retried_until_they_land_or_the_deadline_passes() {
        // A restarting beacon node: refused, then 503, then accepted.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 5_000, || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match call {
                    0 => Err(failure(None)),
                    1 => Err(failure(Some(503))),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A 400 is final.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 5_000, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failure(Some(400))) }
        })
        .await;
        assert_eq!(result.map_err(|e| e.status()), Err(Some(400)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // No retry once the deadline is near.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 50, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failure(Some(503))) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn operators_on_another_lock_are_named_by_their_index() {
        let operators: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        assert_eq!(other_lock_problem(&operators, &[]), None);
        let stranger = PeerId::random();
        let problem = other_lock_problem(&operators, &[operators[2], stranger]).expect("a problem");
        assert!(
            problem.starts_with(&format!("operator 2 ({}), {stranger} run(s)", operators[2])),
            "{problem}"
        );
        assert!(problem.contains("another cluster lock"), "{problem}");
    }
}
