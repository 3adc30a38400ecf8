//! The engine: many QBFT instances behind one `handle(event) -> actions`.
//!
//! Every received message is first checked on its own (members, signatures,
//! kinds, justifications: [`Context::verify`]); only then does it reach its
//! instance, or wait in a bounded per-peer buffer if the instance has not
//! started here yet. Nothing that fails a check changes any state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::error::{Error, RejectReason};
use crate::instance::Instance;
use crate::message::{Kind, Message, SignedMessage, Signer, Verifier, Wire};
use crate::policy::{CheckValue, LeaderSelection, RoundTimeout, Validity};
use crate::types::{Committee, InstanceKey, OperatorIndex, Round, Value};

/// Limits of the engine; the defaults suit duties of 12-second slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How many rounds ahead of its own a node keeps prepares and commits
    /// (a node slightly behind must not lose them).
    pub rounds_ahead: u64,
    /// The last round an instance runs; messages beyond it are refused.
    pub max_round: u64,
    /// Messages for instances not started here are buffered if the
    /// instance's position is at most this far ahead of the current one.
    pub positions_ahead: u64,
    /// Instances (and buffered messages) more than this far behind the
    /// current position are forgotten.
    pub positions_behind: u64,
    /// Messages buffered per peer for instances not started yet.
    pub max_buffered_per_peer: usize,
    /// Bytes ([`Wire::size`]) buffered per peer for instances not started
    /// yet. It must hold a few of the largest messages of the protocol: an
    /// honest peer sends at most one value per instance and round (its
    /// proposal when it leads, or its round change with the value it
    /// prepared). The default, 40 MiB, holds two of the node's largest
    /// (a block with 21 blobs and their cell proofs, about 13.4 MB); the
    /// node derives its own from its network's blob limit.
    pub max_buffered_bytes_per_peer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rounds_ahead: 4,
            max_round: 64,
            positions_ahead: 1,
            positions_behind: 2,
            max_buffered_per_peer: 256,
            max_buffered_bytes_per_peer: 40 << 20,
        }
    }
}

/// What the engine reacts to.
#[derive(Clone, Debug)]
pub enum Event<K, V> {
    /// Start an instance with this node's own value (from its beacon node).
    Propose {
        /// The instance.
        instance: K,
        /// This node's value; proposed when this node leads a round with
        /// nothing prepared.
        value: V,
    },
    /// Start an instance without a value of its own: this node follows the
    /// others' proposals (its beacon node has nothing to offer).
    Join {
        /// The instance.
        instance: K,
    },
    /// A message from a peer.
    Message {
        /// The transport peer it came from (authenticated by `p2p`).
        from: OperatorIndex,
        /// The message.
        message: Wire<K, V>,
    },
    /// A timer set by [`Action::SetTimer`] fired.
    Timeout {
        /// The instance.
        instance: K,
        /// The round the timer was set for.
        round: Round,
    },
    /// Time moved on: the current position (slot). Expired instances are
    /// dropped and the window for early messages moves.
    Advance {
        /// The new current position.
        position: u64,
    },
}

/// A decided value with the commit quorum that proves it.
#[derive(Clone, Debug)]
pub struct Decision<K, V> {
    /// The instance.
    pub instance: K,
    /// The value agreed on.
    pub value: V,
    /// The round in which it was decided.
    pub round: Round,
    /// A quorum of commits for it.
    pub commits: Vec<SignedMessage<K>>,
}

/// What the engine asks its driver to do.
#[derive(Clone, Debug)]
pub enum Action<K, V> {
    /// Send to every other operator.
    Broadcast(Wire<K, V>),
    /// Send to one operator.
    Send {
        /// The recipient.
        to: OperatorIndex,
        /// The message.
        message: Wire<K, V>,
    },
    /// Fire [`Event::Timeout`] for this round after `after`, replacing the
    /// instance's previous timer.
    SetTimer {
        /// The instance.
        instance: K,
        /// The round the timer belongs to.
        round: Round,
        /// How long from now.
        after: Duration,
    },
    /// The instance needs no timer any more.
    StopTimer {
        /// The instance.
        instance: K,
    },
    /// The instance decided.
    Decide(Decision<K, V>),
    /// A received message was dropped, for metrics and logs.
    Dropped {
        /// The transport peer it came from.
        from: OperatorIndex,
        /// The wire kind (`proposal`, `prepare`, …).
        kind: &'static str,
        /// Why.
        reason: RejectReason,
    },
}

/// Deliberately broken engine variants that the test suite must catch.
#[cfg(feature = "test-utils")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// A new leader proposes its own value instead of the highest prepared one.
    ProposeOwnValue,
    /// A node commits as soon as it accepts a proposal, without a prepare quorum.
    CommitWithoutPrepareQuorum,
}

/// What the engine needs from its owner besides the configuration. The
/// validity predicate is not among them: it comes with every event
/// ([`Engine::handle`]).
pub struct Parts<K> {
    /// The cluster's lock hash, signed into every message
    /// ([`Message::signing_bytes`]) so that messages of one cluster never
    /// count in another.
    pub lock_hash: [u8; 32],
    /// Signs this node's messages.
    pub signer: Box<dyn Signer + Send>,
    /// Checks other nodes' signatures.
    pub verifier: Box<dyn Verifier + Send>,
    /// Names each round's leader.
    pub leader: Box<dyn LeaderSelection<K> + Send>,
    /// Says how long each round lasts.
    pub timeout: Box<dyn RoundTimeout<K> + Send>,
}

/// What instances share: identity, committee, policies.
pub(crate) struct Context<K> {
    pub(crate) me: OperatorIndex,
    pub(crate) committee: Committee,
    pub(crate) config: Config,
    pub(crate) parts: Parts<K>,
    #[cfg(feature = "test-utils")]
    pub(crate) mutant: Option<Mutant>,
}

/// What an instance sees while one event is handled: the shared context and
/// the validity predicate the event came with.
pub(crate) struct Step<'a, K, V> {
    pub(crate) ctx: &'a Context<K>,
    pub(crate) validity: &'a dyn CheckValue<K, V>,
}

impl<K, V> std::ops::Deref for Step<'_, K, V> {
    type Target = Context<K>;

    fn deref(&self) -> &Context<K> {
        self.ctx
    }
}

impl<K: InstanceKey> Context<K> {
    pub(crate) fn leader(&self, instance: &K, round: Round) -> OperatorIndex {
        self.parts.leader.leader(instance, round, self.committee)
    }

    pub(crate) fn sign(&self, message: Message<K>) -> SignedMessage<K> {
        let signature = self
            .parts
            .signer
            .sign(&message.signing_bytes(&self.parts.lock_hash));
        SignedMessage { message, signature }
    }

    pub(crate) fn timeout(&self, instance: &K, round: Round) -> Duration {
        self.parts.timeout.timeout(instance, round)
    }

    #[cfg(feature = "test-utils")]
    pub(crate) fn mutant(&self, mutant: Mutant) -> bool {
        self.mutant == Some(mutant)
    }

    /// Only the [`Mutant::ProposeOwnValue`] engine forgets that a new
    /// leader must re-propose the highest prepared value.
    pub(crate) fn ignores_prepared_values(&self) -> bool {
        #[cfg(feature = "test-utils")]
        {
            self.mutant(Mutant::ProposeOwnValue)
        }
        #[cfg(not(feature = "test-utils"))]
        {
            false
        }
    }

    /// Checks a message on its own: everything that does not depend on the
    /// state of its instance. Signatures are checked last, after the cheap
    /// structural checks, and skipped for justifications identical (down to
    /// the signature) to messages the instance already verified and keeps.
    pub(crate) fn verify<V: Value>(
        &self,
        key: &K,
        wire: &Wire<K, V>,
        known: Option<&Instance<K, V>>,
    ) -> Result<(), RejectReason> {
        let quorum = self.committee.quorum();
        let size = self.committee.size() as usize;
        let mut signed: Vec<&SignedMessage<K>> = Vec::new();
        match wire {
            Wire::Proposal {
                proposal,
                value,
                justification,
            } => {
                let Kind::Proposal(hash) = proposal.message.kind else {
                    return Err(RejectReason::Malformed("proposal wire without a proposal"));
                };
                self.check_header(key, proposal)?;
                let round = proposal.round();
                let leader = self.leader(key, round);
                if proposal.sender() != leader {
                    return Err(RejectReason::WrongLeader {
                        sender: proposal.sender().0,
                        round: round.0,
                        leader: leader.0,
                    });
                }
                // Hashing a value costs its length: only a leader's is hashed.
                if value.value_hash() != hash {
                    return Err(RejectReason::Malformed("value does not match its hash"));
                }
                signed.push(proposal);
                if round == Round::FIRST {
                    if !justification.round_changes.is_empty() || !justification.prepares.is_empty()
                    {
                        return Err(RejectReason::InvalidJustification(
                            "a first-round proposal needs no justification",
                        ));
                    }
                } else {
                    let rcs = &justification.round_changes;
                    if rcs.len() < quorum || rcs.len() > size {
                        return Err(RejectReason::InvalidJustification(
                            "not a quorum of round changes",
                        ));
                    }
                    let mut highest: Option<crate::message::Prepared> = None;
                    for rc in rcs {
                        self.check_header(key, rc)?;
                        let Kind::RoundChange(prepared) = rc.message.kind else {
                            return Err(RejectReason::InvalidJustification(
                                "a round-change justification holds another kind",
                            ));
                        };
                        if rc.round() != round {
                            return Err(RejectReason::InvalidJustification(
                                "a round change for another round",
                            ));
                        }
                        if let Some(p) = prepared {
                            if p.round >= round {
                                return Err(RejectReason::InvalidJustification(
                                    "a round change prepared in its own round or later",
                                ));
                            }
                            if highest.is_none_or(|h| p.round > h.round) {
                                highest = Some(p);
                            }
                        }
                    }
                    distinct_senders(rcs.iter(), size)?;
                    if self.ignores_prepared_values() {
                        highest = None;
                    }
                    match highest {
                        None => {
                            if !justification.prepares.is_empty() {
                                return Err(RejectReason::InvalidJustification(
                                    "prepares without a prepared round change",
                                ));
                            }
                        }
                        Some(p) => {
                            if hash != p.value
                                || !rcs.iter().any(|rc| {
                                    rc.message.kind
                                        == Kind::RoundChange(Some(crate::message::Prepared {
                                            round: p.round,
                                            value: hash,
                                        }))
                                })
                            {
                                return Err(RejectReason::InvalidJustification(
                                    "the proposal is not the highest prepared value",
                                ));
                            }
                            self.check_certificate(key, &justification.prepares, p.round, hash)?;
                            signed.extend(justification.prepares.iter());
                        }
                    }
                    signed.extend(rcs.iter());
                }
            }
            Wire::Prepare(m) => {
                if !matches!(m.message.kind, Kind::Prepare(_)) {
                    return Err(RejectReason::Malformed("prepare wire without a prepare"));
                }
                self.check_header(key, m)?;
                signed.push(m);
            }
            Wire::Commit(m) => {
                if !matches!(m.message.kind, Kind::Commit(_)) {
                    return Err(RejectReason::Malformed("commit wire without a commit"));
                }
                self.check_header(key, m)?;
                signed.push(m);
            }
            Wire::RoundChange {
                round_change,
                prepared,
            } => {
                let Kind::RoundChange(claim) = round_change.message.kind else {
                    return Err(RejectReason::Malformed(
                        "round-change wire without a round change",
                    ));
                };
                self.check_header(key, round_change)?;
                signed.push(round_change);
                match (claim, prepared) {
                    (None, None) => {}
                    (Some(p), Some(certificate)) => {
                        if p.round >= round_change.round() {
                            return Err(RejectReason::InvalidJustification(
                                "prepared in its own round or later",
                            ));
                        }
                        if certificate.value.value_hash() != p.value {
                            return Err(RejectReason::Malformed(
                                "prepared value does not match its hash",
                            ));
                        }
                        self.check_certificate(key, &certificate.prepares, p.round, p.value)?;
                        signed.extend(certificate.prepares.iter());
                    }
                    _ => {
                        return Err(RejectReason::Malformed(
                            "round change claim and certificate disagree",
                        ))
                    }
                }
            }
            Wire::Decided { value, commits } => {
                if commits.len() < quorum || commits.len() > size {
                    return Err(RejectReason::InvalidJustification(
                        "decided without a quorum of commits",
                    ));
                }
                let first = &commits[0];
                let Kind::Commit(hash) = first.message.kind else {
                    return Err(RejectReason::InvalidJustification(
                        "decided certificate holds another kind",
                    ));
                };
                if value.value_hash() != hash {
                    return Err(RejectReason::Malformed("value does not match its hash"));
                }
                for commit in commits {
                    self.check_header(key, commit)?;
                    if commit.message.kind != Kind::Commit(hash) || commit.round() != first.round()
                    {
                        return Err(RejectReason::InvalidJustification(
                            "decided commits disagree",
                        ));
                    }
                }
                distinct_senders(commits.iter(), size)?;
                signed.extend(commits.iter());
            }
        }
        for message in signed {
            if known.is_some_and(|instance| instance.knows(message)) {
                continue;
            }
            let bytes = message.message.signing_bytes(&self.parts.lock_hash);
            if !self
                .parts
                .verifier
                .verify(message.sender(), &bytes, &message.signature)
            {
                return Err(RejectReason::BadSignature(message.sender().0));
            }
        }
        Ok(())
    }

    /// The instance, sender and round of one signed message.
    fn check_header(&self, key: &K, message: &SignedMessage<K>) -> Result<(), RejectReason> {
        if message.message.instance != *key {
            return Err(RejectReason::Malformed("messages of different instances"));
        }
        if !self.committee.contains(message.sender()) {
            return Err(RejectReason::NotMember(message.sender().0));
        }
        if message.round().0 == 0 {
            return Err(RejectReason::Malformed("round 0"));
        }
        if message.round().0 > self.config.max_round {
            return Err(RejectReason::RoundOutOfRange(message.round().0));
        }
        Ok(())
    }

    /// A quorum of prepares for one round and value from distinct members.
    fn check_certificate(
        &self,
        key: &K,
        prepares: &[SignedMessage<K>],
        round: Round,
        value: crate::ValueHash,
    ) -> Result<(), RejectReason> {
        let size = self.committee.size() as usize;
        if prepares.len() < self.committee.quorum() || prepares.len() > size {
            return Err(RejectReason::InvalidJustification(
                "not a quorum of prepares",
            ));
        }
        for prepare in prepares {
            self.check_header(key, prepare)?;
            if prepare.message.kind != Kind::Prepare(value) || prepare.round() != round {
                return Err(RejectReason::InvalidJustification(
                    "a prepare for another round or value",
                ));
            }
        }
        distinct_senders(prepares.iter(), size)
    }
}

/// Refuses a certificate that counts one sender twice.
fn distinct_senders<'a, K: 'a>(
    messages: impl Iterator<Item = &'a SignedMessage<K>>,
    size: usize,
) -> Result<(), RejectReason> {
    let mut seen = vec![false; size];
    for message in messages {
        let slot = &mut seen[message.sender().as_usize()];
        if *slot {
            return Err(RejectReason::InvalidJustification(
                "one sender counted twice",
            ));
        }
        *slot = true;
    }
    Ok(())
}

/// A message waiting for an instance this node has not started.
struct Buffered<K, V> {
    from: OperatorIndex,
    message: Wire<K, V>,
    /// Its [`Wire::size`], counted against the peer's limit.
    size: usize,
}

/// The messages waiting for one instance, in arrival order, and the slots
/// (round, sender, kind) they fill.
struct Pending<K, V> {
    messages: Vec<Buffered<K, V>>,
    slots: BTreeSet<(Round, OperatorIndex, &'static str)>,
}

impl<K, V> Default for Pending<K, V> {
    fn default() -> Self {
        Pending {
            messages: Vec::new(),
            slots: BTreeSet::new(),
        }
    }
}

/// What each peer has buffered, by message count and by bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    messages: usize,
    bytes: usize,
}

impl Usage {
    fn release(&mut self, size: usize) {
        self.messages = self.messages.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
    }
}

/// Runs every QBFT instance of one operator.
///
/// Messages for instances not started here wait in a buffer, bounded per
/// transport peer by [`Config::max_buffered_per_peer`] messages and
/// [`Config::max_buffered_bytes_per_peer`] bytes, so that the whole buffer
/// never holds more than n times both. Before anything is buffered (or
/// verified), messages are refused for instance types that never run
/// consensus ([`InstanceKey::runs_consensus`]), with a value larger than
/// their instance's type takes ([`InstanceKey::max_value_bytes`]), outside the window of
/// positions, or for a slot (instance, round, sender, kind) that already
/// holds a message. The slots and the window alone bound the count, not
/// the bytes: (`positions_behind` + 1 + `positions_ahead`) positions × the
/// instances per position (4 duty types for the node) × `max_round` rounds
/// × 5 kinds × n senders — 4 × 4 × 64 × 5 × 4 = 20,480 slots by default for
/// n = 4, some of which carry values of up to 20 MB (round changes with a
/// prepared block and its blobs) — hence the byte limit.
pub struct Engine<K, V> {
    ctx: Context<K>,
    instances: BTreeMap<K, Instance<K, V>>,
    pending: BTreeMap<K, Pending<K, V>>,
    buffered_per_peer: Vec<Usage>,
    position: u64,
}

impl<K: InstanceKey, V: Value> Engine<K, V> {
    /// An engine for operator `me` of a committee of `committee` operators.
    pub fn new(
        me: OperatorIndex,
        committee: Committee,
        config: Config,
        parts: Parts<K>,
    ) -> Result<Engine<K, V>, Error> {
        if !committee.contains(me) {
            return Err(Error::NotMember(me.0, committee.size()));
        }
        if config.max_round == 0 {
            return Err(Error::Config("max_round must be at least 1"));
        }
        Ok(Engine {
            buffered_per_peer: vec![Usage::default(); committee.size() as usize],
            ctx: Context {
                me,
                committee,
                config,
                parts,
                #[cfg(feature = "test-utils")]
                mutant: None,
            },
            instances: BTreeMap::new(),
            pending: BTreeMap::new(),
            position: 0,
        })
    }

    /// Turns this engine into a deliberately broken one, for the test suite.
    #[cfg(feature = "test-utils")]
    pub fn set_mutant(&mut self, mutant: Option<Mutant>) {
        self.ctx.mutant = mutant;
    }

    /// This operator.
    pub fn me(&self) -> OperatorIndex {
        self.ctx.me
    }

    /// The committee.
    pub fn committee(&self) -> Committee {
        self.ctx.committee
    }

    /// Instances started here and not yet forgotten.
    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// Messages waiting for instances not started here.
    pub fn buffered_count(&self) -> usize {
        self.buffered_per_peer.iter().map(|u| u.messages).sum()
    }

    /// Bytes ([`Wire::size`]) waiting for instances not started here.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_per_peer.iter().map(|u| u.bytes).sum()
    }

    /// The current round of a started, undecided instance.
    pub fn round(&self, instance: &K) -> Option<Round> {
        self.instances.get(instance).map(Instance::round)
    }

    /// Processes one event and returns what to do. `validity` decides
    /// which proposed values may be prepared while the event is handled.
    pub fn handle<P: Validity<K, V>>(
        &mut self,
        event: Event<K, V>,
        validity: &P,
    ) -> Vec<Action<K, V>> {
        let mut actions = Vec::new();
        match event {
            Event::Propose { instance, value } => {
                self.start(instance, Some(value), validity, &mut actions)
            }
            Event::Join { instance } => self.start(instance, None, validity, &mut actions),
            Event::Message { from, message } => self.receive(from, message, validity, &mut actions),
            Event::Timeout { instance, round } => {
                if let Some(state) = self.instances.get_mut(&instance) {
                    let step = Step {
                        ctx: &self.ctx,
                        validity,
                    };
                    state.on_timeout(round, &step, &mut actions);
                }
            }
            Event::Advance { position } => self.advance(position),
        }
        actions
    }

    fn start(
        &mut self,
        key: K,
        input: Option<V>,
        validity: &dyn CheckValue<K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) {
        let step = Step {
            ctx: &self.ctx,
            validity,
        };
        if let Some(state) = self.instances.get_mut(&key) {
            state.provide_input(input, &step, actions);
            return;
        }
        let mut state = Instance::new(key.clone(), input);
        state.start(&step, actions);
        let pending = self.pending.remove(&key).unwrap_or_default();
        for buffered in pending.messages {
            self.buffered_per_peer[buffered.from.as_usize()].release(buffered.size);
            let kind = buffered.message.kind_name();
            if let Err(reason) = state.apply(buffered.from, buffered.message, &step, actions) {
                actions.push(Action::Dropped {
                    from: buffered.from,
                    kind,
                    reason,
                });
            }
        }
        self.instances.insert(key, state);
    }

    fn receive(
        &mut self,
        from: OperatorIndex,
        message: Wire<K, V>,
        validity: &dyn CheckValue<K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) {
        let kind = message.kind_name();
        if let Err(reason) = self.try_receive(from, message, validity, actions) {
            actions.push(Action::Dropped { from, kind, reason });
        }
    }

    fn try_receive(
        &mut self,
        from: OperatorIndex,
        message: Wire<K, V>,
        validity: &dyn CheckValue<K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) -> Result<(), RejectReason> {
        if !self.ctx.committee.contains(from) {
            return Err(RejectReason::NotMember(from.0));
        }
        let key = message
            .instance()
            .ok_or(RejectReason::Malformed("no instance named"))?
            .clone();
        if !key.runs_consensus() {
            return Err(RejectReason::NoConsensus);
        }
        let value_bytes = message.value_bytes();
        if value_bytes > key.max_value_bytes() {
            return Err(RejectReason::ValueTooLarge(value_bytes));
        }
        if key.position()
            < self
                .position
                .saturating_sub(self.ctx.config.positions_behind)
        {
            return Err(RejectReason::OutsideWindow);
        }
        if let Some(state) = self.instances.get_mut(&key) {
            if state.is_decided() {
                // Only a round change that would be answered is worth a
                // signature check; it is checked before it is answered.
                let max_round = self.ctx.config.max_round;
                if !state.answers(from, &message, max_round) {
                    return Err(RejectReason::AlreadyDecided);
                }
                self.ctx.verify(&key, &message, None)?;
                return state.answer_when_decided(from, &message, max_round, actions);
            }
            self.ctx.verify(&key, &message, Some(state))?;
            let step = Step {
                ctx: &self.ctx,
                validity,
            };
            return state.apply(from, message, &step, actions);
        }
        if key.position()
            > self
                .position
                .saturating_add(self.ctx.config.positions_ahead)
        {
            return Err(RejectReason::OutsideWindow);
        }
        let slot = message
            .slot(from)
            .ok_or(RejectReason::Malformed("no instance named"))?;
        if self
            .pending
            .get(&key)
            .is_some_and(|pending| pending.slots.contains(&slot))
        {
            return Err(RejectReason::AlreadyBuffered(slot.2, slot.1 .0));
        }
        let size = message.size();
        let usage = self.buffered_per_peer[from.as_usize()];
        if usage.messages >= self.ctx.config.max_buffered_per_peer
            || usage.bytes.saturating_add(size) > self.ctx.config.max_buffered_bytes_per_peer
        {
            return Err(RejectReason::BufferFull(from.0));
        }
        self.ctx.verify(&key, &message, None)?;
        let usage = &mut self.buffered_per_peer[from.as_usize()];
        usage.messages += 1;
        usage.bytes = usage.bytes.saturating_add(size);
        let pending = self.pending.entry(key).or_default();
        pending.slots.insert(slot);
        pending.messages.push(Buffered {
            from,
            message,
            size,
        });
        Ok(())
    }

    fn advance(&mut self, position: u64) {
        self.position = self.position.max(position);
        let oldest = self
            .position
            .saturating_sub(self.ctx.config.positions_behind);
        self.instances.retain(|key, _| key.position() >= oldest);
        let counts = &mut self.buffered_per_peer;
        self.pending.retain(|key, pending| {
            let keep = key.position() >= oldest;
            if !keep {
                for message in &pending.messages {
                    counts[message.from.as_usize()].release(message.size);
                }
            }
            keep
        });
    }
}
