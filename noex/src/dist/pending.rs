//! Connections before they are authenticated: how many accepted ones are in their
//! handshake, in all and from each source address; and the hellos of this node's own
//! dials in flight, by which it recognises a dial that reached this node itself.
//!
//! # Bounds
//!
//! A handshake is work for a peer nobody has authenticated yet (over TLS, a key exchange
//! and a signature), and a connection in its handshake holds a socket until it ends or
//! [`ClusterConfig::connect_timeout`] passes. At most [`MAX_INBOUND_HANDSHAKES`] accepted
//! connections are in their handshake at once. While there is room, any connection is
//! let in, so that many nodes of one host joining at once are not turned away. Once the
//! handshakes under way fill it, a connection from a source address holding fewer of
//! them than another source closes the oldest handshake of the source holding the most,
//! and takes its place; any other is closed at once. So one source that opens silent
//! connections (and opens them again as they time out) holds no slot another source
//! needs: the other nodes still join. Connections that finished their handshake do not
//! count.
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

use std::collections::{HashMap, VecDeque};
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
    /// Names each handshake, for its end to find it.
    next: u64,
    /// By source address, oldest first; only addresses with a handshake under way. Each
    /// handshake's sender: dropped, it closes the handshake's connection.
    by_source: HashMap<IpAddr, VecDeque<(u64, async_channel::Sender<()>)>>,
}

/// An accepted connection was not let begin its handshake: [`MAX_INBOUND_HANDSHAKES`]
/// are under way, no source holding more of them than its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crowded;

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
    /// lives. If [`MAX_INBOUND_HANDSHAKES`] are under way: the oldest handshake of the
    /// source holding the most is closed for it (see [`InboundHandshake::evicted`]) if
    /// that source holds more than `from` would, else `Err`.
    pub(crate) fn begin_handshake(
        self: &Arc<Self>,
        from: IpAddr,
    ) -> Result<InboundHandshake, Crowded> {
        let source = from.to_canonical();
        let mut handshakes = lock(&self.handshakes);
        if handshakes.all >= MAX_INBOUND_HANDSHAKES {
            let mine = handshakes.by_source.get(&source).map_or(0, VecDeque::len);
            let (&most, queue) = handshakes
                .by_source
                .iter_mut()
                .max_by_key(|(_, queue)| queue.len())
                .ok_or(Crowded)?;
            if queue.len() <= mine + 1 {
                return Err(Crowded);
            }
            // At least two, so some stay.
            queue.pop_front();
            handshakes.all -= 1;
            tracing::debug!(source = %most, "closed a handshake of the source holding the most");
        }
        let serial = handshakes.next;
        handshakes.next += 1;
        let (keep, evicted) = async_channel::bounded(1);
        let queue = handshakes.by_source.entry(source).or_default();
        queue.push_back((serial, keep));
        handshakes.all += 1;
        Ok(InboundHandshake {
            inbound: self.clone(),
            source,
            serial,
            evicted,
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
    serial: u64,
    evicted: async_channel::Receiver<()>,
}

impl InboundHandshake {
    /// Resolves if the handshake was closed for a connection from a source holding fewer
    /// (see the module docs): its connection is to be closed.
    pub(crate) async fn evicted(&self) {
        // Nothing is ever sent: the sender dropped is the word.
        let _ = self.evicted.recv().await;
    }
}

impl Drop for InboundHandshake {
    fn drop(&mut self) {
        let mut handshakes = lock(&self.inbound.handshakes);
        let Some(queue) = handshakes.by_source.get_mut(&self.source) else {
            return;
        };
        // Not there if it was closed for another (and no longer counted).
        let Some(at) = queue.iter().position(|(serial, _)| *serial == self.serial) else {
            return;
        };
        queue.remove(at);
        if queue.is_empty() {
            handshakes.by_source.remove(&self.source);
        }
        handshakes.all -= 1;
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

    fn is_evicted(handshake: &InboundHandshake) -> bool {
        futures_lite::future::block_on(futures_lite::future::poll_once(handshake.evicted()))
            .is_some()
    }

    #[test]
    fn a_full_table_makes_room_only_by_the_source_holding_the_most() {
        let inbound = Arc::new(Inbound::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        // While there is room, one source may take it all.
        let from_a: Vec<_> = (0..MAX_INBOUND_HANDSHAKES)
            .map(|_| inbound.begin_handshake(a).unwrap())
            .collect();
        // Full: a's next is turned away (as the same source from a dual-stack listener).
        assert_eq!(inbound.begin_handshake(a).err(), Some(Crowded));
        let mapped = IpAddr::V6("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(inbound.begin_handshake(mapped).err(), Some(Crowded));
        // Another source takes the place of a's oldest handshake, which is told to end.
        let from_b = inbound.begin_handshake(b).unwrap();
        assert!(is_evicted(&from_a[0]));
        assert!(from_a[1..].iter().all(|h| !is_evicted(h)));
        assert!(!is_evicted(&from_b));
        assert_eq!(lock(&inbound.handshakes).all, MAX_INBOUND_HANDSHAKES);
        // And so on, while a holds more than the newcomer would.
        let more_b: Vec<_> = (0..30)
            .map(|_| inbound.begin_handshake(b).unwrap())
            .collect();
        let from_c = inbound.begin_handshake(c).unwrap();
        assert_eq!(from_a.iter().filter(|h| is_evicted(h)).count(), 32);
        // a holds 32, b 31: b's next would hold as many as a, so it is turned away.
        assert_eq!(inbound.begin_handshake(b).err(), Some(Crowded));
        drop(from_a);
        drop((from_b, more_b, from_c));
        assert!(lock(&inbound.handshakes).by_source.is_empty());
        assert_eq!(lock(&inbound.handshakes).all, 0);
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
