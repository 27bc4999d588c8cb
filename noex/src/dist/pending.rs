//! Connections before they are authenticated: how many accepted ones are in their
//! handshake, in all and from each source address.
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
//! [`ClusterConfig::connect_timeout`]: super::ClusterConfig::connect_timeout
//! [`ClusterConfig::max_handshakes_per_source`]: super::ClusterConfig::max_handshakes_per_source

use std::collections::HashMap;
use std::net::IpAddr;
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
}
