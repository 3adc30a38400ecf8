//! Peer penalties: a score per operator fed by the messages the core
//! drops as faults ([`DropReason::is_fault`]), decaying with time; above
//! a threshold the operator is disconnected for a while. And the limit on
//! how often one peer's dropped messages are logged.
//!
//! The numbers keep an honest operator far from a penalty. Only fault
//! reasons count, which an operator in step with the cluster never earns:
//! bad signatures, malformed or unverifiable messages, equivocation,
//! values no honest beacon node gives. A misconfigured honest node (a
//! broken beacon node, a wrong clock) may earn some, but at most about one
//! per duty and round or per batch of partials: a few a slot. Each of the
//! core's runs counts a peer once per reason however many of its messages
//! (a batch of thousands of partials) it dropped, a point decays with a
//! half-life of [`HALF_LIFE_MS`], and the threshold is [`THRESHOLD`]: an
//! operator is disconnected only after sustaining more than about
//! `THRESHOLD × ln 2 / 60 s` ≈ 3.5 faulty messages a second (over 40 a
//! 12-second slot), or sending 300 at once — what a flood does within a
//! second; or three batches of partials that fail their check or messages
//! that do not decode (120 points each), which no honest node sends. The disconnection lasts [`PENALTY`] (five 12-second slots),
//! after which the operator is dialled again with its score back at zero.

use std::collections::HashMap;
use std::time::Duration;

use phalanx_consensus::OperatorIndex;

/// Points a peer earns per run of the core in which one or more of its
/// messages were dropped for one fault reason, for most reasons (see
/// `DropReason::penalty_points`: a batch of partials that fails its check
/// weighs 120).
#[cfg(test)]
pub(super) const POINTS_PER_FAULT: f64 = 1.0;
/// The time in which a score halves.
pub(super) const HALF_LIFE_MS: u64 = 60_000;
/// The score above which a peer is disconnected.
pub(super) const THRESHOLD: f64 = 300.0;
/// How long a penalised peer stays disconnected.
pub(super) const PENALTY: Duration = Duration::from_secs(60);
/// Within this window, a peer's dropped messages of one reason are logged
/// once; the next line says how many were not.
pub(super) const LOG_WINDOW_MS: u64 = 10_000;

#[derive(Clone, Copy, Debug, Default)]
struct Score {
    points: f64,
    at_ms: u64,
    penalised_until_ms: u64,
}

impl Score {
    fn decayed(&self, now_ms: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        self.points * 0.5f64.powf(elapsed / HALF_LIFE_MS as f64)
    }
}

/// Every operator's score (indexed by operator, so bounded by the lock).
#[derive(Debug)]
pub(super) struct Scores {
    scores: Vec<Score>,
}

impl Scores {
    pub(super) fn new(operators: usize) -> Scores {
        Scores {
            scores: vec![Score::default(); operators],
        }
    }

    /// The operator's score now.
    #[cfg(test)]
    pub(super) fn score(&self, peer: OperatorIndex, now_ms: u64) -> f64 {
        self.scores
            .get(peer.as_usize())
            .map_or(0.0, |s| s.decayed(now_ms))
    }

    /// Counts a fault; the score reached if it crosses the threshold now
    /// (the caller disconnects the operator: once, its score starts again
    /// from zero and faults are not counted while it is penalised).
    pub(super) fn fault(&mut self, peer: OperatorIndex, points: f64, now_ms: u64) -> Option<f64> {
        let score = self.scores.get_mut(peer.as_usize())?;
        if now_ms < score.penalised_until_ms {
            return None;
        }
        let points = score.decayed(now_ms) + points;
        if points > THRESHOLD {
            *score = Score {
                points: 0.0,
                at_ms: now_ms,
                penalised_until_ms: now_ms.saturating_add(PENALTY.as_millis() as u64),
            };
            return Some(points);
        }
        score.points = points;
        score.at_ms = now_ms;
        None
    }
}

/// When a peer's dropped messages of each reason were last logged, and
/// how many were not since (bounded: operators × the fixed reasons).
#[derive(Debug, Default)]
pub(super) struct DropLog {
    windows: HashMap<(OperatorIndex, &'static str), (u64, u64)>,
}

impl DropLog {
    /// Whether to log this drop now; if so, how many were not logged since
    /// the last line.
    pub(super) fn admit(
        &mut self,
        peer: OperatorIndex,
        reason: &'static str,
        now_ms: u64,
    ) -> Option<u64> {
        match self.windows.get_mut(&(peer, reason)) {
            Some((since, suppressed)) if now_ms.saturating_sub(*since) < LOG_WINDOW_MS => {
                *suppressed += 1;
                None
            }
            Some((since, suppressed)) => {
                let not_logged = *suppressed;
                *since = now_ms;
                *suppressed = 0;
                Some(not_logged)
            }
            None => {
                self.windows.insert((peer, reason), (now_ms, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: OperatorIndex = OperatorIndex(2);

    #[test]
    fn a_flood_of_faults_crosses_the_threshold_once() {
        let mut scores = Scores::new(4);
        let t = 1_000_000;
        let crossed: Vec<u64> = (0..1_000u64)
            .filter(|i| scores.fault(PEER, POINTS_PER_FAULT, t + i).is_some())
            .collect();
        // Crossed at the 301st fault, then not counted while penalised.
        assert_eq!(crossed, vec![300]);
        assert_eq!(scores.score(PEER, t + 1_000), 0.0);
        // After the penalty it starts again from zero.
        let after = t + 300 + PENALTY.as_millis() as u64;
        assert_eq!(scores.fault(PEER, POINTS_PER_FAULT, after), None);
        assert_eq!(scores.score(PEER, after), POINTS_PER_FAULT);
        // Other operators are untouched; unknown ones are ignored.
        assert_eq!(scores.score(OperatorIndex(1), after), 0.0);
        assert_eq!(
            scores.fault(OperatorIndex(9), POINTS_PER_FAULT, after),
            None
        );
    }

    #[test]
    fn scores_halve_every_half_life() {
        let mut scores = Scores::new(4);
        for _ in 0..100 {
            scores.fault(PEER, POINTS_PER_FAULT, 0);
        }
        assert_eq!(scores.score(PEER, 0), 100.0);
        assert!((scores.score(PEER, HALF_LIFE_MS) - 50.0).abs() < 1e-9);
        assert!((scores.score(PEER, 3 * HALF_LIFE_MS) - 12.5).abs() < 1e-9);
    }

    #[test]
    fn a_misconfigured_honest_peer_is_never_disconnected() {
        // Forty faults every 12-second slot (more than one per duty and
        // round) for a day settle below the threshold.
        let mut scores = Scores::new(4);
        let mut highest: f64 = 0.0;
        for slot in 0..7_200u64 {
            for i in 0..40 {
                let at = slot * 12_000 + i * 300;
                assert_eq!(
                    scores.fault(PEER, POINTS_PER_FAULT, at),
                    None,
                    "slot {slot}"
                );
                highest = highest.max(scores.score(PEER, at));
            }
        }
        assert!(highest < THRESHOLD, "{highest}");
        assert!(
            highest > THRESHOLD * 0.6,
            "the margin is not vast: {highest}"
        );
    }

    #[test]
    fn drops_are_logged_once_per_peer_and_reason_per_window() {
        let mut log = DropLog::default();
        assert_eq!(log.admit(PEER, "bad_signature", 0), Some(0));
        for t in 1..=500 {
            assert_eq!(log.admit(PEER, "bad_signature", t), None);
        }
        // Another reason or peer has its own window.
        assert_eq!(log.admit(PEER, "equivocation", 10), Some(0));
        assert_eq!(log.admit(OperatorIndex(1), "bad_signature", 10), Some(0));
        // The next window's first line counts those not logged.
        assert_eq!(log.admit(PEER, "bad_signature", LOG_WINDOW_MS), Some(500));
        assert_eq!(log.admit(PEER, "bad_signature", LOG_WINDOW_MS + 1), None);
        assert_eq!(log.admit(PEER, "bad_signature", 3 * LOG_WINDOW_MS), Some(1));
    }

    #[test]
    fn three_failed_batches_disconnect_at_once() {
        let mut scores = Scores::new(4);
        let batch = crate::error::DropReason::Partial(crate::error::PartialRejection::InvalidBatch)
            .penalty_points();
        assert_eq!(scores.fault(PEER, batch, 0), None);
        assert_eq!(scores.fault(PEER, batch, 1), None);
        assert!(scores.fault(PEER, batch, 2).is_some());
    }
}
