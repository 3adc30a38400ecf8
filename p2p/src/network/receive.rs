//! Receiving: per protocol, accept streams (within the sender's share of
//! open streams) and serve each for as long as the sender keeps it: greet
//! it, then read frame after frame, checking each frame's length against
//! the protocol's limit and reserving its place in the sender's share of
//! the queue before reading its body, queue it for the consumer and
//! answer each with a status, in order.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::budget::{Budgets, ROOM_WAIT};
use super::{Inbound, Protocol};
use crate::codec::{self, CodecError, Status};
use crate::gate::Shared;
use crate::metrics::ProtocolLabel;

/// How long a frame may take to arrive once its first byte has (a stream
/// may stay idle between frames: the sender keeps it for the next one).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Per protocol: accepts streams and serves each in its own task.
pub(super) async fn receive_loop(
    shared: Arc<Shared>,
    protocol: Protocol,
    mut incoming: libp2p_stream::IncomingStreams,
    queue: mpsc::Sender<Inbound>,
) {
    let budgets = Budgets::new(&protocol);
    while let Some((peer, mut stream)) = incoming.next().await {
        let Some(permit) = budgets.open_stream(peer) else {
            // More streams open than a sender keeps: reset ungreeted.
            shared.metrics.drop(protocol.name, "too_many_streams");
            continue;
        };
        let shared = shared.clone();
        let protocol = protocol.clone();
        let queue = queue.clone();
        let budgets = budgets.clone();
        tokio::spawn(async move {
            serve_stream(&shared, &protocol, &budgets, peer, &mut stream, &queue).await;
            let _ = stream.close().await;
            drop(permit);
        });
    }
}

/// Greets a stream (the sender waits for this before it writes a frame:
/// a stream libp2p reset before this node took it carried nothing), then
/// answers its frames in order until it ends, fails, or carries a frame
/// that cannot be skipped (too large) or a sender no longer verified.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    protocol: &Protocol,
    budgets: &Arc<Budgets>,
    peer: PeerId,
    stream: &mut S,
    queue: &mpsc::Sender<Inbound>,
) {
    if answer(stream, Status::Accepted).await.is_err() {
        return;
    }
    while let Some(status) = receive_one(shared, protocol, budgets, peer, stream, queue).await {
        if status != Status::Accepted {
            shared.metrics.drop(protocol.name, status.reason());
        }
        if answer(stream, status).await.is_err() {
            return;
        }
        if matches!(status, Status::TooLarge | Status::Unverified) {
            return;
        }
    }
}

async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, status: Status) -> std::io::Result<()> {
    stream.write_all(&[status as u8]).await?;
    stream.flush().await
}

/// Reads one frame and queues it; the status to answer, or none when the
/// stream ended or failed. A frame that finds the sender's share taken
/// waits up to [`ROOM_WAIT`] for the consumer to free a place (and one
/// past the sender's rate, for its bucket to refill); refused then, it is
/// read through without being stored, so that the next one can follow; one
/// too large or from a sender no longer verified is left unread (the
/// caller then ends the stream).
async fn receive_one<S: AsyncRead + Unpin>(
    shared: &Shared,
    protocol: &Protocol,
    budgets: &Arc<Budgets>,
    peer: PeerId,
    stream: &mut S,
    queue: &mpsc::Sender<Inbound>,
) -> Option<Status> {
    // Between frames the stream may wait as long as the sender likes: it
    // holds one of the peer's few streams, no place in the queue.
    let mut prefix = [0u8; 4];
    let started = match stream.read(&mut prefix).await {
        Ok(0) | Err(_) => return None,
        Ok(n) => n,
    };
    let read = async {
        stream.read_exact(&mut prefix[started..]).await?;
        let len = codec::frame_len(prefix, protocol.max_size)?;
        if !shared.operators.contains(&peer) || !shared.is_verified(&peer) {
            return Ok(Err(Status::Unverified));
        }
        // The place is taken before the body is read, and freed if the
        // read fails (the slot is dropped with it). While the peer's share
        // is taken the frame waits, unread, for the consumer to free one.
        let Some(slot) = budgets.reserve_within(peer, len, ROOM_WAIT).await else {
            // Read through, within the peer's rate like every byte of it.
            budgets.charge_rate(peer, len).await;
            codec::skip_frame_body(stream, len).await?;
            return Ok(Err(Status::QueueFull));
        };
        let body = codec::read_frame_body(stream, len).await?;
        Ok(Ok(Inbound {
            peer,
            bytes: body,
            limit: protocol.max_size,
            slot,
        }))
    };
    let inbound = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(Ok(inbound))) => inbound,
        Ok(Ok(Err(status))) => return Some(status),
        Ok(Err(CodecError::TooLarge { len, .. })) => {
            tracing::debug!(%peer, protocol = protocol.name, len, "refused an oversized message unread");
            return Some(Status::TooLarge);
        }
        Ok(Err(_)) | Err(_) => {
            shared.metrics.drop(protocol.name, "malformed");
            return None;
        }
    };
    if queue.try_send(inbound).is_err() {
        return Some(Status::QueueFull);
    }
    shared
        .metrics
        .received
        .get_or_create(&ProtocolLabel {
            protocol: protocol.name.to_string(),
        })
        .inc();
    Some(Status::Accepted)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::channel::mpsc as chunks;

    use super::*;
    use crate::metrics::Metrics;
    use crate::network::LARGEST_MESSAGES_PER_PEER;

    /// An inbound stream whose bytes the test hands over chunk by chunk;
    /// a read waits while no chunk is there.
    struct Feed {
        chunks: chunks::UnboundedReceiver<Vec<u8>>,
        pending: Vec<u8>,
    }

    impl AsyncRead for Feed {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            while self.pending.is_empty() {
                match self.chunks.poll_next_unpin(cx) {
                    Poll::Ready(Some(chunk)) => self.pending = chunk,
                    Poll::Ready(None) => return Poll::Ready(Ok(0)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    fn feed() -> (chunks::UnboundedSender<Vec<u8>>, Feed) {
        let (tx, rx) = chunks::unbounded();
        (
            tx,
            Feed {
                chunks: rx,
                pending: Vec::new(),
            },
        )
    }

    /// A stream whose reads come from a [`Feed`] and whose writes are kept.
    struct Duplex {
        feed: Feed,
        written: Vec<u8>,
    }

    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.feed).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Duplex {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A stream fed through the returned sender, its writes kept.
    fn duplex() -> (chunks::UnboundedSender<Vec<u8>>, Duplex) {
        let (tx, feed) = feed();
        (
            tx,
            Duplex {
                feed,
                written: Vec::new(),
            },
        )
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        frame
    }

    /// One stream carries frame after frame, greeted first and each
    /// answered in order; a frame refused for want of room is read through
    /// unstored and the next one follows it on the same stream.
    #[tokio::test]
    async fn a_stream_carries_frame_after_frame_within_the_peers_share() {
        let peer = PeerId::random();
        let shared = verified(peer);
        let protocol = protocol(1000, 1);
        let (queue, mut consumer) = mpsc::channel(64);
        let budgets = Budgets::new(&protocol);
        let (tx, mut stream) = duplex();
        for body in [&[1u8; 10][..], &[2; 700], &[3; 5]] {
            tx.unbounded_send(frame(body)).expect("feed");
        }
        drop(tx);
        serve_stream(&shared, &protocol, &budgets, peer, &mut stream, &queue).await;
        let (ok, full) = (Status::Accepted as u8, Status::QueueFull as u8);
        // The greeting, then: the first queued, the others refused (the
        // consumer still holds the first's place).
        assert_eq!(stream.written, vec![ok, ok, full, full]);
        let first = consumer.try_recv().expect("queued");
        assert_eq!(first.bytes, vec![1; 10]);
        assert!(consumer.try_recv().is_err(), "refused frames are not kept");
        drop(first);
        assert_eq!(budgets.in_flight(&peer), (0, 0, 0));

        // With its place free, the next frame is taken; a frame above the
        // limit is refused and ends the stream, the one behind it unread.
        let (tx, mut stream) = duplex();
        tx.unbounded_send(frame(&[4; 20])).expect("feed");
        tx.unbounded_send(1001u32.to_be_bytes().to_vec())
            .expect("feed");
        tx.unbounded_send(frame(&[5; 20])).expect("feed");
        serve_stream(&shared, &protocol, &budgets, peer, &mut stream, &queue).await;
        assert_eq!(
            stream.written,
            vec![ok, ok, Status::TooLarge as u8],
            "served until the oversized frame"
        );
        assert_eq!(consumer.try_recv().expect("queued").bytes, vec![4; 20]);
        assert!(consumer.try_recv().is_err());
    }

    /// A burst that finds the peer's share taken while the consumer is
    /// briefly behind waits for room instead of being refused: an honest
    /// sender's frame is taken as soon as the consumer frees a place.
    #[tokio::test]
    async fn a_frame_waits_for_room_while_the_consumer_catches_up() {
        let peer = PeerId::random();
        let shared = verified(peer);
        let protocol = protocol(1000, 1);
        let (queue, mut consumer) = mpsc::channel(64);
        let budgets = Budgets::new(&protocol);
        let (tx, mut stream) = duplex();
        tx.unbounded_send(frame(&[1; 10])).expect("feed");
        tx.unbounded_send(frame(&[2; 20])).expect("feed");
        drop(tx);
        let consume = tokio::spawn(async move {
            let first: Inbound = consumer.recv().await.expect("first");
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(first);
            consumer.recv().await.expect("second").bytes
        });
        serve_stream(&shared, &protocol, &budgets, peer, &mut stream, &queue).await;
        let ok = Status::Accepted as u8;
        assert_eq!(stream.written, vec![ok, ok, ok], "both taken, none refused");
        assert_eq!(consume.await.expect("consumer"), vec![2; 20]);
    }

    fn verified(peer: PeerId) -> Arc<Shared> {
        let shared = Shared::new(
            PeerId::random(),
            BTreeSet::from([peer]),
            BTreeSet::new(),
            [0; 32],
            "test".into(),
            Metrics::default(),
        );
        shared.connection_changed(peer, true);
        shared.set_verified(peer);
        Arc::new(shared)
    }

    fn protocol(max_size: usize, queue_per_peer: usize) -> Protocol {
        Protocol {
            name: "chat",
            version: "1.0.0",
            max_size,
            queue_per_peer,
        }
    }

    /// Many streams of one peer whose lengths all arrive before any body:
    /// no more than `queue_per_peer` of them may be read.
    #[tokio::test]
    async fn concurrent_streams_of_one_peer_get_no_more_than_its_queue() {
        const QUEUE: usize = 2;
        const STREAMS: usize = 6;
        let peer = PeerId::random();
        let shared = verified(peer);
        let protocol = protocol(1024, QUEUE);
        let (queue, mut consumer) = mpsc::channel(64);
        let budgets = Budgets::new(&protocol);
        let mut feeds = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..STREAMS {
            let (tx, mut stream) = feed();
            tx.unbounded_send(100u32.to_be_bytes().to_vec())
                .expect("feed");
            feeds.push(tx);
            let (shared, protocol, queue, budgets) = (
                shared.clone(),
                protocol.clone(),
                queue.clone(),
                budgets.clone(),
            );
            tasks.push(tokio::spawn(async move {
                receive_one(&shared, &protocol, &budgets, peer, &mut stream, &queue).await
            }));
        }
        // Every stream has read its length and waits for its body (or was
        // refused already).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        for tx in &feeds {
            let _ = tx.unbounded_send(vec![7u8; 100]);
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("task"));
        }
        let accepted = statuses
            .iter()
            .filter(|s| **s == Some(Status::Accepted))
            .count();
        let mut queued = 0;
        while consumer.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(accepted, QUEUE, "{statuses:?}");
        assert_eq!(queued, QUEUE);
    }

    /// A stream that ends before its body frees its place; lengths that
    /// would exceed the peer's bytes are refused before their bodies.
    #[tokio::test]
    async fn failed_reads_free_their_place_and_bytes_are_bounded() {
        let peer = PeerId::random();
        let shared = verified(peer);
        let protocol = protocol(1000, 16);
        let (queue, _consumer) = mpsc::channel(64);
        let budgets = Budgets::new(&protocol);
        let (tx, mut cut) = feed();
        tx.unbounded_send(500u32.to_be_bytes().to_vec())
            .expect("feed");
        tx.unbounded_send(vec![1; 10]).expect("feed");
        drop(tx);
        let status = receive_one(&shared, &protocol, &budgets, peer, &mut cut, &queue).await;
        assert_eq!(status, None, "the stream failed");
        assert_eq!(budgets.in_flight(&peer), (0, 0, 0), "its place is free");

        // The largest messages a peer may have fill its bytes; one more is refused
        // unread. (A fresh budget: the cut message's announced bytes
        // count against the peer's rate.)
        let budgets = Budgets::new(&protocol);
        let mut statuses = Vec::new();
        for _ in 0..=LARGEST_MESSAGES_PER_PEER {
            let (tx, mut stream) = feed();
            tx.unbounded_send(1000u32.to_be_bytes().to_vec())
                .expect("feed");
            tx.unbounded_send(vec![1; 1000]).expect("feed");
            statuses
                .push(receive_one(&shared, &protocol, &budgets, peer, &mut stream, &queue).await);
        }
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == Some(Status::Accepted))
                .count(),
            LARGEST_MESSAGES_PER_PEER
        );
        assert_eq!(statuses.last(), Some(&Some(Status::QueueFull)));
        assert_eq!(
            budgets.in_flight(&peer),
            (0, LARGEST_MESSAGES_PER_PEER, protocol.bytes_per_peer())
        );
    }
}
