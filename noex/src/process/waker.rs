//! The waker a process's task registers once and its senders wake.

use std::sync::atomic::{fence, Ordering};
use std::task::Waker;

/// The waker of a process's task. A process is one task for its whole life, polled with
/// one waker, so the waker is kept from the first poll on: waking is `wake_by_ref`, with
/// no exchange of wakers between the process and its senders on every message.
///
/// A wake before the first poll is lost, harmlessly: after registering, the process looks
/// for messages and signals before it waits. (The registration and a sender's look for
/// the waker are each followed by a sequentially consistent fence, so that one of the two
/// sees the other's write.) The waker outlives the task as long as the process's `Core`
/// does — a `ServerRef` kept to an ended process keeps its task's memory too.
///
/// A `spin::Once` rather than a `std::sync::OnceLock`: the same size, and setting it is a
/// compare-and-swap and a store, where `OnceLock::set` takes a hundred instructions, once
/// per spawn. Only the process's task sets it, so it never spins.
#[derive(Default)]
pub(crate) struct TaskWaker(spin::Once<Waker>);

impl TaskWaker {
    /// Keeps `waker` if none is kept yet (the process's own task: always the same one).
    pub(crate) fn register(&self, waker: &Waker) {
        if self.0.get().is_none() {
            self.0.call_once(|| waker.clone());
            fence(Ordering::SeqCst);
        }
    }

    /// Wakes the process's task, if it has been polled.
    pub(crate) fn wake(&self) {
        let waker = match self.0.get() {
            Some(waker) => waker,
            // Not registered yet, or the registration is not visible yet: after the
            // fence, either it is, or the process will see what the caller stored.
            None => {
                fence(Ordering::SeqCst);
                match self.0.get() {
                    Some(waker) => waker,
                    None => return,
                }
            }
        };
        waker.wake_by_ref();
    }
}
