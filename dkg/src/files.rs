//! An operator's data directory: its lock, its share keystores with their
//! password files, its deposit data and, for migrated validators, their
//! slashing-protection history.
//!
//! ```text
//! <dir>/enr-private-key              (trusted-dealer clusters only)
//! <dir>/cluster-lock.json
//! <dir>/deposit-data-<hash>.json
//! <dir>/validator_keys/keystore-N.json, keystore-N.txt
//! <dir>/slashing-protection.json     (when existing keys were split)
//! ```

use std::path::{Path, PathBuf};

use phalanx_crypto::keystore::{KdfSetting, Keystore};
use phalanx_crypto::threshold::SecretShare;
use phalanx_crypto::SecretKey;
use phalanx_eth::interchange::Interchange;
use rand::RngCore;

use crate::error::DkgError;
use crate::lock::ClusterLock;

/// The lock's file name.
pub const LOCK_FILE: &str = "cluster-lock.json";
/// The folder of share keystores.
pub const KEYS_DIR: &str = "validator_keys";
/// The slashing-protection history of migrated validators.
pub const SLASHING_PROTECTION_FILE: &str = "slashing-protection.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DkgError + '_ {
    move |source| DkgError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to a new file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), DkgError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The deposit-data file name of a lock.
pub fn deposit_file_name(lock: &ClusterLock) -> String {
    let hash = lock.lock_hash.trim_start_matches("0x");
    format!("deposit-data-{}.json", &hash[..hash.len().min(8)])
}

/// Writes the lock, deposit data and share keystores of one operator into
/// `dir` (which must not hold a lock yet). Keystores are encrypted on all
/// cores: with the standard KDF each takes about a second.
pub fn write_operator_files(
    dir: &Path,
    lock: &ClusterLock,
    shares: &[SecretShare],
    kdf: KdfSetting,
    slashing_protection: Option<&Interchange>,
) -> Result<(), DkgError> {
    let keys_dir = dir.join(KEYS_DIR);
    std::fs::create_dir_all(&keys_dir).map_err(io(&keys_dir))?;
    let lock_path = dir.join(LOCK_FILE);
    if lock_path.exists() {
        return Err(DkgError::Input(format!(
            "{} already exists; refusing to overwrite a cluster lock",
            lock_path.display()
        )));
    }
    let lock_json = serde_json::to_string_pretty(lock).unwrap_or_default();
    std::fs::write(&lock_path, lock_json).map_err(io(&lock_path))?;
    let deposits: Vec<_> = lock.validators.iter().map(|v| &v.deposit_data).collect();
    let deposit_path = dir.join(deposit_file_name(lock));
    std::fs::write(
        &deposit_path,
        serde_json::to_string_pretty(&deposits).unwrap_or_default(),
    )
    .map_err(io(&deposit_path))?;
    if let Some(history) = slashing_protection {
        let path = dir.join(SLASHING_PROTECTION_FILE);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(history).unwrap_or_default(),
        )
        .map_err(io(&path))?;
    }
    write_keystores(
        &keys_dir,
        shares.iter().map(SecretShare::secret_key).collect(),
        kdf,
    )
}

/// Writes `keystore-N.json` with a random password in `keystore-N.txt` for
/// each key, encrypting in parallel.
pub fn write_keystores(dir: &Path, keys: Vec<&SecretKey>, kdf: KdfSetting) -> Result<(), DkgError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs: Vec<(usize, &SecretKey)> = keys.into_iter().enumerate().collect();
    let chunk = jobs.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|batch| {
                scope.spawn(move || -> Result<(), DkgError> {
                    let mut rng = rand::rngs::OsRng;
                    for (i, key) in batch {
                        let mut password_bytes = [0u8; 16];
                        rng.fill_bytes(&mut password_bytes);
                        let password = hex::encode(password_bytes);
                        let keystore = Keystore::encrypt(key, &password, "", kdf, &mut rng)
                            .map_err(|e| DkgError::Keystore {
                                path: format!("keystore-{i}.json"),
                                reason: e.to_string(),
                            })?;
                        write_private(&dir.join(format!("keystore-{i}.txt")), password.as_bytes())?;
                        write_private(
                            &dir.join(format!("keystore-{i}.json")),
                            keystore.to_json().as_bytes(),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(DkgError::Input("a keystore worker panicked".into())))
            })
            .collect::<Result<Vec<()>, DkgError>>()
    })?;
    Ok(())
}

/// Reads and decrypts the keystores of a folder (`keystore-N.json` with
/// `keystore-N.txt`), in N order.
pub fn read_keystores(dir: &Path) -> Result<Vec<SecretKey>, DkgError> {
    let mut entries: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name
                .strip_prefix("keystore-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    entries.sort();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = entries.len().div_ceil(workers).max(1);
    let results: Vec<Result<Vec<SecretKey>, DkgError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|batch| {
                scope.spawn(move || batch.iter().map(|(_, path)| read_keystore(path)).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(DkgError::Input("a keystore worker panicked".into())))
            })
            .collect()
    });
    let mut keys = Vec::with_capacity(entries.len());
    for batch in results {
        keys.extend(batch?);
    }
    Ok(keys)
}

/// Decrypts one keystore with the password in the `.txt` beside it.
pub fn read_keystore(path: &Path) -> Result<SecretKey, DkgError> {
    let password_path = path.with_extension("txt");
    let password = std::fs::read_to_string(&password_path).map_err(io(&password_path))?;
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let keystore = Keystore::from_json(&text).map_err(|e| DkgError::Keystore {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    keystore
        .decrypt(password.trim_end_matches(['\n', '\r']))
        .map_err(|e| DkgError::Keystore {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}
