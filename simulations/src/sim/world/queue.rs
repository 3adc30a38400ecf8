//! Virtual time: what can happen, the one queue ordered by time and then by
//! the order of scheduling, the trace every event is folded into, the faults
//! by schedule and the dispatch of each event.

use std::cmp::Reverse;

use phalanx_eth::{EthSpec, Slot};
use phalanx_node::core::Event;
use phalanx_node::duty::Duty;
use phalanx_node::slashing::MemoryDisk;
use sha2::Digest;

use crate::sim::scenario::{DelayDistribution, Fault};
use crate::sim::signing::SimScheme;

use super::{World, GENESIS_MS};

/// Something that happens at a virtual instant.
pub(super) enum Happening<E: EthSpec> {
    /// The node's core wants a tick (only the latest one counts).
    Tick { node: usize, generation: u64 },
    /// An event for a node's core.
    Core { node: usize, event: Event<E> },
    /// A consensus timer (only the latest per duty counts).
    Timer {
        node: usize,
        duty: Duty,
        round: phalanx_consensus::Round,
        generation: u64,
    },
    /// The validator client of a node does its work of a slot's moment.
    Vc {
        node: usize,
        slot: Slot,
        moment: Moment,
    },
    /// A busy node looks at its queue again (if it was not restarted
    /// meanwhile: `starts` is its count of starts).
    Wake { node: usize, starts: u64 },
    /// What handling an event made a node do, once the handling is done.
    Actions {
        node: usize,
        starts: u64,
        actions: Vec<phalanx_node::core::Action<E>>,
    },
    /// A flooding node's burst (`fault` is its index in the faults).
    Flood { fault: usize, burst: u64 },
    /// A scheduled fault starts or ends.
    Fault(FaultEdge),
}

/// When in a slot a validator client acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moment {
    /// The slot's start: proposals.
    Start,
    /// One third: attestation data and sync-committee messages.
    Third,
    /// Later in the slot: a double-submitting client's second request.
    Again,
    /// Two thirds: aggregates.
    TwoThirds,
}

/// A fault's start or end.
#[derive(Clone, Copy, Debug)]
pub(super) enum FaultEdge {
    Crash { node: usize, lose_disk: bool },
    Restart { node: usize },
}

/// One queue entry: ordered by time, then by the order it was scheduled.
pub(super) struct Scheduled<E: EthSpec> {
    pub(super) at: u64,
    seq: u64,
    pub(super) what: Happening<E>,
}

impl<E: EthSpec> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E: EthSpec> Eq for Scheduled<E> {}

impl<E: EthSpec> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E: EthSpec> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    pub(super) fn schedule(&mut self, at: u64, what: Happening<E>) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            what,
        }));
    }

    pub(super) fn note(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.to_le_bytes());
        for part in parts {
            self.trace.update((part.len() as u64).to_le_bytes());
            self.trace.update(part);
        }
    }

    pub(super) fn uniform(&mut self, range: (u64, u64)) -> u64 {
        DelayDistribution::Uniform.sample(range, &mut self.rng)
    }

    pub(super) fn clock_skew(&self, node: usize) -> i64 {
        self.scenario
            .faults
            .iter()
            .map(|f| match f {
                Fault::ClockSkew { node: n, skew_ms } if *n == node => *skew_ms,
                _ => 0,
            })
            .sum()
    }

    /// What node `node` believes the time is.
    pub(super) fn node_now(&self, node: usize) -> u64 {
        self.now.saturating_add_signed(self.clock_skew(node))
    }

    fn slot_of(&self, at: u64) -> Slot {
        Slot(at.saturating_sub(GENESIS_MS) / self.scenario.slot_ms)
    }

    /// Whether `fault` holds at the current time.
    pub(super) fn during(&self, from_slot: u64, until_slot: u64) -> bool {
        let slot = self.slot_of(self.now).0;
        self.now >= GENESIS_MS && (from_slot..until_slot).contains(&slot)
    }

    pub(super) fn schedule_tick(&mut self, node: usize, at: u64) {
        let sim = &mut self.nodes[node];
        if sim.tick_at.is_some_and(|current| current <= at) {
            return;
        }
        sim.tick_generation += 1;
        sim.tick_at = Some(at);
        let generation = sim.tick_generation;
        self.schedule(at, Happening::Tick { node, generation });
    }

    pub(super) fn schedule_faults(&mut self) {
        let floods: Vec<usize> = (0..self.scenario.faults.len())
            .filter(|&i| matches!(self.scenario.faults[i], Fault::ByzantineFlood { .. }))
            .collect();
        for index in floods {
            self.schedule_flood(index, 0);
        }
        for fault in self.scenario.faults.clone() {
            if let Fault::Crash {
                node,
                from_slot,
                until_slot,
                lose_disk,
                offset_ms,
                restart_offset_ms,
            } = fault
            {
                let at = self.slot_start(Slot(from_slot)) + offset_ms;
                self.schedule(at, Happening::Fault(FaultEdge::Crash { node, lose_disk }));
                if let Some(until) = until_slot {
                    let at = self.slot_start(Slot(until)) + restart_offset_ms;
                    self.schedule(at, Happening::Fault(FaultEdge::Restart { node }));
                }
            }
        }
    }

    pub(super) fn process(&mut self, what: Happening<E>) {
        match what {
            Happening::Tick { node, generation } => {
                if self.nodes[node].tick_generation != generation {
                    return;
                }
                self.nodes[node].tick_at = None;
                self.note(&[b"tick", &(node as u64).to_le_bytes()]);
                self.deliver(node, Event::Tick);
            }
            Happening::Core { node, event } => self.deliver(node, event),
            Happening::Timer {
                node,
                duty,
                round,
                generation,
            } => {
                if self.nodes[node].timers.get(&duty) != Some(&generation) {
                    return;
                }
                self.nodes[node].timers.remove(&duty);
                self.deliver(node, Event::Timer { duty, round });
            }
            Happening::Vc { node, slot, moment } => self.validator_client(node, slot, moment),
            Happening::Wake { node, starts } => self.wake(node, starts),
            Happening::Actions {
                node,
                starts,
                actions,
            } => self.act_later(node, starts, actions),
            Happening::Flood { fault, burst } => self.flood(fault, burst),
            Happening::Fault(FaultEdge::Crash { node, lose_disk }) => {
                self.note(&[b"crash", &(node as u64).to_le_bytes()]);
                let sim = &mut self.nodes[node];
                sim.core = None;
                sim.timers.clear();
                sim.waiting.clear();
                sim.tick_at = None;
                sim.cpu.reset();
                if lose_disk {
                    sim.disk = MemoryDisk::new();
                }
                self.tell_reachability();
            }
            Happening::Fault(FaultEdge::Restart { node }) => {
                self.note(&[b"restart", &(node as u64).to_le_bytes()]);
                self.start_node(node);
                self.tell_reachability();
            }
        }
    }
}
