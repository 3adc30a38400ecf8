//! What goes to the other operators: consensus messages (to all, or to
//! one) and this node's partial signatures; and the consensus round
//! timers, one per duty, whose firing is the core's round timeout.

use std::time::Duration;

use phalanx_consensus::{OperatorIndex, Round, Wire};
use phalanx_eth::EthSpec;

use super::Driver;
use crate::core::Event;
use crate::duty::Duty;
use crate::parsigex::{PartialBatch, PartialMessage};
use crate::runtime::metrics::TypeLabels;
use crate::value::DutyValue;

impl<E: EthSpec> Driver<E> {
    /// Sends a consensus message to every operator.
    pub(super) fn broadcast_consensus(&self, message: Wire<Duty, DutyValue>) {
        let (net, protocol) = (self.net.clone(), self.protocols.consensus);
        tokio::spawn(async move {
            if let Ok(results) = net.broadcast_message(protocol, &message).await {
                for (peer, result) in results {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "consensus message not delivered");
                    }
                }
            }
        });
    }

    /// Sends a consensus message to operator `to`.
    pub(super) fn send_consensus(&self, to: OperatorIndex, message: Wire<Duty, DutyValue>) {
        let Some(peer) = self.peers.get(to.as_usize()).copied() else {
            return;
        };
        let (net, protocol) = (self.net.clone(), self.protocols.consensus);
        tokio::spawn(async move {
            if let Err(e) = net.send_message(peer, protocol, &message).await {
                tracing::debug!(%peer, error = %e, "consensus message not delivered");
            }
        });
    }

    /// Sends this node's partial signatures to every operator.
    pub(super) fn send_partials(&self, partials: Vec<PartialMessage>) {
        let (net, protocol) = (self.net.clone(), self.protocols.partials);
        tokio::spawn(async move {
            match net
                .broadcast_message(protocol, &PartialBatch(partials))
                .await
            {
                Ok(results) => {
                    for (peer, result) in results {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "partial signatures not delivered");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "partial signatures not sent"),
            }
        });
    }

    /// Fires the duty's round timeout after `after`, replacing its timer.
    pub(super) fn set_timer(&mut self, duty: Duty, round: Round, after: Duration) {
        let events = self.events.clone();
        let timeouts = self
            .metrics
            .round_timeouts
            .get_or_create(&TypeLabels {
                duty: duty.kind.name().into(),
            })
            .clone();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // Not stopped or replaced by then: the round timed out.
            tracing::debug!(%duty, round = round.0, ?after, "consensus round timed out");
            timeouts.inc();
            let _ = events.send(Event::Timer { duty, round });
        });
        if let Some(old) = self.timers.insert(duty, handle) {
            old.abort();
        }
    }

    /// The duty needs no timer any more.
    pub(super) fn stop_timer(&mut self, duty: Duty) {
        if let Some(old) = self.timers.remove(&duty) {
            old.abort();
        }
    }
}
