//! One QBFT instance: the rules of Moniz's "The Istanbul BFT Consensus
//! Algorithm" (arXiv 2002.03613) as the ConsenSys QBFT specification states
//! them, applied to messages that have already passed [`crate::engine::Context::verify`].
//!
//! After every change, [`Instance::progress`] re-runs the upon-rules until
//! none fires, so the order in which messages arrive never matters.

use std::collections::BTreeMap;

use crate::engine::{Action, Decision, Step};
use crate::error::RejectReason;
use crate::message::{
    Kind, Message, Prepared, PreparedCertificate, ProposalJustification, SignedMessage, Wire,
};
use crate::types::{InstanceKey, OperatorIndex, Round, Value, ValueHash};

/// A round change kept from one sender: its highest.
struct RoundChangeEntry<K> {
    message: SignedMessage<K>,
    certificate: Vec<SignedMessage<K>>,
}

/// The value this node prepared last, with the prepare quorum proving it.
struct PreparedState<K> {
    round: Round,
    value: ValueHash,
    certificate: Vec<SignedMessage<K>>,
}

/// What is kept after the decision: enough to help lagging peers.
struct DecidedState<K, V> {
    value: V,
    commits: Vec<SignedMessage<K>>,
    /// Per peer, the round of the last round change answered with the decision.
    answered: BTreeMap<OperatorIndex, Round>,
}

pub(crate) struct Instance<K, V> {
    key: K,
    round: Round,
    input: Option<V>,
    /// Values whose hashes were proven by a proposal, a certificate or a decision.
    values: BTreeMap<ValueHash, V>,
    /// The proposal accepted in the current round.
    accepted: Option<ValueHash>,
    prepares: BTreeMap<Round, BTreeMap<OperatorIndex, SignedMessage<K>>>,
    commits: BTreeMap<Round, BTreeMap<OperatorIndex, SignedMessage<K>>>,
    round_changes: BTreeMap<OperatorIndex, RoundChangeEntry<K>>,
    prepared: Option<PreparedState<K>>,
    committed_in: Option<Round>,
    proposed_in: Option<Round>,
    decided: Option<DecidedState<K, V>>,
}

impl<K: InstanceKey, V: Value> Instance<K, V> {
    pub(crate) fn new(key: K, input: Option<V>) -> Instance<K, V> {
        Instance {
            key,
            round: Round::FIRST,
            input,
            values: BTreeMap::new(),
            accepted: None,
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            round_changes: BTreeMap::new(),
            prepared: None,
            committed_in: None,
            proposed_in: None,
            decided: None,
        }
    }

    pub(crate) fn round(&self) -> Round {
        self.round
    }

    /// Whether this exact message (signature included) was verified and is
    /// kept here, so a justification repeating it needs no new check.
    pub(crate) fn knows(&self, message: &SignedMessage<K>) -> bool {
        let sender = message.sender();
        match message.message.kind {
            Kind::Prepare(_) => {
                self.prepares
                    .get(&message.round())
                    .and_then(|table| table.get(&sender))
                    == Some(message)
                    || self
                        .prepared
                        .as_ref()
                        .is_some_and(|p| p.certificate.contains(message))
                    || self
                        .round_changes
                        .values()
                        .any(|entry| entry.certificate.contains(message))
            }
            Kind::Commit(_) => {
                self.commits
                    .get(&message.round())
                    .and_then(|table| table.get(&sender))
                    == Some(message)
            }
            Kind::RoundChange(_) => self
                .round_changes
                .get(&sender)
                .is_some_and(|entry| entry.message == *message),
            Kind::Proposal(_) => false,
        }
    }

    pub(crate) fn is_decided(&self) -> bool {
        self.decided.is_some()
    }

    pub(crate) fn start(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) {
        actions.push(Action::SetTimer {
            instance: self.key.clone(),
            round: self.round,
            after: ctx.timeout(&self.key, self.round),
        });
        self.progress(ctx, actions);
    }

    /// A value arriving after the instance was joined without one.
    pub(crate) fn provide_input(
        &mut self,
        input: Option<V>,
        ctx: &Step<'_, K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) {
        if self.input.is_none() && input.is_some() && !self.is_decided() {
            self.input = input;
            self.progress(ctx, actions);
        }
    }

    /// Whether a message for a decided instance would be answered with the
    /// decision: a round change the peer signed itself, the first from that
    /// peer or one whose round at least doubled since the peer's last
    /// answer (or reached `max_round`). The engine asks before it verifies
    /// anything, so that messages never answered cost no signature check,
    /// and verifies (`max_round` and signatures included) before answering.
    ///
    /// The answer can be 20 MB (a block with its blobs), so a peer gets at
    /// most 1 + log2(`max_round`) answers per instance (7 for the default
    /// 64): rounds 1 or 2, then 4, 8, 16, 32, 64. Once per peer and instance
    /// is too few: an honest node that lost its answers while the network
    /// was unstable would change rounds forever once every other node had
    /// decided. Doubling keeps the number constant yet answers such a node
    /// again after it waited, round for round, as long again as it already
    /// had, and at `max_round` at the latest.
    pub(crate) fn answers(
        &self,
        from: OperatorIndex,
        message: &Wire<K, V>,
        max_round: u64,
    ) -> bool {
        let Some(decided) = &self.decided else {
            return false;
        };
        match message {
            Wire::RoundChange { round_change, .. } => {
                round_change.sender() == from
                    && decided.answered.get(&from).is_none_or(|last| {
                        round_change.round().0 > last.0
                            && round_change.round().0 >= last.0.saturating_mul(2).min(max_round)
                    })
            }
            _ => false,
        }
    }

    /// A verified message for a decided instance: a peer still changing
    /// rounds gets the decision (see [`Instance::answers`]), everything else
    /// is moot.
    pub(crate) fn answer_when_decided(
        &mut self,
        from: OperatorIndex,
        message: &Wire<K, V>,
        max_round: u64,
        actions: &mut Vec<Action<K, V>>,
    ) -> Result<(), RejectReason> {
        if !self.answers(from, message, max_round) {
            return Err(RejectReason::AlreadyDecided);
        }
        let Some(decided) = &mut self.decided else {
            return Err(RejectReason::AlreadyDecided);
        };
        if let Wire::RoundChange { round_change, .. } = message {
            decided.answered.insert(from, round_change.round());
        }
        actions.push(Action::Send {
            to: from,
            message: Wire::Decided {
                value: decided.value.clone(),
                commits: decided.commits.clone(),
            },
        });
        Ok(())
    }

    /// Applies a verified message from a peer.
    pub(crate) fn apply(
        &mut self,
        from: OperatorIndex,
        message: Wire<K, V>,
        ctx: &Step<'_, K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) -> Result<(), RejectReason> {
        if self.is_decided() {
            return self.answer_when_decided(from, &message, ctx.config.max_round, actions);
        }
        match message {
            Wire::Proposal {
                proposal, value, ..
            } => self.on_proposal(proposal, value, ctx, actions)?,
            Wire::Prepare(prepare) => self.on_prepare(prepare, ctx)?,
            Wire::Commit(commit) => self.on_commit(commit, ctx)?,
            Wire::RoundChange {
                round_change,
                prepared,
            } => self.on_round_change(round_change, prepared, ctx)?,
            Wire::Decided { value, commits } => {
                let round = commits[0].round();
                self.decide(round, value, commits, actions);
                return Ok(());
            }
        }
        self.progress(ctx, actions);
        Ok(())
    }

    pub(crate) fn on_timeout(
        &mut self,
        round: Round,
        ctx: &Step<'_, K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) {
        if self.is_decided() || round != self.round || round.0 >= ctx.config.max_round {
            return;
        }
        let next = self.round.next();
        self.enter_round(next, ctx, actions);
        self.send_round_change(ctx, actions);
        self.progress(ctx, actions);
    }

    fn on_proposal(
        &mut self,
        proposal: SignedMessage<K>,
        value: V,
        ctx: &Step<'_, K, V>,
        actions: &mut Vec<Action<K, V>>,
    ) -> Result<(), RejectReason> {
        let round = proposal.round();
        let Kind::Proposal(hash) = proposal.message.kind else {
            return Err(RejectReason::Malformed("proposal wire without a proposal"));
        };
        if round < self.round {
            return Err(RejectReason::OldRound(round.0));
        }
        if round == self.round {
            if let Some(accepted) = self.accepted {
                return Err(if accepted == hash {
                    RejectReason::Duplicate("proposal", proposal.sender().0)
                } else {
                    RejectReason::Equivocation(proposal.sender().0, "proposal")
                });
            }
        }
        ctx.validity
            .check_value(&self.key, &value)
            .map_err(RejectReason::InvalidValue)?;
        if round > self.round {
            // A justified proposal proves a quorum moved to its round.
            self.enter_round(round, ctx, actions);
        }
        self.accepted = Some(hash);
        self.values.insert(hash, value);
        let prepare = ctx.sign(self.message(ctx, Kind::Prepare(hash)));
        self.store(&prepare);
        actions.push(Action::Broadcast(Wire::Prepare(prepare)));
        #[cfg(feature = "test-utils")]
        if ctx.mutant(crate::engine::Mutant::CommitWithoutPrepareQuorum) {
            self.committed_in = Some(self.round);
            let commit = ctx.sign(self.message(ctx, Kind::Commit(hash)));
            self.store(&commit);
            actions.push(Action::Broadcast(Wire::Commit(commit)));
        }
        Ok(())
    }

    fn on_prepare(
        &mut self,
        prepare: SignedMessage<K>,
        ctx: &Step<'_, K, V>,
    ) -> Result<(), RejectReason> {
        let round = prepare.round();
        if round < self.round {
            return Err(RejectReason::OldRound(round.0));
        }
        if round.0 > self.round.0.saturating_add(ctx.config.rounds_ahead) {
            return Err(RejectReason::RoundOutOfRange(round.0));
        }
        check_new(self.prepares.get(&round), &prepare)?;
        self.store(&prepare);
        Ok(())
    }

    fn on_commit(
        &mut self,
        commit: SignedMessage<K>,
        ctx: &Step<'_, K, V>,
    ) -> Result<(), RejectReason> {
        let round = commit.round();
        // Commits of earlier rounds still count: a commit quorum in any
        // round decides.
        if round.0 > self.round.0.saturating_add(ctx.config.rounds_ahead) {
            return Err(RejectReason::RoundOutOfRange(round.0));
        }
        check_new(self.commits.get(&round), &commit)?;
        self.store(&commit);
        Ok(())
    }

    fn on_round_change(
        &mut self,
        round_change: SignedMessage<K>,
        prepared: Option<PreparedCertificate<K, V>>,
        _ctx: &Step<'_, K, V>,
    ) -> Result<(), RejectReason> {
        let round = round_change.round();
        let sender = round_change.sender();
        if round < self.round {
            return Err(RejectReason::OldRound(round.0));
        }
        if let Some(existing) = self.round_changes.get(&sender) {
            let existing_round = existing.message.round();
            if existing_round > round {
                return Err(RejectReason::OldRound(round.0));
            }
            if existing_round == round {
                return Err(if existing.message == round_change {
                    RejectReason::Duplicate("round_change", sender.0)
                } else {
                    RejectReason::Equivocation(sender.0, "round_change")
                });
            }
        }
        let certificate = match (round_change.message.kind, prepared) {
            (Kind::RoundChange(Some(claim)), Some(certificate)) => {
                self.values.insert(claim.value, certificate.value);
                certificate.prepares
            }
            _ => Vec::new(),
        };
        self.round_changes.insert(
            sender,
            RoundChangeEntry {
                message: round_change,
                certificate,
            },
        );
        Ok(())
    }

    /// Re-runs the upon-rules until none fires.
    fn progress(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) {
        while !self.is_decided() {
            if self.try_decide(ctx, actions)
                || self.try_commit(ctx, actions)
                || self.try_jump(ctx, actions)
                || self.try_propose(ctx, actions)
            {
                continue;
            }
            break;
        }
    }

    /// Upon a quorum of commits for one round and value: decide it.
    fn try_decide(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) -> bool {
        let quorum = ctx.committee.quorum();
        let mut found = None;
        for (&round, commits) in &self.commits {
            if commits.len() < quorum {
                continue;
            }
            for hash in distinct_hashes(commits.values()) {
                let matching: Vec<_> = commits
                    .values()
                    .filter(|m| m.message.kind == Kind::Commit(hash))
                    .take(quorum)
                    .cloned()
                    .collect();
                if matching.len() >= quorum && self.values.contains_key(&hash) {
                    found = Some((round, hash, matching));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some((round, hash, commits)) = found else {
            return false;
        };
        let Some(value) = self.values.remove(&hash) else {
            return false;
        };
        self.decide(round, value, commits, actions);
        true
    }

    /// Upon a quorum of prepares for the accepted proposal of the current
    /// round: record the prepared value and commit.
    fn try_commit(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) -> bool {
        let Some(hash) = self.accepted else {
            return false;
        };
        if self.committed_in == Some(self.round) {
            return false;
        }
        let quorum = ctx.committee.quorum();
        let Some(prepares) = self.prepares.get(&self.round) else {
            return false;
        };
        let certificate: Vec<_> = prepares
            .values()
            .filter(|m| m.message.kind == Kind::Prepare(hash))
            .take(quorum)
            .cloned()
            .collect();
        if certificate.len() < quorum {
            return false;
        }
        self.prepared = Some(PreparedState {
            round: self.round,
            value: hash,
            certificate,
        });
        self.committed_in = Some(self.round);
        let commit = ctx.sign(self.message(ctx, Kind::Commit(hash)));
        self.store(&commit);
        actions.push(Action::Broadcast(Wire::Commit(commit)));
        true
    }

    /// Upon f+1 round changes for rounds above the current one: move to the
    /// smallest round among the f+1 highest, so that the node never waits
    /// for its own timer while f+1 others (one of them honest) moved on.
    fn try_jump(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) -> bool {
        let needed = ctx.committee.faults() + 1;
        let mut higher: Vec<Round> = self
            .round_changes
            .values()
            .map(|entry| entry.message.round())
            .filter(|&round| round > self.round)
            .collect();
        if higher.len() < needed {
            return false;
        }
        higher.sort_unstable_by(|a, b| b.cmp(a));
        let target = higher[needed - 1];
        self.enter_round(target, ctx, actions);
        self.send_round_change(ctx, actions);
        true
    }

    /// As leader: in round 1 propose the own value; in a later round, upon a
    /// quorum of round changes for it, propose the highest prepared value
    /// among them, or the own value if none prepared.
    fn try_propose(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) -> bool {
        if self.proposed_in == Some(self.round) || ctx.leader(&self.key, self.round) != ctx.me {
            return false;
        }
        let (value, justification) = if self.round == Round::FIRST {
            let Some(input) = &self.input else {
                return false;
            };
            (input.clone(), ProposalJustification::default())
        } else {
            let quorum = ctx.committee.quorum();
            let current: Vec<&RoundChangeEntry<K>> = self
                .round_changes
                .values()
                .filter(|entry| entry.message.round() == self.round)
                .collect();
            if current.len() < quorum {
                return false;
            }
            let highest = current
                .iter()
                .filter_map(|entry| match entry.message.message.kind {
                    Kind::RoundChange(Some(p)) => Some((p, *entry)),
                    _ => None,
                })
                .max_by_key(|(p, _)| p.round);
            let highest = if ctx.ignores_prepared_values() {
                None
            } else {
                highest
            };
            let mut round_changes: Vec<SignedMessage<K>> = Vec::with_capacity(quorum);
            let (value, prepares) = match highest {
                Some((prepared, entry)) => {
                    let Some(value) = self.values.get(&prepared.value) else {
                        return false;
                    };
                    round_changes.push(entry.message.clone());
                    (value.clone(), entry.certificate.clone())
                }
                None => {
                    let Some(input) = &self.input else {
                        return false;
                    };
                    (input.clone(), Vec::new())
                }
            };
            for entry in &current {
                if round_changes.len() >= quorum {
                    break;
                }
                if !round_changes.contains(&entry.message) {
                    round_changes.push(entry.message.clone());
                }
            }
            (
                value,
                ProposalJustification {
                    round_changes,
                    prepares,
                },
            )
        };
        self.proposed_in = Some(self.round);
        let hash = value.value_hash();
        let proposal = ctx.sign(self.message(ctx, Kind::Proposal(hash)));
        actions.push(Action::Broadcast(Wire::Proposal {
            proposal: proposal.clone(),
            value: value.clone(),
            justification,
        }));
        // If the own value fails the validity predicate the node does not
        // prepare it and the round times out; the driver checks its values
        // before proposing them.
        let _ = self.on_proposal(proposal, value, ctx, actions);
        true
    }

    fn enter_round(&mut self, round: Round, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) {
        self.round = round;
        self.accepted = None;
        self.prepares = self.prepares.split_off(&round);
        actions.push(Action::SetTimer {
            instance: self.key.clone(),
            round,
            after: ctx.timeout(&self.key, round),
        });
    }

    fn send_round_change(&mut self, ctx: &Step<'_, K, V>, actions: &mut Vec<Action<K, V>>) {
        let claim = self.prepared.as_ref().map(|p| Prepared {
            round: p.round,
            value: p.value,
        });
        let certificate = self.prepared.as_ref().and_then(|p| {
            self.values.get(&p.value).map(|value| PreparedCertificate {
                value: value.clone(),
                prepares: p.certificate.clone(),
            })
        });
        let round_change = ctx.sign(self.message(ctx, Kind::RoundChange(claim)));
        self.round_changes.insert(
            ctx.me,
            RoundChangeEntry {
                message: round_change.clone(),
                certificate: certificate
                    .as_ref()
                    .map(|c| c.prepares.clone())
                    .unwrap_or_default(),
            },
        );
        actions.push(Action::Broadcast(Wire::RoundChange {
            round_change,
            prepared: certificate,
        }));
    }

    fn decide(
        &mut self,
        round: Round,
        value: V,
        commits: Vec<SignedMessage<K>>,
        actions: &mut Vec<Action<K, V>>,
    ) {
        actions.push(Action::StopTimer {
            instance: self.key.clone(),
        });
        actions.push(Action::Decide(Decision {
            instance: self.key.clone(),
            value: value.clone(),
            round,
            commits: commits.clone(),
        }));
        self.decided = Some(DecidedState {
            value,
            commits,
            answered: BTreeMap::new(),
        });
        self.values.clear();
        self.prepares.clear();
        self.commits.clear();
        self.round_changes.clear();
        self.prepared = None;
        self.input = None;
    }

    fn message(&self, ctx: &Step<'_, K, V>, kind: Kind) -> Message<K> {
        Message {
            instance: self.key.clone(),
            round: self.round,
            sender: ctx.me,
            kind,
        }
    }

    /// Records a prepare or commit (own or verified).
    fn store(&mut self, message: &SignedMessage<K>) {
        let table = match message.message.kind {
            Kind::Prepare(_) => &mut self.prepares,
            Kind::Commit(_) => &mut self.commits,
            _ => return,
        };
        table
            .entry(message.round())
            .or_default()
            .insert(message.sender(), message.clone());
    }
}

/// Refuses a second prepare or commit from one sender in one round.
fn check_new<K: PartialEq>(
    existing: Option<&BTreeMap<OperatorIndex, SignedMessage<K>>>,
    message: &SignedMessage<K>,
) -> Result<(), RejectReason> {
    let Some(previous) = existing.and_then(|table| table.get(&message.sender())) else {
        return Ok(());
    };
    let kind = message.message.kind.name();
    Err(if previous == message {
        RejectReason::Duplicate(kind, message.sender().0)
    } else {
        RejectReason::Equivocation(message.sender().0, kind)
    })
}

/// The distinct value hashes among prepares or commits, in order.
fn distinct_hashes<'a, K: 'a>(
    messages: impl Iterator<Item = &'a SignedMessage<K>>,
) -> Vec<ValueHash> {
    let mut hashes: Vec<ValueHash> = messages
        .filter_map(|m| match m.message.kind {
            Kind::Prepare(h) | Kind::Commit(h) | Kind::Proposal(h) => Some(h),
            Kind::RoundChange(_) => None,
        })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}
