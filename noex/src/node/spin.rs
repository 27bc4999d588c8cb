//! [`Node::block_on`](super::Node::block_on)'s busy-wait: a future that, when its inner
//! future is not ready, spins for a while watching for its wake-up before it lets the
//! thread park (see the executors' module docs for why).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

use crate::server::deadline::deferring_timers;

/// Spins every this many turns yield the thread (to whatever else wants the core).
const YIELD_EVERY: u32 = 64;

/// What the inner future's waker does: notes the wake-up, and wakes the outer waker.
#[derive(Default)]
struct Flag {
    woken: AtomicBool,
    outer: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.outer.wake();
    }
}

pin_project_lite::pin_project! {
    /// `future`, polled again as soon as it is woken within `busy_wait` of going pending.
    pub(super) struct SpinFirst<F> {
        #[pin]
        future: F,
        busy_wait: Duration,
        flag: Arc<Flag>,
        waker: Waker,
    }
}

impl<F: Future> SpinFirst<F> {
    pub(super) fn new(future: F, busy_wait: Duration) -> Self {
        let flag = Arc::new(Flag::default());
        SpinFirst {
            future,
            busy_wait,
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
}

impl<F: Future> Future for SpinFirst<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let mut pending_since = None;
        loop {
            // (Again each time: a wake-up while spinning took the outer waker.)
            this.flag.outer.register(cx.waker());
            this.flag.woken.store(false, Ordering::Relaxed);
            let mut inner = Context::from_waker(this.waker);
            if this.busy_wait.is_zero() {
                return this.future.as_mut().poll(&mut inner);
            }
            // While it spins, the calls' deadlines need no reactor timer (see `deadline`).
            let polled = deferring_timers(this.waker, || this.future.as_mut().poll(&mut inner));
            if let Poll::Ready(output) = polled {
                return Poll::Ready(output);
            }
            let since = *pending_since.get_or_insert_with(Instant::now);
            let mut turns = 0u32;
            loop {
                if this.flag.woken.load(Ordering::Acquire) {
                    break;
                }
                if since.elapsed() >= *this.busy_wait {
                    // Polled once more without deferring: the deadlines get their timers
                    // before the thread parks.
                    this.flag.woken.store(false, Ordering::Relaxed);
                    return this.future.as_mut().poll(&mut inner);
                }
                turns = turns.wrapping_add(1);
                if turns % YIELD_EVERY == 0 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::deadline::Deadline;

    #[test]
    fn a_panic_while_spinning_leaves_no_deadline_unregistered() {
        let panicked = std::panic::catch_unwind(|| {
            smol::block_on(SpinFirst::new(
                async { panic!("on purpose") },
                Duration::from_micros(50),
            ))
        });
        assert!(panicked.is_err());
        // On this (non-scheduler) thread a deadline needs a reactor timer: it must get one.
        let expired = smol::block_on(async {
            let mut deadline = Deadline::after(Duration::from_millis(10));
            let waited = deadline.run(std::future::pending::<()>());
            futures_lite::FutureExt::or(async { Some(waited.await) }, async {
                smol::Timer::after(Duration::from_secs(5)).await;
                None
            })
            .await
        });
        assert_eq!(expired, Some(None), "the deadline expired");
    }

    /// Whether a deadline that never comes expires, awaited by `block` (on a thread of
    /// its own, so that a hang fails the test rather than blocks it).
    fn expires_within_5_s(block: fn(Deadline) -> Option<()>) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(block(Deadline::after(Duration::from_millis(10))));
        });
        rx.recv_timeout(Duration::from_secs(5)) == Ok(None)
    }

    #[test]
    fn a_deadline_under_a_block_on_nested_in_a_busy_waiting_one_expires() {
        // The inner one drives its future with a waker of its own: the outer busy-wait
        // must not keep the deadline's timer from being registered before it parks.
        let nested_node_block_on = |mut deadline: Deadline| {
            smol::block_on(SpinFirst::new(
                async {
                    smol::block_on(SpinFirst::new(
                        deadline.run(std::future::pending::<()>()),
                        Duration::ZERO,
                    ))
                },
                Duration::from_secs(1),
            ))
        };
        assert!(expires_within_5_s(nested_node_block_on));
        let nested_plain_block_on = |mut deadline: Deadline| {
            smol::block_on(SpinFirst::new(
                async {
                    futures_lite::future::block_on(deadline.run(std::future::pending::<()>()))
                },
                Duration::from_secs(1),
            ))
        };
        assert!(expires_within_5_s(nested_plain_block_on));
    }

    #[test]
    fn a_deadline_polled_while_spinning_gets_no_timer_yet() {
        let mut deadline = Deadline::after(Duration::from_secs(5));
        let mut polled = false;
        smol::block_on(SpinFirst::new(
            std::future::poll_fn(|cx| {
                if polled {
                    return std::task::Poll::Ready(());
                }
                polled = true;
                assert!(deadline.poll_expired(cx).is_pending());
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }),
            Duration::from_secs(1),
        ));
        assert!(!deadline.has_timer(), "deferred while spinning");
    }

    #[test]
    fn a_future_woken_while_spinning_or_after_completes() {
        for busy_wait in [
            Duration::ZERO,
            Duration::from_micros(50),
            Duration::from_secs(1),
        ] {
            for delay in [Duration::ZERO, Duration::from_millis(5)] {
                let (tx, rx) = async_channel::bounded::<u32>(1);
                let sender = std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    tx.send_blocking(7).unwrap();
                });
                let got = smol::block_on(SpinFirst::new(rx.recv(), busy_wait));
                assert_eq!(got, Ok(7));
                sender.join().unwrap();
            }
        }
    }
}
