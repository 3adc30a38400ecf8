//! The running network: a libp2p swarm (TCP+noise+yamux and QUIC, DNS,
//! relay client with hole punching, ping, identify) behind the [`Gate`],
//! and per-protocol messaging on streams with acknowledgements.
//!
//! One task owns the swarm: it keeps connections to every operator up
//! (dialling with backoff), runs `peerinfo` on each new connection and
//! records metrics. Messaging runs beside it on `libp2p-stream`: a send
//! opens a stream, writes one frame and waits for the receiver's one-byte
//! status; each protocol's receiving task checks the frame's length
//! against the protocol's limit before reading it and queues it for the
//! consumer only while that peer's queue has room.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    dcutr, identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use prometheus_client::registry::Registry;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::codec::{self, CodecError, Status};
use crate::error::{SendError, StartError};
use crate::gate::{Gate, PeerState, Shared};
use crate::identity::NodeKey;
use crate::metrics::{ConnectionLabel, Metrics, PeerLabel, ProtocolLabel};
use crate::peerinfo::{self, Verdict};

/// A messaging protocol another crate registers: `/phalanx/<name>/<version>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Short name, e.g. `qbft`.
    pub name: &'static str,
    /// Version, e.g. `1.0.0`.
    pub version: &'static str,
    /// The largest encoded message; larger ones are refused unread.
    pub max_size: usize,
    /// Messages queued per peer before more are dropped.
    pub queue_per_peer: usize,
}

impl Protocol {
    /// The libp2p protocol id.
    pub fn id(&self) -> String {
        format!("/phalanx/{}/{}", self.name, self.version)
    }
}

/// What the network needs to start.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// This operator's node key.
    pub key: NodeKey,
    /// Every operator of the cluster lock (this one may be among them).
    pub operators: Vec<PeerId>,
    /// Known addresses of operators.
    pub addresses: Vec<(PeerId, Multiaddr)>,
    /// Relays to reserve a slot on and reach peers through, each ending in `/p2p/<id>`.
    pub relays: Vec<Multiaddr>,
    /// Addresses to listen on: `/ip4/…/tcp/…` and `/ip4/…/udp/…/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// The cluster lock's hash, compared in `peerinfo`.
    pub lock_hash: [u8; 32],
    /// This software's version, reported in `peerinfo`.
    pub version: String,
    /// The messaging protocols.
    pub protocols: Vec<Protocol>,
    /// How long a send may take, acknowledgement included.
    pub send_timeout: Duration,
}

/// A received message, holding its slot in the sender's queue until dropped.
#[derive(Debug)]
pub struct Inbound {
    /// The operator that sent it.
    pub peer: PeerId,
    /// The encoded message (at most the protocol's limit).
    pub bytes: Vec<u8>,
    limit: usize,
    _slot: QueueSlot,
}

impl Inbound {
    /// Decodes the message with the protocol's limit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        codec::decode(&self.bytes, self.limit)
    }
}

#[derive(Debug)]
struct QueueSlot(Arc<AtomicUsize>);

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The receiving ends of the registered protocols.
#[derive(Debug, Default)]
pub struct Inbox {
    receivers: BTreeMap<&'static str, mpsc::UnboundedReceiver<Inbound>>,
}

impl Inbox {
    /// Takes the receiver of a protocol (once).
    pub fn take(&mut self, name: &str) -> Option<mpsc::UnboundedReceiver<Inbound>> {
        self.receivers.remove(name)
    }
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    gate: Gate,
    relay: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
}

enum Command {
    AddAddress(PeerId, Multiaddr),
    Disconnect(PeerId),
    Shutdown,
}

/// A handle on the running network; cheap to clone.
#[derive(Clone)]
pub struct Network {
    shared: Arc<Shared>,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedSender<Command>,
    protocols: Arc<BTreeMap<&'static str, Protocol>>,
    listening: watch::Receiver<Vec<Multiaddr>>,
    send_timeout: Duration,
}

impl Network {
    /// Starts the network in the current tokio runtime.
    pub fn start(
        config: NetworkConfig,
        registry: &mut Registry,
    ) -> Result<(Network, Inbox), StartError> {
        let local = config.key.peer_id();
        let metrics = Metrics::register(registry);
        let relays: BTreeSet<PeerId> = config.relays.iter().filter_map(peer_of).collect();
        if relays.len() != config.relays.len() {
            return Err(StartError::Config(
                "every relay address must end in /p2p/<peer id>".into(),
            ));
        }
        let operators: BTreeSet<PeerId> = config.operators.iter().copied().collect();
        let shared = Arc::new(Shared::new(
            local,
            operators.clone(),
            relays,
            config.lock_hash,
            config.version.clone(),
            metrics,
        ));
        let mut swarm = build_swarm(&config, shared.clone(), registry)?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| StartError::Listen {
                    address: address.to_string(),
                    reason: format!("{e:?}"),
                })?;
        }
        let mut control = swarm.behaviour().stream.new_control();
        let (listening_tx, listening) = watch::channel(Vec::new());
        let (commands, command_rx) = mpsc::unbounded_channel();

        let mut inbox = Inbox::default();
        let mut protocols = BTreeMap::new();
        for protocol in &config.protocols {
            let id = StreamProtocol::try_from_owned(protocol.id())
                .map_err(|e| StartError::Config(format!("protocol {}: {e}", protocol.id())))?;
            let incoming = control
                .accept(id)
                .map_err(|_| StartError::Config(format!("protocol {} twice", protocol.id())))?;
            let (tx, rx) = mpsc::unbounded_channel();
            inbox.receivers.insert(protocol.name, rx);
            protocols.insert(protocol.name, protocol.clone());
            tokio::spawn(receive_loop(shared.clone(), protocol.clone(), incoming, tx));
        }
        let peerinfo_incoming = control
            .accept(peerinfo::PROTOCOL)
            .map_err(|_| StartError::Config("peerinfo registered twice".into()))?;
        tokio::spawn(peerinfo_loop(
            shared.clone(),
            peerinfo_incoming,
            commands.clone(),
        ));

        let driver = Driver {
            swarm,
            shared: shared.clone(),
            control: control.clone(),
            commands: command_rx,
            command_tx: commands.clone(),
            listening: listening_tx,
            libp2p_metrics: None,
            addresses: BTreeMap::new(),
            relays: config.relays.clone(),
            relay_listening: BTreeSet::new(),
            dial: BTreeMap::new(),
        };
        let mut driver = driver.with_metrics(registry);
        for (peer, address) in &config.addresses {
            driver.add_address(*peer, address.clone());
        }
        for peer in operators.iter().filter(|p| **p != local) {
            driver.dial.insert(*peer, DialState::due_now());
        }
        tokio::spawn(driver.run());

        Ok((
            Network {
                shared,
                control,
                commands,
                protocols: Arc::new(protocols),
                listening,
                send_timeout: config.send_timeout,
            },
            inbox,
        ))
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local
    }

    /// The addresses the node listens on, once known (waits for at least `count`).
    pub async fn listen_addresses(&self, count: usize) -> Vec<Multiaddr> {
        let mut listening = self.listening.clone();
        let result = listening.wait_for(|a| a.len() >= count).await;
        result.map(|a| a.clone()).unwrap_or_default()
    }

    /// Adds an address to reach an operator at.
    pub fn add_address(&self, peer: PeerId, address: Multiaddr) {
        let _ = self.commands.send(Command::AddAddress(peer, address));
    }

    /// Operators whose connection is up and whose cluster is verified.
    pub fn verified_peers(&self) -> Vec<PeerId> {
        self.peers_where(|s| s.verified)
    }

    fn peers_where(&self, keep: impl Fn(&PeerState) -> bool) -> Vec<PeerId> {
        self.shared
            .peers()
            .iter()
            .filter(|(_, s)| keep(s))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Operators whose last peerinfo named another cluster lock than ours:
    /// they connect but are refused until they run the same one.
    pub fn peers_with_another_lock(&self) -> Vec<PeerId> {
        self.peers_where(|s| s.other_lock)
    }

    /// Waits until at least `count` operators are verified, or `timeout`.
    pub async fn wait_for_peers(&self, count: usize, timeout: Duration) -> bool {
        let mut changes = self.shared.changes.subscribe();
        let wait = async {
            loop {
                if self.verified_peers().len() >= count {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() && self.verified_peers().len() >= count
    }

    /// Stops the network; connections close.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Encodes and sends a message to one operator, waiting for its acknowledgement.
    pub async fn send_message<T: Serialize>(
        &self,
        peer: PeerId,
        protocol: &str,
        message: &T,
    ) -> Result<(), SendError> {
        let limit = self.protocol(protocol)?.max_size;
        let bytes = codec::encode(message, limit).map_err(|e| match e {
            CodecError::TooLarge { len, limit } => SendError::TooLarge {
                protocol: protocol.to_string(),
                size: usize::try_from(len).unwrap_or(usize::MAX),
                limit,
            },
            other => SendError::Encode(other.to_string()),
        })?;
        self.send(peer, protocol, bytes).await
    }

    /// Encodes a message once and sends it to every other operator.
    pub async fn broadcast_message<T: Serialize>(
        &self,
        protocol: &str,
        message: &T,
    ) -> Result<Vec<(PeerId, Result<(), SendError>)>, SendError> {
        let limit = self.protocol(protocol)?.max_size;
        let bytes = codec::encode(message, limit).map_err(|e| SendError::Encode(e.to_string()))?;
        Ok(self.broadcast(protocol, bytes).await)
    }

    /// Sends raw bytes to every other operator concurrently.
    pub async fn broadcast(
        &self,
        protocol: &str,
        bytes: Vec<u8>,
    ) -> Vec<(PeerId, Result<(), SendError>)> {
        let bytes = Arc::new(bytes);
        let peers: Vec<PeerId> = self
            .shared
            .operators
            .iter()
            .copied()
            .filter(|p| *p != self.shared.local)
            .collect();
        let sends = peers.iter().map(|peer| {
            let bytes = bytes.clone();
            async move { (*peer, self.send_shared(*peer, protocol, bytes).await) }
        });
        futures::future::join_all(sends).await
    }

    /// Sends raw bytes to one operator, waiting for its acknowledgement.
    pub async fn send(
        &self,
        peer: PeerId,
        protocol: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SendError> {
        self.send_shared(peer, protocol, Arc::new(bytes)).await
    }

    fn protocol(&self, name: &str) -> Result<&Protocol, SendError> {
        self.protocols
            .get(name)
            .ok_or_else(|| SendError::UnknownProtocol(name.to_string()))
    }

    async fn send_shared(
        &self,
        peer: PeerId,
        protocol_name: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), SendError> {
        let protocol = self.protocol(protocol_name)?.clone();
        if bytes.len() > protocol.max_size {
            return Err(SendError::TooLarge {
                protocol: protocol.id(),
                size: bytes.len(),
                limit: protocol.max_size,
            });
        }
        if !self.shared.operators.contains(&peer) || peer == self.shared.local {
            return Err(SendError::UnknownPeer(peer.to_string()));
        }
        let label = ProtocolLabel {
            protocol: protocol.name.to_string(),
        };
        let result = tokio::time::timeout(self.send_timeout, self.deliver(peer, &protocol, &bytes))
            .await
            .unwrap_or_else(|_| Err(SendError::Timeout(peer.to_string())));
        match &result {
            Ok(()) => self.shared.metrics.sent.get_or_create(&label).inc(),
            Err(_) => self
                .shared
                .metrics
                .send_failures
                .get_or_create(&label)
                .inc(),
        };
        result
    }

    async fn deliver(
        &self,
        peer: PeerId,
        protocol: &Protocol,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        self.wait_verified(peer).await;
        let failed = |reason: String| SendError::Failed {
            peer: peer.to_string(),
            reason,
        };
        let id =
            StreamProtocol::try_from_owned(protocol.id()).map_err(|e| failed(e.to_string()))?;
        let mut control = self.control.clone();
        // A stream can fail before the peer's handler has it: a request
        // cancelled when the connection it was queued on closes while
        // another replaces it (both operators dial each other), or an
        // inbound stream the peer's libp2p dropped because its one-stream
        // accept queue was full (a burst of consensus messages at a duty's
        // start), which resets it. The peer never read such a message:
        // open a new stream and send it again, within the caller's timeout.
        let mut attempt = 0;
        loop {
            let error = match control.open_stream(peer, id.clone()).await {
                Ok(stream) => match exchange(stream, bytes).await {
                    Ok(status) => {
                        return match Status::from_byte(status) {
                            Some(Status::Accepted) => Ok(()),
                            Some(other) => Err(SendError::Refused {
                                peer: peer.to_string(),
                                reason: other.reason().to_string(),
                            }),
                            None => Err(failed(format!("unknown status {status}"))),
                        }
                    }
                    Err(e) => e.to_string(),
                },
                Err(libp2p_stream::OpenStreamError::Io(e)) => e.to_string(),
                Err(e) => return Err(failed(format!("{e:?}"))),
            };
            if attempt >= STREAM_RETRIES {
                return Err(failed(error));
            }
            attempt += 1;
            tracing::debug!(%peer, protocol = protocol.name, attempt, %error, "stream failed before an answer; sending again");
            self.shared
                .metrics
                .stream_retries
                .get_or_create(&ProtocolLabel {
                    protocol: protocol.name.to_string(),
                })
                .inc();
            #[expect(
                clippy::disallowed_methods,
                reason = "the runtime edge: jitter between a real network's resends"
            )]
            let pause = retry_pause(attempt, &mut rand::thread_rng());
            tokio::time::sleep(pause).await;
        }
    }

    /// Waits (within the caller's timeout) until the peer's cluster is verified.
    async fn wait_verified(&self, peer: PeerId) {
        let mut changes = self.shared.changes.subscribe();
        while !self.shared.is_verified(&peer) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Writes one framed message on a fresh stream and reads the peer's
/// one-byte answer. An error means no answer came.
async fn exchange(mut stream: libp2p::Stream, bytes: &[u8]) -> std::io::Result<u8> {
    let written = codec::write_frame(&mut stream, bytes).await;
    let mut status = [0u8; 1];
    match written {
        Ok(()) => stream.read_exact(&mut status).await?,
        // A peer that refuses a message unread (too large, queue full)
        // answers and stops reading: the write can fail while the answer
        // is on its way. Its answer, if it comes, says why.
        Err(write_error) => {
            match tokio::time::timeout(REFUSAL_GRACE, stream.read_exact(&mut status)).await {
                Ok(Ok(())) => {}
                _ => return Err(write_error),
            }
        }
    }
    let _ = stream.close().await;
    Ok(status[0])
}

fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        AddrProtocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

fn build_swarm(
    config: &NetworkConfig,
    shared: Arc<Shared>,
    registry: &mut Registry,
) -> Result<Swarm<Behaviour>, StartError> {
    let transport = |e: &dyn std::fmt::Display| StartError::Transport(e.to_string());
    let version = config.version.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.key.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay_client| Behaviour {
            gate: Gate::new(shared),
            relay: relay_client,
            dcutr: dcutr::Behaviour::new(key.public().to_peer_id()),
            identify: identify::Behaviour::new(identify::Config::new(
                format!("/phalanx/{version}"),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                // TCP and QUIC addresses are dialled together; the first to connect wins.
                .with_dial_concurrency_factor(
                    std::num::NonZeroU8::new(2).unwrap_or(std::num::NonZeroU8::MIN),
                )
        })
        .build();
    Ok(swarm)
}

/// Per-peer dialling state: when to try next and how long to wait after a failure.
#[derive(Clone, Copy, Debug)]
struct DialState {
    next: Instant,
    backoff: Duration,
}

/// How long a sender whose write failed waits for the peer's answer (a
/// refusal sent before the peer stopped reading).
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// How many times a message whose stream failed before an answer is sent
/// again on a new stream: the pauses add up to about 630 ms.
const STREAM_RETRIES: u32 = 6;

/// The pause before sending again for the `attempt`th time: doubling from
/// 10 ms, each drawn between half and one and a half times that, so that
/// the senders of one burst, refused together, do not all come back at
/// once into a queue that is still full.
fn retry_pause(attempt: u32, rng: &mut impl Rng) -> Duration {
    let base = 10u64 << attempt.saturating_sub(1).min(10);
    Duration::from_millis(rng.gen_range(base / 2..=base + base / 2))
}
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl DialState {
    fn due_now() -> DialState {
        DialState {
            next: Instant::now(),
            backoff: FIRST_BACKOFF,
        }
    }
}

struct Driver {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    control: libp2p_stream::Control,
    commands: mpsc::UnboundedReceiver<Command>,
    command_tx: mpsc::UnboundedSender<Command>,
    listening: watch::Sender<Vec<Multiaddr>>,
    libp2p_metrics: Option<libp2p::metrics::Metrics>,
    addresses: BTreeMap<PeerId, Vec<Multiaddr>>,
    relays: Vec<Multiaddr>,
    relay_listening: BTreeSet<PeerId>,
    dial: BTreeMap<PeerId, DialState>,
}

impl Driver {
    fn with_metrics(mut self, registry: &mut Registry) -> Driver {
        self.libp2p_metrics = Some(libp2p::metrics::Metrics::new(registry));
        self
    }

    fn add_address(&mut self, peer: PeerId, address: Multiaddr) {
        let addresses = self.addresses.entry(peer).or_default();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
        if let Some(state) = self.dial.get_mut(&peer) {
            state.next = Instant::now();
            state.backoff = FIRST_BACKOFF;
        }
    }

    /// Direct addresses first, then the same peer through each relay.
    fn dial_addresses(&self, peer: PeerId) -> Vec<Multiaddr> {
        let mut addresses = self.addresses.get(&peer).cloned().unwrap_or_default();
        for relay in &self.relays {
            addresses.push(
                relay
                    .clone()
                    .with(AddrProtocol::P2pCircuit)
                    .with(AddrProtocol::P2p(peer)),
            );
        }
        addresses
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for relay in self.relays.clone() {
            if let Err(e) = self.swarm.dial(relay.clone()) {
                tracing::warn!(%relay, error = %e, "cannot dial relay");
            }
        }
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::AddAddress(peer, address)) => self.add_address(peer, address),
                    Some(Command::Disconnect(peer)) => {
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                    Some(Command::Shutdown) | None => break,
                },
                _ = tick.tick() => self.dial_due(),
            }
        }
        tracing::debug!("p2p stopped");
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .dial
            .iter()
            .filter(|(peer, state)| state.next <= now && !self.swarm.is_connected(peer))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            let addresses = self.dial_addresses(peer);
            if let Some(state) = self.dial.get_mut(&peer) {
                state.next = now + state.backoff;
                state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
            }
            if addresses.is_empty() {
                continue;
            }
            let options = DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::Disconnected)
                .build();
            if let Err(e) = self.swarm.dial(options) {
                tracing::debug!(%peer, error = %e, "dial not started");
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.libp2p_metrics {
            use libp2p::metrics::Recorder;
            metrics.record(&event);
            match &event {
                SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => metrics.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => metrics.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => metrics.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listening.send_modify(|a| a.push(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                self.count_connection(peer_id, &endpoint, 1);
                self.shared.connection_changed(peer_id, true);
                if let Some(state) = self.dial.get_mut(&peer_id) {
                    state.backoff = FIRST_BACKOFF;
                }
                if self.shared.relays.contains(&peer_id) && self.relay_listening.insert(peer_id) {
                    if let Some(relay) = self.relays.iter().find(|r| peer_of(r) == Some(peer_id)) {
                        let circuit = relay.clone().with(AddrProtocol::P2pCircuit);
                        if let Err(e) = self.swarm.listen_on(circuit) {
                            tracing::warn!(relay = %peer_id, error = %e, "cannot reserve a relay slot");
                        }
                    }
                }
                if self.shared.operators.contains(&peer_id)
                    && (num_established.get() == 1 || !self.shared.is_verified(&peer_id))
                {
                    tracing::info!(peer = %peer_id, %address, "connected");
                    tokio::spawn(exchange_peerinfo(
                        self.shared.clone(),
                        self.control.clone(),
                        peer_id,
                        self.command_tx.clone(),
                    ));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                self.count_connection(peer_id, &endpoint, -1);
                self.shared.connection_changed(peer_id, false);
                if num_established == 0 {
                    if self.shared.operators.contains(&peer_id) {
                        tracing::info!(peer = %peer_id, "disconnected");
                    }
                    if let Some(state) = self.dial.get_mut(&peer_id) {
                        state.next = Instant::now() + FIRST_BACKOFF;
                        state.backoff = FIRST_BACKOFF;
                    }
                    if self.relay_listening.remove(&peer_id) {
                        // Reconnect to the relay, then reserve again.
                        if let Some(relay) =
                            self.relays.iter().find(|r| peer_of(r) == Some(peer_id))
                        {
                            let _ = self.swarm.dial(relay.clone());
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                self.shared
                    .metrics
                    .ping_rtt
                    .get_or_create(&PeerLabel {
                        peer: peer.to_string(),
                    })
                    .set(rtt.as_secs_f64());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if self.shared.operators.contains(&peer_id) => {
                // Learn the addresses operators listen on (not relays').
                for address in info.listen_addrs {
                    if !address.iter().any(|p| p == AddrProtocol::P2pCircuit) {
                        self.add_known(peer_id, address);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    fn add_known(&mut self, peer: PeerId, address: Multiaddr) {
        let addresses = self.addresses.entry(peer).or_default();
        if !addresses.contains(&address) && addresses.len() < 16 {
            addresses.push(address);
        }
    }

    fn count_connection(&mut self, peer: PeerId, endpoint: &ConnectedPoint, delta: i64) {
        // An inbound relayed connection shows the circuit in its local
        // (listening) address, an outbound one in the address dialled.
        let addresses: Vec<&Multiaddr> = match endpoint {
            ConnectedPoint::Dialer { address, .. } => vec![address],
            ConnectedPoint::Listener {
                local_addr,
                send_back_addr,
            } => vec![local_addr, send_back_addr],
        };
        let has = |wanted: fn(&AddrProtocol<'_>) -> bool| {
            addresses.iter().any(|a| a.iter().any(|p| wanted(&p)))
        };
        let relayed = has(|p| *p == AddrProtocol::P2pCircuit);
        let quic = has(|p| matches!(p, AddrProtocol::QuicV1));
        let label = ConnectionLabel {
            peer: peer.to_string(),
            kind: if relayed { "relayed" } else { "direct" }.to_string(),
            transport: if quic { "quic" } else { "tcp" }.to_string(),
        };
        let gauge = self.shared.metrics.connections.get_or_create(&label);
        gauge.inc_by(delta);
    }
}

async fn exchange_peerinfo(
    shared: Arc<Shared>,
    mut control: libp2p_stream::Control,
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
) {
    // Retried: the first stream can be cancelled when a duplicate
    // connection (both operators dialled) is closed under it.
    for attempt in 1..=4u64 {
        if shared.is_verified(&peer) {
            return;
        }
        let result = match control.open_stream(peer, peerinfo::PROTOCOL).await {
            Ok(stream) => tokio::time::timeout(
                Duration::from_secs(10),
                peerinfo::initiate(&shared, peer, stream),
            )
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(format!("{e:?}")),
        };
        match result {
            Ok(verdict) => {
                apply_verdict(&shared, peer, verdict, &commands);
                return;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, attempt, "peerinfo exchange failed");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        }
    }
}

async fn peerinfo_loop(
    shared: Arc<Shared>,
    mut incoming: libp2p_stream::IncomingStreams,
    commands: mpsc::UnboundedSender<Command>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let shared = shared.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            if !shared.operators.contains(&peer) {
                return;
            }
            let result = tokio::time::timeout(
                Duration::from_secs(10),
                peerinfo::respond(&shared, peer, stream),
            )
            .await;
            if let Ok(Ok(verdict)) = result {
                apply_verdict(&shared, peer, verdict, &commands);
            }
        });
    }
}

fn apply_verdict(
    shared: &Shared,
    peer: PeerId,
    verdict: Verdict,
    commands: &mpsc::UnboundedSender<Command>,
) {
    match verdict {
        Verdict::Verified => {
            if !shared.is_verified(&peer) {
                tracing::info!(%peer, "operator verified: same cluster lock");
            }
            shared.set_verified(peer);
        }
        Verdict::Mismatch => {
            tracing::warn!(%peer, "operator runs another cluster lock: disconnecting");
            shared
                .metrics
                .refused_peers
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: "lock_mismatch".to_string(),
                })
                .inc();
            shared.deny(peer, Instant::now() + peerinfo::MISMATCH_BAN);
            // Disconnect after a moment, so the peer's own exchange can
            // finish and its operator sees the mismatch too.
            let commands = commands.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = commands.send(Command::Disconnect(peer));
            });
        }
    }
}

/// Per protocol: accepts streams, checks each frame and queues it.
async fn receive_loop(
    shared: Arc<Shared>,
    protocol: Protocol,
    mut incoming: libp2p_stream::IncomingStreams,
    queue: mpsc::UnboundedSender<Inbound>,
) {
    let counts: Arc<Mutex<BTreeMap<PeerId, Arc<AtomicUsize>>>> = Arc::default();
    while let Some((peer, mut stream)) = incoming.next().await {
        let shared = shared.clone();
        let protocol = protocol.clone();
        let queue = queue.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            let count = counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(peer)
                .or_default()
                .clone();
            let status = receive_one(&shared, &protocol, peer, &mut stream, &queue, count).await;
            if let Some(status) = status {
                if status != Status::Accepted {
                    shared.metrics.drop(protocol.name, status.reason());
                }
                let _ = stream.write_all(&[status as u8]).await;
                let _ = stream.close().await;
            }
        });
    }
}

async fn receive_one(
    shared: &Shared,
    protocol: &Protocol,
    peer: PeerId,
    stream: &mut libp2p::Stream,
    queue: &mpsc::UnboundedSender<Inbound>,
    count: Arc<AtomicUsize>,
) -> Option<Status> {
    let read = async {
        let len = codec::read_frame_len(stream, protocol.max_size).await?;
        if !shared.operators.contains(&peer) || !shared.is_verified(&peer) {
            return Ok(Err(Status::Unverified));
        }
        if count.load(Ordering::Acquire) >= protocol.queue_per_peer {
            return Ok(Err(Status::QueueFull));
        }
        codec::read_frame_body(stream, len).await.map(Ok)
    };
    let body = match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(Ok(Ok(body))) => body,
        Ok(Ok(Err(status))) => return Some(status),
        Ok(Err(CodecError::TooLarge { len, .. })) => {
            tracing::debug!(%peer, protocol = protocol.name, len, "refused an oversized message unread");
            return Some(Status::TooLarge);
        }
        Ok(Err(_)) | Err(_) => {
            shared.metrics.drop(protocol.name, "malformed");
            return None;
        }
    };
    count.fetch_add(1, Ordering::AcqRel);
    let inbound = Inbound {
        peer,
        bytes: body,
        limit: protocol.max_size,
        _slot: QueueSlot(count),
    };
    if queue.send(inbound).is_err() {
        return Some(Status::QueueFull);
    }
    shared
        .metrics
        .received
        .get_or_create(&ProtocolLabel {
            protocol: protocol.name.to_string(),
        })
        .inc();
    Some(Status::Accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retry_pauses_double_with_jitter_and_stay_under_a_second_in_all() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for attempt in 1..=STREAM_RETRIES {
            let base = 10u64 << (attempt - 1);
            let pauses: Vec<u64> = (0..200)
                .map(|_| retry_pause(attempt, &mut rng).as_millis() as u64)
                .collect();
            assert!(pauses
                .iter()
                .all(|p| (base / 2..=base + base / 2).contains(p)));
            // Jittered: the senders of one burst come back apart.
            assert!(pauses.iter().any(|&p| p != pauses[0]), "{pauses:?}");
        }
        let longest: u64 = (1..=STREAM_RETRIES)
            .map(|attempt| 15u64 << (attempt - 1))
            .sum();
        assert!(longest < 1_000, "{longest} ms");
    }
}
