//! The operators: each one's core (while it runs), disk and keys, how an
//! event reaches its core, and how the core's actions are carried out
//! against the simulated network, beacon node and validator client.

use std::collections::BTreeMap;
use std::time::Duration;

use phalanx_consensus::OperatorIndex;
use phalanx_eth::api::{AttesterDuty, ProposerDuty, SyncDuty};
use phalanx_eth::attestation::AttestationData;
use phalanx_eth::pool::{AttestationPool, ContributionPool};
use phalanx_eth::{
    CommitteeIndex, EthSpec, ExecutionAddress, PublicKeyBytes, Root, SignatureBytes, Slot,
    ValidatorIndex,
};
use phalanx_node::core::{Action, Core, CoreConfig, Event, Submission};
use phalanx_node::duty::Duty;
use phalanx_node::slashing::{MemoryDisk, SlashingDb};
use sha2::{Digest, Sha256};

use crate::sim::scenario::Fault;
use crate::sim::signing::SimScheme;

use super::cpu::Cpu;
use super::observed::Broadcast;
use super::queue::Happening;
use super::vc::VcWaiting;
use super::{World, GENESIS_MS, LOCK_HASH};

/// How long a simulated beacon node takes to answer, at least and at most.
const BN_DELAY_MS: (u64, u64) = (2, 20);

/// How long a node takes to notice that a peer went down or came back
/// (`phalanx run` polls its connections every 500 ms).
const REACHABILITY_DELAY_MS: u64 = 500;

/// One operator: its core (while it runs), its disk, its validator
/// client's keys.
pub(super) struct SimNode<E: EthSpec, S: SimScheme> {
    pub(super) core: Option<Core<E, S>>,
    pub(super) disk: MemoryDisk,
    /// Its node key's 32 bytes (consensus signatures).
    pub(super) node_secret: [u8; 32],
    /// This operator's secret share of each validator.
    pub(super) shares: Vec<S::SecretKey>,
    pub(super) tick_generation: u64,
    pub(super) tick_at: Option<u64>,
    pub(super) timers: BTreeMap<Duty, u64>,
    pub(super) timer_generation: u64,
    pub(super) next_request: u64,
    pub(super) waiting: BTreeMap<u64, VcWaiting>,
    /// Times it was started, for the core's seed.
    pub(super) starts: u64,
    /// The validator client's attestation data, by slot and committee.
    pub(super) attested: BTreeMap<(Slot, CommitteeIndex), AttestationData>,
    /// The validator client's elected aggregators, by slot.
    pub(super) aggregators: BTreeMap<Slot, Vec<(AttesterDuty, SignatureBytes)>>,
    /// Its elected sync aggregators, by slot: member, subcommittee, proof.
    pub(super) sync_aggregators: BTreeMap<Slot, Vec<(usize, u64, SignatureBytes)>>,
    /// Its beacon node's pool of sync messages: by slot, head and
    /// subcommittee, each position's signature.
    pub(super) sync_pool: ContributionPool<S::Signature>,
    /// Its processor: busy until, and the events waiting.
    pub(super) cpu: Cpu<E>,
    /// Its beacon node's pool of the attestations it was sent: by slot,
    /// committee and data root, each member's signature by position.
    pub(super) pool: AttestationPool<S::Signature>,
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    pub(super) fn start_node(&mut self, node: usize) {
        let sim = &mut self.nodes[node];
        sim.starts += 1;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.scenario.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&(node as u64).to_le_bytes());
        seed[16..24].copy_from_slice(&sim.starts.to_le_bytes());
        let slashing = SlashingDb::open_in_memory(&sim.disk, self.genesis_validators_root)
            .unwrap_or_else(|e| unreachable!("a simulated disk opens: {e}"));
        let secrets: Vec<[u8; 32]> = self.nodes.iter().map(|n| n.node_secret).collect();
        let (signer, verifier) = S::consensus_keys(&secrets, node);
        let sim = &mut self.nodes[node];
        let core = Core::new(
            CoreConfig {
                me: OperatorIndex(node as u32),
                lock_hash: LOCK_HASH,
                threshold: self.scenario.threshold(),
                validators: self.validators.clone(),
                network: self.network.clone(),
                genesis_time_ms: GENESIS_MS,
                genesis_validators_root: self.genesis_validators_root,
                seed,
                graffiti: None,
                builder_api: false,
                defects: self.defects,
            },
            signer,
            verifier,
            slashing,
        )
        .unwrap_or_else(|e| unreachable!("the simulated cluster fits together: {e}"));
        sim.core = Some(core);
        sim.timers.clear();
        sim.waiting.clear();
        sim.tick_at = None;
        sim.cpu.reset();
        let now = self.now;
        self.schedule_tick(node, now);
    }

    /// Every running node learns, after the runtime's detection delay,
    /// which operators are down (as `phalanx run` polls its connections).
    pub(super) fn tell_reachability(&mut self) {
        let down: Vec<OperatorIndex> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].core.is_none())
            .map(|n| OperatorIndex(n as u32))
            .collect();
        for node in 0..self.nodes.len() {
            if self.nodes[node].core.is_some() {
                let event = Event::Unreachable(down.clone());
                self.schedule(
                    self.now + REACHABILITY_DELAY_MS,
                    Happening::Core { node, event },
                );
            }
        }
    }

    pub(super) fn act(&mut self, node: usize, action: Action<E>) {
        match action {
            Action::ResolveIndices(keys) => {
                let found: Vec<(PublicKeyBytes, ValidatorIndex)> = keys
                    .into_iter()
                    .filter_map(|key| {
                        let index = *self.index_of.get(&key)?;
                        Some((key, ValidatorIndex(index as u64)))
                    })
                    .collect();
                self.beacon_node_answers(node, Event::Indices(found), |e| Event::IndicesFailed(e));
            }
            Action::ResolveProposers { epoch } => {
                let duties: Vec<ProposerDuty> = (0..E::SLOTS_PER_EPOCH)
                    .map(|i| Slot(epoch.0 * E::SLOTS_PER_EPOCH + i))
                    .filter_map(|slot| {
                        let index = self.chain.proposer(slot)?;
                        Some(ProposerDuty {
                            pubkey: self.chain.pubkey(index)?,
                            validator_index: ValidatorIndex(index),
                            slot,
                        })
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::Proposers {
                        epoch,
                        result: Ok(duties),
                    },
                    move |e| Event::Proposers {
                        epoch,
                        result: Err(e),
                    },
                );
            }
            Action::ResolveDuties { epoch, indices, .. } => {
                let all = self.cluster_attester_duties(epoch);
                let attester: Vec<AttesterDuty> = indices
                    .iter()
                    .filter_map(|i| all.get(&i.0).cloned())
                    .collect();
                let period_slot = Slot(epoch.0 * E::SLOTS_PER_EPOCH);
                let committee = self.chain.sync_committee_at(period_slot);
                let sync: Vec<SyncDuty> = indices
                    .iter()
                    .filter_map(|i| {
                        let positions: Vec<u64> = committee
                            .iter()
                            .enumerate()
                            .filter(|(_, member)| **member == i.0)
                            .map(|(p, _)| p as u64)
                            .collect();
                        (!positions.is_empty()).then(|| SyncDuty {
                            pubkey: self.group_bytes[i.0 as usize],
                            validator_index: *i,
                            validator_sync_committee_indices: positions,
                        })
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::Duties {
                        epoch,
                        attester,
                        sync,
                    },
                    move |error| Event::DutiesFailed { epoch, error },
                );
            }
            Action::FetchAttestationData { duty, committees } => {
                let diverged = self.diverges(node, duty.slot);
                let data: Vec<_> = committees
                    .iter()
                    .map(|c| {
                        let mut data = self.chain.attestation_data(duty.slot, c.0);
                        if diverged {
                            // Votes for a sibling block of the same slot.
                            data.beacon_block_root = Root::from(<[u8; 32]>::from(Sha256::digest(
                                data.beacon_block_root,
                            )));
                        }
                        (*c, data)
                    })
                    .collect();
                self.beacon_node_answers(
                    node,
                    Event::AttestationData {
                        duty,
                        result: Ok(data),
                    },
                    move |e| Event::AttestationData {
                        duty,
                        result: Err(e),
                    },
                );
            }
            Action::FetchAggregates { duty, requests } => {
                let result = requests
                    .iter()
                    .map(|(committee, root)| {
                        self.aggregate_of(node, duty.slot, *committee, *root)
                            .map(|a| (*committee, a))
                    })
                    .collect::<Result<Vec<_>, String>>();
                self.beacon_node_answers(node, Event::Aggregates { duty, result }, move |e| {
                    Event::Aggregates {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::FetchContributions {
                duty,
                block_root,
                subcommittees,
            } => {
                let head = block_root.unwrap_or_else(|| self.chain.block_root(duty.slot));
                let result = subcommittees
                    .iter()
                    .map(|k| self.contribution_of(node, duty.slot, head, *k))
                    .collect::<Result<Vec<_>, String>>();
                self.beacon_node_answers(node, Event::Contributions { duty, result }, move |e| {
                    Event::Contributions {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::FetchBlock {
                duty,
                randao_reveal,
                graffiti,
                ..
            } => {
                let result = self
                    .chain
                    .produce_block(
                        duty.slot,
                        randao_reveal,
                        graffiti.unwrap_or_default(),
                        ExecutionAddress::ZERO,
                    )
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                self.beacon_node_answers(node, Event::Block { duty, result }, move |e| {
                    Event::Block {
                        duty,
                        result: Err(e),
                    }
                });
            }
            Action::ConsensusBroadcast(message) => {
                self.note_proposal(&message);
                for to in 0..self.nodes.len() {
                    if to != node {
                        self.send_consensus(node, to, message.clone());
                    }
                }
            }
            Action::ConsensusSend { to, message } => {
                self.note_proposal(&message);
                self.send_consensus(node, to.as_usize(), message)
            }
            Action::SetTimer { duty, round, after } => {
                let sim = &mut self.nodes[node];
                sim.timer_generation += 1;
                let generation = sim.timer_generation;
                sim.timers.insert(duty, generation);
                let at = self.now + millis(after);
                self.schedule(
                    at,
                    Happening::Timer {
                        node,
                        duty,
                        round,
                        generation,
                    },
                );
            }
            Action::StopTimer(duty) => {
                self.nodes[node].timers.remove(&duty);
            }
            Action::SendPartials(partials) => self.send_partials(node, partials),
            Action::Submit {
                duty,
                validator,
                submission,
            } => {
                if let Submission::Attestation(_, attestation) = &submission {
                    self.pool_attestation(node, attestation);
                }
                if let Submission::SyncMessage(message) = &submission {
                    self.pool_sync_message(node, message);
                }
                let Some(check) = self.check(validator, &submission) else {
                    self.observed.unchecked += 1;
                    return;
                };
                self.note(&[
                    b"submit",
                    &(node as u64).to_le_bytes(),
                    check.signing_root.as_slice(),
                    &[u8::from(check.valid)],
                ]);
                self.observed.broadcasts.push(Broadcast {
                    at_ms: self.since_genesis(self.now),
                    node,
                    duty,
                    validator,
                    check,
                });
                self.beacon_node_answers(
                    node,
                    Event::Submitted {
                        duty,
                        validators: vec![validator],
                        result: Ok(()),
                    },
                    move |e| Event::Submitted {
                        duty,
                        validators: vec![validator],
                        result: Err(e),
                    },
                );
            }
            Action::Reply { id, result } => self.vc_reply(node, id, result),
            Action::Decided {
                duty,
                round,
                value_hash,
            } => {
                self.note(&[b"decided", &(node as u64).to_le_bytes(), &value_hash]);
                self.observed
                    .decisions
                    .entry(duty)
                    .or_default()
                    .insert(node, (value_hash, round));
            }
            Action::Outcome { duty, outcome } => {
                self.observed
                    .outcomes
                    .entry(node)
                    .or_default()
                    .push((duty, outcome));
            }
            Action::Dropped { from, reason } => {
                let what = reason.what();
                let reason = reason.label();
                *self
                    .observed
                    .dropped
                    .entry((node, from.as_usize(), format!("{what}: {reason}")))
                    .or_default() += 1;
            }
            Action::Refused { duty, reason, .. } => {
                self.observed.refused.push((node, duty, reason))
            }
            Action::Registered(_) => {}
        }
    }

    /// Schedules a beacon node's answer: `ok` after its delay, or the
    /// failure `err` makes if it is down.
    fn beacon_node_answers(
        &mut self,
        node: usize,
        ok: Event<E>,
        err: impl FnOnce(String) -> Event<E>,
    ) {
        let mut delay = self.uniform(BN_DELAY_MS);
        let mut down = false;
        for fault in &self.scenario.faults {
            match *fault {
                Fault::SlowBeaconNode {
                    node: n,
                    delay_ms,
                    from_slot,
                    until_slot,
                } if n == node && self.during(from_slot, until_slot) => delay += delay_ms,
                Fault::BeaconNodeDown {
                    node: n,
                    from_slot,
                    until_slot,
                } if n == node && self.during(from_slot, until_slot) => down = true,
                _ => {}
            }
        }
        let event = if down {
            err("the beacon node is down (simulated)".into())
        } else {
            ok
        };
        let at = self.now + delay;
        self.schedule(at, Happening::Core { node, event });
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
