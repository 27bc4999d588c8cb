//! The node-wide bound on memory held in unfinished messages.
//!
//! A large message arrives in fragments, each naming the whole message's size. Before the
//! reader of a connection takes the first fragment of a message, it reserves that many
//! bytes here; the reservation lasts until the message is whole and handed to its process
//! (or the connection ends). When the bound has no room, the reader waits before taking
//! the fragment: it reads nothing more from that connection, acknowledges nothing, and the
//! sender's fragment window holds the rest back — the pressure stays in the sender.
//!
//! Reserving a whole message at its first fragment means every message begun is finished:
//! two connections can never each hold half of the bound and wait for the other.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use event_listener::Event;

/// The bytes of unfinished messages a node may hold, across all its connections.
pub(crate) struct Reassembly {
    limit: usize,
    held: Mutex<usize>,
    /// Notified when bytes are released.
    released: Event,
}

/// Room for one message, held until dropped.
pub(crate) struct Reserved {
    bytes: usize,
    pool: Arc<Reassembly>,
}

impl Reserved {
    /// The bytes reserved.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        *self.pool.lock() -= self.bytes;
        self.pool.released.notify(usize::MAX);
    }
}

impl Reassembly {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Reassembly {
            limit,
            held: Mutex::new(0),
            released: Event::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes` if the bound has room for them now. (`bytes` must not exceed the
    /// bound, which is at least the largest message a node accepts.)
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reserved> {
        let mut held = self.lock();
        if held
            .checked_add(bytes)
            .is_none_or(|total| total > self.limit)
        {
            return None;
        }
        *held += bytes;
        Some(Reserved {
            bytes,
            pool: self.clone(),
        })
    }

    /// Reserves `bytes`, waiting for others to release room.
    pub(crate) async fn reserve(self: &Arc<Self>, bytes: usize) -> Reserved {
        loop {
            let listener = self.released.listen();
            if let Some(reserved) = self.try_reserve(bytes) {
                return reserved;
            }
            listener.await;
        }
    }

    /// The bytes reserved now.
    #[cfg(test)]
    fn held(&self) -> usize {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_past_an_unbounded_pool_is_refused_not_overflowed() {
        let pool = Reassembly::new(usize::MAX);
        let _held = pool.try_reserve(10).unwrap();
        assert!(pool.try_reserve(usize::MAX).is_none());
    }

    #[test]
    fn reservations_stay_within_the_bound_and_a_waiter_gets_released_room() {
        let pool = Reassembly::new(100);
        let first = pool.try_reserve(60).unwrap();
        assert!(pool.try_reserve(50).is_none(), "over the bound");
        let second = pool.try_reserve(40).unwrap();
        assert_eq!(pool.held(), 100);
        let waiting = smol::spawn({
            let pool = pool.clone();
            async move { pool.reserve(50).await.bytes() }
        });
        drop(second);
        assert!(pool.try_reserve(50).is_none(), "40 free is not 50");
        drop(first);
        assert_eq!(smol::block_on(waiting), 50);
        assert_eq!(pool.held(), 0, "released with the waiter's reservation");
    }
}
