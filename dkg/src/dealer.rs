//! A trusted-dealer cluster (`phalanx create cluster`): for tests, devnets
//! and migrating existing validators. One machine generates (or reads) each
//! validator key, splits it into shares, signs the deposit and builder
//! registration with it, makes every operator's node key, and signs the lock
//! as every operator. Production clusters use the ceremony instead, where
//! no machine ever holds a validator key.

use phalanx_crypto::threshold::{split, SecretShare};
use phalanx_crypto::{SecretKey, Signature};
use phalanx_eth::deposit::LaunchpadDeposit;
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::{DepositMessage, SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::PublicKeyBytes;
use phalanx_p2p::NodeKey;
use rand_core::{CryptoRng, RngCore};

use crate::definition::ClusterDefinition;
use crate::error::DkgError;
use crate::lock::{lock_hash, ClusterLock, DistributedValidator};

/// What one operator receives from the dealer.
pub struct OperatorKeys {
    /// Its node key (ENR key).
    pub node_key: NodeKey,
    /// Its share of each validator, in definition order.
    pub shares: Vec<SecretShare>,
}

/// A dealt cluster: the lock and every operator's keys.
pub struct DealtCluster {
    /// The verified lock.
    pub lock: ClusterLock,
    /// Operator i's keys at position i.
    pub operators: Vec<OperatorKeys>,
}

/// Deals a cluster. `node_keys` must be the keys of the definition's
/// operators, in order; `secrets`, if given, are the existing validator
/// keys to split (one per validator), otherwise new keys are generated.
pub fn deal<R: RngCore + CryptoRng>(
    definition: &ClusterDefinition,
    node_keys: Vec<NodeKey>,
    secrets: Option<Vec<SecretKey>>,
    rng: &mut R,
) -> Result<DealtCluster, DkgError> {
    definition.validate()?;
    let enrs = definition.enrs()?;
    let n = enrs.len();
    if node_keys.len() != n
        || node_keys
            .iter()
            .zip(&enrs)
            .any(|(key, enr)| key.public_key() != enr.public_key())
    {
        return Err(DkgError::Input(
            "the node keys are not the definition's operators".into(),
        ));
    }
    let secrets = match secrets {
        Some(secrets) if secrets.len() != definition.validators.len() => {
            return Err(DkgError::Input(format!(
                "{} keys for {} validators",
                secrets.len(),
                definition.validators.len()
            )))
        }
        Some(secrets) => secrets,
        None => (0..definition.validators.len())
            .map(|_| SecretKey::random(rng))
            .collect(),
    };
    let t = definition.threshold as usize;
    let fork_version = definition.network.genesis_fork_version;
    let mut operators: Vec<OperatorKeys> = node_keys
        .into_iter()
        .map(|node_key| OperatorKeys {
            node_key,
            shares: Vec::new(),
        })
        .collect();
    let mut validators = Vec::with_capacity(secrets.len());
    for (secret, spec) in secrets.iter().zip(&definition.validators) {
        let public_key = secret.public_key();
        let key_split = split(secret, t, n, rng)?;
        let message = DepositMessage::new(&public_key, spec.credentials(), spec.deposit_amount)
            .map_err(|e| DkgError::Input(e.to_string()))?;
        let deposit_signature = secret.sign(message.signing_root(fork_version).as_slice());
        let deposit_data = LaunchpadDeposit::new(
            &message,
            &deposit_signature,
            fork_version,
            &definition.network.name,
        )
        .map_err(|e| DkgError::Input(e.to_string()))?;
        let registration = ValidatorRegistration {
            fee_recipient: spec.fee_recipient,
            gas_limit: definition.builder.gas_limit,
            timestamp: definition.builder.timestamp,
            pubkey: PublicKeyBytes::from(public_key.to_bytes()),
        };
        let root = compute_signing_root(&registration, application_builder_domain(fork_version));
        let registration_signature = secret.sign(root.as_slice());
        validators.push(DistributedValidator {
            public_key,
            public_shares: key_split.public_shares().iter().map(|s| s.key).collect(),
            deposit_data,
            builder_registration: SignedValidatorRegistration {
                message: registration,
                signature: registration_signature.to_bytes().into(),
            },
        });
        for (operator, share) in operators.iter_mut().zip(key_split.secret_shares) {
            operator.shares.push(share);
        }
    }
    let hash = lock_hash(definition, &validators);
    let operator_signatures = operators
        .iter()
        .map(|o| hex::encode(o.node_key.sign(&hash)))
        .collect();
    let share_signatures: Vec<Signature> = operators
        .iter()
        .flat_map(|o| o.shares.iter().map(|s| s.sign(&hash).signature))
        .collect();
    let lock = ClusterLock {
        definition: definition.clone(),
        validators,
        lock_hash: format!("0x{}", hex::encode(hash)),
        operator_signatures,
        share_signature: Signature::aggregate(&share_signatures)?,
    };
    lock.verify()?;
    Ok(DealtCluster { lock, operators })
}
