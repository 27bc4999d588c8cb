//! Spare buffers for large messages.
//!
//! A fresh buffer of tens of megabytes costs its pages' first touches: on the machines
//! noex is measured on, writing a fresh 64 MiB buffer takes about 20 ms where writing one
//! already touched takes 3.5 ms (the allocator returns buffers that large to the system
//! when they are freed). So a node keeps the buffers of its last large messages — the
//! frame it encoded one into, the buffer it reassembled one in — for a while, and the next
//! large message reuses them: at most [`KEEP_AT_MOST`] buffers, each dropped once unused
//! for [`KEEP_FOR`] (by [`expire_until`], whether or not any connection is left).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::FutureExt;

/// Buffers of this capacity or more are kept; smaller ones are cheap to make.
pub(crate) const KEEP_FROM: usize = 1 << 20;
/// At most this many buffers are kept per node.
pub(crate) const KEEP_AT_MOST: usize = 2;
/// A buffer unused for this long is dropped.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(2);

/// A node's spare buffers.
#[derive(Default)]
pub(crate) struct Spares {
    kept: Mutex<Vec<(Vec<u8>, Instant)>>,
    /// Notified when a buffer is kept.
    given: Event,
}

impl Spares {
    fn lock(&self) -> MutexGuard<'_, Vec<(Vec<u8>, Instant)>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty buffer: the smallest spare of at least `capacity`, else the largest spare
    /// (`capacity` 0: the largest), else a new one with room for `capacity`.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let mut buffer = self.take_as_is(capacity);
        buffer.clear();
        buffer
    }

    /// As [`take`](Self::take), but the buffer is as it was given: its bytes, which an
    /// earlier message left, are there to be overwritten without being zeroed first.
    pub(crate) fn take_as_is(&self, capacity: usize) -> Vec<u8> {
        let mut kept = self.lock();
        let fitting = (0..kept.len())
            .filter(|&i| kept[i].0.capacity() >= capacity && capacity > 0)
            .min_by_key(|&i| kept[i].0.capacity());
        let at = fitting.or_else(|| (0..kept.len()).max_by_key(|&i| kept[i].0.capacity()));
        at.map(|i| kept.swap_remove(i).0).unwrap_or_default()
    }

    /// Keeps `buffer` for a later large message if it is large. Returns what is dropped to
    /// make room, to be dropped by the caller (outside its locks: handing pages back takes
    /// time).
    #[must_use]
    pub(crate) fn give(&self, buffer: Vec<u8>) -> Option<Vec<u8>> {
        if buffer.capacity() < KEEP_FROM {
            return Some(buffer);
        }
        let mut kept = self.lock();
        kept.push((buffer, Instant::now()));
        let dropped = match kept.len() <= KEEP_AT_MOST {
            true => None,
            false => {
                let smallest = (0..kept.len()).min_by_key(|&i| kept[i].0.capacity())?;
                Some(kept.swap_remove(smallest).0)
            }
        };
        drop(kept);
        self.given.notify(1);
        dropped
    }

    /// Waits until a buffer is kept.
    async fn kept_any(&self) {
        loop {
            let given = self.given.listen();
            if !self.lock().is_empty() {
                return;
            }
            given.await;
        }
    }

    /// Drops the buffers unused for [`KEEP_FOR`].
    pub(crate) fn expire(&self) {
        let stale: Vec<_> = {
            let mut kept = self.lock();
            if kept.is_empty() {
                return;
            }
            let (stale, fresh) = std::mem::take(&mut *kept)
                .into_iter()
                .partition(|(_, since)| since.elapsed() >= KEEP_FOR);
            *kept = fresh;
            stale
        };
        drop(stale);
    }

    /// The bytes kept.
    pub(crate) fn kept(&self) -> usize {
        self.lock().iter().map(|(b, _)| b.capacity()).sum()
    }
}

/// Drops the buffers of `spares` as they go unused for [`KEEP_FOR`], until `stopped`
/// resolves: a task of the node's, so that a buffer given back once no connection is left
/// (a message's, let go by its process) is not kept for good.
pub(crate) async fn expire_until(spares: Arc<Spares>, stopped: impl Future<Output = ()>) {
    let expiring = async {
        loop {
            spares.kept_any().await;
            smol::Timer::after(KEEP_FOR).await;
            spares.expire();
        }
    };
    expiring.or(stopped).await
}

/// A buffer that goes back to its node's spares when dropped (see [`Spares`]).
pub(crate) struct Pooled {
    bytes: Vec<u8>,
    spares: Weak<Spares>,
}

impl Pooled {
    pub(crate) fn new(bytes: Vec<u8>, spares: &Arc<Spares>) -> Self {
        Pooled {
            bytes,
            spares: Arc::downgrade(spares),
        }
    }

    /// A buffer that is dropped as any other.
    pub(crate) fn unpooled(bytes: Vec<u8>) -> Self {
        Pooled {
            bytes,
            spares: Weak::new(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(spares) = self.spares.upgrade() {
            drop(spares.give(std::mem::take(&mut self.bytes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_buffer_is_reused_and_a_small_one_is_not_kept() {
        let spares = Spares::default();
        let large = Vec::with_capacity(4 * KEEP_FROM);
        let address = large.as_ptr();
        assert!(spares.give(large).is_none());
        assert!(spares.give(Vec::with_capacity(16)).is_some());
        let again = spares.take(2 * KEEP_FROM);
        assert_eq!(again.as_ptr(), address, "the same buffer");
        assert!(again.is_empty());
        assert_eq!(spares.kept(), 0);
        // None left: a new one.
        assert_eq!(spares.take(KEEP_FROM).capacity(), 0);
    }

    #[test]
    fn at_most_two_are_kept_the_largest_ones() {
        let spares = Spares::default();
        for size in [2, 3, 1] {
            let dropped = spares.give(Vec::with_capacity(size * KEEP_FROM));
            assert_eq!(dropped.is_some(), size == 1);
        }
        assert_eq!(spares.kept(), 5 * KEEP_FROM);
        // The smallest that fits.
        assert_eq!(spares.take(KEEP_FROM).capacity(), 2 * KEEP_FROM);
    }

    #[test]
    fn a_pooled_buffer_returns_when_dropped_unless_its_node_is_gone() {
        let spares = Arc::new(Spares::default());
        drop(Pooled::new(Vec::with_capacity(KEEP_FROM), &spares));
        assert_eq!(spares.kept(), KEEP_FROM);
        let orphan = Pooled::new(Vec::with_capacity(KEEP_FROM), &spares);
        drop(spares);
        drop(orphan);
    }
}
