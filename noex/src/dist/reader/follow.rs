//! Where a reader's deliveries go (or where a writer's frames come from), and when it
//! moves to their thread.

use crate::node::executors;

/// After this many deliveries in a row to one other scheduler thread, the reader moves
/// there.
pub(in crate::dist) const FOLLOW_AFTER: u32 = 64;

/// Where the reader's deliveries go: the scheduler thread of the processes (or callers)
/// that got the last ones, and how many in a row. A reader on the thread of the process it
/// feeds hands it each message without waking another thread; with 2 threads per node, a
/// remote call round trip otherwise pays such a wake-up on each node whenever the
/// connection's tasks and the processes ended up on different threads.
#[derive(Default)]
pub(in crate::dist) struct Follow {
    target: usize,
    run: u32,
}

impl Follow {
    pub(in crate::dist) fn note(&mut self, target: usize) {
        self.note_many(target, 1);
    }

    /// Notes `count` deliveries in a row to `target`.
    pub(in crate::dist) fn note_many(&mut self, target: usize, count: u32) {
        if target == 0 || count == 0 {
            return;
        }
        if target == self.target {
            self.run = self.run.saturating_add(count);
        } else {
            *self = Follow { target, run: count };
        }
    }

    /// The thread to move to, if the deliveries have settled on one other than this one.
    pub(in crate::dist) fn destination(&mut self) -> Option<usize> {
        if self.run < FOLLOW_AFTER || self.target == executors::current_scheduler() {
            return None;
        }
        let target = self.target;
        *self = Follow::default();
        Some(target)
    }
}
