//! Children waiting to be started again: after their restart backoff, or — for a
//! distributed supervisor — until this side sees a majority (a child lost with its node)
//! or a node can take them (a failed restart). One timer, armed for the earliest wait.
//!
//! A child lost with its node (`Child::lost`) starts only while this side sees a
//! majority, whatever it waits for; not before the migration delay has passed since the
//! loss was seen, as its last run may still go on there, unseen — unless its node,
//! leaving, told its end; and not while a child of this supervisor still runs on that
//! node, leaving, so that the children of a leaving node move together. The timer is not
//! armed for a child waiting for those: the end of one there (`ended_on`) arms it.

use std::time::{Duration, Instant};

use super::placement::MAJORITY_RETRY;
use super::{Lost, Strategy, Supervisor};
use crate::server::Ctx;
use crate::Pid;

/// Why a child waits to be started again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Held {
    /// Its restart waits for its backoff delay (the restart is counted already).
    Backoff,
    /// Lost with its node: it moves (its group restarted) once this side sees a majority.
    Migration,
    /// Lost with its node, and its group restarted since (for a sibling): it only has to
    /// start, once this side sees a majority.
    GroupMigration,
    /// Its restart failed (no node could take it, say): tried again.
    Retry,
}

/// How long a distributed supervisor waits before moving a child lost with its node: the
/// child must have ended there first (see `placement`).
pub(super) fn migration_delay(ctx: &Ctx<Supervisor>) -> Duration {
    super::placement::loss_delay(&ctx.node())
}

impl Supervisor {
    /// Holds the child at `index` back for `wait`, then starts it (see
    /// [`start_held_back`](Self::start_held_back)).
    pub(super) fn hold_back(
        &mut self,
        ctx: &mut Ctx<Self>,
        index: usize,
        why: Held,
        wait: Duration,
    ) {
        let at = crate::timer::instant_after(wait);
        self.children[index].held = Some((why, at));
        self.arm_timer(ctx, at);
    }

    /// Holds the child at `index`, whose last run was lost with `node` (or may go on
    /// there: it was asked to start it without answering), for the migration delay — none
    /// if `ended` (the node, leaving, told its end) — and, either way, while a child of
    /// this supervisor still runs there, leaving (see [`leaving_nodes`](Self::leaving_nodes)).
    /// The children waiting to move for the loss of that node wait as long as the last of
    /// them: children lost together move together, in one restart of their group.
    pub(super) fn hold_lost(
        &mut self,
        ctx: &mut Ctx<Self>,
        index: usize,
        node: &str,
        ended: bool,
        why: Held,
    ) {
        let wait = match ended {
            true => Duration::ZERO,
            false => migration_delay(ctx),
        };
        let lost_there = self.children.iter().filter_map(|c| c.lost.as_ref());
        let at = lost_there
            .filter(|lost| lost.node == node)
            .map(|lost| lost.safe_at)
            .fold(crate::timer::instant_after(wait), Instant::max);
        for child in &mut self.children {
            let Some(lost) = child.lost.as_mut().filter(|lost| lost.node == node) else {
                continue;
            };
            lost.safe_at = at;
            if let Some((Held::Migration | Held::GroupMigration, held_until)) = &mut child.held {
                *held_until = at;
            }
        }
        self.children[index].lost = Some(Lost {
            node: node.to_owned(),
            safe_at: at,
        });
        self.children[index].held = Some((why, at));
        self.arm_timer(ctx, at);
    }

    /// `true` if the child at `index` may start now: its last run cannot still go on
    /// unseen (it was not lost, or the migration delay has passed — or its leaving node
    /// reported its end — no child runs on that leaving node any more, and this side sees
    /// a majority).
    pub(super) fn safe_to_start(&mut self, ctx: &Ctx<Self>, index: usize) -> bool {
        let Some(lost) = &self.children[index].lost else {
            return true;
        };
        let waited =
            Instant::now() >= lost.safe_at && !self.leaving_nodes(ctx).contains(&lost.node);
        waited
            && self
                .placement
                .as_mut()
                .is_none_or(|p| p.sees_majority(&ctx.node()))
    }

    /// The nodes where a child of this supervisor still runs on an incarnation that
    /// announced its leave: that node stops it, and the children lost with the node wait
    /// for it to end there, to move together (see `placement`).
    fn leaving_nodes(&self, ctx: &Ctx<Self>) -> Vec<String> {
        let node = ctx.node();
        let mut leaving: Vec<String> = Vec::new();
        for pid in self.children.iter().filter_map(|c| c.pid.as_ref()) {
            let elsewhere = pid.node() != ctx.pid().node();
            if elsewhere && !leaving.iter().any(|n| n == pid.node()) && node.left(pid) {
                leaving.push(pid.node().to_owned());
            }
        }
        leaving
    }

    /// The child that ran as `pid` has ended (or was stopped): if its node announced its
    /// leave, the children lost with that node may no longer have to wait for it, and the
    /// timer looks at once.
    pub(super) fn ended_on(&mut self, ctx: &mut Ctx<Self>, pid: &Pid) {
        let waiting = self.children.iter().any(|c| {
            c.held.is_some() && c.lost.as_ref().is_some_and(|lost| lost.node == pid.node())
        });
        if waiting && ctx.node().left(pid) {
            self.arm_timer(ctx, Instant::now());
        }
    }

    /// Makes sure the timer fires by `at`.
    fn arm_timer(&mut self, ctx: &mut Ctx<Self>, at: Instant) {
        if let Some((armed, timer)) = &self.timer {
            if *armed <= at {
                return;
            }
            timer.cancel();
        }
        let wait = at.saturating_duration_since(Instant::now());
        self.timer = Some((at, ctx.send_after((), wait)));
    }

    /// The timer fired: starts the held children whose time has come — those that may run
    /// on a lost node, and failed restarts, only while this side sees a majority — and
    /// arms the timer for the rest. Under `one_for_all` and `rest_for_one`, where a child
    /// may depend on those started before it, a child does not start while one before it
    /// still waits.
    pub(super) async fn start_held_back(&mut self, ctx: &mut Ctx<Self>) {
        self.timer = None;
        let majority = match self.placement.as_mut() {
            Some(placement) => placement.sees_majority(&ctx.node()),
            None => true,
        };
        let ordered = matches!(self.strategy, Strategy::OneForAll | Strategy::RestForOne);
        let now = Instant::now();
        // As the pass begins: a child stopped there during the pass arms the timer again
        // (`ended_on`), and no child starts on a leaving node.
        let leaving = self.leaving_nodes(ctx);
        let held: Vec<String> = self
            .children
            .iter()
            .filter(|c| c.held.is_some())
            .map(|c| c.spec.id.clone())
            .collect();
        // A child before this one still waits.
        let mut blocked = false;
        // The nodes whose loss a move of this pass has counted toward the intensity: the
        // children lost with one node move together (`hold_lost` makes them due at one
        // moment), and the loss costs one restart, not one per child.
        let mut counted: Vec<String> = Vec::new();
        for id in held {
            // Unless restarted meanwhile (with its group, or by request), or stopped.
            let Some(index) = self.position(&id) else {
                continue;
            };
            let child = &mut self.children[index];
            let Some((why, at)) = child.held else {
                continue;
            };
            let waits_for_node = child
                .lost
                .as_ref()
                .is_some_and(|l| leaving.contains(&l.node));
            let due = at <= now
                && !waits_for_node
                && (majority || (why == Held::Backoff && child.lost.is_none()));
            if !due || (ordered && blocked) {
                blocked = true;
                continue;
            }
            child.held = None;
            if child.pid.is_some() || child.terminated {
                continue;
            }
            match why {
                // Counted already (with its group, for a migration).
                Held::Backoff | Held::GroupMigration => {
                    if !self.start_again(ctx, index).await {
                        blocked = true;
                    }
                }
                Held::Migration | Held::Retry => {
                    let loss = match (why, &child.lost) {
                        (Held::Migration, Some(lost)) => Some(&lost.node),
                        _ => None,
                    };
                    let count = match loss {
                        Some(node) if counted.contains(node) => false,
                        Some(node) => {
                            counted.push(node.clone());
                            true
                        }
                        None => true,
                    };
                    if !self.restart_counting(ctx, &id, count).await {
                        return;
                    }
                    // Its start failed again (it waits anew): those after it wait too.
                    let running = self
                        .position(&id)
                        .is_some_and(|i| self.children[i].pid.is_some());
                    blocked |= !running;
                }
            }
        }
        // The first child still waiting decides, under an order: those after it wait for it.
        // One waiting for the other children of a leaving node to end is looked at again
        // when they have (`ended_on`), not on a time.
        let leaving = self.leaving_nodes(ctx);
        let mut waiting = self.children.iter().filter_map(|c| {
            let (_, at) = c.held?;
            let waits_for_node = c.lost.as_ref().is_some_and(|l| leaving.contains(&l.node));
            Some((!waits_for_node).then_some(at))
        });
        let next = match ordered {
            true => waiting.next().flatten(),
            false => waiting.flatten().min(),
        };
        if let Some(at) = next {
            // Waiting for a majority: look again shortly.
            self.arm_timer(ctx, at.max(now + MAJORITY_RETRY * u32::from(!majority)));
        }
    }
}
