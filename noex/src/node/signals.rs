//! Untyped operations between processes of one node: links, monitors, exit signals, stops,
//! and the end of a process.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::NodeInner;
use crate::dist::monitor::Remote;
use crate::dist::{remote, Cluster};
use crate::error::{SendError, Target};
use crate::events::LifecycleEvent;
use crate::process::{send_exit, AnyProcess, Core, Signal, SystemInfo};
use crate::server::deadline::Deadline;
use crate::{ExitReason, MonitorRef, Pid};

impl NodeInner {
    /// `true` if `pid` names a process of another node. Unclustered nodes in one OS
    /// process share a name (`nonode` unless named): a pid with this node's name and
    /// another incarnation belongs to another of them (or to a node no longer running),
    /// which this node cannot reach — not to a process of this one that has ended. (A
    /// clustered node's id is unique: there, another incarnation is an earlier run of
    /// this node, whose processes have all ended.)
    pub(crate) fn is_remote(&self, pid: &Pid) -> bool {
        pid.node() != &*self.name
            || (pid.incarnation() != self.incarnation && self.cluster.get().is_none())
    }

    /// The cluster, for a pid of another node; `None` on a local node.
    fn cluster_for(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Gives `answer` — what tells someone that `target`, found ended, is not running —
    /// once `target`'s end has been fully processed: at once if it has (or `target` is
    /// gone from the table), else when it is, behind the answers kept before it (see
    /// [`Core::answer_when_ended`]). A process found ended may still be in the middle of
    /// [`finalize`](Self::finalize) on another thread, its names and groups not yet
    /// released here and on the peers, its earlier watchers not yet told: an answer given
    /// then would overtake those. (`finalize` takes the process out of the table last, so
    /// that every such answer is kept.)
    pub(crate) fn once_ended(
        &self,
        target: Option<Arc<dyn AnyProcess>>,
        answer: impl FnOnce() + Send + 'static,
    ) {
        let answer: crate::process::Answer = Box::new(answer);
        let now = match target {
            Some(target) => target.core().answer_when_ended(answer),
            None => Some(answer),
        };
        if let Some(answer) = now {
            answer();
        }
    }

    /// Links `process` (a running process, the caller) with `peer`. If `peer` is not
    /// running, `process` receives an exit signal with reason `NoProc` instead, once the
    /// peer's end is processed (see [`once_ended`](Self::once_ended); for a process of a
    /// node that is not connected, `NoConnection`).
    pub(crate) fn link(&self, process: &dyn AnyProcess, peer: &Pid) {
        let core = process.core();
        if peer == core.pid() {
            return;
        }
        // Record our side first: if the peer dies right after, its exit signal finds the link.
        core.add_link(peer);
        if self.is_remote(peer) {
            match self.cluster_for() {
                Some(cluster) => cluster.link(process, peer),
                None => {
                    core.remove_link(peer);
                    send_exit(process, peer, ExitReason::NoConnection, false);
                }
            }
            return;
        }
        let target = self.resolve(peer);
        let linked = target
            .as_ref()
            .is_some_and(|p| p.core().add_link(core.pid()));
        if !linked {
            core.remove_link(peer);
            let (linker, peer) = (self.resolve(core.pid()), peer.clone());
            self.once_ended(target, move || {
                if let Some(linker) = linker {
                    send_exit(linker.as_ref(), &peer, ExitReason::NoProc, false);
                }
            });
        }
    }

    /// Removes the link between `core` and `peer`, on both sides.
    pub(crate) fn unlink(&self, core: &Core, peer: &Pid) {
        core.remove_link(peer);
        if self.is_remote(peer) {
            if let Some(cluster) = self.cluster_for() {
                cluster.unlink(core, peer);
            }
        } else if let Some(p) = self.resolve(peer) {
            p.core().remove_link(core.pid());
        }
    }

    /// Makes `process` monitor `target`. A target that is not running produces a `Down`
    /// with reason `NoProc` once its end is processed (see [`once_ended`](Self::once_ended);
    /// for a process of a node that is not connected, `NoConnection`, at once).
    pub(crate) fn monitor(&self, process: &dyn AnyProcess, target: &Pid) -> MonitorRef {
        let core = process.core();
        let monitor = self.next_monitor_ref();
        core.add_watching(monitor, target);
        if self.is_remote(target) {
            match self.cluster_for() {
                Some(cluster) => cluster.monitor(process, monitor, target),
                None => {
                    process.deliver_system(SystemInfo::Down {
                        monitor,
                        pid: target.clone(),
                        reason: ExitReason::NoConnection,
                    });
                }
            }
            return monitor;
        }
        let target_process = self.resolve(target);
        let watched = target_process
            .as_ref()
            .is_some_and(|p| p.core().add_monitored_by(monitor, core.pid()));
        if !watched {
            let down = SystemInfo::Down {
                monitor,
                pid: target.clone(),
                reason: ExitReason::NoProc,
            };
            let watcher = self.resolve(core.pid());
            self.once_ended(target_process, move || {
                if let Some(watcher) = watcher {
                    watcher.deliver_system(down);
                }
            });
        }
        monitor
    }

    /// Removes a monitor held by `core`; `true` if it was still active.
    pub(crate) fn demonitor(&self, core: &Core, monitor: MonitorRef) -> bool {
        match core.remove_watching(monitor) {
            Some(target) => {
                if self.is_remote(&target) {
                    if let Some(cluster) = self.cluster_for() {
                        let sender = crate::server::run::current_sender();
                        cluster.demonitor(core.pid().serial(), monitor, &target, sender);
                    }
                } else if let Some(p) = self.resolve(&target) {
                    p.core().remove_monitored_by(monitor, core.pid());
                }
                true
            }
            None => false,
        }
    }

    /// Sends an untrappable kill. `false` if `pid` is not running — for a process of
    /// another node: if its node is not connected (the kill is sent otherwise).
    pub(crate) fn kill(&self, pid: &Pid) -> bool {
        if self.is_remote(pid) {
            return self.cluster_for().is_some_and(|c| c.kill(pid));
        }
        self.resolve(pid)
            .is_some_and(|p| p.core().signal(Signal::Die(ExitReason::Killed)))
    }

    /// Sends an exit signal from `from` (not through a link). `false` if `pid` is not
    /// running — for a process of another node: if its node is not connected.
    pub(crate) fn exit(&self, from: &Pid, pid: &Pid, reason: ExitReason) -> bool {
        if self.is_remote(pid) {
            return self
                .cluster_for()
                .is_some_and(|c| c.exit(from, pid, reason));
        }
        match self.resolve(pid) {
            Some(target) => {
                send_exit(target.as_ref(), from, reason, false);
                true
            }
            None => false,
        }
    }

    /// Stops a process gracefully: it finishes its current message, runs `terminate` and
    /// ends with `reason`. With a `grace`, it is killed if it has not ended by then.
    /// Resolves with the reason it actually ended with.
    pub(crate) async fn stop(
        &self,
        pid: &Pid,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        if self.is_remote(pid) {
            let cluster = self.cluster_for().ok_or_else(|| SendError::NoConnection {
                node: pid.node().to_owned(),
            })?;
            return remote::stop(cluster, pid, reason, grace).await;
        }
        let process = self.resolve(pid).ok_or_else(|| SendError::NoProc {
            target: Target::Pid(pid.clone()),
        })?;
        if crate::server::run::is_current_any(process.as_ref()) {
            return Err(SendError::StoppingSelf);
        }
        stop_process(process.core(), reason, grace).await
    }

    /// Waits until `pid` has ended and returns why: `NoProc` at once for a process that
    /// is not running; for a process of another node, `NoConnection` if its node is (or
    /// gets) disconnected first.
    pub(crate) async fn exited(&self, pid: &Pid) -> ExitReason {
        if self.is_remote(pid) {
            return match self.cluster_for() {
                Some(cluster) => cluster.watch(pid).await,
                None => ExitReason::NoConnection,
            };
        }
        match self.resolve(pid) {
            Some(process) => process.core().exited().await,
            None => ExitReason::NoProc,
        }
    }

    /// `true` while `pid` runs — for a process of another node: while its node is
    /// connected with the pid's incarnation (a node learns of a remote process's end
    /// through a monitor; see [`exited`](Self::exited)).
    pub(crate) fn is_alive(&self, pid: &Pid) -> bool {
        if self.is_remote(pid) {
            return self.cluster_for().is_some_and(|c| c.reaches(pid));
        }
        self.resolve(pid).is_some_and(|p| p.core().is_alive())
    }

    /// Records the end of `process` and tells everyone concerned, in OTP's order: queued
    /// requests fail, timers are cancelled, the name is released, then linked processes
    /// get exit signals and monitors get `Down` — those of other nodes over the connection
    /// its messages took, behind them — and the process leaves the table. (Ended, it is
    /// no longer alive nor reachable meanwhile; links and monitors asked of it then are
    /// answered once its end is processed: see `once_ended`.)
    pub(crate) fn finalize(&self, process: &dyn AnyProcess, reason: ExitReason) {
        let core = process.core();
        let Some(remains) = core.mark_exited(reason.clone()) else {
            return;
        };
        process.close_mailbox();
        for timer in &remains.timers {
            timer.cancel();
        }
        let pid = core.pid();
        if let Some(name) = &remains.name {
            self.registry.release(name, pid);
        }
        if !remains.global_names.is_empty() || !remains.groups.is_empty() {
            self.global
                .process_ended(self, pid, &remains.global_names, remains.groups.keys());
        }
        self.ended_messages
            .fetch_add(core.message_count(), Ordering::Relaxed);
        let mut remote = Remote::default();
        for (monitor, target) in remains.watching {
            if self.is_remote(&target) {
                remote.watching.push((monitor, target));
            } else if let Some(p) = self.resolve(&target) {
                p.core().remove_monitored_by(monitor, pid);
            }
        }
        for peer in remains.links {
            if self.is_remote(&peer) {
                remote.links.push(peer);
            } else if let Some(p) = self.resolve(&peer) {
                send_exit(p.as_ref(), pid, reason.clone(), true);
            }
        }
        for (monitor, watcher) in remains.monitored_by {
            if self.is_remote(&watcher) {
                remote.monitored_by.push((monitor, watcher));
            } else if let Some(p) = self.resolve(&watcher) {
                p.deliver_system(SystemInfo::Down {
                    monitor,
                    pid: pid.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if let Some(cluster) = self.cluster_for() {
            if !remote.is_empty() {
                cluster.ended(process, &reason, remote);
            }
        }
        if !remains.monitored_nodes.is_empty() {
            if let Some(cluster) = self.cluster_for() {
                cluster.forget_node_monitors(pid.serial(), &remains.monitored_nodes);
            }
        }
        if self.events.is_active() {
            self.events.publish(LifecycleEvent::Exited {
                pid: pid.clone(),
                reason: reason.clone(),
            });
        }
        // Out of the table last: until then, a link or monitor asked of it finds it ended
        // and is answered behind what this sent (see `once_ended`).
        self.table.remove(pid.serial());
        core.notify_exited();
        log_exit(pid, process.behavior(), &reason);
    }
}

/// See [`NodeInner::stop`]; works on a core directly (a `ServerRef` holds one).
pub(crate) async fn stop_process(
    core: &Core,
    reason: ExitReason,
    grace: Option<Duration>,
) -> Result<ExitReason, SendError> {
    if !core.signal(Signal::Stop(reason)) {
        return Err(SendError::NoProc {
            target: Target::Pid(core.pid().clone()),
        });
    }
    let Some(grace) = grace else {
        return Ok(core.exited().await);
    };
    // A thread's deadline table rather than a reactor timer (see `spawn`).
    let ended = Deadline::after(grace).run(core.exited()).await;
    match ended {
        Some(reason) => Ok(reason),
        None => {
            let pid = core.pid();
            tracing::warn!(%pid, "did not stop within its grace period; killing it");
            core.signal(Signal::Die(ExitReason::Killed));
            Ok(core.exited().await)
        }
    }
}

fn log_exit(pid: &Pid, behavior: &str, reason: &ExitReason) {
    match reason {
        ExitReason::Normal | ExitReason::Shutdown => {
            tracing::debug!(%pid, behavior, %reason, "process exited")
        }
        _ => tracing::warn!(%pid, behavior, %reason, "process exited abnormally"),
    }
}

#[cfg(test)]
mod tests;
