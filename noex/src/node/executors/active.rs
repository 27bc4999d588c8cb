//! The tasks alive on one scheduler, so that stopping it can cancel them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::scheduler::Scheduler;

/// A slab of the wakers of the tasks alive on one scheduler.
#[derive(Default)]
pub(super) struct Active {
    pub(super) wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Active {
    /// A slot for a task about to be spawned (filled by [`Active::fill`]).
    pub(super) fn reserve(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.wakers.push(None);
            self.wakers.len() - 1
        })
    }

    pub(super) fn fill(&mut self, key: usize, waker: Waker) {
        if let Some(slot @ None) = self.wakers.get_mut(key) {
            *slot = Some(waker);
        }
    }

    pub(super) fn remove(&mut self, key: usize) {
        if let Some(slot @ Some(_)) = self.wakers.get_mut(key) {
            *slot = None;
            self.free.push(key);
        }
    }
}

pin_project_lite::pin_project! {
    /// A task's future, which removes the task from its scheduler's [`Active`] when it is
    /// dropped, however it ends. (A struct rather than an `async` block: an `async` block
    /// awaiting a captured future holds it twice, doubling a process's memory.)
    pub(super) struct Registered<F> {
        #[pin]
        pub(super) future: F,
        pub(super) scheduler: Arc<Scheduler>,
        pub(super) key: usize,
    }

    impl<F> PinnedDrop for Registered<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.scheduler.active().remove(*this.key);
        }
    }
}

impl<F: Future> Future for Registered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}
