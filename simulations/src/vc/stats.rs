//! What the client counts: per duty, what was attempted, submitted and
//! failed (a [`Tally`] per duty and slot), the last errors, and the
//! partials sent when recording.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use phalanx_eth::client::ClientError;
use phalanx_eth::{Slot, ValidatorIndex};

use crate::cluster::unix_ms;

/// How many error texts [`VcStats::errors`] keeps.
const MAX_ERRORS: usize = 100;

/// How long one error text may be.
const MAX_ERROR_CHARS: usize = 1000;

/// The duties a validator client performs, as counted in [`VcStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Duty {
    /// Attestations.
    Attester,
    /// Block proposals.
    Proposer,
    /// Aggregates of attestations.
    Aggregator,
    /// Sync-committee messages.
    SyncMessage,
    /// Sync-committee contributions.
    SyncContribution,
    /// `prepare_beacon_proposer`, each epoch.
    PrepareProposer,
    /// Builder registrations, once at start.
    Registration,
}

impl Duty {
    /// Every duty.
    pub const ALL: [Duty; 7] = [
        Duty::Attester,
        Duty::Proposer,
        Duty::Aggregator,
        Duty::SyncMessage,
        Duty::SyncContribution,
        Duty::PrepareProposer,
        Duty::Registration,
    ];

    /// The key of the duty in [`VcStats::per_duty`].
    pub fn as_str(self) -> &'static str {
        match self {
            Duty::Attester => "attester",
            Duty::Proposer => "proposer",
            Duty::Aggregator => "aggregator",
            Duty::SyncMessage => "sync_message",
            Duty::SyncContribution => "sync_contribution",
            Duty::PrepareProposer => "prepare_proposer",
            Duty::Registration => "registration",
        }
    }
}

/// What a [`VcMock`] has done so far.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VcStats {
    /// Counts per duty, keyed by [`Duty::as_str`].
    pub per_duty: BTreeMap<String, DutyStats>,
    /// The last 100 failures, each with its slot and endpoint.
    pub errors: Vec<String>,
}

impl VcStats {
    pub(super) fn new() -> VcStats {
        VcStats {
            per_duty: Duty::ALL
                .iter()
                .map(|duty| (duty.as_str().to_string(), DutyStats::default()))
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The counts of `duty`.
    pub fn duty(&self, duty: Duty) -> DutyStats {
        self.per_duty
            .get(duty.as_str())
            .cloned()
            .unwrap_or_default()
    }

    fn entry(&mut self, duty: Duty) -> &mut DutyStats {
        self.per_duty.entry(duty.as_str().to_string()).or_default()
    }
}

/// One duty's counts: one per validator per occurrence (one attestation,
/// one block, one aggregate, one registration…).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DutyStats {
    /// Started (duties cut short by [`VcMock::stop`] are not counted).
    pub attempted: u64,
    /// Accepted by the node.
    pub submitted: u64,
    /// Refused by the node, or lost to an error or the deadline.
    pub failed: u64,
}

/// What a [`SentPartial`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SentKind {
    /// An attestation (a `SingleAttestation`, Electra on).
    Attestation,
    /// A sync-committee message.
    SyncMessage,
    /// An attester's selection proof, exchanged for the combined one.
    BeaconSelection,
    /// A sync-committee member's selection proof for one subcommittee.
    SyncSelection,
}

/// One partially signed object sent to the node, recorded when
/// [`VcMockConfig::record_sent`] is set.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SentPartial {
    /// What it was.
    pub kind: SentKind,
    /// Its slot.
    pub slot: u64,
    /// The validator it was signed for.
    pub validator_index: u64,
    /// Unix milliseconds just before the request left.
    pub sent_ms: u64,
    /// Unix milliseconds when the node accepted it (selections: when the
    /// combined proofs came back); `None` if it did not.
    pub answered_ms: Option<u64>,
}

/// What the client's tasks share with its handle.
pub(super) struct Shared {
    pub(super) label: String,
    pub(super) stats: Mutex<VcStats>,
    /// Set by [`VcMock::stop`]: duties abandoned from then on are not failures.
    pub(super) stopping: AtomicBool,
    /// What was sent, when recording.
    pub(super) sent: Option<Mutex<Vec<SentPartial>>>,
}

impl Shared {
    pub(super) fn stats(&self) -> MutexGuard<'_, VcStats> {
        // A panic elsewhere while counting leaves the counts usable.
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn record_error(&self, slot: Slot, endpoint: &str, error: &dyn Display) {
        tracing::warn!(vc = %self.label, %slot, endpoint, %error, "validator-client mock: failure");
        let mut stats = self.stats();
        if stats.errors.len() >= MAX_ERRORS {
            stats.errors.remove(0);
        }
        let mut text = format!("slot {slot} {endpoint}: {error}");
        // A node's list of refused items can be long; the start says enough.
        if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
            text.truncate(cut);
            text.push('…');
        }
        stats.errors.push(text);
    }

    /// Records one request's partials (one per validator), when recording.
    pub(super) fn record_sent(
        &self,
        kind: SentKind,
        slot: Slot,
        validators: impl Iterator<Item = ValidatorIndex>,
        sent_ms: u64,
        answered: bool,
    ) {
        let Some(sent) = &self.sent else { return };
        let answered_ms = answered.then(unix_ms);
        sent.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(validators.map(|validator| SentPartial {
                kind,
                slot: slot.as_u64(),
                validator_index: validator.0,
                sent_ms,
                answered_ms,
            }));
    }
}

/// Why one step of a duty failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum DutyError {
    /// The typed client's error; it carries the node's message.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A deliberately malformed body was refused (or answered with an error).
    #[error("{endpoint} answered {status}: {message}")]
    Rejected {
        /// The endpoint.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The node's message.
        message: String,
    },
    /// A deliberately malformed body could not be sent.
    #[error("{endpoint}: {reason}")]
    Transport {
        /// The endpoint.
        endpoint: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The node's answer cannot be used.
    #[error("{0}")]
    Unusable(String),
}

/// Counts the outcome of one duty in one slot for a number of validators;
/// whatever is still open when it is dropped (the slot's deadline cut the
/// duty short) counts as failed, or, after a stop, as never attempted.
pub(super) struct Tally {
    shared: Arc<Shared>,
    duty: Duty,
    slot: Slot,
    open: AtomicU64,
    /// How many were submitted, for the outcome's log line.
    done: AtomicU64,
}

impl Tally {
    pub(super) fn start(shared: &Arc<Shared>, duty: Duty, slot: Slot, count: usize) -> Tally {
        shared.stats().entry(duty).attempted += count as u64;
        Tally {
            shared: shared.clone(),
            duty,
            slot,
            open: AtomicU64::new(count as u64),
            done: AtomicU64::new(0),
        }
    }

    /// Closes up to `count` open items; returns how many it closed.
    fn close(&self, count: usize) -> u64 {
        let mut closed = 0;
        let _ = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                closed = open.min(count as u64);
                Some(open - closed)
            });
        closed
    }

    pub(super) fn submitted(&self, count: usize) {
        let closed = self.close(count);
        self.done.fetch_add(closed, Ordering::SeqCst);
        self.shared.stats().entry(self.duty).submitted += closed;
    }

    pub(super) fn failed(&self, count: usize, endpoint: &str, error: &dyn Display) {
        let closed = self.close(count);
        if closed > 0 {
            self.shared.stats().entry(self.duty).failed += closed;
            self.shared.record_error(self.slot, endpoint, error);
        }
    }

    /// Counts a batch submission of `count` items: a node that names the
    /// items it refused (`failures` of a 400) has accepted the others.
    pub(super) fn settle(&self, endpoint: &str, count: usize, result: Result<(), DutyError>) {
        match result {
            Ok(()) => self.submitted(count),
            Err(error) => match failed_positions(&error, count) {
                Some(refused) => {
                    self.failed(refused, endpoint, &error);
                    self.submitted(count - refused);
                }
                None => self.failed(count, endpoint, &error),
            },
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let open = *self.open.get_mut();
        tracing::debug!(
            vc = %self.shared.label,
            slot = %self.slot,
            duty = self.duty.as_str(),
            submitted = *self.done.get_mut(),
            unfinished = open,
            "duty outcome"
        );
        if open == 0 {
            return;
        }
        if self.shared.stopping.load(Ordering::SeqCst) {
            let mut stats = self.shared.stats();
            let entry = stats.entry(self.duty);
            entry.attempted = entry.attempted.saturating_sub(open);
        } else {
            self.shared.stats().entry(self.duty).failed += open;
            self.shared.record_error(
                self.slot,
                self.duty.as_str(),
                &"the duty was cut short by its deadline (the end of the next slot)",
            );
        }
    }
}

/// How many of a batch of `count` items a node's 400 refused, when it says
/// (the beacon API's `failures`, one per refused item, which the client
/// puts in the error's message).
fn failed_positions(error: &DutyError, count: usize) -> Option<usize> {
    let DutyError::Client(ClientError::Status {
        status: 400,
        message,
        ..
    }) = error
    else {
        return None;
    };
    let (_, list) = message.rsplit_once(" failures: ")?;
    let failures: Vec<serde_json::Value> =
        serde_json::from_str(list.strip_suffix(')').unwrap_or(list)).ok()?;
    let positions: BTreeSet<u64> = failures
        .iter()
        .filter_map(|failure| match failure.get("index")? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .filter(|&position| position < count as u64)
        .collect();
    (!positions.is_empty()).then_some(positions.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_items_are_read_from_the_failures() {
        let refused = |message: &str, status| {
            let error = DutyError::Client(ClientError::Status {
                node: "http://bn".into(),
                endpoint: "submit_attestations",
                status,
                message: message.into(),
            });
            failed_positions(&error, 4)
        };
        let message = r#"some failed (2 failures: [{"index":0,"message":"bad"},{"index":"3","message":"bad"}])"#;
        assert_eq!(refused(message, 400), Some(2));
        assert_eq!(refused(message, 500), None);
        assert_eq!(refused("bad request", 400), None);
        // Positions outside the batch are ignored.
        assert_eq!(
            refused(r#"x (1 failures: [{"index":9,"message":"?"}])"#, 400),
            None
        );
    }

    #[test]
    fn tallies_count_what_the_deadline_cuts_short_but_not_a_stop() {
        let shared = Arc::new(Shared {
            label: "test".into(),
            stats: Mutex::new(VcStats::new()),
            stopping: AtomicBool::new(false),
            sent: None,
        });
        let tally = Tally::start(&shared, Duty::Attester, Slot(3), 4);
        tally.submitted(1);
        tally.failed(1, "submit_attestations", &"refused");
        drop(tally);
        let stats = shared.stats().duty(Duty::Attester);
        assert_eq!(
            stats,
            DutyStats {
                attempted: 4,
                submitted: 1,
                failed: 3
            }
        );
        assert_eq!(shared.stats().errors.len(), 2);
        assert!(shared.stats().errors[0].starts_with("slot 3 submit_attestations: refused"));

        shared.stopping.store(true, Ordering::SeqCst);
        let tally = Tally::start(&shared, Duty::Proposer, Slot(4), 1);
        drop(tally);
        assert_eq!(shared.stats().duty(Duty::Proposer), DutyStats::default());
    }
}
