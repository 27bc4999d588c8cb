//! Operations on watches: monitors, links and node monitors taken by each node's watcher
//! process, and removed again. Each is recorded with what the watcher must (or may) see of
//! it, which the checkpoints check.

use std::time::Duration;

use noex::{MonitorRef, Pid};

use crate::harness::{bounded, log};
use crate::{H, NODES};

/// A monitor or link a watcher took of a process: whether its one event (a Down, an
/// Exit) must come, or may, follows from the process's life and the watcher's losses of
/// the process's node since the watch was in place.
pub(crate) struct Watch {
    /// The watcher's node, and its incarnation then.
    pub(crate) w: usize,
    pub(crate) winc: u64,
    pub(crate) target: Pid,
    /// The target's node.
    pub(crate) tslot: usize,
    /// The watcher's losses of the target's node once the watch was in place.
    pub(crate) l_after: u32,
    /// No loss raced the watch's set-up: without a loss after, no event may come of a
    /// live target.
    pub(crate) certain: bool,
    pub(crate) step: usize,
}

impl Watch {
    /// The watcher's node has not restarted since.
    pub(crate) fn current(&self, h: &H) -> bool {
        h.nodes[self.w].incarnation() == self.winc
    }

    fn lost(&self, h: &H) -> bool {
        h.losses[self.w][self.tslot] > self.l_after
    }

    /// (must have, may have) the one event.
    pub(crate) fn expect(&self, h: &H) -> (bool, bool) {
        let must = !h.alive(&self.target) || self.lost(h);
        (must, must || !self.certain)
    }

    /// Whether `got` events are right for it (not removed).
    pub(crate) fn right_count(&self, h: &H, got: usize) -> bool {
        let (must, may) = self.expect(h);
        got <= 1 && (may || got == 0) && (!must || got == 1)
    }

    /// After a checkpoint, for a watch still waiting: it carries on from the view now.
    pub(crate) fn renew(&mut self, losses: &[Vec<u32>]) {
        self.l_after = losses[self.w][self.tslot];
        self.certain = true;
    }

    pub(crate) fn describe(&self, h: &H) -> String {
        format!(
            "(step {}) n{} -> {} (alive {}, lost {}, certain {})",
            self.step,
            self.w,
            self.target,
            h.alive(&self.target),
            self.lost(h),
            self.certain
        )
    }
}

pub(crate) struct MonRec {
    pub(crate) watch: Watch,
    pub(crate) mref: MonitorRef,
    /// What demonitor said, once called: the monitor was active.
    pub(crate) demon: Option<bool>,
}

pub(crate) struct LinkRec {
    pub(crate) watch: Watch,
    pub(crate) unlinked: bool,
}

pub(crate) struct NodeMonRec {
    pub(crate) w: usize,
    pub(crate) winc: u64,
    pub(crate) peer: usize,
    pub(crate) l_after: u32,
    pub(crate) certain: bool,
    pub(crate) demon: Option<bool>,
    pub(crate) step: usize,
}

impl H {
    /// The watch `w` (in incarnation `winc`) now has of `target`; `before` is the
    /// watcher's view of the target's node before it was set up, if known.
    pub(crate) fn watch(
        &mut self,
        w: usize,
        winc: u64,
        target: Pid,
        before: Option<(u32, bool)>,
    ) -> Watch {
        let t = self.slot_of(target.node()).unwrap();
        let (l1, c1) = self.link_state(w, t);
        let certain = w == t || before.is_some_and(|(l0, c0)| c0 && c1 && l0 == l1);
        Watch {
            w,
            winc,
            target,
            tslot: t,
            l_after: l1,
            certain,
            step: self.step,
        }
    }

    /// `w`'s watcher (in incarnation `winc`) linked to `pid` (a pair is linked once: a
    /// second link after the first broke would bring a second exit).
    pub(crate) fn linked(&self, w: usize, winc: u64, pid: &Pid) -> bool {
        self.links
            .iter()
            .any(|l| l.watch.w == w && l.watch.winc == winc && l.watch.target == *pid)
    }

    /// A random one of `0..len` that `open` allows.
    fn pick_index(&mut self, len: usize, open: impl Fn(&H, usize) -> bool) -> Option<usize> {
        let open: Vec<usize> = (0..len).filter(|&i| open(self, i)).collect();
        (!open.is_empty()).then(|| open[self.rng.below(open.len())])
    }

    pub(crate) async fn op_monitor(&mut self) {
        let Some(pid) = self.pick_worker(true) else {
            return;
        };
        let w = self.rng.below(NODES);
        let winc = self.nodes[w].incarnation();
        let before = self.link_state(w, self.slot_of(pid.node()).unwrap());
        let r = bounded(Duration::from_secs(5), self.watchers[w].monitor(&pid)).await;
        let Some(mref) = r else {
            self.violation(format!("monitor from n{w} of {pid} hung"));
            return;
        };
        let watch = self.watch(w, winc, pid, Some(before));
        log(format!(
            "#{} monitor {mref:?} {}",
            self.step,
            watch.describe(self)
        ));
        self.monitors.push(MonRec {
            watch,
            mref,
            demon: None,
        });
    }

    pub(crate) async fn op_demonitor(&mut self) {
        let Some(i) = self.pick_index(self.monitors.len(), |h, i| {
            h.monitors[i].demon.is_none() && h.monitors[i].watch.current(h)
        }) else {
            return;
        };
        let (w, mref) = (self.monitors[i].watch.w, self.monitors[i].mref);
        let Some(active) = bounded(Duration::from_secs(5), self.watchers[w].demonitor(mref)).await
        else {
            self.violation(format!("demonitor on n{w} hung"));
            return;
        };
        self.monitors[i].demon = Some(active);
        self.drain_seen();
        let seen = self.downs[w].get(&mref).map_or(0, |d| d.len());
        log(format!(
            "#{} demonitor n{w} {mref:?} of {} = {active} (Downs seen {seen})",
            self.step, self.monitors[i].watch.target
        ));
        if active && seen > 0 {
            self.violation(format!(
                "demonitor of {mref:?} on n{w} said active, but its Down was handled"
            ));
        }
        if !active && seen == 0 {
            self.violation(format!(
                "demonitor of {mref:?} on n{w} said inactive, but no Down was handled"
            ));
        }
    }

    pub(crate) async fn op_link(&mut self) {
        let Some(pid) = self.pick_worker(true) else {
            return;
        };
        let w = self.rng.below(NODES);
        let winc = self.nodes[w].incarnation();
        if self.linked(w, winc, &pid) {
            return;
        }
        let before = self.link_state(w, self.slot_of(pid.node()).unwrap());
        if bounded(Duration::from_secs(5), self.watchers[w].link(&pid))
            .await
            .is_none()
        {
            self.violation(format!("link from n{w} to {pid} hung"));
            return;
        }
        let watch = self.watch(w, winc, pid, Some(before));
        log(format!("#{} link {}", self.step, watch.describe(self)));
        self.links.push(LinkRec {
            watch,
            unlinked: false,
        });
    }

    pub(crate) async fn op_unlink(&mut self) {
        let Some(i) = self.pick_index(self.links.len(), |h, i| {
            !h.links[i].unlinked && h.links[i].watch.current(h)
        }) else {
            return;
        };
        let (w, pid) = (self.links[i].watch.w, self.links[i].watch.target.clone());
        if bounded(Duration::from_secs(5), self.watchers[w].unlink(&pid))
            .await
            .is_none()
        {
            self.violation(format!("unlink on n{w} hung"));
        }
        self.links[i].unlinked = true;
        log(format!("#{} unlink n{w} <-> {pid}", self.step));
    }

    pub(crate) async fn op_monitor_node(&mut self) {
        let w = self.rng.below(NODES);
        let p = (w + 1 + self.rng.below(NODES - 1)) % NODES;
        let winc = self.nodes[w].incarnation();
        if self
            .node_mons
            .iter()
            .any(|m| m.w == w && m.winc == winc && m.peer == p)
        {
            return;
        }
        let (l0, c0) = self.link_state(w, p);
        let peer = self.ids[p].clone();
        if bounded(Duration::from_secs(5), self.watchers[w].monitor_node(&peer))
            .await
            .is_none()
        {
            self.violation(format!("monitor_node on n{w} hung"));
            return;
        }
        let (l1, c1) = self.link_state(w, p);
        let certain = c0 && c1 && l0 == l1;
        log(format!(
            "#{} monitor_node n{w} -> n{p} (certain {certain})",
            self.step
        ));
        self.node_mons.push(NodeMonRec {
            w,
            winc,
            peer: p,
            l_after: l1,
            certain,
            demon: None,
            step: self.step,
        });
    }

    pub(crate) async fn op_demonitor_node(&mut self) {
        let Some(i) = self.pick_index(self.node_mons.len(), |h, i| {
            let m = &h.node_mons[i];
            m.demon.is_none() && m.winc == h.nodes[m.w].incarnation()
        }) else {
            return;
        };
        let (w, p) = (self.node_mons[i].w, self.node_mons[i].peer);
        let peer = self.ids[p].clone();
        let Some(held) = bounded(
            Duration::from_secs(5),
            self.watchers[w].demonitor_node(&peer),
        )
        .await
        else {
            self.violation(format!("demonitor_node on n{w} hung"));
            return;
        };
        self.drain_seen();
        log(format!(
            "#{} demonitor_node n{w} -> n{p} = {held} (NodeDowns seen {})",
            self.step, self.nodedowns[w][p]
        ));
        if held && self.nodedowns[w][p] > 0 {
            self.violation(format!(
                "demonitor_node n{w} -> n{p} held, but its NodeDown was handled"
            ));
        }
        if !held && self.nodedowns[w][p] == 0 {
            self.violation(format!(
                "demonitor_node n{w} -> n{p} not held, but no NodeDown was handled"
            ));
        }
        self.node_mons[i].demon = Some(held);
    }
}
