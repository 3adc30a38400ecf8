//! An in-memory test committee (feature `test-utils`): n engines wired
//! through a seeded, virtual-time network that delays, loses, duplicates and
//! reorders messages, partitions that heal, nodes that crash or stay silent,
//! and byzantine nodes that equivocate, vote for conflicting values, send
//! bogus justifications and invalid values, or replay old messages.
//!
//! [`run`] plays a [`Scenario`] to the end and returns an [`Outcome`];
//! [`Outcome::check`] states the properties every run must have: agreement,
//! validity and, once the network is stable with at most f faulty nodes,
//! termination. The same scenario always gives the same run (the outcome
//! carries a hash of the event trace).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engine::{Action, Config, Engine, Event, Mutant, Parts};
use crate::message::{
    Kind, Message, MessageSignature, Prepared, PreparedCertificate, ProposalJustification,
    SignedMessage, Signer, Verifier, Wire,
};
use crate::policy::{LinearTimeout, RotatingLeader, Validity};
use crate::types::{Committee, InstanceKey, OperatorIndex, Round, Value, ValueHash};

/// A test instance key: a bare position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestKey(pub u64);

impl InstanceKey for TestKey {
    fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }

    fn position(&self) -> u64 {
        self.0
    }
}

/// A test value; values from [`INVALID_VALUES`] up fail [`TestValidity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestValue(pub u64);

/// The first value [`TestValidity`] refuses.
pub const INVALID_VALUES: u64 = 1 << 40;

impl Value for TestValue {
    fn value_hash(&self) -> ValueHash {
        let mut hash = [0xA5; 32];
        hash[..8].copy_from_slice(&self.0.to_le_bytes());
        ValueHash(hash)
    }

    fn byte_len(&self) -> usize {
        std::mem::size_of::<u64>()
    }
}

/// Refuses values from [`INVALID_VALUES`] up: what a byzantine leader's
/// objectively wrong data looks like to the predicate.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestValidity;

/// Why [`TestValidity`] refused a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("value {0} is out of range")]
pub struct OutOfRange(pub u64);

impl Validity<TestKey, TestValue> for TestValidity {
    type Error = OutOfRange;

    fn check(&self, _instance: &TestKey, value: &TestValue) -> Result<(), OutOfRange> {
        if value.0 >= INVALID_VALUES {
            return Err(OutOfRange(value.0));
        }
        Ok(())
    }
}

/// The secret of operator `i`'s test signing key.
fn secret_of(operator: OperatorIndex) -> u64 {
    splitmix(u64::from(operator.0) ^ 0x5eed_0f0e_7a70)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn mac(secret: u64, bytes: &[u8]) -> MessageSignature {
    let mut hash = secret ^ 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    MessageSignature(splitmix(hash).to_le_bytes().to_vec())
}

/// A cheap keyed signer for tests: a node can only sign as itself, so
/// forged messages fail verification, at a fraction of secp256k1's cost.
#[derive(Clone, Copy, Debug)]
pub struct MacSigner(u64);

impl MacSigner {
    /// The signer of `operator`.
    pub fn new(operator: OperatorIndex) -> MacSigner {
        MacSigner(secret_of(operator))
    }
}

impl Signer for MacSigner {
    fn sign(&self, bytes: &[u8]) -> MessageSignature {
        mac(self.0, bytes)
    }
}

/// Verifies [`MacSigner`] signatures of any operator.
#[derive(Clone, Copy, Debug, Default)]
pub struct MacVerifier;

impl Verifier for MacVerifier {
    fn verify(&self, sender: OperatorIndex, bytes: &[u8], signature: &MessageSignature) -> bool {
        mac(secret_of(sender), bytes) == *signature
    }
}

/// The lock hash of the test cluster.
pub const TEST_LOCK_HASH: [u8; 32] = [0x7e; 32];

/// The parts of a test engine for `me`, in the cluster of [`TEST_LOCK_HASH`].
pub fn test_parts(me: OperatorIndex, timeout: LinearTimeout) -> Parts<TestKey> {
    Parts {
        lock_hash: TEST_LOCK_HASH,
        signer: Box::new(MacSigner::new(me)),
        verifier: Box::new(MacVerifier),
        leader: Box::new(RotatingLeader),
        timeout: Box::new(timeout),
    }
}

/// Signs a message as its sender would in the test cluster.
pub fn sign_as<K: InstanceKey>(message: Message<K>) -> SignedMessage<K> {
    sign_in(&TEST_LOCK_HASH, message)
}

/// Signs a message as its sender would in the cluster of `lock_hash`.
pub fn sign_in<K: InstanceKey>(lock_hash: &[u8; 32], message: Message<K>) -> SignedMessage<K> {
    let signature = MacSigner::new(message.sender).sign(&message.signing_bytes(lock_hash));
    SignedMessage { message, signature }
}

/// How a byzantine node misbehaves. It runs an honest engine and twists
/// what that engine sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// As leader, proposes one value to some peers and another to the rest.
    EquivocatingLeader,
    /// Sends each peer prepares and commits for a value of its choosing.
    ConflictingVotes,
    /// Also sends forged and malformed messages: proposals with bogus
    /// justifications, round changes with fake certificates, decided
    /// messages without a real quorum, messages signed for others.
    BogusMessages,
    /// Proposes values the validity predicate refuses.
    InvalidValue,
    /// Re-sends messages it received earlier, old rounds included.
    Replay,
}

/// How a faulty node fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Never starts, never sends.
    Silent,
    /// Runs correctly, then crashes at this virtual time (µs).
    Crash(u64),
    /// Runs and misbehaves.
    Byzantine(Strategy),
}

/// The simulated network; times in µs of virtual time.
#[derive(Clone, Debug)]
pub struct Network {
    /// Shortest delivery delay.
    pub min_delay: u64,
    /// Longest delivery delay (delays are uniform in between, so messages reorder).
    pub max_delay: u64,
    /// Probability a message is lost, before `stable_at`.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// From this time on, nothing is lost (global stabilisation time).
    pub stable_at: u64,
    /// Nodes on the `true` side cannot reach the others until `heal_at`.
    pub partition: Option<(Vec<bool>, u64)>,
}

/// One run: committee, faults, inputs, network.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed every random choice of the run derives from.
    pub seed: u64,
    /// Committee size.
    pub n: u32,
    /// Faulty nodes (at most f for termination to be required).
    pub faults: BTreeMap<u32, Fault>,
    /// Each node's own value (`None`: it joins without one).
    pub inputs: Vec<Option<u64>>,
    /// When each node starts the instance (µs).
    pub start_at: Vec<u64>,
    /// The network.
    pub network: Network,
    /// Round timeouts of every node.
    pub timeout: LinearTimeout,
    /// A broken engine for every node, to prove the suite catches it.
    pub mutant: Option<Mutant>,
    /// Virtual time after which the run stops (µs).
    pub horizon: u64,
}

impl Scenario {
    /// A fault-free run on a network without delay.
    pub fn happy(n: u32) -> Scenario {
        Scenario {
            seed: 0,
            n,
            faults: BTreeMap::new(),
            inputs: (0..n).map(|i| Some(u64::from(i) + 1)).collect(),
            start_at: vec![0; n as usize],
            network: Network {
                min_delay: 0,
                max_delay: 0,
                loss: 0.0,
                duplicate: 0.0,
                stable_at: 0,
                partition: None,
            },
            timeout: LinearTimeout {
                base: Duration::from_secs(1),
                step: Duration::from_millis(250),
            },
            mutant: None,
            horizon: 600_000_000,
        }
    }

    /// A random scenario for `n` nodes drawn from `seed`, with at most f faults.
    pub fn random(seed: u64, n: u32) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let committee = Committee::new(n).unwrap_or_else(|_| panic!("bad committee size {n}"));
        let f = committee.faults();
        let faulty_count = if f == 0 {
            0
        } else if rng.gen_bool(0.5) {
            f
        } else {
            rng.gen_range(0..=f)
        };
        let mut faults = BTreeMap::new();
        while faults.len() < faulty_count {
            let node = rng.gen_range(0..n);
            let fault = match rng.gen_range(0..7) {
                0 => Fault::Silent,
                1 => Fault::Crash(rng.gen_range(0..3_000_000)),
                2 => Fault::Byzantine(Strategy::EquivocatingLeader),
                3 => Fault::Byzantine(Strategy::ConflictingVotes),
                4 => Fault::Byzantine(Strategy::BogusMessages),
                5 => Fault::Byzantine(Strategy::InvalidValue),
                _ => Fault::Byzantine(Strategy::Replay),
            };
            faults.insert(node, fault);
        }
        let distinct = match rng.gen_range(0..10) {
            0..=2 => 1,
            3..=6 => 2,
            _ => u64::from(n),
        };
        let mut inputs: Vec<Option<u64>> = (0..n)
            .map(|_| {
                if rng.gen_bool(0.1) {
                    None
                } else {
                    Some(rng.gen_range(1..=distinct))
                }
            })
            .collect();
        for (&node, fault) in &faults {
            if *fault == Fault::Byzantine(Strategy::InvalidValue) {
                inputs[node as usize] = Some(INVALID_VALUES + u64::from(node));
            }
        }
        // At least one honest node has a value, or no honest leader could propose.
        if let Some(first_honest) = (0..n).find(|i| !faults.contains_key(i)) {
            if (0..n).all(|i| faults.contains_key(&i) || inputs[i as usize].is_none()) {
                inputs[first_honest as usize] = Some(1);
            }
        }
        let mut start_at: Vec<u64> = (0..n).map(|_| rng.gen_range(0..50_000)).collect();
        if rng.gen_bool(0.2) {
            let late = rng.gen_range(0..n) as usize;
            start_at[late] = rng.gen_range(0..3_000_000);
        }
        let min_delay = rng.gen_range(0..5_000);
        let max_delay = min_delay + rng.gen_range(1_000..200_000);
        let loss = if rng.gen_bool(0.4) {
            0.0
        } else {
            rng.gen_range(0.0..0.4)
        };
        let mut stable_at = if rng.gen_bool(0.3) {
            0
        } else {
            rng.gen_range(0..10_000_000)
        };
        let partition = if rng.gen_bool(0.2) {
            let side: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
            let heal_at = rng.gen_range(0..8_000_000);
            stable_at = stable_at.max(heal_at);
            Some((side, heal_at))
        } else {
            None
        };
        let timeout = LinearTimeout {
            base: Duration::from_micros(rng.gen_range(150_000..1_000_000)),
            step: Duration::from_micros(rng.gen_range(50_000..500_000)),
        };
        Scenario {
            seed,
            n,
            faults,
            inputs,
            start_at,
            network: Network {
                min_delay,
                max_delay,
                loss,
                duplicate: rng.gen_range(0.0..0.1),
                stable_at,
                partition,
            },
            timeout,
            mutant: None,
            horizon: stable_at + 600_000_000,
        }
    }

    /// Whether node `i` is faulty in this scenario.
    pub fn is_faulty(&self, node: u32) -> bool {
        self.faults.contains_key(&node)
    }
}

/// What one node decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeDecision {
    /// The round of the commit quorum.
    pub round: Round,
    /// The value.
    pub value: TestValue,
    /// When (µs).
    pub at: u64,
}

/// The result of a run, and what the suite counts.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Each node's decision.
    pub decisions: Vec<Option<NodeDecision>>,
    /// Errors found while running (a node deciding twice).
    pub violations: Vec<String>,
    /// Every value proposed by anyone, byzantine nodes included.
    pub proposed: BTreeSet<TestValue>,
    /// Prepared (round, value) pairs that honest round changes reported.
    pub prepared_reports: BTreeSet<(Round, ValueHash)>,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages honest nodes dropped as faulty.
    pub faults_dropped: u64,
    /// Virtual time at the end (µs).
    pub end: u64,
    /// A hash of every event processed, for reproducibility checks.
    pub trace_hash: u64,
}

impl Outcome {
    /// Agreement, validity and termination, with the scenario for context.
    pub fn check(&self, scenario: &Scenario) -> Result<(), String> {
        if let Some(violation) = self.violations.first() {
            return Err(violation.clone());
        }
        let mut agreed: Option<TestValue> = None;
        for (node, decision) in self.decisions.iter().enumerate() {
            let Some(decision) = decision else { continue };
            if matches!(
                scenario.faults.get(&(node as u32)),
                Some(Fault::Byzantine(_))
            ) {
                continue;
            }
            match agreed {
                None => agreed = Some(decision.value),
                Some(value) if value != decision.value => {
                    return Err(format!(
                        "agreement: node {node} decided {:?}, another decided {value:?}",
                        decision.value
                    ))
                }
                Some(_) => {}
            }
            if decision.value.0 >= INVALID_VALUES {
                return Err(format!("validity: node {node} decided an invalid value"));
            }
            if !self.proposed.contains(&decision.value) {
                return Err(format!(
                    "validity: node {node} decided {:?}, which nobody proposed",
                    decision.value
                ));
            }
        }
        for node in 0..scenario.n {
            if !scenario.is_faulty(node) && self.decisions[node as usize].is_none() {
                return Err(format!(
                    "termination: honest node {node} did not decide by {} s",
                    self.end / 1_000_000
                ));
            }
        }
        Ok(())
    }

    /// The highest round any honest node decided in.
    pub fn max_decided_round(&self, scenario: &Scenario) -> Round {
        self.decisions
            .iter()
            .enumerate()
            .filter(|(node, _)| !scenario.is_faulty(*node as u32))
            .filter_map(|(_, d)| d.map(|d| d.round))
            .max()
            .unwrap_or(Round(0))
    }

    /// Whether an honest node decided in round 2 or later a value that
    /// honest round changes reported prepared in an earlier round: the case
    /// the justification rules exist for.
    pub fn decided_a_carried_value(&self, scenario: &Scenario) -> bool {
        self.decisions
            .iter()
            .enumerate()
            .filter(|(node, _)| !scenario.is_faulty(*node as u32))
            .filter_map(|(_, d)| *d)
            .any(|d| {
                d.round.0 >= 2
                    && self
                        .prepared_reports
                        .iter()
                        .any(|&(r, h)| r < d.round && h == d.value.value_hash())
            })
    }
}

#[derive(Debug)]
enum What {
    Start(u32),
    Crash(u32),
    Deliver {
        to: u32,
        from: u32,
        message: Wire<TestKey, TestValue>,
    },
    Timer {
        node: u32,
        round: Round,
        generation: u64,
    },
}

struct Queued {
    at: u64,
    seq: u64,
    what: What,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap pops the earliest event first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

const INSTANCE: TestKey = TestKey(0);

struct Sim<'a> {
    scenario: &'a Scenario,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    engines: Vec<Option<Engine<TestKey, TestValue>>>,
    timers: Vec<u64>,
    received: Vec<Vec<Wire<TestKey, TestValue>>>,
    outcome: Outcome,
}

/// Plays a scenario to the end.
pub fn run(scenario: &Scenario) -> Outcome {
    let n = scenario.n;
    let committee = Committee::new(n).unwrap_or_else(|_| panic!("bad committee size {n}"));
    let engines = (0..n)
        .map(|i| {
            if scenario.faults.get(&i) == Some(&Fault::Silent) {
                return None;
            }
            let me = OperatorIndex(i);
            let mut engine = Engine::new(
                me,
                committee,
                Config::default(),
                test_parts(me, scenario.timeout),
            )
            .unwrap_or_else(|e| panic!("engine: {e}"));
            engine.set_mutant(scenario.mutant);
            Some(engine)
        })
        .collect();
    let mut sim = Sim {
        scenario,
        rng: ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x006e_6574_776f_726b),
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        engines,
        timers: vec![0; n as usize],
        received: vec![Vec::new(); n as usize],
        outcome: Outcome {
            decisions: vec![None; n as usize],
            trace_hash: 0xcbf2_9ce4_8422_2325,
            ..Outcome::default()
        },
    };
    for node in 0..n {
        sim.push(scenario.start_at[node as usize], What::Start(node));
        if let Some(Fault::Crash(at)) = scenario.faults.get(&node) {
            sim.push(*at, What::Crash(node));
        }
    }
    while let Some(item) = sim.queue.pop() {
        if item.at > scenario.horizon || sim.all_honest_decided() {
            break;
        }
        sim.now = item.at;
        sim.step(item.what);
    }
    sim.outcome.end = sim.now;
    sim.outcome
}

impl Sim<'_> {
    fn push(&mut self, at: u64, what: What) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            what,
        });
    }

    fn trace(&mut self, words: &[u64]) {
        for &word in words {
            self.outcome.trace_hash = splitmix(self.outcome.trace_hash ^ word);
        }
    }

    fn all_honest_decided(&self) -> bool {
        (0..self.scenario.n)
            .all(|i| self.scenario.is_faulty(i) || self.outcome.decisions[i as usize].is_some())
    }

    fn step(&mut self, what: What) {
        match what {
            What::Start(node) => {
                self.trace(&[self.now, 1, u64::from(node)]);
                let input = self.scenario.inputs[node as usize];
                let event = match input {
                    Some(value) => Event::Propose {
                        instance: INSTANCE,
                        value: TestValue(value),
                    },
                    None => Event::Join { instance: INSTANCE },
                };
                self.handle(node, event);
            }
            What::Crash(node) => {
                self.trace(&[self.now, 2, u64::from(node)]);
                self.engines[node as usize] = None;
            }
            What::Deliver { to, from, message } => {
                self.trace(&[self.now, 3, u64::from(to), u64::from(from)]);
                self.outcome.delivered += 1;
                if matches!(
                    self.scenario.faults.get(&to),
                    Some(Fault::Byzantine(Strategy::Replay))
                ) && self.received[to as usize].len() < 512
                {
                    self.received[to as usize].push(message.clone());
                }
                self.handle(
                    to,
                    Event::Message {
                        from: OperatorIndex(from),
                        message,
                    },
                );
            }
            What::Timer {
                node,
                round,
                generation,
            } => {
                if self.timers[node as usize] == generation {
                    self.trace(&[self.now, 4, u64::from(node), round.0]);
                    self.handle(
                        node,
                        Event::Timeout {
                            instance: INSTANCE,
                            round,
                        },
                    );
                }
            }
        }
    }

    fn handle(&mut self, node: u32, event: Event<TestKey, TestValue>) {
        let Some(engine) = self.engines[node as usize].as_mut() else {
            return;
        };
        let actions = engine.handle(event, &TestValidity);
        let honest = !self.scenario.is_faulty(node);
        for action in actions {
            match action {
                Action::Broadcast(message) => {
                    self.note_sent(node, &message, honest);
                    for to in 0..self.scenario.n {
                        if to != node {
                            self.send(node, to, message.clone());
                        }
                    }
                    self.misbehave(node, &message);
                }
                Action::Send { to, message } => {
                    self.note_sent(node, &message, honest);
                    self.send(node, to.0, message);
                }
                Action::SetTimer { round, after, .. } => {
                    self.timers[node as usize] += 1;
                    let generation = self.timers[node as usize];
                    let at = self.now + u64::try_from(after.as_micros()).unwrap_or(u64::MAX / 2);
                    self.push(
                        at,
                        What::Timer {
                            node,
                            round,
                            generation,
                        },
                    );
                }
                Action::StopTimer { .. } => self.timers[node as usize] += 1,
                Action::Decide(decision) => {
                    self.trace(&[self.now, 5, u64::from(node), decision.value.0]);
                    let slot = &mut self.outcome.decisions[node as usize];
                    if slot.is_some() {
                        self.outcome
                            .violations
                            .push(format!("node {node} decided twice"));
                    }
                    *slot = Some(NodeDecision {
                        round: decision.round,
                        value: decision.value,
                        at: self.now,
                    });
                }
                Action::Dropped { reason, .. } => {
                    if honest && reason.is_fault() {
                        self.outcome.faults_dropped += 1;
                    }
                }
            }
        }
    }

    fn note_sent(&mut self, node: u32, message: &Wire<TestKey, TestValue>, honest: bool) {
        match message {
            Wire::Proposal { value, .. } => {
                self.outcome.proposed.insert(*value);
            }
            Wire::RoundChange {
                round_change,
                prepared: Some(_),
            } if honest => {
                if let Kind::RoundChange(Some(p)) = round_change.message.kind {
                    self.outcome.prepared_reports.insert((p.round, p.value));
                }
            }
            _ => {}
        }
        let _ = node;
    }

    /// Puts one message on the network from `from` to `to`.
    fn send(&mut self, from: u32, to: u32, message: Wire<TestKey, TestValue>) {
        let network = &self.scenario.network;
        if self.now < network.stable_at && self.rng.gen_bool(network.loss) {
            return;
        }
        if let Some((side, heal_at)) = &network.partition {
            if self.now < *heal_at && side[from as usize] != side[to as usize] {
                return;
            }
        }
        let copies = if self.rng.gen_bool(network.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.gen_range(network.min_delay..=network.max_delay);
            self.push(
                self.now + delay,
                What::Deliver {
                    to,
                    from,
                    message: message.clone(),
                },
            );
        }
    }

    /// What a byzantine node sends besides (or instead of) its engine's broadcast.
    fn misbehave(&mut self, node: u32, message: &Wire<TestKey, TestValue>) {
        let Some(Fault::Byzantine(strategy)) = self.scenario.faults.get(&node).copied() else {
            return;
        };
        let me = OperatorIndex(node);
        let n = self.scenario.n;
        match (strategy, message) {
            (
                Strategy::EquivocatingLeader,
                Wire::Proposal {
                    proposal,
                    value,
                    justification,
                },
            ) => {
                let other = TestValue(value.0 + 1_000 + u64::from(node));
                self.outcome.proposed.insert(other);
                let twin = sign_as(Message {
                    kind: Kind::Proposal(other.value_hash()),
                    ..proposal.message.clone()
                });
                for to in (0..n).filter(|&to| to != node && to % 2 == 1) {
                    self.send(
                        node,
                        to,
                        Wire::Proposal {
                            proposal: twin.clone(),
                            value: other,
                            justification: justification.clone(),
                        },
                    );
                }
            }
            (Strategy::ConflictingVotes, Wire::Prepare(m) | Wire::Commit(m)) => {
                for to in (0..n).filter(|&to| to != node) {
                    let value = TestValue(self.rng.gen_range(1..=4));
                    let hash = value.value_hash();
                    let kind = match m.message.kind {
                        Kind::Prepare(_) => Kind::Prepare(hash),
                        _ => Kind::Commit(hash),
                    };
                    let vote = sign_as(Message {
                        kind,
                        ..m.message.clone()
                    });
                    let wire = match kind {
                        Kind::Prepare(_) => Wire::Prepare(vote),
                        _ => Wire::Commit(vote),
                    };
                    self.send(node, to, wire);
                }
            }
            (
                Strategy::InvalidValue,
                Wire::Proposal {
                    proposal,
                    justification,
                    ..
                },
            ) => {
                let bad = TestValue(INVALID_VALUES + 7);
                let forged = sign_as(Message {
                    kind: Kind::Proposal(bad.value_hash()),
                    ..proposal.message.clone()
                });
                for to in (0..n).filter(|&to| to != node) {
                    self.send(
                        node,
                        to,
                        Wire::Proposal {
                            proposal: forged.clone(),
                            value: bad,
                            justification: justification.clone(),
                        },
                    );
                }
            }
            (Strategy::BogusMessages, _) => {
                let round = message_round(message);
                let to = self.rng.gen_range(0..n);
                let bogus = self.bogus(me, round);
                self.send(node, to, bogus);
            }
            (Strategy::Replay, _) => {
                for _ in 0..2 {
                    let stored = self.received[node as usize].len();
                    if stored == 0 {
                        break;
                    }
                    let pick = self.rng.gen_range(0..stored);
                    let replayed = self.received[node as usize][pick].clone();
                    let to = self.rng.gen_range(0..n);
                    self.send(node, to, replayed);
                }
            }
            _ => {}
        }
    }

    /// A forged or malformed message from byzantine node `me`.
    fn bogus(&mut self, me: OperatorIndex, round: Round) -> Wire<TestKey, TestValue> {
        let n = self.scenario.n;
        let committee = Committee::new(n).unwrap_or_else(|_| panic!("size"));
        let quorum = committee.quorum();
        let value = TestValue(self.rng.gen_range(1..=4) + 50);
        let hash = value.value_hash();
        let next = round.next();
        let msg = |sender: OperatorIndex, round: Round, kind: Kind| Message {
            instance: INSTANCE,
            round,
            sender,
            kind,
        };
        let forged = |m: Message<TestKey>, rng: &mut ChaCha8Rng| SignedMessage {
            message: m,
            signature: MessageSignature(rng.gen::<u64>().to_le_bytes().to_vec()),
        };
        match self.rng.gen_range(0..6) {
            // A proposal justified by one round change counted q times.
            0 => {
                let rc = sign_as(msg(me, next, Kind::RoundChange(None)));
                Wire::Proposal {
                    proposal: sign_as(msg(me, next, Kind::Proposal(hash))),
                    value,
                    justification: ProposalJustification {
                        round_changes: vec![rc; quorum],
                        prepares: Vec::new(),
                    },
                }
            }
            // A proposal justified by round changes forged for others.
            1 => Wire::Proposal {
                proposal: sign_as(msg(me, next, Kind::Proposal(hash))),
                value,
                justification: ProposalJustification {
                    round_changes: (0..quorum as u32)
                        .map(|i| {
                            let sender = OperatorIndex(i);
                            let m = msg(sender, next, Kind::RoundChange(None));
                            if sender == me {
                                sign_as(m)
                            } else {
                                forged(m, &mut self.rng)
                            }
                        })
                        .collect(),
                    prepares: Vec::new(),
                },
            },
            // A round change claiming a value prepared on its own say-so.
            2 => {
                let claim = Prepared { round, value: hash };
                let own = sign_as(msg(me, round, Kind::Prepare(hash)));
                Wire::RoundChange {
                    round_change: sign_as(msg(me, next, Kind::RoundChange(Some(claim)))),
                    prepared: Some(PreparedCertificate {
                        value,
                        prepares: vec![own; quorum],
                    }),
                }
            }
            // A decided message whose commits are forged.
            3 => Wire::Decided {
                value,
                commits: (0..quorum as u32)
                    .map(|i| {
                        forged(
                            msg(OperatorIndex(i), round, Kind::Commit(hash)),
                            &mut self.rng,
                        )
                    })
                    .collect(),
            },
            // A commit signed by nobody, in another's name.
            4 => {
                let victim = OperatorIndex((me.0 + 1) % n);
                Wire::Commit(forged(
                    msg(victim, round, Kind::Commit(hash)),
                    &mut self.rng,
                ))
            }
            // A prepare for a round far beyond any window.
            _ => Wire::Prepare(sign_as(msg(
                me,
                Round(round.0 + 1_000),
                Kind::Prepare(hash),
            ))),
        }
    }
}

fn message_round(message: &Wire<TestKey, TestValue>) -> Round {
    match message {
        Wire::Proposal { proposal: m, .. }
        | Wire::Prepare(m)
        | Wire::Commit(m)
        | Wire::RoundChange {
            round_change: m, ..
        } => m.round(),
        Wire::Decided { commits, .. } => commits.first().map_or(Round::FIRST, |m| m.round()),
    }
}
