//! A node of a local cluster run in this process: the node's runtime in a
//! task, with the builder API on and its p2p on loopback, until stopped.

use std::sync::Arc;

use phalanx_dkg::ClusterLock;
use phalanx_node::runtime::{self, Health, NodeConfig, NodeError};
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::operator::Operator;

/// A node running in a task of this process.
pub struct InProcessNode {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), NodeError>>,
}

impl InProcessNode {
    /// Starts `operator`'s node on `lock` against the beacon node `beacon` (a URL).
    pub fn start(operator: &Operator, lock: &ClusterLock, beacon: &str) -> InProcessNode {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = NodeConfig {
            lock: lock.clone(),
            node_key: operator.node_key.clone(),
            data_dir: operator.dir.clone(),
            beacon_nodes: vec![beacon.to_string()],
            validator_api: operator.validator_api,
            p2p_listen: vec![operator.p2p_listen()],
            relays: Vec::new(),
            extra_addresses: Vec::new(),
            graffiti: None,
            builder_api: true,
        };
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            runtime::run(
                config,
                Registry::default(),
                Arc::new(Health::default()),
                shutdown,
                |_| {},
            )
            .await
        });
        InProcessNode { stop, task }
    }

    /// Stops the node and waits for it: how it ended, or `None` if its
    /// task did not end by itself (it panicked).
    pub async fn stop(self) -> Option<Result<(), NodeError>> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}
