//! Free ports on 127.0.0.1 for the nodes, mocks and ceremonies of a local
//! cluster.
//!
//! A port is free when the system hands it out for binding; it stays free
//! only until someone binds it, and the caller binds it later. So that two
//! parts of one process (the nodes of one cluster, or two tests running
//! at once) are never given the same port, every port handed out is
//! reserved for the rest of the process and never handed out again.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Mutex;

/// Every port handed out in this process.
static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How many ports the system may offer that are already reserved before
/// giving up.
const ATTEMPTS: usize = 100;

fn reserved() -> std::sync::MutexGuard<'static, BTreeSet<u16>> {
    RESERVED.lock().unwrap_or_else(|p| p.into_inner())
}

fn exhausted(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("no free {what} on 127.0.0.1"),
    )
}

/// Reserves the first port `offer` gives that is not reserved yet.
fn reserve(what: &str, mut offer: impl FnMut() -> io::Result<u16>) -> io::Result<u16> {
    for _ in 0..ATTEMPTS {
        let port = offer()?;
        if reserved().insert(port) {
            return Ok(port);
        }
    }
    Err(exhausted(what))
}

/// A free TCP port.
pub fn tcp() -> io::Result<u16> {
    reserve("TCP port", || {
        Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port())
    })
}

/// A free UDP port.
pub fn udp() -> io::Result<u16> {
    reserve("UDP port", || {
        Ok(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port())
    })
}

/// A free TCP port's socket address on 127.0.0.1.
pub fn loopback_tcp() -> io::Result<SocketAddr> {
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, tcp()?)))
}

/// `len` consecutive free TCP ports, returning the first: for tools that
/// number their nodes' ports from a base (`phalanx create cluster
/// --p2p-tcp-port`).
pub fn tcp_block(len: u16) -> io::Result<u16> {
    for _ in 0..ATTEMPTS {
        let base = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let Some(end) = base.checked_add(len) else {
            continue;
        };
        let mut reserved = reserved();
        let free = (base..end).all(|port| {
            !reserved.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        if free {
            reserved.extend(base..end);
            return Ok(base);
        }
    }
    Err(exhausted("block of TCP ports"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_port_is_handed_out_twice() {
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            assert!(seen.insert(tcp().expect("a TCP port")));
            assert!(seen.insert(udp().expect("a UDP port")));
        }
        let base = tcp_block(4).expect("a block");
        for port in base..base + 4 {
            assert!(seen.insert(port), "{port} handed out twice");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("free");
        }
        let address = loopback_tcp().expect("an address");
        assert!(address.ip().is_loopback());
        assert!(seen.insert(address.port()));
    }
}
