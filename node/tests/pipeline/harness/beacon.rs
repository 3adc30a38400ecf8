//! The simulated beacon node: the cluster's duties, the attestation data
//! of a slot, aggregates, sync-committee contributions and blocks, all
//! made up deterministically from the slot.

use std::convert::Infallible;

use phalanx_crypto::PublicKey;
use phalanx_eth::api::AttesterDuty;
use phalanx_eth::attestation::{Attestation, AttestationData, Checkpoint};
use phalanx_eth::block::BeaconBlock;
use phalanx_eth::block_contents::{
    Blob, BlockContents, KzgProof, ProducedBlock, ProducedBlockData, BYTES_PER_BLOB,
};
use phalanx_eth::pool::{AttestationPool, ContributionPool};
use phalanx_eth::sync_committee::SyncCommitteeContribution;
use phalanx_eth::{
    CommitteeIndex, Epoch, EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot,
    ValidatorIndex,
};
use ssz_types::typenum::Unsigned;
use tree_hash::TreeHash;

use super::{Spec, SLOTS_PER_EPOCH};

/// The index of the cluster's first validator on the chain.
const FIRST_INDEX: u64 = 100;

/// The chain's index of the cluster's validator `i`.
pub(crate) fn validator_index(i: usize) -> ValidatorIndex {
    ValidatorIndex(FIRST_INDEX + i as u64)
}

/// The cluster's validator of a chain index.
pub(crate) fn validator_position(index: ValidatorIndex) -> usize {
    (index.0 - FIRST_INDEX) as usize
}

/// A signature the simulated beacon node puts where nobody checks one.
pub(crate) fn placeholder_signature() -> SignatureBytes {
    SignatureBytes::from([0xc0; 96])
}

pub(crate) fn data_for(slot: Slot, committee: CommitteeIndex, electra: bool) -> AttestationData {
    let epoch = slot.epoch(SLOTS_PER_EPOCH);
    AttestationData {
        slot,
        index: if electra {
            CommitteeIndex(0)
        } else {
            committee
        },
        beacon_block_root: Root::repeat_byte(slot.0 as u8),
        source: Checkpoint {
            epoch: Epoch(epoch.0.saturating_sub(1)),
            root: Root::repeat_byte(1),
        },
        target: Checkpoint {
            epoch,
            root: Root::repeat_byte(2),
        },
    }
}

/// Attester duty of validator i: slot i mod 8 of the epoch, committee i mod 2.
pub(crate) fn duties(epoch: Epoch, groups: &[PublicKey]) -> Vec<AttesterDuty> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| AttesterDuty {
            pubkey: PublicKeyBytes::from(g.to_bytes()),
            validator_index: validator_index(i),
            committee_index: CommitteeIndex(i as u64 % 2),
            committee_length: 16,
            committees_at_slot: 2,
            validator_committee_index: i as u64,
            slot: Slot(epoch.0 * SLOTS_PER_EPOCH + i as u64 % SLOTS_PER_EPOCH),
        })
        .collect()
}

/// A contribution of the first member of a sync subcommittee, built by a
/// beacon node's pool from that member's message.
pub(crate) fn contribution(
    slot: Slot,
    head: Root,
    subcommittee_index: u64,
) -> SyncCommitteeContribution<Spec> {
    let mut pool = ContributionPool::new();
    let first = subcommittee_index * <Spec as EthSpec>::SyncSubcommitteeSize::to_u64();
    pool.insert::<Spec>(slot, head, first, placeholder_signature());
    pool.contribution::<Spec, Infallible>(slot, head, subcommittee_index, |_| {
        Ok(placeholder_signature())
    })
    .expect("the member's message is pooled")
    .expect("one bit of the subcommittee")
}

/// An aggregate of the first three members of a committee of 16, built by
/// a beacon node's pool from their attestations.
pub(crate) fn aggregate_of(
    data: AttestationData,
    committee: CommitteeIndex,
    electra: bool,
) -> Attestation<Spec> {
    let mut pool = AttestationPool::new();
    for position in 0..3 {
        pool.insert(data, committee, 16, position, placeholder_signature());
    }
    pool.get(data.slot, committee, data.tree_hash_root())
        .expect("the members' attestations are pooled")
        .aggregate::<Spec, Infallible>(committee, electra, |_| Ok(placeholder_signature()))
        .expect("three bits of a committee of 16")
}

/// A block of `fork` as a beacon node would produce it: from Deneb on with
/// one (zero) blob, from Bellatrix on with a pre-merge payload.
pub(crate) fn block_at(
    fork: ForkName,
    slot: Slot,
    proposer: ValidatorIndex,
    randao: SignatureBytes,
    graffiti: Option<Root>,
) -> ProducedBlock<Spec> {
    let zero = Root::ZERO;
    let mut body = serde_json::json!({
        "randao_reveal": randao,
        "eth1_data": {"deposit_root": zero, "deposit_count": "0", "block_hash": zero},
        "graffiti": graffiti.unwrap_or(zero),
        "proposer_slashings": [],
        "attester_slashings": [],
        "attestations": [],
        "deposits": [],
        "voluntary_exits": [],
    });
    let mut payload = serde_json::json!({
        "parent_hash": zero,
        "fee_recipient": "0x0000000000000000000000000000000000000000",
        "state_root": zero,
        "receipts_root": zero,
        "logs_bloom": format!("0x{}", "00".repeat(256)),
        "prev_randao": zero,
        "block_number": slot.0.to_string(),
        "gas_limit": "30000000",
        "gas_used": "0",
        "timestamp": "0",
        "extra_data": "0x",
        "base_fee_per_gas": "7",
        "block_hash": zero,
        "transactions": [],
    });
    if fork >= ForkName::Altair {
        body["sync_aggregate"] = serde_json::json!({
            "sync_committee_bits": format!("0x{}", "00".repeat(4)),
            "sync_committee_signature": placeholder_signature(),
        });
    }
    if fork >= ForkName::Capella {
        payload["withdrawals"] = serde_json::json!([]);
    }
    if fork >= ForkName::Deneb {
        payload["blob_gas_used"] = serde_json::json!("0");
        payload["excess_blob_gas"] = serde_json::json!("0");
    }
    if fork >= ForkName::Bellatrix {
        body["execution_payload"] = payload;
    }
    if fork >= ForkName::Capella {
        body["bls_to_execution_changes"] = serde_json::json!([]);
    }
    if fork >= ForkName::Deneb {
        body["blob_kzg_commitments"] = serde_json::json!([format!("0x{}", "c0".repeat(48))]);
    }
    if fork >= ForkName::Electra {
        body["execution_requests"] =
            serde_json::json!({"deposits": [], "withdrawals": [], "consolidations": []});
    }
    let block = serde_json::json!({
        "slot": slot.0.to_string(),
        "proposer_index": proposer.0.to_string(),
        "parent_root": Root::repeat_byte(slot.0 as u8),
        "state_root": zero,
        "body": body,
    });
    let block = BeaconBlock::from_json_value(block, fork).expect("a block of the fork");
    let data = if fork >= ForkName::Deneb {
        ProducedBlockData::Contents(BlockContents {
            block,
            kzg_proofs: vec![KzgProof::from([0xc0; 48])],
            blobs: vec![Blob(ssz_types::FixedVector::from(vec![
                0u8;
                BYTES_PER_BLOB
            ]))],
        })
    } else {
        ProducedBlockData::Full(block)
    };
    ProducedBlock {
        fork,
        data,
        execution_payload_value: Default::default(),
        consensus_block_value: Default::default(),
    }
}
