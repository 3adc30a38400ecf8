//! Sending: a message goes as one frame on one of the operator's lanes
//! (long-lived streams, see [`super::lane`]), and the send waits for the
//! receiver's one-byte status. A message whose stream failed before an
//! answer is sent again after a jittered pause, within the caller's
//! timeout.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use rand::Rng;
use serde::Serialize;

use super::lane::Answer;
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
        bytes: &Arc<Vec<u8>>,
    ) -> Result<(), SendError> {
        self.shared.wait_verified(&peer).await;
        let failed = |reason: String| SendError::Failed {
            peer: peer.to_string(),
            reason,
        };
        // The message goes on one of the operator's lanes, which opens and
        // has the receiver greet a stream before writing on it: a stream
        // reset on arrival carries nothing. A greeted stream can still
        // fail with messages on it unanswered (the connection it ran on
        // closed, a stale stream): the peer may not have read them. Such a
        // message is sent again on the lane's next stream, within the
        // caller's timeout.
        let mut attempt = 0;
        loop {
            let answer = self
                .lanes
                .submit(peer, protocol, bytes.clone())
                .await
                .map_err(failed)?;
            let error = match answer.await {
                Ok(Answer::Status(status)) => {
                    return match Status::from_byte(status) {
                        Some(Status::Accepted) => Ok(()),
                        Some(other) => Err(SendError::Refused {
                            peer: peer.to_string(),
                            reason: other.reason().to_string(),
                        }),
                        None => Err(failed(format!("unknown status {status}"))),
                    }
                }
                Ok(Answer::Failed(reason)) => return Err(failed(reason)),
                Err(_) => "stream failed before an answer".to_string(),
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
}

/// How many times a message whose stream failed before an answer is sent
/// again on a new stream: the pauses add up to about 630 ms. Also the
/// longest pause between two attempts to open a lane's stream.
pub(super) const STREAM_RETRIES: u32 = 6;

/// The pause before sending again for the `attempt`th time: doubling from
/// 10 ms, each drawn between half and one and a half times that, so that
/// the senders of one burst, refused together, do not all come back at
/// once into a queue that is still full.
pub(super) fn retry_pause(attempt: u32, rng: &mut impl Rng) -> Duration {
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
