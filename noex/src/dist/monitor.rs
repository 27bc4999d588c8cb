//! Monitors, links and exit signals between processes of different nodes.
//!
//! A pid of another node is handled with the local semantics (see `node::signals`, the one
//! place where such signals are routed local or remote); this module carries them over the
//! connection to the other node and keeps what each side must know:
//!
//! * the watcher's node records each monitor its processes hold on the peer's processes,
//!   and each link between its processes and the peer's, with the connection they were
//!   made on ([`PeerTies`]). When that connection is lost, every such monitor fires `Down`
//!   with `NoConnection` and every such link breaks with a `NoConnection` exit signal — at
//!   once, with no word needed from the lost node. A monitor or link set up while the
//!   process's node is not connected fails at once the same way.
//! * the target's node records the monitors and links the peer's processes hold on its own
//!   processes in those processes' cores, like local ones, and in the connection's ties, so
//!   that a lost connection removes them. When one of its processes ends, the `Down` and
//!   exit signals for the peer go out over the same connection as that process's messages,
//!   queued behind them: the peer sees a process's last messages before its end.
//!
//! Exactly one `Down` per monitor is delivered whatever races: a watcher's mailbox hands a
//! `Down` to its handler only if the monitor is still held (see `server::run::wanted`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::cluster::Cluster;
use super::peer::{Counters, Peer};
use super::status::{RemoteStats, TieStats};
use super::wire::{self, RemoteSignal, WireMessage};
use crate::node::NodeInner;
use crate::process::{send_exit, AnyProcess, Core, Signal, SystemInfo};
use crate::{ExitReason, MonitorRef, Pid};

/// Who holds a monitor on a process of the peer.
pub(crate) enum Watcher {
    /// A local process, by serial.
    Process(u64),
    /// A task waiting for the process's end (`ServerRef::exited`).
    Waiter(oneshot::Sender<ExitReason>),
}

/// What ties local processes to the processes of one peer, over one connection.
#[derive(Default)]
pub(crate) struct PeerTies {
    /// Monitors held here on the peer's processes: the watcher, and the target's serial.
    pub(super) watching: HashMap<MonitorRef, (Watcher, u64)>,
    /// Monitors the peer's processes hold on local ones: (monitor, watcher's serial) and
    /// the target's serial.
    pub(super) watched: HashMap<(MonitorRef, u64), u64>,
    /// Links: (local serial, the peer process's serial).
    pub(super) links: HashSet<(u64, u64)>,
    /// Set once the connection is lost: nothing is added afterwards.
    pub(super) lost: bool,
}

impl Peer {
    /// The pid of the peer's process with this serial.
    pub(crate) fn pid_of(&self, serial: u64) -> Pid {
        Pid::new(self.id.as_arc(), self.incarnation, serial)
    }

    /// Queues a signal behind everything `sender` (a process key, 0 for none) sent before.
    /// Signals are small and never refused for room: like replies, a process's end must
    /// not be lost to a full queue.
    fn signal(&self, signal: RemoteSignal, sender: usize) {
        let mut frame = Vec::new();
        let message = WireMessage::Signal(Box::new(signal));
        if wire::encode_frame(&message, &mut frame).is_ok() {
            let _ = self.queue.push_signal(&mut frame, sender);
        }
    }

    /// Queues the answer to one of the peer's signals (a `Down` or exit signal saying the
    /// process is not running). Counted as a reply: a peer that provokes answers without
    /// reading them is held back like one that calls without reading its replies.
    fn answer_signal(&self, signal: RemoteSignal) {
        let mut frame = Vec::new();
        let message = WireMessage::Signal(Box::new(signal));
        if wire::encode_frame(&message, &mut frame).is_ok() {
            let _ = self.queue.push_answer(&mut frame);
        }
    }

    pub(crate) fn tie_stats(&self) -> TieStats {
        let ties = self.ties();
        TieStats {
            monitors_out: ties.watching.len() as u64,
            monitors_in: ties.watched.len() as u64,
            links: ties.links.len() as u64,
        }
    }
}

/// The key a connection's queue orders a process's messages by (see
/// `server::run::current_sender`).
pub(crate) fn sender_key(process: &dyn AnyProcess) -> usize {
    process as *const dyn AnyProcess as *const () as usize
}

/// The connection to the node of `pid`, if it is connected with `pid`'s incarnation:
/// `Err(NoConnection)` if not connected, and if connected to another incarnation, as
/// [`Cluster::other_incarnation`] says (`NoProc` for an earlier one).
fn route(cluster: &Cluster, pid: &Pid) -> Result<Arc<Peer>, ExitReason> {
    let peer = cluster.peer(pid.node()).ok_or(ExitReason::NoConnection)?;
    if peer.incarnation != pid.incarnation() {
        return Err(cluster.other_incarnation(pid));
    }
    Ok(peer)
}

impl Cluster {
    /// `watcher` (which has recorded the monitor in its core) monitors `target`, a process
    /// of another node. Fails at once with a `Down` if that node is not connected.
    pub(crate) fn monitor(&self, watcher: &dyn AnyProcess, monitor: MonitorRef, target: &Pid) {
        let serial = watcher.core().pid().serial();
        let failed = match route(self, target) {
            Ok(peer) => {
                let mut ties = peer.ties();
                if ties.lost {
                    Some(ExitReason::NoConnection)
                } else {
                    let watch = (Watcher::Process(serial), target.serial());
                    ties.watching.insert(monitor, watch);
                    drop(ties);
                    let signal = RemoteSignal::Monitor {
                        monitor: monitor.0,
                        watcher: serial,
                        target: target.serial(),
                    };
                    peer.signal(signal, sender_key(watcher));
                    None
                }
            }
            Err(reason) => Some(reason),
        };
        if let Some(reason) = failed {
            self.count_down();
            watcher.deliver_system(SystemInfo::Down {
                monitor,
                pid: target.clone(),
                reason,
            });
        }
    }

    /// Waits for the end of `target`, a process of another node, through a monitor held by
    /// no process. Resolves with `NoConnection` if its node is lost first.
    pub(crate) async fn watch(&self, target: &Pid) -> ExitReason {
        let Some(node) = self.node() else {
            return ExitReason::NoConnection;
        };
        let (tx, rx) = oneshot::async_channel();
        let monitor = node.next_monitor_ref();
        drop(node);
        let peer = match route(self, target) {
            Ok(peer) => peer,
            Err(reason) => return reason,
        };
        {
            let mut ties = peer.ties();
            if ties.lost {
                return ExitReason::NoConnection;
            }
            ties.watching
                .insert(monitor, (Watcher::Waiter(tx), target.serial()));
        }
        // The monitor is named for a watcher that is not a process: its serial is 0.
        let signal = RemoteSignal::Monitor {
            monitor: monitor.0,
            watcher: 0,
            target: target.serial(),
        };
        peer.signal(signal, 0);
        // Given up (the future dropped): the monitor goes with it.
        let _demonitor = Demonitor {
            peer: &peer,
            monitor,
            target: target.serial(),
        };
        rx.await.unwrap_or(ExitReason::NoConnection)
    }

    /// Removes a monitor a local process held on `target`, a process of another node.
    /// `sender` is the process's key, 0 outside its handlers.
    pub(crate) fn demonitor(&self, watcher: u64, monitor: MonitorRef, target: &Pid, sender: usize) {
        if let Ok(peer) = route(self, target) {
            if peer.ties().watching.remove(&monitor).is_some() {
                let signal = RemoteSignal::Demonitor {
                    monitor: monitor.0,
                    watcher,
                    target: target.serial(),
                };
                peer.signal(signal, sender);
            }
        }
    }

    /// Links `process` (which has recorded the link in its core) with `peer_pid`, a process
    /// of another node. If that node is not connected, the link is undone and `process`
    /// gets an exit signal (`NoConnection`, or `NoProc` for a pid of an earlier incarnation
    /// of its node).
    pub(crate) fn link(&self, process: &dyn AnyProcess, peer_pid: &Pid) {
        let serial = process.core().pid().serial();
        let failed = match route(self, peer_pid) {
            Ok(peer) => {
                let mut ties = peer.ties();
                if ties.lost {
                    Some(ExitReason::NoConnection)
                } else {
                    ties.links.insert((serial, peer_pid.serial()));
                    drop(ties);
                    let signal = RemoteSignal::Link {
                        from: serial,
                        to: peer_pid.serial(),
                    };
                    peer.signal(signal, sender_key(process));
                    None
                }
            }
            Err(reason) => Some(reason),
        };
        if let Some(reason) = failed {
            process.core().remove_link(peer_pid);
            send_exit(process, peer_pid, reason, false);
        }
    }

    /// Removes the link between `core` and `peer_pid`, a process of another node.
    pub(crate) fn unlink(&self, core: &Core, peer_pid: &Pid) {
        let serial = core.pid().serial();
        if let Ok(peer) = route(self, peer_pid) {
            if peer.ties().links.remove(&(serial, peer_pid.serial())) {
                let signal = RemoteSignal::Unlink {
                    from: serial,
                    to: peer_pid.serial(),
                };
                peer.signal(signal, crate::server::run::current_sender());
            }
        }
    }

    /// Sends an exit signal (not through a link) from `from` to `to`, a process of another
    /// node. `false` if its node is not connected.
    pub(crate) fn exit(&self, from: &Pid, to: &Pid, reason: ExitReason) -> bool {
        let Ok(peer) = route(self, to) else {
            return false;
        };
        let signal = RemoteSignal::Exit {
            from: from.serial(),
            to: to.serial(),
            reason,
            linked: false,
        };
        peer.signal(signal, crate::server::run::current_sender());
        true
    }

    /// Kills `pid`, a process of another node. `false` if its node is not connected.
    pub(crate) fn kill(&self, pid: &Pid) -> bool {
        let Ok(peer) = route(self, pid) else {
            return false;
        };
        let sender = crate::server::run::current_sender();
        peer.signal(RemoteSignal::Kill { to: pid.serial() }, sender);
        true
    }

    /// `process` ended with `reason`: tells the other nodes concerned — the processes it
    /// was linked with, those that monitored it — and drops the monitors it held there.
    /// Each signal goes behind the process's own messages on its connection.
    pub(crate) fn ended(&self, process: &dyn AnyProcess, reason: &ExitReason, remote: Remote) {
        let pid = process.core().pid();
        let key = sender_key(process);
        for peer_pid in remote.links {
            if let Ok(peer) = route(self, &peer_pid) {
                if peer.ties().links.remove(&(pid.serial(), peer_pid.serial())) {
                    let signal = RemoteSignal::Exit {
                        from: pid.serial(),
                        to: peer_pid.serial(),
                        reason: reason.clone(),
                        linked: true,
                    };
                    peer.signal(signal, key);
                }
            }
        }
        for (monitor, watcher) in remote.monitored_by {
            if let Ok(peer) = route(self, &watcher) {
                let known = peer
                    .ties()
                    .watched
                    .remove(&(monitor, watcher.serial()))
                    .is_some();
                if known {
                    let signal = RemoteSignal::Down {
                        monitor: monitor.0,
                        pid: pid.serial(),
                        reason: reason.clone(),
                    };
                    peer.signal(signal, key);
                }
            }
        }
        for (monitor, target) in remote.watching {
            self.demonitor(pid.serial(), monitor, &target, key);
        }
    }

    /// `true` if `signal` acts on its process at once rather than through its mailbox,
    /// so that it need not wait behind messages from the same peer that are held back
    /// (see `ClusterConfig::mailbox_limit`): a kill, an exit signal its target does not
    /// trap (it kills the target, or is ignored), a link or a monitor, or their undoing.
    /// An exit signal the target traps becomes a message, and a `Down` is one: those keep
    /// their place behind the messages sent before them (a `Down` after the last messages
    /// of the process that ended).
    pub(crate) fn acts_at_once(&self, signal: &RemoteSignal) -> bool {
        match signal {
            RemoteSignal::Kill { .. }
            | RemoteSignal::Link { .. }
            | RemoteSignal::Unlink { .. }
            | RemoteSignal::Monitor { .. }
            | RemoteSignal::Demonitor { .. } => true,
            RemoteSignal::Exit { to, .. } => self
                .node()
                .and_then(|node| node.table.get(*to))
                .is_none_or(|process| !process.core().trap_exit()),
            RemoteSignal::Down { .. } => false,
        }
    }

    /// A signal from `peer` for one of this node's processes.
    pub(crate) fn receive_signal(&self, peer: &Arc<Peer>, signal: RemoteSignal) {
        let Some(node) = self.node() else {
            return;
        };
        let local = |serial: u64| node.table.get(serial);
        match signal {
            RemoteSignal::Link { from, to } => {
                let from_pid = peer.pid_of(from);
                let (linked, lost) = {
                    let mut ties = peer.ties();
                    let linked = !ties.lost
                        && local(to).is_some_and(|process| process.core().add_link(&from_pid));
                    if linked {
                        ties.links.insert((to, from));
                    }
                    (linked, ties.lost)
                };
                // (Over a lost connection, no answer: the linker's node sees the loss.)
                if !linked && !lost {
                    // As for a local link to a process that is not running: the linker's
                    // side of the link goes (a linked signal removes it) and it gets an
                    // exit signal `NoProc` (behind the release of the process's names).
                    let peer = peer.clone();
                    node.once_ended(local(to), move || {
                        peer.answer_signal(RemoteSignal::Exit {
                            from: to,
                            to: from,
                            reason: ExitReason::NoProc,
                            linked: true,
                        })
                    });
                }
            }
            RemoteSignal::Unlink { from, to } => {
                peer.ties().links.remove(&(to, from));
                if let Some(process) = local(to) {
                    process.core().remove_link(&peer.pid_of(from));
                }
            }
            RemoteSignal::Exit {
                from,
                to,
                reason,
                linked,
            } => {
                if linked {
                    peer.ties().links.remove(&(to, from));
                }
                if let Some(process) = local(to) {
                    send_exit(process.as_ref(), &peer.pid_of(from), reason, linked);
                }
            }
            RemoteSignal::Kill { to } => {
                if let Some(process) = local(to) {
                    process.core().signal(Signal::Die(ExitReason::Killed));
                }
            }
            RemoteSignal::Monitor {
                monitor,
                watcher,
                target,
            } => {
                let monitor = MonitorRef(monitor);
                let watcher_pid = peer.pid_of(watcher);
                let (watched, lost) = {
                    let mut ties = peer.ties();
                    let watched = !ties.lost
                        && local(target).is_some_and(|process| {
                            process.core().add_monitored_by(monitor, &watcher_pid)
                        });
                    if watched {
                        ties.watched.insert((monitor, watcher), target);
                    }
                    (watched, ties.lost)
                };
                // (Over a lost connection, no answer: the watcher's node sees the loss.)
                if !watched && !lost {
                    // Behind the release of the process's names and groups.
                    let peer = peer.clone();
                    node.once_ended(local(target), move || {
                        peer.answer_signal(RemoteSignal::Down {
                            monitor: monitor.0,
                            pid: target,
                            reason: ExitReason::NoProc,
                        })
                    });
                }
            }
            RemoteSignal::Demonitor {
                monitor,
                watcher,
                target,
            } => {
                let monitor = MonitorRef(monitor);
                peer.ties().watched.remove(&(monitor, watcher));
                if let Some(process) = local(target) {
                    process
                        .core()
                        .remove_monitored_by(monitor, &peer.pid_of(watcher));
                }
            }
            RemoteSignal::Down {
                monitor,
                pid,
                reason,
            } => {
                let monitor = MonitorRef(monitor);
                let watch = peer.ties().watching.remove(&monitor);
                if let Some((watcher, _)) = watch {
                    self.deliver_down(&node, watcher, monitor, peer.pid_of(pid), reason);
                }
            }
        }
    }

    /// The connection to `peer` is lost: every monitor held on its processes fires `Down`
    /// with `NoConnection`, every link with them breaks with a `NoConnection` exit signal,
    /// and the monitors and links its processes held here are removed.
    pub(crate) fn ties_lost(&self, peer: &Peer) {
        let ties = {
            let lost = PeerTies {
                lost: true,
                ..PeerTies::default()
            };
            std::mem::replace(&mut *peer.ties(), lost)
        };
        let Some(node) = self.node() else {
            return;
        };
        for (monitor, (watcher, target)) in ties.watching {
            let target = peer.pid_of(target);
            self.deliver_down(&node, watcher, monitor, target, ExitReason::NoConnection);
        }
        for (local, remote) in ties.links {
            if let Some(process) = node.table.get(local) {
                let remote = peer.pid_of(remote);
                send_exit(process.as_ref(), &remote, ExitReason::NoConnection, true);
            }
        }
        for ((monitor, watcher), target) in ties.watched {
            if let Some(process) = node.table.get(target) {
                let watcher = peer.pid_of(watcher);
                process.core().remove_monitored_by(monitor, &watcher);
            }
        }
    }

    fn deliver_down(
        &self,
        node: &NodeInner,
        watcher: Watcher,
        monitor: MonitorRef,
        pid: Pid,
        reason: ExitReason,
    ) {
        self.count_down();
        match watcher {
            Watcher::Process(serial) => {
                if let Some(process) = node.table.get(serial) {
                    process.deliver_system(SystemInfo::Down {
                        monitor,
                        pid,
                        reason,
                    });
                }
            }
            Watcher::Waiter(waiter) => {
                let _ = waiter.send(reason);
            }
        }
    }

    fn count_down(&self) {
        Counters::add(&self.downs_delivered, 1);
    }

    /// The node's counters of its work with processes of other nodes.
    pub(crate) fn remote_stats(&self) -> RemoteStats {
        RemoteStats {
            downs_delivered: self.downs_delivered.load(Ordering::Relaxed),
            spawns: self.spawn_counters.stats(),
        }
    }
}

/// What a process that ended held with processes of other nodes.
#[derive(Default)]
pub(crate) struct Remote {
    pub(crate) links: Vec<Pid>,
    pub(crate) monitored_by: Vec<(MonitorRef, Pid)>,
    pub(crate) watching: Vec<(MonitorRef, Pid)>,
}

impl Remote {
    pub(crate) fn is_empty(&self) -> bool {
        self.links.is_empty() && self.monitored_by.is_empty() && self.watching.is_empty()
    }
}

/// Removes a waiter's monitor if its future is dropped before the `Down`.
struct Demonitor<'a> {
    peer: &'a Peer,
    monitor: MonitorRef,
    target: u64,
}

impl Drop for Demonitor<'_> {
    fn drop(&mut self) {
        // Still there only if no `Down` came (and the connection is not lost).
        if self.peer.ties().watching.remove(&self.monitor).is_some() {
            let signal = RemoteSignal::Demonitor {
                monitor: self.monitor.0,
                watcher: 0,
                target: self.target,
            };
            self.peer.signal(signal, 0);
        }
    }
}

#[cfg(test)]
mod tests;
