//! The checkpoint: once the cluster is healed and quiet, every invariant that must hold
//! in a whole cluster — watches, calls, casts, supervised children, no orphans.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use noex::{CallError, Pid};

use crate::behaviours::{Worker, WorkerApi, WORKER_IDS};
use crate::harness::{bounded, log};
use crate::{H, NAMES, NODES};

impl H {
    /// Once healed and settled: every invariant that must hold in a whole, quiet cluster.
    pub(crate) async fn checkpoint(&mut self) {
        log(format!("#{} CHECKPOINT", self.step));
        if !self.settle().await {
            return;
        }
        self.sync_watchers().await;
        self.check_monitors_and_links().await;
        self.check_node_monitors().await;
        self.check_globals().await;
        self.check_groups().await;
        self.check_children().await;
        self.check_orphans().await;
        self.check_calls().await;
        self.check_casts().await;
        self.check_which_children().await;
        self.check_named_calls().await;
    }

    /// Casts from one node to a live worker all arrive, before a later call from there.
    pub(crate) async fn check_casts(&mut self) {
        let alive: Vec<Pid> = self
            .workers
            .iter()
            .filter(|p| self.alive(p))
            .take(6)
            .cloned()
            .collect();
        for pid in alive {
            let a = self.rng.below(NODES);
            let Some(w) = self.worker_ref(a, &pid) else {
                continue;
            };
            let before = bounded(Duration::from_secs(8), w.casts()).await;
            let mut sent = 0;
            for _ in 0..25 {
                match w.bump() {
                    Ok(()) => sent += 1,
                    Err(e) => {
                        self.violation(format!("quiet cluster: cast n{a} -> {pid}: {e:?}"));
                        break;
                    }
                }
            }
            let after = bounded(Duration::from_secs(8), w.casts()).await;
            match (before, after) {
                (Some(Ok(b)), Some(Ok(c))) if c == b + sent => {}
                other => self.violation(format!(
                    "quiet cluster: {sent} casts n{a} -> {pid}: counts {other:?}"
                )),
            }
        }
    }

    /// The supervisor reports each child where it runs.
    pub(crate) async fn check_which_children(&mut self) {
        let Some(sup) = self.sup.clone() else {
            return;
        };
        self.until_clear(Duration::from_secs(4), async |h: &mut H| {
            let reported = bounded(Duration::from_secs(8), sup.which_children()).await;
            let Some(Ok(children)) = reported else {
                return vec![format!("which_children: {reported:?}")];
            };
            let running = h.alive_children();
            let mut problems = Vec::new();
            for child in children {
                let live = running.get(&child.id).cloned().unwrap_or_default();
                if child.pid.as_ref().is_none_or(|p| !live.contains(p)) {
                    problems.push(format!(
                        "which_children: {} at {:?} (node {:?}), running {live:?}",
                        child.id, child.pid, child.node
                    ));
                }
                if child.pid.as_ref().map(|p| p.node()) != child.node.as_deref() {
                    problems.push(format!(
                        "which_children: {} pid {:?} on node {:?}",
                        child.id, child.pid, child.node
                    ));
                }
            }
            problems
        })
        .await;
    }

    /// A call by global name reaches the holder the caller's replica names.
    pub(crate) async fn check_named_calls(&mut self) {
        let ids = WORKER_IDS.lock().unwrap().clone();
        for name in NAMES {
            let a = self.rng.below(NODES);
            let holder = self.nodes[a].whereis_global(name);
            let named = self.nodes[a].named_global::<Worker>(name);
            let r = bounded(Duration::from_secs(8), named.ping()).await;
            let expected = holder
                .as_ref()
                .and_then(|h| ids.iter().find(|(p, _)| p == h).map(|(_, id)| *id));
            let ok = match (&r, expected) {
                (Some(Ok(id)), Some(want)) => *id == want,
                (Some(Err(CallError::NoProc { .. })), None) => holder.is_none(),
                _ => false,
            };
            if !ok {
                self.violation(format!(
                    "quiet cluster: call n{a} by name {name} (held by {holder:?}, id {expected:?}) = {r:?}"
                ));
            }
        }
    }

    /// The watches whose event must have come and has not (yet).
    fn missing_events(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for m in &self.monitors {
            let (w, must) = (m.watch.w, m.watch.expect(self).0);
            if m.demon.is_none()
                && m.watch.current(self)
                && must
                && !self.downs[w].contains_key(&m.mref)
            {
                missing.push(format!(
                    "monitor {:?} {}: no Down",
                    m.mref,
                    m.watch.describe(self)
                ));
            }
        }
        for l in &self.links {
            let (w, must) = (l.watch.w, l.watch.expect(self).0);
            if !l.unlinked
                && l.watch.current(self)
                && must
                && !self.exits[w].contains_key(&l.watch.target)
            {
                missing.push(format!("link {}: no Exit", l.watch.describe(self)));
            }
        }
        missing
    }

    /// Each monitor and link had its one event if it must, none if it must not, and no
    /// watcher had an exit from a process it was not linked to.
    pub(crate) async fn check_monitors_and_links(&mut self) {
        // Wait for what must come.
        self.until_clear(Duration::from_secs(5), async |h: &mut H| {
            h.drain();
            h.missing_events()
        })
        .await;
        self.sync_watchers().await;
        let mut found = Vec::new();
        for m in self.monitors.iter().filter(|m| m.watch.current(self)) {
            let got = self.downs[m.watch.w]
                .get(&m.mref)
                .cloned()
                .unwrap_or_default();
            let right = match m.demon {
                Some(true) => got.is_empty(),
                Some(false) => got.len() == 1,
                None => m.watch.right_count(self, got.len()),
            };
            if !right {
                found.push(format!(
                    "monitor {:?} {} (demon {:?}): Downs {got:?}",
                    m.mref,
                    m.watch.describe(self),
                    m.demon
                ));
            }
            for (pid, _) in got.iter().filter(|(pid, _)| *pid != m.watch.target) {
                found.push(format!(
                    "Down of {:?} names {pid}, not {}",
                    m.mref, m.watch.target
                ));
            }
        }
        for l in self.links.iter().filter(|l| l.watch.current(self)) {
            let got = self.exits[l.watch.w]
                .get(&l.watch.target)
                .cloned()
                .unwrap_or_default();
            let right = match l.unlinked {
                true => got.len() <= 1,
                false => l.watch.right_count(self, got.len()),
            };
            if !right {
                found.push(format!(
                    "link {} (unlinked {}): Exits {got:?}",
                    l.watch.describe(self),
                    l.unlinked
                ));
            }
        }
        for w in 0..NODES {
            let winc = self.nodes[w].incarnation();
            for from in self.exits[w]
                .keys()
                .filter(|from| !self.linked(w, winc, from))
            {
                found.push(format!("watcher n{w} got an Exit from unlinked {from}"));
            }
        }
        for f in found {
            self.violation(f);
        }
        // Settled records: a monitor whose event came, or that was removed, is done; a
        // link stays in the list (a pair is linked once). One still waiting carries on from
        // the current view.
        let losses = self.losses.clone();
        let incs: Vec<u64> = self.nodes.iter().map(|n| n.incarnation()).collect();
        let (downs, exits) = (&self.downs, &self.exits);
        self.monitors.retain_mut(|m| {
            let w = m.watch.w;
            let open = m.watch.winc == incs[w] && m.demon.is_none();
            if open && !downs[w].contains_key(&m.mref) {
                m.watch.renew(&losses);
                return true;
            }
            false
        });
        for l in &mut self.links {
            let w = l.watch.w;
            if l.watch.winc == incs[w] && !l.unlinked && !exits[w].contains_key(&l.watch.target) {
                l.watch.renew(&losses);
            }
        }
    }

    /// Each node monitor had its one NodeDown if its node lost the peer since, none if
    /// it must not.
    pub(crate) async fn check_node_monitors(&mut self) {
        // Wait for what must come.
        self.until_clear(Duration::from_secs(3), async |h: &mut H| {
            h.drain();
            h.node_mons
                .iter()
                .filter(|m| m.winc == h.nodes[m.w].incarnation() && m.demon.is_none())
                .filter(|m| h.losses[m.w][m.peer] > m.l_after && h.nodedowns[m.w][m.peer] == 0)
                .map(|m| {
                    format!(
                        "node monitor (step {}) n{} -> n{}: no NodeDown",
                        m.step, m.w, m.peer
                    )
                })
                .collect()
        })
        .await;
        self.sync_watchers().await;
        let mut found = Vec::new();
        for w in 0..NODES {
            let winc = self.nodes[w].incarnation();
            for p in 0..NODES {
                let got = self.nodedowns[w][p];
                let rec = self
                    .node_mons
                    .iter()
                    .find(|m| m.w == w && m.winc == winc && m.peer == p);
                let ok = match rec {
                    None => got == 0,
                    Some(m) => match m.demon {
                        Some(true) => got == 0,
                        Some(false) => got == 1,
                        None => {
                            let lost = self.losses[w][p] > m.l_after;
                            if lost {
                                got == 1
                            } else if m.certain {
                                got == 0
                            } else {
                                got <= 1
                            }
                        }
                    },
                };
                if !ok {
                    found.push(format!(
                        "watcher n{w} saw {got} NodeDown(n{p}); record {:?}",
                        rec.map(|m| (m.step, m.certain, m.demon, self.losses[w][p] > m.l_after))
                    ));
                }
            }
        }
        for f in found {
            self.violation(f);
        }
        let losses = self.losses.clone();
        let nodedowns = self.nodedowns.clone();
        let incs: Vec<u64> = self.nodes.iter().map(|n| n.incarnation()).collect();
        self.node_mons.retain_mut(|m| {
            if m.winc != incs[m.w] || m.demon.is_some() || nodedowns[m.w][m.peer] > 0 {
                return false;
            }
            m.l_after = losses[m.w][m.peer];
            m.certain = true;
            true
        });
        self.nodedowns = vec![vec![0; NODES]; NODES];
    }
    /// Every supervised child runs (once), 8 s after the heal at the latest.
    pub(crate) async fn check_children(&mut self) {
        self.until_clear(Duration::from_secs(8), async |h: &mut H| {
            h.check_children_once();
            let alive = h.alive_children();
            let missing: Vec<&String> = h
                .labels
                .iter()
                .filter(|l| alive.get(*l).is_none_or(|p| p.is_empty()))
                .collect();
            if missing.is_empty() {
                return Vec::new();
            }
            let sup_alive = h.sup.as_ref().is_some_and(|s| h.alive(s.pid()));
            vec![format!(
                "supervised children not running: {missing:?} (supervisor alive {sup_alive})"
            )]
        })
        .await;
    }

    /// Every worker that runs was spawned by an operation that succeeded (a spawn that
    /// failed started nothing).
    pub(crate) async fn check_orphans(&mut self) {
        self.until_clear(Duration::from_secs(4), async |h: &mut H| {
            let tracked: BTreeSet<&Pid> = h.workers.iter().collect();
            let orphans: Vec<Pid> = h
                .nodes
                .iter()
                .flat_map(|n| n.processes())
                .filter(|p| p.behavior.ends_with("Worker"))
                .map(|p| p.pid)
                .filter(|p| !tracked.contains(p))
                .collect();
            if orphans.is_empty() {
                return Vec::new();
            }
            vec![format!(
                "untracked workers run (spawns that failed? {} ambiguous): {orphans:?}",
                h.spawn_ambiguous
            )]
        })
        .await;
    }

    /// In the whole cluster: a call to a live worker answers, one to an ended worker
    /// fails with NoProc at once.
    pub(crate) async fn check_calls(&mut self) {
        let pids: Vec<Pid> = self.workers.clone();
        for pid in pids {
            let a = self.rng.below(NODES);
            let alive = self.alive(&pid);
            let started = Instant::now();
            let r = self.ping(a, &pid).await;
            let took = started.elapsed();
            let ok = matches!(
                (&r, alive),
                (Some(Ok(_)), true) | (Some(Err(CallError::NoProc { .. })), false)
            );
            // Promptly: well before the 5 s call timeout, however busy the machine.
            if !ok || took > Duration::from_secs(4) {
                let inc = pid.incarnation();
                self.violation(format!(
                    "quiet cluster: call n{a} -> {pid} (incarnation {inc}, alive {alive}) = {r:?} in {took:?}"
                ));
            }
        }
    }
}
