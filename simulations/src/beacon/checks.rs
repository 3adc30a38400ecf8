//! Verifying what is submitted as a beacon node would: the right signer,
//! the fork and layout of the slot, timing, committees and selection proofs,
//! and the BLS signature over the spec's signing root.

use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::attestation::{
    AggregateAndProof, AttestationBase, AttestationData, SignedAggregateAndProofBase,
    SignedAggregateAndProofElectra, SingleAttestation,
};
use phalanx_eth::block::BeaconBlock;
use phalanx_eth::block_contents::{SignedBeaconBlock, SignedBlindedBeaconBlock};
use phalanx_eth::client::CONSENSUS_VERSION_HEADER;
use phalanx_eth::selection::{
    is_aggregator, is_sync_committee_aggregator, SYNC_COMMITTEE_SUBNET_COUNT,
};
use phalanx_eth::signing::roots;
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::validator::{SignedValidatorRegistration, SignedVoluntaryExit};
use phalanx_eth::{EthSpec, ForkName, PublicKeyBytes, Root, SignatureBytes, Slot};
use serde_json::Value;
use ssz_types::typenum::Unsigned;

use super::chain::Chain;
use super::{Submission, SubmissionKind, ATTESTATION_PROPAGATION_SLOT_RANGE};

/// How old a block may be when published (a late proposer still publishes).
const BLOCK_PUBLICATION_SLOT_RANGE: u64 = 32;
/// How old a sync-committee message or contribution may be.
const SYNC_PROPAGATION_SLOT_RANGE: u64 = 1;
/// How far in the future a builder registration's timestamp may be (builder specs).
const REGISTRATION_FUTURE_SECONDS: u64 = 10;
/// The validator index recorded when a submission names no validator.
const NO_VALIDATOR: u64 = u64::MAX;

impl<E: EthSpec> Chain<E> {
    /// Checks that `fork` (the layout the message was decoded with) is the
    /// fork of `slot`, and that the `Eth-Consensus-Version` header, if any,
    /// says so too.
    fn check_fork(
        &self,
        checked: &mut Checked,
        slot: Slot,
        layout_electra: bool,
        declared: Option<ForkName>,
    ) {
        let fork = self.fork(slot);
        if let Err(name) = &fork {
            checked.problem(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            ));
        }
        if self.electra_at(slot) != layout_electra {
            let (used, wanted) = if layout_electra {
                ("Electra's", "the pre-Electra layout")
            } else {
                ("the pre-Electra", "Electra's layout (v2 endpoints)")
            };
            checked.problem(format!(
                "the message has {used} layout but slot {slot} is in {}: it needs {wanted}",
                self.fork_name(slot)
            ));
        }
        if let (Some(declared), Ok(fork)) = (declared, fork) {
            if declared != fork {
                checked.problem(format!(
                    "{CONSENSUS_VERSION_HEADER} says {declared} but slot {slot} is in {fork}"
                ));
            }
        }
    }

    fn check_vote(&self, checked: &mut Checked, data: &AttestationData, committee_index: u64) {
        let expected = self.attestation_data(data.slot, committee_index);
        if *data != expected {
            checked.problem(format!(
                "attestation data differs from the chain's vote for slot {} committee {committee_index}: expected {}",
                data.slot,
                serde_json::to_string(&expected).unwrap_or_default()
            ));
        }
    }

    fn attestation_signing_root(&self, data: &AttestationData) -> Root {
        roots::attestation(&self.network, self.genesis_validators_root, data)
    }

    /// A pre-Electra `Attestation` from one committee member.
    pub(super) fn check_attestation(
        &self,
        attestation: &AttestationBase<E>,
        declared: Option<ForkName>,
        now_ms: u64,
    ) -> Checked {
        let data = attestation.data;
        let committee_index = data.index.0;
        let committee = self.committee(data.slot, committee_index);
        let bits: Vec<usize> = attestation
            .aggregation_bits
            .iter()
            .enumerate()
            .filter_map(|(i, set)| set.then_some(i))
            .collect();
        let position = match (&committee, bits.as_slice()) {
            (Some(members), [position]) if attestation.aggregation_bits.len() == members.len() => {
                Some(*position)
            }
            _ => None,
        };
        let signer = position.and_then(|p| committee.as_ref().map(|members| members[p]));
        let mut checked = Checked::new(
            self,
            SubmissionKind::Attestation,
            data.slot,
            signer,
            attestation.signature,
        );
        self.check_fork(&mut checked, data.slot, false, declared);
        match &committee {
            None => checked.problem(format!(
                "slot {} has no committee {committee_index} ({} committees)",
                data.slot,
                self.committees_per_slot()
            )),
            Some(members) => {
                if attestation.aggregation_bits.len() != members.len() {
                    checked.problem(format!(
                        "aggregation_bits has {} bits but committee {committee_index} at slot {} has {} members",
                        attestation.aggregation_bits.len(),
                        data.slot,
                        members.len()
                    ));
                }
                if bits.len() != 1 {
                    checked.problem(format!(
                        "an unaggregated attestation sets exactly one aggregation bit; this one sets {}",
                        bits.len()
                    ));
                }
            }
        }
        self.check_vote(&mut checked, &data, committee_index);
        if let Some(late) = self.timing(data.slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = self.attestation_signing_root(&data);
        let valid = signer.is_some_and(|s| self.verify(s, signing_root, &attestation.signature));
        let mut checked = checked.signed(signing_root, valid);
        if let (Some(members), Some(position)) = (committee, position) {
            checked.pool_attestation(data, committee_index, members.len(), position);
        }
        checked
    }

    /// An Electra `SingleAttestation`.
    pub(super) fn check_single_attestation(
        &self,
        attestation: &SingleAttestation,
        declared: Option<ForkName>,
        now_ms: u64,
    ) -> Checked {
        let data = attestation.data;
        let committee_index = attestation.committee_index.0;
        let attester = attestation.attester_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::Attestation,
            data.slot,
            Some(attester),
            attestation.signature,
        );
        self.check_fork(&mut checked, data.slot, true, declared);
        let committee = self.committee(data.slot, committee_index);
        let position = committee
            .as_ref()
            .and_then(|members| members.iter().position(|&m| m == attester));
        match &committee {
            None => checked.problem(format!(
                "slot {} has no committee {committee_index} ({} committees)",
                data.slot,
                self.committees_per_slot()
            )),
            Some(_) if position.is_none() => checked.problem(format!(
                "validator {attester} is not in committee {committee_index} at slot {}",
                data.slot
            )),
            Some(_) => {}
        }
        self.check_vote(&mut checked, &data, committee_index);
        if let Some(late) = self.timing(data.slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = self.attestation_signing_root(&data);
        let valid = self.verify(attester, signing_root, &attestation.signature);
        let mut checked = checked.signed(signing_root, valid);
        if let (Some(members), Some(position)) = (committee, position) {
            checked.pool_attestation(data, committee_index, members.len(), position);
        }
        checked
    }

    /// A signed aggregate and proof of either layout, taken apart.
    pub(super) fn check_aggregate(&self, aggregate: AggregateParts<E>, now_ms: u64) -> Checked {
        let AggregateParts {
            aggregator,
            selection_proof,
            data,
            committee_index,
            bit_count,
            bits,
            aggregate_signature,
            message,
            signature,
            electra,
            declared,
        } = aggregate;
        let slot = data.slot;
        let mut checked = Checked::new(
            self,
            SubmissionKind::Aggregate,
            slot,
            Some(aggregator),
            signature,
        );
        self.check_fork(&mut checked, slot, electra, declared);
        let committee = match committee_index {
            Ok(index) => {
                let committee = self.committee(slot, index);
                if committee.is_none() {
                    checked.problem(format!(
                        "slot {slot} has no committee {index} ({} committees)",
                        self.committees_per_slot()
                    ));
                }
                self.check_vote(&mut checked, &data, index);
                committee
            }
            Err(reason) => {
                checked.problem(reason);
                None
            }
        };
        if let Some(members) = &committee {
            if !members.contains(&aggregator) {
                checked.problem(format!(
                    "aggregator {aggregator} is not in the committee it aggregates"
                ));
            }
            let proof_root =
                roots::selection_proof(&self.network, self.genesis_validators_root, slot);
            if !self.verify(aggregator, proof_root, &selection_proof) {
                checked.problem(format!(
                    "selection_proof is not validator {aggregator}'s signature of slot {slot}"
                ));
            }
            if !is_aggregator(members.len() as u64, &selection_proof) {
                checked.problem(format!(
                    "the selection proof does not make validator {aggregator} an aggregator of a committee of {}",
                    members.len()
                ));
            }
            if bit_count != members.len() {
                checked.problem(format!(
                    "aggregation_bits has {bit_count} bits but the committee has {} members",
                    members.len()
                ));
            } else if bits.is_empty() {
                checked.problem("the aggregate has no attester".to_string());
            } else {
                let attesters: Vec<u64> = bits.iter().map(|&b| members[b]).collect();
                let root = self.attestation_signing_root(&data);
                if !self.verify_aggregate(&attesters, root, &aggregate_signature) {
                    checked.problem(format!(
                        "the aggregate signature is not the attesters' {attesters:?} signature of the attestation data"
                    ));
                }
            }
        }
        if let Some(late) = self.timing(slot, now_ms, ATTESTATION_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root =
            roots::aggregate_and_proof(&self.network, self.genesis_validators_root, &message, slot);
        let valid = self.verify(aggregator, signing_root, &signature);
        checked.signed(signing_root, valid)
    }

    pub(super) fn check_sync_message(
        &self,
        message: &SyncCommitteeMessage,
        now_ms: u64,
    ) -> Checked {
        let slot = message.slot;
        let validator = message.validator_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::SyncMessage,
            slot,
            Some(validator),
            message.signature,
        );
        if matches!(self.fork(slot), Ok(fork) if fork < ForkName::Altair) {
            checked.problem(format!("slot {slot} is before Altair: no sync committee"));
        }
        let committee = self.sync_committee_at(slot);
        let positions: Vec<usize> = committee
            .iter()
            .enumerate()
            .filter_map(|(position, &member)| (member == validator).then_some(position))
            .collect();
        if positions.is_empty() {
            checked.problem(format!(
                "validator {validator} is not in the sync committee signing at slot {slot}"
            ));
        }
        if let Some(late) = self.timing(slot, now_ms, SYNC_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = roots::sync_committee_message(
            &self.network,
            self.genesis_validators_root,
            slot,
            message.beacon_block_root,
        );
        let valid = self.verify(validator, signing_root, &message.signature);
        let mut checked = checked.signed(signing_root, valid);
        checked.pool_sync_message(slot, message.beacon_block_root, positions);
        checked
    }

    pub(super) fn check_contribution(
        &self,
        signed: &SignedContributionAndProof<E>,
        now_ms: u64,
    ) -> Checked {
        let message = &signed.message;
        let contribution = &message.contribution;
        let slot = contribution.slot;
        let aggregator = message.aggregator_index.0;
        let subcommittee = contribution.subcommittee_index;
        let mut checked = Checked::new(
            self,
            SubmissionKind::Contribution,
            slot,
            Some(aggregator),
            signed.signature,
        );
        if matches!(self.fork(slot), Ok(fork) if fork < ForkName::Altair) {
            checked.problem(format!("slot {slot} is before Altair: no sync committee"));
        }
        let size = E::SyncSubcommitteeSize::to_usize();
        let committee = self.sync_committee_at(slot);
        let members: Option<&[u64]> = usize::try_from(subcommittee)
            .ok()
            .filter(|&s| (s as u64) < SYNC_COMMITTEE_SUBNET_COUNT)
            .and_then(|s| committee.get(s * size..(s + 1) * size));
        match members {
            None => checked.problem(format!(
                "there is no sync subcommittee {subcommittee} (there are {SYNC_COMMITTEE_SUBNET_COUNT})"
            )),
            Some(members) => {
                if !members.contains(&aggregator) {
                    checked.problem(format!(
                        "aggregator {aggregator} is not in sync subcommittee {subcommittee} at slot {slot}"
                    ));
                }
                let proof_root = roots::sync_selection_proof(
                    &self.network,
                    self.genesis_validators_root,
                    slot,
                    subcommittee,
                );
                if !self.verify(aggregator, proof_root, &message.selection_proof) {
                    checked.problem(format!(
                        "selection_proof is not validator {aggregator}'s signature of slot {slot} subcommittee {subcommittee}"
                    ));
                }
                if !is_sync_committee_aggregator::<E>(&message.selection_proof) {
                    checked.problem(format!(
                        "the selection proof does not make validator {aggregator} a contribution aggregator"
                    ));
                }
                let participants: Vec<u64> = contribution
                    .aggregation_bits
                    .iter()
                    .zip(members)
                    .filter_map(|(set, &member)| set.then_some(member))
                    .collect();
                let root = roots::sync_committee_message(
                    &self.network,
                    self.genesis_validators_root,
                    slot,
                    contribution.beacon_block_root,
                );
                if participants.is_empty() {
                    checked.problem("the contribution has no participant".to_string());
                } else if !self.verify_aggregate(&participants, root, &contribution.signature) {
                    checked.problem(format!(
                        "the contribution signature is not the participants' {participants:?} signature of the block root"
                    ));
                }
            }
        }
        if let Some(late) = self.timing(slot, now_ms, SYNC_PROPAGATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root =
            roots::contribution_and_proof(&self.network, self.genesis_validators_root, message);
        let valid = self.verify(aggregator, signing_root, &signed.signature);
        checked.signed(signing_root, valid)
    }

    /// A signed block (full, contents or blinded), taken apart.
    pub(super) fn check_block(&self, block: BlockParts, now_ms: u64) -> Checked {
        let BlockParts {
            kind,
            slot,
            proposer_index,
            parent_root,
            randao_reveal,
            root,
            layout,
            blobs_problem,
            signature,
            declared,
        } = block;
        let epoch = self.epoch(slot);
        let mut checked = Checked::new(self, kind, slot, Some(proposer_index), signature);
        match self.fork(slot) {
            Ok(fork) if fork != layout => checked.problem(format!(
                "the block has {layout}'s layout but slot {slot} is in {fork}"
            )),
            Ok(_) => {}
            Err(name) => checked.problem(format!(
                "slot {slot} is in fork {name}, which this mock does not know"
            )),
        }
        if let Some(declared) = declared.filter(|&d| d != layout) {
            checked.problem(format!(
                "{CONSENSUS_VERSION_HEADER} says {declared} but the block is decoded as {layout}"
            ));
        }
        if slot.0 == 0 {
            checked.problem("slot 0 is genesis: no block can be proposed there".to_string());
        }
        match self.proposer(slot) {
            Some(proposer) if proposer != proposer_index => checked.problem(format!(
                "validator {proposer_index} is not the proposer of slot {slot} (validator {proposer} is)"
            )),
            _ => {}
        }
        if parent_root != self.parent_root(slot) {
            checked.problem(format!(
                "parent_root {parent_root} is not the block of slot {} ({})",
                slot.0.saturating_sub(1),
                self.parent_root(slot)
            ));
        }
        let randao_root = roots::randao(&self.network, self.genesis_validators_root, epoch);
        if !self.verify(proposer_index, randao_root, &randao_reveal) {
            checked.problem(format!(
                "randao_reveal is not validator {proposer_index}'s signature of epoch {epoch}"
            ));
        }
        if let Some(problem) = blobs_problem {
            checked.problem(problem);
        }
        if let Some(late) = self.timing(slot, now_ms, BLOCK_PUBLICATION_SLOT_RANGE) {
            checked.problem(late);
        }
        let signing_root = roots::block(&self.network, self.genesis_validators_root, slot, root);
        let valid = self.verify(proposer_index, signing_root, &signature);
        checked.signed(signing_root, valid)
    }

    pub(super) fn check_exit(&self, exit: &SignedVoluntaryExit, now_ms: u64) -> Checked {
        let epoch = exit.message.epoch;
        let validator = exit.message.validator_index.0;
        let mut checked = Checked::new(
            self,
            SubmissionKind::VoluntaryExit,
            self.start_slot(epoch),
            Some(validator),
            exit.signature,
        );
        let now = self.slot_at(now_ms);
        let current = self.epoch(now);
        if epoch > current {
            checked.problem(format!(
                "the exit is valid from epoch {epoch}, after the current epoch {current}"
            ));
        }
        // A fork newer than this build knows exits like Deneb (EIP-7044).
        let fork = self.network.layout_fork_at_slot(now);
        if fork >= ForkName::Deneb && self.network.fork_version(ForkName::Capella).is_none() {
            checked
                .problem("the network has no Capella fork version to sign exits with".to_string());
        }
        let signing_root = roots::voluntary_exit(
            &self.network,
            self.genesis_validators_root,
            &exit.message,
            now,
        );
        let valid = self.verify(validator, signing_root, &exit.signature);
        checked.signed(signing_root, valid)
    }

    pub(super) fn check_registration(
        &self,
        registration: &SignedValidatorRegistration,
        now_ms: u64,
    ) -> Checked {
        let message = &registration.message;
        let index = self.indices.get(&message.pubkey).copied();
        let mut checked = Checked::new(
            self,
            SubmissionKind::Registration,
            self.slot_at(now_ms),
            index,
            registration.signature,
        );
        if index.is_none() {
            checked.problem(format!(
                "{} is not a validator of this chain",
                message.pubkey
            ));
        }
        // The builder checks the message's own key, known validator or not.
        checked.pubkey = Some(message.pubkey);
        let now_seconds = self.genesis_time + now_ms / 1000;
        if message.timestamp > now_seconds + REGISTRATION_FUTURE_SECONDS {
            checked.problem(format!(
                "timestamp {} is more than {REGISTRATION_FUTURE_SECONDS} s in the future",
                message.timestamp
            ));
        }
        let signing_root = roots::validator_registration(&self.network, message);
        let valid = PublicKey::from_bytes(message.pubkey.as_slice())
            .ok()
            .zip(Signature::from_bytes(registration.signature.as_slice()).ok())
            .is_some_and(|(key, signature)| signature.verify(&key, signing_root.as_slice()));
        checked.signed(signing_root, valid)
    }
}

/// An aggregate and proof of either layout, taken apart for checking.
pub(super) struct AggregateParts<E: EthSpec> {
    aggregator: u64,
    selection_proof: SignatureBytes,
    data: AttestationData,
    /// The committee aggregated, or why the message names none.
    committee_index: Result<u64, String>,
    bit_count: usize,
    /// Positions of the set aggregation bits.
    bits: Vec<usize>,
    aggregate_signature: SignatureBytes,
    /// The signed `AggregateAndProof`.
    message: AggregateAndProof<E>,
    signature: SignatureBytes,
    electra: bool,
    declared: Option<ForkName>,
}

impl<E: EthSpec> AggregateParts<E> {
    pub(super) fn base(
        signed: &SignedAggregateAndProofBase<E>,
        declared: Option<ForkName>,
    ) -> AggregateParts<E> {
        let message = &signed.message;
        let aggregate = &message.aggregate;
        AggregateParts {
            aggregator: message.aggregator_index.0,
            selection_proof: message.selection_proof,
            data: aggregate.data,
            committee_index: Ok(aggregate.data.index.0),
            bit_count: aggregate.aggregation_bits.len(),
            bits: set_bits(aggregate.aggregation_bits.iter()),
            aggregate_signature: aggregate.signature,
            message: AggregateAndProof::Base(message.clone()),
            signature: signed.signature,
            electra: false,
            declared,
        }
    }

    pub(super) fn electra(
        signed: &SignedAggregateAndProofElectra<E>,
        declared: Option<ForkName>,
    ) -> AggregateParts<E> {
        let message = &signed.message;
        let aggregate = &message.aggregate;
        let committees = set_bits(aggregate.committee_bits.iter());
        let committee_index = match committees.as_slice() {
            [index] => Ok(*index as u64),
            other => Err(format!(
                "an aggregate covers exactly one committee; committee_bits sets {}",
                other.len()
            )),
        };
        AggregateParts {
            aggregator: message.aggregator_index.0,
            selection_proof: message.selection_proof,
            data: aggregate.data,
            committee_index,
            bit_count: aggregate.aggregation_bits.len(),
            bits: set_bits(aggregate.aggregation_bits.iter()),
            aggregate_signature: aggregate.signature,
            message: AggregateAndProof::Electra(message.clone()),
            signature: signed.signature,
            electra: true,
            declared,
        }
    }
}

fn set_bits(bits: impl Iterator<Item = bool>) -> Vec<usize> {
    bits.enumerate()
        .filter_map(|(i, set)| set.then_some(i))
        .collect()
}

/// A signed block of any form, taken apart for checking.
pub(super) struct BlockParts {
    kind: SubmissionKind,
    slot: Slot,
    proposer_index: u64,
    parent_root: Root,
    randao_reveal: SignatureBytes,
    /// hash_tree_root of the block (the same for its blinded form).
    root: Root,
    /// The fork whose layout the block was decoded with.
    layout: ForkName,
    /// What is wrong with the blobs and proofs sent along, if anything.
    blobs_problem: Option<String>,
    signature: SignatureBytes,
    declared: Option<ForkName>,
}

impl BlockParts {
    pub(super) fn full<E: EthSpec>(
        signed: &SignedBeaconBlock<E>,
        blobs: Option<(usize, usize)>,
        declared: Option<ForkName>,
    ) -> BlockParts {
        let block = &signed.message;
        let randao_reveal = block.randao_reveal();
        let commitments = match block {
            BeaconBlock::Deneb(b) => b.body.blob_kzg_commitments.len(),
            BeaconBlock::Electra(b) | BeaconBlock::Fulu(b) => b.body.blob_kzg_commitments.len(),
            _ => 0,
        };
        let layout = block.fork_name();
        let blobs_problem = blobs.and_then(|(proofs, blobs)| {
            let proofs_per_blob = if layout >= ForkName::Fulu { 128 } else { 1 };
            (blobs != commitments || proofs != blobs * proofs_per_blob).then(|| {
                format!(
                    "{commitments} blob commitments need as many blobs and {} proofs; got {blobs} blobs and {proofs} proofs",
                    commitments * proofs_per_blob
                )
            })
        });
        BlockParts {
            kind: SubmissionKind::Block,
            slot: block.slot(),
            proposer_index: block.proposer_index().0,
            parent_root: block.header().parent_root,
            randao_reveal,
            root: block.tree_hash_root(),
            layout,
            blobs_problem,
            signature: signed.signature,
            declared,
        }
    }

    pub(super) fn blinded<E: EthSpec>(
        signed: &SignedBlindedBeaconBlock<E>,
        declared: Option<ForkName>,
    ) -> BlockParts {
        let block = &signed.message;
        let randao_reveal = block.randao_reveal();
        BlockParts {
            kind: SubmissionKind::BlindedBlock,
            slot: block.slot(),
            proposer_index: block.proposer_index().0,
            parent_root: block.header().parent_root,
            randao_reveal,
            root: block.tree_hash_root(),
            layout: block.fork_name(),
            blobs_problem: None,
            signature: signed.signature,
            declared,
        }
    }
}

/// A submission as checked, before it is recorded.
pub(super) struct Checked {
    pub(super) kind: SubmissionKind,
    fork: String,
    pub(super) slot: Slot,
    pub(super) validator_index: u64,
    pubkey: Option<PublicKeyBytes>,
    signing_root: Root,
    signature: SignatureBytes,
    valid: bool,
    problems: Vec<String>,
    /// What accepting it adds to the pools.
    pub(super) effect: Option<Effect>,
}

impl Checked {
    fn new<E: EthSpec>(
        chain: &Chain<E>,
        kind: SubmissionKind,
        slot: Slot,
        signer: Option<u64>,
        signature: SignatureBytes,
    ) -> Checked {
        let mut checked = Checked {
            kind,
            fork: chain.fork_name(slot),
            slot,
            validator_index: signer.unwrap_or(NO_VALIDATOR),
            pubkey: signer.and_then(|s| chain.pubkey(s)),
            signing_root: Root::ZERO,
            signature,
            valid: false,
            problems: Vec::new(),
            effect: None,
        };
        if let (Some(signer), None) = (signer, checked.pubkey) {
            checked.problem(format!(
                "validator {signer} does not exist ({} validators)",
                chain.validator_count()
            ));
        }
        checked
    }

    fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Sets what was signed and whether the signature verifies.
    fn signed(mut self, signing_root: Root, valid: bool) -> Checked {
        self.signing_root = signing_root;
        self.valid = valid;
        if !valid && self.pubkey.is_some() {
            self.problem(format!(
                "the signature is not {}'s signature over signing root {signing_root}",
                if self.validator_index == NO_VALIDATOR {
                    "the key's".to_string()
                } else {
                    format!("validator {}", self.validator_index)
                }
            ));
        }
        self
    }

    fn accepted(&self) -> bool {
        self.problems.is_empty()
    }

    pub(super) fn error(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| self.problems.join("; "))
    }

    fn pool_attestation(
        &mut self,
        data: AttestationData,
        committee_index: u64,
        committee_len: usize,
        position: usize,
    ) {
        if let Ok(signature) = Signature::from_bytes(self.signature.as_slice()) {
            self.effect = Some(Effect::Attestation {
                data,
                committee_index,
                committee_len,
                position,
                signature,
            });
        }
    }

    fn pool_sync_message(&mut self, slot: Slot, root: Root, positions: Vec<usize>) {
        if let Ok(signature) = Signature::from_bytes(self.signature.as_slice()) {
            self.effect = Some(Effect::SyncMessage {
                slot,
                root,
                positions,
                signature,
            });
        }
    }

    pub(super) fn into_submission(self, body: Value, received_ms: u64) -> Submission {
        let accepted = self.accepted();
        let error = self.error();
        Submission {
            kind: self.kind,
            fork: self.fork,
            slot: self.slot.0,
            validator_index: self.validator_index,
            pubkey: self.pubkey.map(|k| k.to_string()).unwrap_or_default(),
            signing_root: self.signing_root.to_string(),
            signature: self.signature.to_string(),
            valid: self.valid,
            accepted,
            error,
            body,
            received_ms,
        }
    }
}

/// What an accepted message adds to the pools aggregators draw from.
pub(super) enum Effect {
    Attestation {
        data: AttestationData,
        committee_index: u64,
        committee_len: usize,
        position: usize,
        signature: Signature,
    },
    SyncMessage {
        slot: Slot,
        root: Root,
        /// The signer's positions in the sync committee.
        positions: Vec<usize>,
        signature: Signature,
    },
}
