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
    // The label takes our own version or `other`, never the peer's text:
    // two series per operator at most, whatever it reports.
    let same = version == shared.version;
    for (label, current) in [(shared.version.as_str(), same), ("other", !same)] {
        shared
            .metrics
            .peer_version
            .get_or_create(&VersionLabel {
                peer: peer.to_string(),
                version: label.to_string(),
            })
            .set(i64::from(current));
    }
    if version != shared.version {
        tracing::warn!(%peer, theirs = %version, ours = %shared.version, "operator runs another version");
    }
    if offset_ms.abs() > 500.0 {
        tracing::warn!(%peer, offset_ms, "operator's clock differs from ours by more than 0.5 s");
    }
    shared.peers().entry(peer).or_default().version = Some(version);
    Verdict::Verified
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use prometheus_client::registry::Registry;

    #[test]
    fn a_peer_cannot_grow_the_version_metric() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let peer = PeerId::random();
        let shared = Shared::new(
            PeerId::random(),
            [peer].into_iter().collect(),
            Default::default(),
            [1; 32],
            "phalanx/0.1.0".into(),
            metrics,
        );
        for i in 0..100 {
            let theirs = PeerInfo {
                version: format!("phalanx/{i}"),
                lock_hash: [1; 32],
                unix_millis: unix_millis(),
            };
            assert_eq!(
                judge(&shared, peer, &theirs, Duration::ZERO),
                Verdict::Verified
            );
        }
        let same = PeerInfo {
            version: "phalanx/0.1.0".into(),
            lock_hash: [1; 32],
            unix_millis: unix_millis(),
        };
        judge(&shared, peer, &same, Duration::ZERO);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("phalanx_p2p_peer_version{"))
            .collect();
        assert!(series.len() <= 2, "{} series", series.len());
        let current: Vec<&&str> = series.iter().filter(|l| l.ends_with(" 1")).collect();
        assert_eq!(current.len(), 1, "{series:?}");
        assert!(
            current[0].contains("version=\"phalanx/0.1.0\""),
            "{series:?}"
        );
    }
}
