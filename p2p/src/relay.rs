//! `phalanx relay`: a circuit-relay v2 server that operators behind NAT
//! reserve a slot on and reach each other through (then upgrade to a direct
//! connection by hole punching where their NATs allow). It serves the
//! peers it is given (the operators of given clusters) or, if told to,
//! anyone, always within limits on reservations, circuits and the bytes
//! and time each circuit may take.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{ConnectionDenied, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::error::StartError;
use crate::gate::{Admission, Admitting};
use crate::identity::NodeKey;

/// Limits of a relay server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Reservations per peer.
    pub max_reservations_per_peer: usize,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Circuits per peer.
    pub max_circuits_per_peer: usize,
    /// How long a circuit may stay open.
    pub max_circuit_duration: Duration,
    /// Bytes a circuit may carry before it is closed.
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    /// Sized for a few clusters: a cluster keeps at most one circuit per
    /// pair of operators (32 covers a 33-operator cluster), and a circuit
    /// only carries a pair's traffic until hole punching replaces it or it
    /// is opened again: 256 MiB is about 13 blocks with blobs at the
    /// largest, far more than an hour of a pair's consensus and partial
    /// signatures for a few hundred validators.
    fn default() -> Self {
        RelayLimits {
            max_reservations: 512,
            max_reservations_per_peer: 4,
            max_circuits: 1024,
            max_circuits_per_peer: 32,
            max_circuit_duration: Duration::from_secs(3600),
            max_circuit_bytes: 256 << 20,
        }
    }
}

/// Who may connect to a relay, and so reserve a slot or open a circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayAccess {
    /// Any peer (a public relay), within the limits.
    Anyone,
    /// Only these peers, e.g. the operators of the clusters it serves;
    /// every other peer is refused as soon as the handshake names it.
    Only(BTreeSet<PeerId>),
}

impl RelayAccess {
    fn allows(&self, peer: &PeerId) -> bool {
        match self {
            RelayAccess::Anyone => true,
            RelayAccess::Only(peers) => peers.contains(peer),
        }
    }
}

/// How many refused peers are remembered, to log each only once.
const REFUSALS_LOGGED: usize = 4096;

/// Refuses connections of peers the relay does not serve.
struct AccessGate {
    access: RelayAccess,
    logged: BTreeSet<PeerId>,
    refused: prometheus_client::metrics::counter::Counter,
}

impl Admission for AccessGate {
    fn admit(&mut self, peer: PeerId, address: &Multiaddr) -> Result<(), ConnectionDenied> {
        if self.access.allows(&peer) {
            return Ok(());
        }
        self.refused.inc();
        if self.logged.len() < REFUSALS_LOGGED && self.logged.insert(peer) {
            tracing::info!(%peer, %address, "refused a peer the relay does not serve");
        }
        Err(ConnectionDenied::new(NotServed))
    }
}

#[derive(Debug)]
struct NotServed;

impl std::fmt::Display for NotServed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the relay does not serve this peer")
    }
}

impl std::error::Error for NotServed {}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct RelayBehaviour {
    gate: Admitting<AccessGate>,
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A running relay server.
pub struct RelayServer {
    peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
    stop: mpsc::UnboundedSender<()>,
}

impl RelayServer {
    /// Starts a relay in the current tokio runtime, serving the peers
    /// `access` names. A relay serves circuits only on addresses it knows
    /// to be reachable: `external` (its public addresses), or, if none are
    /// given, every address it listens on.
    pub fn start(
        key: &NodeKey,
        listen: &[Multiaddr],
        external: &[Multiaddr],
        limits: RelayLimits,
        access: RelayAccess,
        registry: &mut Registry,
    ) -> Result<RelayServer, StartError> {
        let refused = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "phalanx_relay_refused_peers",
            "Connections refused because the relay does not serve the peer",
            refused.clone(),
        );
        let transport = |e: &dyn std::fmt::Display| StartError::Transport(e.to_string());
        let peer_id = key.peer_id();
        let config = relay::Config {
            max_reservations: limits.max_reservations,
            max_reservations_per_peer: limits.max_reservations_per_peer,
            max_circuits: limits.max_circuits,
            max_circuits_per_peer: limits.max_circuits_per_peer,
            max_circuit_duration: limits.max_circuit_duration,
            max_circuit_bytes: limits.max_circuit_bytes,
            ..relay::Config::default()
        };
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.libp2p_keypair())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| transport(&e))?
            .with_quic()
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| RelayBehaviour {
                gate: Admitting(AccessGate {
                    access,
                    logged: BTreeSet::new(),
                    refused,
                }),
                relay: relay::Behaviour::new(key.public().to_peer_id(), config),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/phalanx/relay".to_string(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
            })
            .map_err(|e| transport(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        for address in listen {
            swarm
                .listen_on(address.clone())
                .map_err(|e| StartError::Listen {
                    address: address.to_string(),
                    reason: format!("{e:?}"),
                })?;
        }
        for address in external {
            swarm.add_external_address(address.clone());
        }
        let announce_listen = external.is_empty();
        let metrics = libp2p::metrics::Metrics::new(registry);
        let (listening_tx, listening) = watch::channel(Vec::new());
        let (stop, mut stopped) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        use libp2p::metrics::Recorder;
                        metrics.record(&event);
                        match event {
                            SwarmEvent::NewListenAddr { address, .. } => {
                                tracing::info!(%address, "relay listening");
                                if announce_listen {
                                    swarm.add_external_address(address.clone());
                                }
                                listening_tx.send_modify(|a| a.push(address));
                            }
                            SwarmEvent::Behaviour(RelayBehaviourEvent::Relay(event)) => {
                                metrics.record(&event);
                                tracing::debug!(?event, "relay");
                            }
                            _ => {}
                        }
                    }
                    _ = stopped.recv() => break,
                }
            }
        });
        Ok(RelayServer {
            peer_id,
            listening,
            stop,
        })
    }

    /// The relay's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on, with `/p2p/<id>`, once at least `count` are known.
    pub async fn listen_addresses(&self, count: usize) -> Vec<Multiaddr> {
        let mut listening = self.listening.clone();
        let addresses = listening
            .wait_for(|a| a.len() >= count)
            .await
            .map(|a| a.clone())
            .unwrap_or_default();
        addresses
            .into_iter()
            .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(self.peer_id)))
            .collect()
    }

    /// Stops the relay.
    pub fn shutdown(&self) {
        let _ = self.stop.send(());
    }
}
