//! `phalanx combine`: rebuild validators' full keys from at least t
//! operators' folders — for an emergency exit or a return to solo staking.
//! Every share is checked against the lock's public share of its index
//! before it is used, and every recovered key against the lock.

use std::path::Path;

use phalanx_crypto::threshold::{recover_secret_key, SecretShare, ShareIndex};
use phalanx_crypto::SecretKey;

use crate::error::DkgError;
use crate::files::{read_keystores, KEYS_DIR, LOCK_FILE};
use crate::lock::ClusterLock;

/// Recovers every validator's secret key from the operator folders.
pub fn combine(folders: &[&Path]) -> Result<(ClusterLock, Vec<SecretKey>), DkgError> {
    let mut lock: Option<ClusterLock> = None;
    // Per validator, the shares found so far (one per index).
    let mut shares: Vec<Vec<SecretShare>> = Vec::new();
    for folder in folders {
        let folder_lock = ClusterLock::load(&folder.join(LOCK_FILE))?;
        let lock = lock.get_or_insert_with(|| {
            shares = vec![Vec::new(); folder_lock.validators.len()];
            folder_lock.clone()
        });
        if lock.lock_hash != folder_lock.lock_hash {
            return Err(DkgError::Input(format!(
                "{} holds another cluster's lock ({} vs {})",
                folder.display(),
                folder_lock.lock_hash,
                lock.lock_hash
            )));
        }
        let keys = read_keystores(&folder.join(KEYS_DIR))?;
        if keys.len() != lock.validators.len() {
            return Err(DkgError::Input(format!(
                "{} has {} keystores for {} validators",
                folder.display(),
                keys.len(),
                lock.validators.len()
            )));
        }
        for (v, (key, validator)) in keys.into_iter().zip(&lock.validators).enumerate() {
            let public = key.public_key();
            let Some(position) = validator.public_shares.iter().position(|p| *p == public) else {
                return Err(DkgError::Input(format!(
                    "{}: keystore-{v} is not a share of validator {v} in the lock",
                    folder.display()
                )));
            };
            let index = ShareIndex::new(position as u64 + 1)?;
            if shares[v].iter().all(|s| s.index() != index) {
                shares[v].push(SecretShare::new(index, key));
            }
        }
    }
    let lock = lock.ok_or_else(|| DkgError::Input("no operator folders given".into()))?;
    let t = lock.definition.threshold as usize;
    let mut secrets = Vec::with_capacity(shares.len());
    for (v, (found, validator)) in shares.iter().zip(&lock.validators).enumerate() {
        if found.len() < t {
            return Err(DkgError::Input(format!(
                "validator {v}: {} distinct shares found, {t} needed",
                found.len()
            )));
        }
        let secret = recover_secret_key(found, t)?;
        if secret.public_key() != validator.public_key {
            return Err(DkgError::Input(format!(
                "validator {v}: the shares do not recover the lock's public key"
            )));
        }
        secrets.push(secret);
    }
    Ok((lock, secrets))
}
