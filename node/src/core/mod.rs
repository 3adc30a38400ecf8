//! The duty pipeline of one node as a single sans-IO state machine.
//!
//! [`Core::handle`] takes the time and one [`Event`] (a clock tick, a
//! beacon-node answer, a peer's consensus message or partial signatures, a
//! request of the own validator client) and returns [`Action`]s for the
//! driver: calls to make, messages to send, timers to set, replies to give.
//! The real node drives it with tokio, libp2p and HTTP (`runtime`); the
//! simulator drives the very same code in virtual time.
//!
//! Per duty: the scheduler starts it at its time (from the `timing`
//! module), the fetcher asks the beacon node for its unsigned data,
//! consensus decides one value for all its validators, the decided value is
//! checked against slashing protection and stored, the validator client
//! signs it with its share, partials are verified, exchanged and combined,
//! the combined signature is verified under the group key and submitted.
//! The tracker gives every duty an outcome by its deadline.
//!
//! This module only dispatches; each part owns its state and forgets it
//! past its deadline:
//!
//! - `cluster`: the cluster and chain, fixed for the core's lifetime.
//! - `scheduler`: indices, duties, proposers, committees; what starts when.
//! - `consensus`: the QBFT engine, the validity predicate, round timers.
//! - [`crate::dutydb`]: every decided value.
//! - `partials`: own and peers' partial signatures, checked and combined.
//! - `submit`: combined signatures into submissions, or waiting for them.
//! - `vc`: the validator client's requests and the combined selections.
//! - one module per duty type, declaring its signing roots, its validity
//!   check and its submission: `attester`, `sync_committee`, `aggregation`
//!   (aggregates and contributions), `proposer`, `exits`, `registrations`.
//! - `types`: the events, actions, requests and answers of the driver.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use phalanx_consensus::{self as qbft, Engine, Parts, RotatingLeader};
use phalanx_consensus::{Signer, Verifier};
use phalanx_eth::{EthSpec, PublicKeyBytes, Slot};

use crate::duty::DutyType;
use crate::dutydb::DutyDb;
pub use crate::error::CoreError;
use crate::error::DropReason;
use crate::scheme::{Bls, SignatureScheme};
use crate::slashing::SlashingDb;
use crate::tracker::{Failure, Tracker};

mod aggregation;
mod attester;
mod cluster;
mod consensus;
mod exits;
mod partials;
mod proposer;
mod registrations;
mod scheduler;
mod submit;
mod sync_committee;
mod types;
mod vc;

pub use aggregation::AggregateSubmission;
pub use proposer::{decode_block, encode_block, BlockSubmission};
pub use types::{
    Action, ApiFailure, AttestationSubmission, Attester, CoreConfig, Defects, Event, Submission,
    ValidatorKeys, VcAttestation, VcRequest, VcResponse, VcSigned, HOUSEKEEPING_MS, UNBOUND_EPOCHS,
    UNREACHABLE_LEADER_TIMEOUT,
};

use cluster::Cluster;
use consensus::{Consensus, DutyTimeout};
use partials::Partials;
use proposer::Proposals;
use registrations::Registrations;
use scheduler::Scheduler;
use submit::Waiting;
use vc::Vc;

/// The duty pipeline of one node.
pub struct Core<E: EthSpec, S: SignatureScheme = Bls> {
    cluster: Cluster<S>,
    scheduler: Scheduler<S>,
    consensus: Consensus,
    dutydb: DutyDb<E>,
    slashing: SlashingDb,
    partials: Partials<S>,
    waiting: Waiting<S>,
    vc: Vc<S>,
    proposals: Proposals<S>,
    registrations: Registrations,
    tracker: Tracker,
    _spec: PhantomData<E>,
}

impl<E: EthSpec, S: SignatureScheme> Core<E, S> {
    /// A core for `config`, signing consensus messages with `signer`,
    /// checking peers' with `verifier`, and protecting the group keys with
    /// `slashing`.
    pub fn new(
        config: CoreConfig<S>,
        signer: Box<dyn Signer + Send>,
        verifier: Box<dyn Verifier + Send>,
        slashing: SlashingDb,
    ) -> Result<Core<E, S>, CoreError> {
        let lock_hash = config.lock_hash;
        let (cluster, committee, rest) = Cluster::new(config)?;
        let engine = Engine::new(
            cluster.me,
            committee,
            crate::qbft::engine_config(cluster.network.max_blobs_per_block_ever()),
            Parts {
                lock_hash,
                signer,
                verifier,
                leader: Box::new(RotatingLeader),
                timeout: Box::new(DutyTimeout {
                    slot: cluster.network.slot_duration(),
                }),
            },
        )?;
        let registrations: BTreeMap<PublicKeyBytes, _> = cluster
            .validators
            .iter()
            .filter_map(|v| v.registration.clone())
            .map(|r| (r.message.pubkey, r))
            .collect();
        // The threshold combinations are made at (one short with the
        // defect); the tracker keeps the real one.
        let combine_at = rest.threshold - usize::from(cluster.defects.combines_below_threshold());
        let operators = committee.size();
        Ok(Core {
            scheduler: Scheduler::new(),
            consensus: Consensus::new(engine, committee),
            dutydb: DutyDb::new(),
            slashing,
            partials: Partials::new(combine_at, rest.seed),
            waiting: Waiting::new(),
            vc: Vc::new(),
            proposals: Proposals::new(rest.graffiti),
            registrations: Registrations::new(rest.builder_api, registrations),
            tracker: Tracker::new(operators, rest.threshold),
            cluster,
            _spec: PhantomData,
        })
    }

    /// The start of `slot` in Unix milliseconds.
    pub fn slot_start_ms(&self, slot: Slot) -> u64 {
        self.cluster.slot_start_ms(slot)
    }

    /// The slot at `now_ms` (slot 0 before genesis).
    pub fn slot_at(&self, now_ms: u64) -> Slot {
        self.cluster.slot_at(now_ms)
    }

    /// The cluster's validators whose indices are known.
    pub fn known_indices(&self) -> usize {
        self.scheduler.indices.len()
    }

    /// The group keys of the cluster's validators.
    pub fn group_keys(&self) -> &[PublicKeyBytes] {
        &self.cluster.group_bytes
    }

    /// Exports the slashing-protection history (EIP-3076).
    pub fn export_slashing(&self) -> phalanx_eth::interchange::Interchange {
        self.slashing.export()
    }

    /// When the driver must next send [`Event::Tick`], in Unix
    /// milliseconds: the next moment a duty starts (from the timing module)
    /// or a waiting request's deadline falls, and at most
    /// [`HOUSEKEEPING_MS`] after `now_ms` for the rest (retries, expiry,
    /// outcomes). Everything else is driven by events and QBFT's own
    /// timers.
    pub fn next_tick_ms(&self, now_ms: u64) -> u64 {
        let slot = self.cluster.slot_at(now_ms);
        let duty_starts = [slot, Slot(slot.0 + 1)].into_iter().flat_map(|slot| {
            DutyType::ALL
                .into_iter()
                .map(move |kind| self.cluster.window(slot, kind).0)
        });
        duty_starts
            .chain(self.vc.deadlines())
            .filter(|&at| at > now_ms)
            .fold(now_ms + HOUSEKEEPING_MS, u64::min)
    }

    /// Handles one event at `now_ms` (Unix milliseconds).
    pub fn handle(&mut self, now_ms: u64, event: Event<E>) -> Vec<Action<E>> {
        let mut actions = Vec::new();
        match event {
            Event::Tick => self.tick(now_ms, &mut actions),
            Event::Unreachable(operators) => {
                self.consensus.set_unreachable(operators, self.cluster.me)
            }
            Event::Indices(found) => self.scheduler.on_indices(found, &self.cluster.by_group),
            Event::IndicesFailed(_) => {}
            Event::Duties {
                epoch,
                attester,
                sync,
            } => self.on_duties(epoch, attester, sync),
            Event::Proposers { epoch, result } => match result {
                Ok(duties) => self.on_proposers(now_ms, epoch, duties, &mut actions),
                Err(_) => self.scheduler.proposers_failed(epoch),
            },
            Event::Block { duty, result } => self.on_block(duty, result.map(|b| *b), &mut actions),
            Event::Reorg { epoch } => self.scheduler.on_reorg(epoch),
            Event::DutiesFailed { epoch, .. } => self.scheduler.duties_failed(epoch),
            Event::AttestationData { duty, result } => {
                self.on_attestation_data(duty, result, &mut actions)
            }
            Event::Aggregates { duty, result } => self.on_aggregates(duty, result, &mut actions),
            Event::Contributions { duty, result } => {
                self.on_contributions(duty, result, &mut actions)
            }
            Event::Consensus { from, message } => {
                self.on_consensus_message(from, message, &mut actions)
            }
            Event::Timer { duty, round } => {
                let event = qbft::Event::Timeout {
                    instance: duty,
                    round,
                };
                self.run_consensus(event, &mut actions);
            }
            Event::Partials { from, partials } => {
                self.on_peer_partials(from, partials, &mut actions)
            }
            Event::Undecodable { from, what } => actions.push(Action::Dropped {
                from,
                reason: DropReason::Undecodable(what),
            }),
            Event::Vc { id, request } => self.on_vc(now_ms, id, request, &mut actions),
            Event::Submitted {
                duty,
                validators,
                result,
            } => match result {
                Ok(()) => {
                    for validator in validators {
                        self.tracker.submitted(&duty, validator);
                    }
                }
                Err(error) => self.tracker.failed(&duty, Failure::Rejected(error)),
            },
        }
        actions
    }
}
