//! What a run observes, for the invariants and reports: every submission
//! that reached a beacon node with its signing root and validity, the
//! decisions, outcomes, drops and refusals, and the message counts.

use std::collections::BTreeMap;

use phalanx_eth::{EthSpec, PublicKeyBytes, Root, Slot};
use phalanx_node::core::{AggregateSubmission, AttestationSubmission, BlockSubmission, Submission};
use phalanx_node::duty::Duty;
use phalanx_node::tracker::Outcome;

use crate::sim::signing::SimScheme;

use super::World;

/// A submission that reached a beacon node.
#[derive(Clone, Debug)]
pub struct Broadcast {
    /// Virtual milliseconds since genesis.
    pub at_ms: u64,
    /// The node that sent it.
    pub node: usize,
    /// The duty.
    pub duty: Duty,
    /// The validator (group key).
    pub validator: PublicKeyBytes,
    /// What it signs, and whether its signature verifies under the group key.
    pub check: SubmissionCheck,
}

/// The facts of a submission the invariants need.
#[derive(Clone, Debug)]
pub struct SubmissionCheck {
    /// The signing root.
    pub signing_root: Root,
    /// Whether the signature verifies under the validator's group key.
    pub valid: bool,
    /// For attestations: source and target epochs.
    pub vote: Option<(u64, u64)>,
    /// For blocks: the slot.
    pub block_slot: Option<Slot>,
}

/// Everything a run observed, for invariants and reports.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every submission, in order.
    pub broadcasts: Vec<Broadcast>,
    /// The values the operators of the cluster proposed (its nodes' cores,
    /// and a byzantine node's other story), by duty.
    pub proposed: std::collections::BTreeSet<(Duty, [u8; 32])>,
    /// Per duty: each node's decided value hash and round.
    pub decisions: BTreeMap<Duty, BTreeMap<usize, ([u8; 32], u64)>>,
    /// Per node: duty outcomes.
    pub outcomes: BTreeMap<usize, Vec<(Duty, Outcome)>>,
    /// Per (receiver, sender, what, reason): dropped peer messages.
    pub dropped: BTreeMap<(usize, usize, String), u64>,
    /// Slashing-protection or combination refusals, per node.
    pub refused: Vec<(usize, Duty, String)>,
    /// Requests of a validator client its node refused.
    pub vc_refused: Vec<(usize, String)>,
    /// Consensus messages and partial-signature batches sent between nodes.
    pub consensus_messages: u64,
    /// Partial signatures sent between nodes.
    pub partials_sent: u64,
    /// Bytes of the consensus messages sent (their encoding on the wire,
    /// without transport framing).
    pub consensus_bytes: u64,
    /// Bytes of the partial-signature batches sent.
    pub partial_bytes: u64,
    /// Partial signatures each operator sent, counted once per batch sent.
    pub partials_by_operator: BTreeMap<usize, u64>,
    /// Events processed.
    pub events: u64,
    /// Submissions of kinds the simulator does not check.
    pub unchecked: u64,
    /// Per node: how its processor was used.
    pub cpu: BTreeMap<usize, NodeCpu>,
    /// Per flood strategy: what the byzantine operator sent.
    pub flood: BTreeMap<&'static str, FloodSent>,
}

/// How one node's processor was used over a run (virtual time).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct NodeCpu {
    /// Time spent handling events, in microseconds.
    pub busy_us: u64,
    /// The longest an event waited for the node to be free, in ms.
    pub max_wait_ms: u64,
    /// Events that had to wait.
    pub waited: u64,
    /// The most events waiting at once.
    pub max_backlog: u64,
    /// The work counted, summed.
    #[serde(skip)]
    pub work: crate::sim::cost::Work,
}

/// What one flood strategy sent, summed over its peers.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FloodSent {
    /// Peer messages.
    pub messages: u64,
    /// Items in them (partials or consensus messages).
    pub items: u64,
    /// Their bytes, as encoded on the wire.
    pub bytes: u64,
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    /// The signing root of a submission and whether its signature verifies
    /// under the group key.
    pub(super) fn check(
        &mut self,
        validator: PublicKeyBytes,
        submission: &Submission<E>,
    ) -> Option<SubmissionCheck> {
        let (root, signature, vote, block_slot) = match submission {
            Submission::Attestation(_, attestation) => {
                let (data, signature) = match attestation {
                    AttestationSubmission::Base(a) => (a.data(), *a.signature()),
                    AttestationSubmission::Single(a) => (&a.data, a.signature),
                };
                (
                    self.roots.attestation(data),
                    signature,
                    Some((data.source.epoch.0, data.target.epoch.0)),
                    None,
                )
            }
            Submission::SyncMessage(message) => (
                self.roots
                    .sync_message(message.slot, message.beacon_block_root),
                message.signature,
                None,
                None,
            ),
            Submission::Block(_, block) => {
                let (slot, root, signature) = match block {
                    BlockSubmission::Full(b) => {
                        (b.message.slot(), b.message.tree_hash_root(), b.signature)
                    }
                    BlockSubmission::Contents(c) => (
                        c.signed_block.message.slot(),
                        c.signed_block.message.tree_hash_root(),
                        c.signed_block.signature,
                    ),
                    BlockSubmission::Blinded(b) => {
                        (b.message.slot(), b.message.tree_hash_root(), b.signature)
                    }
                };
                (self.roots.block(slot, root), signature, None, Some(slot))
            }
            Submission::Aggregate(_, aggregate) => {
                let (root, signature) = match aggregate {
                    AggregateSubmission::Base(signed) => (
                        self.roots.aggregate_and_proof(
                            signed.message.aggregate.data.slot,
                            &signed.message,
                        ),
                        signed.signature,
                    ),
                    AggregateSubmission::Electra(signed) => (
                        self.roots.aggregate_and_proof(
                            signed.message.aggregate.data.slot,
                            &signed.message,
                        ),
                        signed.signature,
                    ),
                };
                (root, signature, None, None)
            }
            Submission::Contribution(signed) => (
                self.roots.contribution_and_proof(&signed.message),
                signed.signature,
                None,
                None,
            ),
            // The simulated clients neither exit nor register.
            _ => return None,
        };
        // Every node broadcasts the same signature: it is verified once.
        let valid = match self.index_of.get(&validator) {
            None => false,
            Some(&i) => *self
                .verified
                .entry((i, root, signature))
                .or_insert_with(|| {
                    S::decode_signature(signature.as_slice())
                        .is_ok_and(|s| S::verify(&self.validators[i].group, root.as_slice(), &s))
                }),
        };
        Some(SubmissionCheck {
            signing_root: root,
            valid,
            vote,
            block_slot,
        })
    }
}
