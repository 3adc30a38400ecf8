//! How many inbound TCP handshakes one address may start: a token bucket
//! per remote IP (per /64 for IPv6), checked before the transport's
//! handshake runs.
//!
//! Who is dialling is known only once the encrypted handshake (a
//! Diffie–Hellman exchange and a signature check) has run, so a peer that
//! the gate refuses, or that dials again at once after every refusal,
//! would otherwise make this node do that work at whatever rate it likes.
//! Each remote address may start [`BURST`] handshakes at once and one more
//! every [`REFILL`]: an honest operator, which dials each node once over
//! TCP and again after a lost connection, stays far below.
//!
//! Only TCP is counted. A TCP connection's source address is proven by
//! its three-way handshake; a QUIC packet's is not, and the QUIC transport
//! has run its own handshake before this node is asked, so counting QUIC
//! would let anyone empty an honest operator's bucket with spoofed
//! packets while saving nothing. Relayed connections are the relay's to
//! limit.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use tokio::time::Instant;

/// Handshakes one address may start at once.
pub(crate) const BURST: f64 = 16.0;
/// The time in which an address gets back one handshake.
pub(crate) const REFILL: Duration = Duration::from_secs(1);
/// Addresses with a bucket of their own at most; beyond, the addresses
/// without one share a single bucket (so that filling the table gains an
/// attacker nothing).
const ADDRESSES: usize = 4096;

/// Where a handshake is counted: an IPv4 address, an IPv6 /64 (one host
/// has a whole /64 to choose from), or the bucket shared by addresses the
/// table has no room for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Address(IpAddr),
    Overflow,
}

/// The buckets of the addresses that dialled recently.
#[derive(Debug, Default)]
pub(crate) struct Handshakes {
    buckets: BTreeMap<Source, (f64, Instant)>,
}

impl Handshakes {
    /// Takes one handshake of `remote`'s address; false if its bucket is
    /// empty.
    pub(crate) fn admit(&mut self, remote: &Multiaddr, now: Instant) -> bool {
        let Some(ip) = tcp_source(remote) else {
            return true;
        };
        let mut source = Source::Address(ip);
        if !self.buckets.contains_key(&source) && self.buckets.len() >= ADDRESSES {
            // Addresses whose bucket is full again are forgotten.
            self.buckets
                .retain(|_, (left, at)| refilled(*left, *at, now) < BURST);
            if self.buckets.len() >= ADDRESSES {
                source = Source::Overflow;
            }
        }
        let (left, at) = self.buckets.entry(source).or_insert((BURST, now));
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

/// The address a direct TCP connection comes from, IPv6 cut to its /64
/// and an IPv4-mapped IPv6 address read as IPv4 (none for QUIC or a
/// relayed connection).
fn tcp_source(address: &Multiaddr) -> Option<IpAddr> {
    if address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
        || !address.iter().any(|p| matches!(p, Protocol::Tcp(_)))
    {
        return None;
    }
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(ip) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        }),
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
        // Another port of the same address shares its bucket, and so does
        // the address written as IPv4-mapped IPv6.
        assert!(!handshakes.admit(&address("/ip4/192.0.2.7/tcp/9"), start));
        assert!(!handshakes.admit(&address("/ip6/::ffff:192.0.2.7/tcp/9"), start));
        // QUIC is not counted: its source address is not proven.
        assert!(handshakes.admit(&address("/ip4/192.0.2.7/udp/9/quic-v1"), start));
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

    /// Every address of one IPv6 /64 shares a bucket.
    #[test]
    fn an_ipv6_host_cannot_pick_fresh_addresses() {
        let mut handshakes = Handshakes::default();
        let start = Instant::now();
        let admitted = (0..100u32)
            .filter(|i| handshakes.admit(&address(&format!("/ip6/2001:db8::{i:x}/tcp/1")), start))
            .count();
        assert_eq!(admitted, BURST as usize);
        assert!(handshakes.admit(&address("/ip6/2001:db8:0:1::1/tcp/1"), start));
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
        // Still within the refill: nothing is forgotten, and addresses
        // without a bucket share one, so a full table is no way around it.
        let newcomers = (0..100u32)
            .filter(|i| {
                let ip = std::net::Ipv4Addr::from(0xc000_0200 + i);
                handshakes.admit(&address(&format!("/ip4/{ip}/tcp/1")), start)
            })
            .count();
        assert_eq!(newcomers, BURST as usize);
        assert_eq!(handshakes.buckets.len(), ADDRESSES + 1);
        // A refill later every address's bucket is full again and
        // forgotten (the shared one, emptied, is not yet).
        assert!(handshakes.admit(&address("/ip4/192.0.2.1/tcp/1"), start + REFILL));
        assert_eq!(handshakes.buckets.len(), 2);
    }
}
