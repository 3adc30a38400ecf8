//! Who may connect: the cluster's operators and the configured relays, at
//! most [`MAX_CONNECTIONS_PER_PEER`] connections each, and no operator
//! whose peerinfo showed another cluster or that the node penalised (for
//! a while). Every other peer id is refused as soon as the handshake
//! reveals it; before that, each remote address may start only so many
//! handshakes (see [`crate::handshakes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::handshakes::Handshakes;
use crate::metrics::{Metrics, ReasonLabel};

/// Connections one peer may have established at once: both operators
/// dial each other (TCP and QUIC), and a relayed connection may coexist
/// with a direct one until the direct one wins, so an honest pair needs
/// up to three for a moment. More are refused at the handshake: each costs
/// memory (yamux buffers, up to 512 streams) the peer would choose.
pub(crate) const MAX_CONNECTIONS_PER_PEER: usize = 4;

/// How many refused peer ids are remembered to log each only once.
const REFUSALS_REMEMBERED: usize = 4096;

/// What the node knows about one operator's connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerState {
    /// Open connections.
    pub(crate) connections: usize,
    /// The peerinfo exchange confirmed the same cluster (on a connection still open).
    pub(crate) verified: bool,
    /// Refused until then: its peerinfo named another cluster.
    pub(crate) denied_until: Option<Instant>,
    /// Refused until then: the node penalised its messages.
    pub(crate) penalised_until: Option<Instant>,
    /// Its last peerinfo named another cluster lock (cleared when one names
    /// ours).
    pub(crate) other_lock: bool,
    /// The version it reported.
    pub(crate) version: Option<String>,
}

/// State shared by the swarm task, the gate and the messaging tasks.
pub(crate) struct Shared {
    pub(crate) local: PeerId,
    pub(crate) operators: BTreeSet<PeerId>,
    pub(crate) relays: BTreeSet<PeerId>,
    pub(crate) lock_hash: [u8; 32],
    pub(crate) version: String,
    pub(crate) metrics: Metrics,
    peers: Mutex<BTreeMap<PeerId, PeerState>>,
    /// Bumped whenever a peer is verified or lost, for senders waiting on it.
    pub(crate) changes: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(
        local: PeerId,
        operators: BTreeSet<PeerId>,
        relays: BTreeSet<PeerId>,
        lock_hash: [u8; 32],
        version: String,
        metrics: Metrics,
    ) -> Shared {
        Shared {
            local,
            operators,
            relays,
            lock_hash,
            version,
            metrics,
            peers: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
        }
    }

    pub(crate) fn peers(&self) -> MutexGuard<'_, BTreeMap<PeerId, PeerState>> {
        // A poisoned lock only means another task panicked mid-update of
        // plain flags; the data stays usable.
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_verified(&self, peer: &PeerId) -> bool {
        self.peers().get(peer).is_some_and(|p| p.verified)
    }

    /// Waits until the peer's cluster is verified (callers bound the wait).
    pub(crate) async fn wait_verified(&self, peer: &PeerId) {
        let mut changes = self.changes.subscribe();
        while !self.is_verified(peer) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Marks a peer verified; ignored if its connections closed meanwhile
    /// (an exchange can finish after the connection it ran on is gone) or
    /// it was penalised or denied meanwhile (an exchange on another of its
    /// connections, which the disconnect has not reached yet).
    pub(crate) fn set_verified(&self, peer: PeerId) {
        let now = Instant::now();
        let mut peers = self.peers();
        let state = peers.entry(peer).or_default();
        let refused = state.penalised_until.is_some_and(|until| until > now)
            || state.denied_until.is_some_and(|until| until > now);
        state.verified = state.connections > 0 && !refused;
        state.other_lock = false;
        drop(peers);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Counts a connection opening (+1) or closing (-1); the last closing
    /// one unverifies the peer.
    pub(crate) fn connection_changed(&self, peer: PeerId, opened: bool) {
        let mut peers = self.peers();
        let state = peers.entry(peer).or_default();
        if opened {
            state.connections += 1;
        } else {
            state.connections = state.connections.saturating_sub(1);
            if state.connections == 0 {
                state.verified = false;
            }
        }
        drop(peers);
        self.changes.send_modify(|n| *n += 1);
    }

    pub(crate) fn deny(&self, peer: PeerId, until: Instant) {
        let mut peers = self.peers();
        let state = peers.entry(peer).or_default();
        state.verified = false;
        state.denied_until = Some(until);
        state.other_lock = true;
        drop(peers);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Refuses the peer until `until` (its connections are closed by the
    /// caller).
    pub(crate) fn penalise(&self, peer: PeerId, until: Instant) {
        let mut peers = self.peers();
        let state = peers.entry(peer).or_default();
        state.verified = false;
        state.penalised_until = Some(until.max(state.penalised_until.unwrap_or(until)));
        drop(peers);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Why the peer is refused now, if it is.
    pub(crate) fn refusal(&self, peer: &PeerId) -> Option<&'static str> {
        let now = Instant::now();
        let peers = self.peers();
        let state = peers.get(peer)?;
        if state.denied_until.is_some_and(|until| until > now) {
            Some("lock_mismatch")
        } else if state.penalised_until.is_some_and(|until| until > now) {
            Some("penalised")
        } else {
            None
        }
    }
}

/// The connection gate, first among the node's behaviours.
pub(crate) struct Gate {
    shared: Arc<Shared>,
    logged: BTreeSet<PeerId>,
    /// The established connections of each allowed peer (the swarm reports
    /// one established right after every behaviour took it).
    established: BTreeMap<PeerId, BTreeSet<ConnectionId>>,
    /// Inbound handshakes per remote address.
    handshakes: Handshakes,
}

impl Gate {
    pub(crate) fn new(shared: Arc<Shared>) -> Gate {
        Gate {
            shared,
            logged: BTreeSet::new(),
            established: BTreeMap::new(),
            handshakes: Handshakes::default(),
        }
    }

    fn check(&mut self, peer: PeerId, address: &Multiaddr) -> Result<(), ConnectionDenied> {
        let reason = if self.shared.operators.contains(&peer) || self.shared.relays.contains(&peer)
        {
            let open = self.established.get(&peer).map_or(0, BTreeSet::len);
            match self.shared.refusal(&peer) {
                None if open < MAX_CONNECTIONS_PER_PEER => return Ok(()),
                None => {
                    // An allowed peer with enough connections: counted, not
                    // logged as a stranger.
                    self.shared
                        .metrics
                        .refused_peers
                        .get_or_create(&ReasonLabel {
                            reason: "too_many_connections".to_string(),
                        })
                        .inc();
                    tracing::debug!(%peer, %address, open, "refused a connection: enough are open");
                    return Err(ConnectionDenied::new(Refused("too_many_connections")));
                }
                Some(reason) => reason,
            }
        } else {
            "not_in_lock"
        };
        self.shared
            .metrics
            .refused_peers
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        if self.logged.len() < REFUSALS_REMEMBERED && self.logged.insert(peer) {
            tracing::warn!(%peer, %address, reason, "refused a connection: peer is not allowed");
        }
        Err(ConnectionDenied::new(Refused(reason)))
    }
}

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// What a connection gate decides: at the handshake, whether a peer may
/// hold the connection; and what it learns of connections as they open
/// and close. [`Admitting`] makes a behaviour of it.
pub(crate) trait Admission: Send + 'static {
    /// Admits `peer`'s new connection at `address`, or refuses it.
    fn admit(&mut self, peer: PeerId, address: &Multiaddr) -> Result<(), ConnectionDenied>;

    /// Lets an inbound connection from `remote` start its handshake, or
    /// refuses it before any work (all by default).
    fn admit_handshake(&mut self, _remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        Ok(())
    }

    /// A connection opened or closed (or any other swarm event).
    fn on_swarm_event(&mut self, _event: FromSwarm<'_>) {}
}

/// A behaviour that does nothing but admit or refuse connections.
pub(crate) struct Admitting<A>(pub(crate) A);

impl<A: Admission> NetworkBehaviour for Admitting<A> {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0.admit_handshake(remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.admit(peer, remote_addr)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.admit(peer, addr)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        self.0.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

impl Admission for Gate {
    fn admit(&mut self, peer: PeerId, address: &Multiaddr) -> Result<(), ConnectionDenied> {
        self.check(peer, address)
    }

    fn admit_handshake(&mut self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        if self.handshakes.admit(remote, Instant::now()) {
            return Ok(());
        }
        self.shared
            .metrics
            .refused_peers
            .get_or_create(&ReasonLabel {
                reason: "handshake_rate".to_string(),
            })
            .inc();
        Err(ConnectionDenied::new(Refused("handshake_rate")))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.established
                    .entry(e.peer_id)
                    .or_default()
                    .insert(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(open) = self.established.get_mut(&e.peer_id) {
                    open.remove(&e.connection_id);
                    if open.is_empty() {
                        self.established.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::core::ConnectedPoint;
    use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};

    use super::*;

    fn gate(operator: PeerId) -> Admitting<Gate> {
        Admitting(Gate::new(Arc::new(Shared::new(
            PeerId::random(),
            BTreeSet::from([operator]),
            BTreeSet::new(),
            [0; 32],
            "test".into(),
            Metrics::default(),
        ))))
    }

    fn listener() -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: "/ip4/127.0.0.1/tcp/1".parse().expect("address"),
            send_back_addr: "/ip4/127.0.0.1/tcp/2".parse().expect("address"),
        }
    }

    /// Offers an inbound connection; the swarm reports it established if
    /// every behaviour took it.
    fn offer(gate: &mut Admitting<Gate>, peer: PeerId, id: ConnectionId) -> bool {
        let endpoint = listener();
        let (local, remote) = match &endpoint {
            ConnectedPoint::Listener {
                local_addr,
                send_back_addr,
            } => (local_addr.clone(), send_back_addr.clone()),
            ConnectedPoint::Dialer { .. } => unreachable!(),
        };
        let taken = gate
            .handle_established_inbound_connection(id, peer, &local, &remote)
            .is_ok();
        if taken {
            gate.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id: peer,
                connection_id: id,
                endpoint: &endpoint,
                failed_addresses: &[],
                other_established: 0,
            }));
        }
        taken
    }

    fn close(gate: &mut Admitting<Gate>, peer: PeerId, id: ConnectionId) {
        gate.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: peer,
            connection_id: id,
            endpoint: &listener(),
            cause: None,
            remaining_established: 0,
        }));
    }

    #[test]
    fn an_operator_has_a_bounded_number_of_connections() {
        let operator = PeerId::random();
        let mut gate = gate(operator);
        let ids: Vec<ConnectionId> = (0..MAX_CONNECTIONS_PER_PEER + 3)
            .map(ConnectionId::new_unchecked)
            .collect();
        let taken: Vec<bool> = ids
            .iter()
            .map(|id| offer(&mut gate, operator, *id))
            .collect();
        assert_eq!(
            taken.iter().filter(|t| **t).count(),
            MAX_CONNECTIONS_PER_PEER,
            "{taken:?}"
        );
        // One closes: room for one more.
        close(&mut gate, operator, ids[0]);
        assert!(offer(
            &mut gate,
            operator,
            ConnectionId::new_unchecked(1 << 40)
        ));
        assert!(!offer(
            &mut gate,
            operator,
            ConnectionId::new_unchecked(1 << 41)
        ));
    }

    /// A cluster check that finishes on a connection still open after the
    /// peer was penalised does not verify it again.
    #[tokio::test]
    async fn a_penalised_peer_is_not_verified_by_a_late_exchange() {
        let operator = PeerId::random();
        let gate = gate(operator);
        let shared = gate.0.shared.clone();
        shared.connection_changed(operator, true);
        shared.set_verified(operator);
        assert!(shared.is_verified(&operator));
        shared.penalise(
            operator,
            Instant::now() + std::time::Duration::from_secs(60),
        );
        assert!(!shared.is_verified(&operator));
        // The exchange on its other connection ends now.
        shared.set_verified(operator);
        assert!(!shared.is_verified(&operator), "verified while penalised");
    }
}
