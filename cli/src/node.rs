//! `phalanx run`: this operator's distributed-validator node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use phalanx_dkg::files::LOCK_FILE;
use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::Root;
use phalanx_node::runtime::{self, Health, NodeConfig};
use phalanx_p2p::{Multiaddr, NodeKey, NODE_KEY_FILE};
use prometheus_client::registry::Registry;

use crate::{monitoring, socket_multiaddr};

#[derive(Args, Clone)]
pub(crate) struct RunArgs {
    /// The operator's data directory: cluster-lock.json and enr-private-key
    /// (from the ceremony); the slashing database is kept there.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    pub(crate) data_dir: PathBuf,
    /// Beacon-node REST URLs, tried in this order (comma-separated).
    #[arg(
        long,
        env = "PHALANX_BEACON_NODE_ENDPOINTS",
        value_delimiter = ',',
        required = true
    )]
    pub(crate) beacon_node_endpoints: Vec<String>,
    /// Where this operator's validator client connects.
    #[arg(
        long,
        env = "PHALANX_VALIDATOR_API_ADDRESS",
        default_value = "127.0.0.1:3600"
    )]
    pub(crate) validator_api_address: SocketAddr,
    /// Prometheus metrics, /livez and /readyz.
    #[arg(
        long,
        env = "PHALANX_MONITORING_ADDRESS",
        default_value = "127.0.0.1:3620"
    )]
    pub(crate) monitoring_address: SocketAddr,
    /// TCP address of the p2p listener.
    #[arg(long, env = "PHALANX_P2P_TCP_ADDRESS", default_value = "0.0.0.0:3610")]
    pub(crate) p2p_tcp_address: SocketAddr,
    /// UDP address of the QUIC listener (omit to use TCP only).
    #[arg(long, env = "PHALANX_P2P_UDP_ADDRESS")]
    pub(crate) p2p_udp_address: Option<SocketAddr>,
    /// Relays to reach operators behind NAT through (multiaddrs ending in /p2p/<id>).
    #[arg(long, env = "PHALANX_P2P_RELAYS", value_delimiter = ',')]
    pub(crate) p2p_relays: Vec<Multiaddr>,
    /// Graffiti of the cluster's blocks when the validator client sets
    /// none (UTF-8, at most 32 bytes).
    #[arg(long, env = "PHALANX_GRAFFITI", value_parser = parse_graffiti)]
    pub(crate) graffiti: Option<Root>,
    /// Blocks may come from builders (MEV-boost behind the beacon node):
    /// the validators' registrations from the lock are submitted every
    /// epoch.
    #[arg(long, env = "PHALANX_BUILDER_API")]
    pub(crate) builder_api: bool,
}

/// Graffiti text as the 32 bytes a block carries (zero-padded).
pub(crate) fn parse_graffiti(text: &str) -> Result<Root, String> {
    let bytes = text.as_bytes();
    if bytes.len() > 32 {
        return Err(format!("{} bytes; graffiti holds at most 32", bytes.len()));
    }
    let mut graffiti = [0u8; 32];
    graffiti[..bytes.len()].copy_from_slice(bytes);
    Ok(Root::from(graffiti))
}

/// Loads and checks everything, then runs the node until Ctrl-C.
pub(crate) async fn run(args: RunArgs) -> Result<()> {
    let lock_path = args.data_dir.join(LOCK_FILE);
    let lock = ClusterLock::load(&lock_path).with_context(|| {
        format!(
            "refusing to start: the cluster lock {} does not load and verify",
            lock_path.display()
        )
    })?;
    let key_path = args.data_dir.join(NODE_KEY_FILE);
    let node_key = NodeKey::load(&key_path)
        .with_context(|| format!("loading the node key {}", key_path.display()))?;
    if lock.operator_index(&node_key.public_key()).is_none() {
        anyhow::bail!(
            "refusing to start: the node key {} is not one of the operators of the cluster lock {}",
            key_path.display(),
            lock_path.display()
        );
    }
    let mut listen = vec![socket_multiaddr(args.p2p_tcp_address, false)];
    if let Some(udp) = args.p2p_udp_address {
        listen.push(socket_multiaddr(udp, true));
    }
    let registry = Registry::default();
    let health = Arc::new(Health::default());
    let config = NodeConfig {
        lock,
        node_key,
        data_dir: args.data_dir.clone(),
        beacon_nodes: args.beacon_node_endpoints.clone(),
        validator_api: args.validator_api_address,
        p2p_listen: listen,
        relays: args.p2p_relays.clone(),
        extra_addresses: Vec::new(),
        graffiti: args.graffiti,
        builder_api: args.builder_api,
    };
    // Metrics start once the node has registered its own.
    let (registered_tx, registered_rx) = tokio::sync::oneshot::channel::<Registry>();
    let monitoring_address = args.monitoring_address;
    let monitoring_health = health.clone();
    let monitor = tokio::spawn(async move {
        if let Ok(registry) = registered_rx.await {
            match monitoring::serve_with_health(
                monitoring_address,
                registry,
                Some(monitoring_health),
            )
            .await
            {
                Ok(bound) => tracing::info!(address = %bound, "metrics, /livez and /readyz"),
                Err(e) => {
                    tracing::error!(error = %e, address = %monitoring_address, "cannot serve metrics")
                }
            }
        }
    });
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    };
    let result = runtime::run(config, registry, health, shutdown, move |registry| {
        let _ = registered_tx.send(registry);
    })
    .await;
    monitor.abort();
    result.context("running the node")
}
