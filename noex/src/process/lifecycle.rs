//! A process's start and end as its core records them: `init` has succeeded, the end is
//! recorded and then fully processed, and whoever waits for either.
//!
//! The waiting tasks' wakers are kept in the core's state while they wait, and dropped
//! once woken: most processes are never waited for, and a spawn from a node's thread
//! does not wait either, so nothing is allocated for them, and nothing stays allocated
//! for those that were. A waiter whose future is dropped first leaves its waker there
//! until the next wake-up (or the core's end), rather than risk removing that of another
//! waiter of the same task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, Ordering};
use std::task::{Context, Poll, Waker};

use super::{ended, Answer, Core, Remains, Ties};
use crate::ExitReason;

impl Core {
    /// Records that `init` succeeded, and wakes a spawner waiting in
    /// [`initialized`](Self::initialized). Only the process itself calls this.
    pub(crate) fn set_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
        self.notify_changed();
    }

    /// Wakes everyone waiting in [`initialized`](Self::initialized) or
    /// [`exited`](Self::exited), if anyone does (a load, when nobody does).
    fn notify_changed(&self) {
        // Either a waiter registered before this look (and is seen), or it looks for what
        // the caller stored after registering: each side has a `SeqCst` fence between its
        // store (here the caller's flag; there its waker) and its look.
        fence(Ordering::SeqCst);
        if self.waited.load(Ordering::Relaxed) {
            self.wake_waiters();
        }
    }

    /// Wakes every waiting task, and forgets them.
    #[cold]
    fn wake_waiters(&self) {
        let waiters = {
            let mut state = self.lock();
            self.waited.store(false, Ordering::Relaxed);
            state.waiters.take()
        };
        for waker in waiters.into_iter().flat_map(|waiters| *waiters) {
            waker.wake();
        }
    }

    /// Keeps `waker` to be woken by [`notify_changed`](Self::notify_changed) (once per
    /// task).
    fn add_waiter(&self, waker: &Waker) {
        let mut state = self.lock();
        // Room for one waker: there is rarely more than one waiter.
        let waiters = state
            .waiters
            .get_or_insert_with(|| Box::new(Vec::with_capacity(1)));
        if !waiters.iter().any(|kept| kept.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        self.waited.store(true, Ordering::Relaxed);
    }

    /// Resolves with what `done` finds once it finds something, looking again each time
    /// the process's start or end is recorded.
    fn until<T>(&self, done: fn(&Core) -> Option<T>) -> Until<'_, T> {
        Until { core: self, done }
    }

    /// `true` once `init` has succeeded.
    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// Resolves once `init` has succeeded (never, if it fails: the spawner also waits
    /// for the process's task).
    pub(crate) async fn initialized(&self) {
        self.until(|core| core.is_initialized().then_some(())).await;
    }

    /// Records the end of the process. Returns what must be notified, or `None` if the end
    /// was already recorded. Queued signals are discarded.
    pub(crate) fn mark_exited(&self, reason: ExitReason) -> Option<Remains> {
        let mut state = self.lock();
        if state.exit.is_some() {
            return None;
        }
        state.exit = ended::Ended::new(reason);
        self.signals_pending.store(false, Ordering::Release);
        let mut remains = state.ties.take().map_or_else(Ties::default, |ties| *ties);
        remains.signals.clear();
        Some(remains)
    }

    /// Wakes everyone waiting in [`exited`](Self::exited). Called once the end is fully
    /// processed (name released, signals sent), it first gives the answers kept by
    /// [`answer_when_ended`](Self::answer_when_ended), in order (those kept meanwhile too).
    pub(crate) fn notify_exited(&self) {
        loop {
            let late = {
                let mut state = self.lock();
                match state.late.take() {
                    Some(late) => late,
                    None => {
                        self.finished.store(true, Ordering::Release);
                        break;
                    }
                }
            };
            for answer in *late {
                answer();
            }
        }
        self.notify_changed();
        // `Ctx::stopping` awaited outside the process ends too (after the fence above).
        self.wake_stopping_fenced();
    }

    /// Keeps `answer` — what tells someone that this process is not running, for a link
    /// or monitor it could not take — until its end is fully processed, behind those kept
    /// before it (see [`notify_exited`](Self::notify_exited)); gives it back to be given
    /// now if the end is processed already. An answer given while the process is in the
    /// middle of ending, on another thread, would overtake the release of its names and
    /// groups, and the `Down`s and exit signals of its earlier links and monitors.
    pub(crate) fn answer_when_ended(&self, answer: Answer) -> Option<Answer> {
        let mut state = self.lock();
        if !state.exit.is_some() || self.finished.load(Ordering::Acquire) {
            return Some(answer);
        }
        state.late.get_or_insert_with(Box::default).push(answer);
        None
    }

    /// Resolves with the exit reason once the process has ended and its end was processed.
    pub(crate) async fn exited(&self) -> ExitReason {
        self.until(Core::finished_reason).await
    }

    fn finished_reason(&self) -> Option<ExitReason> {
        if self.finished.load(Ordering::Acquire) {
            self.exit_reason()
        } else {
            None
        }
    }
}

/// The future of [`Core::until`].
struct Until<'a, T> {
    core: &'a Core,
    done: fn(&Core) -> Option<T>,
}

impl<T> Future for Until<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Until { core, done } = *self;
        if let Some(value) = done(core) {
            return Poll::Ready(value);
        }
        core.add_waiter(cx.waker());
        // See `notify_changed`.
        fence(Ordering::SeqCst);
        let value = done(core);
        if value.is_some() {
            // The change came meanwhile, and may have been notified before the waker was
            // kept: let it not stay kept (a spurious wake-up harms no waiter).
            core.wake_waiters();
        }
        value.map_or(Poll::Pending, Poll::Ready)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::process::Identity;
    use crate::Pid;

    fn core() -> Core {
        Core::new(Identity {
            pid: Pid::new(Arc::from("test"), 1, 1),
            parent: None,
        })
    }

    fn poll<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn waiters_kept(core: &Core) -> bool {
        core.lock().waiters.is_some()
    }

    #[test]
    fn a_waiter_is_woken_by_the_start_and_nothing_stays_kept() {
        let core = core();
        let mut waiting = std::pin::pin!(core.initialized());
        assert!(poll(waiting.as_mut()).is_pending());
        assert!(waiters_kept(&core));
        core.set_initialized();
        assert!(!waiters_kept(&core), "the waker is dropped once woken");
        assert!(poll(waiting.as_mut()).is_ready());
    }

    #[test]
    fn nobody_waiting_keeps_nothing() {
        let core = core();
        core.set_initialized();
        assert!(!waiters_kept(&core));
        let mut waiting = std::pin::pin!(core.initialized());
        assert!(poll(waiting.as_mut()).is_ready());
        assert!(!waiters_kept(&core));
    }

    thread_local! {
        static LOOKS: Cell<u32> = const { Cell::new(0) };
    }

    #[test]
    fn a_waiter_that_sees_the_change_after_keeping_its_waker_keeps_none() {
        // The change comes between the waiter's first look and its second, after it
        // kept its waker: the notification may have missed it.
        fn second_look(_: &Core) -> Option<()> {
            let looks = LOOKS.with(|looks| looks.replace(looks.get() + 1));
            (looks > 0).then_some(())
        }
        let core = core();
        let mut waiting = std::pin::pin!(core.until(second_look));
        assert!(poll(waiting.as_mut()).is_ready());
        assert!(!waiters_kept(&core));
    }
}
