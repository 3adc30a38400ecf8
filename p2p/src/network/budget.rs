//! What each peer may have in flight on one protocol: inbound streams
//! open, messages read or queued, and the bytes those announced.
//!
//! A message's place is reserved, under one lock, after its length is read
//! and before a byte of its body is: streams of one peer read concurrently
//! (yamux allows hundreds per connection) can together never hold more
//! than the peer's share. The place is held by a [`QueueSlot`] from then
//! until the consumer drops it (after handling the message), and is freed
//! on every path that fails before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::PeerId;

use super::Protocol;

/// One peer's use of a protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    /// Inbound streams open (accepted and not yet answered).
    streams: usize,
    /// Messages being read or waiting for the consumer.
    messages: usize,
    /// The lengths those messages announced.
    bytes: usize,
}

/// Every peer's use of one protocol.
#[derive(Debug)]
pub(super) struct Budgets {
    max_streams: usize,
    max_messages: usize,
    max_bytes: usize,
    peers: Mutex<BTreeMap<PeerId, Usage>>,
}

impl Budgets {
    pub(super) fn new(protocol: &Protocol) -> Arc<Budgets> {
        Arc::new(Budgets {
            max_streams: protocol.streams_per_peer(),
            max_messages: protocol.queue_per_peer,
            max_bytes: protocol.bytes_per_peer(),
            peers: Mutex::new(BTreeMap::new()),
        })
    }

    fn peers(&self) -> MutexGuard<'_, BTreeMap<PeerId, Usage>> {
        // Plain counters: a panic elsewhere leaves them usable.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one of the peer's inbound streams, if it has fewer open than
    /// allowed.
    pub(super) fn open_stream(self: &Arc<Self>, peer: PeerId) -> Option<StreamPermit> {
        let mut peers = self.peers();
        let usage = peers.entry(peer).or_default();
        if usage.streams >= self.max_streams {
            return None;
        }
        usage.streams += 1;
        Some(StreamPermit {
            budgets: self.clone(),
            peer,
        })
    }

    /// Reserves a place for a message of `len` bytes, if the peer has
    /// room for one more message and for its bytes.
    pub(super) fn reserve(self: &Arc<Self>, peer: PeerId, len: usize) -> Option<QueueSlot> {
        let mut peers = self.peers();
        let usage = peers.entry(peer).or_default();
        if usage.messages >= self.max_messages || usage.bytes.saturating_add(len) > self.max_bytes {
            return None;
        }
        usage.messages += 1;
        usage.bytes += len;
        Some(QueueSlot {
            budgets: self.clone(),
            peer,
            bytes: len,
        })
    }

    fn release(&self, peer: PeerId, release: impl FnOnce(&mut Usage)) {
        let mut peers = self.peers();
        if let Some(usage) = peers.get_mut(&peer) {
            release(usage);
            if *usage == Usage::default() {
                peers.remove(&peer);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self, peer: &PeerId) -> (usize, usize, usize) {
        let usage = self.peers().get(peer).copied().unwrap_or_default();
        (usage.streams, usage.messages, usage.bytes)
    }
}

/// One open inbound stream of a peer; dropping it frees the place.
#[derive(Debug)]
pub(super) struct StreamPermit {
    budgets: Arc<Budgets>,
    peer: PeerId,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.budgets.release(self.peer, |u| {
            u.streams = u.streams.saturating_sub(1);
        });
    }
}

/// A received message's place in its sender's share of this node's queue
/// (one message and its bytes), held until dropped. A consumer that hands
/// the decoded message on keeps it until the message is handled, so that
/// a peer whose messages wait anywhere in this node is refused more.
#[derive(Debug)]
pub struct QueueSlot {
    budgets: Arc<Budgets>,
    peer: PeerId,
    bytes: usize,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.budgets.release(self.peer, |u| {
            u.messages = u.messages.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(bytes);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol() -> Protocol {
        Protocol {
            name: "chat",
            version: "1.0.0",
            max_size: 100,
            queue_per_peer: 3,
        }
    }

    #[test]
    fn places_are_bounded_per_peer_and_freed_when_dropped() {
        let budgets = Budgets::new(&protocol());
        let (a, b) = (PeerId::random(), PeerId::random());
        let bytes = protocol().bytes_per_peer();
        let first = budgets.reserve(a, bytes - 10).expect("room");
        // The bytes are short before the count is.
        assert!(budgets.reserve(a, 11).is_none());
        let second = budgets.reserve(a, 10).expect("room");
        let third = budgets.reserve(a, 0).expect("room");
        assert!(budgets.reserve(a, 0).is_none(), "three messages at most");
        // Another peer has its own share.
        let other = budgets.reserve(b, 50).expect("its own share");
        assert_eq!(budgets.in_flight(&a), (0, 3, bytes));
        drop(second);
        assert_eq!(budgets.in_flight(&a), (0, 2, bytes - 10));
        drop((first, third, other));
        assert_eq!(budgets.in_flight(&a), (0, 0, 0));
        assert!(budgets.peers().is_empty(), "nothing kept for idle peers");
    }

    #[test]
    fn streams_are_bounded_per_peer() {
        let budgets = Budgets::new(&protocol());
        let peer = PeerId::random();
        let permits: Vec<StreamPermit> = (0..protocol().streams_per_peer())
            .map(|_| budgets.open_stream(peer).expect("room"))
            .collect();
        assert!(budgets.open_stream(peer).is_none());
        drop(permits);
        assert!(budgets.open_stream(peer).is_some());
    }
}
