//! How many inbound handshakes one address may start: a token bucket per
//! remote IP, checked before the transport's handshake runs.
//!
//! Who is dialling is known only once the encrypted handshake (a
//! Diffie–Hellman exchange and a signature check) has run, so a peer that
//! the gate refuses, or that dials again at once after every refusal,
//! would otherwise make this node do that work at whatever rate it likes.
//! Each remote IP may start [`BURST`] handshakes at once and one more
//! every [`REFILL`]: an honest operator, which dials each node over TCP
//! and QUIC and again after a lost connection, stays far below. Relayed
//! connections are not counted here (they share the relay's address, and
//! the relay limits its own circuits).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use tokio::time::Instant;

/// Handshakes one address may start at once.
pub(crate) const BURST: f64 = 16.0;
/// The time in which an address gets back one handshake.
pub(crate) const REFILL: Duration = Duration::from_secs(1);
/// Addresses tracked at most; beyond, an untracked address is let through
/// (a limit per address cannot stop many addresses, and must not lock out
/// an honest one because strangers filled the table).
const ADDRESSES: usize = 4096;

/// The buckets of the addresses that dialled recently.
#[derive(Debug, Default)]
pub(crate) struct Handshakes {
    buckets: BTreeMap<IpAddr, (f64, Instant)>,
}

impl Handshakes {
    /// Takes one handshake of `remote`'s address; false if its bucket is
    /// empty.
    pub(crate) fn admit(&mut self, remote: &Multiaddr, now: Instant) -> bool {
        let Some(ip) = direct_ip(remote) else {
            return true;
        };
        if self.buckets.len() >= ADDRESSES && !self.buckets.contains_key(&ip) {
            // Addresses whose bucket is full again are forgotten.
            self.buckets
                .retain(|_, (left, at)| refilled(*left, *at, now) < BURST);
            if self.buckets.len() >= ADDRESSES {
                return true;
            }
        }
        let (left, at) = self.buckets.entry(ip).or_insert((BURST, now));
        *left = refilled(*left, *at, now);
        *at = now;
        if *left < 1.0 {
            return false;
        }
        *left -= 1.0;
        true
    }
}

fn refilled(left: f64, at: Instant, now: Instant) -> f64 {
    let back = now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64();
    (left + back).min(BURST)
}

/// The remote IP of a direct connection (none for a relayed one).
fn direct_ip(address: &Multiaddr) -> Option<IpAddr> {
    if address.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Multiaddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_address_starts_a_burst_then_one_handshake_a_refill() {
        let mut handshakes = Handshakes::default();
        let start = Instant::now();
        let from = address("/ip4/192.0.2.7/tcp/40001");
        let admitted = (0..100).filter(|_| handshakes.admit(&from, start)).count();
        assert_eq!(admitted, BURST as usize);
        // Another port of the same address shares its bucket.
        assert!(!handshakes.admit(&address("/ip4/192.0.2.7/udp/9/quic-v1"), start));
        // Another address has its own.
        assert!(handshakes.admit(&address("/ip4/192.0.2.8/tcp/40001"), start));
        // One comes back each refill period.
        let later = start + REFILL;
        assert!(handshakes.admit(&from, later));
        assert!(!handshakes.admit(&from, later));
        // Relayed connections are the relay's to limit.
        let relayed = address(
            "/ip4/192.0.2.7/tcp/4001/p2p/16Uiu2HAm1W1PYqSwdLn3K33ZS45pvoiUkduyigCkCH7E1zKG5RaP/p2p-circuit",
        );
        assert!(handshakes.admit(&relayed, later));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_full_buckets() {
        let mut handshakes = Handshakes::default();
        let start = Instant::now();
        for i in 0..ADDRESSES as u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            assert!(handshakes.admit(&address(&format!("/ip4/{ip}/tcp/1")), start));
        }
        assert_eq!(handshakes.buckets.len(), ADDRESSES);
        // Still within the refill: nothing forgotten, the newcomer let through untracked.
        assert!(handshakes.admit(&address("/ip4/192.0.2.1/tcp/1"), start));
        assert_eq!(handshakes.buckets.len(), ADDRESSES);
        // A refill later every bucket is full again and forgotten.
        assert!(handshakes.admit(&address("/ip4/192.0.2.1/tcp/1"), start + REFILL));
        assert_eq!(handshakes.buckets.len(), 1);
    }
}
