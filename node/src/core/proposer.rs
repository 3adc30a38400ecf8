//! Block proposals.
//!
//! The validator client asks for a block with its share's randao reveal.
//! The reveal is verified, exchanged and combined like any partial; with
//! the combined reveal every node asks its own beacon node for a block, the
//! cluster agrees on one (its blobs travel once, inside the value), and
//! every validator client gets the decided block to sign. The signed
//! partials combine into the block's signature, and the block (with its
//! blobs, or blinded) goes to the beacon node.

use phalanx_eth::signing::roots;
use std::collections::{BTreeMap, BTreeSet};

use phalanx_consensus as qbft;
use phalanx_eth::block::BeaconBlock;
use phalanx_eth::block::BlindedBeaconBlock;
use phalanx_eth::block_contents::{
    Blob, BlockContents, KzgProof, ProducedBlock, ProducedBlockData, Signed, SignedBlockContents,
};
use phalanx_eth::{EthSpec, ExecutionAddress, ForkName, PublicKeyBytes, Root, Slot};
use phalanx_eth::{SignatureBytes, ValidatorIndex};
use ssz_types::FixedVector;

use super::consensus::DutyValidity;
use super::partials::OwnPartial;
use super::submit::Built;
use super::types::{Action, ApiFailure, Submission, VcResponse};
use super::Core;
use crate::duty::{Duty, DutyType};
use crate::error::InvalidValue;
use crate::scheme::SignatureScheme;
use crate::slashing::Safety;
use crate::tracker::Failure;
use crate::value::{decode_entries, encode_entries, DutyValue};

use phalanx_eth::block_contents::{BYTES_PER_BLOB as BLOB_LEN, BYTES_PER_PROOF as PROOF_LEN};

/// A signed block in the form it is published.
#[derive(Clone, Debug)]
pub enum BlockSubmission<E: EthSpec> {
    /// Capella: the signed block alone.
    Full(Box<Signed<BeaconBlock<E>>>),
    /// Deneb on: the signed block with its blobs and proofs.
    Contents(Box<SignedBlockContents<E>>),
    /// A signed blinded block (the builder reveals the payload).
    Blinded(Box<Signed<BlindedBeaconBlock<E>>>),
}

/// A validator client waiting for the decided block.
#[derive(Debug)]
pub(super) struct PendingBlock {
    pub id: u64,
    pub deadline_ms: u64,
    pub slot: Slot,
}

/// A block request that came before the epoch's proposers were known.
#[derive(Debug)]
pub(super) struct EarlyBlock {
    pub id: u64,
    pub slot: Slot,
    pub randao_reveal: SignatureBytes,
    pub wishes: BlockWishes,
}

/// What the validator client asked the block to carry.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BlockWishes {
    pub graffiti: Option<Root>,
    pub builder_boost_factor: Option<u64>,
}

/// The consensus value of a block: its kind, values and fork, the block,
/// and (Deneb on, full blocks) its proofs and blobs.
pub fn encode_block<E: EthSpec>(block: &ProducedBlock<E>) -> DutyValue {
    let (kind, bytes, proofs, blobs) = match &block.data {
        ProducedBlockData::Full(b) => (0u8, b.as_ssz_bytes(), Vec::new(), Vec::new()),
        ProducedBlockData::Contents(c) => (
            1u8,
            c.block.as_ssz_bytes(),
            c.kzg_proofs.iter().flat_map(|p| p.to_vec()).collect(),
            c.blobs.iter().flat_map(|b| b.0.to_vec()).collect(),
        ),
        ProducedBlockData::Blinded(b) => (2u8, b.as_ssz_bytes(), Vec::new(), Vec::new()),
    };
    let mut head = vec![kind];
    head.extend_from_slice(&block.execution_payload_value.to_le_bytes::<32>());
    head.extend_from_slice(&block.consensus_block_value.to_le_bytes::<32>());
    head.extend_from_slice(block.fork.as_str().as_bytes());
    encode_entries(&[(0, head), (1, bytes), (2, proofs), (3, blobs)])
}

/// Decodes [`encode_block`]'s bytes.
pub fn decode_block<E: EthSpec>(value: &DutyValue) -> Result<ProducedBlock<E>, String> {
    let entries = decode_entries(value)?;
    let [(0, head), (1, bytes), (2, proofs), (3, blobs)] = entries.as_slice() else {
        return Err("a block value has four entries".into());
    };
    if head.len() < 65 {
        return Err("the block value's head is cut short".into());
    }
    let fork: ForkName = std::str::from_utf8(&head[65..])
        .map_err(|_| "the fork name is not UTF-8".to_string())?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let value_at = |at: usize| {
        let mut word = [0u8; 32];
        word.copy_from_slice(&head[at..at + 32]);
        alloy_primitives::U256::from_le_bytes(word)
    };
    let data = match head[0] {
        0 => ProducedBlockData::Full(
            BeaconBlock::from_ssz_bytes(bytes, fork).map_err(|e| e.to_string())?,
        ),
        1 => {
            if proofs.len() % PROOF_LEN != 0 || blobs.len() % BLOB_LEN != 0 {
                return Err("proofs or blobs are cut short".into());
            }
            ProducedBlockData::Contents(BlockContents {
                block: BeaconBlock::from_ssz_bytes(bytes, fork).map_err(|e| e.to_string())?,
                kzg_proofs: proofs
                    .chunks_exact(PROOF_LEN)
                    .map(KzgProof::from_slice)
                    .collect(),
                blobs: blobs
                    .chunks_exact(BLOB_LEN)
                    .map(|b| FixedVector::new(b.to_vec()).map(Blob))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("blob: {e:?}"))?,
            })
        }
        2 => ProducedBlockData::Blinded(
            BlindedBeaconBlock::from_ssz_bytes(bytes, fork).map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("unknown block kind {other}")),
    };
    Ok(ProducedBlock {
        fork,
        data,
        execution_payload_value: value_at(1),
        consensus_block_value: value_at(33),
    })
}

/// The block's slot, proposer, randao reveal, root, payload fee recipient
/// and block hash, and whether it is blinded.
pub(super) struct BlockFacts {
    pub slot: Slot,
    pub proposer: ValidatorIndex,
    pub randao: SignatureBytes,
    pub root: Root,
    pub fee_recipient: ExecutionAddress,
    pub block_hash: Root,
    pub blinded: bool,
    pub blobs: usize,
    pub proofs: usize,
}

pub(super) fn facts<E: EthSpec>(block: &ProducedBlock<E>) -> BlockFacts {
    match &block.data {
        ProducedBlockData::Full(b) => full_facts(b, 0, 0),
        ProducedBlockData::Contents(c) => full_facts(&c.block, c.blobs.len(), c.kzg_proofs.len()),
        ProducedBlockData::Blinded(b) => {
            let (fee_recipient, block_hash) = b.fee_recipient_and_block_hash();
            BlockFacts {
                slot: b.slot(),
                proposer: b.proposer_index(),
                randao: b.randao_reveal(),
                root: b.tree_hash_root(),
                fee_recipient,
                block_hash,
                blinded: true,
                blobs: 0,
                proofs: 0,
            }
        }
    }
}

fn full_facts<E: EthSpec>(b: &BeaconBlock<E>, blobs: usize, proofs: usize) -> BlockFacts {
    let (fee_recipient, block_hash) = b.fee_recipient_and_block_hash();
    BlockFacts {
        slot: b.slot(),
        proposer: b.proposer_index(),
        randao: b.randao_reveal(),
        root: b.tree_hash_root(),
        fee_recipient,
        block_hash,
        blinded: false,
        blobs,
        proofs,
    }
}

/// What consensus checks of a proposed block: the slot, the cluster's
/// proposer, a randao reveal that verifies under the proposer's group key,
/// the lock's fee recipient in a local payload, proofs matching the blobs,
/// and that the group key never signed another block at this slot.
pub(super) fn check_block<E: EthSpec, S: SignatureScheme>(
    slot: Slot,
    value: &DutyValue,
    core: &DutyValidity<'_, E, S>,
) -> Result<(), InvalidValue> {
    let block = decode_block::<E>(value).map_err(InvalidValue::Malformed)?;
    let facts = facts(&block);
    if facts.slot != slot {
        return Err(InvalidValue::BlockSlot {
            found: facts.slot,
            slot,
        });
    }
    let shared = core.scheduler;
    let Some(proposer) = shared.proposers.get(&slot) else {
        return Err(InvalidValue::NoProposer(slot));
    };
    if proposer.index != facts.proposer {
        return Err(InvalidValue::OtherProposer {
            found: facts.proposer,
            expected: proposer.index,
        });
    }
    let epoch = slot.epoch(core.network.slots_per_epoch());
    let randao_root = roots::randao(core.network, core.genesis_validators_root, epoch);
    let verified = S::decode_signature(facts.randao.as_slice())
        .map(|s| S::verify(&proposer.group, randao_root.as_slice(), &s))
        .unwrap_or(false);
    if !verified {
        return Err(InvalidValue::RandaoReveal);
    }
    if !facts.blinded && facts.block_hash != Root::ZERO {
        if let Some(expected) = proposer.fee_recipient {
            if facts.fee_recipient != expected {
                return Err(InvalidValue::FeeRecipient {
                    found: facts.fee_recipient,
                    expected,
                });
            }
        }
    }
    let per_blob = if block.fork >= ForkName::Fulu { 128 } else { 1 };
    if facts.proofs != facts.blobs * per_blob {
        return Err(InvalidValue::ProofsForBlobs {
            proofs: facts.proofs,
            blobs: facts.blobs,
        });
    }
    let root = roots::block(core.network, core.genesis_validators_root, slot, facts.root);
    core.slashing
        .check_block(&proposer.key, slot, root)
        .map_err(InvalidValue::SlashableBlock)?;
    Ok(())
}

/// The cluster's proposer of a slot, as the validity check needs it.
#[derive(Clone, Debug)]
pub(super) struct Proposer<S: SignatureScheme> {
    pub index: ValidatorIndex,
    pub key: PublicKeyBytes,
    pub group: S::PublicKey,
    pub fee_recipient: Option<ExecutionAddress>,
}

/// The proposer duty's own state: the combined randao reveals and what
/// the validator client asked the block to carry.
pub(super) struct Proposals<S: SignatureScheme> {
    /// The graffiti of the cluster's blocks when the client asks for none.
    graffiti: Option<Root>,
    pub(super) randao: BTreeMap<Slot, S::Signature>,
    pub(super) block_wishes: BTreeMap<Slot, BlockWishes>,
    /// Slots whose block was asked for (once).
    fetched_blocks: BTreeSet<Slot>,
}

impl<S: SignatureScheme> Proposals<S> {
    pub(super) fn new(graffiti: Option<Root>) -> Proposals<S> {
        Proposals {
            graffiti,
            randao: BTreeMap::new(),
            block_wishes: BTreeMap::new(),
            fetched_blocks: BTreeSet::new(),
        }
    }

    /// Forgets slots before `keep`.
    pub(super) fn prune(&mut self, keep: Slot) {
        self.randao = self.randao.split_off(&keep);
        self.block_wishes = self.block_wishes.split_off(&keep);
        self.fetched_blocks = self.fetched_blocks.split_off(&keep);
    }
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Starts the slot's proposer duty at its time when a cluster validator
    /// proposes.
    pub(super) fn start_proposer(&mut self, now_ms: u64, slot: Slot, actions: &mut Vec<Action<E>>) {
        let proposal = Duty::new(slot, DutyType::Proposer);
        let (start, deadline) = self.cluster.window(slot, DutyType::Proposer);
        if now_ms >= start && now_ms < deadline && !self.scheduler.started.contains(&proposal) {
            let proposer = self.scheduler.proposers.get(&slot).map(|p| p.key);
            if let Some(key) = proposer {
                self.scheduler.started.insert(proposal);
                self.tracker.started(proposal, deadline);
                self.tracker.expect(&proposal, [key]);
                // Every node takes part in the decision, also one whose
                // validator client is slow to send its randao reveal: its
                // own block, once fetched, becomes its input then.
                self.run_consensus(qbft::Event::Join { instance: proposal }, actions);
            }
        }
    }

    /// A validator client asks for a block: its randao reveal is checked
    /// and shared, and the request waits for the decided block.
    pub(super) fn on_vc_produce_block(
        &mut self,
        now_ms: u64,
        id: u64,
        slot: Slot,
        randao_reveal: SignatureBytes,
        wishes: BlockWishes,
        actions: &mut Vec<Action<E>>,
    ) {
        let reply = |result| Action::Reply { id, result };
        if let Some(block) = self.dutydb.block(slot) {
            actions.push(reply(Ok(VcResponse::Block(Box::new(block.clone())))));
            return;
        }
        let Some(proposer) = self.scheduler.proposers.get(&slot).cloned() else {
            let epoch = slot.epoch(self.cluster.slots_per_epoch);
            let current = self
                .cluster
                .slot_at(now_ms)
                .epoch(self.cluster.slots_per_epoch);
            if epoch == current && !self.scheduler.proposers_resolved.contains(&epoch) {
                // Asked at the epoch's start, before the node's own lookup
                // of the proposers came back: taken up when it does.
                self.vc.early_blocks.push(EarlyBlock {
                    id,
                    slot,
                    randao_reveal,
                    wishes,
                });
                return;
            }
            actions.push(reply(Err(ApiFailure::new(
                400,
                format!("no validator of this cluster proposes at slot {slot}"),
            ))));
            return;
        };
        let deadline_ms = self.cluster.slot_start_ms(Slot(slot.0 + 1));
        if now_ms >= deadline_ms {
            actions.push(reply(Err(ApiFailure::new(
                400,
                format!("slot {slot} is over"),
            ))));
            return;
        }
        let cluster_index = self.cluster.by_group[&proposer.key];
        let root = roots::randao(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            slot.epoch(self.cluster.slots_per_epoch),
        );
        let mut outgoing = Vec::new();
        let own = OwnPartial::new(
            Duty::new(slot, DutyType::Randao),
            cluster_index,
            root,
            randao_reveal,
        );
        if let Err(reason) = self.accept_own_partial(own, &mut outgoing, actions) {
            actions.push(reply(Err(ApiFailure::new(
                400,
                format!("randao_reveal: {reason}"),
            ))));
            return;
        }
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        self.proposals.block_wishes.insert(slot, wishes);
        self.vc.pending_blocks.push(PendingBlock {
            id,
            deadline_ms,
            slot,
        });
    }

    /// The randao reveal combined: fetch a block with it.
    pub(super) fn on_randao(
        &mut self,
        slot: Slot,
        randao: S::Signature,
        actions: &mut Vec<Action<E>>,
    ) {
        self.proposals.randao.insert(slot, randao);
        let duty = Duty::new(slot, DutyType::Proposer);
        if self.proposals.fetched_blocks.insert(slot) {
            let wishes = self
                .proposals
                .block_wishes
                .get(&slot)
                .copied()
                .unwrap_or_default();
            actions.push(Action::FetchBlock {
                duty,
                randao_reveal: S::signature_bytes(&randao),
                graffiti: wishes.graffiti.or(self.proposals.graffiti),
                builder_boost_factor: wishes.builder_boost_factor,
            });
        }
    }

    /// The beacon node's block arrived: propose it.
    pub(super) fn on_block(
        &mut self,
        duty: Duty,
        result: Result<ProducedBlock<E>, String>,
        actions: &mut Vec<Action<E>>,
    ) {
        let value = result.ok().map(|block| encode_block(&block));
        self.propose_or_join(duty, value, actions);
    }

    /// A block was decided: recorded for slashing protection, then served.
    pub(super) fn on_decided_block(
        &mut self,
        duty: Duty,
        value: &DutyValue,
        actions: &mut Vec<Action<E>>,
    ) {
        let Ok(block) = decode_block::<E>(value) else {
            return;
        };
        self.tracker.decided(&duty);
        let facts = facts(&block);
        let Some(key) = self
            .scheduler
            .index_of
            .iter()
            .find(|(_, i)| **i == facts.proposer)
            .map(|(k, _)| *k)
        else {
            return;
        };
        let root = roots::block(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            duty.slot,
            facts.root,
        );
        let safety = self.slashing.check_and_insert_block(key, duty.slot, root);
        match safety {
            Ok(Safety::Safe | Safety::SameData) => {
                self.dutydb.store_block(duty.slot, block);
            }
            Err(e) => {
                self.tracker.failed(&duty, Failure::Slashing(e.to_string()));
                actions.push(Action::Refused {
                    duty,
                    validator: key,
                    reason: e.to_string(),
                });
            }
        }
        self.answer_block_requests(0, actions);
    }

    /// Answers waiting block requests; at `now_ms` (0: no expiry) the
    /// overdue ones get a clear error.
    pub(super) fn answer_block_requests(&mut self, now_ms: u64, actions: &mut Vec<Action<E>>) {
        if now_ms > 0 {
            for early in std::mem::take(&mut self.vc.early_blocks) {
                if now_ms >= self.cluster.slot_start_ms(Slot(early.slot.0 + 1)) {
                    actions.push(Action::Reply {
                        id: early.id,
                        result: Err(ApiFailure::new(
                            503,
                            format!(
                                "the beacon node did not say who proposes in slot {} before its end",
                                early.slot
                            ),
                        )),
                    });
                } else {
                    self.vc.early_blocks.push(early);
                }
            }
        }
        for pending in std::mem::take(&mut self.vc.pending_blocks) {
            if let Some(block) = self.dutydb.block(pending.slot) {
                actions.push(Action::Reply {
                    id: pending.id,
                    result: Ok(VcResponse::Block(Box::new(block.clone()))),
                });
            } else if now_ms > 0 && now_ms >= pending.deadline_ms {
                let reason = if self.proposals.randao.contains_key(&pending.slot) {
                    "the cluster decided no block"
                } else {
                    "too few operators' validator clients sent their randao reveal to combine it"
                };
                actions.push(Action::Reply {
                    id: pending.id,
                    result: Err(ApiFailure::new(
                        503,
                        format!("{reason} for slot {} before its end", pending.slot),
                    )),
                });
            } else {
                self.vc.pending_blocks.push(pending);
            }
        }
    }

    /// The own validator client's signature of a block (full or blinded:
    /// both have the same root).
    pub(super) fn on_vc_publish_block(
        &mut self,
        slot: Slot,
        block_root: Root,
        signature: SignatureBytes,
        actions: &mut Vec<Action<E>>,
    ) -> Result<VcResponse<E>, ApiFailure> {
        let block = self.dutydb.block(slot).ok_or_else(|| {
            ApiFailure::new(400, format!("the cluster decided no block for slot {slot}"))
        })?;
        let facts = facts(block);
        if facts.root != block_root {
            return Err(ApiFailure::new(
                400,
                "the block differs from the one the cluster decided",
            ));
        }
        let cluster_index = self
            .scheduler
            .indices
            .get(&facts.proposer)
            .copied()
            .ok_or_else(|| {
                ApiFailure::new(400, "the proposer is not a validator of this cluster")
            })?;
        let root = roots::block(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            slot,
            block_root,
        );
        let mut outgoing = Vec::new();
        let own = OwnPartial::new(
            Duty::new(slot, DutyType::Proposer),
            cluster_index,
            root,
            signature,
        );
        self.accept_own_partial(own, &mut outgoing, actions)
            .map_err(|reason| ApiFailure::new(400, reason))?;
        if !outgoing.is_empty() {
            actions.push(Action::SendPartials(outgoing));
        }
        Ok(VcResponse::Accepted)
    }

    /// The signed block for a combined signature: it waits for the
    /// decided block, and is refused if not over it.
    pub(super) fn block_submission(
        &self,
        slot: Slot,
        root: Root,
        signature: SignatureBytes,
    ) -> Built<E> {
        if self.dutydb.block(slot).is_none() {
            return Built::Wait;
        }
        Built::or_refused(
            self.signed_block(slot, root, signature),
            "partials combined over a root other than the decided block's",
        )
    }

    /// The signed block for a combined signature over the decided block.
    fn signed_block(
        &self,
        slot: Slot,
        root: Root,
        signature: SignatureBytes,
    ) -> Option<Submission<E>> {
        let block = self.dutydb.block(slot)?;
        let facts = facts(block);
        if roots::block(
            &self.cluster.network,
            self.cluster.genesis_validators_root,
            slot,
            facts.root,
        ) != root
        {
            return None;
        }
        let signed = match block.data.clone() {
            ProducedBlockData::Full(message) => {
                BlockSubmission::Full(Box::new(Signed { message, signature }))
            }
            ProducedBlockData::Contents(contents) => {
                BlockSubmission::Contents(Box::new(SignedBlockContents {
                    signed_block: Signed {
                        message: contents.block,
                        signature,
                    },
                    kzg_proofs: contents.kzg_proofs,
                    blobs: contents.blobs,
                }))
            }
            ProducedBlockData::Blinded(message) => {
                BlockSubmission::Blinded(Box::new(Signed { message, signature }))
            }
        };
        Some(Submission::Block(block.fork, signed))
    }
}
