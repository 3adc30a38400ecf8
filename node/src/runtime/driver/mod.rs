//! The driver: executes the core's actions. Each action becomes a spawned
//! call whose answer comes back to the core as an event, so a slow beacon
//! node or peer never blocks the pipeline.
//!
//! - [`fetch`]: what the core asks of the beacon node (indices, duties,
//!   attestation data, aggregates, contributions, blocks).
//! - [`peers`]: consensus messages and partial signatures to the other
//!   operators, and consensus round timers.
//! - [`report`]: replies to the validator client, outcomes and drops to
//!   logs and metrics, new registrations to disk.
//! - Submissions go through [`super::submit`].

mod fetch;
mod peers;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use phalanx_eth::client::BeaconNodeClient;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::EthSpec;
use phalanx_p2p::{Network, PeerId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::report::refused;
use super::metrics::{Metrics, TypeLabels};
use super::now_ms;
use super::penalties::{DropLog, Scores};
use super::submit::{Batches, Submitter};
use crate::core::{Action, ApiFailure, Event, VcResponse};
use crate::duty::Duty;
use phalanx_consensus::OperatorIndex;

/// Where the answer to a validator client's request goes.
pub(super) type Reply<E> = oneshot::Sender<Result<VcResponse<E>, ApiFailure>>;

/// Executes the core's actions.
pub(super) struct Driver<E: EthSpec> {
    pub(super) client: Arc<BeaconNodeClient>,
    pub(super) net: Arc<Network>,
    /// The operators' peer ids, in lock order.
    pub(super) peers: Vec<PeerId>,
    pub(super) events: mpsc::UnboundedSender<Event<E>>,
    /// Validator-client requests waiting for the core, by the id the driver
    /// gave them.
    pub(super) replies: HashMap<u64, Reply<E>>,
    /// The consensus round timer of each duty.
    pub(super) timers: HashMap<Duty, JoinHandle<()>>,
    pub(super) metrics: Metrics,
    /// The id of the next validator-client request.
    pub(super) next_reply: u64,
    pub(super) network: NetworkConfig,
    pub(super) genesis_ms: u64,
    pub(super) data_dir: PathBuf,
    pub(super) submitter: Submitter<E>,
    pub(super) protocols: ProtocolNames,
    /// Every operator's penalty score.
    pub(super) scores: Scores,
    /// When each peer's dropped messages were last logged.
    pub(super) drop_log: DropLog,
}

/// The p2p protocols the driver sends on, named as the network registered
/// them (from [`crate::qbft::consensus_protocol`] and
/// [`crate::parsigex::parsigex_protocol`]), so no name is written twice.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProtocolNames {
    /// Consensus messages.
    pub(super) consensus: &'static str,
    /// Partial signatures.
    pub(super) partials: &'static str,
}

impl<E: EthSpec> Driver<E> {
    /// Keeps the reply channel of a validator-client request and returns
    /// the id the core knows it by (the driver's own, so that no two
    /// requests share one).
    pub(super) fn register_reply(&mut self, reply: Reply<E>) -> u64 {
        let id = self.next_reply;
        self.next_reply += 1;
        self.replies.insert(id, reply);
        id
    }

    /// Executes one run of the core's actions; submissions of the run to
    /// the beacon node are batched.
    pub(super) fn execute(&mut self, actions: Vec<Action<E>>) {
        let mut batches = Batches::default();
        // Each peer is penalised once per fault reason per run.
        let mut faults: BTreeMap<(OperatorIndex, &'static str), f64> = BTreeMap::new();
        for action in actions {
            match action {
                Action::ResolveIndices(keys) => self.resolve_indices(keys),
                Action::ResolveDuties {
                    epoch,
                    indices,
                    preparations,
                } => self.resolve_duties(epoch, indices, preparations),
                Action::ResolveProposers { epoch } => self.resolve_proposers(epoch),
                Action::FetchAttestationData { duty, committees } => {
                    self.fetch_attestation_data(duty, committees)
                }
                Action::FetchAggregates { duty, requests } => self.fetch_aggregates(duty, requests),
                Action::FetchContributions {
                    duty,
                    block_root,
                    subcommittees,
                } => self.fetch_contributions(duty, block_root, subcommittees),
                Action::FetchBlock {
                    duty,
                    randao_reveal,
                    graffiti,
                    builder_boost_factor,
                } => self.fetch_block(duty, randao_reveal, graffiti, builder_boost_factor),
                Action::ConsensusBroadcast(message) => self.broadcast_consensus(message),
                Action::ConsensusSend { to, message } => self.send_consensus(to, message),
                Action::SetTimer { duty, round, after } => self.set_timer(duty, round, after),
                Action::StopTimer(duty) => self.stop_timer(duty),
                Action::SendPartials(partials) => self.send_partials(partials),
                Action::Submit {
                    duty,
                    validator,
                    submission,
                } => {
                    self.observe_broadcast(duty);
                    self.submitter
                        .take(&mut batches, duty, validator, submission);
                }
                Action::Reply { id, result } => self.reply(id, result),
                Action::Decided { duty, round, .. } => self.decided(duty, round),
                Action::Outcome { duty, outcome } => self.outcome(duty, outcome),
                Action::Dropped { from, reason } => {
                    if reason.is_fault() {
                        let points = faults.entry((from, reason.label())).or_default();
                        *points = points.max(reason.penalty_points());
                    }
                    self.dropped(from, &reason);
                }
                Action::Registered(registration) => self.registered(&registration),
                Action::Refused {
                    duty,
                    validator,
                    reason,
                } => refused(duty, validator, &reason),
            }
        }
        self.submitter.flush(batches);
        for ((from, reason), points) in faults {
            self.penalise(from, reason, points);
        }
    }

    /// Records when into its slot a combined object went to the beacon node.
    fn observe_broadcast(&self, duty: Duty) {
        let slot_start = self.network.slot_start_ms(self.genesis_ms, duty.slot);
        self.metrics
            .broadcast_delay
            .get_or_create(&TypeLabels {
                duty: duty.kind.name().into(),
            })
            .observe(now_ms().saturating_sub(slot_start) as f64 / 1000.0);
    }

    /// Stops every consensus round timer.
    pub(super) fn stop_timers(&mut self) {
        for (_, timer) in self.timers.drain() {
            timer.abort();
        }
    }
}
