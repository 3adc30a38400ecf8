//! The runtime: drives the [`Core`] with tokio, libp2p and HTTP.
//!
//! One task owns the core and feeds it events: a clock tick, the validator
//! API's requests, peers' messages and the answers of calls it asked for.
//! Every action becomes a spawned call whose answer comes back as an
//! event, so a slow beacon node or peer never blocks the pipeline.
//!
//! - `startup`: the checks before anything starts.
//! - `driver`: executes the core's actions; `submit` sends the
//!   combined objects to the beacon node, batched and retried.
//! - `watchers`: peers' messages, reorganisations and reachability as
//!   events.
//! - `health`: readiness; `metrics`: the node's metrics.
//! - `persistence`: the builder registrations and the slashing database
//!   in the data directory.

mod driver;
mod health;
mod metrics;
mod penalties;
mod persistence;
mod startup;
mod submit;
mod watchers;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phalanx_consensus::OperatorIndex;
use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::api::Genesis;
use phalanx_eth::client::{BeaconNodeClient, Timeouts};
use phalanx_eth::config::{NetworkConfig, PresetBase};
use phalanx_eth::validator::SignedValidatorRegistration;
use phalanx_eth::{EthSpec, MainnetEthSpec, MinimalEthSpec, PublicKeyBytes, Root};
use phalanx_p2p::{Enr, Multiaddr, Network, NetworkConfig as P2pConfig, NodeKey, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use self::driver::{Driver, ProtocolNames};
use self::metrics::{beacon_observer, Metrics};
use self::submit::Submitter;
use self::watchers::Inboxes;
use crate::api::{self, ApiConfig, CoreRequest};
use crate::core::{Core, CoreConfig, Defects, Event, ValidatorKeys};
use crate::parsigex::parsigex_protocol;
use crate::qbft::{consensus_protocol, LockVerifier, NodeSigner};

pub use self::health::Health;
pub use self::persistence::{REGISTRATIONS_FILE, SLASHING_DB_FILE};
pub use crate::error::NodeError;

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
    let me = startup::operator_index(&config.lock, &config.node_key)?;
    let client = BeaconNodeClient::new(&config.beacon_nodes, Timeouts::default())
        .map_err(NodeError::BeaconNode)?;
    // The beacon node may still be starting: wait for it, saying so.
    let (genesis, network) = startup::wait_for_beacon_node(&client, &health).await;
    startup::check_network(&config.lock, &genesis, &network)?;
    let preset = network.preset;
    let checked = Checked {
        config,
        me,
        client,
        genesis,
        network,
        registry,
        health,
    };
    match preset {
        PresetBase::Mainnet => run_with::<MainnetEthSpec>(checked, shutdown, publish).await,
        PresetBase::Minimal => run_with::<MinimalEthSpec>(checked, shutdown, publish).await,
    }
}

/// What the node runs with once the start-up checks passed.
struct Checked {
    /// The node's configuration.
    config: NodeConfig,
    /// This operator.
    me: OperatorIndex,
    /// The beacon nodes.
    client: BeaconNodeClient,
    /// The chain's genesis, as the beacon node gave it.
    genesis: Genesis,
    /// The network, as the beacon node gave it.
    network: NetworkConfig,
    /// Where the node's metrics are registered.
    registry: Registry,
    /// Readiness.
    health: Arc<Health>,
}

/// Starts p2p, the core, the validator API and the watchers, then feeds the
/// core until `shutdown`.
async fn run_with<E: EthSpec>(
    checked: Checked,
    shutdown: impl Future<Output = ()> + Send,
    publish: impl FnOnce(Registry) + Send,
) -> Result<(), NodeError> {
    let Checked {
        config,
        me,
        client,
        genesis,
        network,
        mut registry,
        health,
    } = checked;
    let lock = &config.lock;
    let metrics = Metrics::register(&mut registry);
    let client = Arc::new(client.with_observer(beacon_observer(&metrics)));
    let enrs = lock.definition.enrs()?;
    let peers: Vec<PeerId> = enrs.iter().map(|e| e.peer_id()).collect();
    let consensus = consensus_protocol(network.max_blobs_per_block_ever());
    let parsigex = parsigex_protocol();
    let (net, mut inbox) = Network::start(
        P2pConfig {
            key: config.node_key.clone(),
            operators: peers.clone(),
            addresses: operator_addresses(&enrs, &config.extra_addresses),
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

    let saved = persistence::load_registrations(&config.data_dir, lock)?;
    let validators = validator_keys(lock, &saved);
    let shares: BTreeMap<PublicKeyBytes, PublicKeyBytes> = validators
        .iter()
        .map(|v| {
            (
                PublicKeyBytes::from(v.group.to_bytes()),
                PublicKeyBytes::from(v.shares[me.as_usize()].to_bytes()),
            )
        })
        .collect();
    let slashing = persistence::open_slashing(&config.data_dir, genesis.genesis_validators_root)?;
    let operator_keys: Vec<[u8; 33]> = enrs.iter().map(|e| e.public_key()).collect();
    let genesis_ms = genesis.genesis_time.saturating_mul(1000);
    let mut core: Core<E> = Core::new(
        CoreConfig {
            me,
            lock_hash: lock.hash_bytes()?,
            threshold: lock.definition.threshold as usize,
            validators,
            network: network.clone(),
            genesis_time_ms: genesis_ms,
            genesis_validators_root: genesis.genesis_validators_root,
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
            beacon_node: client.clone(),
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
    tracing::info!(address = %bound, operator = me.0, validators = lock.validators.len(), "validator API listening");

    // The runtime's own events (answers, timers, reorgs), and peers'
    // messages as events, each holding its place in its sender's share of
    // the queue until the core has handled it. The bound only sizes the
    // buffer: the places bound what waits.
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event<E>>();
    let peer_capacity = peers
        .len()
        .saturating_mul(
            consensus
                .queue_per_peer
                .saturating_add(parsigex.queue_per_peer),
        )
        .max(1);
    let (peer_events_tx, mut peer_events_rx) =
        mpsc::channel::<watchers::PeerEvent<E>>(peer_capacity);
    let inboxes = Inboxes {
        events: peer_events_tx,
        index_of: Arc::new(
            peers
                .iter()
                .enumerate()
                .map(|(i, p)| (*p, OperatorIndex(i as u32)))
                .collect::<HashMap<PeerId, OperatorIndex>>(),
        ),
    };
    // Every task of this node, stopped with it.
    let mut tasks = vec![api_task];
    if let Some(rx) = inbox.take(consensus.name) {
        tasks.push(inboxes.clone().watch_consensus(rx));
    }
    if let Some(rx) = inbox.take(parsigex.name) {
        tasks.push(inboxes.watch_partials(rx, metrics.partials_received.clone()));
    }
    tasks.push(watchers::watch_reorgs(
        client.clone(),
        events_tx.clone(),
        network.slots_per_epoch(),
    ));
    tasks.push(watchers::watch_reachability(
        net.clone(),
        events_tx.clone(),
        peers.clone(),
        me,
    ));
    tasks.push(health::watch_readiness(
        client.clone(),
        health.clone(),
        net.clone(),
        peers.clone(),
        (lock.definition.threshold as usize).saturating_sub(1),
        metrics.peers.clone(),
    ));

    let mut driver = Driver {
        client: client.clone(),
        net: net.clone(),
        scores: penalties::Scores::new(peers.len()),
        drop_log: penalties::DropLog::default(),
        peers,
        events: events_tx.clone(),
        replies: HashMap::new(),
        timers: HashMap::new(),
        metrics,
        next_reply: 1 << 62,
        network: network.clone(),
        genesis_ms,
        data_dir: config.data_dir.clone(),
        submitter: Submitter {
            client,
            events: events_tx,
            network,
            genesis_ms,
        },
        protocols: ProtocolNames {
            consensus: consensus.name,
            partials: parsigex.name,
        },
    };
    publish(registry);
    // The core says when it next needs a tick: at the next duty start or
    // deadline, and a few times a second for housekeeping.
    let tick = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(tick);
    tokio::pin!(shutdown);
    loop {
        let (event, slot) = tokio::select! {
            _ = &mut shutdown => break,
            _ = &mut tick => {
                let now = now_ms();
                let wait = core.next_tick_ms(now).saturating_sub(now);
                tick.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(wait));
                (Event::Tick, None)
            }
            Some(CoreRequest { request, reply }) = api_rx.recv() => {
                let id = driver.register_reply(reply);
                (Event::Vc { id, request }, None)
            }
            Some(event) = events_rx.recv() => (event, None),
            Some((event, slot)) = peer_events_rx.recv() => (event, Some(slot)),
        };
        let tick = matches!(event, Event::Tick);
        let actions = core.handle(now_ms(), event);
        // Handled: the sender's place is free again.
        drop(slot);
        if tick {
            // What peers may make this node hold, a few times a second.
            let stored = i64::try_from(core.stored_partials()).unwrap_or(i64::MAX);
            driver.metrics.partials_stored.set(stored);
            let buffered = i64::try_from(core.buffered_consensus_bytes()).unwrap_or(i64::MAX);
            driver.metrics.consensus_buffered_bytes.set(buffered);
        }
        driver.execute(actions);
    }
    for task in tasks {
        task.abort();
    }
    driver.stop_timers();
    net.shutdown();
    Ok(())
}

/// Every operator's addresses: those in its ENR, then the configured ones.
fn operator_addresses(enrs: &[Enr], extra: &[(PeerId, Multiaddr)]) -> Vec<(PeerId, Multiaddr)> {
    enrs.iter()
        .flat_map(|e| e.multiaddrs().into_iter().map(move |a| (e.peer_id(), a)))
        .chain(extra.iter().cloned())
        .collect()
}

/// The lock's validators as the core takes them, each with the builder
/// registration in force.
fn validator_keys(
    lock: &ClusterLock,
    saved: &BTreeMap<PublicKeyBytes, SignedValidatorRegistration>,
) -> Vec<ValidatorKeys> {
    lock.validators
        .iter()
        .zip(&lock.definition.validators)
        .map(|(v, spec)| ValidatorKeys {
            group: v.public_key,
            shares: v.public_shares.clone(),
            fee_recipient: Some(spec.fee_recipient),
            registration: Some(persistence::registration_in_force(
                &v.builder_registration,
                saved.get(&PublicKeyBytes::from(v.public_key.to_bytes())),
            )),
        })
        .collect()
}
