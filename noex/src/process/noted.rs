//! What a process notes in its core for later: a stop to honour after the current
//! message, what it keeps of its spawn until `init` has ended, its supervisor. Kept in the
//! core's lazily allocated ties rather than in each process's future: idle processes are
//! many, and those with any of these few.

use std::num::NonZeroU64;
use std::sync::atomic::Ordering;

use super::Core;
use crate::{ExitReason, Pid};

impl Core {
    /// Notes a stop to honour after the current message (only the process itself calls
    /// this); an earlier one noted and not yet taken wins.
    pub(crate) fn note_stop(&self, reason: ExitReason) {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return;
        };
        ties.stop.get_or_insert(reason);
        self.stop_noted.store(true, Ordering::Relaxed);
    }

    /// Notes a stop the process asked for itself (`Ctx::stop`): it wins over one noted
    /// from a signal, and over an earlier one of its own.
    pub(crate) fn note_own_stop(&self, reason: ExitReason) {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return;
        };
        ties.stop = Some(reason);
        self.stop_noted.store(true, Ordering::Relaxed);
    }

    /// `true` if a stop was noted (see [`take_noted_stop`](Self::take_noted_stop)).
    #[inline]
    pub(crate) fn stop_is_noted(&self) -> bool {
        self.stop_noted.load(Ordering::Relaxed)
    }

    /// Takes the stop noted by [`note_stop`](Self::note_stop), if any. Only the process
    /// itself calls this (and `note_stop`), so the flag needs no ordering.
    #[inline]
    pub(crate) fn take_noted_stop(&self) -> Option<ExitReason> {
        if !self.stop_noted.load(Ordering::Relaxed) {
            return None;
        }
        self.stop_noted.store(false, Ordering::Relaxed);
        self.lock().ties.as_mut()?.stop.take()
    }

    /// Keeps what the process must know of its spawn until `init` has ended.
    /// (Set by the spawner before the process's task is spawned, which orders it before
    /// the process's reads.)
    pub(crate) fn set_spawning(&self, spawning: Box<crate::server::spawn::Spawning>) {
        self.lock().ties().spawning = Some(spawning);
        self.spawning.store(true, Ordering::Relaxed);
    }

    /// Takes what the process kept of its spawn, if anything. Only the process itself
    /// calls this.
    pub(crate) fn take_spawning(&self) -> Option<Box<crate::server::spawn::Spawning>> {
        if !self.spawning.load(Ordering::Relaxed) {
            return None;
        }
        self.spawning.store(false, Ordering::Relaxed);
        self.lock().ties.as_mut()?.spawning.take()
    }

    /// Records that the process is a child of `supervisor` (a process of this node).
    pub(crate) fn set_supervisor(&self, supervisor: NonZeroU64) {
        self.lock().ties().supervisor = Some(supervisor);
    }

    /// The supervisor this process is a child of.
    pub(crate) fn supervisor(&self) -> Option<Pid> {
        let serial = self.lock().ties.as_ref()?.supervisor?;
        Some(self.id.sibling(serial))
    }
}
