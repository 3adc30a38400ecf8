//! The simulated chain: a pure function of the seed, the validators and the
//! slot (roots, checkpoints, forks, shufflings, committees, proposers, sync
//! committees and duties), and what the read endpoints report of it.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::api::{AttesterDuty, Fork, ValidatorData, ValidatorRecord};
use phalanx_eth::attestation::Checkpoint;
use phalanx_eth::block::BeaconBlockHeader;
use phalanx_eth::config::{NetworkConfig, PresetBase, FAR_FUTURE_EPOCH};
use phalanx_eth::deposit::ACTIVATION_AMOUNT;
use phalanx_eth::selection::{
    SYNC_COMMITTEE_SUBNET_COUNT, TARGET_AGGREGATORS_PER_COMMITTEE,
    TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE,
};
use phalanx_eth::signing::{
    DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_APPLICATION_BUILDER, DOMAIN_BEACON_ATTESTER,
    DOMAIN_BEACON_PROPOSER, DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_DEPOSIT, DOMAIN_RANDAO,
    DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE, DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
    DOMAIN_VOLUNTARY_EXIT,
};
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, ForkName, Gwei, PublicKeyBytes, Root, SignatureBytes, Slot,
    ValidatorIndex,
};
use serde_json::Value;
use ssz_types::typenum::Unsigned;

use super::http::ApiError;
use super::{
    digest, digest_u64, lock, BeaconMockConfig, ATTESTATION_PROPAGATION_SLOT_RANGE,
    CLOCK_DISPARITY_MS,
};

/// The most committees a slot has in the mock (fits both presets' limits).
const MAX_MOCK_COMMITTEES_PER_SLOT: u64 = 4;
/// Every validator has 32 ETH (the activation amount).
const BALANCE: Gwei = ACTIVATION_AMOUNT;

/// The simulated chain. Nothing here reads the clock: the time is passed in
/// as milliseconds since genesis.
pub(crate) struct Chain<E: EthSpec> {
    pub(super) network: NetworkConfig,
    pub(super) genesis_time: u64,
    pub(super) genesis_validators_root: Root,
    pub(super) seed: u64,
    validators: Vec<PublicKeyBytes>,
    /// Decoded once; `None` for bytes that are not a valid key (nothing
    /// signed by such a validator verifies).
    keys: Vec<Option<PublicKey>>,
    pub(super) indices: HashMap<PublicKeyBytes, u64>,
    /// Recent epochs' shufflings.
    shufflings: Mutex<BTreeMap<u64, Arc<Vec<u64>>>>,
    preset: PhantomData<E>,
}

/// The validators' duties of one epoch, per validator.
pub(crate) type AttesterDuties = HashMap<u64, AttesterDuty>;

impl<E: EthSpec> Chain<E> {
    pub(crate) fn new(config: &BeaconMockConfig) -> Chain<E> {
        let keys = config
            .validators
            .iter()
            .map(|bytes| PublicKey::from_bytes(bytes.as_slice()).ok())
            .collect();
        let indices = config
            .validators
            .iter()
            .zip(0u64..)
            .map(|(key, index)| (*key, index))
            .collect();
        Chain {
            network: config.network.clone(),
            genesis_time: config.genesis_time,
            genesis_validators_root: config.genesis_validators_root,
            seed: config.seed,
            validators: config.validators.clone(),
            keys,
            indices,
            shufflings: Mutex::new(BTreeMap::new()),
            preset: PhantomData,
        }
    }

    pub(super) fn validator_count(&self) -> u64 {
        self.validators.len() as u64
    }

    pub(super) fn slot_ms(&self) -> u64 {
        self.network.slot_duration_ms.max(1)
    }

    pub(super) fn slot_at(&self, ms_since_genesis: u64) -> Slot {
        Slot(ms_since_genesis / self.slot_ms())
    }

    pub(super) fn epoch(&self, slot: Slot) -> Epoch {
        slot.epoch(E::SLOTS_PER_EPOCH)
    }

    pub(super) fn start_slot(&self, epoch: Epoch) -> Slot {
        epoch.start_slot(E::SLOTS_PER_EPOCH)
    }

    /// The fork in force at `slot`, or the name of one this build does not know.
    pub(super) fn fork(&self, slot: Slot) -> Result<ForkName, String> {
        self.network.fork_at_slot(slot).map_err(|unknown| unknown.0)
    }

    pub(super) fn fork_name(&self, slot: Slot) -> String {
        match self.fork(slot) {
            Ok(fork) => fork.to_string(),
            Err(name) => name,
        }
    }

    /// Whether `slot` uses Electra's attestation layout (a fork newer than
    /// this build knows keeps it).
    pub(super) fn electra_at(&self, slot: Slot) -> bool {
        self.network.layout_fork_at_slot(slot).electra_enabled()
    }

    pub(crate) fn block_root(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"block",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    pub(super) fn state_root(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"state",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    pub(super) fn execution_block_hash(&self, slot: Slot) -> Root {
        Root::from(digest(&[
            b"execution block",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]))
    }

    pub(super) fn parent_root(&self, slot: Slot) -> Root {
        match slot.0.checked_sub(1) {
            Some(parent) => self.block_root(Slot(parent)),
            None => Root::ZERO,
        }
    }

    pub(super) fn checkpoint(&self, epoch: Epoch) -> Checkpoint {
        Checkpoint {
            epoch,
            root: self.block_root(self.start_slot(epoch)),
        }
    }

    /// The FFG source of attestations in `epoch`: the previous epoch's
    /// checkpoint, and the zero checkpoint in epoch 0.
    pub(super) fn source(&self, epoch: Epoch) -> Checkpoint {
        match epoch.0.checked_sub(1) {
            Some(previous) => self.checkpoint(Epoch(previous)),
            None => Checkpoint::default(),
        }
    }

    /// (previous justified, current justified, finalized) at `epoch`: the
    /// chain justifies every epoch one epoch later and finalizes it two
    /// epochs later.
    pub(super) fn finality(&self, epoch: Epoch) -> (Checkpoint, Checkpoint, Checkpoint) {
        let previous = self.source(Epoch(epoch.0.saturating_sub(1)));
        let previous = if epoch.0 >= 2 {
            previous
        } else {
            Checkpoint::default()
        };
        (previous, self.source(epoch), previous)
    }

    pub(super) fn is_finalized(&self, slot: Slot, current: Slot) -> bool {
        let (_, _, finalized) = self.finality(self.epoch(current));
        finalized.epoch.0 > 0 && slot <= self.start_slot(finalized.epoch)
    }

    pub(super) fn committees_per_slot(&self) -> u64 {
        (self.validator_count() / (E::SLOTS_PER_EPOCH * 4)).clamp(1, MAX_MOCK_COMMITTEES_PER_SLOT)
    }

    /// Every validator in an order fixed by (seed, epoch): a Fisher–Yates
    /// shuffle drawing from a hash chain.
    fn shuffling(&self, epoch: Epoch) -> Arc<Vec<u64>> {
        if let Some(order) = lock(&self.shufflings).get(&epoch.0) {
            return order.clone();
        }
        let mut order: Vec<u64> = (0..self.validator_count()).collect();
        let mut words: Vec<u64> = Vec::new();
        let mut counter = 0u64;
        for i in (1..order.len()).rev() {
            if words.is_empty() {
                let hash = digest(&[
                    b"shuffle",
                    &self.seed.to_be_bytes(),
                    &epoch.0.to_be_bytes(),
                    &counter.to_be_bytes(),
                ]);
                counter += 1;
                words = hash
                    .chunks_exact(8)
                    .map(|chunk| {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(chunk);
                        u64::from_be_bytes(word)
                    })
                    .collect();
            }
            let draw = words.pop().unwrap_or_default();
            let j = (draw % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let order = Arc::new(order);
        let mut cache = lock(&self.shufflings);
        cache.insert(epoch.0, order.clone());
        while cache.len() > 8 {
            cache.pop_first();
        }
        order
    }

    /// The members of committee `index` at `slot`, in committee order;
    /// `None` if the slot has no such committee.
    pub(super) fn committee(&self, slot: Slot, index: u64) -> Option<Vec<u64>> {
        let per_slot = self.committees_per_slot();
        if index >= per_slot {
            return None;
        }
        let shuffling = self.shuffling(self.epoch(slot));
        let count = E::SLOTS_PER_EPOCH * per_slot;
        let n = shuffling.len() as u64;
        let k = (slot.0 % E::SLOTS_PER_EPOCH) * per_slot + index;
        let start = (n * k / count) as usize;
        let end = (n * (k + 1) / count) as usize;
        Some(shuffling[start..end].to_vec())
    }

    pub(crate) fn attester_duties(&self, epoch: Epoch) -> AttesterDuties {
        let per_slot = self.committees_per_slot();
        let mut duties = HashMap::new();
        for slot in (0..E::SLOTS_PER_EPOCH).map(|i| Slot(self.start_slot(epoch).0 + i)) {
            for index in 0..per_slot {
                let members = self.committee(slot, index).unwrap_or_default();
                for (position, &validator) in members.iter().enumerate() {
                    duties.insert(
                        validator,
                        AttesterDuty {
                            pubkey: self.validators[validator as usize],
                            validator_index: ValidatorIndex(validator),
                            committee_index: CommitteeIndex(index),
                            committee_length: members.len() as u64,
                            committees_at_slot: per_slot,
                            validator_committee_index: position as u64,
                            slot,
                        },
                    );
                }
            }
        }
        duties
    }

    pub(crate) fn proposer(&self, slot: Slot) -> Option<u64> {
        let n = self.validator_count();
        (n > 0).then(|| {
            digest_u64(&[b"proposer", &self.seed.to_be_bytes(), &slot.0.to_be_bytes()]) % n
        })
    }

    fn epochs_per_sync_committee_period(&self) -> u64 {
        match self.network.preset {
            PresetBase::Mainnet => 256,
            PresetBase::Minimal => 8,
        }
    }

    pub(super) fn sync_period(&self, epoch: Epoch) -> u64 {
        epoch.0 / self.epochs_per_sync_committee_period()
    }

    /// The sync committee of a period: each position a hash pick, so a
    /// validator may hold several, as in the spec.
    pub(super) fn sync_committee(&self, period: u64) -> Vec<u64> {
        let n = self.validator_count();
        if n == 0 {
            return Vec::new();
        }
        (0..E::SyncCommitteeSize::to_u64())
            .map(|position| {
                digest_u64(&[
                    b"sync",
                    &self.seed.to_be_bytes(),
                    &period.to_be_bytes(),
                    &position.to_be_bytes(),
                ]) % n
            })
            .collect()
    }

    /// The committee that signs at `slot`: the spec takes it from the
    /// epoch of `slot + 1`, so the last slot of a period is signed by the
    /// next period's committee.
    pub(crate) fn sync_committee_at(&self, slot: Slot) -> Vec<u64> {
        self.sync_committee(self.sync_period(self.epoch(Slot(slot.0 + 1))))
    }

    /// The root attester duties of `epoch` depend on.
    pub(super) fn attester_dependent_root(&self, epoch: Epoch) -> Root {
        match self
            .start_slot(Epoch(epoch.0.saturating_sub(1)))
            .0
            .checked_sub(1)
        {
            Some(slot) if epoch.0 >= 1 => self.block_root(Slot(slot)),
            _ => self.block_root(Slot(0)),
        }
    }

    /// The root proposer duties of `epoch` depend on.
    pub(super) fn proposer_dependent_root(&self, epoch: Epoch) -> Root {
        match self.start_slot(epoch).0.checked_sub(1) {
            Some(slot) => self.block_root(Slot(slot)),
            None => self.block_root(Slot(0)),
        }
    }

    pub(crate) fn pubkey(&self, index: u64) -> Option<PublicKeyBytes> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.validators.get(i))
            .copied()
    }

    fn key(&self, index: u64) -> Option<&PublicKey> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.keys.get(i))
            .and_then(Option::as_ref)
    }

    pub(super) fn verify(
        &self,
        index: u64,
        signing_root: Root,
        signature: &SignatureBytes,
    ) -> bool {
        match (self.key(index), Signature::from_bytes(signature.as_slice())) {
            (Some(key), Ok(signature)) => signature.verify(key, signing_root.as_slice()),
            _ => false,
        }
    }

    pub(super) fn verify_aggregate(
        &self,
        signers: &[u64],
        signing_root: Root,
        signature: &SignatureBytes,
    ) -> bool {
        let keys: Option<Vec<PublicKey>> = signers.iter().map(|&i| self.key(i).copied()).collect();
        match (keys, Signature::from_bytes(signature.as_slice())) {
            (Some(keys), Ok(signature)) => {
                signature.fast_aggregate_verify(signing_root.as_slice(), &keys)
            }
            _ => false,
        }
    }

    /// Why a message for `slot` is out of time, if it is: not yet started
    /// (allowing the gossip clock disparity) or more than `range` slots old.
    pub(super) fn timing(&self, slot: Slot, now_ms: u64, range: u64) -> Option<String> {
        let current = self.slot_at(now_ms);
        let latest = self.slot_at(now_ms + CLOCK_DISPARITY_MS);
        if slot > latest {
            Some(format!(
                "slot {slot} has not started (current slot {current})"
            ))
        } else if slot.0 + range < current.0 {
            Some(format!(
                "slot {slot} is more than {range} slots old (current slot {current})"
            ))
        } else {
            None
        }
    }

    // --- Reads --------------------------------------------------------------

    fn validator_data(&self, index: u64) -> Option<ValidatorData> {
        let pubkey = self.pubkey(index)?;
        let mut withdrawal_credentials = [0u8; 32];
        withdrawal_credentials[0] = 0x01;
        withdrawal_credentials[24..].copy_from_slice(&index.to_be_bytes());
        Some(ValidatorData {
            index: ValidatorIndex(index),
            balance: BALANCE,
            status: "active_ongoing".to_string(),
            validator: ValidatorRecord {
                pubkey,
                withdrawal_credentials: Root::from(withdrawal_credentials),
                effective_balance: BALANCE,
                slashed: false,
                activation_eligibility_epoch: Epoch(0),
                activation_epoch: Epoch(0),
                exit_epoch: FAR_FUTURE_EPOCH,
                withdrawable_epoch: FAR_FUTURE_EPOCH,
            },
        })
    }

    /// The validators `ids` name (indices or `0x` keys; all when empty) with
    /// a status among `statuses` (any when empty). Unknown ones are skipped.
    pub(super) fn select_validators(
        &self,
        ids: &[String],
        statuses: &[String],
    ) -> Result<Vec<ValidatorData>, ApiError> {
        let status_matches = statuses.is_empty()
            || statuses
                .iter()
                .any(|s| s == "active_ongoing" || s == "active");
        if !status_matches {
            return Ok(Vec::new());
        }
        if ids.is_empty() {
            return Ok((0..self.validator_count())
                .filter_map(|i| self.validator_data(i))
                .collect());
        }
        let mut selected = Vec::new();
        for id in ids {
            let index = if id.starts_with("0x") {
                let key = PublicKeyBytes::from_str(id).map_err(|_| {
                    ApiError::BadRequest(format!("validator id {id:?} is not a 48-byte key"))
                })?;
                self.indices.get(&key).copied()
            } else {
                Some(id.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "validator id {id:?} is neither an index nor a 0x public key"
                    ))
                })?)
            };
            if let Some(data) = index.and_then(|i| self.validator_data(i)) {
                selected.push(data);
            }
        }
        Ok(selected)
    }

    /// The fork schedule from genesis, each fork with the version before it.
    pub(super) fn fork_schedule(&self) -> Vec<Fork> {
        let mut schedule = vec![Fork {
            previous_version: self.network.genesis_fork_version,
            current_version: self.network.genesis_fork_version,
            epoch: Epoch(0),
        }];
        for fork in &self.network.forks {
            let previous_version = schedule
                .last()
                .map_or(self.network.genesis_fork_version, |f| f.current_version);
            schedule.push(Fork {
                previous_version,
                current_version: fork.version,
                epoch: fork.epoch,
            });
        }
        schedule
    }

    /// The slot a state or block id names: `head`, `genesis`, `finalized`,
    /// `justified`, a slot, or a recent root (`roots` gives a slot's root).
    pub(super) fn resolve_id(
        &self,
        id: &str,
        now_ms: u64,
        roots: impl Fn(&Chain<E>, Slot) -> Root,
    ) -> Result<Slot, ApiError> {
        let current = self.slot_at(now_ms);
        let (_, justified, finalized) = self.finality(self.epoch(current));
        let slot = match id {
            "head" => current,
            "genesis" => Slot(0),
            "finalized" => self.start_slot(finalized.epoch),
            "justified" => self.start_slot(justified.epoch),
            hex if hex.starts_with("0x") => {
                let root = Root::from_str(hex)
                    .map_err(|_| ApiError::BadRequest(format!("{hex:?} is not a 32-byte root")))?;
                let recent = current
                    .0
                    .saturating_sub(2 * ATTESTATION_PROPAGATION_SLOT_RANGE);
                return (recent..=current.0)
                    .rev()
                    .chain([0])
                    .map(Slot)
                    .find(|&slot| roots(self, slot) == root)
                    .ok_or_else(|| ApiError::NotFound(format!("no recent block or state {root}")));
            }
            number => Slot(number.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "{number:?} is not head, genesis, finalized, justified, a slot or a root"
                ))
            })?),
        };
        if slot > current {
            return Err(ApiError::NotFound(format!(
                "slot {slot} is after the head (slot {current})"
            )));
        }
        Ok(slot)
    }

    pub(super) fn header(&self, slot: Slot) -> BeaconBlockHeader {
        BeaconBlockHeader {
            slot,
            proposer_index: ValidatorIndex(self.proposer(slot).unwrap_or_default()),
            parent_root: self.parent_root(slot),
            state_root: self.state_root(slot),
            body_root: Root::from(digest(&[
                b"body",
                &self.seed.to_be_bytes(),
                &slot.0.to_be_bytes(),
            ])),
        }
    }

    /// The `data` of `/eth/v1/config/spec`: the network config, the preset
    /// values validator clients use, and the spec constants.
    pub(super) fn spec(&self) -> serde_json::Map<String, Value> {
        let mut data = self.network.to_spec_json();
        let minimal = self.network.preset == PresetBase::Minimal;
        let pick = |mainnet: u64, minimal_value: u64| {
            if minimal {
                minimal_value
            } else {
                mainnet
            }
        };
        let numbers: [(&str, u64); 22] = [
            ("SLOTS_PER_EPOCH", E::SLOTS_PER_EPOCH),
            ("MAX_COMMITTEES_PER_SLOT", E::MaxCommitteesPerSlot::to_u64()),
            ("TARGET_COMMITTEE_SIZE", pick(128, 4)),
            (
                "MAX_VALIDATORS_PER_COMMITTEE",
                E::MaxValidatorsPerCommittee::to_u64(),
            ),
            ("SHUFFLE_ROUND_COUNT", pick(90, 10)),
            ("MIN_SEED_LOOKAHEAD", 1),
            ("MAX_SEED_LOOKAHEAD", 4),
            ("EPOCHS_PER_ETH1_VOTING_PERIOD", pick(64, 4)),
            ("SLOTS_PER_HISTORICAL_ROOT", pick(8192, 64)),
            ("MAX_EFFECTIVE_BALANCE", BALANCE.0),
            ("EFFECTIVE_BALANCE_INCREMENT", 1_000_000_000),
            ("SYNC_COMMITTEE_SIZE", E::SyncCommitteeSize::to_u64()),
            (
                "EPOCHS_PER_SYNC_COMMITTEE_PERIOD",
                self.epochs_per_sync_committee_period(),
            ),
            (
                "MAX_WITHDRAWALS_PER_PAYLOAD",
                E::MaxWithdrawalsPerPayload::to_u64(),
            ),
            (
                "MAX_BLOB_COMMITMENTS_PER_BLOCK",
                E::MaxBlobCommitmentsPerBlock::to_u64(),
            ),
            (
                "TARGET_AGGREGATORS_PER_COMMITTEE",
                TARGET_AGGREGATORS_PER_COMMITTEE,
            ),
            (
                "TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE",
                TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE,
            ),
            ("SYNC_COMMITTEE_SUBNET_COUNT", SYNC_COMMITTEE_SUBNET_COUNT),
            ("INTERVALS_PER_SLOT", 3),
            ("SHARD_COMMITTEE_PERIOD", pick(256, 64)),
            ("MIN_VALIDATOR_WITHDRAWABILITY_DELAY", 256),
            ("FAR_FUTURE_EPOCH", FAR_FUTURE_EPOCH.0),
        ];
        for (key, value) in numbers {
            data.insert(key.to_string(), Value::String(value.to_string()));
        }
        let domains = [
            ("DOMAIN_BEACON_PROPOSER", DOMAIN_BEACON_PROPOSER),
            ("DOMAIN_BEACON_ATTESTER", DOMAIN_BEACON_ATTESTER),
            ("DOMAIN_RANDAO", DOMAIN_RANDAO),
            ("DOMAIN_DEPOSIT", DOMAIN_DEPOSIT),
            ("DOMAIN_VOLUNTARY_EXIT", DOMAIN_VOLUNTARY_EXIT),
            ("DOMAIN_SELECTION_PROOF", DOMAIN_SELECTION_PROOF),
            ("DOMAIN_AGGREGATE_AND_PROOF", DOMAIN_AGGREGATE_AND_PROOF),
            ("DOMAIN_SYNC_COMMITTEE", DOMAIN_SYNC_COMMITTEE),
            (
                "DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF",
                DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
            ),
            (
                "DOMAIN_CONTRIBUTION_AND_PROOF",
                DOMAIN_CONTRIBUTION_AND_PROOF,
            ),
            ("DOMAIN_APPLICATION_BUILDER", DOMAIN_APPLICATION_BUILDER),
        ];
        for (key, value) in domains {
            data.insert(key.to_string(), Value::String(value.to_string()));
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use phalanx_eth::devnet::Devnet;
    use phalanx_eth::MinimalEthSpec;

    fn chain(validators: usize, seed: u64) -> Chain<MinimalEthSpec> {
        let keys = (0..validators)
            .map(|i| PublicKeyBytes::from([i as u8; 48]))
            .collect();
        Chain::new(&BeaconMockConfig {
            network: Devnet::new(ForkName::Electra, 1000).build(),
            genesis_time: 0,
            genesis_validators_root: Root::repeat_byte(7),
            validators: keys,
            seed,
            record: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
    }

    #[test]
    fn committees_partition_every_epoch() {
        for n in [0usize, 1, 7, 64, 200] {
            let chain = chain(n, 3);
            for epoch in [Epoch(0), Epoch(5)] {
                let mut seen = vec![0u32; n];
                for i in 0..MinimalEthSpec::SLOTS_PER_EPOCH {
                    let slot = Slot(chain.start_slot(epoch).0 + i);
                    for index in 0..chain.committees_per_slot() {
                        for member in chain.committee(slot, index).unwrap_or_default() {
                            seen[member as usize] += 1;
                        }
                    }
                }
                assert!(seen.iter().all(|&count| count == 1), "n = {n}");
                assert_eq!(chain.attester_duties(epoch).len(), n);
            }
        }
    }

    #[test]
    fn the_seed_fixes_the_chain() {
        let (a, b, c) = (chain(64, 1), chain(64, 1), chain(64, 2));
        assert_eq!(a.shuffling(Epoch(3)), b.shuffling(Epoch(3)));
        assert_ne!(a.shuffling(Epoch(3)), c.shuffling(Epoch(3)));
        assert_ne!(a.shuffling(Epoch(3)), a.shuffling(Epoch(4)));
        assert_eq!(a.sync_committee(0), b.sync_committee(0));
        assert_eq!(a.sync_committee(0).len(), 32);
        let expected = digest(&[b"block", &1u64.to_be_bytes(), &9u64.to_be_bytes()]);
        assert_eq!(a.block_root(Slot(9)), Root::from(expected));
        assert_eq!(a.committees_per_slot(), 2);
        assert_eq!(chain(10_000, 1).committees_per_slot(), 4);
    }

    #[test]
    fn attestation_data_follows_the_checkpoints() {
        let chain = chain(64, 1);
        let data = chain.attestation_data(Slot(3), 1);
        assert_eq!(data.source, Checkpoint::default());
        assert_eq!(data.index, CommitteeIndex(0), "electra at genesis");
        let data = chain.attestation_data(Slot(19), 1);
        assert_eq!(data.target, chain.checkpoint(Epoch(2)));
        assert_eq!(data.source.root, chain.block_root(Slot(8)));
        assert_eq!(data.beacon_block_root, chain.block_root(Slot(19)));
    }

    #[test]
    fn timing_allows_the_clock_disparity_and_the_propagation_range() {
        let chain = chain(8, 1);
        // 10.6 s after genesis: slot 10, and 11 starts within the disparity.
        assert_eq!(chain.timing(Slot(11), 10_600, 32), None);
        assert!(chain.timing(Slot(12), 10_600, 32).is_some());
        assert_eq!(chain.timing(Slot(9), 10_600, 1), None);
        assert!(chain.timing(Slot(8), 10_600, 1).is_some());
    }
}
