//! Consensus on each duty's value: the QBFT engine, the validity predicate
//! it is handed with every event (which asks the duty's own module whether
//! a proposed value may be agreed on), the round timeouts per duty type,
//! and the cut-short timer of a round whose leader this node cannot reach.
//! A decision is handed to the duty's module and releases the combined
//! signatures that waited for it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use phalanx_consensus::{
    self as qbft, Committee, Engine, LeaderSelection, OperatorIndex, RotatingLeader, Round,
    RoundTimeout, Validity, Value as _,
};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::{EthSpec, Root, Slot};

use super::scheduler::Scheduler;
use super::types::{Action, UNREACHABLE_LEADER_TIMEOUT};
use super::{aggregation, attester, proposer, Core};
use crate::duty::{Duty, DutyType};
use crate::dutydb::DutyDb;
use crate::error::{DropReason, InvalidValue};
use crate::parsigex::{Allowance, Budget};
use crate::scheme::SignatureScheme;
use crate::slashing::SlashingDb;
use crate::timing::round_timeout;
use crate::value::{decode_attestation_data, DutyValue};

/// The consensus engine and what shortens its rounds.
pub(super) struct Consensus {
    pub(super) engine: Engine<Duty, DutyValue>,
    /// The cluster's operators, for who leads each round.
    committee: Committee,
    /// Operators this node cannot reach now.
    unreachable: BTreeSet<OperatorIndex>,
    /// Per peer: what is left of the messages and bytes it may have the
    /// engine check ([`message_budget`]).
    allowances: BTreeMap<OperatorIndex, Allowance>,
}

/// The consensus messages one honest operator sends in a slot, at most:
/// for each of the few instances a slot has (attestation, aggregation,
/// proposal, sync contribution and their selection proofs) a proposal,
/// prepare, commit and round change in each of up to sixteen rounds.
pub(super) const MESSAGES_PER_SLOT: usize = 8 * 4 * 16;

/// What one peer may have the engine check: an epoch's worth of
/// [`MESSAGES_PER_SLOT`] at once, a slot's worth back each slot; and in
/// KiB, as many of the largest messages (a proposal with every blob) at
/// once as a slot has instances, two back each slot. Past it a peer's
/// messages are dropped before their signatures are checked or their
/// values hashed.
pub(super) fn message_budget(max_message_bytes: usize, slots_per_epoch: u64) -> Budget {
    let slots = usize::try_from(slots_per_epoch).unwrap_or(usize::MAX);
    let kib = max_message_bytes.div_ceil(1024);
    Budget {
        partials: MESSAGES_PER_SLOT.saturating_mul(slots),
        roots: kib.saturating_mul(8),
        partials_per_slot: MESSAGES_PER_SLOT,
        roots_per_slot: kib.saturating_mul(2),
    }
}

impl Consensus {
    pub(super) fn new(engine: Engine<Duty, DutyValue>, committee: Committee) -> Consensus {
        Consensus {
            engine,
            committee,
            unreachable: BTreeSet::new(),
            allowances: BTreeMap::new(),
        }
    }

    /// The operators this node cannot reach now (itself never counts).
    pub(super) fn set_unreachable(&mut self, operators: Vec<OperatorIndex>, me: OperatorIndex) {
        self.unreachable = operators.into_iter().filter(|&o| o != me).collect();
    }

    /// How long the timer of `round` runs, the engine asking for `after`.
    ///
    /// Waiting for a leader this node cannot reach only delays the round
    /// change: safety never depends on timing, and the next leader is then
    /// asked at once. Only while a quorum is reachable: without one no round
    /// can decide, and rounds would only churn.
    pub(super) fn round_timer(&self, instance: &Duty, round: Round, after: Duration) -> Duration {
        let leader = RotatingLeader.leader(instance, round, self.committee);
        let reachable = self.committee.size() as usize - self.unreachable.len();
        if self.unreachable.contains(&leader) && reachable >= self.committee.quorum() {
            after.min(UNREACHABLE_LEADER_TIMEOUT)
        } else {
            after
        }
    }
}

/// Round timeouts per duty type, from the timing module.
pub(super) struct DutyTimeout {
    pub(super) slot: Duration,
}

impl RoundTimeout<Duty> for DutyTimeout {
    fn timeout(&self, duty: &Duty, round: Round) -> Duration {
        round_timeout(duty.kind, self.slot, round.0)
    }
}

/// Checks a proposed value for what is objectively wrong and for slashing
/// safety of the group keys — never for agreement with this node's beacon
/// node, which would stall honest leaders whenever blocks are late. Built
/// over the core's current state for each event the engine handles.
pub(super) struct DutyValidity<'a, E: EthSpec, S: SignatureScheme> {
    pub(super) scheduler: &'a Scheduler<S>,
    pub(super) dutydb: &'a DutyDb<E>,
    pub(super) slashing: &'a SlashingDb,
    pub(super) network: &'a NetworkConfig,
    pub(super) genesis_validators_root: Root,
}

impl<E: EthSpec, S: SignatureScheme> Validity<Duty, DutyValue> for DutyValidity<'_, E, S> {
    type Error = InvalidValue;

    fn check(&self, duty: &Duty, value: &DutyValue) -> Result<(), InvalidValue> {
        let result = self.check_value(duty, value);
        if let Err(reason) = &result {
            tracing::debug!(%duty, %reason, "a proposed value is invalid");
        }
        result
    }
}

impl<E: EthSpec, S: SignatureScheme> DutyValidity<'_, E, S> {
    fn check_value(&self, duty: &Duty, value: &DutyValue) -> Result<(), InvalidValue> {
        match duty.kind {
            DutyType::Attester => {
                let entries = decode_attestation_data(value).map_err(InvalidValue::Malformed)?;
                attester::check_attestation_data(
                    duty.slot,
                    &entries,
                    self.scheduler.committees.get(&duty.slot),
                    self.network,
                    self.genesis_validators_root,
                    self.slashing,
                )
            }
            DutyType::Aggregator => aggregation::check_aggregates(duty.slot, value, self),
            DutyType::SyncContribution => aggregation::check_contributions::<E>(duty.slot, value),
            DutyType::Proposer => proposer::check_block(duty.slot, value, self),
            other => Err(InvalidValue::NotAgreedOn(other)),
        }
    }
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// Proposes a value for a duty, or follows the others' proposals when
    /// this node has none.
    pub(super) fn propose_or_join(
        &mut self,
        duty: Duty,
        value: Option<DutyValue>,
        actions: &mut Vec<Action<E>>,
    ) {
        if value.is_some() {
            self.tracker.fetched(&duty);
        }
        let event = match value {
            Some(value) => qbft::Event::Propose {
                instance: duty,
                value,
            },
            None => qbft::Event::Join { instance: duty },
        };
        self.run_consensus(event, actions);
    }

    /// Hands an event to the consensus engine, with the validity predicate
    /// over the current state, and turns its actions into the core's.
    pub(super) fn run_consensus(
        &mut self,
        event: qbft::Event<Duty, DutyValue>,
        actions: &mut Vec<Action<E>>,
    ) {
        let validity = DutyValidity {
            scheduler: &self.scheduler,
            dutydb: &self.dutydb,
            slashing: &self.slashing,
            network: &self.cluster.network,
            genesis_validators_root: self.cluster.genesis_validators_root,
        };
        let qbft_actions = self.consensus.engine.handle(event, &validity);
        self.on_consensus(qbft_actions, actions);
    }

    /// Time moved on to `slot`: expired instances are forgotten.
    pub(super) fn advance_consensus(&mut self, slot: Slot, actions: &mut Vec<Action<E>>) {
        self.run_consensus(qbft::Event::Advance { position: slot.0 }, actions);
    }

    /// A peer's consensus message, within the peer's budget of messages
    /// and bytes the engine checks.
    pub(super) fn on_consensus_message(
        &mut self,
        from: OperatorIndex,
        message: qbft::Wire<Duty, DutyValue>,
        actions: &mut Vec<Action<E>>,
    ) {
        let budget = message_budget(
            self.cluster.max_consensus_message,
            self.cluster.slots_per_epoch,
        );
        let slot = self.scheduler.current_slot.unwrap_or(Slot(0)).0;
        let kib = message.size().div_ceil(1024);
        let within = self
            .consensus
            .allowances
            .entry(from)
            .or_insert_with(|| Allowance::full(&budget, slot))
            .take(&budget, slot, 1, kib);
        if !within {
            actions.push(Action::Dropped {
                from,
                reason: DropReason::Consensus(qbft::RejectReason::OverBudget),
            });
            return;
        }
        if message.instance().is_some_and(|duty| {
            !self
                .scheduler
                .may_have(*duty, self.cluster.slots_per_epoch, None)
        }) {
            actions.push(Action::Dropped {
                from,
                reason: DropReason::Unscheduled,
            });
            return;
        }
        let event = qbft::Event::Message { from, message };
        self.run_consensus(event, actions);
    }

    fn on_consensus(
        &mut self,
        qbft_actions: Vec<qbft::Action<Duty, DutyValue>>,
        actions: &mut Vec<Action<E>>,
    ) {
        for action in qbft_actions {
            match action {
                qbft::Action::Broadcast(message) => {
                    actions.push(Action::ConsensusBroadcast(message))
                }
                qbft::Action::Send { to, message } => {
                    actions.push(Action::ConsensusSend { to, message })
                }
                qbft::Action::SetTimer {
                    instance,
                    round,
                    after,
                } => {
                    let after = self.consensus.round_timer(&instance, round, after);
                    actions.push(Action::SetTimer {
                        duty: instance,
                        round,
                        after,
                    })
                }
                qbft::Action::StopTimer { instance } => actions.push(Action::StopTimer(instance)),
                qbft::Action::Decide(decision) => {
                    actions.push(Action::Decided {
                        duty: decision.instance,
                        round: decision.round.0,
                        value_hash: decision.value.value_hash().0,
                    });
                    self.on_decided(decision.instance, &decision.value, actions);
                }
                qbft::Action::Dropped { from, kind, reason } => {
                    if reason.is_fault() {
                        actions.push(Action::Dropped {
                            from,
                            reason: DropReason::Consensus(reason),
                        });
                    } else {
                        // Late, duplicate or out-of-window: normal, but
                        // what a stalled instance is diagnosed from.
                        tracing::debug!(
                            from = from.0,
                            kind,
                            reason = reason.label(),
                            "a consensus message not applied"
                        );
                    }
                }
            }
        }
    }

    fn on_decided(&mut self, duty: Duty, value: &DutyValue, actions: &mut Vec<Action<E>>) {
        match duty.kind {
            DutyType::Attester => self.on_decided_attestation(duty, value, actions),
            DutyType::Aggregator | DutyType::SyncContribution => {
                self.on_decided_aggregation(duty, value, actions)
            }
            DutyType::Proposer => self.on_decided_block(duty, value, actions),
            _ => return,
        }
        // Partials that combined before this node decided.
        for (validator, root, signature) in self.waiting.take(duty) {
            self.submit(duty, validator, root, signature, actions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_consensus::testing::{MacSigner, MacVerifier};
    use phalanx_consensus::{Config, Parts};

    fn consensus(size: u32) -> Consensus {
        // The engine is not used by the timer rule; any engine of the
        // committee does.
        let committee = Committee::new(size).expect("committee");
        let engine = Engine::new(
            OperatorIndex(0),
            committee,
            Config::default(),
            Parts {
                lock_hash: [0; 32],
                signer: Box::new(MacSigner::new(OperatorIndex(0))),
                verifier: Box::new(MacVerifier),
                leader: Box::new(RotatingLeader),
                timeout: Box::new(DutyTimeout {
                    slot: Duration::from_secs(12),
                }),
            },
        )
        .expect("engine");
        Consensus::new(engine, committee)
    }

    #[test]
    fn a_round_led_by_an_unreachable_operator_is_cut_short() {
        let mut consensus = consensus(4);
        let duty = Duty::new(Slot(9), DutyType::Attester);
        let leader = RotatingLeader.leader(&duty, Round::FIRST, consensus.committee);
        let long = Duration::from_secs(2);
        assert_eq!(consensus.round_timer(&duty, Round::FIRST, long), long);
        consensus.set_unreachable(vec![leader], OperatorIndex(u32::MAX));
        assert_eq!(
            consensus.round_timer(&duty, Round::FIRST, long),
            UNREACHABLE_LEADER_TIMEOUT
        );
        // Without a reachable quorum (3 of 4) rounds are not hurried.
        let me = (0..4)
            .map(OperatorIndex)
            .find(|&o| o != leader)
            .expect("another operator");
        let others: Vec<OperatorIndex> = (0..4).map(OperatorIndex).filter(|&o| o != me).collect();
        consensus.set_unreachable(others, me);
        assert_eq!(consensus.round_timer(&duty, Round::FIRST, long), long);
    }

    #[test]
    fn this_operator_is_never_unreachable() {
        let mut consensus = consensus(4);
        consensus.set_unreachable(vec![OperatorIndex(0), OperatorIndex(2)], OperatorIndex(0));
        assert_eq!(consensus.unreachable, BTreeSet::from([OperatorIndex(2)]));
    }
}
