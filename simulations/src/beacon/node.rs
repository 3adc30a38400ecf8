//! The running beacon node behind the HTTP edge: the chain, the pools and
//! the fee recipients; how a batch of submissions is checked, recorded and
//! pooled; and the ticker that announces each new head to event streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::Event as SseEvent;
use axum::response::IntoResponse;
use axum::Router;
use phalanx_eth::api::{BlockEvent, HeadEvent};
use phalanx_eth::{EthSpec, ExecutionAddress, Slot};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::chain::Chain;
use super::checks::Checked;
use super::http::{router, ApiError, ApiResult, Failure};
use super::pools::Pools;
use super::{BeaconMockConfig, Shared};
use crate::cluster::unix_ms;

/// The server side: the chain, the pools and what the handle shares.
pub(super) struct Node<E: EthSpec> {
    pub(super) chain: Chain<E>,
    pub(super) shared: Arc<Shared>,
    pub(super) pools: Mutex<Pools>,
    pub(super) fee_recipients: Mutex<HashMap<u64, ExecutionAddress>>,
    /// The slot of each new head, at its start.
    pub(super) events: broadcast::Sender<Slot>,
}

impl<E: EthSpec> Node<E> {
    pub(super) fn start(
        config: BeaconMockConfig,
        shared: Arc<Shared>,
        stop: watch::Receiver<bool>,
    ) -> Router {
        let (events, _) = broadcast::channel(64);
        let node = Arc::new(Node {
            chain: Chain::<E>::new(&config),
            shared,
            pools: Mutex::new(Pools::default()),
            fee_recipients: Mutex::new(HashMap::new()),
            events,
        });
        tokio::spawn(tick(node.clone(), stop));
        router(node)
    }

    /// Milliseconds since genesis (0 before it).
    pub(super) fn now_ms(&self) -> u64 {
        unix_ms().saturating_sub(self.chain.genesis_time.saturating_mul(1000))
    }

    pub(super) fn current_slot(&self) -> Slot {
        self.chain.slot_at(self.now_ms())
    }

    /// Checks each item with `check`, records it, applies what accepted ones
    /// add to the pools, and answers: 200 if all were accepted, otherwise
    /// 400 naming each refusal (just the message for a single object).
    pub(super) fn process(
        &self,
        items: Vec<Value>,
        single: bool,
        now_ms: u64,
        check: impl Fn(&Value) -> Result<Checked, String>,
    ) -> ApiResult {
        let total = items.len();
        let mut failures = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match check(&item) {
                Err(reason) => {
                    tracing::info!(index, %reason, "submission does not decode");
                    failures.push(Failure {
                        index,
                        message: reason,
                    });
                }
                Ok(mut checked) => {
                    match checked.error() {
                        Some(error) => {
                            tracing::info!(kind = ?checked.kind, slot = checked.slot.0, validator = checked.validator_index, %error, "submission refused");
                            failures.push(Failure {
                                index,
                                message: error,
                            });
                        }
                        None => {
                            tracing::debug!(kind = ?checked.kind, slot = checked.slot.0, validator = checked.validator_index, "submission accepted");
                            if let Some(effect) = checked.effect.take() {
                                self.apply(effect);
                            }
                        }
                    }
                    self.shared.record(checked.into_submission(item, now_ms));
                }
            }
        }
        match failures.len() {
            0 => Ok(StatusCode::OK.into_response()),
            _ if single => Err(ApiError::BadRequest(failures.remove(0).message)),
            refused => Err(ApiError::Refused {
                message: format!("{refused} of {total} submissions were refused"),
                failures,
            }),
        }
    }

    /// The `block` then `head` event of a new slot, as the topics ask.
    pub(super) fn slot_events(&self, slot: Slot, head: bool, block: bool) -> Vec<SseEvent> {
        let chain = &self.chain;
        let root = chain.block_root(slot);
        let mut events = Vec::new();
        if block {
            let event = BlockEvent {
                slot,
                block: root,
                execution_optimistic: false,
            };
            if let Ok(text) = serde_json::to_string(&event) {
                events.push(SseEvent::default().event("block").data(text));
            }
        }
        if head {
            let epoch = chain.epoch(slot);
            let event = HeadEvent {
                slot,
                block: root,
                state: chain.state_root(slot),
                epoch_transition: slot.0.is_multiple_of(E::SLOTS_PER_EPOCH),
                previous_duty_dependent_root: Some(chain.attester_dependent_root(epoch)),
                current_duty_dependent_root: Some(chain.proposer_dependent_root(epoch)),
                execution_optimistic: false,
            };
            if let Ok(text) = serde_json::to_string(&event) {
                events.push(SseEvent::default().event("head").data(text));
            }
        }
        events
    }
}

/// Announces each slot start to the event streams until stopped.
async fn tick<E: EthSpec>(node: Arc<Node<E>>, mut stop: watch::Receiver<bool>) {
    let genesis_ms = node.chain.genesis_time.saturating_mul(1000);
    let slot_ms = node.chain.slot_ms();
    let mut announced = 0u64;
    loop {
        let now = unix_ms();
        let next = if now < genesis_ms {
            0
        } else {
            (now - genesis_ms) / slot_ms + 1
        };
        let wait = Duration::from_millis((genesis_ms + next * slot_ms).saturating_sub(now));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // Slot 0 is genesis: no block arrives then.
        if next > announced {
            announced = next;
            let _ = node.events.send(Slot(next));
        }
    }
}
