//! Verifying an operator's cluster: on each new connection the two sides
//! exchange `peerinfo`; the verdict marks the peer verified, or refuses
//! and disconnects a peer that runs another cluster lock.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Command;
use crate::gate::Shared;
use crate::peerinfo::{self, Verdict};

pub(super) async fn exchange_peerinfo(
    shared: Arc<Shared>,
    mut control: libp2p_stream::Control,
    peer: PeerId,
    commands: mpsc::UnboundedSender<Command>,
) {
    // Retried: the first stream can be cancelled when a duplicate
    // connection (both operators dialled) is closed under it.
    for attempt in 1..=4u64 {
        if shared.is_verified(&peer) {
            return;
        }
        let result = match control.open_stream(peer, peerinfo::PROTOCOL).await {
            Ok(stream) => tokio::time::timeout(
                Duration::from_secs(10),
                peerinfo::initiate(&shared, peer, stream),
            )
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(format!("{e:?}")),
        };
        match result {
            Ok(verdict) => {
                apply_verdict(&shared, peer, verdict, &commands);
                return;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, attempt, "peerinfo exchange failed");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
        }
    }
}

pub(super) async fn peerinfo_loop(
    shared: Arc<Shared>,
    mut incoming: libp2p_stream::IncomingStreams,
    commands: mpsc::UnboundedSender<Command>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let shared = shared.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            if !shared.operators.contains(&peer) {
                return;
            }
            let result = tokio::time::timeout(
                Duration::from_secs(10),
                peerinfo::respond(&shared, peer, stream),
            )
            .await;
            if let Ok(Ok(verdict)) = result {
                apply_verdict(&shared, peer, verdict, &commands);
            }
        });
    }
}

fn apply_verdict(
    shared: &Shared,
    peer: PeerId,
    verdict: Verdict,
    commands: &mpsc::UnboundedSender<Command>,
) {
    match verdict {
        Verdict::Verified => {
            if !shared.is_verified(&peer) {
                tracing::info!(%peer, "operator verified: same cluster lock");
            }
            shared.set_verified(peer);
        }
        Verdict::Mismatch => {
            tracing::warn!(%peer, "operator runs another cluster lock: disconnecting");
            shared
                .metrics
                .refused_peers
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: "lock_mismatch".to_string(),
                })
                .inc();
            shared.deny(peer, Instant::now() + peerinfo::MISMATCH_BAN);
            // Disconnect after a moment, so the peer's own exchange can
            // finish and its operator sees the mismatch too.
            let commands = commands.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = commands.send(Command::Disconnect(peer));
            });
        }
    }
}
