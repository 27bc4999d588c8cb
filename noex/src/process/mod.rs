//! The untyped half of a process: identity, signals, links, monitors and its end.
//!
//! Every process has a [`Core`] shared by everything that addresses it. Other processes
//! change a core only through short, lock-protected steps (add a link, queue a signal);
//! the process itself acts on its signals in its own task, so decisions such as "does this
//! exit signal kill me?" are taken where the trap-exit flag lives.
//!
//! The exit path ([`Core::mark_exited`]) is the single place a process's end is recorded: it
//! stores the reason, closes the signal queue and hands back everything that must be
//! notified, in the order OTP uses (names released before exit and down signals go out).

pub(crate) mod mailbox;
pub(crate) mod table;

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use atomic_waker::AtomicWaker;
use event_listener::Event;

use crate::timer::TimerEntry;
use crate::{ExitReason, MonitorRef, Pid};

/// A signal that overtakes the mailbox: acted on by the process as soon as it can.
#[derive(Debug)]
pub(crate) enum Signal {
    /// End now with this reason, without `terminate`: a kill, or an exit signal that the
    /// process does not trap.
    Die(ExitReason),
    /// A graceful stop request: finish the current message, run `terminate`, exit.
    Stop(ExitReason),
}

/// A system message for a process's mailbox, from a sender that does not know its type.
#[derive(Debug)]
pub(crate) enum SystemInfo {
    /// A trapped exit signal.
    Exit { from: Pid, reason: ExitReason },
    /// A monitored process ended.
    Down {
        monitor: MonitorRef,
        pid: Pid,
        reason: ExitReason,
    },
}

/// What an arriving exit signal does to its receiver.
enum ExitVerdict {
    /// Nothing: the receiver has ended, the link was removed, or a normal exit reached a
    /// process that does not trap.
    Ignore,
    /// It becomes an `Info::Exit` message, behind everything its sender sent before.
    Trap,
    /// The receiver ends with the signal's reason.
    Die,
}

/// Delivers an exit signal to `target`, applying OTP's rules at arrival, as Erlang does: a
/// signal through a removed link is void; a trapping receiver gets a message (in order with
/// the sender's messages); `Normal` from another process is ignored by a receiver that
/// does not trap; anything else ends the receiver at once.
pub(crate) fn send_exit(target: &dyn AnyProcess, from: &Pid, reason: ExitReason, linked: bool) {
    match target.core().judge_exit(from, &reason, linked) {
        ExitVerdict::Ignore => {}
        ExitVerdict::Trap => {
            target.deliver_system(SystemInfo::Exit {
                from: from.clone(),
                reason,
            });
        }
        ExitVerdict::Die => {
            target.core().signal(Signal::Die(reason));
        }
    }
}

/// Static facts about a process, fixed at spawn.
pub(crate) struct Identity {
    pub(crate) pid: Pid,
    pub(crate) behavior: &'static str,
    /// The process that spawned this one with a link, if any.
    pub(crate) parent: Option<Pid>,
    /// The supervisor this process is a child of, if any.
    pub(crate) supervisor: Option<Pid>,
}

/// The shared, untyped state of one process.
pub(crate) struct Core {
    pub(crate) id: Identity,
    /// Wakes the process task: registered by the task, woken by messages and signals.
    pub(crate) waker: AtomicWaker,
    signals_pending: AtomicBool,
    trap_exit: AtomicBool,
    message_count: AtomicU64,
    state: Mutex<CoreState>,
    /// Set once the end is fully processed; [`Core::exited`] waits for it.
    finished: AtomicBool,
    exited: Event,
}

#[derive(Default)]
struct CoreState {
    exit: Option<ExitReason>,
    signals: VecDeque<Signal>,
    links: Vec<Pid>,
    /// Monitors others hold on this process: (reference, watcher).
    monitored_by: Vec<(MonitorRef, Pid)>,
    /// Monitors this process holds on others: (reference, target).
    watching: Vec<(MonitorRef, Pid)>,
    name: Option<Arc<str>>,
    timers: Vec<Arc<TimerEntry>>,
}

/// What a process leaves behind when it ends: everyone who must hear of it.
pub(crate) struct Remains {
    pub(crate) links: Vec<Pid>,
    pub(crate) monitored_by: Vec<(MonitorRef, Pid)>,
    pub(crate) watching: Vec<(MonitorRef, Pid)>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) timers: Vec<Arc<TimerEntry>>,
}

impl Core {
    pub(crate) fn new(id: Identity) -> Self {
        Core {
            id,
            waker: AtomicWaker::new(),
            signals_pending: AtomicBool::new(false),
            trap_exit: AtomicBool::new(false),
            message_count: AtomicU64::new(0),
            state: Mutex::new(CoreState::default()),
            finished: AtomicBool::new(false),
            exited: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoreState> {
        // No code panics while holding this lock; tolerate poisoning anyway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn pid(&self) -> &Pid {
        &self.id.pid
    }

    /// Queues a signal and wakes the process. Returns `false` if the process has ended.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        {
            let mut state = self.lock();
            if state.exit.is_some() {
                return false;
            }
            state.signals.push_back(signal);
            self.signals_pending.store(true, Ordering::Release);
        }
        self.waker.wake();
        true
    }

    /// `true` if signals wait to be handled (a cheap check for the process loop).
    pub(crate) fn has_signals(&self) -> bool {
        self.signals_pending.load(Ordering::Acquire)
    }

    /// Decides what an exit signal from `from` does to this process (see [`send_exit`]).
    fn judge_exit(&self, from: &Pid, reason: &ExitReason, linked: bool) -> ExitVerdict {
        let mut state = self.lock();
        if state.exit.is_some() {
            return ExitVerdict::Ignore;
        }
        if linked {
            let before = state.links.len();
            state.links.retain(|p| p != from);
            if state.links.len() == before {
                // The link was removed (unlink): the signal is void.
                return ExitVerdict::Ignore;
            }
        }
        if self.trap_exit() {
            ExitVerdict::Trap
        } else if reason.is_normal() && from != self.pid() {
            ExitVerdict::Ignore
        } else {
            ExitVerdict::Die
        }
    }

    /// Takes the next queued signal.
    pub(crate) fn next_signal(&self) -> Option<Signal> {
        let mut state = self.lock();
        let signal = state.signals.pop_front();
        if state.signals.is_empty() {
            self.signals_pending.store(false, Ordering::Release);
        }
        signal
    }

    pub(crate) fn trap_exit(&self) -> bool {
        self.trap_exit.load(Ordering::Relaxed)
    }

    pub(crate) fn set_trap_exit(&self, trap: bool) {
        self.trap_exit.store(trap, Ordering::Relaxed);
    }

    pub(crate) fn message_count(&self) -> u64 {
        self.message_count.load(Ordering::Relaxed)
    }

    /// Counts one handled message. Only the process itself calls this.
    pub(crate) fn count_message(&self) {
        let n = self.message_count.load(Ordering::Relaxed);
        self.message_count.store(n + 1, Ordering::Relaxed);
    }

    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        self.lock().exit.clone()
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.lock().exit.is_none()
    }

    /// Adds a link to `peer`. Fails with `false` if this process has ended.
    pub(crate) fn add_link(&self, peer: &Pid) -> bool {
        let mut state = self.lock();
        if state.exit.is_some() {
            return false;
        }
        if !state.links.contains(peer) {
            state.links.push(peer.clone());
        }
        true
    }

    /// Removes the link to `peer`; `true` if it was there.
    pub(crate) fn remove_link(&self, peer: &Pid) -> bool {
        let mut state = self.lock();
        let before = state.links.len();
        state.links.retain(|p| p != peer);
        state.links.len() != before
    }

    pub(crate) fn links(&self) -> Vec<Pid> {
        self.lock().links.clone()
    }

    /// Records that `watcher` monitors this process. Fails with `false` if it has ended.
    pub(crate) fn add_monitored_by(&self, monitor: MonitorRef, watcher: &Pid) -> bool {
        let mut state = self.lock();
        if state.exit.is_some() {
            return false;
        }
        state.monitored_by.push((monitor, watcher.clone()));
        true
    }

    pub(crate) fn remove_monitored_by(&self, monitor: MonitorRef) {
        self.lock().monitored_by.retain(|(m, _)| *m != monitor);
    }

    /// Records that this process monitors `target`. Fails with `false` if it has ended.
    pub(crate) fn add_watching(&self, monitor: MonitorRef, target: &Pid) -> bool {
        let mut state = self.lock();
        if state.exit.is_some() {
            return false;
        }
        state.watching.push((monitor, target.clone()));
        true
    }

    /// Forgets a monitor this process holds; returns its target if it was still active.
    pub(crate) fn remove_watching(&self, monitor: MonitorRef) -> Option<Pid> {
        let mut state = self.lock();
        let at = state.watching.iter().position(|(m, _)| *m == monitor)?;
        Some(state.watching.swap_remove(at).1)
    }

    pub(crate) fn name(&self) -> Option<Arc<str>> {
        self.lock().name.clone()
    }

    /// Sets the process's name. Fails with the current name, or `Err(None)` if it has ended.
    pub(crate) fn set_name(&self, name: Arc<str>) -> Result<(), Option<Arc<str>>> {
        let mut state = self.lock();
        if state.exit.is_some() {
            return Err(None);
        }
        if let Some(current) = &state.name {
            return Err(Some(current.clone()));
        }
        state.name = Some(name);
        Ok(())
    }

    /// Clears the name if it is `name`.
    pub(crate) fn clear_name(&self, name: &str) {
        let mut state = self.lock();
        if state.name.as_deref() == Some(name) {
            state.name = None;
        }
    }

    /// Attaches a timer that must be cancelled when this process ends. Fails with `false` if
    /// it already has.
    pub(crate) fn add_timer(&self, timer: Arc<TimerEntry>) -> bool {
        let mut state = self.lock();
        if state.exit.is_some() {
            return false;
        }
        state.timers.push(timer);
        true
    }

    pub(crate) fn remove_timer(&self, timer: &Arc<TimerEntry>) {
        self.lock().timers.retain(|t| !Arc::ptr_eq(t, timer));
    }

    /// Records the end of the process. Returns what must be notified, or `None` if the end
    /// was already recorded. Queued signals are discarded.
    pub(crate) fn mark_exited(&self, reason: ExitReason) -> Option<Remains> {
        let mut state = self.lock();
        if state.exit.is_some() {
            return None;
        }
        state.exit = Some(reason);
        state.signals.clear();
        self.signals_pending.store(false, Ordering::Release);
        Some(Remains {
            links: std::mem::take(&mut state.links),
            monitored_by: std::mem::take(&mut state.monitored_by),
            watching: std::mem::take(&mut state.watching),
            name: state.name.take(),
            timers: std::mem::take(&mut state.timers),
        })
    }

    /// Wakes everyone waiting in [`exited`](Self::exited). Called once the end is fully
    /// processed (name released, signals sent).
    pub(crate) fn notify_exited(&self) {
        self.finished.store(true, Ordering::Release);
        self.exited.notify(usize::MAX);
    }

    /// Resolves with the exit reason once the process has ended and its end was processed.
    pub(crate) async fn exited(&self) -> ExitReason {
        loop {
            let listener = self.exited.listen();
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

/// A process seen without its behaviour type: what the process table stores.
pub(crate) trait AnyProcess: Send + Sync + 'static {
    fn core(&self) -> &Core;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn mailbox_len(&self) -> usize;
    /// Closes the mailbox and drops what was queued.
    fn close_mailbox(&self);
    /// Puts a system message at the back of the mailbox; `false` if the process has ended.
    fn deliver_system(&self, info: SystemInfo) -> bool;
}
