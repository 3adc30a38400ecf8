//! Runs the ceremony over libp2p: connects to every operator of the
//! definition (peerinfo checks they all hold the same definition hash
//! before any secret moves), then feeds the ceremony's messages through
//! the `dkg` protocol, retrying each send until it is acknowledged.

use std::time::Duration;

use phalanx_p2p::{Multiaddr, Network, NetworkConfig, NodeKey, PeerId, Protocol};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ceremony::{max_envelope_size, Action, Ceremony, Envelope, Outcome, Snapshot};
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
    /// Where the ceremony's state is kept (sealed to the node key) so that
    /// a restarted operator resumes the same ceremony; removed on success.
    pub state_file: Option<std::path::PathBuf>,
    /// Stops (as if the process died) after this many received messages:
    /// for testing resumption.
    #[doc(hidden)]
    pub interrupt_after: Option<usize>,
}

/// What travels on the `dkg` protocol.
#[derive(Serialize, Deserialize)]
enum Wire {
    /// A ceremony message.
    Envelope(Box<Envelope>),
    /// "I restarted: send me your messages again."
    Resync,
}

fn state_context(definition_hash: &[u8; 32]) -> Vec<u8> {
    let mut context = b"phalanx dkg state".to_vec();
    context.extend_from_slice(definition_hash);
    context
}

fn save_state(
    path: &std::path::Path,
    key: &NodeKey,
    definition_hash: &[u8; 32],
    snapshot: &Snapshot,
) -> Result<(), DkgError> {
    let json = zeroize::Zeroizing::new(serde_json::to_vec(snapshot).unwrap_or_default());
    let sealed = phalanx_p2p::seal::seal(&key.public_key(), &json, &state_context(definition_hash))
        .map_err(|e| DkgError::Input(format!("sealing the ceremony state: {e}")))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    crate::files::write_private(&tmp, &serde_json::to_vec(&sealed).unwrap_or_default())?;
    std::fs::rename(&tmp, path).map_err(|e| DkgError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

fn load_state(
    path: &std::path::Path,
    key: &NodeKey,
    definition_hash: &[u8; 32],
) -> Result<Snapshot, DkgError> {
    let corrupt = |why: String| {
        DkgError::Input(format!(
            "{}: {why}; move it away to start the ceremony over",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| DkgError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let sealed: phalanx_p2p::seal::Sealed =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let json = zeroize::Zeroizing::new(
        phalanx_p2p::seal::open(key, &sealed, &state_context(definition_hash)).map_err(|e| {
            corrupt(format!(
                "cannot be opened with this node key for this definition ({e})"
            ))
        })?,
    );
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

const PROTOCOL_NAME: &str = "dkg";
/// The ceremony protocol's version; a change of its envelopes' encoding or
/// of the p2p framing takes a new one (2.0.0: long-lived streams, each
/// greeted by the receiver before its first frame).
const PROTOCOL_VERSION: &str = "2.0.0";

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
        version: PROTOCOL_VERSION,
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
    let resume = config.state_file.as_ref().filter(|p| p.exists());
    let (mut ceremony, mut pending) = match resume {
        Some(path) => {
            let snapshot = load_state(path, &config.node_key, &definition_hash)?;
            let (ceremony, actions) =
                Ceremony::restore(definition.clone(), config.node_key.clone(), snapshot)?;
            tracing::info!(
                operator = ceremony.me(),
                "resuming the ceremony from its saved state"
            );
            (ceremony, actions)
        }
        None => {
            let mut ceremony =
                Ceremony::new(definition.clone(), config.node_key.clone(), &mut rng)?;
            tracing::info!(operator = ceremony.me(), "all operators connected: dealing");
            let actions = ceremony.start(&mut rng)?;
            (ceremony, actions)
        }
    };
    let mut sends = tokio::task::JoinSet::new();
    if resume.is_some() {
        for (i, peer) in peers.iter().enumerate() {
            if i as u32 != ceremony.me() {
                sends.spawn(deliver(network.clone(), *peer, Wire::Resync, deadline));
            }
        }
    }
    let mut received = 0usize;
    let mut shown_phase = 0;
    let result = loop {
        let (phase, phases, name) = ceremony.phase();
        if phase != shown_phase {
            shown_phase = phase;
            tracing::info!(
                validators = definition.validators.len(),
                "[{phase}/{phases}] {name}: waiting for every operator"
            );
            // The state changes that matter for a restart are this
            // operator's own: its dealings and the messages it sent (which
            // it must re-send byte for byte). What it received since, the
            // others send again when it asks after a restart.
            if let Some(path) = &config.state_file {
                save_state(
                    path,
                    &config.node_key,
                    &definition_hash,
                    &ceremony.snapshot(),
                )?;
            }
        }
        let mut finished = None;
        for action in pending.drain(..) {
            match action {
                Action::Broadcast(envelope) => {
                    for (i, peer) in peers.iter().enumerate() {
                        if i as u32 != ceremony.me() {
                            let wire = Wire::Envelope(Box::new(envelope.clone()));
                            sends.spawn(deliver(network.clone(), *peer, wire, deadline));
                        }
                    }
                }
                Action::Send(to, envelope) => {
                    let wire = Wire::Envelope(Box::new(envelope));
                    sends.spawn(deliver(network.clone(), peers[to as usize], wire, deadline));
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
        match inbound.decode::<Wire>() {
            Ok(Wire::Envelope(envelope)) => pending = ceremony.receive(*envelope),
            Ok(Wire::Resync) => {
                if let Some(index) = peers.iter().position(|p| *p == inbound.peer) {
                    tracing::info!(
                        operator = index,
                        "an operator restarted: sending it our messages again"
                    );
                    pending = ceremony.own_messages(Some(index as u32));
                }
            }
            Err(e) => {
                tracing::warn!(peer = %inbound.peer, error = %e, "dropped a malformed ceremony message")
            }
        }
        received += 1;
        if config
            .interrupt_after
            .is_some_and(|limit| received >= limit)
        {
            if let Some(path) = &config.state_file {
                save_state(
                    path,
                    &config.node_key,
                    &definition_hash,
                    &ceremony.snapshot(),
                )?;
            }
            sends.abort_all();
            network.shutdown();
            return Err(DkgError::Input("interrupted".into()));
        }
    };
    // Our last messages must reach the others before we leave. An operator
    // that finished already has them (it needed all of them), even if its
    // acknowledgement was lost as it shut down: wait a little, not forever.
    let linger = deadline.min(Instant::now() + Duration::from_secs(10));
    while tokio::time::timeout_at(linger, sends.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    network.shutdown();
    if result.is_ok() {
        if let Some(path) = &config.state_file {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// Sends until acknowledged or the deadline.
async fn deliver(network: Network, peer: PeerId, envelope: Wire, deadline: Instant) {
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
