//! Sending: a message goes on a fresh stream as one frame, and the send
//! waits for the receiver's one-byte status. A stream that fails before
//! an answer is opened again after a jittered pause, within the caller's
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use rand::Rng;
use serde::Serialize;

use super::{Network, Protocol};
use crate::codec::{self, CodecError, Status};
use crate::error::SendError;
use crate::metrics::ProtocolLabel;

impl Network {
    /// Encodes and sends a message to one operator, waiting for its acknowledgement.
    pub async fn send_message<T: Serialize>(
        &self,
        peer: PeerId,
        protocol: &str,
        message: &T,
    ) -> Result<(), SendError> {
        let limit = self.protocol(protocol)?.max_size;
        let bytes = codec::encode(message, limit).map_err(|e| match e {
            CodecError::TooLarge { len, limit } => SendError::TooLarge {
                protocol: protocol.to_string(),
                size: usize::try_from(len).unwrap_or(usize::MAX),
                limit,
            },
            other => SendError::Encode(other.to_string()),
        })?;
        self.send(peer, protocol, bytes).await
    }

    /// Encodes a message once and sends it to every other operator.
    pub async fn broadcast_message<T: Serialize>(
        &self,
        protocol: &str,
        message: &T,
    ) -> Result<Vec<(PeerId, Result<(), SendError>)>, SendError> {
        let limit = self.protocol(protocol)?.max_size;
        let bytes = codec::encode(message, limit).map_err(|e| SendError::Encode(e.to_string()))?;
        Ok(self.broadcast(protocol, bytes).await)
    }

    /// Sends raw bytes to every other operator concurrently.
    pub async fn broadcast(
        &self,
        protocol: &str,
        bytes: Vec<u8>,
    ) -> Vec<(PeerId, Result<(), SendError>)> {
        let bytes = Arc::new(bytes);
        let peers: Vec<PeerId> = self
            .shared
            .operators
            .iter()
            .copied()
            .filter(|p| *p != self.shared.local)
            .collect();
        let sends = peers.iter().map(|peer| {
            let bytes = bytes.clone();
            async move { (*peer, self.send_shared(*peer, protocol, bytes).await) }
        });
        futures::future::join_all(sends).await
    }

    /// Sends raw bytes to one operator, waiting for its acknowledgement.
    pub async fn send(
        &self,
        peer: PeerId,
        protocol: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SendError> {
        self.send_shared(peer, protocol, Arc::new(bytes)).await
    }

    fn protocol(&self, name: &str) -> Result<&Protocol, SendError> {
        self.protocols
            .get(name)
            .ok_or_else(|| SendError::UnknownProtocol(name.to_string()))
    }

    async fn send_shared(
        &self,
        peer: PeerId,
        protocol_name: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), SendError> {
        let protocol = self.protocol(protocol_name)?.clone();
        if bytes.len() > protocol.max_size {
            return Err(SendError::TooLarge {
                protocol: protocol.id(),
                size: bytes.len(),
                limit: protocol.max_size,
            });
        }
        if !self.shared.operators.contains(&peer) || peer == self.shared.local {
            return Err(SendError::UnknownPeer(peer.to_string()));
        }
        let label = ProtocolLabel {
            protocol: protocol.name.to_string(),
        };
        let result = tokio::time::timeout(self.send_timeout, self.deliver(peer, &protocol, &bytes))
            .await
            .unwrap_or_else(|_| Err(SendError::Timeout(peer.to_string())));
        match &result {
            Ok(()) => self.shared.metrics.sent.get_or_create(&label).inc(),
            Err(_) => self
                .shared
                .metrics
                .send_failures
                .get_or_create(&label)
                .inc(),
        };
        result
    }

    async fn deliver(
        &self,
        peer: PeerId,
        protocol: &Protocol,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        self.wait_verified(peer).await;
        let failed = |reason: String| SendError::Failed {
            peer: peer.to_string(),
            reason,
        };
        let id =
            StreamProtocol::try_from_owned(protocol.id()).map_err(|e| failed(e.to_string()))?;
        let mut control = self.control.clone();
        // A stream can fail before the peer's handler has it: a request
        // cancelled when the connection it was queued on closes while
        // another replaces it (both operators dial each other), or an
        // inbound stream the peer's libp2p dropped because its one-stream
        // accept queue was full (a burst of consensus messages at a duty's
        // start), which resets it. The peer never read such a message:
        // open a new stream and send it again, within the caller's timeout.
        let mut attempt = 0;
        loop {
            let error = match control.open_stream(peer, id.clone()).await {
                Ok(stream) => match exchange(stream, bytes).await {
                    Ok(status) => {
                        return match Status::from_byte(status) {
                            Some(Status::Accepted) => Ok(()),
                            Some(other) => Err(SendError::Refused {
                                peer: peer.to_string(),
                                reason: other.reason().to_string(),
                            }),
                            None => Err(failed(format!("unknown status {status}"))),
                        }
                    }
                    Err(e) => e.to_string(),
                },
                Err(libp2p_stream::OpenStreamError::Io(e)) => e.to_string(),
                Err(e) => return Err(failed(format!("{e:?}"))),
            };
            if attempt >= STREAM_RETRIES {
                return Err(failed(error));
            }
            attempt += 1;
            tracing::debug!(%peer, protocol = protocol.name, attempt, %error, "stream failed before an answer; sending again");
            self.shared
                .metrics
                .stream_retries
                .get_or_create(&ProtocolLabel {
                    protocol: protocol.name.to_string(),
                })
                .inc();
            #[expect(
                clippy::disallowed_methods,
                reason = "the runtime edge: jitter between a real network's resends"
            )]
            let pause = retry_pause(attempt, &mut rand::thread_rng());
            tokio::time::sleep(pause).await;
        }
    }

    /// Waits (within the caller's timeout) until the peer's cluster is verified.
    async fn wait_verified(&self, peer: PeerId) {
        let mut changes = self.shared.changes.subscribe();
        while !self.shared.is_verified(&peer) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Writes one framed message on a fresh stream and reads the peer's
/// one-byte answer. An error means no answer came.
async fn exchange(mut stream: libp2p::Stream, bytes: &[u8]) -> std::io::Result<u8> {
    let written = codec::write_frame(&mut stream, bytes).await;
    let mut status = [0u8; 1];
    match written {
        Ok(()) => stream.read_exact(&mut status).await?,
        // A peer that refuses a message unread (too large, queue full)
        // answers and stops reading: the write can fail while the answer
        // is on its way. Its answer, if it comes, says why.
        Err(write_error) => {
            match tokio::time::timeout(REFUSAL_GRACE, stream.read_exact(&mut status)).await {
                Ok(Ok(())) => {}
                _ => return Err(write_error),
            }
        }
    }
    let _ = stream.close().await;
    Ok(status[0])
}

/// How long a sender whose write failed waits for the peer's answer (a
/// refusal sent before the peer stopped reading).
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// How many times a message whose stream failed before an answer is sent
/// again on a new stream: the pauses add up to about 630 ms.
const STREAM_RETRIES: u32 = 6;

/// The pause before sending again for the `attempt`th time: doubling from
/// 10 ms, each drawn between half and one and a half times that, so that
/// the senders of one burst, refused together, do not all come back at
/// once into a queue that is still full.
fn retry_pause(attempt: u32, rng: &mut impl Rng) -> Duration {
    let base = 10u64 << attempt.saturating_sub(1).min(10);
    Duration::from_millis(rng.gen_range(base / 2..=base + base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retry_pauses_double_with_jitter_and_stay_under_a_second_in_all() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for attempt in 1..=STREAM_RETRIES {
            let base = 10u64 << (attempt - 1);
            let pauses: Vec<u64> = (0..200)
                .map(|_| retry_pause(attempt, &mut rng).as_millis() as u64)
                .collect();
            assert!(pauses
                .iter()
                .all(|p| (base / 2..=base + base / 2).contains(p)));
            // Jittered: the senders of one burst come back apart.
            assert!(pauses.iter().any(|&p| p != pauses[0]), "{pauses:?}");
        }
        let longest: u64 = (1..=STREAM_RETRIES)
            .map(|attempt| 15u64 << (attempt - 1))
            .sum();
        assert!(longest < 1_000, "{longest} ms");
    }
}
