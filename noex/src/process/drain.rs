//! Waiting for a process to work through its mailbox: how a connection's reader holds a
//! peer back while a local process it delivers to is behind (see `dist::inbound`).
//!
//! The process reports each time it has finished the messages it took from its mailbox —
//! about to take more, or to wait for more — which costs it one relaxed load while nobody
//! watches. No fence orders that load after the process's last handled message (a fence
//! on every idle turn would cost a local call a tenth of its time), so a watcher that
//! looked just before may miss that last report: it looks again every [`RECHECK`] too.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::Duration;

use event_listener::Event;
use futures_lite::FutureExt;

/// How often a watcher looks again without a report (one it missed).
const RECHECK: Duration = Duration::from_millis(1);

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

    /// The process has handled every message it took (and is about to take more, or to
    /// wait for more). Wakes the watchers, if any.
    #[inline]
    pub(crate) fn batch_done(&self) {
        if self.watchers.load(Ordering::Relaxed) > 0 {
            self.event.notify(usize::MAX);
        }
    }

    /// Waits until `done()` holds, looking again each time the process reports a batch
    /// done, and every [`RECHECK`]. (A process that has ended reports nothing more: wait
    /// for its end as well.)
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
            listener
                .or(async {
                    smol::Timer::after(RECHECK).await;
                })
                .await;
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
        drain.batch_done();
        done.store(true, Ordering::Relaxed);
        drain.batch_done();
        waiting.join().unwrap();
        assert_eq!(drain.watchers.load(Ordering::Relaxed), 0);
    }
}
