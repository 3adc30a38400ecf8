//! Readiness for `/readyz`: the problems that keep the node from doing its
//! duties (beacon node down or syncing, too few operators connected), and
//! the task that checks them every two seconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phalanx_eth::api::Syncing;
use phalanx_eth::client::{BeaconNodeClient, ClientError};
use phalanx_p2p::{Network, PeerId};
use prometheus_client::metrics::gauge::Gauge;
use tokio::task::JoinHandle;

/// Readiness for `/readyz`: empty when ready, else the reasons.
#[derive(Debug, Default)]
pub struct Health {
    problems: Mutex<BTreeMap<&'static str, String>>,
}

impl Health {
    /// Records or clears a problem.
    pub fn set(&self, what: &'static str, problem: Option<String>) {
        let mut problems = self
            .problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match problem {
            Some(reason) => problems.insert(what, reason),
            None => problems.remove(what),
        };
    }

    /// The current problems (empty: ready).
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// The problem key of the beacon node.
pub(super) const BEACON_NODE: &str = "beacon_node";
/// The problem key of the operators' connections.
const PEERS: &str = "peers";

/// The beacon node's readiness problem, if any, from its sync status.
fn beacon_node_problem(syncing: &Result<Syncing, ClientError>) -> Option<String> {
    match syncing {
        Ok(s) if s.is_syncing => Some("the beacon node is syncing".into()),
        Ok(_) => None,
        Err(e) => Some(format!("beacon node down: {e}")),
    }
}

/// The operators' readiness problem: fewer connected than the threshold
/// needs besides this node, naming operators on another lock.
fn peers_problem(connected: usize, needed: usize, other_lock: Option<String>) -> Option<String> {
    (connected < needed).then(|| {
        let problem =
            format!("{connected} operators connected, {needed} needed to reach the threshold");
        match other_lock {
            Some(why) => format!("{problem}; {why}"),
            None => problem,
        }
    })
}

/// The readiness problem of operators that connect with another cluster
/// lock, named by their index in ours.
fn other_lock_problem(operators: &[PeerId], others: &[PeerId]) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let names: Vec<String> = others
        .iter()
        .map(|peer| match operators.iter().position(|p| p == peer) {
            Some(index) => format!("operator {index} ({peer})"),
            None => peer.to_string(),
        })
        .collect();
    Some(format!(
        "{} run(s) another cluster lock: compare cluster-lock.json with theirs",
        names.join(", ")
    ))
}

/// Checks every two seconds that the beacon node is synced and that
/// enough operators (`needed` besides this one) are connected.
pub(super) fn watch_readiness(
    client: Arc<BeaconNodeClient>,
    health: Arc<Health>,
    net: Arc<Network>,
    operators: Vec<PeerId>,
    needed: usize,
    peers_gauge: Gauge,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            health.set(BEACON_NODE, beacon_node_problem(&client.syncing().await));
            let connected = net.verified_peers().len();
            peers_gauge.set(connected as i64);
            // Asked only when operators are missing, since only then does
            // it matter.
            let other_lock = (connected < needed)
                .then(|| other_lock_problem(&operators, &net.peers_with_another_lock()))
                .flatten();
            health.set(PEERS, peers_problem(connected, needed, other_lock));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_on_another_lock_are_named_by_their_index() {
        let operators: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        assert_eq!(other_lock_problem(&operators, &[]), None);
        let stranger = PeerId::random();
        let problem = other_lock_problem(&operators, &[operators[2], stranger]).expect("a problem");
        assert!(
            problem.starts_with(&format!("operator 2 ({}), {stranger} run(s)", operators[2])),
            "{problem}"
        );
        assert!(problem.contains("another cluster lock"), "{problem}");
    }

    #[test]
    fn too_few_operators_is_a_problem_that_names_other_locks() {
        assert_eq!(peers_problem(2, 2, Some("x".into())), None);
        assert_eq!(
            peers_problem(1, 2, None).as_deref(),
            Some("1 operators connected, 2 needed to reach the threshold")
        );
        assert_eq!(
            peers_problem(0, 2, Some("operator 1 (p) run(s) another cluster lock".into()))
                .as_deref(),
            Some("0 operators connected, 2 needed to reach the threshold; operator 1 (p) run(s) another cluster lock")
        );
    }

    #[test]
    fn a_syncing_or_unreachable_beacon_node_is_not_ready() {
        let status = |is_syncing| Syncing {
            head_slot: phalanx_eth::Slot(10),
            sync_distance: phalanx_eth::Slot(0),
            is_syncing,
            is_optimistic: false,
            el_offline: false,
        };
        assert_eq!(beacon_node_problem(&Ok(status(false))), None);
        assert_eq!(
            beacon_node_problem(&Ok(status(true))).as_deref(),
            Some("the beacon node is syncing")
        );
        let down = ClientError::Transport {
            node: "http://bn".into(),
            endpoint: "syncing",
            reason: "cannot connect".into(),
        };
        assert!(beacon_node_problem(&Err(down))
            .is_some_and(|p| p.starts_with("beacon node down: beacon node http://bn")));
    }
}
