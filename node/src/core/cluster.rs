//! What the core knows of its cluster and chain, fixed for its lifetime:
//! this operator, the validators with their group keys and shares, the
//! network and its clock. It answers the questions every part asks: the
//! slot at a time, a duty's window, the fork at a slot, this operator's
//! share of a validator.

use std::collections::BTreeMap;
use std::time::Duration;

use phalanx_consensus::{Committee, OperatorIndex};
use phalanx_crypto::threshold::ShareIndex;
use phalanx_eth::config::{NetworkConfig, UnknownFork};
use phalanx_eth::{ForkName, PublicKeyBytes, Root, Slot};

use super::types::{CoreConfig, Defects, ValidatorKeys};
use crate::duty::DutyType;
use crate::error::CoreError;
use crate::scheme::SignatureScheme;
use crate::timing::duty_timing;

/// The cluster and chain a core serves.
pub(super) struct Cluster<S: SignatureScheme> {
    /// This operator (share index − 1).
    pub(super) me: OperatorIndex,
    pub(super) network: NetworkConfig,
    pub(super) genesis_time_ms: u64,
    pub(super) genesis_validators_root: Root,
    pub(super) slot_ms: u64,
    pub(super) slots_per_epoch: u64,
    pub(super) validators: Vec<ValidatorKeys<S>>,
    /// The validators' group keys, by cluster index.
    pub(super) group_bytes: Vec<PublicKeyBytes>,
    /// The cluster index of each group key.
    pub(super) by_group: BTreeMap<PublicKeyBytes, usize>,
    pub(super) defects: Defects,
    /// The largest consensus message the network's blocks make.
    pub(super) max_consensus_message: usize,
}

impl<S: SignatureScheme> Cluster<S> {
    /// Checks that the cluster fits together; gives the cluster, its
    /// consensus committee and the rest of the configuration.
    pub(super) fn new(config: CoreConfig<S>) -> Result<(Cluster<S>, Committee, Rest), CoreError> {
        let operators = config.validators.first().map_or(0, |v| v.shares.len());
        if config
            .validators
            .iter()
            .any(|v| v.shares.len() != operators)
        {
            return Err(CoreError::SharesDiffer);
        }
        let operators = u32::try_from(operators).map_err(|_| CoreError::TooManyOperators)?;
        if config.me.0 >= operators {
            return Err(CoreError::NotAnOperator {
                me: config.me,
                operators,
            });
        }
        if config.threshold == 0 || config.threshold > operators as usize {
            return Err(CoreError::Threshold {
                threshold: config.threshold,
                operators,
            });
        }
        let committee = Committee::new(operators)?;
        let group_bytes: Vec<PublicKeyBytes> = config
            .validators
            .iter()
            .map(|v| S::public_key_bytes(&v.group))
            .collect();
        let by_group = group_bytes
            .iter()
            .enumerate()
            .map(|(i, key)| (*key, i))
            .collect();
        let rest = Rest {
            threshold: config.threshold,
            seed: config.seed,
            graffiti: config.graffiti,
            builder_api: config.builder_api,
        };
        let cluster = Cluster {
            me: config.me,
            slot_ms: config.network.slot_ms(),
            slots_per_epoch: config.network.slots_per_epoch(),
            max_consensus_message: crate::qbft::consensus_protocol(
                config.network.max_blobs_per_block_ever(),
            )
            .max_size,
            network: config.network,
            genesis_time_ms: config.genesis_time_ms,
            genesis_validators_root: config.genesis_validators_root,
            validators: config.validators,
            group_bytes,
            by_group,
            defects: config.defects,
        };
        Ok((cluster, committee, rest))
    }

    /// The start of `slot` in Unix milliseconds.
    pub(super) fn slot_start_ms(&self, slot: Slot) -> u64 {
        self.network.slot_start_ms(self.genesis_time_ms, slot)
    }

    /// The slot at `now_ms` (slot 0 before genesis).
    pub(super) fn slot_at(&self, now_ms: u64) -> Slot {
        self.network.slot_at_ms(self.genesis_time_ms, now_ms)
    }

    /// When a duty of `kind` at `slot` starts and its deadline, in Unix
    /// milliseconds (from the timing module).
    pub(super) fn window(&self, slot: Slot, kind: DutyType) -> (u64, u64) {
        let slot_duration = Duration::from_millis(self.slot_ms);
        let spe = u32::try_from(self.slots_per_epoch).unwrap_or(32);
        let start_ms = self.slot_start_ms(slot);
        let timing = duty_timing(kind, slot_duration, spe);
        (
            start_ms + timing.start.as_millis() as u64,
            start_ms + timing.deadline.as_millis() as u64,
        )
    }

    /// The fork at `slot`; nothing is decided or signed in a fork unknown
    /// to this build.
    pub(super) fn fork(&self, slot: Slot) -> Result<ForkName, UnknownFork> {
        self.network.fork_at_slot(slot)
    }

    /// This operator's share index and public share of a validator.
    pub(super) fn own_share(&self, cluster_index: usize) -> (ShareIndex, &S::PublicKey) {
        let index = ShareIndex::new(u64::from(self.me.0) + 1).unwrap_or_else(|_| unreachable!());
        (
            index,
            &self.validators[cluster_index].shares[self.me.as_usize()],
        )
    }
}

/// The parts of the configuration other parts of the core take over.
pub(super) struct Rest {
    pub(super) threshold: usize,
    pub(super) seed: [u8; 32],
    pub(super) graffiti: Option<Root>,
    pub(super) builder_api: bool,
}
