//! The running network: a libp2p swarm (TCP+noise+yamux and QUIC, DNS,
//! relay client with hole punching, ping, identify) behind the `Gate`,
//! and per-protocol messaging on streams with acknowledgements.
//!
//! One task owns the swarm: it keeps connections to every operator up
//! (dialling with backoff), runs `peerinfo` on each new connection and
//! records metrics. Messaging runs beside it on `libp2p-stream`: per
//! operator and protocol a sender keeps [`LANES_PER_PEER`] long-lived
//! streams ("lanes") and writes frame after frame on them, each answered
//! in order by the receiver's one-byte status; the receiver checks each
//! frame's length against the protocol's limit before reading it and
//! queues it for the consumer only while that peer's queue has room.
//! A lane is opened only when the last one failed, and the receiver greets
//! it before the first frame is written, so that a stream libp2p resets on
//! arrival (its accept queue holds one stream per protocol) carries no
//! message: messages wait for a lane instead of being sent again.
//!
//! The parts: [`swarm`] builds the swarm and drives it (dialling, events,
//! connection metrics); [`verification`] runs `peerinfo` on a new
//! connection and applies its verdict; [`send`] delivers a message and
//! waits for its acknowledgement over a [`lane`]; [`receive`] serves the
//! lanes and queues their messages.

mod budget;
mod lane;
mod receive;
mod send;
mod swarm;
mod verification;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use crate::codec::{self, CodecError};
use crate::error::StartError;
use crate::gate::{PeerState, Shared};
use crate::identity::NodeKey;
use crate::metrics::Metrics;
use crate::peerinfo;

pub use budget::QueueSlot;
use receive::receive_loop;
use swarm::{build_swarm, DialState, Driver};
use verification::peerinfo_loop;

/// A messaging protocol another crate registers: `/phalanx/<name>/<version>`.
///
/// What one peer may hold of this node on it, whatever it sends: at most
/// [`Protocol::streams_per_peer`] inbound streams open, and at most
/// `queue_per_peer` messages read or waiting for the consumer, whose
/// lengths add up to at most [`Protocol::bytes_per_peer`]. A message's
/// place is taken after its length is read and before its body is, and
/// held until the consumer drops its [`QueueSlot`]; a message that finds
/// no room waits a moment for the consumer, and is then read through
/// unstored, charged to the peer's rate, and refused (`queue_full`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Short name, e.g. `qbft`.
    pub name: &'static str,
    /// Version, e.g. `1.0.0`.
    pub version: &'static str,
    /// The largest encoded message; larger ones are refused unread.
    pub max_size: usize,
    /// Messages queued per peer before more are refused.
    pub queue_per_peer: usize,
}

/// How many of the largest messages one peer may have in flight at once
/// (being read or waiting for the consumer): one, so that a peer's share
/// of memory is one `max_size`. A message beyond waits for room (see
/// [`Protocol`]): a round change carrying a proposal's value follows the
/// proposal once the core has taken it, milliseconds later.
pub const LARGEST_MESSAGES_PER_PEER: usize = 1;

/// How many of the largest messages a peer's byte rate lets through at
/// once before it slows to one every refill period: a proposal and a
/// round change carrying its value.
pub(crate) const LARGEST_MESSAGES_PER_BURST: usize = 2;

/// The long-lived streams a sender keeps per operator and protocol: two,
/// so that a message waits behind at most one large one (a block
/// proposal) being written, while each lane carries any number of
/// messages one after another.
pub const LANES_PER_PEER: usize = 2;

impl Protocol {
    /// The libp2p protocol id.
    pub fn id(&self) -> String {
        format!("/phalanx/{}/{}", self.name, self.version)
    }

    /// The bytes one peer's messages in flight may announce in all:
    /// [`LARGEST_MESSAGES_PER_PEER`] times `max_size`.
    pub fn bytes_per_peer(&self) -> usize {
        self.max_size.saturating_mul(LARGEST_MESSAGES_PER_PEER)
    }

    /// The inbound streams one peer may have open at once: its
    /// [`LANES_PER_PEER`] lanes, and as many again for lanes it opened
    /// anew while this node has not yet seen the old ones close. Streams
    /// beyond are reset before a frame is read.
    pub fn streams_per_peer(&self) -> usize {
        2 * LANES_PER_PEER
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

/// A received message, holding its place in the sender's share of this
/// node's queue until dropped (or until its [`QueueSlot`] is).
#[derive(Debug)]
pub struct Inbound {
    /// The operator that sent it.
    pub peer: PeerId,
    /// The encoded message (at most the protocol's limit).
    pub bytes: Vec<u8>,
    limit: usize,
    slot: QueueSlot,
}

impl Inbound {
    /// Decodes the message with the protocol's limit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        codec::decode(&self.bytes, self.limit)
    }

    /// The protocol's limit, which decoding the bytes must keep to.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Frees the bytes but keeps the message's place: a consumer that
    /// hands the decoded message on holds the slot until it is handled.
    pub fn into_slot(self) -> QueueSlot {
        self.slot
    }
}

/// The receiving ends of the registered protocols. Each is bounded by
/// the operators' shares: every message in it holds a [`QueueSlot`].
#[derive(Debug, Default)]
pub struct Inbox {
    receivers: BTreeMap<&'static str, mpsc::Receiver<Inbound>>,
}

impl Inbox {
    /// Takes the receiver of a protocol (once).
    pub fn take(&mut self, name: &str) -> Option<mpsc::Receiver<Inbound>> {
        self.receivers.remove(name)
    }
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
    lanes: Arc<lane::Lanes>,
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
            // Never full: a message enters holding one of its sender's
            // `queue_per_peer` places.
            let capacity = operators
                .len()
                .saturating_mul(protocol.queue_per_peer)
                .max(1);
            let (tx, rx) = mpsc::channel(capacity);
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
                lanes: Arc::new(lane::Lanes::new(shared.clone(), control)),
                shared,
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

    /// Refuses an operator for `duration` and closes its connections now:
    /// the node's answer to a peer whose messages show it faulty. Its
    /// messages being read are refused (it is no longer verified), the gate
    /// refuses its connections in both directions until then, and it is
    /// dialled again afterwards.
    pub fn penalise(&self, peer: PeerId, duration: Duration) {
        if !self.shared.operators.contains(&peer) || peer == self.shared.local {
            return;
        }
        self.shared
            .penalise(peer, tokio::time::Instant::now() + duration);
        let _ = self.commands.send(Command::Disconnect(peer));
    }

    /// Stops the network; connections close.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}

fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        AddrProtocol::P2p(peer) => Some(peer),
        _ => None,
    })
}
