//! Submission of the cluster's combined objects to the beacon node:
//! attestations and aggregates batched per fork, sync messages and
//! contributions batched, blocks, exits and registrations alone; each call
//! retried while the beacon node may recover and the duty's deadline
//! allows, and its result told to the core per duty.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use phalanx_eth::client::{BeaconNodeClient, ClientError};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::sync_committee::{SignedContributionAndProof, SyncCommitteeMessage};
use phalanx_eth::{EthSpec, ForkName, PublicKeyBytes};
use tokio::sync::mpsc;

use super::now_ms;
use crate::core::{AggregateSubmission, AttestationSubmission, BlockSubmission, Event, Submission};
use crate::duty::Duty;
use crate::timing::duty_timing;

/// The first pause before a submission is made again.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
const LAST_RETRY: Duration = Duration::from_secs(2);

/// Objects to submit in one call, and whose they are.
#[derive(Debug)]
struct Batch<T> {
    items: Vec<T>,
    owners: Vec<(Duty, PublicKeyBytes)>,
}

impl<T> Default for Batch<T> {
    fn default() -> Batch<T> {
        Batch {
            items: Vec::new(),
            owners: Vec::new(),
        }
    }
}

impl<T> Batch<T> {
    fn push(&mut self, item: T, duty: Duty, validator: PublicKeyBytes) {
        self.items.push(item);
        self.owners.push((duty, validator));
    }
}

/// The objects of one run of the core's actions that go to the beacon node
/// together. Each batch holds one fork's layout: the core builds every
/// object in the layout of its slot's fork, and batches are keyed by fork.
pub(super) struct Batches<E: EthSpec> {
    attestations: BTreeMap<ForkName, Batch<AttestationSubmission<E>>>,
    aggregates: BTreeMap<ForkName, Batch<AggregateSubmission<E>>>,
    contributions: Batch<SignedContributionAndProof<E>>,
    sync_messages: Batch<SyncCommitteeMessage>,
}

impl<E: EthSpec> Default for Batches<E> {
    fn default() -> Batches<E> {
        Batches {
            attestations: BTreeMap::new(),
            aggregates: BTreeMap::new(),
            contributions: Batch::default(),
            sync_messages: Batch::default(),
        }
    }
}

/// Submits to the beacon node and tells the core how it went.
pub(super) struct Submitter<E: EthSpec> {
    pub(super) client: Arc<BeaconNodeClient>,
    pub(super) events: mpsc::UnboundedSender<Event<E>>,
    pub(super) network: NetworkConfig,
    pub(super) genesis_ms: u64,
}

impl<E: EthSpec> Submitter<E> {
    /// Takes one combined object: blocks, exits and registrations go at
    /// once, the others join their batch until [`Submitter::flush`].
    pub(super) fn take(
        &self,
        batches: &mut Batches<E>,
        duty: Duty,
        validator: PublicKeyBytes,
        submission: Submission<E>,
    ) {
        match submission {
            Submission::Attestation(fork, attestation) => batches
                .attestations
                .entry(fork)
                .or_default()
                .push(attestation, duty, validator),
            Submission::SyncMessage(message) => {
                batches.sync_messages.push(*message, duty, validator)
            }
            Submission::Aggregate(fork, aggregate) => batches
                .aggregates
                .entry(fork)
                .or_default()
                .push(aggregate, duty, validator),
            Submission::Contribution(contribution) => {
                batches.contributions.push(*contribution, duty, validator)
            }
            Submission::Block(fork, block) => self.block(duty, validator, fork, block),
            Submission::Exit(exit) => {
                self.spawn(vec![(duty, validator)], move |client, deadline| async move {
                    let result = retrying(deadline, || client.submit_voluntary_exit(&exit)).await;
                    if result.is_ok() {
                        tracing::info!(validator = %exit.message.validator_index, epoch = %exit.message.epoch, "voluntary exit broadcast");
                    }
                    result
                })
            }
            Submission::Registrations(registrations) => {
                // The deadline is the duty's; the owners are every
                // registration's validator.
                let deadline = self.deadline(&[(duty, validator)]);
                let owners = registrations
                    .iter()
                    .map(|r| (duty, r.message.pubkey))
                    .collect();
                let client = self.client.clone();
                spawn_reported(self.events.clone(), owners, async move {
                    retrying(deadline, || client.register_validators(&registrations)).await
                });
            }
        }
    }

    /// A signed block, in the form its fork and the builder choice gave.
    fn block(
        &self,
        duty: Duty,
        validator: PublicKeyBytes,
        fork: ForkName,
        block: BlockSubmission<E>,
    ) {
        self.spawn(
            vec![(duty, validator)],
            move |client, deadline| async move {
                match block {
                    BlockSubmission::Full(signed) => {
                        retrying(deadline, || client.publish_block(fork, &signed, false)).await
                    }
                    BlockSubmission::Contents(contents) => {
                        retrying(deadline, || client.publish_block(fork, &contents, false)).await
                    }
                    BlockSubmission::Blinded(signed) => {
                        retrying(deadline, || client.publish_block(fork, &signed, true)).await
                    }
                }
            },
        );
    }

    /// Sends every batch, one call each.
    pub(super) fn flush(&self, batches: Batches<E>) {
        let Batches {
            attestations,
            aggregates,
            contributions,
            sync_messages,
        } = batches;
        for (fork, Batch { items, owners }) in attestations {
            self.spawn(owners, move |client, deadline| async move {
                retrying(deadline, || client.submit_attestations(fork, &items)).await
            });
        }
        for (fork, Batch { items, owners }) in aggregates {
            self.spawn(owners, move |client, deadline| async move {
                retrying(deadline, || {
                    client.submit_aggregate_and_proofs(fork, &items)
                })
                .await
            });
        }
        if !contributions.items.is_empty() {
            let Batch { items, owners } = contributions;
            self.spawn(owners, move |client, deadline| async move {
                retrying(deadline, || client.submit_contribution_and_proofs(&items)).await
            });
        }
        if !sync_messages.items.is_empty() {
            let Batch { items, owners } = sync_messages;
            self.spawn(owners, move |client, deadline| async move {
                retrying(deadline, || client.submit_sync_committee_messages(&items)).await
            });
        }
    }

    /// The earliest deadline of the duties a submission serves (Unix ms).
    fn deadline(&self, owners: &[(Duty, PublicKeyBytes)]) -> u64 {
        submission_deadline_ms(&self.network, self.genesis_ms, owners)
    }

    /// Runs `submit` (given the client and the owners' deadline) in its own
    /// task and reports its result for `owners`.
    fn spawn<F, Fut>(&self, owners: Vec<(Duty, PublicKeyBytes)>, submit: F)
    where
        F: FnOnce(Arc<BeaconNodeClient>, u64) -> Fut,
        Fut: Future<Output = Result<(), ClientError>> + Send + 'static,
    {
        let deadline = self.deadline(&owners);
        let call = submit(self.client.clone(), deadline);
        spawn_reported(self.events.clone(), owners, call);
    }
}

/// Awaits `call` in its own task, then reports its result for `owners`.
fn spawn_reported<E: EthSpec>(
    events: mpsc::UnboundedSender<Event<E>>,
    owners: Vec<(Duty, PublicKeyBytes)>,
    call: impl Future<Output = Result<(), ClientError>> + Send + 'static,
) {
    tokio::spawn(async move {
        let result = call.await;
        report(&events, owners, result);
    });
}

/// The earliest deadline, in Unix milliseconds, of the duties a submission
/// serves: each duty's slot start plus its deadline from the timing policy.
pub(super) fn submission_deadline_ms(
    network: &NetworkConfig,
    genesis_ms: u64,
    owners: &[(Duty, PublicKeyBytes)],
) -> u64 {
    let slot = network.slot_duration();
    let slots_per_epoch = u32::try_from(network.slots_per_epoch()).unwrap_or(32);
    owners
        .iter()
        .map(|(duty, _)| {
            let start = network.slot_start_ms(genesis_ms, duty.slot);
            let deadline = duty_timing(duty.kind, slot, slots_per_epoch).deadline;
            start.saturating_add(deadline.as_millis() as u64)
        })
        .min()
        .unwrap_or(0)
}

/// Whether a failed submission is made again after `wait`: only if the
/// beacon node may recover, does not already have the object, and the
/// attempt after the pause still comes before the deadline.
fn retry_after(error: &ClientError, now_ms: u64, wait: Duration, deadline_ms: u64) -> bool {
    error.is_retriable()
        && !error.is_already_known()
        && now_ms.saturating_add(wait.as_millis() as u64) <= deadline_ms
}

/// The pause after `wait`: doubled, up to [`LAST_RETRY`].
fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(LAST_RETRY)
}

/// Submits, and submits again after a transport error or a 5xx (the beacon
/// node was busy or restarting) until `deadline_ms`; a 4xx is final.
async fn retrying<F, Fut>(deadline_ms: u64, mut submit: F) -> Result<(), ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    let mut wait = FIRST_RETRY;
    loop {
        let result = submit().await;
        match &result {
            Err(e) if retry_after(e, now_ms(), wait, deadline_ms) => {
                tracing::debug!(error = %e, retry_in = ?wait, "submission failed; retrying");
                tokio::time::sleep(wait).await;
                wait = next_wait(wait);
            }
            _ => return result,
        }
    }
}

/// What a submission's result means for its duties: every operator's node
/// broadcasts the same object, so a beacon node that already has it from
/// another says so, which is success.
fn settle(result: Result<(), ClientError>) -> Result<(), ClientError> {
    match result {
        Err(e) if e.is_already_known() => Ok(()),
        other => other,
    }
}

/// The owners of a submission grouped by duty, in duty order.
fn by_duty(owners: Vec<(Duty, PublicKeyBytes)>) -> BTreeMap<Duty, Vec<PublicKeyBytes>> {
    let mut by_duty: BTreeMap<Duty, Vec<PublicKeyBytes>> = BTreeMap::new();
    for (duty, validator) in owners {
        by_duty.entry(duty).or_default().push(validator);
    }
    by_duty
}

/// Tells the core how a submission went, per duty.
fn report<E: EthSpec>(
    events: &mpsc::UnboundedSender<Event<E>>,
    owners: Vec<(Duty, PublicKeyBytes)>,
    result: Result<(), ClientError>,
) {
    let result = settle(result);
    if let Err(e) = &result {
        tracing::warn!(error = %e, "the beacon node refused a submission");
    }
    for (duty, validators) in by_duty(owners) {
        let _ = events.send(Event::Submitted {
            duty,
            validators,
            result: result.clone().map_err(|e| e.to_string()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::DutyType;
    use phalanx_eth::Slot;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failure(status: Option<u16>) -> ClientError {
        match status {
            Some(status) => ClientError::Status {
                node: "bn".into(),
                endpoint: "submit",
                status,
                message: "busy".into(),
            },
            None => ClientError::Transport {
                node: "bn".into(),
                endpoint: "submit",
                reason: "connection refused".into(),
            },
        }
    }

    #[tokio::test]
    async fn submissions_are_retried_until_they_land_or_the_deadline_passes() {
        // A restarting beacon node: refused, then 503, then accepted.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 5_000, || {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match call {
                    0 => Err(failure(None)),
                    1 => Err(failure(Some(503))),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A 400 is final.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 5_000, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failure(Some(400))) }
        })
        .await;
        assert_eq!(result.map_err(|e| e.status()), Err(Some(400)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // No retry once the deadline is near.
        let calls = AtomicU32::new(0);
        let result = retrying(now_ms() + 50, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failure(Some(503))) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_retry_must_land_before_the_deadline() {
        let wait = Duration::from_millis(100);
        assert!(retry_after(&failure(Some(503)), 1_000, wait, 1_100));
        assert!(!retry_after(&failure(Some(503)), 1_001, wait, 1_100));
        assert!(!retry_after(&failure(Some(400)), 0, wait, 10_000));
        let known = ClientError::Status {
            node: "bn".into(),
            endpoint: "publish_block",
            status: 500,
            message: "PublishError.Duplicate".into(),
        };
        assert!(!retry_after(&known, 0, wait, 10_000));
        let waits: Vec<u128> = std::iter::successors(Some(FIRST_RETRY), |w| Some(next_wait(*w)))
            .take(7)
            .map(|w| w.as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_600, 2_000, 2_000]);
    }

    #[test]
    fn an_object_the_beacon_node_already_has_is_a_success() {
        let known = ClientError::Status {
            node: "bn".into(),
            endpoint: "submit_attestations",
            status: 400,
            message: "ATTESTATION_ERROR_ATTESTATION_ALREADY_KNOWN".into(),
        };
        assert_eq!(settle(Err(known)), Ok(()));
        assert_eq!(settle(Err(failure(Some(400)))), Err(failure(Some(400))));
        assert_eq!(settle(Ok(())), Ok(()));
    }

    #[test]
    fn a_batch_is_due_at_its_earliest_duty_deadline() {
        let network = NetworkConfig::devnet(ForkName::Electra, 6_000);
        let genesis = 1_000_000;
        let attester = Duty::new(Slot(2), DutyType::Attester);
        let aggregator = Duty::new(Slot(2), DutyType::Aggregator);
        let key = PublicKeyBytes::repeat_byte(1);
        // Slot 2 starts at 12 s; attestations are due at two thirds.
        assert_eq!(
            submission_deadline_ms(&network, genesis, &[(attester, key)]),
            genesis + 12_000 + 4_000
        );
        assert_eq!(
            submission_deadline_ms(&network, genesis, &[(aggregator, key), (attester, key)]),
            genesis + 16_000
        );
        assert_eq!(
            submission_deadline_ms(&network, genesis, &[(aggregator, key)]),
            genesis + 18_000
        );
        assert_eq!(submission_deadline_ms(&network, genesis, &[]), 0);
    }

    #[test]
    fn results_are_reported_once_per_duty() {
        let (one, two) = (
            Duty::new(Slot(3), DutyType::Attester),
            Duty::new(Slot(4), DutyType::Attester),
        );
        let (a, b) = (
            PublicKeyBytes::repeat_byte(1),
            PublicKeyBytes::repeat_byte(2),
        );
        let grouped = by_duty(vec![(two, a), (one, b), (two, b)]);
        assert_eq!(
            grouped.into_iter().collect::<Vec<_>>(),
            vec![(one, vec![b]), (two, vec![a, b])]
        );
    }
}
