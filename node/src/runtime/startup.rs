//! Start-up checks: this node is one of the lock's operators, and the
//! beacon node answers and is on the lock's network. The node waits for a
//! beacon node that is still starting, and refuses one on another chain.

use std::time::Duration;

use phalanx_consensus::OperatorIndex;
use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::api::Genesis;
use phalanx_eth::client::BeaconNodeClient;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::Epoch;
use phalanx_p2p::NodeKey;

use super::health::{Health, BEACON_NODE};
use crate::error::NodeError;

/// This node's index among the lock's operators.
pub(super) fn operator_index(
    lock: &ClusterLock,
    key: &NodeKey,
) -> Result<OperatorIndex, NodeError> {
    lock.operator_index(&key.public_key())
        .and_then(|i| u32::try_from(i).ok())
        .map(OperatorIndex)
        .ok_or(NodeError::NotAnOperator)
}

/// The beacon node's genesis and network configuration, asked every two
/// seconds until it answers; meanwhile the node is not ready, saying why.
pub(super) async fn wait_for_beacon_node(
    client: &BeaconNodeClient,
    health: &Health,
) -> (Genesis, NetworkConfig) {
    loop {
        match (client.genesis().await, client.spec().await) {
            (Ok(genesis), Ok(network)) => {
                health.set(BEACON_NODE, None);
                return (genesis, network);
            }
            (Err(e), _) | (_, Err(e)) => {
                health.set(BEACON_NODE, Some(format!("beacon node unreachable: {e}")));
                tracing::warn!(error = %e, "waiting for the beacon node");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Refuses a beacon node on another network than the lock's.
///
/// `/eth/v1/beacon/genesis` names either the config's GENESIS_FORK_VERSION
/// (Lighthouse) or the version in force at slot 0 (Lodestar); they differ
/// on a chain that starts in a later fork, as devnets do. Both are taken;
/// the config's own genesis fork version must be the lock's.
pub(super) fn check_network(
    lock: &ClusterLock,
    genesis: &Genesis,
    network: &NetworkConfig,
) -> Result<(), NodeError> {
    let lock_network = &lock.definition.network;
    same_network(
        lock_network.genesis_fork_version,
        &lock_network.name,
        genesis,
        network,
    )
}

fn same_network(
    lock_version: phalanx_eth::Version,
    lock_network: &str,
    genesis: &Genesis,
    network: &NetworkConfig,
) -> Result<(), NodeError> {
    let genesis_state_version = network.fork_version_at(Epoch(0));
    if ![lock_version, genesis_state_version].contains(&genesis.genesis_fork_version)
        || network.genesis_fork_version != lock_version
    {
        return Err(NodeError::OtherNetwork {
            found: genesis.genesis_fork_version,
            lock: lock_version,
            network: lock_network.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::{ForkName, Root, Version};

    #[test]
    fn a_beacon_node_on_another_network_is_refused() {
        // A devnet starts in a later fork: slot 0 is not in the genesis fork.
        let network = NetworkConfig::devnet(ForkName::Electra, 6_000);
        let lock = network.genesis_fork_version;
        let at_slot_zero = network.fork_version_at(Epoch(0));
        assert_ne!(lock, at_slot_zero);
        let genesis = |version| Genesis {
            genesis_time: 0,
            genesis_validators_root: Root::repeat_byte(1),
            genesis_fork_version: version,
        };
        // Lighthouse names the config's version, Lodestar slot 0's.
        assert!(same_network(lock, "devnet", &genesis(lock), &network).is_ok());
        assert!(same_network(lock, "devnet", &genesis(at_slot_zero), &network).is_ok());
        let other = Version::from([9, 9, 9, 9]);
        assert!(matches!(
            same_network(lock, "devnet", &genesis(other), &network),
            Err(NodeError::OtherNetwork { found, .. }) if found == other
        ));
        // The config of another network is refused even with the lock's
        // genesis version.
        assert!(same_network(other, "devnet", &genesis(other), &network).is_err());
    }
}
