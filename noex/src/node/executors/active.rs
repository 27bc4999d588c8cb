//! The tasks alive on one scheduler, so that stopping it can cancel them.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::scheduler::Scheduler;

/// A slab of the wakers of the tasks alive on one scheduler.
#[derive(Default)]
pub(super) struct Active {
    pub(super) wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
}

impl Active {
    /// A slot for a task about to be spawned (filled by [`Active::fill`]).
    pub(super) fn reserve(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.wakers.push(None);
            // Each slot holds a live task's waker: far fewer than 2³² fit in memory.
            u32::try_from(self.wakers.len() - 1).expect("fewer than 2^32 tasks per thread")
        })
    }

    pub(super) fn fill(&mut self, index: u32, waker: Waker) {
        if let Some(slot @ None) = self.wakers.get_mut(index as usize) {
            *slot = Some(waker);
        }
    }

    pub(super) fn remove(&mut self, index: u32) {
        if let Some(slot @ Some(_)) = self.wakers.get_mut(index as usize) {
            *slot = None;
            self.free.push(index);
        }
    }
}

/// Where a task is registered: its scheduler's number and its slot in that scheduler's
/// [`Active`]. One word, in every task (a pointer to the scheduler would be another).
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) scheduler: u32,
    pub(super) index: u32,
}

impl Slot {
    /// A task registered nowhere (spawned onto a stopped scheduler).
    pub(super) const NONE: Slot = Slot {
        scheduler: u32::MAX,
        index: u32::MAX,
    };
}

thread_local! {
    /// The scheduler this thread runs, for a node's own threads (see [`Registered`]).
    pub(super) static HOME: OnceCell<Arc<Scheduler>> = const { OnceCell::new() };
}

pin_project_lite::pin_project! {
    /// A task's future, which removes the task from its scheduler's [`Active`] when it is
    /// dropped, however it ends. (A struct rather than an `async` block: an `async` block
    /// awaiting a captured future holds it twice, doubling a process's memory.)
    ///
    /// A task's future is dropped on its scheduler's thread — when it ends, or when the
    /// scheduler cancels it — which is where its scheduler is found ([`HOME`]). Elsewhere
    /// only once the scheduler has stopped and taken its `Active` apart (a wake-up from
    /// another thread then finds the task's queue closed, and drops it): there is nothing
    /// left to remove then.
    pub(super) struct Registered<F> {
        #[pin]
        pub(super) future: F,
        pub(super) slot: Slot,
    }

    impl<F> PinnedDrop for Registered<F> {
        fn drop(this: Pin<&mut Self>) {
            let slot = *this.project().slot;
            // `try_with`: the thread may be tearing its thread-locals down.
            let _ = HOME.try_with(|home| {
                if let Some(scheduler) = home.get().filter(|s| s.number == slot.scheduler) {
                    scheduler.active().remove(slot.index);
                }
            });
        }
    }
}

impl<F: Future> Future for Registered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}
