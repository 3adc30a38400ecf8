//! What one byzantine operator (a member with a valid key) cannot make an
//! engine do: answer the same decided instance again and again, fill the
//! buffer for instances not started with duplicates, oversized values or
//! instances that never run consensus, or carry messages of one cluster
//! into another.

use std::time::Duration;

use phalanx_consensus::testing::{sign_as, test_parts, TestKey, TestValidity, TestValue};
use phalanx_consensus::{
    Action, Committee, Config, Engine, Event, Kind, LinearTimeout, Message, MessageSignature,
    OperatorIndex, RejectReason, Round, SignedMessage, Value, Wire,
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
