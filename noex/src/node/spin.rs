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
            let polled = deferring_timers(|| this.future.as_mut().poll(&mut inner));
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
