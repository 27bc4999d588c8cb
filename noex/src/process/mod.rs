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

pub(crate) mod drain;
mod ended;
mod groups;
mod lifecycle;
pub(crate) mod mailbox;
mod noted;
pub(crate) mod table;
mod view;
mod waker;

pub(crate) use waker::TaskWaker;

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

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
    /// A monitored node was lost.
    NodeDown { node: crate::NodeId },
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
    /// The serial of the process that spawned this one with a link, if any.
    pub(crate) parent: Option<NonZeroU64>,
}

impl Identity {
    /// The pid of a process of the same node with this serial.
    fn sibling(&self, serial: NonZeroU64) -> Pid {
        Pid::new(self.pid.node_arc(), self.pid.incarnation(), serial.get())
    }

    /// The process that spawned this one with a link.
    pub(crate) fn parent(&self) -> Option<Pid> {
        self.parent.map(|serial| self.sibling(serial))
    }

    /// `true` if `pid` is this process's parent.
    pub(crate) fn is_parent(&self, pid: &Pid) -> bool {
        self.parent.is_some_and(|serial| {
            pid.serial() == serial.get()
                && pid.incarnation() == self.pid.incarnation()
                && pid.node() == self.pid.node()
        })
    }
}

/// The shared, untyped state of one process.
pub(crate) struct Core {
    pub(crate) id: Identity,
    /// Wakes the process task: registered by the task, woken by messages and signals.
    pub(crate) waker: TaskWaker,
    signals_pending: AtomicBool,
    /// A graceful stop was asked for (see `Ctx::stopping`).
    stop_requested: AtomicBool,
    /// Notified when `stop_requested` is set. Its listeners leave it when dropped, so a
    /// `Ctx::stopping` future dropped before the stop keeps nothing here.
    stop_asked: event_listener::Event,
    /// A stop the process has taken note of waits in [`Ties::stop`] (see
    /// [`Core::note_stop`]): a flag, so the process loop looks without the lock.
    stop_noted: AtomicBool,
    /// The ties hold a `Spawning` (see [`Core::set_spawning`]): most processes have
    /// none, and learn it without the lock.
    spawning: AtomicBool,
    trap_exit: AtomicBool,
    /// Set once `init` has succeeded.
    initialized: AtomicBool,
    /// Set once the end is fully processed; [`Core::exited`] waits for it.
    finished: AtomicBool,
    message_count: AtomicU64,
    /// The scheduler thread the process runs on (a key from
    /// `executors::current_scheduler`), 0 until it first runs.
    home: AtomicUsize,
    state: Mutex<CoreState>,
    /// Someone waits for `init` to succeed or for the end ([`CoreState::waiters`]).
    waited: AtomicBool,
    /// Who waits for the process to work through its mailbox.
    pub(crate) drain: drain::Drain,
}

#[derive(Default)]
struct CoreState {
    exit: ended::Ended,
    /// Allocated on first use: most processes never need it, and idle processes are many.
    ties: Option<Box<Ties>>,
    /// The tasks waiting for `init` to succeed or for the end (see `lifecycle`): allocated
    /// while anyone waits, freed when they are woken.
    // Boxed: 8 bytes in every process rather than a `Vec`'s 24.
    #[allow(clippy::box_collection)]
    waiters: Option<Box<Vec<Waker>>>,
    /// The answers kept until the end is fully processed (see
    /// [`Core::answer_when_ended`]): allocated if any, 8 bytes in every process.
    #[allow(clippy::box_collection)]
    late: Option<Box<Vec<Answer>>>,
}

/// What tells someone that a process is not running (see [`Core::answer_when_ended`]).
pub(crate) type Answer = Box<dyn FnOnce() + Send>;

/// A process's relations to others, and its pending signals.
#[derive(Default)]
pub(crate) struct Ties {
    signals: VecDeque<Signal>,
    /// The reason of a stop the process honours after its current message: its own
    /// (`Ctx::stop`, the last one wins), else the first of a stop request or its parent's
    /// exit while it traps exits.
    /// Kept here rather than in the process's future: idle processes are many, and
    /// stopping ones few.
    stop: Option<ExitReason>,
    pub(crate) links: Vec<Pid>,
    /// Monitors others hold on this process: (reference, watcher).
    pub(crate) monitored_by: Vec<(MonitorRef, Pid)>,
    /// Monitors this process holds on others: (reference, target).
    pub(crate) watching: Vec<(MonitorRef, Pid)>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) timers: Vec<Arc<TimerEntry>>,
    /// Nodes this process monitors (`Ctx::monitor_node`), once each.
    pub(crate) monitored_nodes: Vec<Arc<str>>,
    /// The serial of the supervisor this process is a child of, if any (for
    /// introspection; a supervised process has ties anyway, for its link).
    pub(crate) supervisor: Option<NonZeroU64>,
    /// The process of another node that spawned this one with a link (`spawn_link_on`).
    pub(crate) remote_parent: Option<Pid>,
    /// What the process keeps of its spawn until `init` has ended, if anything (a
    /// spawner's monitor, or a spawner of another node): see `server::spawn::Spawning`.
    pub(crate) spawning: Option<Box<crate::server::spawn::Spawning>>,
    /// The global names it holds.
    pub(crate) global_names: Vec<Arc<str>>,
    /// The process groups it is a member of, with how many joins of each it has not left
    /// (as Erlang's `pg`: it leaves a group once it has left as often as it joined).
    pub(crate) groups: BTreeMap<Arc<str>, u64>,
}

impl CoreState {
    fn ties(&mut self) -> &mut Ties {
        self.ties.get_or_insert_with(Box::default)
    }

    /// The ties of a process that has not ended, or `None`.
    fn live_ties(&mut self) -> Option<&mut Ties> {
        if self.exit.is_some() {
            None
        } else {
            Some(self.ties())
        }
    }
}

/// What a process leaves behind when it ends: everyone who must hear of it.
pub(crate) type Remains = Ties;

impl Core {
    pub(crate) fn new(id: Identity) -> Self {
        Core {
            id,
            waker: TaskWaker::default(),
            signals_pending: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            stop_asked: event_listener::Event::new(),
            stop_noted: AtomicBool::new(false),
            spawning: AtomicBool::new(false),
            trap_exit: AtomicBool::new(false),
            initialized: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            message_count: AtomicU64::new(0),
            home: AtomicUsize::new(0),
            state: Mutex::new(CoreState::default()),
            waited: AtomicBool::new(false),
            drain: drain::Drain::new(),
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
        let stop = matches!(signal, Signal::Stop(_));
        {
            let mut state = self.lock();
            let Some(ties) = state.live_ties() else {
                return false;
            };
            if stop {
                self.stop_requested.store(true, Ordering::Release);
            }
            ties.signals.push_back(signal);
            self.signals_pending.store(true, Ordering::Release);
        }
        self.waker.wake();
        if stop {
            // Whoever awaits `Ctx::stopping` (see `stop_asked`).
            std::sync::atomic::fence(Ordering::SeqCst);
            self.wake_stopping_fenced();
        }
        true
    }

    /// Wakes whoever awaits [`stop_asked`](Self::stop_asked), if anyone ever listened:
    /// notifying an event allocates its state if no listener has, which a process ended
    /// or stopped must not pay for nothing. The caller has stored the flag the listeners
    /// look for (`stop_requested`, `finished`), then passed a `SeqCst` fence: either a
    /// listener registered before this look (and is counted), or it sees the flag (`listen`
    /// has a `SeqCst` fence after registering).
    pub(crate) fn wake_stopping_fenced(&self) {
        if self.stop_asked.total_listeners() > 0 {
            self.stop_asked.notify(usize::MAX);
        }
    }

    /// `true` once a graceful stop of this process was asked for.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }

    /// Resolves once a graceful stop of the process was asked for, or the process has
    /// ended (killed, crashed: no stop will come), wherever it is polled (see
    /// `Ctx::stopping`).
    pub(crate) async fn stop_asked(&self) {
        let done = || self.stop_requested() || self.finished.load(Ordering::Acquire);
        loop {
            if done() {
                return;
            }
            let listener = self.stop_asked.listen();
            // Set between the look and the listen: the notification may have gone.
            if done() {
                return;
            }
            listener.await;
        }
    }

    /// `true` if signals wait to be handled (a cheap check for the process loop).
    pub(crate) fn has_signals(&self) -> bool {
        self.signals_pending.load(Ordering::Acquire)
    }

    /// Decides what an exit signal from `from` does to this process (see [`send_exit`]).
    fn judge_exit(&self, from: &Pid, reason: &ExitReason, linked: bool) -> ExitVerdict {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return ExitVerdict::Ignore;
        };
        if linked && !remove(&mut ties.links, |p| p == from) {
            // The link was removed (unlink): the signal is void.
            return ExitVerdict::Ignore;
        }
        // Cut off from a parent of another node: it ends at once, trapping or not, its
        // handler cut short. Its parent (a distributed supervisor) may start it again on
        // another node once it has waited for the loss to be seen here; a trapping child
        // taking the exit after a long handler would run beside its replacement.
        let cut_off =
            matches!(reason, ExitReason::NoConnection) && ties.remote_parent.as_ref() == Some(from);
        if cut_off {
            ExitVerdict::Die
        } else if self.trap_exit() {
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
        let ties = state.ties.as_mut()?;
        let signal = ties.signals.pop_front();
        if ties.signals.is_empty() {
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

    /// Records the scheduler thread the process runs on (from its first poll).
    pub(crate) fn set_home(&self, scheduler: usize) {
        self.home.store(scheduler, Ordering::Relaxed);
    }

    /// The scheduler thread the process runs on; 0 if not known yet.
    pub(crate) fn home(&self) -> usize {
        self.home.load(Ordering::Relaxed)
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
        self.lock().exit.reason()
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.lock().exit.is_some()
    }

    /// Adds a link to `peer`. Fails with `false` if this process has ended.
    pub(crate) fn add_link(&self, peer: &Pid) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        if !ties.links.contains(peer) {
            ties.links.push(peer.clone());
        }
        true
    }

    /// Removes the link to `peer`; `true` if it was there.
    pub(crate) fn remove_link(&self, peer: &Pid) -> bool {
        let mut state = self.lock();
        state
            .ties
            .as_mut()
            .is_some_and(|ties| remove(&mut ties.links, |p| p == peer))
    }

    /// Records that `watcher` monitors this process. Fails with `false` if it has ended.
    pub(crate) fn add_monitored_by(&self, monitor: MonitorRef, watcher: &Pid) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        ties.monitored_by.push((monitor, watcher.clone()));
        true
    }

    /// Forgets the monitor `watcher` holds on this process. (Monitor references are
    /// numbered per node: a watcher of another node may use the same number as a local
    /// one.)
    pub(crate) fn remove_monitored_by(&self, monitor: MonitorRef, watcher: &Pid) {
        if let Some(ties) = self.lock().ties.as_mut() {
            remove(&mut ties.monitored_by, |(m, w)| {
                *m == monitor && w == watcher
            });
        }
    }

    /// Forgets the monitor the process that spawned this one holds on it (a process of
    /// this node, whose monitor references are unique here).
    pub(crate) fn remove_spawner_monitor(&self, monitor: MonitorRef) {
        if let Some(ties) = self.lock().ties.as_mut() {
            let node = self.id.pid.node();
            remove(&mut ties.monitored_by, |(m, w)| {
                *m == monitor && w.node() == node
            });
        }
    }

    /// Records that this process monitors `target`. Fails with `false` if it has ended.
    pub(crate) fn add_watching(&self, monitor: MonitorRef, target: &Pid) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        ties.watching.push((monitor, target.clone()));
        true
    }

    /// Forgets a monitor this process holds; returns its target if it was still active.
    pub(crate) fn remove_watching(&self, monitor: MonitorRef) -> Option<Pid> {
        let mut state = self.lock();
        let watching = &mut state.ties.as_mut()?.watching;
        let at = watching.iter().position(|(m, _)| *m == monitor)?;
        Some(watching.swap_remove(at).1)
    }

    pub(crate) fn name(&self) -> Option<Arc<str>> {
        self.lock().ties.as_ref()?.name.clone()
    }

    /// Sets the process's name. Fails with the current name, or `Err(None)` if it has ended.
    pub(crate) fn set_name(&self, name: Arc<str>) -> Result<(), Option<Arc<str>>> {
        let mut state = self.lock();
        let ties = state.live_ties().ok_or(None)?;
        if let Some(current) = &ties.name {
            return Err(Some(current.clone()));
        }
        ties.name = Some(name);
        Ok(())
    }

    /// Clears the name if it is `name`.
    pub(crate) fn clear_name(&self, name: &str) {
        if let Some(ties) = self.lock().ties.as_mut() {
            if ties.name.as_deref() == Some(name) {
                ties.name = None;
            }
        }
    }

    /// Records that this process holds the global `name`. Fails with `false` if it has
    /// ended.
    pub(crate) fn add_global_name(&self, name: &Arc<str>) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        if !ties.global_names.contains(name) {
            ties.global_names.push(name.clone());
        }
        true
    }

    /// Forgets the global `name`.
    pub(crate) fn remove_global_name(&self, name: &str) {
        if let Some(ties) = self.lock().ties.as_mut() {
            remove(&mut ties.global_names, |n| &**n == name);
        }
    }

    /// Records that this process monitors `node`. Fails with `false` if it has ended.
    pub(crate) fn add_monitored_node(&self, node: &Arc<str>) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        ties.monitored_nodes.push(node.clone());
        true
    }

    /// Forgets one monitor of `node`; `true` if there was one.
    pub(crate) fn remove_monitored_node(&self, node: &str) -> bool {
        self.lock()
            .ties
            .as_mut()
            .is_some_and(|ties| remove(&mut ties.monitored_nodes, |n| &**n == node))
    }

    /// Attaches a timer that must be cancelled when this process ends. Fails with `false` if
    /// it already has.
    pub(crate) fn add_timer(&self, timer: Arc<TimerEntry>) -> bool {
        let mut state = self.lock();
        let Some(ties) = state.live_ties() else {
            return false;
        };
        ties.timers.push(timer);
        true
    }

    pub(crate) fn remove_timer(&self, timer: &Arc<TimerEntry>) {
        if let Some(ties) = self.lock().ties.as_mut() {
            remove(&mut ties.timers, |t| Arc::ptr_eq(t, timer));
        }
    }

    /// Records that `parent`, a process of another node, spawned this one with a link.
    pub(crate) fn set_remote_parent(&self, parent: &Pid) {
        self.lock().ties().remote_parent = Some(parent.clone());
    }

    /// The process that spawned this one with a link, on this node or another.
    pub(crate) fn parent(&self) -> Option<Pid> {
        self.id.parent().or_else(|| {
            let state = self.lock();
            state.ties.as_ref()?.remote_parent.clone()
        })
    }

    /// `true` if `pid` is this process's parent (see [`parent`](Self::parent)).
    pub(crate) fn is_parent(&self, pid: &Pid) -> bool {
        if pid.node() == self.id.pid.node() {
            return self.id.is_parent(pid);
        }
        let state = self.lock();
        state
            .ties
            .as_ref()
            .and_then(|ties| ties.remote_parent.as_ref())
            == Some(pid)
    }
}

/// Removes the first element matching `matches`; `true` if there was one.
fn remove<T>(items: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> bool {
    match items.iter().position(matches) {
        Some(at) => {
            items.swap_remove(at);
            true
        }
        None => false,
    }
}

/// A process seen without its behaviour type: what the process table stores.
pub(crate) trait AnyProcess: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// The behaviour's type name (not stored per process: known from the type).
    fn behavior(&self) -> &'static str;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn mailbox_len(&self) -> usize;
    /// Closes the mailbox and drops what was queued.
    fn close_mailbox(&self);
    /// Puts a system message at the back of the mailbox; `false` if the process has ended.
    fn deliver_system(&self, info: SystemInfo) -> bool;
    /// The behaviour's name and wire hash (the hash is 0 for a local-only behaviour).
    fn behavior_tag(&self) -> (&'static str, u32);
    /// Decodes a message from another node and queues it (or answers why not); `false` if
    /// it was a cast or an info and was dropped (another behaviour's, undecodable, or the
    /// process has ended).
    fn deliver_remote(self: Arc<Self>, delivery: crate::dist::inbound::RemoteDelivery) -> bool;
    /// Queues a run of casts and infos from another node — `run` says where each lies in
    /// `bytes` — in order, under one lock of the mailbox: decoded, staged in `staging`
    /// meanwhile, or for a long run still encoded (the process decodes each message as it
    /// reaches it); drops them if the process has ended. Returns how many were dropped
    /// (as `deliver_remote`). `peer`: the connection they came on.
    fn deliver_run(
        &self,
        bytes: &[u8],
        run: &[crate::dist::inbound::RunFrame],
        staging: &mut crate::dist::inbound::Staging,
        peer: &Arc<crate::dist::peer::Peer>,
    ) -> u32;
}
