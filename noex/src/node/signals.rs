//! Untyped operations between processes of one node: links, monitors, exit signals, stops,
//! and the end of a process.

use std::time::Duration;

use super::NodeInner;
use crate::error::SendError;
use crate::events::LifecycleEvent;
use crate::process::{send_exit, AnyProcess, Core, Signal, SystemInfo};
use crate::server::deadline::Deadline;
use crate::{ExitReason, MonitorRef, Pid};

impl NodeInner {
    /// Links `process` (a running process, the caller) with `peer`. If `peer` is not
    /// running, `process` receives an exit signal with reason `NoProc` instead.
    pub(crate) fn link(&self, process: &dyn AnyProcess, peer: &Pid) {
        let core = process.core();
        if peer == core.pid() {
            return;
        }
        // Record our side first: if the peer dies right after, its exit signal finds the link.
        core.add_link(peer);
        let linked = self
            .resolve(peer)
            .is_some_and(|p| p.core().add_link(core.pid()));
        if !linked {
            core.remove_link(peer);
            send_exit(process, peer, ExitReason::NoProc, false);
        }
    }

    /// Removes the link between `core` and `peer`, on both sides.
    pub(crate) fn unlink(&self, core: &Core, peer: &Pid) {
        core.remove_link(peer);
        if let Some(p) = self.resolve(peer) {
            p.core().remove_link(core.pid());
        }
    }

    /// Makes `process` monitor `target`. A target that is not running produces an
    /// immediate `Down` with reason `NoProc`.
    pub(crate) fn monitor(&self, process: &dyn AnyProcess, target: &Pid) -> MonitorRef {
        let core = process.core();
        let monitor = self.next_monitor_ref();
        core.add_watching(monitor, target);
        let watched = self
            .resolve(target)
            .is_some_and(|p| p.core().add_monitored_by(monitor, core.pid()));
        if !watched {
            process.deliver_system(SystemInfo::Down {
                monitor,
                pid: target.clone(),
                reason: ExitReason::NoProc,
            });
        }
        monitor
    }

    /// Removes a monitor held by `core`; `true` if it was still active.
    pub(crate) fn demonitor(&self, core: &Core, monitor: MonitorRef) -> bool {
        match core.remove_watching(monitor) {
            Some(target) => {
                if let Some(p) = self.resolve(&target) {
                    p.core().remove_monitored_by(monitor);
                }
                true
            }
            None => false,
        }
    }

    /// Sends an untrappable kill.
    pub(crate) fn kill(&self, pid: &Pid) -> bool {
        self.resolve(pid)
            .is_some_and(|p| p.core().signal(Signal::Die(ExitReason::Killed)))
    }

    /// Sends an exit signal from `from` (not through a link). `false` if `pid` is not
    /// running.
    pub(crate) fn exit(&self, from: &Pid, pid: &Pid, reason: ExitReason) -> bool {
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
        let process = self.resolve(pid).ok_or(SendError::NoProc)?;
        stop_process(process.core(), reason, grace).await
    }

    /// Records the end of `process` and tells everyone concerned, in OTP's order: queued
    /// requests fail, timers are cancelled, the name is released, the process leaves the
    /// table, then linked processes get exit signals and monitors get `Down`.
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
        self.table.remove(pid.serial());
        for (monitor, target) in &remains.watching {
            if let Some(p) = self.resolve(target) {
                p.core().remove_monitored_by(*monitor);
            }
        }
        for peer in remains.links {
            if let Some(p) = self.resolve(&peer) {
                send_exit(p.as_ref(), pid, reason.clone(), true);
            }
        }
        for (monitor, watcher) in remains.monitored_by {
            if let Some(p) = self.resolve(&watcher) {
                p.deliver_system(SystemInfo::Down {
                    monitor,
                    pid: pid.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if self.events.is_active() {
            self.events.publish(LifecycleEvent::Exited {
                pid: pid.clone(),
                reason: reason.clone(),
            });
        }
        core.notify_exited();
        log_exit(pid, core.id.behavior, &reason);
    }
}

/// See [`NodeInner::stop`]; works on a core directly (a `ServerRef` holds one).
pub(crate) async fn stop_process(
    core: &Core,
    reason: ExitReason,
    grace: Option<Duration>,
) -> Result<ExitReason, SendError> {
    if !core.signal(Signal::Stop(reason)) {
        return Err(SendError::NoProc);
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
