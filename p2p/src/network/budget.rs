//! What each peer may have in flight on one protocol: inbound streams
//! open, messages read or queued, and the bytes those announced.
//!
//! A message's place is reserved, under one lock, after its length is read
//! and before a byte of its body is: streams of one peer read concurrently
//! (yamux allows hundreds per connection) can together never hold more
//! than the peer's share. The place is held by a [`QueueSlot`] from then
//! until the consumer drops it (after handling the message), and is freed
//! on every path that fails before.
//!
//! Each peer also has a rate: bytes it may have read per protocol, a
//! bucket of [`LARGEST_MESSAGES_PER_BURST`] of the largest messages that
//! refills by the protocol's
//! largest message every [`REFILL_PERIOD`]. A peer past it has its next
//! frames wait, unread, until the bucket refills: beyond what the
//! transport buffers per connection (its receive window, bounded in the
//! swarm's settings) its bytes are held back by flow control, and this
//! node reads no more of them than the rate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Protocol, LARGEST_MESSAGES_PER_BURST};

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
    max_size: usize,
    /// The most a peer's rate bucket holds.
    burst: usize,
    peers: Mutex<BTreeMap<PeerId, Usage>>,
    /// Per peer (operators only: a place is reserved only for a verified
    /// one), the bytes left of its rate and when that was reckoned.
    rates: Mutex<BTreeMap<PeerId, (f64, Instant)>>,
    /// Woken whenever a message's place is freed.
    freed: Notify,
}

/// Why a place was not reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Short {
    /// The peer's rate is spent: its bucket comes back to the frame's
    /// length after this long.
    Rate(Duration),
    /// The peer's messages or bytes in flight are at their bound: room
    /// comes back when the consumer handles one.
    Room,
}

/// The least a frame costs of its sender's rate, whatever its length.
pub(super) const FRAME_CHARGE: usize = 4096;

/// How long a frame whose sender's share is taken waits for the consumer
/// to free a place before it is refused. An honest burst meets a consumer
/// briefly behind (a large batch being verified) and is taken when it
/// catches up; meanwhile only that sender's stream waits, its frame's
/// body unread (beyond what the transport buffers).
pub(super) const ROOM_WAIT: Duration = Duration::from_secs(2);

/// The time in which a peer's byte rate gets back one message of the
/// protocol's largest size. An honest operator sends at most a couple of
/// the largest messages a 12-second slot (a proposal with every blob
/// from the slot's leader); partial signatures of even 10,000 validators
/// are a fraction of the limit a slot.
pub(super) const REFILL_PERIOD: Duration = Duration::from_secs(6);

impl Budgets {
    pub(super) fn new(protocol: &Protocol) -> Arc<Budgets> {
        Arc::new(Budgets {
            max_streams: protocol.streams_per_peer(),
            max_messages: protocol.queue_per_peer,
            max_bytes: protocol.bytes_per_peer(),
            burst: protocol.max_size.saturating_mul(LARGEST_MESSAGES_PER_BURST),
            max_size: protocol.max_size,
            peers: Mutex::new(BTreeMap::new()),
            rates: Mutex::new(BTreeMap::new()),
            freed: Notify::new(),
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

    /// [`Budgets::reserve_within`] without waiting.
    #[cfg(test)]
    pub(super) fn reserve(self: &Arc<Self>, peer: PeerId, len: usize) -> Option<QueueSlot> {
        self.reserve_at(peer, len, Instant::now()).ok()
    }

    /// Reserves a place for a message of `len` bytes, if the peer has
    /// room for one more message and for its bytes and its rate allows
    /// them. While its rate is spent the frame waits, unread, for the
    /// bucket to refill (so a peer past its rate slows down to it, its
    /// bytes held back by the transport's flow control rather than read
    /// and thrown away); while its share is taken it waits up to `wait`
    /// for the consumer to free a place.
    pub(super) async fn reserve_within(
        self: &Arc<Self>,
        peer: PeerId,
        len: usize,
        wait: Duration,
    ) -> Option<QueueSlot> {
        // The wait for room starts when room is first found short (time
        // spent on the rate does not count against it).
        let mut deadline = None;
        loop {
            // Registered before the check, so that a place freed between
            // the check and the wait is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.reserve_at(peer, len, Instant::now()) {
                Ok(slot) => return Some(slot),
                Err(Short::Rate(refill)) => {
                    tokio::time::sleep(refill).await;
                    continue;
                }
                Err(Short::Room) => {}
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + wait);
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// Charges a frame that is read through unstored (refused for want of
    /// room) to the peer's rate, waiting while it is spent: every byte
    /// this node reads of a peer counts against its rate, kept or not.
    pub(super) async fn charge_rate(&self, peer: PeerId, len: usize) {
        let charge = self.charge(len);
        loop {
            let refill = {
                let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let left = self.refilled(&mut rates, peer, now);
                if charge <= *left {
                    *left -= charge;
                    return;
                }
                self.refill_time(charge, *left)
            };
            tokio::time::sleep(refill).await;
        }
    }

    /// The peer's bucket, refilled up to `now`.
    fn refilled<'a>(
        &self,
        rates: &'a mut BTreeMap<PeerId, (f64, Instant)>,
        peer: PeerId,
        now: Instant,
    ) -> &'a mut f64 {
        let (left, at) = rates.entry(peer).or_insert((self.burst as f64, now));
        let back = now.saturating_duration_since(*at).as_secs_f64() / REFILL_PERIOD.as_secs_f64()
            * self.max_size as f64;
        *left = (*left + back).min(self.burst as f64);
        *at = now;
        left
    }

    /// What a frame of `len` bytes costs of the rate: its length, and at
    /// least [`FRAME_CHARGE`] (a 512th of the largest message for a
    /// protocol of small ones: a burst of 1,024 tiny frames), so that a flood of tiny frames, each of
    /// which still costs a decode and a run of the consumer, is held to
    /// the rate like one of large ones.
    fn charge(&self, len: usize) -> f64 {
        len.max(FRAME_CHARGE.min(self.max_size / 512)) as f64
    }

    /// How long the bucket takes to hold `charge` from `left`.
    fn refill_time(&self, charge: f64, left: f64) -> Duration {
        let missing = (charge - left) / self.max_size.max(1) as f64;
        // At least a millisecond, so that a waiter never spins.
        REFILL_PERIOD
            .mul_f64(missing.max(0.0))
            .max(Duration::from_millis(1))
    }

    fn reserve_at(
        self: &Arc<Self>,
        peer: PeerId,
        len: usize,
        now: Instant,
    ) -> Result<QueueSlot, Short> {
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let charge = self.charge(len);
        let left = self.refilled(&mut rates, peer, now);
        if charge > *left {
            return Err(Short::Rate(self.refill_time(charge, *left)));
        }
        let mut peers = self.peers();
        let usage = peers.entry(peer).or_default();
        if usage.messages >= self.max_messages || usage.bytes.saturating_add(len) > self.max_bytes {
            return Err(Short::Room);
        }
        *left -= charge;
        usage.messages += 1;
        usage.bytes += len;
        Ok(QueueSlot {
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
    pub(super) fn reserve_for_test(
        self: &Arc<Self>,
        peer: PeerId,
        len: usize,
        now: Instant,
    ) -> Option<QueueSlot> {
        self.reserve_at(peer, len, now).ok()
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
        self.budgets.freed.notify_waiters();
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
    fn a_peer_reads_no_more_than_its_rate() {
        let budgets = Budgets::new(&protocol());
        let peer = PeerId::random();
        let start = Instant::now();
        // The whole bucket at once: a burst of the largest messages, each
        // freed as soon as it was read.
        for _ in 0..LARGEST_MESSAGES_PER_BURST {
            drop(
                budgets
                    .reserve_for_test(peer, 100, start)
                    .expect("within the rate"),
            );
        }
        assert!(
            budgets.reserve_for_test(peer, 1, start).is_none(),
            "the bucket is empty"
        );
        // One largest message comes back every refill period, not before.
        let half = start + REFILL_PERIOD / 2;
        assert!(budgets.reserve_for_test(peer, 51, half).is_none());
        drop(
            budgets
                .reserve_for_test(peer, 50, half)
                .expect("half of one back"),
        );
        let later = half + REFILL_PERIOD;
        drop(
            budgets
                .reserve_for_test(peer, 100, later)
                .expect("one back"),
        );
        assert!(budgets.reserve_for_test(peer, 1, later).is_none());
        // Another peer has its own rate.
        assert!(budgets
            .reserve_for_test(PeerId::random(), 100, start)
            .is_some());
    }

    /// A frame past the peer's rate is not refused: it waits for the
    /// bucket to refill by its length (a tenth of the largest message:
    /// a tenth of the refill period).
    #[tokio::test]
    async fn a_frame_past_the_rate_waits_for_the_refill() {
        let budgets = Budgets::new(&protocol());
        let peer = PeerId::random();
        for _ in 0..LARGEST_MESSAGES_PER_BURST {
            drop(budgets.reserve(peer, 100).expect("within the rate"));
        }
        let started = Instant::now();
        let slot = budgets
            .reserve_within(peer, 10, Duration::ZERO)
            .await
            .expect("taken once the bucket refilled");
        let waited = started.elapsed();
        assert!(
            waited >= REFILL_PERIOD / 10 - Duration::from_millis(20),
            "{waited:?}"
        );
        assert!(waited < REFILL_PERIOD / 2, "{waited:?}");
        drop(slot);
    }

    /// A frame costs at least a minimum of the rate, so tiny frames are
    /// held to it too: the bucket of two largest messages (2 MiB here)
    /// takes 1,024 empty frames at a charge of 2 KiB each.
    #[test]
    fn tiny_frames_cost_a_minimum_of_the_rate() {
        let budgets = Budgets::new(&Protocol {
            max_size: 1 << 20,
            ..protocol()
        });
        let peer = PeerId::random();
        let start = Instant::now();
        let taken = (0..5000)
            .filter_map(|_| budgets.reserve_for_test(peer, 0, start))
            .count();
        assert_eq!(taken, 1024);
    }

    /// The wait for room starts when room is found short: a frame that
    /// first waited for the rate still gets its whole wait for room.
    #[tokio::test]
    async fn time_spent_on_the_rate_does_not_shorten_the_wait_for_room() {
        let budgets = Budgets::new(&protocol());
        let peer = PeerId::random();
        // The peer's bytes in flight are full, and its rate is spent.
        let held = budgets.reserve(peer, 100).expect("room");
        budgets.charge_rate(peer, 100).await;
        // The consumer frees the place after the rate has come back.
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(900)).await;
            drop(held);
        });
        let slot = budgets
            .reserve_within(peer, 10, Duration::from_millis(500))
            .await;
        assert!(slot.is_some(), "refused once the rate had come back");
        release.await.expect("released");
    }

    /// Bytes read through unstored count against the rate like kept ones.
    #[tokio::test]
    async fn frames_read_through_are_charged_to_the_rate() {
        let budgets = Budgets::new(&protocol());
        let peer = PeerId::random();
        budgets
            .charge_rate(peer, protocol().max_size * LARGEST_MESSAGES_PER_BURST)
            .await;
        assert!(budgets.reserve(peer, 10).is_none(), "the rate is spent");
        assert_eq!(budgets.in_flight(&peer), (0, 0, 0), "nothing held");
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
