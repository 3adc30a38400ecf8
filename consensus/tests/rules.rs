//! Named regression cases for each QBFT rule, one engine at a time: the
//! justification rules for proposals above round 1 and for round changes,
//! the f+1 round-change jump, decided messages, and what is refused without
//! changing state (bad signatures, non-members, duplicates, equivocation,
//! rounds out of range), buffering and expiry.

use std::time::Duration;

use phalanx_consensus::testing::{
    sign_as, test_parts, TestKey, TestValidity, TestValue, INVALID_VALUES,
};
use phalanx_consensus::{
    Action, Committee, Config, Engine, Event, Kind, LeaderSelection, LinearTimeout, Message,
    MessageSignature, OperatorIndex, Prepared, PreparedCertificate, ProposalJustification,
    RejectReason, RotatingLeader, Round, SignedMessage, Value, Wire,
};

type TestWire = Wire<TestKey, TestValue>;
type TestAction = Action<TestKey, TestValue>;

const KEY: TestKey = TestKey(7);
const N: u32 = 4;

fn committee() -> Committee {
    Committee::new(N).expect("size")
}

fn leader(round: u64) -> OperatorIndex {
    RotatingLeader.leader(&KEY, Round(round), committee())
}

/// An operator that leads neither of the first three rounds.
fn follower() -> OperatorIndex {
    (0..N)
        .map(OperatorIndex)
        .find(|&o| o != leader(1) && o != leader(2) && o != leader(3))
        .expect("n = 4 has a fourth operator")
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

/// An engine for `me` that has started the instance with value 1.
fn started(me: OperatorIndex) -> Engine<TestKey, TestValue> {
    let mut engine = engine_with(me, Config::default());
    engine.handle(
        Event::Propose {
            instance: KEY,
            value: TestValue(1),
        },
        &TestValidity,
    );
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

fn h(value: u64) -> phalanx_consensus::ValueHash {
    TestValue(value).value_hash()
}

fn others(me: OperatorIndex) -> impl Iterator<Item = OperatorIndex> {
    (0..N).map(OperatorIndex).filter(move |&o| o != me)
}

fn prepares(
    round: u64,
    value: u64,
    senders: impl Iterator<Item = OperatorIndex>,
) -> Vec<SignedMessage<TestKey>> {
    senders
        .map(|s| msg(s, round, Kind::Prepare(h(value))))
        .collect()
}

fn round_change(
    sender: OperatorIndex,
    round: u64,
    prepared: Option<(u64, u64)>,
) -> SignedMessage<TestKey> {
    msg(
        sender,
        round,
        Kind::RoundChange(prepared.map(|(r, v)| Prepared {
            round: Round(r),
            value: h(v),
        })),
    )
}

fn proposal(round: u64, value: u64, justification: ProposalJustification<TestKey>) -> TestWire {
    Wire::Proposal {
        proposal: msg(leader(round), round, Kind::Proposal(h(value))),
        value: TestValue(value),
        justification,
    }
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

fn refused(actions: &[TestAction]) -> RejectReason {
    assert_eq!(
        actions.len(),
        1,
        "a refused message only yields its rejection: {actions:?}"
    );
    rejection(actions).expect("a rejection")
}

fn broadcast_prepare(actions: &[TestAction]) -> Option<(Round, phalanx_consensus::ValueHash)> {
    actions.iter().find_map(|a| match a {
        Action::Broadcast(Wire::Prepare(m)) => match m.message.kind {
            Kind::Prepare(hash) => Some((m.round(), hash)),
            _ => None,
        },
        _ => None,
    })
}

fn decided(actions: &[TestAction]) -> Option<TestValue> {
    actions.iter().find_map(|a| match a {
        Action::Decide(d) => Some(d.value),
        _ => None,
    })
}

/// Round changes for `round` from the first `count` operators other than
/// the leader of `round`, plus the leader's own.
fn quorum_rcs(
    round: u64,
    count: usize,
    prepared: Option<(u64, u64)>,
) -> Vec<SignedMessage<TestKey>> {
    (0..N)
        .map(OperatorIndex)
        .take(count)
        .map(|s| round_change(s, round, prepared))
        .collect()
}

#[test]
fn a_justified_round_two_proposal_moves_a_node_to_round_two() {
    let me = follower();
    let mut engine = started(me);
    let justification = ProposalJustification {
        round_changes: quorum_rcs(2, 3, None),
        prepares: Vec::new(),
    };
    let actions = deliver(&mut engine, leader(2), proposal(2, 9, justification));
    assert_eq!(rejection(&actions), None);
    assert_eq!(broadcast_prepare(&actions), Some((Round(2), h(9))));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SetTimer {
            round: Round(2),
            ..
        }
    )));
    assert_eq!(engine.round(&KEY), Some(Round(2)));
}

#[test]
fn a_proposal_without_a_quorum_of_round_changes_is_refused() {
    let mut engine = started(follower());
    let justification = ProposalJustification {
        round_changes: quorum_rcs(2, 2, None),
        prepares: Vec::new(),
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 9, justification),
    ));
    assert!(
        matches!(reason, RejectReason::InvalidJustification(_)),
        "{reason}"
    );
    assert_eq!(engine.round(&KEY), Some(Round(1)));
}

#[test]
fn round_changes_for_another_round_do_not_justify() {
    let mut engine = started(follower());
    let justification = ProposalJustification {
        round_changes: quorum_rcs(3, 3, None),
        prepares: Vec::new(),
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 9, justification),
    ));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("a round change for another round")
    );
}

#[test]
fn one_round_change_counted_twice_does_not_justify() {
    let mut engine = started(follower());
    let mut rcs = quorum_rcs(2, 2, None);
    rcs.push(rcs[0].clone());
    let justification = ProposalJustification {
        round_changes: rcs,
        prepares: Vec::new(),
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 9, justification),
    ));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("one sender counted twice")
    );
}

#[test]
fn a_new_leader_must_propose_the_highest_prepared_value() {
    let me = follower();
    // One round change reports value 5 prepared in round 1, with its certificate.
    let mut rcs = quorum_rcs(2, 3, None);
    rcs[0] = round_change(rcs[0].sender(), 2, Some((1, 5)));
    let certificate = prepares(1, 5, (0..3).map(OperatorIndex));

    let mut engine = started(me);
    let other_value = ProposalJustification {
        round_changes: rcs.clone(),
        prepares: certificate.clone(),
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 9, other_value),
    ));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("the proposal is not the highest prepared value")
    );

    let no_certificate = ProposalJustification {
        round_changes: rcs.clone(),
        prepares: Vec::new(),
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 5, no_certificate),
    ));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("not a quorum of prepares")
    );

    let mut wrong_round = certificate.clone();
    wrong_round[2] = msg(OperatorIndex(2), 2, Kind::Prepare(h(5)));
    let bad_certificate = ProposalJustification {
        round_changes: rcs.clone(),
        prepares: wrong_round,
    };
    let reason = refused(&deliver(
        &mut engine,
        leader(2),
        proposal(2, 5, bad_certificate),
    ));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("a prepare for another round or value")
    );
    assert_eq!(
        engine.round(&KEY),
        Some(Round(1)),
        "refusals change nothing"
    );

    let right = ProposalJustification {
        round_changes: rcs,
        prepares: certificate,
    };
    let actions = deliver(&mut engine, leader(2), proposal(2, 5, right));
    assert_eq!(rejection(&actions), None);
    assert_eq!(broadcast_prepare(&actions), Some((Round(2), h(5))));
}

#[test]
fn the_highest_prepared_round_wins_over_lower_ones() {
    let me = follower();
    let senders: Vec<OperatorIndex> = (0..N).map(OperatorIndex).take(3).collect();
    let rcs = vec![
        round_change(senders[0], 3, Some((1, 5))),
        round_change(senders[1], 3, Some((2, 6))),
        round_change(senders[2], 3, None),
    ];
    let mut engine = started(me);
    let lower = ProposalJustification {
        round_changes: rcs.clone(),
        prepares: prepares(1, 5, (0..3).map(OperatorIndex)),
    };
    let reason = refused(&deliver(&mut engine, leader(3), proposal(3, 5, lower)));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("the proposal is not the highest prepared value")
    );
    let highest = ProposalJustification {
        round_changes: rcs,
        prepares: prepares(2, 6, (0..3).map(OperatorIndex)),
    };
    let actions = deliver(&mut engine, leader(3), proposal(3, 6, highest));
    assert_eq!(broadcast_prepare(&actions), Some((Round(3), h(6))));
}

#[test]
fn proposals_from_a_non_leader_or_with_a_first_round_justification_are_refused() {
    let me = follower();
    let mut engine = started(me);
    let impostor = others(me)
        .find(|&o| o != leader(1))
        .expect("another operator");
    let forged = Wire::Proposal {
        proposal: msg(impostor, 1, Kind::Proposal(h(3))),
        value: TestValue(3),
        justification: ProposalJustification::default(),
    };
    let reason = refused(&deliver(&mut engine, impostor, forged));
    assert!(
        matches!(reason, RejectReason::WrongLeader { .. }),
        "{reason}"
    );

    let justified_first = proposal(
        1,
        3,
        ProposalJustification {
            round_changes: quorum_rcs(1, 3, None),
            prepares: Vec::new(),
        },
    );
    let reason = refused(&deliver(&mut engine, leader(1), justified_first));
    assert!(
        matches!(reason, RejectReason::InvalidJustification(_)),
        "{reason}"
    );
}

#[test]
fn invalid_values_are_not_prepared() {
    let mut engine = started(follower());
    let reason = refused(&deliver(
        &mut engine,
        leader(1),
        proposal(1, INVALID_VALUES + 1, ProposalJustification::default()),
    ));
    assert!(matches!(reason, RejectReason::InvalidValue(_)), "{reason}");
    // The honest proposal of the round is still accepted afterwards.
    let actions = deliver(
        &mut engine,
        leader(1),
        proposal(1, 3, ProposalJustification::default()),
    );
    assert_eq!(broadcast_prepare(&actions), Some((Round(1), h(3))));
}

#[test]
fn round_changes_must_prove_what_they_claim() {
    let me = follower();
    let mut engine = started(me);
    let sender = others(me).next().expect("peer");
    let no_certificate = Wire::RoundChange {
        round_change: round_change(sender, 2, Some((1, 5))),
        prepared: None,
    };
    let reason = refused(&deliver(&mut engine, sender, no_certificate));
    assert_eq!(
        reason,
        RejectReason::Malformed("round change claim and certificate disagree")
    );

    let short = Wire::RoundChange {
        round_change: round_change(sender, 2, Some((1, 5))),
        prepared: Some(PreparedCertificate {
            value: TestValue(5),
            prepares: prepares(1, 5, (0..2).map(OperatorIndex)),
        }),
    };
    let reason = refused(&deliver(&mut engine, sender, short));
    assert_eq!(
        reason,
        RejectReason::InvalidJustification("not a quorum of prepares")
    );

    let wrong_value = Wire::RoundChange {
        round_change: round_change(sender, 2, Some((1, 5))),
        prepared: Some(PreparedCertificate {
            value: TestValue(6),
            prepares: prepares(1, 5, (0..3).map(OperatorIndex)),
        }),
    };
    let reason = refused(&deliver(&mut engine, sender, wrong_value));
    assert_eq!(
        reason,
        RejectReason::Malformed("prepared value does not match its hash")
    );
}

#[test]
fn f_plus_one_round_changes_pull_a_node_forward() {
    let me = follower();
    let mut engine = started(me);
    let mut peers = others(me);
    let first = peers.next().expect("peer");
    let second = peers.next().expect("peer");
    let rc = |sender, round| Wire::RoundChange {
        round_change: round_change(sender, round, None),
        prepared: None,
    };
    let actions = deliver(&mut engine, first, rc(first, 3));
    assert!(
        actions.is_empty(),
        "one round change (f = 1) is not enough: {actions:?}"
    );
    assert_eq!(engine.round(&KEY), Some(Round(1)));
    let actions = deliver(&mut engine, second, rc(second, 5));
    assert_eq!(
        engine.round(&KEY),
        Some(Round(3)),
        "the smallest of the f+1 highest"
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Broadcast(Wire::RoundChange { round_change, .. }) if round_change.round() == Round(3)
    )));
}

#[test]
fn a_decided_message_decides_at_once_and_needs_a_real_quorum() {
    let mut engine = started(follower());
    let commits: Vec<_> = (0..3)
        .map(|i| msg(OperatorIndex(i), 2, Kind::Commit(h(4))))
        .collect();
    let short = Wire::Decided {
        value: TestValue(4),
        commits: commits[..2].to_vec(),
    };
    let reason = refused(&deliver(&mut engine, OperatorIndex(0), short));
    assert!(
        matches!(reason, RejectReason::InvalidJustification(_)),
        "{reason}"
    );
    let mut forged = commits.clone();
    forged[1].signature = MessageSignature(vec![0; 8]);
    let reason = refused(&deliver(
        &mut engine,
        OperatorIndex(0),
        Wire::Decided {
            value: TestValue(4),
            commits: forged,
        },
    ));
    assert_eq!(reason, RejectReason::BadSignature(1));
    let actions = deliver(
        &mut engine,
        OperatorIndex(0),
        Wire::Decided {
            value: TestValue(4),
            commits,
        },
    );
    assert_eq!(decided(&actions), Some(TestValue(4)));
}

#[test]
fn a_decided_node_answers_a_lagging_peer_with_the_decision() {
    let me = follower();
    let mut engine = started(me);
    let commits: Vec<_> = (0..3)
        .map(|i| msg(OperatorIndex(i), 1, Kind::Commit(h(4))))
        .collect();
    deliver(
        &mut engine,
        OperatorIndex(0),
        Wire::Decided {
            value: TestValue(4),
            commits,
        },
    );
    let lagging = others(me).next().expect("peer");
    let rc = Wire::RoundChange {
        round_change: round_change(lagging, 2, None),
        prepared: None,
    };
    let actions = deliver(&mut engine, lagging, rc.clone());
    assert!(matches!(
        actions.as_slice(),
        [Action::Send { to, message: Wire::Decided { value: TestValue(4), .. } }] if *to == lagging
    ));
    let again = deliver(&mut engine, lagging, rc);
    assert_eq!(
        refused(&again),
        RejectReason::AlreadyDecided,
        "answered once per round"
    );
}

#[test]
fn bad_signatures_non_members_duplicates_and_equivocation_change_nothing() {
    let me = follower();
    let mut engine = started(me);
    let peer = others(me).next().expect("peer");

    let mut unsigned = msg(peer, 1, Kind::Prepare(h(3)));
    unsigned.signature = MessageSignature(Vec::new());
    assert_eq!(
        refused(&deliver(&mut engine, peer, Wire::Prepare(unsigned))),
        RejectReason::BadSignature(peer.0)
    );
    let signed_by_other = SignedMessage {
        message: Message {
            instance: KEY,
            round: Round(1),
            sender: peer,
            kind: Kind::Prepare(h(3)),
        },
        signature: msg(me, 1, Kind::Prepare(h(3))).signature,
    };
    assert_eq!(
        refused(&deliver(&mut engine, peer, Wire::Prepare(signed_by_other))),
        RejectReason::BadSignature(peer.0)
    );
    let outsider = OperatorIndex(N + 3);
    assert_eq!(
        refused(&deliver(
            &mut engine,
            outsider,
            Wire::Prepare(msg(peer, 1, Kind::Prepare(h(3))))
        )),
        RejectReason::NotMember(outsider.0)
    );
    assert_eq!(
        refused(&deliver(
            &mut engine,
            peer,
            Wire::Prepare(msg(outsider, 1, Kind::Prepare(h(3))))
        )),
        RejectReason::NotMember(outsider.0)
    );

    // After all that, the peer's real prepare still counts (nothing was stored).
    let actions = deliver(
        &mut engine,
        peer,
        Wire::Prepare(msg(peer, 1, Kind::Prepare(h(3)))),
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(
        refused(&deliver(
            &mut engine,
            peer,
            Wire::Prepare(msg(peer, 1, Kind::Prepare(h(3))))
        )),
        RejectReason::Duplicate("prepare", peer.0)
    );
    assert_eq!(
        refused(&deliver(
            &mut engine,
            peer,
            Wire::Prepare(msg(peer, 1, Kind::Prepare(h(4))))
        )),
        RejectReason::Equivocation(peer.0, "prepare")
    );
    assert_eq!(
        refused(&deliver(
            &mut engine,
            peer,
            Wire::Commit(msg(peer, 9, Kind::Commit(h(4))))
        )),
        RejectReason::RoundOutOfRange(9)
    );
    assert_eq!(
        refused(&deliver(
            &mut engine,
            peer,
            Wire::Prepare(msg(peer, 1_000, Kind::Prepare(h(4))))
        )),
        RejectReason::RoundOutOfRange(1_000)
    );
    assert!(!RejectReason::Duplicate("prepare", 0).is_fault());
    assert!(RejectReason::Equivocation(0, "prepare").is_fault());
}

#[test]
fn messages_before_the_start_are_buffered_and_replayed() {
    let me = follower();
    let mut engine = engine_with(me, Config::default());
    let value = 3;
    let mut early = vec![(
        leader(1),
        proposal(1, value, ProposalJustification::default()),
    )];
    for sender in others(me) {
        early.push((
            sender,
            Wire::Prepare(msg(sender, 1, Kind::Prepare(h(value)))),
        ));
        early.push((sender, Wire::Commit(msg(sender, 1, Kind::Commit(h(value))))));
    }
    for (from, message) in early {
        let actions = deliver(&mut engine, from, message);
        assert!(actions.is_empty(), "buffered silently: {actions:?}");
    }
    assert_eq!(engine.buffered_count(), 7);
    let actions = engine.handle(Event::Join { instance: KEY }, &TestValidity);
    assert_eq!(decided(&actions), Some(TestValue(value)), "{actions:?}");
    assert_eq!(engine.buffered_count(), 0);
}

#[test]
fn the_buffer_is_bounded_per_peer_and_expires() {
    let me = follower();
    let config = Config {
        max_buffered_per_peer: 2,
        ..Config::default()
    };
    let mut engine = engine_with(me, config);
    let peer = others(me).next().expect("peer");
    for round in 1..=2 {
        let actions = deliver(
            &mut engine,
            peer,
            Wire::Prepare(msg(peer, round, Kind::Prepare(h(1)))),
        );
        assert!(actions.is_empty());
    }
    let actions = deliver(
        &mut engine,
        peer,
        Wire::Prepare(msg(peer, 3, Kind::Prepare(h(1)))),
    );
    assert_eq!(refused(&actions), RejectReason::BufferFull(peer.0));
    // Another peer still has room.
    let other = others(me).nth(1).expect("peer");
    assert!(deliver(
        &mut engine,
        other,
        Wire::Prepare(msg(other, 1, Kind::Prepare(h(1))))
    )
    .is_empty());
    // Far-future instances are not buffered at all.
    let future = Wire::Prepare(sign_as(Message {
        instance: TestKey(KEY.0 + 100),
        round: Round(1),
        sender: other,
        kind: Kind::Prepare(h(1)),
    }));
    assert_eq!(
        refused(&deliver(&mut engine, other, future)),
        RejectReason::OutsideWindow
    );
    // Time moving past the instance frees the buffer and refuses latecomers.
    engine.handle(
        Event::Advance {
            position: KEY.0 + 10,
        },
        &TestValidity,
    );
    assert_eq!(engine.buffered_count(), 0);
    let late = deliver(
        &mut engine,
        peer,
        Wire::Prepare(msg(peer, 1, Kind::Prepare(h(1)))),
    );
    assert_eq!(refused(&late), RejectReason::OutsideWindow);
}

#[test]
fn thousands_of_instances_run_side_by_side_and_are_collected() {
    let me = OperatorIndex(0);
    let mut engine = engine_with(
        me,
        Config {
            positions_behind: 10_000,
            ..Config::default()
        },
    );
    for slot in 0..5_000 {
        engine.handle(
            Event::Propose {
                instance: TestKey(slot),
                value: TestValue(1),
            },
            &TestValidity,
        );
    }
    assert_eq!(engine.instance_count(), 5_000);
    engine.handle(Event::Advance { position: 14_000 }, &TestValidity);
    assert_eq!(engine.instance_count(), 1_000);
}

#[test]
fn an_honest_leader_re_proposes_the_highest_prepared_value() {
    let me = leader(2);
    let mut engine = started(me);
    // Everybody times out of round 1; one peer prepared value 5 there.
    let actions = engine.handle(
        Event::Timeout {
            instance: KEY,
            round: Round(1),
        },
        &TestValidity,
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Broadcast(Wire::RoundChange { .. }))));
    let mut peers = others(me);
    let prepared_peer = peers.next().expect("peer");
    let actions = deliver(
        &mut engine,
        prepared_peer,
        Wire::RoundChange {
            round_change: round_change(prepared_peer, 2, Some((1, 5))),
            prepared: Some(PreparedCertificate {
                value: TestValue(5),
                prepares: prepares(1, 5, (0..3).map(OperatorIndex)),
            }),
        },
    );
    assert!(rejection(&actions).is_none(), "{actions:?}");
    let plain = peers.next().expect("peer");
    let actions = deliver(
        &mut engine,
        plain,
        Wire::RoundChange {
            round_change: round_change(plain, 2, None),
            prepared: None,
        },
    );
    let proposed = actions.iter().find_map(|a| match a {
        Action::Broadcast(Wire::Proposal {
            value,
            justification,
            ..
        }) => Some((*value, justification.clone())),
        _ => None,
    });
    let (value, justification) =
        proposed.expect("the leader proposes on a quorum of round changes");
    assert_eq!(value, TestValue(5), "not its own value 1");
    assert_eq!(justification.round_changes.len(), 3);
    assert_eq!(justification.prepares.len(), 3);
}
