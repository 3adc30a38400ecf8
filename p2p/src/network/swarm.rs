//! The swarm and the one task that owns it: the libp2p transports and
//! behaviours behind the [`Gate`], dialling every operator with backoff
//! (directly, then through each relay), reserving relay slots, learning
//! addresses from `identify`, and recording connection and ping metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{dcutr, identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::verification::exchange_peerinfo;
use super::{peer_of, Command, NetworkConfig};
use crate::error::StartError;
use crate::gate::{Admitting, Gate, Shared};
use crate::metrics::{ConnectionLabel, PeerLabel};

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct Behaviour {
    gate: Admitting<Gate>,
    relay: relay::client::Behaviour,
    dcutr: dcutr::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    pub(super) stream: libp2p_stream::Behaviour,
}

pub(super) fn build_swarm(
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
            yamux_config,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_relay_client(noise::Config::new, yamux_config)
        .map_err(|e| transport(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay_client| Behaviour {
            gate: Admitting(Gate::new(shared)),
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
                .with_max_negotiating_inbound_streams(NEGOTIATING_STREAMS)
                // TCP and QUIC addresses are dialled together; the first to connect wins.
                .with_dial_concurrency_factor(
                    std::num::NonZeroU8::new(2).unwrap_or(std::num::NonZeroU8::MIN),
                )
        })
        .build();
    Ok(swarm)
}

/// Streams one multiplexed connection may carry at once. An operator
/// needs about a dozen (two lanes per protocol each way, peerinfo,
/// identify, ping); each stream buffers up to the multiplexer's window
/// (256 KiB) of bytes this node has not read yet, so the default of 512
/// would let one peer park 128 MiB per connection.
const STREAMS_PER_CONNECTION: usize = 64;
/// Inbound streams of one connection still negotiating their protocol.
const NEGOTIATING_STREAMS: usize = 16;

fn yamux_config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(STREAMS_PER_CONNECTION);
    config
}

/// Per-peer dialling state: when to try next and how long to wait after a failure.
#[derive(Clone, Copy, Debug)]
pub(super) struct DialState {
    next: Instant,
    backoff: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl DialState {
    pub(super) fn due_now() -> DialState {
        DialState {
            next: Instant::now(),
            backoff: FIRST_BACKOFF,
        }
    }
}

pub(super) struct Driver {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) shared: Arc<Shared>,
    pub(super) control: libp2p_stream::Control,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) command_tx: mpsc::UnboundedSender<Command>,
    pub(super) listening: watch::Sender<Vec<Multiaddr>>,
    pub(super) libp2p_metrics: Option<libp2p::metrics::Metrics>,
    pub(super) addresses: BTreeMap<PeerId, Vec<Multiaddr>>,
    pub(super) relays: Vec<Multiaddr>,
    pub(super) relay_listening: BTreeSet<PeerId>,
    pub(super) dial: BTreeMap<PeerId, DialState>,
}

impl Driver {
    pub(super) fn with_metrics(mut self, registry: &mut Registry) -> Driver {
        self.libp2p_metrics = Some(libp2p::metrics::Metrics::new(registry));
        self
    }

    pub(super) fn add_address(&mut self, peer: PeerId, address: Multiaddr) {
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

    pub(super) async fn run(mut self) {
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
            // A refused peer (penalised, another lock) is dialled once
            // the refusal ends: the gate would close the connection.
            .filter(|(peer, state)| {
                state.next <= now
                    && !self.swarm.is_connected(peer)
                    && self.shared.refusal(peer).is_none()
            })
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
