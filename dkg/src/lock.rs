//! `cluster-lock.json`: the definition plus, for every validator, its group
//! public key, every operator's public share, its deposit data and builder
//! registration; the lock hash; every operator's signature over it (with
//! its ENR key); and an aggregate BLS signature over it by every share of
//! every validator. A node refuses to start on a lock that does not verify.

use phalanx_crypto::batch::{find_invalid, SignatureSet};
use phalanx_crypto::threshold::{recover_public_key, PublicShare, ShareIndex};
use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::deposit::{DepositSignature, LaunchpadDeposit};
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::SignedValidatorRegistration;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::definition::ClusterDefinition;
use crate::error::DkgError;

/// One distributed validator of the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributedValidator {
    /// The validator's (group) public key.
    pub public_key: PublicKey,
    /// Operator i's public share at position i (share index i + 1).
    pub public_shares: Vec<PublicKey>,
    /// The deposit, signed by the group key.
    pub deposit_data: LaunchpadDeposit,
    /// The builder registration, signed by the group key.
    pub builder_registration: SignedValidatorRegistration,
}

impl DistributedValidator {
    /// The public shares with their indices.
    pub fn indexed_shares(&self) -> Result<Vec<PublicShare>, DkgError> {
        self.public_shares
            .iter()
            .enumerate()
            .map(|(i, key)| Ok(PublicShare::new(ShareIndex::new(i as u64 + 1)?, *key)))
            .collect()
    }
}

/// The cluster lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLock {
    /// The definition the lock was made from.
    pub definition: ClusterDefinition,
    /// The validators, in definition order.
    pub validators: Vec<DistributedValidator>,
    /// sha256 of the canonical JSON of the definition hash and the validators.
    pub lock_hash: String,
    /// Operator i's secp256k1 signature (hex, DER) over the lock hash.
    pub operator_signatures: Vec<String>,
    /// The aggregate of every validator's every share's signature over the lock hash.
    pub share_signature: Signature,
}

#[derive(Serialize)]
struct Hashed<'a> {
    definition_hash: &'a str,
    validators: &'a [DistributedValidator],
}

/// Computes the lock hash of validators under a definition.
pub fn lock_hash(definition: &ClusterDefinition, validators: &[DistributedValidator]) -> [u8; 32] {
    let hashed = Hashed {
        definition_hash: &definition.definition_hash,
        validators,
    };
    Sha256::digest(serde_json::to_vec(&hashed).unwrap_or_default()).into()
}

impl ClusterLock {
    /// Reads and verifies a lock file.
    pub fn load(path: &std::path::Path) -> Result<ClusterLock, DkgError> {
        let text = std::fs::read_to_string(path).map_err(|e| DkgError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let lock: ClusterLock = serde_json::from_str(&text).map_err(|e| DkgError::Json {
            path: path.display().to_string(),
            source: e,
        })?;
        lock.verify()?;
        Ok(lock)
    }

    /// The lock hash, as bytes.
    pub fn hash_bytes(&self) -> Result<[u8; 32], DkgError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.lock_hash.trim_start_matches("0x"), &mut out)
            .map_err(|_| DkgError::Lock("lock_hash is not 32 bytes of hex".into()))?;
        Ok(out)
    }

    /// Checks everything: the definition, every validator's shares, deposit
    /// and registration, the lock hash, every operator's signature and the
    /// shares' aggregate signature.
    pub fn verify(&self) -> Result<(), DkgError> {
        self.verify_validators()?;
        self.verify_signatures()
    }

    /// The definition and every validator's shares, deposit and
    /// registration (what a ceremony computed and checked itself).
    pub fn verify_validators(&self) -> Result<(), DkgError> {
        let bad = |why: String| Err(DkgError::Lock(why));
        let definition = &self.definition;
        definition.validate()?;
        let n = definition.operators.len();
        let t = definition.threshold as usize;
        if self.validators.len() != definition.validators.len() {
            return bad(format!(
                "{} validators, the definition asks for {}",
                self.validators.len(),
                definition.validators.len()
            ));
        }
        let fork_version = definition.network.genesis_fork_version;
        let mut signatures = Vec::with_capacity(2 * self.validators.len());
        for (i, (validator, spec)) in self
            .validators
            .iter()
            .zip(&definition.validators)
            .enumerate()
        {
            if validator.public_shares.len() != n {
                return bad(format!(
                    "validator {i}: {} public shares for {n} operators",
                    validator.public_shares.len()
                ));
            }
            let shares = validator.indexed_shares()?;
            // The first t and the last t shares must interpolate to the key.
            for subset in [&shares[..t], &shares[n - t..]] {
                if recover_public_key(subset, t)? != validator.public_key {
                    return bad(format!(
                        "validator {i}: public shares do not interpolate to its public key"
                    ));
                }
            }
            let deposit = &validator.deposit_data;
            let deposit_signature = deposit
                .verify_fields()
                .map_err(|e| DkgError::Lock(format!("validator {i}: {e}")))?;
            let expected = (
                hex::encode(validator.public_key.to_bytes()),
                hex::encode(spec.credentials().to_root()),
                spec.deposit_amount.0,
                hex::encode(fork_version),
            );
            let actual = (
                deposit.pubkey.trim_start_matches("0x").to_lowercase(),
                deposit
                    .withdrawal_credentials
                    .trim_start_matches("0x")
                    .to_lowercase(),
                deposit.amount,
                deposit.fork_version.trim_start_matches("0x").to_lowercase(),
            );
            if expected != actual {
                return bad(format!(
                    "validator {i}: deposit data do not match the key, credentials, amount or network"
                ));
            }
            let registration = &validator.builder_registration;
            let message = &registration.message;
            if message.pubkey.as_slice() != validator.public_key.to_bytes()
                || message.fee_recipient != spec.fee_recipient
                || message.gas_limit != definition.builder.gas_limit
                || message.timestamp != definition.builder.timestamp
            {
                return bad(format!(
                    "validator {i}: builder registration does not match the definition"
                ));
            }
            let root = compute_signing_root(message, application_builder_domain(fork_version));
            let signature = Signature::from_bytes(registration.signature.as_slice())?;
            signatures.push((i, "deposit", deposit_signature));
            signatures.push((
                i,
                "builder registration",
                DepositSignature {
                    public_key: validator.public_key,
                    signing_root: root,
                    signature,
                },
            ));
        }
        // Every validator's two signatures in one batch, over the cores.
        if let Some(&(i, what, _)) = first_invalid(&signatures) {
            return bad(format!("validator {i}: {what} signature does not verify"));
        }
        Ok(())
    }

    /// The lock hash, every operator's signature and the shares' aggregate.
    pub fn verify_signatures(&self) -> Result<(), DkgError> {
        let bad = |why: String| Err(DkgError::Lock(why));
        let definition = &self.definition;
        let n = definition.operators.len();
        let all_shares: Vec<PublicKey> = self
            .validators
            .iter()
            .flat_map(|v| v.public_shares.iter().copied())
            .collect();
        let computed = lock_hash(definition, &self.validators);
        if self.lock_hash != format!("0x{}", hex::encode(computed)) {
            return bad(
                "lock_hash does not match the lock's contents: the file was changed".into(),
            );
        }
        let enrs = definition.enrs()?;
        if self.operator_signatures.len() != n {
            return bad(format!(
                "{} operator signatures for {n} operators",
                self.operator_signatures.len()
            ));
        }
        for (i, (enr, signature)) in enrs.iter().zip(&self.operator_signatures).enumerate() {
            let signature = hex::decode(signature.trim_start_matches("0x"))
                .map_err(|_| DkgError::Lock(format!("operator {i}: signature is not hex")))?;
            if !phalanx_p2p::verify(&enr.public_key(), &computed, &signature) {
                return bad(format!(
                    "operator {i} ({}) did not sign this lock",
                    enr.peer_id()
                ));
            }
        }
        if !self
            .share_signature
            .fast_aggregate_verify(&computed, &all_shares)
        {
            return bad(
                "the shares' aggregate signature over the lock hash does not verify".into(),
            );
        }
        Ok(())
    }

    /// The index (0-based) of the operator with this ENR public key.
    pub fn operator_index(&self, public_key: &[u8; 33]) -> Option<usize> {
        self.definition
            .enrs()
            .ok()?
            .iter()
            .position(|enr| enr.public_key() == *public_key)
    }
}

/// The first entry, by position, whose signature does not verify: the
/// entries are split over the machine's cores and each part is checked as
/// one batch (bisected only if it fails).
fn first_invalid<'a, T>(
    signatures: &'a [(usize, T, DepositSignature)],
) -> Option<&'a (usize, T, DepositSignature)>
where
    T: Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = signatures.len().div_ceil(threads).max(64);
    let check = |part: &'a [(usize, T, DepositSignature)]| -> Option<usize> {
        let sets: Vec<SignatureSet<'_>> = part
            .iter()
            .map(|(_, _, s)| {
                SignatureSet::new(s.signing_root.as_slice(), &s.public_key, &s.signature)
            })
            .collect();
        find_invalid(&sets, &mut OsRng).first().copied()
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = signatures
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| scope.spawn(move || check(part).map(|at| k * chunk + at)))
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| match worker.join() {
                Ok(found) => found,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .min()
    })
    .map(|at| &signatures[at])
}
