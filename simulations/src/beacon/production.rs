//! What the simulated chain produces for its validators: the attestation
//! data of a slot and committee, the default block of a slot, and the
//! aggregates and contributions of what its pools hold.

use alloy_primitives::U256;
use phalanx_crypto::Signature;
use phalanx_eth::attestation::{Attestation, AttestationData};
use phalanx_eth::block::{
    BeaconBlock, BeaconBlockAltair, BeaconBlockBellatrix, BeaconBlockBodyAltair,
    BeaconBlockBodyBellatrix, BeaconBlockBodyCapella, BeaconBlockBodyDeneb, BeaconBlockBodyElectra,
    BeaconBlockCapella, BeaconBlockDeneb, BeaconBlockElectra, Eth1Data, SyncAggregate,
};
use phalanx_eth::block_contents::{BlockContents, ProducedBlock, ProducedBlockData};
use phalanx_eth::execution::{
    ExecutionPayloadBellatrix, ExecutionPayloadCapella, ExecutionPayloadDeneb, ExecutionRequests,
};
use phalanx_eth::pool::PoolError;
use phalanx_eth::sync_committee::SyncCommitteeContribution;
use phalanx_eth::{
    CommitteeIndex, EthSpec, ExecutionAddress, ForkName, Root, SignatureBytes, Slot, ValidatorIndex,
};
use ssz_types::{BitVector, FixedVector, VariableList};

use super::chain::Chain;
use super::http::ApiError;
use super::node::Node;
use super::{digest, infinity_signature, lock};

/// The execution payload value every produced block claims, in wei.
const EXECUTION_PAYLOAD_VALUE_WEI: u64 = 1_000_000_000_000_000;
/// The consensus block value every produced block claims, in wei.
const CONSENSUS_BLOCK_VALUE_WEI: u64 = 20_000_000_000_000_000;

impl<E: EthSpec> Chain<E> {
    pub(crate) fn attestation_data(&self, slot: Slot, committee_index: u64) -> AttestationData {
        let epoch = self.epoch(slot);
        AttestationData {
            slot,
            index: CommitteeIndex(if self.electra_at(slot) {
                0
            } else {
                committee_index
            }),
            beacon_block_root: self.block_root(slot),
            source: self.source(epoch),
            target: self.checkpoint(epoch),
        }
    }

    /// The default block of `slot`: no operations, an empty sync aggregate
    /// and a deterministic, empty execution payload.
    pub(crate) fn produce_block(
        &self,
        slot: Slot,
        randao_reveal: SignatureBytes,
        graffiti: Root,
        fee_recipient: ExecutionAddress,
    ) -> Result<ProducedBlock<E>, ApiError> {
        let fork = self.fork(slot).map_err(|name| {
            ApiError::BadRequest(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            ))
        })?;
        let proposer_index = self
            .proposer(slot)
            .map(ValidatorIndex)
            .ok_or_else(|| ApiError::BadRequest("the chain has no validators".to_string()))?;
        let parent_root = self.parent_root(slot);
        let state_root = self.state_root(slot);
        let eth1_data = Eth1Data {
            deposit_root: Root::ZERO,
            deposit_count: self.validator_count(),
            block_hash: self.execution_block_hash(Slot(0)),
        };
        let sync_aggregate = SyncAggregate::<E> {
            sync_committee_bits: BitVector::new(),
            sync_committee_signature: infinity_signature(),
        };
        let parent_hash = self.execution_block_hash(Slot(slot.0.saturating_sub(1)));
        let block_hash = self.execution_block_hash(slot);
        let execution_state_root = Root::from(digest(&[
            b"execution state",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]));
        let prev_randao = Root::from(digest(&[
            b"randao mix",
            &self.seed.to_be_bytes(),
            &slot.0.to_be_bytes(),
        ]));
        let timestamp = self.genesis_time + slot.0 * self.slot_ms() / 1000;

        // The payload fields every fork shares; the fork's own follow.
        macro_rules! payload {
            ($payload:ident { $($extra:tt)* }) => {
                $payload {
                    parent_hash,
                    fee_recipient,
                    state_root: execution_state_root,
                    receipts_root: Root::ZERO,
                    logs_bloom: FixedVector::default(),
                    prev_randao,
                    block_number: slot.0,
                    gas_limit: 30_000_000,
                    gas_used: 0,
                    timestamp,
                    extra_data: VariableList::default(),
                    base_fee_per_gas: U256::from(7u64),
                    block_hash,
                    transactions: VariableList::default(),
                    $($extra)*
                }
            };
        }
        macro_rules! body {
            ($body:ident, $payload:expr, { $($extra:tt)* }) => {
                $body::<E> {
                    randao_reveal,
                    eth1_data: eth1_data.clone(),
                    graffiti,
                    proposer_slashings: VariableList::default(),
                    attester_slashings: VariableList::default(),
                    attestations: VariableList::default(),
                    deposits: VariableList::default(),
                    voluntary_exits: VariableList::default(),
                    sync_aggregate: sync_aggregate.clone(),
                    execution_payload: $payload,
                    bls_to_execution_changes: VariableList::default(),
                    $($extra)*
                }
            };
        }
        let electra = || BeaconBlockElectra {
            slot,
            proposer_index,
            parent_root,
            state_root,
            body: body!(
                BeaconBlockBodyElectra,
                payload!(ExecutionPayloadDeneb {
                    withdrawals: VariableList::default(),
                    blob_gas_used: 0,
                    excess_blob_gas: 0,
                }),
                {
                    blob_kzg_commitments: VariableList::default(),
                    execution_requests: ExecutionRequests {
                        deposits: VariableList::default(),
                        withdrawals: VariableList::default(),
                        consolidations: VariableList::default(),
                    },
                }
            ),
        };
        let altair_body = || BeaconBlockBodyAltair::<E> {
            randao_reveal,
            eth1_data: eth1_data.clone(),
            graffiti,
            proposer_slashings: VariableList::default(),
            attester_slashings: VariableList::default(),
            attestations: VariableList::default(),
            deposits: VariableList::default(),
            voluntary_exits: VariableList::default(),
            sync_aggregate: sync_aggregate.clone(),
        };
        let block = match fork {
            ForkName::Altair => BeaconBlock::Altair(BeaconBlockAltair {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: altair_body(),
            }),
            ForkName::Bellatrix => {
                let altair = altair_body();
                BeaconBlock::Bellatrix(BeaconBlockBellatrix {
                    slot,
                    proposer_index,
                    parent_root,
                    state_root,
                    body: BeaconBlockBodyBellatrix {
                        randao_reveal: altair.randao_reveal,
                        eth1_data: altair.eth1_data,
                        graffiti: altair.graffiti,
                        proposer_slashings: altair.proposer_slashings,
                        attester_slashings: altair.attester_slashings,
                        attestations: altair.attestations,
                        deposits: altair.deposits,
                        voluntary_exits: altair.voluntary_exits,
                        sync_aggregate: altair.sync_aggregate,
                        execution_payload: payload!(ExecutionPayloadBellatrix {}),
                    },
                })
            }
            ForkName::Capella => BeaconBlock::Capella(BeaconBlockCapella {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: body!(
                    BeaconBlockBodyCapella,
                    payload!(ExecutionPayloadCapella {
                        withdrawals: VariableList::default(),
                    }),
                    {}
                ),
            }),
            ForkName::Deneb => BeaconBlock::Deneb(BeaconBlockDeneb {
                slot,
                proposer_index,
                parent_root,
                state_root,
                body: body!(
                    BeaconBlockBodyDeneb,
                    payload!(ExecutionPayloadDeneb {
                        withdrawals: VariableList::default(),
                        blob_gas_used: 0,
                        excess_blob_gas: 0,
                    }),
                    { blob_kzg_commitments: VariableList::default(), }
                ),
            }),
            ForkName::Electra => BeaconBlock::Electra(electra()),
            ForkName::Fulu => BeaconBlock::Fulu(electra()),
            older => {
                return Err(ApiError::BadRequest(format!(
                    "slot {slot} is in {older}: the mock produces blocks from Altair on"
                )))
            }
        };
        let data = if fork >= ForkName::Deneb {
            // No blobs are served, so there are no proofs either.
            ProducedBlockData::Contents(BlockContents {
                block,
                kzg_proofs: Vec::new(),
                blobs: Vec::new(),
            })
        } else {
            ProducedBlockData::Full(block)
        };
        Ok(ProducedBlock {
            fork,
            data,
            execution_payload_value: U256::from(EXECUTION_PAYLOAD_VALUE_WEI),
            consensus_block_value: U256::from(CONSENSUS_BLOCK_VALUE_WEI),
        })
    }
}

/// BLS aggregation of pooled signatures, as a beacon node combines them.
fn aggregate_signatures(signatures: &[Signature]) -> Result<SignatureBytes, phalanx_crypto::Error> {
    Signature::aggregate(signatures).map(|s| SignatureBytes::from(s.to_bytes()))
}

/// The pools' failure as the API reports it.
fn pool_error<C: std::fmt::Display>(error: PoolError<C>) -> ApiError {
    match error {
        PoolError::Combine(e) => ApiError::Internal(format!("cannot aggregate: {e}")),
        other => ApiError::Internal(other.to_string()),
    }
}

impl<E: EthSpec> Node<E> {
    /// The aggregate of the attestations pooled over `data_root` at `slot`
    /// in committee `committee_index` (the lowest with any when `None`), in
    /// the layout of the slot's fork.
    pub(super) fn aggregate(
        &self,
        slot: Slot,
        data_root: Root,
        committee_index: Option<u64>,
    ) -> Result<Attestation<E>, ApiError> {
        let pools = lock(&self.pools);
        let pooled = match committee_index {
            Some(index) => pools
                .attestations
                .get(slot, CommitteeIndex(index), data_root)
                .map(|pooled| (CommitteeIndex(index), pooled)),
            None => pools.attestations.find(slot, data_root),
        };
        let Some((committee_index, pooled)) = pooled else {
            return Err(ApiError::NotFound(format!(
                "no attestation with data root {data_root} at slot {slot}{} was received",
                committee_index.map_or(String::new(), |i| format!(" in committee {i}"))
            )));
        };
        pooled
            .aggregate(
                committee_index,
                self.chain.electra_at(slot),
                aggregate_signatures,
            )
            .map_err(pool_error)
    }

    /// The contribution of the sync-committee messages pooled over `root`
    /// at `slot` in subcommittee `subcommittee`.
    pub(super) fn contribution(
        &self,
        slot: Slot,
        root: Root,
        subcommittee: u64,
    ) -> Result<SyncCommitteeContribution<E>, ApiError> {
        lock(&self.pools)
            .sync_messages
            .contribution(slot, root, subcommittee, aggregate_signatures)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no sync-committee message for block {root} at slot {slot} in subcommittee {subcommittee} was received"
                ))
            })?
            .map_err(pool_error)
    }
}
