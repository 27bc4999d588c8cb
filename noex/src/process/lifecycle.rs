//! A process's start and end as its core records them: `init` has succeeded, the end is
//! recorded and then fully processed, and whoever waits for either.

use std::sync::atomic::{fence, Ordering};

use super::{ended, Core, Remains, Ties};
use crate::ExitReason;

impl Core {
    /// Records that `init` succeeded, and wakes a spawner waiting in
    /// [`initialized`](Self::initialized). Only the process itself calls this.
    pub(crate) fn set_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
        self.notify_changed();
    }

    /// Wakes everyone waiting in [`initialized`](Self::initialized) or
    /// [`exited`](Self::exited), if anyone ever listened: `Event::notify` would allocate
    /// the event's state otherwise, and few processes are ever waited for.
    fn notify_changed(&self) {
        // Either a listener registered before this look (and is seen), or it looks for
        // what the caller stored after registering: each side has a `SeqCst` fence
        // between its store (here the caller's flag; there the listener) and its look.
        fence(Ordering::SeqCst);
        if self.changed.total_listeners() > 0 {
            self.changed.notify(usize::MAX);
        }
    }

    /// `true` once `init` has succeeded.
    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    /// Resolves once `init` has succeeded (never, if it fails: the spawner also waits
    /// for the process's task).
    pub(crate) async fn initialized(&self) {
        loop {
            let listener = self.changed.listen();
            // See `notify_changed`.
            fence(Ordering::SeqCst);
            if self.is_initialized() {
                return;
            }
            listener.await;
        }
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
    /// processed (name released, signals sent).
    pub(crate) fn notify_exited(&self) {
        self.finished.store(true, Ordering::Release);
        self.notify_changed();
    }

    /// Resolves with the exit reason once the process has ended and its end was processed.
    pub(crate) async fn exited(&self) -> ExitReason {
        loop {
            let listener = self.changed.listen();
            // See `notify_changed`.
            fence(Ordering::SeqCst);
            if let Some(reason) = self.finished_reason() {
                return reason;
            }
            listener.await;
        }
    }

    fn finished_reason(&self) -> Option<ExitReason> {
        if self.finished.load(Ordering::Acquire) {
            self.exit_reason()
        } else {
            None
        }
    }
}
