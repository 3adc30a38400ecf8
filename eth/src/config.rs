//! Network configuration: the consensus `config.yaml` every client publishes
//! (fork versions and epochs, slot duration, deposit contract,
//! `BLOB_SCHEDULE`), from a file, from a beacon node's
//! `/eth/v1/config/spec`, or built in for mainnet, hoodi and sepolia.
//!
//! Config files write fork versions and addresses as bare `0x…` tokens,
//! which generic YAML libraries read as (overflowing) integers, so the
//! format's flat `KEY: value` lines and its lists of mappings are parsed
//! here directly, and every value is kept as text until it is interpreted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fork::ForkName;
use crate::primitives::{Epoch, ExecutionAddress, Root, Slot, Version};

/// An epoch that never comes: how configs write an unscheduled fork.
pub const FAR_FUTURE_EPOCH: Epoch = Epoch(u64::MAX);

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A line that is not `KEY: value` or part of a list.
    #[error("config line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A required key is absent.
    #[error("config has no {0}")]
    Missing(&'static str),
    /// A value of the wrong form.
    #[error("config value {key} = {value:?}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A preset this build does not have.
    #[error("PRESET_BASE {0:?} is not mainnet or minimal")]
    UnknownPreset(String),
    /// A network name with no built-in config.
    #[error("no built-in config for network {0:?}: use mainnet, hoodi or sepolia, or give a config file")]
    UnknownNetwork(String),
}

/// The preset a network's config builds on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresetBase {
    /// Mainnet sizes.
    Mainnet,
    /// Minimal sizes (tests, small devnets).
    Minimal,
}

/// A fork and when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledFork {
    /// The fork's name as the config writes it, lower case (`fulu`, `gloas`).
    pub name: String,
    /// The fork if this build knows it; `None` for a newer fork.
    pub fork: Option<ForkName>,
    /// Its fork version.
    pub version: Version,
    /// Its first epoch ([`FAR_FUTURE_EPOCH`] when unscheduled).
    pub epoch: Epoch,
}

/// One entry of `BLOB_SCHEDULE` (blob-parameter-only forks, EIP-7892).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobScheduleEntry {
    /// From this epoch on…
    pub epoch: Epoch,
    /// …a block carries at most this many blobs.
    pub max_blobs_per_block: u64,
}

/// A network's consensus configuration, as far as a distributed validator
/// needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `CONFIG_NAME`, or the name given when loading.
    pub name: String,
    /// `PRESET_BASE`.
    pub preset: PresetBase,
    /// `GENESIS_FORK_VERSION`.
    pub genesis_fork_version: Version,
    /// Every fork after genesis the config names, in order of epoch.
    pub forks: Vec<ScheduledFork>,
    /// `SLOT_DURATION_MS`, or `SECONDS_PER_SLOT` × 1000.
    pub slot_duration_ms: u64,
    /// `DEPOSIT_CHAIN_ID`.
    pub deposit_chain_id: u64,
    /// `DEPOSIT_CONTRACT_ADDRESS`.
    pub deposit_contract_address: ExecutionAddress,
    /// `MAX_BLOBS_PER_BLOCK` (Deneb).
    pub max_blobs_per_block: u64,
    /// `MAX_BLOBS_PER_BLOCK_ELECTRA`.
    pub max_blobs_per_block_electra: u64,
    /// `BLOB_SCHEDULE`, sorted by epoch.
    pub blob_schedule: Vec<BlobScheduleEntry>,
    /// The genesis validators root, when known (built-in networks; a beacon
    /// node tells it for others).
    pub genesis_validators_root: Option<Root>,
    /// The genesis time in Unix seconds, when known.
    pub genesis_time: Option<u64>,
}

/// A value of a config: text, or a list of mappings of text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RawValue {
    Text(String),
    List(Vec<BTreeMap<String, String>>),
}

type RawConfig = BTreeMap<String, RawValue>;

const MAINNET_YAML: &str = include_str!("networks/mainnet.yaml");
const HOODI_YAML: &str = include_str!("networks/hoodi.yaml");
const SEPOLIA_YAML: &str = include_str!("networks/sepolia.yaml");

/// The network is in a fork this build does not know (by the config's
/// name for it): nothing is decided or signed in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the network is in fork {0}, unknown to this build")]
pub struct UnknownFork(pub String);

impl NetworkConfig {
    /// The built-in config of `name` (`mainnet`, `hoodi`, `sepolia`).
    pub fn built_in(name: &str) -> Result<NetworkConfig, ConfigError> {
        let (yaml, root, genesis_time) = match name {
            "mainnet" => (
                MAINNET_YAML,
                "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
                1_606_824_023,
            ),
            "hoodi" => (
                HOODI_YAML,
                "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
                1_742_213_400,
            ),
            "sepolia" => (
                SEPOLIA_YAML,
                "0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
                1_655_733_600,
            ),
            other => return Err(ConfigError::UnknownNetwork(other.into())),
        };
        let mut config = NetworkConfig::from_yaml(yaml)?;
        config.genesis_validators_root = root.parse().ok();
        config.genesis_time = Some(genesis_time);
        Ok(config)
    }

    /// A local devnet on the minimal preset: every fork up to `fork` at
    /// genesis, later ones never, slots of `slot_duration_ms`.
    pub fn devnet(fork: ForkName, slot_duration_ms: u64) -> NetworkConfig {
        let mut yaml = format!(
            "PRESET_BASE: minimal\nCONFIG_NAME: phalanx-devnet\nGENESIS_FORK_VERSION: 0x10000000\nSLOT_DURATION_MS: {slot_duration_ms}\nSECONDS_PER_SLOT: {}\nDEPOSIT_CHAIN_ID: 1337\nBLOB_SCHEDULE: []\n",
            slot_duration_ms.div_ceil(1000).max(1)
        );
        let later = [
            (ForkName::Altair, "ALTAIR", 1),
            (ForkName::Bellatrix, "BELLATRIX", 2),
            (ForkName::Capella, "CAPELLA", 3),
            (ForkName::Deneb, "DENEB", 4),
            (ForkName::Electra, "ELECTRA", 5),
            (ForkName::Fulu, "FULU", 6),
        ];
        for (name, key, number) in later {
            let epoch = if name <= fork {
                "0".to_string()
            } else {
                FAR_FUTURE_EPOCH.0.to_string()
            };
            yaml.push_str(&format!(
                "{key}_FORK_VERSION: 0x{number:02x}000000\n{key}_FORK_EPOCH: {epoch}\n"
            ));
        }
        // Every line above is well formed; the unit test proves it.
        NetworkConfig::from_yaml(&yaml).unwrap_or_else(|e| unreachable!("devnet config: {e}"))
    }

    /// Parses a consensus `config.yaml`.
    pub fn from_yaml(text: &str) -> Result<NetworkConfig, ConfigError> {
        NetworkConfig::from_raw(&parse_yaml(text)?)
    }

    /// Reads the `data` object of a beacon node's `/eth/v1/config/spec`
    /// (every value a string, `BLOB_SCHEDULE` a list of objects).
    pub fn from_spec(
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<NetworkConfig, ConfigError> {
        let mut raw = RawConfig::new();
        for (key, value) in data {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            match value {
                serde_json::Value::Array(items) => {
                    let list = items
                        .iter()
                        .filter_map(|item| item.as_object())
                        .map(|object| {
                            object
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                                .collect()
                        })
                        .collect();
                    raw.insert(key.clone(), RawValue::List(list));
                }
                other => {
                    if let Some(t) = text(other) {
                        raw.insert(key.clone(), RawValue::Text(t));
                    }
                }
            }
        }
        NetworkConfig::from_raw(&raw)
    }

    /// The configuration part of a beacon node's `/eth/v1/config/spec`
    /// `data` object, as [`NetworkConfig::from_spec`] reads it back: every
    /// value a string, as beacon nodes write them, and `BLOB_SCHEDULE` a
    /// list of objects. Preset constants are not included. The genesis
    /// validators root and time are not part of a config and are left out.
    pub fn to_spec_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value;
        let mut data = serde_json::Map::new();
        let mut put = |key: String, value: String| {
            data.insert(key, Value::String(value));
        };
        let preset = match self.preset {
            PresetBase::Mainnet => "mainnet",
            PresetBase::Minimal => "minimal",
        };
        put("PRESET_BASE".into(), preset.into());
        put("CONFIG_NAME".into(), self.name.clone());
        put(
            "GENESIS_FORK_VERSION".into(),
            self.genesis_fork_version.to_string(),
        );
        for fork in &self.forks {
            let name = fork.name.to_ascii_uppercase();
            put(format!("{name}_FORK_VERSION"), fork.version.to_string());
            put(format!("{name}_FORK_EPOCH"), fork.epoch.to_string());
        }
        // Clients that predate SLOT_DURATION_MS read whole seconds.
        put(
            "SECONDS_PER_SLOT".into(),
            (self.slot_duration_ms / 1000).to_string(),
        );
        put("SLOT_DURATION_MS".into(), self.slot_duration_ms.to_string());
        put("DEPOSIT_CHAIN_ID".into(), self.deposit_chain_id.to_string());
        put(
            "DEPOSIT_NETWORK_ID".into(),
            self.deposit_chain_id.to_string(),
        );
        // Lower-case hex: parsing does not depend on an EIP-55 checksum.
        put(
            "DEPOSIT_CONTRACT_ADDRESS".into(),
            format!("{:#x}", self.deposit_contract_address),
        );
        put(
            "MAX_BLOBS_PER_BLOCK".into(),
            self.max_blobs_per_block.to_string(),
        );
        put(
            "MAX_BLOBS_PER_BLOCK_ELECTRA".into(),
            self.max_blobs_per_block_electra.to_string(),
        );
        let schedule = self
            .blob_schedule
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "EPOCH": entry.epoch.to_string(),
                    "MAX_BLOBS_PER_BLOCK": entry.max_blobs_per_block.to_string(),
                })
            })
            .collect();
        data.insert("BLOB_SCHEDULE".into(), Value::Array(schedule));
        data
    }

    fn from_raw(raw: &RawConfig) -> Result<NetworkConfig, ConfigError> {
        let text = |key: &'static str| match raw.get(key) {
            Some(RawValue::Text(t)) => Ok(t.as_str()),
            Some(RawValue::List(_)) => Err(ConfigError::Invalid {
                key: key.into(),
                value: "a list".into(),
                reason: "expected a single value",
            }),
            None => Err(ConfigError::Missing(key)),
        };
        let preset = match text("PRESET_BASE")? {
            "mainnet" => PresetBase::Mainnet,
            "minimal" => PresetBase::Minimal,
            other => return Err(ConfigError::UnknownPreset(other.into())),
        };
        let slot_duration_ms = match text("SLOT_DURATION_MS") {
            Ok(ms) => parse_u64("SLOT_DURATION_MS", ms)?,
            Err(ConfigError::Missing(_)) => {
                parse_u64("SECONDS_PER_SLOT", text("SECONDS_PER_SLOT")?)?.saturating_mul(1000)
            }
            Err(e) => return Err(e),
        };
        if slot_duration_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "SLOT_DURATION_MS".into(),
                value: "0".into(),
                reason: "slots must last longer than zero",
            });
        }

        // Every `<NAME>_FORK_VERSION` with its `<NAME>_FORK_EPOCH` is a fork,
        // known to this build or not.
        let mut forks = Vec::new();
        for (key, value) in raw {
            let Some(name) = key.strip_suffix("_FORK_VERSION") else {
                continue;
            };
            if name == "GENESIS" {
                continue;
            }
            let RawValue::Text(version) = value else {
                continue;
            };
            let epoch_key = format!("{name}_FORK_EPOCH");
            let epoch = match raw.get(&epoch_key) {
                Some(RawValue::Text(e)) => Epoch(parse_u64(&epoch_key, e)?),
                _ => FAR_FUTURE_EPOCH,
            };
            let lower = name.to_ascii_lowercase();
            forks.push(ScheduledFork {
                fork: lower.parse().ok(),
                name: lower,
                version: parse_version(key, version)?,
                epoch,
            });
        }
        forks.sort_by_key(|f| (f.epoch, f.fork));

        let mut blob_schedule = match raw.get("BLOB_SCHEDULE") {
            Some(RawValue::List(entries)) => entries
                .iter()
                .map(|entry| {
                    let field =
                        |name: &'static str| entry.get(name).ok_or(ConfigError::Missing(name));
                    Ok(BlobScheduleEntry {
                        epoch: Epoch(parse_u64("BLOB_SCHEDULE.EPOCH", field("EPOCH")?)?),
                        max_blobs_per_block: parse_u64(
                            "BLOB_SCHEDULE.MAX_BLOBS_PER_BLOCK",
                            field("MAX_BLOBS_PER_BLOCK")?,
                        )?,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
            _ => Vec::new(),
        };
        blob_schedule.sort_by_key(|entry| entry.epoch);

        let optional_u64 = |key: &'static str, default: u64| match text(key) {
            Ok(v) => parse_u64(key, v),
            Err(ConfigError::Missing(_)) => Ok(default),
            Err(e) => Err(e),
        };
        Ok(NetworkConfig {
            name: text("CONFIG_NAME").unwrap_or("custom").to_string(),
            preset,
            genesis_fork_version: parse_version(
                "GENESIS_FORK_VERSION",
                text("GENESIS_FORK_VERSION")?,
            )?,
            forks,
            slot_duration_ms,
            deposit_chain_id: optional_u64("DEPOSIT_CHAIN_ID", 0)?,
            deposit_contract_address: match text("DEPOSIT_CONTRACT_ADDRESS") {
                Ok(a) => a.parse().map_err(|_| ConfigError::Invalid {
                    key: "DEPOSIT_CONTRACT_ADDRESS".into(),
                    value: a.into(),
                    reason: "expected a 20-byte 0x address",
                })?,
                Err(ConfigError::Missing(_)) => ExecutionAddress::ZERO,
                Err(e) => return Err(e),
            },
            max_blobs_per_block: optional_u64("MAX_BLOBS_PER_BLOCK", 6)?,
            max_blobs_per_block_electra: optional_u64("MAX_BLOBS_PER_BLOCK_ELECTRA", 9)?,
            blob_schedule,
            genesis_validators_root: None,
            genesis_time: None,
        })
    }

    /// `SLOTS_PER_EPOCH` of the config's preset.
    pub fn slots_per_epoch(&self) -> u64 {
        match self.preset {
            PresetBase::Mainnet => 32,
            PresetBase::Minimal => 8,
        }
    }

    /// The slot duration.
    pub fn slot_duration(&self) -> Duration {
        Duration::from_millis(self.slot_duration_ms)
    }

    /// The latest fork in force at `epoch`, known to this build or not.
    pub fn scheduled_fork_at(&self, epoch: Epoch) -> Option<&ScheduledFork> {
        self.forks
            .iter()
            .filter(|f| f.epoch != FAR_FUTURE_EPOCH && f.epoch <= epoch)
            .max_by_key(|f| f.epoch)
    }

    /// The fork in force at `epoch`, or the name of a fork this build does
    /// not know (the node must not sign in a fork it does not understand).
    pub fn fork_at(&self, epoch: Epoch) -> Result<ForkName, String> {
        match self.scheduled_fork_at(epoch) {
            None => Ok(ForkName::Phase0),
            Some(ScheduledFork {
                fork: Some(fork), ..
            }) => Ok(*fork),
            Some(ScheduledFork { name, .. }) => Err(name.clone()),
        }
    }

    /// The fork in force at `slot`.
    ///
    /// The fallback policy for a fork the config schedules but this build
    /// does not know: it is an [`UnknownFork`] error wherever something is
    /// decided or signed (the node must not sign in a fork it does not
    /// understand); only where a layout must be picked regardless, the
    /// caller takes [`NetworkConfig::layout_fork_at_slot`], which falls back
    /// to [`ForkName::LATEST`].
    pub fn fork_at_slot(&self, slot: Slot) -> Result<ForkName, UnknownFork> {
        self.fork_at(slot.epoch(self.slots_per_epoch()))
            .map_err(UnknownFork)
    }

    /// The fork whose layouts apply at `slot`: [`Self::fork_at_slot`], or
    /// [`ForkName::LATEST`] for a fork unknown to this build.
    pub fn layout_fork_at_slot(&self, slot: Slot) -> ForkName {
        self.fork_at_slot(slot).unwrap_or(ForkName::LATEST)
    }

    /// The length of a slot in milliseconds (at least 1).
    pub fn slot_ms(&self) -> u64 {
        self.slot_duration_ms.max(1)
    }

    /// The start of `slot` in Unix milliseconds, for a chain that started
    /// at `genesis_time_ms`.
    pub fn slot_start_ms(&self, genesis_time_ms: u64, slot: Slot) -> u64 {
        genesis_time_ms.saturating_add(slot.0.saturating_mul(self.slot_ms()))
    }

    /// The slot at `now_ms` (Unix milliseconds) of a chain that started at
    /// `genesis_time_ms`; slot 0 before genesis.
    pub fn slot_at_ms(&self, genesis_time_ms: u64, now_ms: u64) -> Slot {
        Slot(now_ms.saturating_sub(genesis_time_ms) / self.slot_ms())
    }

    /// The fork version in force at `epoch`.
    pub fn fork_version_at(&self, epoch: Epoch) -> Version {
        self.scheduled_fork_at(epoch)
            .map_or(self.genesis_fork_version, |f| f.version)
    }

    /// The version of a known fork, if the config names it.
    pub fn fork_version(&self, fork: ForkName) -> Option<Version> {
        if fork == ForkName::Phase0 {
            return Some(self.genesis_fork_version);
        }
        self.forks
            .iter()
            .find(|f| f.fork == Some(fork))
            .map(|f| f.version)
    }

    /// The signature domain of `domain_type` at `epoch`: the fork version in
    /// force then, bound to the chain's genesis validators root.
    pub fn domain_at(
        &self,
        domain_type: crate::DomainType,
        epoch: Epoch,
        genesis_validators_root: crate::Root,
    ) -> crate::Domain {
        crate::signing::compute_domain(
            domain_type,
            self.fork_version_at(epoch),
            genesis_validators_root,
        )
    }

    /// The most blobs a block at `epoch` may carry.
    pub fn max_blobs_per_block_at(&self, epoch: Epoch) -> u64 {
        let scheduled = self
            .blob_schedule
            .iter()
            .rev()
            .find(|entry| entry.epoch <= epoch)
            .map(|entry| entry.max_blobs_per_block);
        match (scheduled, self.fork_at(epoch)) {
            (Some(max), _) => max,
            (None, Ok(fork)) if fork >= ForkName::Electra => self.max_blobs_per_block_electra,
            _ => self.max_blobs_per_block,
        }
    }

    /// The largest blob count this network ever allows, for sizing limits.
    pub fn max_blobs_per_block_ever(&self) -> u64 {
        self.blob_schedule
            .iter()
            .map(|entry| entry.max_blobs_per_block)
            .chain([self.max_blobs_per_block, self.max_blobs_per_block_electra])
            .max()
            .unwrap_or(0)
    }
}

fn parse_u64(key: &str, value: &str) -> Result<u64, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: "expected an unsigned 64-bit integer",
    })
}

fn parse_version(key: &str, value: &str) -> Result<Version, ConfigError> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    let bytes = hex::decode(digits).ok().filter(|b| b.len() == 4);
    bytes
        .map(|b| Version::from_slice(&b))
        .ok_or_else(|| ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            reason: "expected a 4-byte 0x version",
        })
}

/// Strips a trailing comment and surrounding quotes.
fn clean(value: &str) -> String {
    let value = match value
        .find(" #")
        .or_else(|| value.starts_with('#').then_some(0))
    {
        Some(at) => &value[..at],
        None => value,
    };
    let value = value.trim();
    let unquoted = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')));
    unquoted.unwrap_or(value).to_string()
}

fn parse_yaml(text: &str) -> Result<RawConfig, ConfigError> {
    let mut raw = RawConfig::new();
    // The list being read: its key, and the entries so far.
    let mut list: Option<(String, Vec<BTreeMap<String, String>>)> = None;
    for (number, line) in text.lines().enumerate() {
        let syntax = |reason: &str| ConfigError::Syntax {
            line: number + 1,
            reason: reason.into(),
        };
        let content = clean(line);
        if content.is_empty() {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented {
            let Some((key, entries)) = list.as_mut() else {
                return Err(syntax("indented line outside a list"));
            };
            let (item, new_entry) = match content.strip_prefix("- ") {
                Some(rest) => (rest.trim(), true),
                None => (content.as_str(), false),
            };
            let (field, value) = item
                .split_once(':')
                .ok_or_else(|| syntax(&format!("expected FIELD: value in list {key}")))?;
            if new_entry || entries.is_empty() {
                entries.push(BTreeMap::new());
            }
            if let Some(entry) = entries.last_mut() {
                entry.insert(field.trim().to_string(), clean(value));
            }
            continue;
        }
        if let Some((key, entries)) = list.take() {
            raw.insert(key, RawValue::List(entries));
        }
        let (key, value) = content
            .split_once(':')
            .ok_or_else(|| syntax("expected KEY: value"))?;
        let key = key.trim().to_string();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(syntax("keys are letters, digits and underscores"));
        }
        let value = clean(value);
        if value.is_empty() {
            list = Some((key, Vec::new()));
        } else if value == "[]" {
            raw.insert(key, RawValue::List(Vec::new()));
        } else {
            raw.insert(key, RawValue::Text(value));
        }
    }
    if let Some((key, entries)) = list.take() {
        raw.insert(key, RawValue::List(entries));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_fork_is_an_error_and_lays_out_as_the_latest() {
        let mut network = NetworkConfig::devnet(ForkName::Electra, 12_000);
        let spe = network.slots_per_epoch();
        network.forks.push(ScheduledFork {
            name: "gloas".into(),
            fork: None,
            version: Version::from([9, 0, 0, 0]),
            epoch: Epoch(10),
        });
        let before = Slot(10 * spe - 1);
        let after = Slot(10 * spe);
        assert_eq!(network.fork_at_slot(before), Ok(ForkName::Electra));
        assert_eq!(network.layout_fork_at_slot(before), ForkName::Electra);
        assert_eq!(
            network.fork_at_slot(after),
            Err(UnknownFork("gloas".into()))
        );
        assert_eq!(network.layout_fork_at_slot(after), ForkName::LATEST);
    }

    #[test]
    fn a_slot_is_in_the_fork_scheduled_for_its_epoch() {
        let network = NetworkConfig::built_in("mainnet").expect("mainnet");
        let slots_per_epoch = network.slots_per_epoch();
        let at_epoch = |epoch: u64| network.layout_fork_at_slot(Slot(epoch * slots_per_epoch));
        assert_eq!(at_epoch(0), ForkName::Phase0);
        assert_eq!(at_epoch(364_032), ForkName::Electra);
        assert_eq!(
            network.fork_at_slot(Slot(364_032 * slots_per_epoch - 1)),
            Ok(ForkName::Deneb)
        );
        assert_eq!(at_epoch(411_392), ForkName::Fulu);
    }

    #[test]
    fn slot_times_round_trip() {
        let network = NetworkConfig::devnet(ForkName::Electra, 2_000);
        let genesis = 1_700_000_000_000;
        assert_eq!(network.slot_start_ms(genesis, Slot(5)), genesis + 10_000);
        assert_eq!(network.slot_at_ms(genesis, genesis + 10_000), Slot(5));
        assert_eq!(network.slot_at_ms(genesis, genesis + 11_999), Slot(5));
        // Before genesis: slot 0.
        assert_eq!(network.slot_at_ms(genesis, genesis - 1), Slot(0));
    }

    #[test]
    fn built_in_networks_load() {
        let mainnet = NetworkConfig::built_in("mainnet").expect("mainnet");
        assert_eq!(mainnet.preset, PresetBase::Mainnet);
        assert_eq!(mainnet.fork_at(Epoch(364_032)), Ok(ForkName::Electra));
        assert_eq!(mainnet.fork_at(Epoch(411_392)), Ok(ForkName::Fulu));
        assert_eq!(mainnet.fork_at(Epoch(0)), Ok(ForkName::Phase0));
        assert_eq!(
            mainnet.fork_version(ForkName::Capella),
            Some(Version::from([3, 0, 0, 0]))
        );
        assert_eq!(mainnet.max_blobs_per_block_at(Epoch(300_000)), 6);
        assert_eq!(mainnet.max_blobs_per_block_at(Epoch(400_000)), 9);
        assert_eq!(mainnet.max_blobs_per_block_at(Epoch(412_672)), 15);
        assert_eq!(mainnet.max_blobs_per_block_at(Epoch(500_000)), 21);
        assert_eq!(mainnet.max_blobs_per_block_ever(), 21);
        assert_eq!(mainnet.slot_duration(), Duration::from_secs(12));
        assert!(mainnet.genesis_validators_root.is_some());

        let hoodi = NetworkConfig::built_in("hoodi").expect("hoodi");
        assert_eq!(
            hoodi.genesis_fork_version,
            Version::from([0x10, 0, 0x09, 0x10])
        );
        assert_eq!(hoodi.fork_at(Epoch(2047)), Ok(ForkName::Deneb));
        assert_eq!(hoodi.deposit_chain_id, 560_048);

        let sepolia = NetworkConfig::built_in("sepolia").expect("sepolia");
        // Sepolia schedules Gloas, which this build does not know: signing
        // in it must be refused, not guessed.
        assert_eq!(sepolia.fork_at(Epoch(353_024)), Err("gloas".to_string()));
        assert_eq!(sepolia.fork_at(Epoch(353_023)), Ok(ForkName::Fulu));

        assert_eq!(
            NetworkConfig::built_in("goerli"),
            Err(ConfigError::UnknownNetwork("goerli".into()))
        );
    }

    #[test]
    fn the_spec_endpoint_gives_the_same_config() {
        let yaml = NetworkConfig::built_in("hoodi").expect("hoodi");
        let spec = serde_json::json!({
            "PRESET_BASE": "mainnet",
            "CONFIG_NAME": "hoodi",
            "GENESIS_FORK_VERSION": "0x10000910",
            "ALTAIR_FORK_VERSION": "0x20000910", "ALTAIR_FORK_EPOCH": "0",
            "BELLATRIX_FORK_VERSION": "0x30000910", "BELLATRIX_FORK_EPOCH": "0",
            "CAPELLA_FORK_VERSION": "0x40000910", "CAPELLA_FORK_EPOCH": "0",
            "DENEB_FORK_VERSION": "0x50000910", "DENEB_FORK_EPOCH": "0",
            "ELECTRA_FORK_VERSION": "0x60000910", "ELECTRA_FORK_EPOCH": "2048",
            "FULU_FORK_VERSION": "0x70000910", "FULU_FORK_EPOCH": "50688",
            "GLOAS_FORK_VERSION": "0x80000910", "GLOAS_FORK_EPOCH": "18446744073709551615",
            "SECONDS_PER_SLOT": "12",
            "SLOT_DURATION_MS": "12000",
            "DEPOSIT_CHAIN_ID": "560048",
            "DEPOSIT_NETWORK_ID": "560048",
            "DEPOSIT_CONTRACT_ADDRESS": "0x00000000219ab540356cbb839cbe05303d7705fa",
            "MAX_BLOBS_PER_BLOCK": "6",
            "MAX_BLOBS_PER_BLOCK_ELECTRA": "9",
            "BLOB_SCHEDULE": [
                {"EPOCH": "52480", "MAX_BLOBS_PER_BLOCK": "15"},
                {"EPOCH": "54016", "MAX_BLOBS_PER_BLOCK": "21"}
            ],
            "SLOTS_PER_EPOCH": "32"
        });
        let from_spec =
            NetworkConfig::from_spec(spec.as_object().expect("object")).expect("valid spec");
        let mut expected = yaml;
        expected.genesis_validators_root = None;
        expected.genesis_time = None;
        assert_eq!(from_spec, expected);
    }

    #[test]
    fn spec_json_round_trips() {
        let devnet = "PRESET_BASE: minimal\nCONFIG_NAME: devnet\nGENESIS_FORK_VERSION: 0x00000001\nSLOT_DURATION_MS: 1500\nCAPELLA_FORK_VERSION: 0x03000001\nCAPELLA_FORK_EPOCH: 0\nELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 3\nBLOB_SCHEDULE: []\n";
        let mut configs: Vec<NetworkConfig> = ["mainnet", "hoodi", "sepolia"]
            .into_iter()
            .map(|name| NetworkConfig::built_in(name).expect("built in"))
            .collect();
        configs.push(NetworkConfig::from_yaml(devnet).expect("devnet"));
        for config in configs {
            let spec = config.to_spec_json();
            assert!(spec.values().all(|v| v.is_string() || v.is_array()));
            let back = NetworkConfig::from_spec(&spec).expect("own spec parses");
            let mut expected = config.clone();
            expected.genesis_validators_root = None;
            expected.genesis_time = None;
            assert_eq!(back, expected, "{}", config.name);
        }
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        assert_eq!(
            NetworkConfig::from_yaml("CONFIG_NAME: x\n"),
            Err(ConfigError::Missing("PRESET_BASE"))
        );
        assert_eq!(
            NetworkConfig::from_yaml("PRESET_BASE: gnosis\n"),
            Err(ConfigError::UnknownPreset("gnosis".into()))
        );
        let bad_version =
            "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x0102\nSECONDS_PER_SLOT: 6\n";
        assert!(matches!(
            NetworkConfig::from_yaml(bad_version),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            NetworkConfig::from_yaml("  - EPOCH: 1\n"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            NetworkConfig::from_yaml("PRESET_BASE mainnet\n"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
        let devnet = "PRESET_BASE: minimal # small\nGENESIS_FORK_VERSION: 0x00000001\nSECONDS_PER_SLOT: 2\nELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 0\nBLOB_SCHEDULE: []\n";
        let config = NetworkConfig::from_yaml(devnet).expect("minimal devnet");
        assert_eq!(config.preset, PresetBase::Minimal);
        assert_eq!(config.slot_duration(), Duration::from_secs(2));
        assert_eq!(config.fork_at(Epoch(0)), Ok(ForkName::Electra));
        assert_eq!(config.name, "custom");
    }

    #[test]
    fn devnets_start_in_the_chosen_fork() {
        for fork in [
            ForkName::Capella,
            ForkName::Deneb,
            ForkName::Electra,
            ForkName::Fulu,
        ] {
            let config = NetworkConfig::devnet(fork, 1500);
            assert_eq!(config.fork_at(Epoch(0)), Ok(fork));
            assert_eq!(config.fork_at(Epoch(1_000_000)), Ok(fork));
            assert_eq!(config.slot_duration(), Duration::from_millis(1500));
            assert_eq!(config.slots_per_epoch(), 8);
        }
    }
}
