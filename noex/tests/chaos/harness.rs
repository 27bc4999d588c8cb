//! The harness: the cluster started, the ground truth read from it (is a process alive,
//! are two nodes connected, is the cluster calm), what the nodes and watchers reported
//! drained into the state, and the operations log printed on failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use noex::supervisor::{ChildSpec, NodeSelector, Strategy, SupervisorSpec};
use noex::{CallError, ClusterEvent, DistributedSupervisor, Node, NodeId, Pid, ServerRef};

use crate::behaviours::{Child, Worker, WorkerApi, CHILD_STARTS};
use crate::common::{cluster_config, probe, Seen};
use crate::{Rng, CHILDREN, GROUPS, H, NODES};

/// The operations of the run under way, printed when the test fails.
pub(crate) static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static EPOCH: Mutex<Option<Instant>> = Mutex::new(None);

pub(crate) fn log(line: String) {
    let ms = EPOCH
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now)
        .elapsed()
        .as_millis();
    let mut log = LOG.lock().unwrap();
    log.push(format!("{ms:>7} {line}"));
    let len = log.len();
    if len > 4000 {
        log.drain(..len - 2000);
    }
}

/// Prints the last operations if the test panics.
pub(crate) struct DumpOnPanic;

impl Drop for DumpOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = LOG.lock().unwrap();
            eprintln!("--- last operations ---");
            for line in log.iter().rev().take(80).rev() {
                eprintln!("{line}");
            }
        }
    }
}

pub(crate) async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    async { Some(future.await) }
        .or(async {
            smol::Timer::after(limit).await;
            None
        })
        .await
}

pub(crate) fn id(node: &Node) -> NodeId {
    node.local_node_id().unwrap().clone()
}

pub(crate) fn monitor_groups(node: &Node) -> Vec<(BTreeSet<Pid>, noex::GroupEvents)> {
    GROUPS
        .iter()
        .map(|g| {
            let (members, events) = node.monitor_group(g);
            (members.into_iter().collect(), events)
        })
        .collect()
}

pub(crate) fn config(name: &str) -> noex::ClusterConfig {
    cluster_config(name).threads(1).register_behaviors()
}

impl H {
    pub(crate) fn violation(&mut self, what: String) {
        let line = format!("VIOLATION seed={} step={}: {what}", self.seed, self.step);
        eprintln!("{line}");
        log(line.clone());
        self.violations.push(line);
    }

    pub(crate) fn slot_of(&self, node: &str) -> Option<usize> {
        self.ids.iter().position(|id| id.as_str() == node)
    }

    /// Ground truth: the process runs (asked of its own node).
    pub(crate) fn alive(&self, pid: &Pid) -> bool {
        let Some(slot) = self.slot_of(pid.node()) else {
            return false;
        };
        let node = &self.nodes[slot];
        node.incarnation() == pid.incarnation() && node.is_alive(pid)
    }

    pub(crate) fn connected(&self, a: usize, b: usize) -> bool {
        a == b
            || self.nodes[a]
                .connected_nodes()
                .iter()
                .any(|n| n.id == self.ids[b])
    }

    pub(crate) fn fully_connected(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.connected_nodes().len() == NODES - 1)
    }

    pub(crate) fn calm(&self) -> bool {
        self.cut.is_empty()
            && self.refusing.is_empty()
            && self.silenced.is_empty()
            && self.stalled.is_empty()
            && self.fully_connected()
    }

    pub(crate) fn drain_events(&mut self) {
        for s in 0..NODES {
            while let Some(event) = self.events[s].try_recv() {
                match &event {
                    ClusterEvent::NodeDown { node, reason } => {
                        if let Some(p) = self.slot_of(node.as_str()) {
                            self.losses[s][p] += 1;
                            log(format!("  [n{s} sees n{p} down: {reason:?}]"));
                        }
                    }
                    ClusterEvent::NodeUp { node, incarnation } => {
                        let p = self.slot_of(node.as_str());
                        log(format!(
                            "  [n{s} sees n{p:?} up, incarnation {incarnation}]"
                        ));
                    }
                    other => log(format!("  [n{s}: {other:?}]")),
                }
            }
            if self.events[s].missed() > 0 {
                let missed = self.events[s].missed();
                self.violation(format!("n{s}'s cluster events missed {missed}"));
            }
        }
    }

    pub(crate) fn drain_seen(&mut self) {
        for s in 0..NODES {
            while let Ok(seen) = self.watchers[s].seen.try_recv() {
                log(format!("  [watcher n{s} saw {seen:?}]"));
                match seen {
                    Seen::Down {
                        monitor,
                        pid,
                        reason,
                    } => self.downs[s]
                        .entry(monitor)
                        .or_default()
                        .push((pid, reason)),
                    Seen::Exit { from, reason } => {
                        self.exits[s].entry(from).or_default().push(reason)
                    }
                    Seen::NodeDown(node) => match self.slot_of(node.as_str()) {
                        Some(p) => self.nodedowns[s][p] += 1,
                        None => self.violation(format!("NodeDown of unknown {node}")),
                    },
                    Seen::Terminated(reason) => {
                        self.violation(format!("watcher n{s} terminated: {reason:?}"))
                    }
                    Seen::Message(_) => {}
                }
            }
        }
    }

    pub(crate) fn drain(&mut self) {
        self.drain_events();
        self.drain_seen();
    }

    pub(crate) async fn sync_watchers(&mut self) {
        for s in 0..NODES {
            if bounded(Duration::from_secs(5), self.watchers[s].sync())
                .await
                .is_none()
            {
                self.violation(format!("watcher n{s} did not answer"));
            }
        }
        self.drain();
    }

    pub(crate) fn pick_worker(&mut self, prefer_alive: bool) -> Option<Pid> {
        if self.workers.is_empty() {
            return None;
        }
        if prefer_alive && self.rng.chance(80) {
            let alive: Vec<Pid> = self
                .workers
                .iter()
                .filter(|p| self.alive(p))
                .cloned()
                .collect();
            if !alive.is_empty() {
                return Some(alive[self.rng.below(alive.len())].clone());
            }
        }
        let i = self.rng.below(self.workers.len());
        Some(self.workers[i].clone())
    }

    /// Asks `problems` again until it finds none; what it still finds after `limit` is a
    /// violation each.
    pub(crate) async fn until_clear(
        &mut self,
        limit: Duration,
        mut problems: impl AsyncFnMut(&mut H) -> Vec<String>,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let found = problems(self).await;
            if found.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                for problem in found {
                    self.violation(problem);
                }
                return;
            }
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    }

    /// A worker (most often a live one) and a node to act on it from.
    pub(crate) fn pick_target(&mut self) -> Option<(Pid, usize)> {
        let pid = self.pick_worker(true)?;
        Some((pid, self.rng.below(NODES)))
    }

    pub(crate) fn worker_ref(&self, from: usize, pid: &Pid) -> Option<ServerRef<Worker>> {
        self.nodes[from].server_ref::<Worker>(pid).ok()
    }

    /// Calls the worker `pid` from node `from` (`None` if no answer within 8 s).
    pub(crate) async fn ping(&self, from: usize, pid: &Pid) -> Option<Result<u64, CallError>> {
        match self.worker_ref(from, pid) {
            Some(w) => bounded(Duration::from_secs(8), w.ping()).await,
            None => Some(Err(CallError::NoProc {
                target: noex::Target::Pid(pid.clone()),
            })),
        }
    }

    /// (losses of `w` about `t`, connected) now.
    pub(crate) fn link_state(&mut self, w: usize, t: usize) -> (u32, bool) {
        self.drain_events();
        (self.losses[w][t], self.connected(w, t))
    }

    pub(crate) async fn start(seed: u64) -> H {
        let first = Node::start(config("n0")).await.expect("node starts");
        let seed_id = id(&first).to_string();
        let mut nodes = vec![first];
        for i in 1..NODES {
            let node = Node::start(config(&format!("n{i}")).seed(seed_id.clone()))
                .await
                .expect("node starts");
            nodes.push(node);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !nodes.iter().all(|n| n.connected_nodes().len() == NODES - 1) {
            assert!(Instant::now() < deadline, "the cluster did not form");
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        for (i, node) in nodes.iter().enumerate() {
            log(format!(
                "n{i} = {} incarnation {}",
                ids[i],
                node.incarnation()
            ));
        }
        let mut watchers = Vec::new();
        let mut events = Vec::new();
        for node in &nodes {
            watchers.push(probe(node, true).await);
            events.push(node.cluster_events());
        }
        let mut h = H {
            seed,
            rng: Rng(seed),
            nodes,
            ids,
            watchers,
            events,
            losses: vec![vec![0; NODES]; NODES],
            downs: vec![HashMap::new(); NODES],
            exits: vec![HashMap::new(); NODES],
            nodedowns: vec![vec![0; NODES]; NODES],
            workers: Vec::new(),
            monitors: Vec::new(),
            links: Vec::new(),
            node_mons: Vec::new(),
            names: BTreeMap::new(),
            names_maybe: BTreeMap::new(),
            groups: BTreeMap::new(),
            groups_maybe: BTreeSet::new(),
            sup: None,
            labels: (0..CHILDREN).map(|i| format!("s{seed}-c{i}")).collect(),
            cut: BTreeSet::new(),
            refusing: BTreeSet::new(),
            silenced: BTreeMap::new(),
            stalled: BTreeSet::new(),
            violations: Vec::new(),
            step: 0,
            next_id: 0,
            spawn_ambiguous: 0,
            group_monitors: Vec::new(),
            alt_ip: 1,
            alt_bound: None,
            alt_proxy: None,
        };
        h.group_monitors = h.nodes.iter().map(monitor_groups).collect();
        let mut spec = SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::RoundRobin)
            .intensity(10_000, Duration::from_secs(60));
        for (i, label) in h.labels.iter().enumerate() {
            let mut child = ChildSpec::worker::<Child>(label.clone(), label.clone());
            if i == 0 {
                // Its global name follows it from node to node.
                child = child.global_name(label.clone());
            }
            spec = spec.child(child);
        }
        let sup = h.nodes[0]
            .spawn::<DistributedSupervisor>(spec)
            .await
            .expect("the supervisor starts");
        h.sup = Some(sup);
        h
    }

    pub(crate) fn alive_children(&self) -> BTreeMap<String, Vec<Pid>> {
        let starts = CHILD_STARTS.lock().unwrap().clone();
        let mut by_label: BTreeMap<String, Vec<Pid>> = BTreeMap::new();
        for (label, pid) in starts {
            if self.labels.contains(&label) && self.alive(&pid) {
                by_label.entry(label).or_default().push(pid);
            }
        }
        by_label
    }

    /// A child never runs twice.
    pub(crate) fn check_children_once(&mut self) {
        for (label, pids) in self.alive_children() {
            if pids.len() > 1 {
                self.violation(format!(
                    "supervised child {label} runs {}x: {pids:?}",
                    pids.len()
                ));
            }
        }
    }
}

/// Prints noex's `dist` tracing events into the log (with `NOEX_CHAOS_TRACE=1`).
pub(crate) struct Printer;

struct Fields(String);

impl tracing_core::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing_core::Subscriber for Printer {
    fn enabled(&self, metadata: &tracing_core::Metadata<'_>) -> bool {
        *metadata.level() <= tracing_core::Level::DEBUG && metadata.target().starts_with("noex")
    }
    fn new_span(&self, _: &tracing_core::span::Attributes<'_>) -> tracing_core::span::Id {
        tracing_core::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Id) {}
    fn event(&self, event: &tracing_core::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let meta = event.metadata();
        log(format!(
            "  TRACE {} {}: {}",
            meta.level(),
            meta.target(),
            fields.0
        ));
    }
    fn enter(&self, _: &tracing_core::span::Id) {}
    fn exit(&self, _: &tracing_core::span::Id) {}
}
