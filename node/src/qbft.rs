//! QBFT between the cluster's nodes: messages signed with this operator's
//! node key and checked against the lock's ENR keys, and the size limit of
//! the consensus protocol on p2p.

use phalanx_consensus::{Config, MessageSignature, OperatorIndex, Signer, Verifier};
use phalanx_eth::block_contents::{BYTES_PER_BLOB, BYTES_PER_PROOF};
use phalanx_p2p::{CodecError, NodeKey, Protocol};

use crate::value::DutyValue;

/// Signs consensus messages with the operator's node key (secp256k1).
pub struct NodeSigner(pub NodeKey);

impl Signer for NodeSigner {
    fn sign(&self, bytes: &[u8]) -> MessageSignature {
        MessageSignature(self.0.sign(bytes))
    }
}

/// Checks consensus messages against the operators' ENR keys, by index.
pub struct LockVerifier {
    keys: Vec<[u8; 33]>,
}

impl LockVerifier {
    /// A verifier for the lock's operators, in lock order.
    pub fn new(keys: Vec<[u8; 33]>) -> LockVerifier {
        LockVerifier { keys }
    }
}

impl Verifier for LockVerifier {
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool {
        self.keys
            .get(sender.as_usize())
            .is_some_and(|key| phalanx_p2p::verify(key, bytes, &signature.0))
    }
}

/// The consensus protocol's name on p2p.
pub const CONSENSUS_PROTOCOL_NAME: &str = "qbft";
/// The consensus protocol's version; a change of its messages' encoding,
/// of the bytes they sign or of the p2p framing takes a new one (2.0.0:
/// the lock hash is signed, and messages travel on long-lived streams,
/// each greeted by the receiver before its first frame).
pub const CONSENSUS_PROTOCOL_VERSION: &str = "2.0.0";

/// Fulu's cell proofs per blob (CELLS_PER_EXT_BLOB), 48 bytes each.
const CELL_PROOFS_PER_BLOB: usize = 128;
/// The largest block the node accepts in consensus besides its blobs: the
/// consensus layer's MAX_PAYLOAD_SIZE (10 MiB), the most a block may have
/// uncompressed to travel on the beacon network at all (the execution
/// block within it is bounded further, at 8 MiB, since Fulu's EIP-7934),
/// and 64 KiB for the value's envelope.
const MAX_BLOCK_WITHOUT_BLOBS: usize = (10 << 20) + (64 << 10);

/// The largest value of a duty type other than the proposer's: attestation
/// data per committee, aggregates per committee, contributions per
/// subcommittee. A slot has at most 64 committees, and an Electra aggregate
/// with every aggregation bit of its type (131,072) is under 17 KiB, so 64
/// of them with their keys stay under 1.1 MiB.
pub const MAX_SMALL_VALUE: usize = 2 << 20;

/// The consensus protocol, sized for the largest message it carries: a
/// proposal of a Fulu block with the network's maximum number of blobs and
/// their cell proofs, travelling once per instance (plus the proposal's
/// justification, which carries hashes only).
pub fn consensus_protocol(max_blobs_per_block: u64) -> Protocol {
    let blobs = usize::try_from(max_blobs_per_block).unwrap_or(usize::MAX / 2);
    let per_blob = BYTES_PER_BLOB + CELL_PROOFS_PER_BLOB * BYTES_PER_PROOF + BYTES_PER_PROOF;
    Protocol {
        name: CONSENSUS_PROTOCOL_NAME,
        version: CONSENSUS_PROTOCOL_VERSION,
        max_size: MAX_BLOCK_WITHOUT_BLOBS.saturating_add(blobs.saturating_mul(per_blob)),
        // An honest peer sends a few messages per instance and a few
        // instances a slot; a burst beyond waits for room at the receiver.
        queue_per_peer: 256,
    }
}

/// A consensus message as the node handles it.
pub type ConsensusWire = phalanx_consensus::Wire<crate::duty::Duty, DutyValue>;

/// A value's bytes as they lie in a received frame.
struct InFrame<'a>(&'a [u8]);

impl<'de> serde::Deserialize<'de> for InFrame<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = InFrame<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes in the frame")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<InFrame<'de>, E> {
                Ok(InFrame(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// Decodes a received consensus message of at most `limit` bytes from its
/// frame, the value it carries (a block of megabytes, for one) moved to the
/// front of the frame's own buffer instead of copied: a message costs one
/// allocation of its size, not two.
pub fn decode_consensus(mut frame: Vec<u8>, limit: usize) -> Result<ConsensusWire, CodecError> {
    let mut place = None;
    let wire = {
        let borrowed: phalanx_consensus::Wire<crate::duty::Duty, InFrame<'_>> =
            phalanx_p2p::decode_borrowed(&frame, limit)?;
        let start = frame.as_ptr() as usize;
        borrowed.map_value(|value| {
            let offset = (value.0.as_ptr() as usize).saturating_sub(start);
            place = Some(offset..offset + value.0.len());
        })
    };
    let mut value = place.map(|range| {
        let len = range.len();
        frame.copy_within(range, 0);
        frame.truncate(len);
        DutyValue(frame)
    });
    Ok(wire.map_value(|()| value.take().unwrap_or(DutyValue(Vec::new()))))
}

/// The largest messages of the consensus protocol a peer may have waiting
/// for instances this node has not started yet.
///
/// An honest peer sends at most one value per instance and round (its
/// proposal when it leads, or its round change with the value it
/// prepared), and only the proposer duty carries large values, one
/// instance per slot: two of the largest messages cover a peer's proposal
/// and its next round change while this node's beacon node is still
/// producing the block. Everything beyond is refused, and the instance
/// still decides through round changes and the decided message.
const BUFFERED_LARGEST_MESSAGES_PER_PEER: usize = 2;

/// The consensus engine's limits for a network whose blocks carry at most
/// `max_blobs_per_block` blobs: the defaults, with the per-peer buffer in
/// bytes sized by [`consensus_protocol`]'s largest message.
pub fn engine_config(max_blobs_per_block: u64) -> Config {
    Config {
        max_buffered_bytes_per_peer: consensus_protocol(max_blobs_per_block)
            .max_size
            .saturating_mul(BUFFERED_LARGEST_MESSAGES_PER_PEER),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::testing::{TestKey, TestValidity, TestValue};
    use phalanx_consensus::{
        Action, Committee, Engine, Event, LinearTimeout, Parts, RotatingLeader, Wire,
    };
    use std::collections::VecDeque;
    use std::time::Duration;

    /// Four engines whose messages are signed with real node keys and
    /// checked against the operators' public keys decide; a message signed
    /// by the wrong operator is refused.
    #[test]
    fn engines_decide_with_node_key_signatures() {
        let keys: Vec<NodeKey> = (0..4).map(|_| NodeKey::generate()).collect();
        let publics: Vec<[u8; 33]> = keys.iter().map(NodeKey::public_key).collect();
        let committee = Committee::new(4).expect("size");
        let mut engines: Vec<Engine<TestKey, TestValue>> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                Engine::new(
                    OperatorIndex(i as u32),
                    committee,
                    Config::default(),
                    Parts {
                        lock_hash: [0x4c; 32],
                        signer: Box::new(NodeSigner(key.clone())),
                        verifier: Box::new(LockVerifier::new(publics.clone())),
                        leader: Box::new(RotatingLeader),
                        timeout: Box::new(LinearTimeout {
                            base: Duration::from_secs(1),
                            step: Duration::from_secs(1),
                        }),
                    },
                )
                .expect("engine")
            })
            .collect();
        let mut queue: VecDeque<(u32, u32, Wire<TestKey, TestValue>)> = VecDeque::new();
        let mut decided = Vec::new();
        let mut route =
            |from: u32, actions: Vec<Action<TestKey, TestValue>>, queue: &mut VecDeque<_>| {
                for action in actions {
                    match action {
                        Action::Broadcast(m) => (0..4)
                            .filter(|&to| to != from)
                            .for_each(|to| queue.push_back((from, to, m.clone()))),
                        Action::Send { to, message } => queue.push_back((from, to.0, message)),
                        Action::Decide(d) => decided.push(d.value),
                        // Late messages after a decision are dropped as moot;
                        // nothing may be dropped as a fault.
                        Action::Dropped { reason, .. } => {
                            assert!(!reason.is_fault(), "dropped: {reason}")
                        }
                        _ => {}
                    }
                }
            };
        for (i, engine) in engines.iter_mut().enumerate() {
            let actions = engine.handle(
                Event::Propose {
                    instance: TestKey(0),
                    value: TestValue(i as u64 + 1),
                },
                &TestValidity,
            );
            route(i as u32, actions, &mut queue);
        }
        while let Some((from, to, message)) = queue.pop_front() {
            let actions = engines[to as usize].handle(
                Event::Message {
                    from: OperatorIndex(from),
                    message,
                },
                &TestValidity,
            );
            route(to, actions, &mut queue);
        }
        assert_eq!(decided.len(), 4);
        assert!(decided.iter().all(|v| *v == decided[0]));

        let verifier = LockVerifier::new(publics);
        let signature = NodeSigner(keys[1].clone()).sign(b"prepare");
        assert!(verifier.verify(OperatorIndex(1), b"prepare", &signature));
        assert!(!verifier.verify(OperatorIndex(2), b"prepare", &signature));
        assert!(!verifier.verify(OperatorIndex(9), b"prepare", &signature));
    }

    #[test]
    fn the_protocol_fits_the_largest_fulu_block() {
        // Mainnet's blob schedule reaches 21 blobs (BPO2).
        let protocol = consensus_protocol(21);
        assert!(protocol.max_size >= 21 * BYTES_PER_BLOB + (10 << 20));
        assert!(protocol.max_size < 14 << 20, "{}", protocol.max_size);
        assert_eq!(protocol.id(), "/phalanx/qbft/2.0.0");
    }

    #[test]
    fn a_received_value_stays_in_its_frame() {
        use crate::duty::{Duty, DutyType};
        use phalanx_consensus::{
            Kind, Message, PreparedCertificate, Round, SignedMessage, Value, Wire,
        };
        use phalanx_eth::Slot;
        let limit = consensus_protocol(21).max_size;
        let signed = |kind| SignedMessage {
            message: Message {
                instance: Duty::new(Slot(3), DutyType::Proposer),
                round: Round(2),
                sender: OperatorIndex(1),
                kind,
            },
            signature: MessageSignature(vec![5; 65]),
        };
        let block = DutyValue((0..12_000_000u32).map(|i| (i % 253) as u8).collect());
        let hash = block.value_hash();
        let wires: Vec<ConsensusWire> = vec![
            Wire::Proposal {
                proposal: signed(Kind::Proposal(hash)),
                value: block.clone(),
                justification: phalanx_consensus::ProposalJustification {
                    round_changes: vec![signed(Kind::RoundChange(None))],
                    prepares: vec![signed(Kind::Prepare(hash))],
                },
            },
            Wire::RoundChange {
                round_change: signed(Kind::RoundChange(None)),
                prepared: Some(PreparedCertificate {
                    value: DutyValue(vec![1, 2, 3]),
                    prepares: vec![signed(Kind::Prepare(hash))],
                }),
            },
            Wire::RoundChange {
                round_change: signed(Kind::RoundChange(None)),
                prepared: None,
            },
            Wire::Decided {
                value: DutyValue(Vec::new()),
                commits: vec![signed(Kind::Commit(hash))],
            },
            Wire::Commit(signed(Kind::Commit(hash))),
        ];
        for wire in wires {
            let frame = phalanx_p2p::encode(&wire, limit).expect("encode");
            let copied: ConsensusWire = phalanx_p2p::decode(&frame, limit).expect("decode");
            let buffer = frame.as_ptr();
            let in_place = decode_consensus(frame.clone(), limit).expect("decode");
            assert_eq!(
                phalanx_p2p::encode(&in_place, limit).expect("encode"),
                phalanx_p2p::encode(&copied, limit).expect("encode"),
                "{}",
                wire.kind_name()
            );
            // The block is read where it lies, in the frame's buffer.
            let frame_for_pointer = frame;
            let ptr = frame_for_pointer.as_ptr();
            assert_eq!(ptr, buffer);
            if let Wire::Proposal { value, .. } =
                decode_consensus(frame_for_pointer, limit).expect("decode")
            {
                assert_eq!(value.0.as_ptr(), ptr);
                assert_eq!(value, block);
            }
            // A frame cut short is refused.
            let mut cut = phalanx_p2p::encode(&wire, limit).expect("encode");
            cut.truncate(cut.len() - 1);
            assert!(decode_consensus(cut, limit).is_err());
        }
    }

    #[test]
    fn the_largest_aggregator_value_is_a_small_one() {
        use crate::duty::{Duty, DutyType};
        use crate::value::encode_entries;
        use phalanx_consensus::InstanceKey;
        use phalanx_eth::attestation::{AttestationData, AttestationElectra};
        use phalanx_eth::{MainnetEthSpec, Slot};
        use ssz::Encode;
        // Every committee of a slot aggregated, each aggregate with every
        // bit its type has.
        let bits = 2048 * 64;
        let mut aggregate = AttestationElectra::<MainnetEthSpec> {
            aggregation_bits: ssz_types::BitList::with_capacity(bits).expect("bits"),
            data: AttestationData::default(),
            signature: Default::default(),
            committee_bits: ssz_types::BitVector::new(),
        };
        for bit in 0..bits {
            aggregate.aggregation_bits.set(bit, true).expect("bit");
        }
        let entries: Vec<(u64, Vec<u8>)> = (0..64).map(|c| (c, aggregate.as_ssz_bytes())).collect();
        let value = encode_entries(&entries);
        let aggregator = Duty::new(Slot(1), DutyType::Aggregator);
        assert!(
            value.0.len() <= aggregator.max_value_bytes(),
            "{}",
            value.0.len()
        );
        assert_eq!(aggregator.max_value_bytes(), MAX_SMALL_VALUE);
        assert_eq!(
            Duty::new(Slot(1), DutyType::Proposer).max_value_bytes(),
            usize::MAX
        );
    }

    #[test]
    fn the_engine_buffers_two_of_the_largest_messages_per_peer() {
        let config = engine_config(21);
        assert_eq!(
            config.max_buffered_bytes_per_peer,
            2 * consensus_protocol(21).max_size
        );
        assert!(config.max_buffered_bytes_per_peer < 64 << 20);
        assert_eq!(
            config.max_buffered_per_peer,
            Config::default().max_buffered_per_peer
        );
    }
}
