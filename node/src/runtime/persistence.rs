//! What the node keeps in its data directory: the builder registrations
//! the cluster signed after the lock (checked when read, replaced whole
//! when written) and the slashing database, opened with the validators'
//! imported history on first start.

use std::collections::BTreeMap;
use std::path::Path;

use phalanx_dkg::lock::ClusterLock;
use phalanx_eth::validator::SignedValidatorRegistration;
use phalanx_eth::{PublicKeyBytes, Root};

use crate::error::{NodeError, RegistrationsProblem};
use crate::slashing::SlashingDb;

/// The slashing database's file in the data directory.
pub const SLASHING_DB_FILE: &str = "slashing-protection.jsonl";
/// Builder registrations the cluster signed after the lock, in the data
/// directory: they replace the lock's.
pub const REGISTRATIONS_FILE: &str = "builder-registrations.json";

/// The registrations the cluster signed after the lock, each checked: its
/// validator is the cluster's and the group key signed it. A damaged file
/// is refused at start-up, saying why.
pub(super) fn load_registrations(
    data_dir: &Path,
    lock: &ClusterLock,
) -> Result<BTreeMap<PublicKeyBytes, SignedValidatorRegistration>, NodeError> {
    let path = data_dir.join(REGISTRATIONS_FILE);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let refuse = |problem: RegistrationsProblem| NodeError::Registrations {
        path: path.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| refuse(e.into()))?;
    let registrations: BTreeMap<PublicKeyBytes, SignedValidatorRegistration> =
        serde_json::from_str(&text).map_err(|e| refuse(e.into()))?;
    let domain = phalanx_eth::signing::application_builder_domain(
        lock.definition.network.genesis_fork_version,
    );
    for (key, registration) in &registrations {
        let validator = lock
            .validators
            .iter()
            .find(|v| PublicKeyBytes::from(v.public_key.to_bytes()) == *key)
            .ok_or_else(|| refuse(RegistrationsProblem::NotInCluster(*key)))?;
        let root = phalanx_eth::signing::compute_signing_root(&registration.message, domain);
        let verified = phalanx_crypto::Signature::from_bytes(registration.signature.as_slice())
            .map(|s| s.verify(&validator.public_key, root.as_slice()))
            .unwrap_or(false);
        if registration.message.pubkey != *key || !verified {
            return Err(refuse(RegistrationsProblem::NotSigned(*key)));
        }
    }
    Ok(registrations)
}

/// The registration in force for a validator: one the cluster signed
/// after the lock replaces the lock's unless it is older.
pub(super) fn registration_in_force(
    in_lock: &SignedValidatorRegistration,
    saved: Option<&SignedValidatorRegistration>,
) -> SignedValidatorRegistration {
    saved
        .filter(|r| r.message.timestamp >= in_lock.message.timestamp)
        .cloned()
        .unwrap_or_else(|| in_lock.clone())
}

/// Keeps a registration the cluster signed (written whole, then renamed).
pub(super) fn save_registration(data_dir: &Path, registration: &SignedValidatorRegistration) {
    let path = data_dir.join(REGISTRATIONS_FILE);
    let mut all: BTreeMap<PublicKeyBytes, SignedValidatorRegistration> =
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
    all.insert(registration.message.pubkey, registration.clone());
    let temporary = path.with_extension("json.tmp");
    let written = serde_json::to_vec_pretty(&all)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&temporary, bytes))
        .and_then(|()| std::fs::rename(&temporary, &path));
    match written {
        Ok(()) => {
            tracing::info!(validator = %registration.message.pubkey, fee_recipient = %registration.message.fee_recipient, "a new builder registration replaces the lock's")
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot keep the new builder registration; after a restart the lock's applies again")
        }
    }
}

/// Opens the slashing database; when it is new and the data directory
/// holds the validators' history (written by the ceremony or the dealer),
/// imports it first.
pub(super) fn open_slashing(data_dir: &Path, gvr: Root) -> Result<SlashingDb, NodeError> {
    let path = data_dir.join(SLASHING_DB_FILE);
    let new = !path.exists();
    let mut db = SlashingDb::open(&path, gvr)?;
    let history = data_dir.join(phalanx_dkg::files::SLASHING_PROTECTION_FILE);
    if new && history.exists() {
        let text =
            std::fs::read_to_string(&history).map_err(|source| NodeError::SlashingHistoryRead {
                path: history.clone(),
                source,
            })?;
        let interchange =
            phalanx_eth::interchange::Interchange::from_json(&text).map_err(|reason| {
                NodeError::SlashingHistoryFormat {
                    path: history.clone(),
                    reason,
                }
            })?;
        db.import(&interchange)
            .map_err(|source| NodeError::SlashingHistoryImport {
                path: history.clone(),
                source,
            })?;
        tracing::info!(file = %history.display(), "imported the validators' slashing-protection history");
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(timestamp: u64, fee_recipient: u8) -> SignedValidatorRegistration {
        SignedValidatorRegistration {
            message: phalanx_eth::validator::ValidatorRegistration {
                fee_recipient: phalanx_eth::ExecutionAddress::repeat_byte(fee_recipient),
                gas_limit: 30_000_000,
                timestamp,
                pubkey: PublicKeyBytes::repeat_byte(1),
            },
            signature: phalanx_eth::SignatureBytes::repeat_byte(2),
        }
    }

    #[test]
    fn a_newer_saved_registration_replaces_the_locks() {
        let lock = registration(100, 1);
        assert_eq!(registration_in_force(&lock, None), lock);
        let newer = registration(200, 2);
        assert_eq!(registration_in_force(&lock, Some(&newer)), newer);
        assert_eq!(
            registration_in_force(&lock, Some(&registration(50, 3))),
            lock
        );
    }

    #[test]
    fn a_new_slashing_database_opens_empty_and_an_unreadable_history_is_refused() {
        let dir = tempfile::tempdir().expect("a directory");
        open_slashing(dir.path(), Root::repeat_byte(7)).expect("opens");
        assert!(dir.path().join(SLASHING_DB_FILE).exists());

        let fresh = tempfile::tempdir().expect("a directory");
        let history = fresh
            .path()
            .join(phalanx_dkg::files::SLASHING_PROTECTION_FILE);
        std::fs::write(&history, "not json").expect("writes");
        let Err(refused) = open_slashing(fresh.path(), Root::repeat_byte(7)) else {
            panic!("a history that is not JSON is refused");
        };
        assert!(
            matches!(&refused, NodeError::SlashingHistoryFormat { path, .. } if *path == history),
            "{refused}"
        );
    }
}
