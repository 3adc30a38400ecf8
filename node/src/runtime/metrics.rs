//! The node's metrics: one struct registered once at start-up, whose
//! families the driver and the watcher tasks update, and the observer that
//! reports every beacon-node call.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::tracker::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DutyLabels {
    pub(super) duty: String,
    pub(super) outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DropLabels {
    pub(super) peer: String,
    pub(super) what: String,
    pub(super) reason: String,
}

/// An operator (its index in the lock) and a fault reason (a fixed label).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PenaltyLabels {
    pub(super) peer: String,
    pub(super) reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TypeLabels {
    pub(super) duty: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PeerLabels {
    pub(super) peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EndpointLabels {
    pub(super) endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CallLabels {
    pub(super) endpoint: String,
    pub(super) outcome: String,
}

/// The node's metrics.
pub(super) struct Metrics {
    /// Duty outcomes by type and outcome (`success` or the failure reason).
    pub(super) duties: Family<DutyLabels, Counter>,
    /// Messages from peers dropped, by peer, kind and reason.
    pub(super) dropped: Family<DropLabels, Counter>,
    /// Penalty points peers earned, by peer and fault reason: one per run
    /// of the core that dropped any of the peer's messages for it.
    pub(super) peer_penalties: Family<PenaltyLabels, Counter>,
    /// The consensus round in which duties were decided.
    pub(super) decided_round: Family<TypeLabels, Histogram>,
    /// Consensus rounds that timed out, by duty type.
    pub(super) round_timeouts: Family<TypeLabels, Counter>,
    /// When into its slot each combined signature went to the beacon node.
    pub(super) broadcast_delay: Family<TypeLabels, Histogram>,
    /// Partial signatures received, by the operator that sent them.
    pub(super) partials_received: Family<PeerLabels, Counter>,
    /// Beacon-node call latency, by endpoint.
    pub(super) beacon_latency: Family<EndpointLabels, Histogram>,
    /// Beacon-node calls, by endpoint and outcome (`ok`, an HTTP status,
    /// `timeout`, `failed`).
    pub(super) beacon_calls: Family<CallLabels, Counter>,
    /// Connected operators.
    pub(super) peers: Gauge,
    /// Validators of the cluster whose index the beacon node knows.
    pub(super) validators_known: Gauge,
    /// Partial signatures held until they combine or expire.
    pub(super) partials_stored: Gauge,
    /// Bytes of peers' consensus messages waiting for instances not
    /// started here.
    pub(super) consensus_buffered_bytes: Gauge,
}

impl Metrics {
    pub(super) fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            duties: Family::default(),
            dropped: Family::default(),
            peer_penalties: Family::default(),
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
            partials_stored: Gauge::default(),
            consensus_buffered_bytes: Gauge::default(),
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
            "phalanx_peer_penalties",
            "Penalty points peers earned for faulty messages, by peer and reason",
            metrics.peer_penalties.clone(),
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
        registry.register(
            "phalanx_partials_stored",
            "Partial signatures held, this operator's and its peers', until they combine or expire",
            metrics.partials_stored.clone(),
        );
        registry.register(
            "phalanx_consensus_buffered_bytes",
            "Bytes of peers' consensus messages waiting for instances not started here",
            metrics.consensus_buffered_bytes.clone(),
        );
        metrics
    }
}

/// Reports every beacon-node call to the metrics: latency by endpoint,
/// and the count by endpoint and outcome.
pub(super) fn beacon_observer(metrics: &Metrics) -> phalanx_eth::client::Observer {
    let (latency, calls) = (metrics.beacon_latency.clone(), metrics.beacon_calls.clone());
    Arc::new(move |record: &phalanx_eth::client::CallRecord| {
        latency
            .get_or_create(&EndpointLabels {
                endpoint: record.endpoint.into(),
            })
            .observe(record.latency.as_secs_f64());
        calls
            .get_or_create(&CallLabels {
                endpoint: record.endpoint.into(),
                outcome: call_label(&record.outcome),
            })
            .inc();
    })
}

/// The `outcome` label of a beacon-node call: `ok`, the HTTP status,
/// `timeout` or `failed`.
fn call_label(outcome: &phalanx_eth::client::Outcome) -> String {
    use phalanx_eth::client::Outcome as Call;
    match outcome {
        Call::Ok => "ok".to_string(),
        Call::Status(status) => status.to_string(),
        Call::Timeout => "timeout".to_string(),
        Call::Failed => "failed".to_string(),
    }
}

/// The `outcome` label of a duty: `success` or the failure's reason.
pub(super) fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => "success".to_string(),
        Outcome::Failed(failure) => failure.label().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::client::Outcome as Call;

    #[test]
    fn call_outcomes_are_labelled_as_documented() {
        assert_eq!(call_label(&Call::Ok), "ok");
        assert_eq!(call_label(&Call::Status(503)), "503");
        assert_eq!(call_label(&Call::Timeout), "timeout");
        assert_eq!(call_label(&Call::Failed), "failed");
        assert_eq!(outcome_label(&Outcome::Success), "success");
        assert_eq!(
            outcome_label(&Outcome::Failed(crate::tracker::Failure::NoDecision)),
            "no_decision"
        );
    }

    #[test]
    fn every_family_is_registered_under_its_name() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.peers.set(3);
        metrics.validators_known.set(2);
        metrics.partials_stored.set(5);
        metrics.consensus_buffered_bytes.set(7);
        let duty = || DutyLabels {
            duty: "attester".into(),
            outcome: "success".into(),
        };
        metrics.duties.get_or_create(&duty()).inc();
        let kind = TypeLabels {
            duty: "attester".into(),
        };
        metrics.decided_round.get_or_create(&kind).observe(1.0);
        let observe = beacon_observer(&metrics);
        observe(&phalanx_eth::client::CallRecord {
            node: "http://bn".into(),
            endpoint: "genesis",
            latency: std::time::Duration::from_millis(5),
            outcome: Call::Status(503),
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for name in [
            "phalanx_duty_outcomes_total{duty=\"attester\",outcome=\"success\"} 1",
            "phalanx_consensus_decided_round_count{duty=\"attester\"} 1",
            "phalanx_beacon_node_calls_total{endpoint=\"genesis\",outcome=\"503\"} 1",
            "phalanx_beacon_node_latency_seconds_count{endpoint=\"genesis\"} 1",
            "phalanx_p2p_connected_operators 3",
            "phalanx_validators_known 2",
            "phalanx_partials_stored 5",
            "phalanx_consensus_buffered_bytes 7",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }
}
