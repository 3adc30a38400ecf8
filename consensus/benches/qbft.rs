//! QBFT processing cost: time and messages to decide with no faults for
//! n = 4, 7, 10, 13 on a network without delay (pure processing, signatures
//! switched off), the cost per message, secp256k1 signing and verification
//! as the node uses them (incl. a round-2 proposal with its
//! justifications), and rounds and virtual time to decide with the first
//! leader silent.
//!
//! `cargo bench -p phalanx-consensus --bench qbft`

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::collections::VecDeque;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use libp2p_identity::secp256k1;
use phalanx_consensus::testing::{
    run, Fault, Scenario, TestKey, TestValidity, TestValue, TEST_LOCK_HASH,
};
use phalanx_consensus::{
    Action, Committee, Config, Engine, Event, Kind, LeaderSelection, LinearTimeout, Message,
    MessageSignature, OperatorIndex, Parts, Prepared, ProposalJustification, RotatingLeader, Round,
    SignedMessage, Signer, Value, Verifier, Wire,
};

/// Signatures off: the protocol's own processing cost.
struct NoSignature;

impl Signer for NoSignature {
    fn sign(&self, _bytes: &[u8]) -> MessageSignature {
        MessageSignature(Vec::new())
    }
}

impl Verifier for NoSignature {
    fn verify(&self, _: OperatorIndex, _: &[u8], _: &MessageSignature) -> bool {
        true
    }
}

/// secp256k1 node keys, as `p2p` supplies them.
struct Secp {
    keypair: secp256k1::Keypair,
}

impl Signer for Secp {
    fn sign(&self, bytes: &[u8]) -> MessageSignature {
        MessageSignature(self.keypair.secret().sign(bytes))
    }
}

struct SecpVerifier {
    keys: Vec<secp256k1::PublicKey>,
}

impl Verifier for SecpVerifier {
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool {
        self.keys
            .get(sender.as_usize())
            .is_some_and(|key| key.verify(bytes, &signature.0))
    }
}

fn timeout() -> LinearTimeout {
    LinearTimeout {
        base: Duration::from_secs(1),
        step: Duration::from_millis(250),
    }
}

fn parts(signer: Box<dyn Signer + Send>, verifier: Box<dyn Verifier + Send>) -> Parts<TestKey> {
    Parts {
        lock_hash: TEST_LOCK_HASH,
        signer,
        verifier,
        leader: Box::new(RotatingLeader),
        timeout: Box::new(timeout()),
    }
}

/// Runs one instance on n engines, delivering in order without delay;
/// returns the messages delivered.
fn decide(n: u32) -> u64 {
    let committee = Committee::new(n).expect("size");
    let mut engines: Vec<Engine<TestKey, TestValue>> = (0..n)
        .map(|i| {
            Engine::new(
                OperatorIndex(i),
                committee,
                Config::default(),
                parts(Box::new(NoSignature), Box::new(NoSignature)),
            )
            .expect("engine")
        })
        .collect();
    let mut queue: VecDeque<(u32, u32, Wire<TestKey, TestValue>)> = VecDeque::new();
    let mut decided = 0;
    let mut delivered = 0;
    let mut route =
        |from: u32, actions: Vec<Action<TestKey, TestValue>>, queue: &mut VecDeque<_>| {
            for action in actions {
                match action {
                    Action::Broadcast(message) => {
                        for to in (0..n).filter(|&to| to != from) {
                            queue.push_back((to, from, message.clone()));
                        }
                    }
                    Action::Send { to, message } => queue.push_back((to.0, from, message)),
                    Action::Decide(_) => decided += 1,
                    _ => {}
                }
            }
        };
    for i in 0..n {
        let actions = engines[i as usize].handle(
            Event::Propose {
                instance: TestKey(0),
                value: TestValue(u64::from(i) + 1),
            },
            &TestValidity,
        );
        route(i, actions, &mut queue);
    }
    while let Some((to, from, message)) = queue.pop_front() {
        delivered += 1;
        let actions = engines[to as usize].handle(
            Event::Message {
                from: OperatorIndex(from),
                message,
            },
            &TestValidity,
        );
        route(to, actions, &mut queue);
    }
    assert_eq!(decided, n, "every node decides");
    delivered
}

fn decide_without_faults(c: &mut Criterion) {
    let mut group = c.benchmark_group("qbft_decide_no_delay");
    for n in [4u32, 7, 10, 13] {
        let messages = decide(n);
        group.throughput(Throughput::Elements(messages));
        group.bench_function(format!("n={n} ({messages} messages)"), |b| {
            b.iter(|| decide(n))
        });
    }
    group.finish();
}

/// A round-2 proposal for n = 10 with a quorum of round changes (one
/// prepared) and the prepare certificate, every message signed with secp256k1.
fn signed_round_two(keys: &[secp256k1::Keypair], committee: Committee) -> Wire<TestKey, TestValue> {
    let key = TestKey(0);
    let sign = |message: Message<TestKey>| SignedMessage {
        signature: MessageSignature(
            keys[message.sender.as_usize()]
                .secret()
                .sign(&message.signing_bytes(&TEST_LOCK_HASH)),
        ),
        message,
    };
    let value = TestValue(5);
    let hash = value.value_hash();
    let quorum = committee.quorum() as u32;
    let round_changes = (0..quorum)
        .map(|i| {
            let prepared = (i == 0).then_some(Prepared {
                round: Round(1),
                value: hash,
            });
            sign(Message {
                instance: key,
                round: Round(2),
                sender: OperatorIndex(i),
                kind: Kind::RoundChange(prepared),
            })
        })
        .collect();
    let prepares = (0..quorum)
        .map(|i| {
            sign(Message {
                instance: key,
                round: Round(1),
                sender: OperatorIndex(i),
                kind: Kind::Prepare(hash),
            })
        })
        .collect();
    let leader = RotatingLeader.leader(&key, Round(2), committee);
    Wire::Proposal {
        proposal: sign(Message {
            instance: key,
            round: Round(2),
            sender: leader,
            kind: Kind::Proposal(hash),
        }),
        value,
        justification: ProposalJustification {
            round_changes,
            prepares,
        },
    }
}

fn signatures(c: &mut Criterion) {
    let n = 10;
    let committee = Committee::new(n).expect("size");
    let keys: Vec<secp256k1::Keypair> = (0..n).map(|_| secp256k1::Keypair::generate()).collect();
    let publics: Vec<secp256k1::PublicKey> = keys.iter().map(|k| k.public().clone()).collect();
    let message = Message {
        instance: TestKey(0),
        round: Round(1),
        sender: OperatorIndex(1),
        kind: Kind::Prepare(TestValue(1).value_hash()),
    };
    let bytes = message.signing_bytes(&TEST_LOCK_HASH);
    let signature = keys[1].secret().sign(&bytes);
    let mut group = c.benchmark_group("secp256k1");
    group.bench_function("sign a prepare", |b| {
        b.iter(|| keys[1].secret().sign(&bytes))
    });
    group.bench_function("verify a prepare", |b| {
        b.iter(|| assert!(publics[1].verify(&bytes, &signature)))
    });
    let proposal = signed_round_two(&keys, committee);
    // A follower outside the justification's senders (0..quorum).
    let me = (0..n)
        .rev()
        .map(OperatorIndex)
        .find(|&o| o != RotatingLeader.leader(&TestKey(0), Round(2), committee))
        .expect("a follower");
    let engine_for = |me: OperatorIndex| {
        let mut engine = Engine::new(
            me,
            committee,
            Config::default(),
            parts(
                Box::new(Secp {
                    keypair: keys[me.as_usize()].clone(),
                }),
                Box::new(SecpVerifier {
                    keys: publics.clone(),
                }),
            ),
        )
        .expect("engine");
        engine.handle(
            Event::Propose {
                instance: TestKey(0),
                value: TestValue(1),
            },
            &TestValidity,
        );
        engine
    };
    let receive = |(mut engine, proposal): (Engine<TestKey, TestValue>, _)| {
        let actions = engine.handle(
            Event::Message {
                from: OperatorIndex(0),
                message: proposal,
            },
            &TestValidity,
        );
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Broadcast(Wire::Prepare(_)))));
    };
    group.bench_function(
        "receive a round-2 proposal, n=10, 15 signatures checked",
        |b| {
            b.iter_batched(
                || (engine_for(me), proposal.clone()),
                receive,
                BatchSize::SmallInput,
            )
        },
    );
    // The usual case: the round changes (and the prepared one's
    // certificate) arrived before the proposal and were checked then.
    let Wire::Proposal {
        justification,
        value,
        ..
    } = &proposal
    else {
        unreachable!("built as a proposal")
    };
    let earlier: Vec<Wire<TestKey, TestValue>> = justification
        .round_changes
        .iter()
        .map(|rc| Wire::RoundChange {
            round_change: rc.clone(),
            prepared: matches!(rc.message.kind, Kind::RoundChange(Some(_))).then(|| {
                phalanx_consensus::PreparedCertificate {
                    value: *value,
                    prepares: justification.prepares.clone(),
                }
            }),
        })
        .collect();
    group.bench_function(
        "receive a round-2 proposal, n=10, justifications seen before",
        |b| {
            b.iter_batched(
                || {
                    let mut engine = engine_for(me);
                    for (i, rc) in earlier.iter().enumerate() {
                        engine.handle(
                            Event::Message {
                                from: OperatorIndex(i as u32),
                                message: rc.clone(),
                            },
                            &TestValidity,
                        );
                    }
                    (engine, proposal.clone())
                },
                receive,
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

/// Rounds and virtual time to decide with the first round's leader silent
/// (1 s first-round timeout, 10 ms links): printed, not timed.
#[allow(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn leader_crashed() {
    println!("first leader silent (round timeout 1 s + 250 ms/round, 10 ms links):");
    for n in [4u32, 7, 10, 13] {
        let mut scenario = Scenario::happy(n);
        scenario.network.min_delay = 10_000;
        scenario.network.max_delay = 10_000;
        let committee = Committee::new(n).expect("size");
        let first = RotatingLeader.leader(&TestKey(0), Round(1), committee);
        scenario.faults.insert(first.0, Fault::Silent);
        let outcome = run(&scenario);
        outcome.check(&scenario).expect("decides");
        let latest = outcome
            .decisions
            .iter()
            .flatten()
            .map(|d| d.at)
            .max()
            .unwrap_or(0);
        println!(
            "  n={n}: decided in round {}, last node at {:.3} s virtual, {} messages",
            outcome.max_decided_round(&scenario),
            latest as f64 / 1e6,
            outcome.delivered
        );
    }
}

criterion_group!(benches, decide_without_faults, signatures);

fn main() {
    leader_crashed();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
