//! Why a duty failed: every duty gets an outcome by its deadline — success,
//! or the precise step that did not happen (no data from the beacon node,
//! no consensus decision, too few partial signatures and from whom, the
//! beacon node's refusal). Time is an input (milliseconds), as in every
//! core of the pipeline.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_consensus::OperatorIndex;
use phalanx_eth::PublicKeyBytes;

use crate::duty::Duty;

/// How far a duty got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Progress {
    deadline_ms: u64,
    fetched: bool,
    decided: bool,
    /// The validators the duty is for.
    expected: BTreeSet<PublicKeyBytes>,
    /// Per validator: the operators whose valid partials arrived.
    partials: BTreeMap<PublicKeyBytes, BTreeSet<OperatorIndex>>,
    /// The validators whose combined signature the beacon node accepted.
    submitted: BTreeSet<PublicKeyBytes>,
    error: Option<Failure>,
}

impl Progress {
    fn broadcast(&self) -> bool {
        !self.expected.is_empty() && self.expected.is_subset(&self.submitted)
    }
}

/// Why a duty failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The beacon node gave no data (and why, if it said).
    NoData(String),
    /// Consensus did not decide in time.
    NoDecision,
    /// Fewer partial signatures than the threshold arrived; these operators
    /// did not send theirs.
    TooFewPartials {
        /// Partials received.
        got: usize,
        /// The threshold.
        needed: usize,
        /// Operators whose partial never came.
        missing: Vec<OperatorIndex>,
    },
    /// Enough partials arrived, but the combined signature did not reach
    /// the beacon node in time (the decision or the beacon node was late).
    NotBroadcast,
    /// The beacon node refused the signed object.
    Rejected(String),
    /// Slashing protection refused to sign.
    Slashing(String),
}

impl Failure {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::NoData(_) => "no_data",
            Failure::NoDecision => "no_decision",
            Failure::TooFewPartials { .. } => "too_few_partials",
            Failure::NotBroadcast => "not_broadcast",
            Failure::Rejected(_) => "rejected",
            Failure::Slashing(_) => "slashing",
        }
    }
}

/// A duty's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Broadcast by its deadline.
    Success,
    /// Not done, and why.
    Failed(Failure),
}

/// Follows every duty to its outcome.
#[derive(Debug)]
pub struct Tracker {
    operators: u32,
    threshold: usize,
    duties: BTreeMap<Duty, Progress>,
}

impl Tracker {
    /// A tracker for a cluster of `operators` with `threshold`.
    pub fn new(operators: u32, threshold: usize) -> Tracker {
        Tracker {
            operators,
            threshold,
            duties: BTreeMap::new(),
        }
    }

    /// A duty started; it must be done by `deadline_ms`.
    pub fn started(&mut self, duty: Duty, deadline_ms: u64) {
        self.duties.entry(duty).or_insert_with(|| Progress {
            deadline_ms,
            ..Progress::default()
        });
    }

    /// The beacon node gave the duty's data.
    pub fn fetched(&mut self, duty: &Duty) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.fetched = true;
        }
    }

    /// Consensus decided.
    pub fn decided(&mut self, duty: &Duty) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.fetched = true;
            p.decided = true;
        }
    }

    /// The duty is (also) for these validators.
    pub fn expect(&mut self, duty: &Duty, validators: impl IntoIterator<Item = PublicKeyBytes>) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.expected.extend(validators);
        }
    }

    /// The duty is only for the expected validators `keep` approves (an
    /// aggregator whose committee got no aggregate has nothing to sign).
    pub fn retain_expected(&mut self, duty: &Duty, keep: impl Fn(&PublicKeyBytes) -> bool) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.expected.retain(|v| keep(v));
        }
    }

    /// A valid partial signature of `operator` for `validator` arrived.
    pub fn partial(&mut self, duty: &Duty, validator: PublicKeyBytes, operator: OperatorIndex) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.partials.entry(validator).or_default().insert(operator);
        }
    }

    /// The beacon node accepted the combined signature of `validator`; the
    /// duty succeeds once every expected validator's is.
    pub fn submitted(&mut self, duty: &Duty, validator: PublicKeyBytes) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.submitted.insert(validator);
        }
    }

    /// A step failed with a reason the tracker cannot infer.
    pub fn failed(&mut self, duty: &Duty, failure: Failure) {
        if let Some(p) = self.duties.get_mut(duty) {
            p.error.get_or_insert(failure);
        }
    }

    /// The outcomes of duties done or past their deadline at `now_ms`;
    /// each is reported once.
    pub fn outcomes(&mut self, now_ms: u64) -> Vec<(Duty, Outcome)> {
        let mut done = Vec::new();
        for (duty, p) in &self.duties {
            let outcome = if p.broadcast() {
                Outcome::Success
            } else if now_ms < p.deadline_ms {
                continue;
            } else if let Some(error) = &p.error {
                Outcome::Failed(error.clone())
            } else if !p.fetched {
                Outcome::Failed(Failure::NoData("no answer before the deadline".into()))
            } else if duty.kind.needs_consensus() && !p.decided {
                Outcome::Failed(Failure::NoDecision)
            } else {
                // The unfinished validator with the fewest partials says
                // best what was missing, and from whom.
                let empty = BTreeSet::new();
                let from = p
                    .expected
                    .difference(&p.submitted)
                    .map(|v| p.partials.get(v).unwrap_or(&empty))
                    .min_by_key(|from| from.len())
                    .unwrap_or(&empty);
                if from.len() >= self.threshold {
                    Outcome::Failed(Failure::NotBroadcast)
                } else {
                    Outcome::Failed(Failure::TooFewPartials {
                        got: from.len(),
                        needed: self.threshold,
                        missing: (0..self.operators)
                            .map(OperatorIndex)
                            .filter(|o| !from.contains(o))
                            .collect(),
                    })
                }
            };
            done.push((*duty, outcome));
        }
        for (duty, _) in &done {
            self.duties.remove(duty);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::DutyType;
    use phalanx_eth::Slot;

    #[test]
    fn each_duty_gets_its_precise_outcome_once() {
        let mut tracker = Tracker::new(4, 3);
        let ok = Duty::new(Slot(1), DutyType::Attester);
        let no_data = Duty::new(Slot(1), DutyType::Proposer);
        let no_decision = Duty::new(Slot(1), DutyType::Aggregator);
        let few = Duty::new(Slot(1), DutyType::SyncMessage);
        let rejected = Duty::new(Slot(2), DutyType::Attester);
        for duty in [ok, no_data, no_decision, few, rejected] {
            tracker.started(duty, 1_000);
        }
        let (v1, v2) = (
            PublicKeyBytes::repeat_byte(1),
            PublicKeyBytes::repeat_byte(2),
        );
        for duty in [ok, few] {
            tracker.expect(&duty, [v1, v2]);
        }
        tracker.decided(&ok);
        tracker.submitted(&ok, v1);
        assert!(
            tracker.outcomes(500).is_empty(),
            "one of two validators is not done"
        );
        tracker.submitted(&ok, v2);
        tracker.fetched(&no_decision);
        tracker.fetched(&few);
        // Validator 1 of `few` combined; validator 2 got two partials.
        for operator in 0..3 {
            tracker.partial(&few, v1, OperatorIndex(operator));
        }
        tracker.submitted(&few, v1);
        tracker.partial(&few, v2, OperatorIndex(0));
        tracker.partial(&few, v2, OperatorIndex(2));
        tracker.decided(&rejected);
        tracker.failed(&rejected, Failure::Rejected("400: invalid".into()));

        // Before the deadline only the success is final.
        assert_eq!(tracker.outcomes(500), vec![(ok, Outcome::Success)]);
        let outcomes: BTreeMap<Duty, Outcome> = tracker.outcomes(1_000).into_iter().collect();
        assert!(matches!(
            outcomes[&no_data],
            Outcome::Failed(Failure::NoData(_))
        ));
        assert_eq!(outcomes[&no_decision], Outcome::Failed(Failure::NoDecision));
        assert_eq!(
            outcomes[&few],
            Outcome::Failed(Failure::TooFewPartials {
                got: 2,
                needed: 3,
                missing: vec![OperatorIndex(1), OperatorIndex(3)]
            })
        );
        assert_eq!(
            outcomes[&rejected],
            Outcome::Failed(Failure::Rejected("400: invalid".into()))
        );
        assert!(tracker.outcomes(5_000).is_empty(), "reported once");
    }
}
