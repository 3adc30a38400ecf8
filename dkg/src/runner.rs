//! Runs the ceremony over libp2p: connects to every operator of the
//! definition (peerinfo checks they all hold the same definition hash
//! before any secret moves), then feeds the ceremony's messages through
//! the `dkg` protocol, retrying each send until it is acknowledged.

use std::time::Duration;

use phalanx_p2p::{Multiaddr, Network, NetworkConfig, NodeKey, PeerId, Protocol};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::ceremony::{max_envelope_size, Action, Ceremony, Envelope, Outcome};
use crate::definition::ClusterDefinition;
use crate::error::DkgError;

/// How to run one operator's ceremony.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The definition every operator holds.
    pub definition: ClusterDefinition,
    /// This operator's node key (one of the definition's ENRs).
    pub node_key: NodeKey,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Relays, each ending in `/p2p/<id>`.
    pub relays: Vec<Multiaddr>,
    /// Addresses of operators besides those in their ENRs.
    pub extra_addresses: Vec<(PeerId, Multiaddr)>,
    /// How long the whole ceremony may take, waiting for operators included.
    pub timeout: Duration,
}

const PROTOCOL_NAME: &str = "dkg";

/// Runs the ceremony to its end.
pub async fn run_ceremony(config: RunConfig, registry: &mut Registry) -> Result<Outcome, DkgError> {
    let deadline = Instant::now() + config.timeout;
    let definition = &config.definition;
    let definition_hash = definition.validate()?;
    let enrs = definition.enrs()?;
    let n = enrs.len();
    let peers: Vec<PeerId> = enrs.iter().map(|e| e.peer_id()).collect();
    let mut addresses: Vec<(PeerId, Multiaddr)> = enrs
        .iter()
        .flat_map(|e| e.multiaddrs().into_iter().map(move |a| (e.peer_id(), a)))
        .collect();
    addresses.extend(config.extra_addresses.iter().cloned());
    let protocol = Protocol {
        name: PROTOCOL_NAME,
        version: "1.0.0",
        max_size: max_envelope_size(
            n,
            definition.threshold as usize,
            definition.validators.len(),
        ),
        queue_per_peer: 64,
    };
    let (network, mut inbox) = Network::start(
        NetworkConfig {
            key: config.node_key.clone(),
            operators: peers.clone(),
            addresses,
            relays: config.relays.clone(),
            listen: config.listen.clone(),
            lock_hash: definition_hash,
            version: format!("phalanx/{}", env!("CARGO_PKG_VERSION")),
            protocols: vec![protocol],
            send_timeout: Duration::from_secs(20),
        },
        registry,
    )
    .map_err(|e| DkgError::Input(format!("starting the network: {e}")))?;
    let mut receiver = inbox
        .take(PROTOCOL_NAME)
        .ok_or_else(|| DkgError::Input("no dkg inbox".into()))?;

    tracing::info!(
        operators = n,
        "waiting for every operator to connect with the same definition"
    );
    let remaining = deadline.saturating_duration_since(Instant::now());
    if !network.wait_for_peers(n - 1, remaining).await {
        network.shutdown();
        return Err(DkgError::Input(format!(
            "only {} of {} other operators connected with this definition ({}) in time",
            network.verified_peers().len(),
            n - 1,
            definition.definition_hash
        )));
    }

    let mut rng = rand::rngs::OsRng;
    let mut ceremony = Ceremony::new(definition.clone(), config.node_key.clone(), &mut rng)?;
    tracing::info!(operator = ceremony.me(), "all operators connected: dealing");
    let mut sends = tokio::task::JoinSet::new();
    let mut pending = ceremony.start(&mut rng)?;
    let result = loop {
        let mut finished = None;
        for action in pending.drain(..) {
            match action {
                Action::Broadcast(envelope) => {
                    for (i, peer) in peers.iter().enumerate() {
                        if i as u32 != ceremony.me() {
                            sends.spawn(deliver(
                                network.clone(),
                                *peer,
                                envelope.clone(),
                                deadline,
                            ));
                        }
                    }
                }
                Action::Send(to, envelope) => {
                    sends.spawn(deliver(
                        network.clone(),
                        peers[to as usize],
                        envelope,
                        deadline,
                    ));
                }
                Action::Done(outcome) => finished = Some(Ok(*outcome)),
                Action::Abort(abort) => {
                    finished = Some(Err(DkgError::Aborted {
                        culprits: abort.culprits,
                        reason: abort.reason,
                    }))
                }
            }
        }
        if let Some(result) = finished {
            break result;
        }
        let inbound = tokio::select! {
            inbound = receiver.recv() => inbound,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some(inbound) = inbound else {
            break Err(DkgError::Input(
                "the ceremony timed out waiting for other operators".into(),
            ));
        };
        match inbound.decode::<Envelope>() {
            Ok(envelope) => pending = ceremony.receive(envelope),
            Err(e) => {
                tracing::warn!(peer = %inbound.peer, error = %e, "dropped a malformed ceremony message")
            }
        }
    };
    // Our last messages must reach the others before we leave.
    while tokio::time::timeout_at(deadline, sends.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    network.shutdown();
    result
}

/// Sends until acknowledged or the deadline.
async fn deliver(network: Network, peer: PeerId, envelope: Envelope, deadline: Instant) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match network.send_message(peer, PROTOCOL_NAME, &envelope).await {
            Ok(()) => return,
            Err(error) => {
                if Instant::now() + backoff > deadline {
                    tracing::warn!(%peer, %error, "gave up sending a ceremony message");
                    return;
                }
                tracing::debug!(%peer, %error, "ceremony message not delivered yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
