//! What reached the beacon node, checked as a beacon node would: every
//! submission's signature verifies under its validator's group key, blocks
//! travel as their fork's and with their blobs, aggregates carry the
//! cluster's combined selection proof.

use phalanx_crypto::{PublicKey, Signature};
use phalanx_eth::attestation::{AggregateAndProof, Attestation};
use phalanx_eth::signing::roots;
use phalanx_eth::{ForkName, Root, SignatureBytes, ValidatorIndex};
use phalanx_node::core::{AggregateSubmission, AttestationSubmission, BlockSubmission, Submission};

use super::beacon::validator_position;
use super::{Cluster, Spec, SLOTS_PER_EPOCH};

/// How many verified submissions of each kind the nodes made (all nodes
/// together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) attestations: usize,
    pub(crate) sync_messages: usize,
    pub(crate) aggregates: usize,
    pub(crate) contributions: usize,
    /// Blocks, full or blinded.
    pub(crate) blocks: usize,
}

fn verifies(key: &PublicKey, root: Root, signature: &SignatureBytes) -> bool {
    Signature::from_bytes(signature.as_slice())
        .expect("signature")
        .verify(key, root.as_slice())
}

impl Cluster {
    /// The group key of the validator with chain index `index`.
    fn group_of(&self, index: ValidatorIndex) -> &PublicKey {
        &self.groups[validator_position(index)]
    }
}

/// Checks every submission of the nodes (panicking on one that does not
/// verify) and counts them.
pub(crate) fn verify_submissions(cluster: &Cluster) -> Verified {
    let mut verified = Verified::default();
    for (node, submission) in &cluster.submissions {
        match submission {
            Submission::Block(
                fork,
                full @ (BlockSubmission::Contents(_) | BlockSubmission::Full(_)),
            ) => {
                let (signed, blobs) = match full {
                    BlockSubmission::Contents(c) => {
                        (&c.signed_block, Some((c.blobs.len(), c.kzg_proofs.len())))
                    }
                    BlockSubmission::Full(signed) => (&**signed, None),
                    BlockSubmission::Blinded(_) => unreachable!("matched above"),
                };
                let block = &signed.message;
                assert_eq!(
                    block.fork_name(),
                    *fork,
                    "node {node}: published as its fork"
                );
                // Deneb on, a full block travels with its blobs; before, alone.
                assert_eq!(
                    blobs,
                    (*fork >= ForkName::Deneb).then_some((1, 1)),
                    "node {node}"
                );
                let key = cluster.group_of(block.proposer_index());
                let epoch = block.slot().epoch(SLOTS_PER_EPOCH);
                let root = roots::block(
                    &cluster.network,
                    cluster.gvr,
                    block.slot(),
                    block.tree_hash_root(),
                );
                assert!(verifies(key, root, &signed.signature), "node {node}: block");
                let randao = roots::randao(&cluster.network, cluster.gvr, epoch);
                assert!(
                    verifies(key, randao, &block.randao_reveal()),
                    "node {node}: randao"
                );
                verified.blocks += 1;
            }
            Submission::Block(_, BlockSubmission::Blinded(signed)) => {
                let block = &signed.message;
                let root = roots::block(
                    &cluster.network,
                    cluster.gvr,
                    block.slot(),
                    block.tree_hash_root(),
                );
                assert!(
                    verifies(
                        cluster.group_of(block.proposer_index()),
                        root,
                        &signed.signature
                    ),
                    "node {node}: blinded block"
                );
                verified.blocks += 1;
            }
            Submission::Exit(_) | Submission::Registrations(_) => {
                panic!("nothing here exits or registers")
            }
            Submission::Aggregate(_, signed) => {
                let (message, signature): (AggregateAndProof<Spec>, SignatureBytes) = match signed {
                    AggregateSubmission::Base(s) => {
                        (AggregateAndProof::Base(s.message.clone()), s.signature)
                    }
                    AggregateSubmission::Electra(s) => {
                        (AggregateAndProof::Electra(s.message.clone()), s.signature)
                    }
                };
                let (index, slot, proof) = match &message {
                    AggregateAndProof::Base(m) => {
                        (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
                    }
                    AggregateAndProof::Electra(m) => {
                        (m.aggregator_index, m.aggregate.data.slot, m.selection_proof)
                    }
                };
                let key = cluster.group_of(index);
                let root =
                    roots::aggregate_and_proof(&cluster.network, cluster.gvr, &message, slot);
                assert!(verifies(key, root, &signature), "node {node}: aggregate");
                let proof_root = roots::selection_proof(&cluster.network, cluster.gvr, slot);
                assert!(
                    verifies(key, proof_root, &proof),
                    "node {node}: selection proof"
                );
                verified.aggregates += 1;
            }
            Submission::Contribution(signed) => {
                let message = &signed.message;
                let root = roots::contribution_and_proof(&cluster.network, cluster.gvr, message);
                assert!(
                    verifies(
                        cluster.group_of(message.aggregator_index),
                        root,
                        &signed.signature
                    ),
                    "node {node}: contribution"
                );
                verified.contributions += 1;
            }
            Submission::Attestation(_, attestation) => {
                let (data, signature, validator) = match attestation {
                    AttestationSubmission::Single(single) => (
                        single.data,
                        single.signature,
                        validator_position(single.attester_index),
                    ),
                    AttestationSubmission::Base(base) => {
                        let bits = match base.as_ref() {
                            Attestation::Base(b) => &b.aggregation_bits,
                            other => panic!("electra layout before electra: {other:?}"),
                        };
                        assert_eq!(bits.num_set_bits(), 1, "one attester per attestation");
                        let position = bits.iter().position(|b| b).expect("a bit");
                        (*base.data(), *base.signature(), position)
                    }
                };
                let root = roots::attestation(&cluster.network, cluster.gvr, &data);
                assert!(
                    verifies(&cluster.groups[validator], root, &signature),
                    "node {node}: attestation of validator {validator} does not verify"
                );
                verified.attestations += 1;
            }
            Submission::SyncMessage(message) => {
                let root = roots::sync_committee_message(
                    &cluster.network,
                    cluster.gvr,
                    message.slot,
                    message.beacon_block_root,
                );
                assert!(verifies(
                    cluster.group_of(message.validator_index),
                    root,
                    &message.signature
                ));
                verified.sync_messages += 1;
            }
        }
    }
    assert!(
        verified.blocks == 0 || cluster.proposals,
        "blocks published without proposals"
    );
    verified
}
