//! The `peerinfo` exchange on every new connection: cluster lock hash,
//! software version and clock, so a peer of another cluster is dropped and
//! clock offsets and version mismatches between operators are visible.

use futures::AsyncWriteExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

use crate::codec::{self, CodecError};
use crate::gate::Shared;
use crate::metrics::{PeerLabel, VersionLabel};

/// The protocol id.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/phalanx/peerinfo/1.0.0");
/// Limit on the encoded record.
const LIMIT: usize = 512;
/// How long a peer of another cluster stays refused.
pub(crate) const MISMATCH_BAN: Duration = Duration::from_secs(60);

/// What each side tells the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The software version, e.g. `phalanx/0.1.0`.
    pub version: String,
    /// The hash of the cluster lock the node runs.
    pub lock_hash: [u8; 32],
    /// The sender's clock, in milliseconds since the Unix epoch.
    pub unix_millis: u64,
}

/// What came of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Same cluster.
    Verified,
    /// Another cluster: drop and refuse the peer for a while.
    Mismatch,
}

#[expect(
    clippy::disallowed_methods,
    reason = "peerinfo reports the wall clock to peers: this is the runtime edge"
)]
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ours(shared: &Shared) -> PeerInfo {
    PeerInfo {
        version: shared.version.clone(),
        lock_hash: shared.lock_hash,
        unix_millis: unix_millis(),
    }
}

/// Runs the exchange as the side that opened the stream.
pub(crate) async fn initiate(
    shared: &Shared,
    peer: PeerId,
    mut stream: Stream,
) -> Result<Verdict, CodecError> {
    let sent_at = Instant::now();
    codec::write_frame(&mut stream, &codec::encode(&ours(shared), LIMIT)?).await?;
    let theirs: PeerInfo = codec::decode(&codec::read_frame(&mut stream, LIMIT).await?, LIMIT)?;
    let _ = stream.close().await;
    Ok(judge(shared, peer, &theirs, sent_at.elapsed()))
}

/// Runs the exchange as the side that accepted the stream.
pub(crate) async fn respond(
    shared: &Shared,
    peer: PeerId,
    mut stream: Stream,
) -> Result<Verdict, CodecError> {
    let theirs: PeerInfo = codec::decode(&codec::read_frame(&mut stream, LIMIT).await?, LIMIT)?;
    codec::write_frame(&mut stream, &codec::encode(&ours(shared), LIMIT)?).await?;
    let _ = stream.close().await;
    Ok(judge(shared, peer, &theirs, Duration::ZERO))
}

fn judge(shared: &Shared, peer: PeerId, theirs: &PeerInfo, round_trip: Duration) -> Verdict {
    if theirs.lock_hash != shared.lock_hash {
        return Verdict::Mismatch;
    }
    let offset_ms =
        theirs.unix_millis as f64 - unix_millis() as f64 + round_trip.as_secs_f64() * 500.0;
    shared
        .metrics
        .clock_offset
        .get_or_create(&PeerLabel {
            peer: peer.to_string(),
        })
        .set(offset_ms / 1000.0);
    let version: String = theirs.version.chars().take(64).collect();
    shared
        .metrics
        .peer_version
        .get_or_create(&VersionLabel {
            peer: peer.to_string(),
            version: version.clone(),
        })
        .set(1);
    if version != shared.version {
        tracing::warn!(%peer, theirs = %version, ours = %shared.version, "operator runs another version");
    }
    if offset_ms.abs() > 500.0 {
        tracing::warn!(%peer, offset_ms, "operator's clock differs from ours by more than 0.5 s");
    }
    shared.peers().entry(peer).or_default().version = Some(version);
    Verdict::Verified
}
