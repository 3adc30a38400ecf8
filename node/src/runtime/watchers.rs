//! The tasks that turn the outside world into the core's events: peers'
//! consensus messages and partial signatures, the beacon node's
//! reorganisations that may move duties, and which operators this node
//! cannot reach.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use phalanx_consensus::OperatorIndex;
use phalanx_eth::api::Event as BnEvent;
use phalanx_eth::client::BeaconNodeClient;
use phalanx_eth::{Epoch, EthSpec, Root};
use phalanx_p2p::{CodecError, Inbound, Network, PeerId, QueueSlot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::metrics::PeerLabels;
use crate::core::Event;
use crate::parsigex::PartialBatch;
use crate::qbft::decode_consensus;

/// A peer's message as the core's event, with the message's place in its
/// sender's share of the node's queue: the runtime drops the slot once
/// the core has handled the event, so a peer whose messages wait anywhere
/// in the node (decoded, in this channel or in p2p's) is refused more.
pub(super) type PeerEvent<E> = (Event<E>, QueueSlot);

/// Where peers' messages go.
#[derive(Clone)]
pub(super) struct Inboxes<E: EthSpec> {
    /// The core's events from peers (bounded).
    pub(super) events: mpsc::Sender<PeerEvent<E>>,
    /// Operators by peer id.
    pub(super) index_of: Arc<HashMap<PeerId, OperatorIndex>>,
}

impl<E: EthSpec> Inboxes<E> {
    /// Consensus messages from operators become events; others' are ignored.
    /// Values are read in place, in their frames (see [`decode_consensus`]).
    pub(super) fn watch_consensus(self, rx: mpsc::Receiver<Inbound>) -> JoinHandle<()> {
        self.watch(
            rx,
            "consensus",
            |inbound| decode_consensus(std::mem::take(&mut inbound.bytes), inbound.limit()),
            |from, message| Event::Consensus { from, message },
        )
    }

    /// Partial signatures from operators become events, counted by sender.
    pub(super) fn watch_partials(
        self,
        rx: mpsc::Receiver<Inbound>,
        received: Family<PeerLabels, Counter>,
    ) -> JoinHandle<()> {
        self.watch(
            rx,
            "partial",
            |inbound| inbound.decode(),
            move |from, PartialBatch(partials)| {
                received
                    .get_or_create(&PeerLabels {
                        peer: from.to_string(),
                    })
                    .inc_by(partials.len() as u64);
                Event::Partials { from, partials }
            },
        )
    }

    /// Decodes each operator's message of one protocol into the core's
    /// event, passing on its queue place; one that does not decode becomes
    /// an [`Event::Undecodable`] of `what`, which the core drops as a
    /// fault (counted, penalised, and logged at most once a window).
    fn watch<T: Send + 'static>(
        self,
        mut rx: mpsc::Receiver<Inbound>,
        what: &'static str,
        decode: impl Fn(&mut Inbound) -> Result<T, CodecError> + Send + 'static,
        into_event: impl Fn(OperatorIndex, T) -> Event<E> + Send + 'static,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(mut inbound) = rx.recv().await {
                let Some(&from) = self.index_of.get(&inbound.peer) else {
                    continue;
                };
                let event = match decode(&mut inbound) {
                    Ok(message) => into_event(from, message),
                    Err(e) => {
                        tracing::debug!(peer = from.0, what, error = %e, "a message did not decode");
                        Event::Undecodable { from, what }
                    }
                };
                if self
                    .events
                    .send((event, inbound.into_slot()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    }
}

/// Follows the dependent root of the current epoch's duties in head
/// events: when it changes within an epoch, the duties may have moved.
#[derive(Debug, Default)]
struct DependentRoot {
    known: Option<(Epoch, Root)>,
}

impl DependentRoot {
    /// The epoch whose duties must be resolved again after `event`, if any.
    fn moved(&mut self, event: &BnEvent, slots_per_epoch: u64) -> Option<Epoch> {
        match event {
            BnEvent::ChainReorg(reorg) => Some(reorg.epoch),
            BnEvent::Head(head) => {
                let epoch = head.slot.epoch(slots_per_epoch);
                let changed = match (head.current_duty_dependent_root, self.known) {
                    (Some(root), Some((known_epoch, known))) => {
                        known_epoch == epoch && known != root
                    }
                    _ => false,
                };
                if let Some(root) = head.current_duty_dependent_root {
                    self.known = Some((epoch, root));
                }
                changed.then_some(epoch)
            }
            BnEvent::Block(_) => None,
        }
    }
}

/// Reorganisations that may move duties: the epoch is resolved again. The
/// event stream is subscribed again a second after it ends.
pub(super) fn watch_reorgs<E: EthSpec>(
    client: Arc<BeaconNodeClient>,
    events: mpsc::UnboundedSender<Event<E>>,
    slots_per_epoch: u64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut dependent = DependentRoot::default();
        loop {
            match client.events().await {
                Ok(stream) => {
                    tokio::pin!(stream);
                    while let Some(event) = futures::StreamExt::next(&mut stream).await {
                        let epoch = match event {
                            Ok(event) => {
                                if let BnEvent::ChainReorg(reorg) = &event {
                                    tracing::info!(slot = %reorg.slot, depth = reorg.depth, "the beacon node's chain reorganised; resolving duties again");
                                }
                                dependent.moved(&event, slots_per_epoch)
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "beacon node event stream");
                                None
                            }
                        };
                        if let Some(epoch) = epoch {
                            let _ = events.send(Event::Reorg { epoch });
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "subscribing to the beacon node's events"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// The operators other than `me` that are not among the verified peers
/// (`operators` is in lock order).
fn unreachable_operators(
    operators: &[PeerId],
    verified: &HashSet<PeerId>,
    me: OperatorIndex,
) -> Vec<OperatorIndex> {
    operators
        .iter()
        .enumerate()
        .map(|(i, peer)| (OperatorIndex(i as u32), peer))
        .filter(|&(i, peer)| i != me && !verified.contains(peer))
        .map(|(i, _)| i)
        .collect()
}

/// Which operators this node cannot reach, told to the core when it
/// changes: the core cuts short a consensus round such an operator leads.
pub(super) fn watch_reachability<E: EthSpec>(
    net: Arc<Network>,
    events: mpsc::UnboundedSender<Event<E>>,
    operators: Vec<PeerId>,
    me: OperatorIndex,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut known: Option<Vec<OperatorIndex>> = None;
        loop {
            let verified: HashSet<PeerId> = net.verified_peers().into_iter().collect();
            let unreachable = unreachable_operators(&operators, &verified, me);
            if known.as_ref() != Some(&unreachable) {
                if !unreachable.is_empty() {
                    tracing::info!(operators = ?unreachable, "operators unreachable: rounds they lead are cut short");
                }
                let _ = events.send(Event::Unreachable(unreachable.clone()));
                known = Some(unreachable);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::MinimalEthSpec;
    use phalanx_p2p::{NetworkConfig, NodeKey, Protocol, SendError};
    use prometheus_client::registry::Registry;

    /// Two operators on loopback speaking `partials`, with a queue of `queue`.
    async fn pair(queue: usize) -> (Network, Network, phalanx_p2p::Inbox) {
        let keys: Vec<NodeKey> = (0..2).map(|_| NodeKey::generate()).collect();
        let operators: Vec<PeerId> = keys.iter().map(NodeKey::peer_id).collect();
        let start = |key: &NodeKey| {
            Network::start(
                NetworkConfig {
                    key: key.clone(),
                    operators: operators.clone(),
                    addresses: Vec::new(),
                    relays: Vec::new(),
                    listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")],
                    lock_hash: [1; 32],
                    version: "test".into(),
                    protocols: vec![Protocol {
                        name: "partials",
                        version: "1.0.0",
                        max_size: 1024,
                        queue_per_peer: queue,
                    }],
                    send_timeout: Duration::from_secs(5),
                },
                &mut Registry::default(),
            )
            .expect("starts")
        };
        let (sender, _) = start(&keys[0]);
        let (receiver, inbox) = start(&keys[1]);
        for address in receiver.listen_addresses(1).await {
            sender.add_address(keys[1].peer_id(), address);
        }
        assert!(sender.wait_for_peers(1, Duration::from_secs(20)).await);
        assert!(receiver.wait_for_peers(1, Duration::from_secs(20)).await);
        (sender, receiver, inbox)
    }

    /// Watches the partials `sender` sends, as operator 0, into `events`.
    fn watch_partials_of(
        sender: &Network,
        inbox: &mut phalanx_p2p::Inbox,
        events: mpsc::Sender<PeerEvent<MinimalEthSpec>>,
    ) -> JoinHandle<()> {
        let inboxes = Inboxes {
            events,
            index_of: Arc::new(HashMap::from([(sender.local_peer_id(), OperatorIndex(0))])),
        };
        inboxes.watch_partials(inbox.take("partials").expect("inbox"), Family::default())
    }

    /// The core stalls: a peer's messages wait as events, and it may have
    /// no more than its queue of them anywhere in the node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_has_no_more_than_its_queue_waiting_for_a_stalled_core() {
        const QUEUE: usize = 4;
        let (sender, receiver, mut inbox) = pair(QUEUE).await;
        let (events, mut core) = mpsc::channel::<PeerEvent<MinimalEthSpec>>(1024);
        let _watcher = watch_partials_of(&sender, &mut inbox, events);
        let to = receiver.local_peer_id();
        let mut results = Vec::new();
        for _ in 0..QUEUE + 3 {
            results.push(
                sender
                    .send_message(to, "partials", &PartialBatch(Vec::new()))
                    .await,
            );
        }
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, QUEUE, "{results:?}");
        assert!(results[QUEUE..].iter().all(|r| matches!(
            r,
            Err(SendError::Refused { reason, .. }) if reason == "queue_full"
        )));
        // The core handles one: the place is free again.
        let (event, slot) = core.recv().await.expect("an event");
        assert!(matches!(
            event,
            Event::Partials {
                from: OperatorIndex(0),
                ..
            }
        ));
        drop((event, slot));
        sender
            .send_message(to, "partials", &PartialBatch(Vec::new()))
            .await
            .expect("room again");
        sender.shutdown();
        receiver.shutdown();
    }

    /// Bytes that do not decode reach the core as a fault of their
    /// sender (dropped, penalised, logged at most once a window there),
    /// holding their place until it has handled them; nothing is logged
    /// per message here.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undecodable_bytes_reach_the_core_as_their_senders_fault() {
        let (sender, receiver, mut inbox) = pair(4).await;
        let (events, mut core) = mpsc::channel::<PeerEvent<MinimalEthSpec>>(16);
        let _watcher = watch_partials_of(&sender, &mut inbox, events);
        sender
            .send(receiver.local_peer_id(), "partials", vec![0xff; 64])
            .await
            .expect("delivered");
        let (event, _slot) = tokio::time::timeout(Duration::from_secs(10), core.recv())
            .await
            .expect("the core hears of it")
            .expect("an event");
        assert!(
            matches!(
                event,
                Event::Undecodable {
                    from: OperatorIndex(0),
                    what: "partial"
                }
            ),
            "{event:?}"
        );
        sender.shutdown();
        receiver.shutdown();
    }

    #[test]
    fn unreachable_operators_are_named_by_index_without_this_node() {
        let operators: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let verified: HashSet<PeerId> = [operators[1]].into_iter().collect();
        assert_eq!(
            unreachable_operators(&operators, &verified, OperatorIndex(0)),
            vec![OperatorIndex(2), OperatorIndex(3)]
        );
        let all: HashSet<PeerId> = operators.iter().copied().collect();
        assert!(unreachable_operators(&operators, &all, OperatorIndex(3)).is_empty());
    }

    fn head(slot: u64, dependent: Option<u8>) -> BnEvent {
        BnEvent::Head(phalanx_eth::api::HeadEvent {
            slot: phalanx_eth::Slot(slot),
            block: Root::repeat_byte(0x11),
            state: Root::repeat_byte(0x22),
            epoch_transition: false,
            previous_duty_dependent_root: None,
            current_duty_dependent_root: dependent.map(Root::repeat_byte),
            execution_optimistic: false,
        })
    }

    #[test]
    fn duties_move_when_the_dependent_root_changes_within_an_epoch() {
        let mut dependent = DependentRoot::default();
        // The first head only teaches the root.
        assert_eq!(dependent.moved(&head(8, Some(1)), 8), None);
        assert_eq!(dependent.moved(&head(9, Some(1)), 8), None);
        assert_eq!(dependent.moved(&head(10, Some(2)), 8), Some(Epoch(1)));
        // A new epoch brings a new root without anything moving.
        assert_eq!(dependent.moved(&head(16, Some(3)), 8), None);
        // A head without the root changes nothing.
        assert_eq!(dependent.moved(&head(17, None), 8), None);
        assert_eq!(dependent.moved(&head(18, Some(3)), 8), None);
    }
}
