//! Connections before they are authenticated: how many accepted ones are in their
//! handshake, in all and from each source address; and the hellos of this node's own
//! dials in flight, by which it recognises a dial that reached this node itself.
//!
//! # Bounds
//!
//! A handshake is work for a peer nobody has authenticated yet (over TLS, a key exchange
//! and a signature), and a connection in its handshake holds a socket until it ends or
//! [`ClusterConfig::connect_timeout`] passes. At most [`MAX_INBOUND_HANDSHAKES`] accepted
//! connections are in their handshake at once, and at most
//! [`ClusterConfig::max_handshakes_per_source`] of them from one IP address; a
//! connection past either bound is closed at once. The second bound is what keeps one
//! source that opens silent connections (and opens them again as they time out) from
//! holding every slot, so that the other nodes can still join: it takes only its own
//! share. Connections that finished their handshake do not count, so any number of nodes
//! on one host can be connected; they only join a few at a time.
//!
//! # A dial that reached this node itself
//!
//! A node may be given its own address under another name (a seed list shared by every
//! node names each, by host names; a DNS name lists every node). Its dial's hello then
//! reaches its own listener, which refuses it (`DuplicateNode`: the hello claims the
//! node's id), and the dial has no use going on. But the refusal alone proves nothing:
//! anyone who answers at a dialled address can send it, before any authentication, and a
//! dial that took it for "this is me" would leave a seed undialled until a restart. So
//! a dial stops for that reason only on what this node saw itself: its listener received
//! the very hello the dial sent (the same fresh nonce) over a connection that comes from
//! the dial's own socket (the accepted connection's source is the dial's local address).
//! Something at the dialled address that relays the hello to this node's listener comes
//! from an address of its own, and is not taken for this node. Another `DuplicateNode`
//! refusal is retried as a failed connection is (see `dial_loop`). A dial that reaches
//! this node through an address translation (a NAT that loops back, a proxy) is not
//! recognised either, and is retried so, refused by this node each time.
//!
//! [`ClusterConfig::connect_timeout`]: super::ClusterConfig::connect_timeout
//! [`ClusterConfig::max_handshakes_per_source`]: super::ClusterConfig::max_handshakes_per_source

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::refused::InboundReports;

/// Handshakes of accepted connections under way at most; more connections are closed at
/// once (see the module docs).
pub(crate) const MAX_INBOUND_HANDSHAKES: usize = 64;

/// What a node keeps about connections before they are authenticated.
#[derive(Default)]
pub(crate) struct Inbound {
    /// When each (source address, reason) of a refusal was last reported.
    pub(super) reports: InboundReports,
    /// Handshakes of accepted connections under way.
    handshakes: Mutex<Handshakes>,
    /// The hellos of this node's dials in their handshake, by nonce.
    hellos: Mutex<HashMap<[u8; 32], OwnHello>>,
}

#[derive(Default)]
struct Handshakes {
    all: usize,
    /// By source address; only addresses with a handshake under way.
    by_source: HashMap<IpAddr, usize>,
}

/// Why an accepted connection was not let begin its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crowded {
    /// [`MAX_INBOUND_HANDSHAKES`] are under way.
    All,
    /// As many as allowed from its source address are under way.
    Source,
}

/// A hello this node sent on a dial, and whether its own listener received it.
struct OwnHello {
    /// The dial's local address: where a connection that is the dial comes from.
    from: (IpAddr, u16),
    seen: bool,
}

/// An address as it compares with another: an IPv4 address mapped into IPv6 (as a
/// dual-stack listener sees IPv4 peers) as the IPv4 one.
fn canonical(address: SocketAddr) -> (IpAddr, u16) {
    (address.ip().to_canonical(), address.port())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inbound {
    /// Counts the handshake of a connection accepted from `from` while the returned guard
    /// lives; an error if [`MAX_INBOUND_HANDSHAKES`] are under way, or `per_source` from
    /// that address.
    pub(crate) fn begin_handshake(
        self: &Arc<Self>,
        from: IpAddr,
        per_source: usize,
    ) -> Result<InboundHandshake, Crowded> {
        let source = from.to_canonical();
        let mut handshakes = lock(&self.handshakes);
        if handshakes.all >= MAX_INBOUND_HANDSHAKES {
            return Err(Crowded::All);
        }
        let count = handshakes.by_source.entry(source).or_default();
        if *count >= per_source {
            if *count == 0 {
                handshakes.by_source.remove(&source);
            }
            return Err(Crowded::Source);
        }
        *count += 1;
        handshakes.all += 1;
        Ok(InboundHandshake {
            inbound: self.clone(),
            source,
        })
    }

    /// Records the hello with `nonce` of a dial whose socket's local address is `from`,
    /// until the returned guard is dropped.
    pub(crate) fn dialling(self: &Arc<Self>, nonce: [u8; 32], from: SocketAddr) -> Dialling {
        let hello = OwnHello {
            from: canonical(from),
            seen: false,
        };
        lock(&self.hellos).insert(nonce, hello);
        Dialling {
            inbound: self.clone(),
            nonce,
        }
    }

    /// A hello that claims this node's id, with `nonce`, came over a connection from
    /// `from`: `true` (and noted for the dial) if it is the hello of one of this node's
    /// dials, over that dial's own connection.
    pub(crate) fn own_hello(&self, nonce: &[u8; 32], from: SocketAddr) -> bool {
        let mut hellos = lock(&self.hellos);
        match hellos.get_mut(nonce) {
            Some(hello) if hello.from == canonical(from) => {
                hello.seen = true;
                true
            }
            _ => false,
        }
    }
}

/// An accepted connection's handshake, counted until dropped.
pub(crate) struct InboundHandshake {
    inbound: Arc<Inbound>,
    source: IpAddr,
}

impl Drop for InboundHandshake {
    fn drop(&mut self) {
        let mut handshakes = lock(&self.inbound.handshakes);
        handshakes.all -= 1;
        if let Some(count) = handshakes.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                handshakes.by_source.remove(&self.source);
            }
        }
    }
}

/// A dial's hello, recorded until dropped.
pub(crate) struct Dialling {
    inbound: Arc<Inbound>,
    nonce: [u8; 32],
}

impl Dialling {
    /// `true` if this node's own listener received the hello over the dial's connection:
    /// the dial reached this node itself.
    pub(crate) fn reached_itself(&self) -> bool {
        lock(&self.inbound.hellos)
            .get(&self.nonce)
            .is_some_and(|hello| hello.seen)
    }
}

impl Drop for Dialling {
    fn drop(&mut self) {
        lock(&self.inbound.hellos).remove(&self.nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_takes_only_its_share_of_the_handshakes() {
        let inbound = Arc::new(Inbound::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| inbound.begin_handshake(a, 3).unwrap())
            .collect();
        assert_eq!(inbound.begin_handshake(a, 3).err(), Some(Crowded::Source));
        // The same source, as a dual-stack listener sees it.
        let mapped = IpAddr::V6("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(
            inbound.begin_handshake(mapped, 3).err(),
            Some(Crowded::Source)
        );
        let other = inbound.begin_handshake(b, 3).unwrap();
        drop(held);
        drop(other);
        assert!(lock(&inbound.handshakes).by_source.is_empty());
        assert_eq!(lock(&inbound.handshakes).all, 0);
        // The bound in all holds whatever the sources.
        let held: Vec<_> = (0..MAX_INBOUND_HANDSHAKES)
            .map(|i| {
                let source = IpAddr::from([10, 1, (i / 256) as u8, i as u8]);
                inbound.begin_handshake(source, 1).unwrap()
            })
            .collect();
        assert_eq!(inbound.begin_handshake(b, 1).err(), Some(Crowded::All));
        drop(held);
    }

    #[test]
    fn a_hello_is_the_dials_own_only_with_its_nonce_and_from_its_socket() {
        let inbound = Arc::new(Inbound::default());
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let dial = inbound.dialling([7; 32], from);
        // Another nonce, or the right one relayed from elsewhere: not this node's.
        assert!(!inbound.own_hello(&[8; 32], from));
        assert!(!inbound.own_hello(&[7; 32], "127.0.0.1:40001".parse().unwrap()));
        assert!(!dial.reached_itself());
        assert!(inbound.own_hello(&[7; 32], "[::ffff:127.0.0.1]:40000".parse().unwrap()));
        assert!(dial.reached_itself());
        drop(dial);
        assert!(lock(&inbound.hellos).is_empty());
        assert!(!inbound.own_hello(&[7; 32], from));
    }
}
