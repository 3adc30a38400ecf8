//! Each node's processor: handling an event keeps the node busy for the
//! virtual time its work takes ([`crate::sim::cost`]); events that reach a
//! busy node wait in its queue, in arrival order, until it is free, and
//! what handling an event makes the node do happens when the handling
//! ends. A flood therefore shows as delay, as on a real machine.
//!
//! Work that ends within the millisecond it started in changes nothing:
//! the node takes further events of that millisecond at once and acts at
//! once, so a lightly loaded node behaves as it would without the model.

use std::collections::VecDeque;

use phalanx_eth::EthSpec;
use phalanx_node::core::{Action, Event};
use phalanx_p2p::encoded_len;

use crate::sim::cost::{self, CostModel};
use crate::sim::signing::SimScheme;

use super::queue::Happening;
use super::World;

const NANOS_PER_MS: u64 = 1_000_000;

/// A node's processor.
pub(super) struct Cpu<E: EthSpec> {
    /// Virtual nanoseconds (since the Unix epoch) until which it is busy.
    busy_until: u64,
    /// Events waiting, with the millisecond each arrived at.
    backlog: VecDeque<(u64, Event<E>)>,
    /// When the node next looks at its backlog, if it is waiting.
    wake_at: Option<u64>,
}

impl<E: EthSpec> Default for Cpu<E> {
    fn default() -> Self {
        Cpu {
            busy_until: 0,
            backlog: VecDeque::new(),
            wake_at: None,
        }
    }
}

impl<E: EthSpec> Cpu<E> {
    /// Forgets everything: the process stopped.
    pub(super) fn reset(&mut self) {
        self.busy_until = 0;
        self.backlog.clear();
        self.wake_at = None;
    }

    /// Whether work runs past the millisecond `now`.
    fn busy(&self, now: u64) -> bool {
        self.busy_until >= (now + 1) * NANOS_PER_MS
    }
}

impl<E: EthSpec, S: SimScheme> World<E, S> {
    /// Hands an event to a running node: at once if it is free, else into
    /// its queue.
    pub(super) fn deliver(&mut self, node: usize, event: Event<E>) {
        if self.nodes[node].core.is_none() {
            return;
        }
        let now = self.now;
        let cpu = &mut self.nodes[node].cpu;
        if cpu.busy(now) || !cpu.backlog.is_empty() {
            cpu.backlog.push_back((now, event));
            let waiting = cpu.backlog.len() as u64;
            let stats = self.observed.cpu.entry(node).or_default();
            stats.max_backlog = stats.max_backlog.max(waiting);
            self.wake_later(node);
            return;
        }
        self.handle_now(node, event);
    }

    /// The node looks at its queue again.
    pub(super) fn wake(&mut self, node: usize, starts: u64) {
        let sim = &mut self.nodes[node];
        if sim.starts != starts || sim.core.is_none() {
            return;
        }
        sim.cpu.wake_at = None;
        while !self.nodes[node].cpu.busy(self.now) {
            let Some((arrived, event)) = self.nodes[node].cpu.backlog.pop_front() else {
                return;
            };
            let stats = self.observed.cpu.entry(node).or_default();
            stats.waited += 1;
            stats.max_wait_ms = stats.max_wait_ms.max(self.now - arrived);
            self.handle_now(node, event);
        }
        if !self.nodes[node].cpu.backlog.is_empty() {
            self.wake_later(node);
        }
    }

    fn wake_later(&mut self, node: usize) {
        let sim = &mut self.nodes[node];
        if sim.cpu.wake_at.is_some() {
            return;
        }
        let at = (sim.cpu.busy_until / NANOS_PER_MS).max(self.now + 1);
        sim.cpu.wake_at = Some(at);
        let starts = sim.starts;
        self.schedule(at, Happening::Wake { node, starts });
    }

    /// Hands an event to the node's core, counts the work that took, and
    /// carries out its actions when that work is done.
    fn handle_now(&mut self, node: usize, event: Event<E>) {
        let mut received = cost::Work::default();
        match &event {
            Event::Consensus { message, .. } => {
                received.messages = 1;
                received.bytes = encoded_len(message);
            }
            Event::Partials { partials, .. } => {
                received.messages = 1;
                received.bytes = encoded_len(partials);
            }
            _ => {}
        }
        let now = self.node_now(node);
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        cost::take();
        let actions = core.handle(now, event);
        let next_tick = core.next_tick_ms(now);
        let mut work = cost::take();
        work.add(&received);
        let nanos = CostModel::BENCHMARKED.nanos(&work, self.scenario.node_speed);
        let sim = &mut self.nodes[node];
        let start = sim.cpu.busy_until.max(self.now * NANOS_PER_MS);
        sim.cpu.busy_until = start + nanos;
        let done = sim.cpu.busy_until / NANOS_PER_MS;
        let starts = sim.starts;
        let stats = self.observed.cpu.entry(node).or_default();
        stats.busy_us += nanos / 1_000;
        stats.work.add(&work);
        if done <= self.now {
            for action in actions {
                self.act(node, action);
            }
        } else if !actions.is_empty() {
            self.schedule(
                done,
                Happening::Actions {
                    node,
                    starts,
                    actions,
                },
            );
        }
        // The core's clock may be skewed; the queue runs on true time.
        let at = (next_tick as i64 - self.clock_skew(node)).max(self.now as i64 + 1) as u64;
        self.schedule_tick(node, at);
    }

    /// Carries out what handling an event made the node do, now that the
    /// handling is done (unless the node stopped meanwhile).
    pub(super) fn act_later(&mut self, node: usize, starts: u64, actions: Vec<Action<E>>) {
        let sim = &self.nodes[node];
        if sim.starts != starts || sim.core.is_none() {
            return;
        }
        for action in actions {
            self.act(node, action);
        }
    }
}
