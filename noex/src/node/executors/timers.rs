//! The runtime's own timers (`send_after` and `send_interval`, a server's idle timeout, the
//! call-deadline sweeper), kept by the scheduler thread of the task that waits: a table per
//! thread, whose earliest deadline bounds the thread's wait in its poller (see `poller`),
//! and whose due timers the run loop wakes each time it comes back from there. A timer of
//! a sleeping thread then wakes that thread directly; one of async-io's would wake the
//! thread driving async-io's reactor first, which then wakes the task's thread.
//!
//! A task never moves between threads, so a timer is polled on one thread only. Off the
//! node's threads a [`Sleep`] is an async-io timer.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::current_scheduler;

thread_local! {
    /// The calling scheduler thread's timers, by deadline.
    static TIMERS: RefCell<Timers> = const { RefCell::new(Timers { due: BTreeMap::new(), next: 0 }) };
}

struct Timers {
    /// Waker by (deadline, key): the key tells apart timers of one deadline.
    due: BTreeMap<(Instant, u64), Waker>,
    next: u64,
}

/// Wakes the calling thread's timers due at `now`, so that they run in the order of their
/// deadlines (of one deadline, in the order they were set).
pub(super) fn wake_due(now: Instant) {
    let mut due = Vec::new();
    TIMERS.with(|timers| {
        let mut timers = timers.borrow_mut();
        while let Some(entry) = timers.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
    });
    // Woken outside the borrow, the latest first: each task woken here goes to the front
    // of the thread's queue (the run loop wakes timers as from outside).
    for waker in due.into_iter().rev() {
        waker.wake();
    }
}

/// The calling thread's earliest timer.
pub(super) fn earliest() -> Option<Instant> {
    TIMERS.with(|timers| {
        timers
            .borrow()
            .due
            .first_key_value()
            .map(|((at, _), _)| *at)
    })
}

/// A future that is ready at a deadline (never, without one); once ready, never again until
/// [`set_at`](Sleep::set_at) sets another.
pub(crate) struct Sleep {
    at: Option<Instant>,
    kept: Kept,
}

/// Where a [`Sleep`] waits.
enum Kept {
    Nowhere,
    /// In the table of the scheduler thread `scheduler`, under `(at, key)` (`at` being
    /// the sleep's own).
    Here {
        key: u64,
        scheduler: usize,
    },
    /// Off the node's threads.
    Away(smol::Timer),
}

impl Sleep {
    /// Ready `delay` from now.
    pub(crate) fn after(delay: Duration) -> Sleep {
        Sleep::until(Instant::now().checked_add(delay))
    }

    /// Ready at `at`, or never (`None`).
    pub(crate) fn until(at: Option<Instant>) -> Sleep {
        Sleep {
            at,
            kept: Kept::Nowhere,
        }
    }

    /// Never ready, until [`set_at`](Self::set_at).
    pub(crate) fn never() -> Sleep {
        Sleep::until(None)
    }

    /// Ready at `at` from now on.
    pub(crate) fn set_at(&mut self, at: Instant) {
        self.forget();
        self.at = Some(at);
    }

    /// Leaves the table it waits in (if it is the calling thread's: on another thread,
    /// at the end of a node's life, it is left to be woken for nothing).
    fn forget(&mut self) {
        if let Kept::Here { key, scheduler } = std::mem::replace(&mut self.kept, Kept::Nowhere) {
            if let Some(at) = self.at.filter(|_| current_scheduler() == scheduler) {
                let _ = TIMERS.try_with(|timers| timers.borrow_mut().due.remove(&(at, key)));
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(at) = this.at else {
            return Poll::Pending;
        };
        if Instant::now() >= at {
            // Fired: never again, until set anew (as an async-io timer).
            this.forget();
            this.at = None;
            return Poll::Ready(());
        }
        let scheduler = current_scheduler();
        if scheduler == 0 {
            if !matches!(this.kept, Kept::Away(_)) {
                this.kept = Kept::Away(smol::Timer::at(at));
            }
            let Kept::Away(timer) = &mut this.kept else {
                unreachable!("just set")
            };
            return Pin::new(timer).poll(cx).map(drop);
        }
        TIMERS.with(|timers| {
            let mut timers = timers.borrow_mut();
            if let Kept::Here { key, .. } = this.kept {
                // (Woken early, or not by its timer: still in the table unless it fired.)
                if let Some(waker) = timers.due.get_mut(&(at, key)) {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                    return;
                }
            }
            let key = timers.next;
            timers.next += 1;
            timers.due.insert((at, key), cx.waker().clone());
            this.kept = Kept::Here { key, scheduler };
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Ticks every `period`, at fixed times (a tick that comes late does not move the next);
/// ticks missed altogether, while the thread was busy for a whole period or more, are
/// skipped rather than sent in a burst: the next is then a period from the late one.
pub(crate) struct Interval {
    sleep: Sleep,
    /// The next tick; `None` past what an `Instant` can hold: never.
    next: Option<Instant>,
    period: Duration,
}

impl Interval {
    /// The first tick is `period` from now.
    pub(crate) fn new(period: Duration) -> Interval {
        let next = Instant::now().checked_add(period);
        Interval {
            sleep: Sleep::until(next),
            next,
            period,
        }
    }

    /// The next tick is due now.
    pub(crate) fn is_due(&self) -> bool {
        self.next.is_some_and(|next| next <= Instant::now())
    }

    /// Waits for the next tick.
    pub(crate) async fn tick(&mut self) {
        (&mut self.sleep).await;
        let now = Instant::now();
        self.next = self
            .next
            .and_then(|next| next.checked_add(self.period))
            .and_then(|next| {
                if next <= now {
                    now.checked_add(self.period)
                } else {
                    Some(next)
                }
            });
        // (Without a next tick, the sleep, having fired, stays pending for good.)
        if let Some(next) = self.next {
            self.sleep.set_at(next);
        }
    }
}
