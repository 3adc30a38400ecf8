//! Receiving: per protocol, accept streams, check each frame's length
//! against the protocol's limit before reading it, queue it for the
//! consumer while the sender's queue has room, and answer with a status.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::{Inbound, Protocol, QueueSlot};
use crate::codec::{self, CodecError, Status};
use crate::gate::Shared;
use crate::metrics::ProtocolLabel;

/// Per protocol: accepts streams, checks each frame and queues it.
pub(super) async fn receive_loop(
    shared: Arc<Shared>,
    protocol: Protocol,
    mut incoming: libp2p_stream::IncomingStreams,
    queue: mpsc::UnboundedSender<Inbound>,
) {
    let counts: Arc<Mutex<BTreeMap<PeerId, Arc<AtomicUsize>>>> = Arc::default();
    while let Some((peer, mut stream)) = incoming.next().await {
        let shared = shared.clone();
        let protocol = protocol.clone();
        let queue = queue.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            let count = counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(peer)
                .or_default()
                .clone();
            let status = receive_one(&shared, &protocol, peer, &mut stream, &queue, count).await;
            if let Some(status) = status {
                if status != Status::Accepted {
                    shared.metrics.drop(protocol.name, status.reason());
                }
                let _ = stream.write_all(&[status as u8]).await;
                let _ = stream.close().await;
            }
        });
    }
}

async fn receive_one(
    shared: &Shared,
    protocol: &Protocol,
    peer: PeerId,
    stream: &mut libp2p::Stream,
    queue: &mpsc::UnboundedSender<Inbound>,
    count: Arc<AtomicUsize>,
) -> Option<Status> {
    let read = async {
        let len = codec::read_frame_len(stream, protocol.max_size).await?;
        if !shared.operators.contains(&peer) || !shared.is_verified(&peer) {
            return Ok(Err(Status::Unverified));
        }
        if count.load(Ordering::Acquire) >= protocol.queue_per_peer {
            return Ok(Err(Status::QueueFull));
        }
        codec::read_frame_body(stream, len).await.map(Ok)
    };
    let body = match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(Ok(Ok(body))) => body,
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
    count.fetch_add(1, Ordering::AcqRel);
    let inbound = Inbound {
        peer,
        bytes: body,
        limit: protocol.max_size,
        _slot: QueueSlot(count),
    };
    if queue.send(inbound).is_err() {
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
