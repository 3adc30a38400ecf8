//! The cluster itself: its lock and every operator's key shares, made by
//! the trusted dealer, by the key-generation ceremony over p2p on
//! loopback, or read back from the operators' folders; the chain it runs
//! on; and a validator-client mock per operator signing with its shares.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use phalanx_crypto::keystore::KdfSetting;
use phalanx_crypto::threshold::{SecretShare, ShareIndex};
use phalanx_crypto::SecretKey;
use phalanx_dkg::dealer::deal;
use phalanx_dkg::files::{read_keystores, write_operator_files, KEYS_DIR, LOCK_FILE};
use phalanx_dkg::runner::{run_ceremony, RunConfig};
use phalanx_dkg::{ClusterDefinition, ClusterLock, DkgError};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{PublicKeyBytes, Root};
use phalanx_p2p::NodeKey;
use prometheus_client::registry::Registry;

use super::error::ClusterError;
use super::operator::Operator;
use crate::beacon::BeaconMockConfig;
use crate::vc::{VcMock, VcMockConfig};

/// The genesis validators root of a local cluster's chain.
pub const GENESIS_VALIDATORS_ROOT: Root = Root::repeat_byte(0x42);

/// A cluster: its lock and every operator's key shares.
pub struct Cluster {
    /// The lock, the same at every operator.
    pub lock: ClusterLock,
    /// Per operator, its share of each validator, in the lock's order.
    pub shares: Vec<Vec<SecretShare>>,
}

/// The validators of the chain besides the cluster's.
#[derive(Clone, Copy, Debug)]
pub enum OtherValidators {
    /// This many with random keys, which nobody here keeps.
    Random(usize),
    /// Up to this many validators in all, with public keys that are not
    /// even curve points (a mock decodes them cheaply, as nothing): for
    /// chains of a hundred thousand.
    UpTo(usize),
}

impl Cluster {
    /// Deals the cluster of `definition` as a trusted dealer, to the
    /// operators holding `node_keys` (in the definition's order).
    pub fn deal(
        definition: &ClusterDefinition,
        node_keys: Vec<NodeKey>,
    ) -> Result<Cluster, ClusterError> {
        let dealt = deal(definition, node_keys, None, &mut rand::rngs::OsRng)?;
        Ok(Cluster {
            lock: dealt.lock,
            shares: dealt.operators.into_iter().map(|o| o.shares).collect(),
        })
    }

    /// Runs the key-generation ceremony of `definition` over p2p on
    /// loopback, every operator in a task of this process, each listening
    /// on its p2p port; fails unless every operator ends with the same lock.
    pub async fn ceremony(
        definition: &ClusterDefinition,
        operators: &[Operator],
        timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        let ceremonies: Vec<_> = operators
            .iter()
            .map(|operator| {
                let config = RunConfig {
                    definition: definition.clone(),
                    node_key: operator.node_key.clone(),
                    listen: vec![operator.p2p_listen()],
                    relays: Vec::new(),
                    extra_addresses: Vec::new(),
                    timeout,
                    state_file: None,
                    interrupt_after: None,
                };
                tokio::spawn(async move { run_ceremony(config, &mut Registry::default()).await })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(ceremonies.len());
        for (operator, ceremony) in ceremonies.into_iter().enumerate() {
            let outcome = ceremony
                .await
                .map_err(|_| ClusterError::CeremonyTask { operator })?
                .map_err(|source| ClusterError::Ceremony { operator, source })?;
            outcomes.push(outcome);
        }
        let lock = outcomes
            .first()
            .map(|o| o.lock.clone())
            .ok_or(ClusterError::NoOperators)?;
        if outcomes.iter().any(|o| o.lock.lock_hash != lock.lock_hash) {
            return Err(ClusterError::LocksDiffer);
        }
        Ok(Cluster {
            lock,
            shares: outcomes.into_iter().map(|o| o.shares).collect(),
        })
    }

    /// Reads a cluster back from its operators' folders: the first one's
    /// lock and every one's keystores. Operator `i` holds share `i + 1`,
    /// as in every cluster Phalanx makes.
    pub fn load(operators: &[Operator]) -> Result<Cluster, ClusterError> {
        let first = operators.first().ok_or(ClusterError::NoOperators)?;
        let lock = ClusterLock::load(&first.dir.join(LOCK_FILE))?;
        let shares = operators
            .iter()
            .map(|operator| {
                let index = ShareIndex::new(operator.index as u64 + 1).map_err(DkgError::from)?;
                let keys = read_keystores(&operator.dir.join(KEYS_DIR))?;
                Ok(keys
                    .into_iter()
                    .map(|key| SecretShare::new(index, key))
                    .collect())
            })
            .collect::<Result<_, ClusterError>>()?;
        Ok(Cluster { lock, shares })
    }

    /// Operator `operator`'s share keys, in the lock's order.
    pub fn share_keys(&self, operator: usize) -> Vec<SecretKey> {
        self.shares
            .get(operator)
            .into_iter()
            .flatten()
            .map(|s| s.secret_key().clone())
            .collect()
    }

    /// Writes the lock (only) into every operator's folder: enough for
    /// `phalanx run` when the validator clients hold the shares.
    pub fn write_lock(&self, operators: &[Operator]) -> Result<(), ClusterError> {
        let json = serde_json::to_string(&self.lock).map_err(|source| DkgError::Json {
            path: LOCK_FILE.into(),
            source,
        })?;
        for operator in operators {
            let path = operator.dir.join(LOCK_FILE);
            std::fs::write(&path, &json)
                .map_err(ClusterError::io(format!("writing {}", path.display())))?;
        }
        Ok(())
    }

    /// Writes the lock, keystores and deposit data into each operator's
    /// folder that holds no lock yet (a folder kept from an earlier run
    /// keeps its files).
    pub fn write_operator_files(
        &self,
        operators: &[Operator],
        kdf: KdfSetting,
    ) -> Result<(), ClusterError> {
        for (operator, shares) in operators.iter().zip(&self.shares) {
            if !operator.dir.join(LOCK_FILE).exists() {
                write_operator_files(&operator.dir, &self.lock, shares, kdf, None)?;
            }
        }
        Ok(())
    }

    /// The chain's validators: the cluster's first (validator `i` of the
    /// lock has index `i`), then `others`.
    pub fn chain_validators(&self, others: OtherValidators) -> Vec<PublicKeyBytes> {
        let mut validators: Vec<PublicKeyBytes> = self
            .lock
            .validators
            .iter()
            .map(|v| PublicKeyBytes::from(v.public_key.to_bytes()))
            .collect();
        match others {
            OtherValidators::Random(count) => {
                let mut rng = rand::rngs::OsRng;
                for _ in 0..count {
                    validators.push(PublicKeyBytes::from(
                        SecretKey::random(&mut rng).public_key().to_bytes(),
                    ));
                }
            }
            OtherValidators::UpTo(total) => {
                for i in validators.len()..total {
                    let mut bytes = [0u8; 48];
                    bytes[40..].copy_from_slice(&(i as u64).to_be_bytes());
                    validators.push(PublicKeyBytes::from(bytes));
                }
            }
        }
        validators
    }

    /// A validator-client mock per operator, signing with its shares
    /// against its validator API: distributed, labelled `vc-<i>`, then
    /// adjusted by `configure`.
    pub fn validator_clients(
        &self,
        operators: &[Operator],
        mut configure: impl FnMut(usize, &mut VcMockConfig),
    ) -> Vec<VcMock> {
        operators
            .iter()
            .map(|operator| {
                let mut config = VcMockConfig::new(
                    format!("http://{}", operator.validator_api),
                    self.share_keys(operator.index),
                );
                config.distributed = true;
                config.label = format!("vc-{}", operator.index);
                configure(operator.index, &mut config);
                VcMock::spawn(config)
            })
            .collect()
    }
}

/// A beacon-node mock of `network` with genesis at `genesis_ms` (Unix
/// milliseconds, on a whole second) and these validators, listening on a
/// free loopback port, recording nothing.
pub fn beacon_config(
    network: NetworkConfig,
    genesis_ms: u64,
    validators: Vec<PublicKeyBytes>,
    seed: u64,
) -> BeaconMockConfig {
    BeaconMockConfig {
        network,
        genesis_time: genesis_ms / 1000,
        genesis_validators_root: GENESIS_VALIDATORS_ROOT,
        validators,
        seed,
        record: None,
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    }
}
