//! Waiting for a process to work through its mailbox: how a connection's reader holds a
//! peer back while a local process it delivers to is behind (see `dist::inbound`).
//!
//! The process reports each time it has finished the messages it took from its mailbox —
//! about to take more, or to wait for more — which costs it one relaxed load while nobody
//! watches (a fence too when it goes idle, so that a watcher that looked just before
//! cannot miss that last report and wait for ever).

use std::sync::atomic::{fence, AtomicUsize, Ordering};

use event_listener::Event;

/// The watchers of one process's mailbox.
pub(crate) struct Drain {
    watchers: AtomicUsize,
    event: Event,
}

impl Drain {
    pub(crate) fn new() -> Self {
        Drain {
            watchers: AtomicUsize::new(0),
            event: Event::new(),
        }
    }

    /// The process has handled every message it took; `idle`: and it found no more, so it
    /// waits. Wakes the watchers, if any.
    #[inline]
    pub(crate) fn batch_done(&self, idle: bool) {
        if idle {
            // Pairs with the fence in `until`: either the watcher sees what the process
            // handled, or the process sees the watcher.
            fence(Ordering::SeqCst);
        }
        if self.watchers.load(Ordering::Relaxed) > 0 {
            self.event.notify(usize::MAX);
        }
    }

    /// Waits until `done()` holds, looking again each time the process reports a batch
    /// done. (A process that has ended reports nothing more: wait for its end as well.)
    pub(crate) async fn until(&self, done: impl Fn() -> bool) {
        struct Watching<'a>(&'a AtomicUsize);
        impl Drop for Watching<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let _watching = Watching(&self.watchers);
        fence(Ordering::SeqCst);
        loop {
            let listener = self.event.listen();
            if done() {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_watcher_wakes_when_a_batch_is_done_and_the_condition_holds() {
        let drain = Arc::new(Drain::new());
        let done = Arc::new(AtomicBool::new(false));
        let waiting = {
            let (drain, done) = (drain.clone(), done.clone());
            std::thread::spawn(move || {
                smol::block_on(drain.until(|| done.load(Ordering::Relaxed)));
            })
        };
        while drain.watchers.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        // A batch done while the condition does not hold wakes it for nothing.
        drain.batch_done(false);
        done.store(true, Ordering::Relaxed);
        drain.batch_done(true);
        waiting.join().unwrap();
        assert_eq!(drain.watchers.load(Ordering::Relaxed), 0);
    }
}
