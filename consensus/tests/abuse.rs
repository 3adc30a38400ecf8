//! What one byzantine operator (a member with a valid key) cannot make an
//! engine do: answer the same decided instance again and again, fill the
//! buffer for instances not started with duplicates, oversized values or
//! instances that never run consensus, or carry messages of one cluster
//! into another.

use std::time::Duration;

use phalanx_consensus::testing::{
    sign_as, sign_in, test_parts, MacSigner, MacVerifier, TestKey, TestValidity, TestValue,
    TEST_LOCK_HASH,
};
use phalanx_consensus::{
    AcceptAll, Action, Committee, Config, Engine, Event, InstanceKey, Kind, LinearTimeout, Message,
    MessageSignature, OperatorIndex, Parts, Prepared, PreparedCertificate, RejectReason,
    RotatingLeader, Round, SignedMessage, Value, ValueHash, Wire,
};

type TestWire = Wire<TestKey, TestValue>;
type TestAction = Action<TestKey, TestValue>;

const KEY: TestKey = TestKey(7);
const N: u32 = 4;

fn committee() -> Committee {
    Committee::new(N).expect("size")
}

fn timeout() -> LinearTimeout {
    LinearTimeout {
        base: Duration::from_secs(1),
        step: Duration::from_secs(1),
    }
}

/// An engine whose clock stands at the test instance's position.
fn engine_with(me: OperatorIndex, config: Config) -> Engine<TestKey, TestValue> {
    let mut engine =
        Engine::new(me, committee(), config, test_parts(me, timeout())).expect("engine");
    engine.handle(Event::Advance { position: KEY.0 }, &TestValidity);
    engine
}

fn msg(sender: OperatorIndex, round: u64, kind: Kind) -> SignedMessage<TestKey> {
    sign_as(Message {
        instance: KEY,
        round: Round(round),
        sender,
        kind,
    })
}

fn deliver(
    engine: &mut Engine<TestKey, TestValue>,
    from: OperatorIndex,
    message: TestWire,
) -> Vec<TestAction> {
    engine.handle(Event::Message { from, message }, &TestValidity)
}

fn rejection(actions: &[TestAction]) -> Option<RejectReason> {
    actions.iter().find_map(|a| match a {
        Action::Dropped { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

fn sends(actions: &[TestAction]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Send { .. }))
        .count()
}

fn round_change(sender: OperatorIndex, round: u64) -> TestWire {
    Wire::RoundChange {
        round_change: msg(sender, round, Kind::RoundChange(None)),
        prepared: None,
    }
}

/// Operator 3's engine, decided on value 4 in round 1.
fn decided_engine() -> Engine<TestKey, TestValue> {
    let me = OperatorIndex(3);
    let mut engine = engine_with(me, Config::default());
    engine.handle(
        Event::Propose {
            instance: KEY,
            value: TestValue(1),
        },
        &TestValidity,
    );
    let commits: Vec<_> = (0..3)
        .map(|i| msg(OperatorIndex(i), 1, Kind::Commit(TestValue(4).value_hash())))
        .collect();
    let actions = deliver(
        &mut engine,
        OperatorIndex(0),
        Wire::Decided {
            value: TestValue(4),
            commits,
        },
    );
    assert!(actions.iter().any(|a| matches!(a, Action::Decide(_))));
    engine
}

#[test]
fn a_decided_node_answers_only_verified_round_changes() {
    let mut engine = decided_engine();
    let peer = OperatorIndex(1);

    let mut unsigned = msg(peer, 2, Kind::RoundChange(None));
    unsigned.signature = MessageSignature(Vec::new());
    let actions = deliver(
        &mut engine,
        peer,
        Wire::RoundChange {
            round_change: unsigned,
            prepared: None,
        },
    );
    assert_eq!(sends(&actions), 0, "an unsigned round change: {actions:?}");
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::BadSignature(peer.0))
    );

    let mut garbage = msg(peer, 5, Kind::RoundChange(None));
    garbage.signature = MessageSignature(vec![0xAB; 8]);
    let actions = deliver(
        &mut engine,
        peer,
        Wire::RoundChange {
            round_change: garbage,
            prepared: None,
        },
    );
    assert_eq!(sends(&actions), 0, "a forged round change: {actions:?}");
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::BadSignature(peer.0))
    );

    let beyond = msg(peer, u64::MAX, Kind::RoundChange(None));
    let actions = deliver(
        &mut engine,
        peer,
        Wire::RoundChange {
            round_change: beyond,
            prepared: None,
        },
    );
    assert_eq!(sends(&actions), 0, "a round beyond max_round: {actions:?}");
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::RoundOutOfRange(u64::MAX))
    );
}

#[test]
fn a_decided_node_answers_a_peer_again_only_once_its_round_doubled() {
    let mut engine = decided_engine();
    let peer = OperatorIndex(1);
    let actions = deliver(&mut engine, peer, round_change(peer, 2));
    assert_eq!(sends(&actions), 1, "a valid round change: {actions:?}");
    let actions = deliver(&mut engine, peer, round_change(peer, 3));
    assert_eq!(sends(&actions), 0, "a higher round: {actions:?}");
    assert_eq!(rejection(&actions), Some(RejectReason::AlreadyDecided));
    // Another peer still gets its answer.
    let other = OperatorIndex(2);
    assert_eq!(
        sends(&deliver(&mut engine, other, round_change(other, 9))),
        1
    );
    // A round change relayed for someone else is not answered to the relay.
    let actions = deliver(&mut engine, peer, round_change(OperatorIndex(0), 2));
    assert_eq!(sends(&actions), 0, "a relayed round change: {actions:?}");

    // Every round up to the last one: answers at rounds 4, 8, 16, 32 and
    // 64 only, so at most 1 + log2(max_round) answers per peer and instance.
    let max_round = Config::default().max_round;
    let answered: Vec<u64> = (4..=max_round)
        .filter(|&round| sends(&deliver(&mut engine, peer, round_change(peer, round))) == 1)
        .collect();
    assert_eq!(answered, [4, 8, 16, 32, 64]);
}

/// A value of any size, to fill buffers by bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Blob(Vec<u8>);

impl Value for Blob {
    fn value_hash(&self) -> ValueHash {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(self.0.len() as u64).to_le_bytes());
        for (i, byte) in self.0.iter().enumerate() {
            hash[8 + i % 24] ^= byte.rotate_left(i as u32 % 8);
        }
        ValueHash(hash)
    }

    fn byte_len(&self) -> usize {
        self.0.len()
    }
}

fn engine_of<K: InstanceKey, V: Value>(me: OperatorIndex, config: Config) -> Engine<K, V> {
    let mut engine = Engine::new(
        me,
        committee(),
        config,
        Parts {
            lock_hash: TEST_LOCK_HASH,
            signer: Box::new(MacSigner::new(me)),
            verifier: Box::new(MacVerifier),
            leader: Box::new(RotatingLeader),
            timeout: Box::new(timeout()),
        },
    )
    .expect("engine");
    engine.handle(Event::Advance { position: KEY.0 }, &AcceptAll);
    engine
}

/// An instance key whose type may never run consensus, as the node's
/// randao or exit duties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Typed {
    position: u64,
    agreed_on: bool,
}

/// The largest value [`Typed`] instances take (a small type's).
const TYPED_MAX_VALUE: usize = 1_000;

impl InstanceKey for Typed {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.position.to_be_bytes());
        out.push(u8::from(self.agreed_on));
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn runs_consensus(&self) -> bool {
        self.agreed_on
    }

    fn max_value_bytes(&self) -> usize {
        TYPED_MAX_VALUE
    }
}

#[test]
fn values_larger_than_their_instance_type_takes_are_refused_before_any_check() {
    let mut engine: Engine<Typed, Blob> = engine_of(OperatorIndex(1), Config::default());
    // Round 1 of this instance is operator 3's.
    let leader = OperatorIndex(3);
    let instance = Typed {
        position: KEY.0,
        agreed_on: true,
    };
    let proposal = |blob: Blob| Wire::Proposal {
        proposal: sign_as(Message {
            instance,
            round: Round(1),
            sender: leader,
            kind: Kind::Proposal(blob.value_hash()),
        }),
        value: blob,
        justification: Default::default(),
    };
    // Not started here: buffered when it fits, refused unverified when not.
    let big = proposal(Blob(vec![1; TYPED_MAX_VALUE + 1]));
    let actions = engine.handle(
        Event::Message {
            from: leader,
            message: big,
        },
        &AcceptAll,
    );
    let reason = actions.iter().find_map(|a| match a {
        Action::Dropped { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(RejectReason::ValueTooLarge(TYPED_MAX_VALUE + 1)),
        "{actions:?}"
    );
    assert!(RejectReason::ValueTooLarge(0).is_fault());
    assert_eq!(engine.buffered_count(), 0);
    let fits = proposal(Blob(vec![1; TYPED_MAX_VALUE]));
    let actions = engine.handle(
        Event::Message {
            from: leader,
            message: fits,
        },
        &AcceptAll,
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(engine.buffered_count(), 1);
}

#[test]
fn instances_that_never_run_consensus_are_refused_before_any_check() {
    let mut engine: Engine<Typed, TestValue> = engine_of(OperatorIndex(3), Config::default());
    let peer = OperatorIndex(1);
    let prepare = |agreed_on: bool| {
        sign_as(Message {
            instance: Typed {
                position: KEY.0,
                agreed_on,
            },
            round: Round(1),
            sender: peer,
            kind: Kind::Prepare(TestValue(1).value_hash()),
        })
    };
    let mut forged = prepare(false);
    forged.signature = MessageSignature(vec![1; 8]);
    for message in [forged, prepare(false)] {
        let actions = engine.handle(
            Event::Message {
                from: peer,
                message: Wire::Prepare(message),
            },
            &AcceptAll,
        );
        let reason = actions.iter().find_map(|a| match a {
            Action::Dropped { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(reason, Some(RejectReason::NoConsensus), "{actions:?}");
        assert!(RejectReason::NoConsensus.is_fault());
    }
    assert_eq!(engine.buffered_count(), 0);
    let actions = engine.handle(
        Event::Message {
            from: peer,
            message: Wire::Prepare(prepare(true)),
        },
        &AcceptAll,
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(engine.buffered_count(), 1);
}

#[test]
fn a_second_message_for_a_buffered_slot_is_dropped() {
    let mut engine = engine_with(OperatorIndex(3), Config::default());
    let peer = OperatorIndex(1);
    let prepare = msg(peer, 1, Kind::Prepare(TestValue(1).value_hash()));
    assert!(deliver(&mut engine, peer, Wire::Prepare(prepare.clone())).is_empty());
    let again = deliver(&mut engine, peer, Wire::Prepare(prepare));
    assert_eq!(
        rejection(&again),
        Some(RejectReason::AlreadyBuffered("prepare", peer.0))
    );
    assert!(!RejectReason::AlreadyBuffered("prepare", peer.0).is_fault());
    // Another prepare of the same sender and round: the slot is taken.
    let other = msg(peer, 1, Kind::Prepare(TestValue(2).value_hash()));
    let actions = deliver(&mut engine, peer, Wire::Prepare(other));
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::AlreadyBuffered("prepare", peer.0))
    );
    // The same slot relayed by another peer is taken too.
    let relay = OperatorIndex(2);
    let relayed = msg(peer, 1, Kind::Prepare(TestValue(1).value_hash()));
    let actions = deliver(&mut engine, relay, Wire::Prepare(relayed));
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::AlreadyBuffered("prepare", peer.0))
    );
    assert_eq!(engine.buffered_count(), 1);
    // Another kind or round is another slot.
    let commit = msg(peer, 1, Kind::Commit(TestValue(1).value_hash()));
    assert!(deliver(&mut engine, peer, Wire::Commit(commit)).is_empty());
    let later = msg(peer, 2, Kind::Prepare(TestValue(1).value_hash()));
    assert!(deliver(&mut engine, peer, Wire::Prepare(later)).is_empty());
    assert_eq!(engine.buffered_count(), 3);
}

#[test]
fn the_buffer_is_bounded_per_peer_in_bytes() {
    let config = Config {
        max_buffered_bytes_per_peer: 10_000,
        ..Config::default()
    };
    let mut engine: Engine<TestKey, Blob> = engine_of(OperatorIndex(3), config);
    let blob = Blob(vec![7; 4_000]);
    let hash = blob.value_hash();
    // A round change for each round, each carrying the value prepared in
    // round 1 with its (valid) certificate.
    let carrying = |sender: OperatorIndex, round: u64| Wire::RoundChange {
        round_change: sign_as(Message {
            instance: KEY,
            round: Round(round),
            sender,
            kind: Kind::RoundChange(Some(Prepared {
                round: Round(1),
                value: hash,
            })),
        }),
        prepared: Some(PreparedCertificate {
            value: blob.clone(),
            prepares: (0..3)
                .map(|i| {
                    sign_as(Message {
                        instance: KEY,
                        round: Round(1),
                        sender: OperatorIndex(i),
                        kind: Kind::Prepare(hash),
                    })
                })
                .collect(),
        }),
    };
    let peer = OperatorIndex(1);
    let mut accepted = 0;
    let mut full = None;
    for round in 2..=10 {
        let actions = engine.handle(
            Event::Message {
                from: peer,
                message: carrying(peer, round),
            },
            &AcceptAll,
        );
        match actions.as_slice() {
            [] => accepted += 1,
            [Action::Dropped { reason, .. }] => {
                full = Some(reason.clone());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 2, "two 4 kB values fit in 10 kB, not three");
    assert_eq!(full, Some(RejectReason::BufferFull(peer.0)));
    // Another peer still has room.
    let other = OperatorIndex(2);
    let actions = engine.handle(
        Event::Message {
            from: other,
            message: carrying(other, 2),
        },
        &AcceptAll,
    );
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn messages_of_another_cluster_are_refused() {
    let other_cluster = [0x0c; 32];
    assert_ne!(other_cluster, TEST_LOCK_HASH);
    let me = OperatorIndex(3);
    let mut engine = Engine::new(
        me,
        committee(),
        Config::default(),
        Parts {
            lock_hash: other_cluster,
            ..test_parts(me, timeout())
        },
    )
    .expect("engine");
    engine.handle(Event::Advance { position: KEY.0 }, &TestValidity);
    engine.handle(
        Event::Propose {
            instance: KEY,
            value: TestValue(1),
        },
        &TestValidity,
    );
    // The same operators with the same keys, signing in the test cluster.
    let peer = OperatorIndex(1);
    let prepare = msg(peer, 1, Kind::Prepare(TestValue(2).value_hash()));
    let actions = deliver(&mut engine, peer, Wire::Prepare(prepare));
    assert_eq!(
        rejection(&actions),
        Some(RejectReason::BadSignature(peer.0))
    );
    let commits = |lock_hash: &[u8; 32]| -> Vec<SignedMessage<TestKey>> {
        (0..3)
            .map(|i| {
                sign_in(
                    lock_hash,
                    Message {
                        instance: KEY,
                        round: Round(1),
                        sender: OperatorIndex(i),
                        kind: Kind::Commit(TestValue(4).value_hash()),
                    },
                )
            })
            .collect()
    };
    let replayed = Wire::Decided {
        value: TestValue(4),
        commits: commits(&TEST_LOCK_HASH),
    };
    let actions = deliver(&mut engine, peer, replayed);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Decide(_))),
        "a decided certificate of another cluster: {actions:?}"
    );
    assert_eq!(rejection(&actions), Some(RejectReason::BadSignature(0)));
    // The cluster's own certificate decides.
    let own = Wire::Decided {
        value: TestValue(4),
        commits: commits(&other_cluster),
    };
    let actions = deliver(&mut engine, peer, own);
    assert!(actions.iter().any(|a| matches!(a, Action::Decide(_))));
}
