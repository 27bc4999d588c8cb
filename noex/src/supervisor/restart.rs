//! What a child's end costs: whether it is restarted, with which siblings, counted
//! against the intensity — and, under a distributed supervisor, whether it was lost with
//! its node (see `placement`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::held::Held;
use super::placement::MAJORITY_RETRY;
use super::{AutoShutdown, Failed, Restart, Strategy, Supervisor};
use crate::events::LifecycleEvent;
use crate::server::Ctx;
use crate::{ExitReason, Pid};

/// Restart intensity: at most `max` restarts within `within`.
pub(super) struct Intensity {
    pub(super) max: u32,
    pub(super) within: Duration,
    pub(super) restarts: VecDeque<Instant>,
}

impl Intensity {
    /// Counts a restart now; `false` if that exceeds the limit.
    pub(super) fn allow(&mut self, now: Instant) -> bool {
        self.restarts.push_back(now);
        while let Some(&first) = self.restarts.front() {
            if now.duration_since(first) > self.within {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.len() as u32 <= self.max
    }
}

/// Whether a child that ended with `reason` is restarted.
fn restarts(restart: Restart, reason: &ExitReason) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => !reason.is_clean(),
        Restart::Temporary => false,
    }
}

impl Supervisor {
    /// Records that the child at `index` runs as `pid` now: a migration if its last run
    /// was lost with its node.
    pub(super) fn record_started(&mut self, index: usize, pid: Pid) {
        if let Some(placement) = self.placement.as_mut() {
            placement.migrations += u64::from(self.children[index].lost.is_some());
        }
        self.children[index].started(pid);
    }

    /// `true` if `pid`, a child started at `started`, ended with `reason` because its node
    /// is lost (not: it ended by itself with that reason, its node still up) — even if
    /// this node has reconnected to it since: the link went with the connection, so the
    /// child may still run there until its node ends it. A child of a node that announced
    /// its leave is lost with it whatever its reason: its node stopped it, leaving (see
    /// `dist::leaving`).
    pub(super) fn lost_with_node(
        ctx: &Ctx<Self>,
        pid: &Pid,
        started: Instant,
        reason: &ExitReason,
    ) -> bool {
        if pid.node() == ctx.pid().node() {
            return false;
        }
        let node = ctx.node();
        let lost = *reason == ExitReason::NoConnection
            && (!node.is_alive(pid) || node.lost_since(pid, started));
        lost || node.left(pid)
    }

    /// A child ended by itself: restart it (and its group) or let it go.
    pub(super) async fn child_exited(&mut self, ctx: &mut Ctx<Self>, pid: Pid, reason: ExitReason) {
        let Some(index) = self
            .children
            .iter()
            .position(|c| c.pid.as_ref() == Some(&pid))
        else {
            return; // Not a current child (already stopped by us, or replaced).
        };
        self.children[index].pid = None;
        self.ended_on(ctx, &pid);
        let spec = &self.children[index].spec;
        let id = spec.id.clone();
        let lost_node = Self::lost_with_node(ctx, &pid, self.children[index].started, &reason);
        // Its end came from its node, leaving (a lost node tells nothing): it has ended.
        let ended = reason != ExitReason::NoConnection;
        // Lost with its node, it did not end by itself: whatever its reason, it is
        // restarted as for the node's loss.
        let reason = match lost_node {
            true => ExitReason::NoConnection,
            false => reason,
        };
        if lost_node && restarts(spec.restart, &reason) && self.placement.is_some() {
            // Decided on the view of the cluster a moment later, when the loss that took
            // this node has taken the others it takes, or when the other children of a
            // leaving node have ended there (see `placement`).
            tracing::warn!(supervisor = %ctx.pid(), child = %id, %pid, "child lost with its node; it moves once a majority is seen");
            self.hold_lost(ctx, index, pid.node(), ended, Held::Migration);
            return;
        }
        if restarts(spec.restart, &reason) {
            tracing::error!(supervisor = %ctx.pid(), child = %id, %pid, %reason, "child terminated; restarting");
            self.restart(ctx, &id).await;
            return;
        }
        let significant = spec.significant;
        if spec.restart == Restart::Temporary || self.strategy == Strategy::SimpleOneForOne {
            self.children.remove(index);
        }
        let shut_down = significant
            && match self.auto_shutdown {
                AutoShutdown::Never => false,
                AutoShutdown::AnySignificant => true,
                // One waiting to be started again (its backoff, a retry) is not gone.
                AutoShutdown::AllSignificant => !self
                    .children
                    .iter()
                    .any(|c| c.spec.significant && (c.pid.is_some() || c.held.is_some())),
            };
        if shut_down {
            tracing::info!(supervisor = %ctx.pid(), child = %id, "significant child ended; shutting down");
            ctx.stop(ExitReason::Shutdown);
        }
    }

    /// Restarts the group of `id` (by strategy), counting one restart toward intensity.
    /// Returns `false` if the supervisor gave up (too many restarts).
    pub(super) async fn restart(&mut self, ctx: &mut Ctx<Self>, id: &str) -> bool {
        self.restart_counting(ctx, id, true).await
    }

    /// [`restart`](Self::restart), counted toward the intensity only if `count` (a move
    /// for a node's loss another move has counted).
    pub(super) async fn restart_counting(
        &mut self,
        ctx: &mut Ctx<Self>,
        id: &str,
        count: bool,
    ) -> bool {
        if count && !self.intensity.allow(Instant::now()) {
            tracing::error!(
                supervisor = %ctx.pid(),
                max_restarts = self.intensity.max,
                within = ?self.intensity.within,
                "MaxRestartsExceeded: too many restarts; shutting down"
            );
            if let Some(node) = ctx.node_inner() {
                node.events.publish(LifecycleEvent::MaxRestartsExceeded {
                    supervisor: ctx.pid().clone(),
                    max_restarts: self.intensity.max,
                    within: self.intensity.within,
                });
            }
            ctx.stop(ExitReason::Shutdown);
            return false;
        }
        if let Some(placement) = self.placement.as_mut() {
            placement.restarts += 1;
        }
        let Some(index) = self.position(id) else {
            return true;
        };
        let group: Vec<String> = match self.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => vec![id.to_owned()],
            Strategy::OneForAll => self.children.iter().map(|c| c.spec.id.clone()).collect(),
            Strategy::RestForOne => self.children[index..]
                .iter()
                .map(|c| c.spec.id.clone())
                .collect(),
        };
        for member in group.iter().rev() {
            let Some(i) = self.position(member) else {
                continue;
            };
            let (pid, started) = (self.children[i].pid.clone(), self.children[i].started);
            let stopped = self.stop_child(ctx, i).await;
            if member == id {
                continue;
            }
            let child = &mut self.children[i];
            if let Some((why @ Held::Retry, _)) = &mut child.held {
                // Its start failed and is to be tried again: this restart is its group's,
                // it only has to start (once that is safe, if it may run on a lost node).
                *why = match child.lost {
                    Some(_) => Held::GroupMigration,
                    None => Held::Backoff,
                };
            }
            if self.placement.is_none() {
                continue;
            }
            let temporary = child.spec.restart == Restart::Temporary;
            match (pid, stopped) {
                // Found lost with its node as it was stopped: it may run there still, so
                // it starts (alone: this is its group's restart) after the migration delay
                // — or, stopped by its leaving node, once the others there have ended.
                // (A temporary one is removed below.)
                (Some(pid), Some(reason))
                    if !temporary && Self::lost_with_node(ctx, &pid, started, &reason) =>
                {
                    let ended = reason != ExitReason::NoConnection;
                    self.hold_lost(ctx, i, pid.node(), ended, Held::GroupMigration);
                }
                // Lost with its node before, waiting to move: this restart is its group's,
                // it only has to start.
                _ => {
                    if let Some((why @ Held::Migration, _)) = &mut child.held {
                        *why = Held::GroupMigration;
                    }
                }
            }
        }
        // Temporary siblings stopped for the group are gone for good.
        self.children
            .retain(|c| c.spec.restart != Restart::Temporary || !group.contains(&c.spec.id));
        // Started in start order: once a member waits (its backoff, a failed start to be
        // tried again, a move), those after it wait too, and start after it (see
        // `start_held_back`).
        let mut waiting = false;
        for member in &group {
            let Some(i) = self.position(member) else {
                continue;
            };
            if member != id && self.children[i].held.is_some() {
                // Lost with its node and waiting for its own turn (a majority, say).
                waiting = true;
                continue;
            }
            if !self.safe_to_start(ctx, i) {
                // Lost with its node, then terminated by request (so not held): it may
                // still run there, and starts once that is safe, as a held lost child.
                let safe_at = self.children[i].lost.as_ref().map(|lost| lost.safe_at);
                let wait = safe_at.map_or(Duration::ZERO, |at| {
                    at.saturating_duration_since(Instant::now())
                });
                self.children[i].terminated = false;
                self.hold_back(ctx, i, Held::GroupMigration, wait);
                waiting = true;
                continue;
            }
            let backoff = self.children[i].backoff();
            if let Some(delay) = backoff {
                tracing::info!(supervisor = %ctx.pid(), child = %member, ?delay, "child restarts after its backoff");
            }
            if waiting || backoff.is_some() {
                self.hold_back(ctx, i, Held::Backoff, backoff.unwrap_or_default());
                waiting = true;
                continue;
            }
            if !self.start_again(ctx, i).await {
                waiting = true;
            }
        }
        true
    }

    /// Starts the child at `index` again (its restart counted already); if it fails,
    /// arranges another try and returns `false`.
    pub(super) async fn start_again(&mut self, ctx: &mut Ctx<Self>, index: usize) -> bool {
        let id = self.children[index].spec.id.clone();
        match self.start_at(ctx, index).await {
            Ok(started) => {
                tracing::info!(supervisor = %ctx.pid(), child = %id, pid = %started.pid, "child restarted");
                #[cfg(feature = "metrics")]
                if let Some(node) = ctx.node_inner() {
                    crate::metrics::restarted(&node);
                }
                self.publish(ctx, || LifecycleEvent::ChildRestarted {
                    supervisor: ctx.pid().clone(),
                    child: id.clone(),
                    pid: started.pid.clone(),
                });
                self.record_started(index, started.pid);
                true
            }
            Err(Failed { error, lost }) => {
                tracing::error!(supervisor = %ctx.pid(), child = %id, %error, "child restart failed; trying again");
                self.publish(ctx, || LifecycleEvent::ChildStartFailed {
                    supervisor: ctx.pid().clone(),
                    child: id.clone(),
                    error,
                });
                if let Some(node) = lost {
                    // It may run where it was asked to start: moved as a lost child.
                    self.hold_lost(ctx, index, &node, false, Held::Retry);
                } else {
                    // Spaced out for a distributed supervisor: the cluster may need a
                    // moment to offer a node.
                    let wait = match self.placement {
                        Some(_) => MAJORITY_RETRY,
                        None => Duration::ZERO,
                    };
                    self.hold_back(ctx, index, Held::Retry, wait);
                }
                false
            }
        }
    }
}
