//! Slashing protection for the group keys, safe by construction: every
//! check-and-record is one step that returns [`Safety::Safe`] only after the
//! record is on disk (appended and fsynced), and anything that would make a
//! slashable pair with the history is refused with the reason.
//!
//! The store is an append-only file of JSON lines (one signed block or
//! attestation, or one low watermark from an EIP-3076 import, per line),
//! replayed into an in-memory index at start-up. A torn last line (a crash
//! mid-write) is dropped with a warning; any other damage refuses start-up
//! with the line number, since guessing would risk a slashing.
//!
//! Rules (consensus specs and EIP-3076):
//! - blocks: never two different blocks for one slot; nothing at or below
//!   an imported low watermark;
//! - attestations: never two different attestations for one target
//!   (double vote); never one that surrounds or is surrounded by another
//!   (surround vote); source ≤ target; nothing below imported watermarks.
//!
//! Re-signing identical data (same signing root) is allowed: a validator
//! client may ask twice for the same duty.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use phalanx_eth::interchange::{
    Interchange, InterchangeMetadata, InterchangeValidator, SignedAttestation, SignedBlock,
    INTERCHANGE_FORMAT_VERSION,
};
use phalanx_eth::{Epoch, PublicKeyBytes, Root, Slot};
use serde::{Deserialize, Serialize};

/// Why signing is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSafe {
    /// Another block was signed for this slot.
    #[error("double proposal: a different block was already signed at slot {0}")]
    DoubleProposal(u64),
    /// Another attestation was signed for this target.
    #[error("double vote: a different attestation was already signed for target epoch {0}")]
    DoubleVote(u64),
    /// The attestation surrounds a signed one.
    #[error(
        "surround vote: ({source_epoch}, {target}) surrounds the signed ({prior_source}, {prior_target})"
    )]
    Surrounds {
        /// New source epoch.
        source_epoch: u64,
        /// New target epoch.
        target: u64,
        /// Signed source epoch.
        prior_source: u64,
        /// Signed target epoch.
        prior_target: u64,
    },
    /// The attestation is surrounded by a signed one.
    #[error("surround vote: ({source_epoch}, {target}) is surrounded by the signed ({prior_source}, {prior_target})")]
    Surrounded {
        /// New source epoch.
        source_epoch: u64,
        /// New target epoch.
        target: u64,
        /// Signed source epoch.
        prior_source: u64,
        /// Signed target epoch.
        prior_target: u64,
    },
    /// Source after target.
    #[error("invalid attestation: source epoch {0} is after target epoch {1}")]
    SourceAfterTarget(u64, u64),
    /// Below what an imported history allows.
    #[error("below the imported history's watermark: {0}")]
    BelowWatermark(Watermark),
}

/// Which low watermark of an imported history a signing falls below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Watermark {
    /// A block at or below the highest imported block slot.
    #[error("block slot {slot} is not above the imported {min}")]
    BlockSlot {
        /// The block's slot.
        slot: u64,
        /// The highest imported block slot.
        min: u64,
    },
    /// An attestation whose source is below the highest imported source.
    #[error("source epoch {source_epoch} is below the imported {min}")]
    Source {
        /// The attestation's source epoch.
        source_epoch: u64,
        /// The highest imported source epoch.
        min: u64,
    },
    /// An attestation at or below the highest imported target.
    #[error("target epoch {target} is not above the imported {min}")]
    Target {
        /// The attestation's target epoch.
        target: u64,
        /// The highest imported target epoch.
        min: u64,
    },
}

/// The outcome of a check that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// New, recorded.
    Safe,
    /// Identical to what was signed before (same signing root).
    SameData,
}

/// Errors of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum SlashingDbError {
    /// The signing would be slashable.
    #[error(transparent)]
    NotSafe(#[from] NotSafe),
    /// Reading or writing the file.
    #[error("slashing database {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A damaged file: refused rather than guessed.
    #[error("slashing database {path} is damaged at line {line}: {reason}; restore it from a backup or import an EIP-3076 file into a new one")]
    Corrupt {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An interchange file for another network, or malformed.
    #[error("interchange: {0}")]
    Interchange(InterchangeProblem),
}

/// Why an EIP-3076 interchange file does not import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterchangeProblem {
    /// A format version other than the one supported.
    #[error("format version {0:?} is not \"5\"")]
    FormatVersion(String),
    /// The file is for another network.
    #[error("the file is for the network with genesis validators root {file}, this database for {database}")]
    OtherNetwork {
        /// The file's genesis validators root.
        file: Root,
        /// The database's.
        database: Root,
    },
    /// An attestation whose source is after its target.
    #[error("{pubkey}: attestation with source {source_epoch} after target {target}")]
    SourceAfterTarget {
        /// The validator.
        pubkey: PublicKeyBytes,
        /// The attestation's source epoch.
        source_epoch: u64,
        /// The attestation's target epoch.
        target: u64,
    },
}

/// One line of the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Block {
        pubkey: PublicKeyBytes,
        slot: Slot,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_root: Option<Root>,
    },
    Attestation {
        pubkey: PublicKeyBytes,
        source: Epoch,
        target: Epoch,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_root: Option<Root>,
    },
    /// From an import: nothing at or below these may be signed.
    Watermark {
        pubkey: PublicKeyBytes,
        block_slot: Option<Slot>,
        source: Option<Epoch>,
        target: Option<Epoch>,
    },
    /// The network the history belongs to (first line).
    Network { genesis_validators_root: Root },
}

#[derive(Clone, Debug, Default)]
struct History {
    blocks: BTreeMap<u64, Option<Root>>,
    /// target → (source, signing root)
    attestations: BTreeMap<u64, (u64, Option<Root>)>,
    min_block_slot: Option<u64>,
    min_source: Option<u64>,
    min_target: Option<u64>,
}

impl History {
    fn check_block(&self, slot: u64, root: Option<Root>) -> Result<Safety, NotSafe> {
        if let Some(prior) = self.blocks.get(&slot) {
            return match (prior, root) {
                (Some(a), Some(b)) if *a == b => Ok(Safety::SameData),
                _ => Err(NotSafe::DoubleProposal(slot)),
            };
        }
        if let Some(min) = self.min_block_slot.filter(|&min| slot <= min) {
            return Err(NotSafe::BelowWatermark(Watermark::BlockSlot { slot, min }));
        }
        Ok(Safety::Safe)
    }

    fn check_attestation(
        &self,
        source: u64,
        target: u64,
        root: Option<Root>,
    ) -> Result<Safety, NotSafe> {
        if source > target {
            return Err(NotSafe::SourceAfterTarget(source, target));
        }
        if let Some((prior_source, prior_root)) = self.attestations.get(&target) {
            return match (prior_root, root) {
                (Some(a), Some(b)) if *a == b && *prior_source == source => Ok(Safety::SameData),
                _ => Err(NotSafe::DoubleVote(target)),
            };
        }
        if let Some(min) = self.min_source.filter(|&min| source < min) {
            return Err(NotSafe::BelowWatermark(Watermark::Source {
                source_epoch: source,
                min,
            }));
        }
        if let Some(min) = self.min_target.filter(|&min| target <= min) {
            return Err(NotSafe::BelowWatermark(Watermark::Target { target, min }));
        }
        // A signed attestation that surrounds the new one has a later
        // target and an earlier source.
        let later = (
            std::ops::Bound::Excluded(target),
            std::ops::Bound::Unbounded,
        );
        for (&prior_target, &(prior_source, _)) in self.attestations.range(later) {
            if prior_source < source {
                return Err(NotSafe::Surrounded {
                    source_epoch: source,
                    target,
                    prior_source,
                    prior_target,
                });
            }
        }
        // One the new attestation surrounds has a target strictly between
        // the new source and target, and a later source.
        // (Empty when source + 1 ≥ target: nothing fits strictly between.)
        let between = source.saturating_add(1)..target.max(source.saturating_add(1));
        for (&prior_target, &(prior_source, _)) in self.attestations.range(between) {
            if prior_source > source {
                return Err(NotSafe::Surrounds {
                    source_epoch: source,
                    target,
                    prior_source,
                    prior_target,
                });
            }
        }
        Ok(Safety::Safe)
    }

    fn apply(&mut self, record: &Record) {
        match record {
            Record::Block {
                slot, signing_root, ..
            } => {
                self.blocks.insert(slot.0, *signing_root);
            }
            Record::Attestation {
                source,
                target,
                signing_root,
                ..
            } => {
                self.attestations
                    .insert(target.0, (source.0, *signing_root));
            }
            Record::Watermark {
                block_slot,
                source,
                target,
                ..
            } => {
                let raise = |current: &mut Option<u64>, new: Option<u64>| {
                    if let Some(new) = new {
                        *current = Some(current.map_or(new, |c| c.max(new)));
                    }
                };
                raise(&mut self.min_block_slot, block_slot.map(|s| s.0));
                raise(&mut self.min_source, source.map(|e| e.0));
                raise(&mut self.min_target, target.map(|e| e.0));
            }
            Record::Network { .. } => {}
        }
    }
}

/// The slashing-protection database.
pub struct SlashingDb {
    path: PathBuf,
    store: Store,
    genesis_validators_root: Root,
    histories: BTreeMap<PublicKeyBytes, History>,
}

/// Where the records are kept.
enum Store {
    /// An append-only file, fsynced after every append.
    File(File),
    /// A simulated disk.
    Memory(MemoryDisk),
}

/// A disk in memory, for simulations: clones share it, so a node that is
/// "restarted with its disk" reopens what its predecessor wrote, and one
/// restarted without it gets a new, empty disk.
#[derive(Clone, Debug, Default)]
pub struct MemoryDisk(Arc<Mutex<Vec<u8>>>);

impl MemoryDisk {
    /// An empty disk.
    pub fn new() -> MemoryDisk {
        MemoryDisk::default()
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SlashingDb {
    /// Opens an existing database for the network its first line names
    /// (for export while or after a node ran).
    pub fn open_existing(path: &Path) -> Result<SlashingDb, SlashingDbError> {
        let text = std::fs::read_to_string(path).map_err(|source| SlashingDbError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let first = text.lines().next().unwrap_or_default();
        match serde_json::from_str::<Record>(first) {
            Ok(Record::Network {
                genesis_validators_root,
            }) => SlashingDb::open(path, genesis_validators_root),
            _ => Err(SlashingDbError::Corrupt {
                path: path.display().to_string(),
                line: 1,
                reason: "the first line does not name the network".into(),
            }),
        }
    }

    /// Opens (or creates) the database for a network. A database of
    /// another network, or a damaged one, is refused.
    pub fn open(path: &Path, genesis_validators_root: Root) -> Result<SlashingDb, SlashingDbError> {
        let io = |source| SlashingDbError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut lines = Vec::new();
        {
            let mut reader = BufReader::new(&file);
            loop {
                let mut line = String::new();
                let read = reader.read_line(&mut line).map_err(io)?;
                if read == 0 {
                    break;
                }
                lines.push(line);
            }
        }
        let (histories, network, good_length) = replay(path, &lines, genesis_validators_root)?;
        // Drop a torn tail so new records start on a fresh line.
        if file.metadata().map_err(io)?.len() != good_length {
            file.set_len(good_length).map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        SlashingDb::over(
            path,
            Store::File(file),
            genesis_validators_root,
            histories,
            network,
        )
    }

    /// Opens (or creates) a database on a simulated disk, with the same
    /// checks and replay as a file.
    pub fn open_in_memory(
        disk: &MemoryDisk,
        genesis_validators_root: Root,
    ) -> Result<SlashingDb, SlashingDbError> {
        let path = Path::new("(memory)");
        let text = String::from_utf8_lossy(&disk.bytes()).into_owned();
        let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        let (histories, network, good_length) = replay(path, &lines, genesis_validators_root)?;
        disk.bytes().truncate(good_length as usize);
        SlashingDb::over(
            path,
            Store::Memory(disk.clone()),
            genesis_validators_root,
            histories,
            network,
        )
    }

    /// The database over a replayed store; a new store gets its network
    /// line first.
    fn over(
        path: &Path,
        store: Store,
        genesis_validators_root: Root,
        histories: BTreeMap<PublicKeyBytes, History>,
        network: Option<Root>,
    ) -> Result<SlashingDb, SlashingDbError> {
        let mut db = SlashingDb {
            path: path.to_path_buf(),
            store,
            genesis_validators_root,
            histories,
        };
        if network.is_none() {
            db.append(&[Record::Network {
                genesis_validators_root,
            }])?;
        }
        Ok(db)
    }

    fn append(&mut self, records: &[Record]) -> Result<(), SlashingDbError> {
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend(serde_json::to_vec(record).unwrap_or_default());
            bytes.push(b'\n');
        }
        match &mut self.store {
            Store::File(file) => {
                let path = self.path.display().to_string();
                file.write_all(&bytes)
                    .and_then(|()| file.sync_data())
                    .map_err(|source| SlashingDbError::Io { path, source })
            }
            Store::Memory(disk) => {
                disk.bytes().extend_from_slice(&bytes);
                Ok(())
            }
        }
    }

    /// Checks a block proposal and records it if safe.
    pub fn check_and_insert_block(
        &mut self,
        pubkey: PublicKeyBytes,
        slot: Slot,
        signing_root: Root,
    ) -> Result<Safety, SlashingDbError> {
        let history = self.histories.entry(pubkey).or_default();
        let safety = history.check_block(slot.0, Some(signing_root))?;
        if safety == Safety::Safe {
            let record = Record::Block {
                pubkey,
                slot,
                signing_root: Some(signing_root),
            };
            self.append(std::slice::from_ref(&record))?;
            self.histories.entry(pubkey).or_default().apply(&record);
        }
        Ok(safety)
    }

    /// Checks an attestation and records it if safe.
    pub fn check_and_insert_attestation(
        &mut self,
        pubkey: PublicKeyBytes,
        source: Epoch,
        target: Epoch,
        signing_root: Root,
    ) -> Result<Safety, SlashingDbError> {
        let history = self.histories.entry(pubkey).or_default();
        let safety = history.check_attestation(source.0, target.0, Some(signing_root))?;
        if safety == Safety::Safe {
            let record = Record::Attestation {
                pubkey,
                source,
                target,
                signing_root: Some(signing_root),
            };
            self.append(std::slice::from_ref(&record))?;
            self.histories.entry(pubkey).or_default().apply(&record);
        }
        Ok(safety)
    }

    /// Checks without recording (for a value proposed in consensus).
    pub fn check_attestation(
        &self,
        pubkey: &PublicKeyBytes,
        source: Epoch,
        target: Epoch,
        signing_root: Root,
    ) -> Result<Safety, NotSafe> {
        self.histories.get(pubkey).map_or(Ok(Safety::Safe), |h| {
            h.check_attestation(source.0, target.0, Some(signing_root))
        })
    }

    /// Checks a block without recording it.
    pub fn check_block(
        &self,
        pubkey: &PublicKeyBytes,
        slot: Slot,
        signing_root: Root,
    ) -> Result<Safety, NotSafe> {
        self.histories.get(pubkey).map_or(Ok(Safety::Safe), |h| {
            h.check_block(slot.0, Some(signing_root))
        })
    }

    /// Imports an EIP-3076 file: its records, and per validator the low
    /// watermarks EIP-3076 recommends (nothing at or below the highest
    /// imported block slot and target, nothing below the highest source).
    pub fn import(&mut self, interchange: &Interchange) -> Result<(), SlashingDbError> {
        if interchange.metadata.interchange_format_version != INTERCHANGE_FORMAT_VERSION {
            return Err(SlashingDbError::Interchange(
                InterchangeProblem::FormatVersion(
                    interchange.metadata.interchange_format_version.clone(),
                ),
            ));
        }
        if interchange.metadata.genesis_validators_root != self.genesis_validators_root {
            return Err(SlashingDbError::Interchange(
                InterchangeProblem::OtherNetwork {
                    file: interchange.metadata.genesis_validators_root,
                    database: self.genesis_validators_root,
                },
            ));
        }
        let mut records = Vec::new();
        for validator in &interchange.data {
            let pubkey = validator.pubkey;
            let history = self.histories.get(&pubkey).cloned().unwrap_or_default();
            for block in &validator.signed_blocks {
                if !history.blocks.contains_key(&block.slot.0) {
                    records.push(Record::Block {
                        pubkey,
                        slot: block.slot,
                        signing_root: block.signing_root,
                    });
                }
            }
            for attestation in &validator.signed_attestations {
                if attestation.source_epoch > attestation.target_epoch {
                    return Err(SlashingDbError::Interchange(
                        InterchangeProblem::SourceAfterTarget {
                            pubkey,
                            source_epoch: attestation.source_epoch.0,
                            target: attestation.target_epoch.0,
                        },
                    ));
                }
                if !history
                    .attestations
                    .contains_key(&attestation.target_epoch.0)
                {
                    records.push(Record::Attestation {
                        pubkey,
                        source: attestation.source_epoch,
                        target: attestation.target_epoch,
                        signing_root: attestation.signing_root,
                    });
                }
            }
            records.push(Record::Watermark {
                pubkey,
                block_slot: validator.signed_blocks.iter().map(|b| b.slot).max(),
                source: validator
                    .signed_attestations
                    .iter()
                    .map(|a| a.source_epoch)
                    .max(),
                target: validator
                    .signed_attestations
                    .iter()
                    .map(|a| a.target_epoch)
                    .max(),
            });
        }
        self.append(&records)?;
        for record in &records {
            if let Record::Block { pubkey, .. }
            | Record::Attestation { pubkey, .. }
            | Record::Watermark { pubkey, .. } = record
            {
                self.histories.entry(*pubkey).or_default().apply(record);
            }
        }
        Ok(())
    }

    /// Exports the whole history as EIP-3076.
    pub fn export(&self) -> Interchange {
        Interchange {
            metadata: InterchangeMetadata {
                interchange_format_version: INTERCHANGE_FORMAT_VERSION.to_string(),
                genesis_validators_root: self.genesis_validators_root,
            },
            data: self
                .histories
                .iter()
                .map(|(pubkey, history)| InterchangeValidator {
                    pubkey: *pubkey,
                    signed_blocks: history
                        .blocks
                        .iter()
                        .map(|(slot, root)| SignedBlock {
                            slot: Slot(*slot),
                            signing_root: *root,
                        })
                        .collect(),
                    signed_attestations: history
                        .attestations
                        .iter()
                        .map(|(target, (source, root))| SignedAttestation {
                            source_epoch: Epoch(*source),
                            target_epoch: Epoch(*target),
                            signing_root: *root,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A replayed store: the histories, the network line if any, and the
/// length of the good prefix.
type Replayed = (BTreeMap<PublicKeyBytes, History>, Option<Root>, u64);

/// Replays the lines of a store (a torn last line is dropped).
fn replay(
    path: &Path,
    lines: &[String],
    genesis_validators_root: Root,
) -> Result<Replayed, SlashingDbError> {
    let corrupt = |line: usize, reason: String| SlashingDbError::Corrupt {
        path: path.display().to_string(),
        line,
        reason,
    };
    let mut histories: BTreeMap<PublicKeyBytes, History> = BTreeMap::new();
    let mut network = None;
    let mut good_length = 0u64;
    let count = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let torn_tail = i + 1 == count && !line.ends_with('\n');
        let record: Record = match serde_json::from_str(line.trim_end()) {
            Ok(record) if !torn_tail => record,
            Ok(_) | Err(_) if torn_tail => {
                tracing::warn!(path = %path.display(), line = i + 1, "dropping a torn last record (interrupted write)");
                break;
            }
            Err(e) => return Err(corrupt(i + 1, e.to_string())),
            Ok(record) => record,
        };
        match &record {
            Record::Network {
                genesis_validators_root: root,
            } => {
                if *root != genesis_validators_root {
                    return Err(corrupt(
                        i + 1,
                        format!("it belongs to the network with genesis validators root {root}, not {genesis_validators_root}"),
                    ));
                }
                network = Some(*root);
            }
            Record::Block { pubkey, .. }
            | Record::Attestation { pubkey, .. }
            | Record::Watermark { pubkey, .. } => {
                if network.is_none() {
                    return Err(corrupt(i + 1, "records before the network line".into()));
                }
                histories.entry(*pubkey).or_default().apply(&record);
            }
        }
        good_length += line.len() as u64;
    }
    Ok((histories, network, good_length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_watermark() {
        let history = History {
            min_block_slot: Some(10),
            min_source: Some(3),
            min_target: Some(5),
            ..History::default()
        };
        assert_eq!(
            history.check_block(10, None),
            Err(NotSafe::BelowWatermark(Watermark::BlockSlot {
                slot: 10,
                min: 10
            }))
        );
        assert_eq!(
            history.check_attestation(2, 6, None),
            Err(NotSafe::BelowWatermark(Watermark::Source {
                source_epoch: 2,
                min: 3
            }))
        );
        let below = history.check_attestation(3, 5, None);
        assert_eq!(
            below.map_err(|e| e.to_string()),
            Err(
                "below the imported history's watermark: target epoch 5 is not above the imported 5"
                    .to_string()
            )
        );
        assert_eq!(history.check_attestation(3, 6, None), Ok(Safety::Safe));
    }
}
