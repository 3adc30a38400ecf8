//! The crate's Prometheus metrics, registered once in the registry the
//! node creates at start-up (the same one libp2p's own metrics use).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A reason label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: String,
}

/// A protocol label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProtocolLabel {
    pub(crate) protocol: String,
}

/// A protocol and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DropLabel {
    pub(crate) protocol: String,
    pub(crate) reason: String,
}

/// A peer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PeerLabel {
    pub(crate) peer: String,
}

/// A peer's connection by kind and transport.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConnectionLabel {
    pub(crate) peer: String,
    /// `direct` or `relayed`.
    pub(crate) kind: String,
    /// `tcp` or `quic`.
    pub(crate) transport: String,
}

/// A peer and the version it runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VersionLabel {
    pub(crate) peer: String,
    pub(crate) version: String,
}

/// Metrics of the p2p layer; each field's doc is its help text.
#[derive(Clone, Default)]
pub(crate) struct Metrics {
    /// Connections refused at the handshake, by reason (`not_in_lock`, `lock_mismatch`).
    pub(crate) refused_peers: Family<ReasonLabel, Counter>,
    /// Messages sent and acknowledged, by protocol.
    pub(crate) sent: Family<ProtocolLabel, Counter>,
    /// Sends that failed (timeout, refused, unreachable), by protocol.
    pub(crate) send_failures: Family<ProtocolLabel, Counter>,
    /// Messages sent again on a new stream after one failed before the
    /// peer answered (a closed connection), by protocol.
    pub(crate) stream_retries: Family<ProtocolLabel, Counter>,
    /// Lane streams opened again after one was reset or refused before
    /// carrying a message (the peer's accept queue full), by protocol.
    pub(crate) stream_reopens: Family<ProtocolLabel, Counter>,
    /// Messages received and queued, by protocol.
    pub(crate) received: Family<ProtocolLabel, Counter>,
    /// Inbound messages dropped, by protocol and reason (`too_large`, `queue_full`, `unverified`, `malformed`).
    pub(crate) dropped: Family<DropLabel, Counter>,
    /// Ping round-trip time per peer, in seconds.
    pub(crate) ping_rtt: Family<PeerLabel, Gauge<f64, AtomicU64>>,
    /// Open connections per peer, by kind (direct/relayed) and transport (tcp/quic).
    pub(crate) connections: Family<ConnectionLabel, Gauge>,
    /// The peer's clock minus ours, in seconds, as seen in the peerinfo exchange.
    pub(crate) clock_offset: Family<PeerLabel, Gauge<f64, AtomicU64>>,
    /// 1 for the version each peer reported.
    pub(crate) peer_version: Family<VersionLabel, Gauge>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics::default();
        let sub = registry.sub_registry_with_prefix("phalanx_p2p");
        sub.register(
            "refused_peers",
            "Connections refused at the handshake, by reason",
            metrics.refused_peers.clone(),
        );
        sub.register(
            "messages_sent",
            "Messages sent and acknowledged, by protocol",
            metrics.sent.clone(),
        );
        sub.register(
            "send_failures",
            "Sends that failed (timeout, refused, unreachable), by protocol",
            metrics.send_failures.clone(),
        );
        sub.register(
            "stream_retries",
            "Messages sent again on a new stream after one failed before the peer answered, by protocol",
            metrics.stream_retries.clone(),
        );
        sub.register(
            "stream_reopens",
            "Lane streams opened again after one was reset or refused before carrying a message, by protocol",
            metrics.stream_reopens.clone(),
        );
        sub.register(
            "messages_received",
            "Messages received and queued, by protocol",
            metrics.received.clone(),
        );
        sub.register(
            "messages_dropped",
            "Inbound messages dropped, by protocol and reason",
            metrics.dropped.clone(),
        );
        sub.register(
            "ping_rtt_seconds",
            "Ping round-trip time per peer",
            metrics.ping_rtt.clone(),
        );
        sub.register(
            "connections",
            "Open connections per peer by kind and transport",
            metrics.connections.clone(),
        );
        sub.register(
            "peer_clock_offset_seconds",
            "The peer's clock minus ours, from the peerinfo exchange",
            metrics.clock_offset.clone(),
        );
        sub.register(
            "peer_version",
            "1 on the series of the version each peer reported: ours, or `other` (the version itself is logged)",
            metrics.peer_version.clone(),
        );
        metrics
    }

    pub(crate) fn drop(&self, protocol: &str, reason: &str) {
        self.dropped
            .get_or_create(&DropLabel {
                protocol: protocol.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }
}
