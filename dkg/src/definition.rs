//! `cluster-definition.json`: what the operators agree to create before any
//! key exists — who they are (ENRs), the threshold, the validators and where
//! their withdrawals, fees and deposits go, and the network. Its hash
//! identifies it in the ceremony.

use phalanx_eth::config::NetworkConfig;
use phalanx_eth::deposit::{WithdrawalCredentials, ACTIVATION_AMOUNT, MIN_DEPOSIT_AMOUNT};
use phalanx_eth::{ExecutionAddress, Gwei, Version};
use phalanx_p2p::Enr;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DkgError;

/// The format version written in definitions and locks.
pub const FORMAT_VERSION: &str = "phalanx/cluster/v1";

/// One operator, named by its ENR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// The operator's ENR (`enr:-…`); its key signs the lock.
    pub enr: String,
}

/// Where one validator's money goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSpec {
    /// The execution address of the withdrawal credentials.
    pub withdrawal_address: ExecutionAddress,
    /// 0x02 (compounding) credentials instead of 0x01.
    pub compounding: bool,
    /// Where block rewards and builder payments go.
    pub fee_recipient: ExecutionAddress,
    /// The deposit, in gwei.
    pub deposit_amount: Gwei,
}

/// The network the cluster validates on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Its name (`mainnet`, `hoodi`, `sepolia`, or a devnet's).
    pub name: String,
    /// Its genesis fork version (deposits and builder registrations sign under it).
    pub genesis_fork_version: Version,
}

impl NetworkSpec {
    /// The spec of a loaded network configuration.
    pub fn of(config: &NetworkConfig) -> NetworkSpec {
        NetworkSpec {
            name: config.name.clone(),
            genesis_fork_version: config.genesis_fork_version,
        }
    }
}

/// What every validator's builder registration says besides its fee recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderSpec {
    /// The gas limit validators ask builders for.
    #[serde(with = "quoted")]
    pub gas_limit: u64,
    /// Unix seconds written in the registrations.
    #[serde(with = "quoted")]
    pub timestamp: u64,
}

/// The cluster definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDefinition {
    /// The format version.
    pub version: String,
    /// A human name for the cluster.
    pub name: String,
    /// Distinguishes definitions that are otherwise equal.
    pub uuid: String,
    /// When it was created (RFC 3339, informational).
    pub timestamp: String,
    /// The network.
    pub network: NetworkSpec,
    /// Partial signatures needed for a signature.
    pub threshold: u32,
    /// The operators, in share-index order (operator i holds share i + 1).
    pub operators: Vec<Operator>,
    /// The validators to create.
    pub validators: Vec<ValidatorSpec>,
    /// Builder registration fields.
    pub builder: BuilderSpec,
    /// sha256 of the canonical JSON of every field above.
    pub definition_hash: String,
}

/// The hashed part of a definition: every field but the hash, in order.
#[derive(Serialize)]
struct Hashed<'a> {
    version: &'a str,
    name: &'a str,
    uuid: &'a str,
    timestamp: &'a str,
    network: &'a NetworkSpec,
    threshold: u32,
    operators: &'a [Operator],
    validators: &'a [ValidatorSpec],
    builder: &'a BuilderSpec,
}

/// ceil(2n/3), the QBFT quorum and the default threshold.
pub fn default_threshold(operators: usize) -> u32 {
    u32::try_from((2 * operators).div_ceil(3)).unwrap_or(u32::MAX)
}

/// How many operators may crash with threshold t: min(n − t, n − quorum).
pub fn crash_tolerance(operators: usize, threshold: u32) -> usize {
    let quorum = default_threshold(operators) as usize;
    operators
        .saturating_sub(threshold as usize)
        .min(operators - quorum.min(operators))
}

impl ClusterDefinition {
    /// A sealed definition (hash filled in) with a fresh uuid.
    pub fn new(
        name: &str,
        network: NetworkSpec,
        threshold: u32,
        operators: &[Enr],
        validators: Vec<ValidatorSpec>,
        builder: BuilderSpec,
        timestamp: &str,
    ) -> ClusterDefinition {
        ClusterDefinition {
            version: FORMAT_VERSION.to_string(),
            name: name.to_string(),
            uuid: uuid::Uuid::new_v4().to_string(),
            timestamp: timestamp.to_string(),
            network,
            threshold,
            operators: operators
                .iter()
                .map(|enr| Operator {
                    enr: enr.to_string(),
                })
                .collect(),
            validators,
            builder,
            definition_hash: String::new(),
        }
        .seal()
    }

    /// Computes the hash of the current fields.
    pub fn compute_hash(&self) -> [u8; 32] {
        let hashed = Hashed {
            version: &self.version,
            name: &self.name,
            uuid: &self.uuid,
            timestamp: &self.timestamp,
            network: &self.network,
            threshold: self.threshold,
            operators: &self.operators,
            validators: &self.validators,
            builder: &self.builder,
        };
        // Serializing plain data to a Vec cannot fail.
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        Sha256::digest(bytes).into()
    }

    /// Fills in `definition_hash`.
    pub fn seal(mut self) -> ClusterDefinition {
        self.definition_hash = format!("0x{}", hex::encode(self.compute_hash()));
        self
    }

    /// The hash, checked against the fields.
    pub fn hash(&self) -> Result<[u8; 32], DkgError> {
        let computed = self.compute_hash();
        if self.definition_hash != format!("0x{}", hex::encode(computed)) {
            return Err(DkgError::Definition(format!(
                "definition_hash {} does not match its contents (0x{}): the file was changed",
                self.definition_hash,
                hex::encode(computed)
            )));
        }
        Ok(computed)
    }

    /// The operators' ENRs, parsed and signature-checked.
    pub fn enrs(&self) -> Result<Vec<Enr>, DkgError> {
        self.operators
            .iter()
            .enumerate()
            .map(|(i, o)| {
                o.enr
                    .parse::<Enr>()
                    .map_err(|e| DkgError::Definition(format!("operator {i}: {e}")))
            })
            .collect()
    }

    /// Checks the hash and every rule a definition must follow.
    pub fn validate(&self) -> Result<[u8; 32], DkgError> {
        let hash = self.hash()?;
        let bad = |why: String| Err(DkgError::Definition(why));
        if self.version != FORMAT_VERSION {
            return bad(format!(
                "unsupported version {:?}, expected {FORMAT_VERSION}",
                self.version
            ));
        }
        let n = self.operators.len();
        if n == 0 {
            return bad("no operators".into());
        }
        let enrs = self.enrs()?;
        let mut peers: Vec<_> = enrs.iter().map(Enr::peer_id).collect();
        peers.sort();
        peers.dedup();
        if peers.len() != n {
            return bad("an operator is listed twice".into());
        }
        check_threshold(n, self.threshold)?;
        if self.validators.is_empty() {
            return bad("no validators".into());
        }
        for (i, v) in self.validators.iter().enumerate() {
            let credentials = v.credentials();
            if v.deposit_amount < MIN_DEPOSIT_AMOUNT || v.deposit_amount > credentials.max_amount()
            {
                return bad(format!(
                    "validator {i}: deposit of {} gwei outside {}..={} for its credentials",
                    v.deposit_amount.0,
                    MIN_DEPOSIT_AMOUNT.0,
                    credentials.max_amount().0
                ));
            }
        }
        Ok(hash)
    }
}

impl ValidatorSpec {
    /// A 32 ETH validator with 0x01 credentials.
    pub fn standard(
        withdrawal_address: ExecutionAddress,
        fee_recipient: ExecutionAddress,
    ) -> ValidatorSpec {
        ValidatorSpec {
            withdrawal_address,
            compounding: false,
            fee_recipient,
            deposit_amount: ACTIVATION_AMOUNT,
        }
    }

    /// The withdrawal credentials.
    pub fn credentials(&self) -> WithdrawalCredentials {
        if self.compounding {
            WithdrawalCredentials::Compounding(self.withdrawal_address)
        } else {
            WithdrawalCredentials::Execution(self.withdrawal_address)
        }
    }
}

/// Refuses thresholds that cannot tolerate a fault or are below a majority.
pub fn check_threshold(operators: usize, threshold: u32) -> Result<(), DkgError> {
    let t = threshold as usize;
    if operators == 1 && t == 1 {
        return Ok(());
    }
    if t <= operators / 2 {
        return Err(DkgError::Definition(format!(
            "threshold {t} of {operators} is not above half: two halves of the cluster could sign conflicting things"
        )));
    }
    if t >= operators {
        return Err(DkgError::Definition(format!(
            "threshold {t} of {operators} tolerates no failed operator; use at most {}",
            operators - 1
        )));
    }
    Ok(())
}

mod quoted {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_the_rules() {
        assert_eq!(default_threshold(4), 3);
        assert_eq!(default_threshold(7), 5);
        assert_eq!(default_threshold(10), 7);
        assert!(check_threshold(4, 3).is_ok());
        assert!(check_threshold(4, 2).is_err(), "not a majority");
        assert!(check_threshold(4, 4).is_err(), "no fault tolerated");
        assert!(check_threshold(7, 4).is_ok());
        assert_eq!(crash_tolerance(4, 3), 1);
        assert_eq!(crash_tolerance(7, 4), 2, "min(7-4, 7-5)");
        assert_eq!(crash_tolerance(7, 6), 1);
        assert!(check_threshold(1, 1).is_ok());
    }
}
