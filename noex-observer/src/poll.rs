//! Filling the [`Model`] from the cluster, once per refresh.
//!
//! A [`Poller`] reads through the observer node's [`Observer`](noex::Observer)s. Each
//! refresh asks every member for its overview (one small call per node, all at once), and
//! then reads in depth only what the user looks at: the peers of the selected node (nodes
//! view), its first [`PROCESS_LIMIT`] processes (processes view), the supervisors of every
//! node (supervision view) or one process (detail view). So watching costs the cluster a
//! few calls a second, answered by each node's agent one at a time.
//!
//! Rates come from two successive readings of counters that only grow: the poller keeps
//! the previous reading of each (per node, per connection, per process) with its time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use noex::observe::{
    NodeOverview, ProcessDetail, ProcessInfo, ProcessQuery, SortBy, SupervisorInfo,
};
use noex::supervisor::ChildKind;
use noex::{ExitReason, Node, NodeId, NodeInfo, Pid, TrafficStats};

use crate::model::{
    rate, Action, DetailInfo, Model, NodeRow, NodeState, PeerRow, ProcessRow, Rates, Sort,
    TreeKind, TreeRow, View, PROCESS_LIMIT,
};

/// What the user interface asks of the poller.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Refresh now (the user changed what they look at).
    Refresh,
    /// Kill or stop a process.
    Act(Action, Pid),
}

/// How long the poller waits for a node's answer by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the cluster into a [`Model`]; keeps the previous counters to work out rates.
pub struct Poller {
    node: Node,
    timeout: Duration,
    /// Per node: when, its traffic, its messages handled.
    nodes: HashMap<String, (Instant, TrafficStats, u64)>,
    /// Per (node, peer): when, the connection's traffic.
    peers: HashMap<(String, String), (Instant, TrafficStats)>,
    /// Per process: when, its messages handled.
    processes: HashMap<Pid, (Instant, u64)>,
    /// The observer's cluster events, for the refusals of its connections.
    events: noex::ClusterEvents,
    /// The last refusal since a node was last up: shown while no member answers.
    refused: Option<String>,
    /// The members that said goodbye (shut down) rather than being lost, until they are
    /// back.
    left: HashSet<String>,
}

/// What the user looks at, read from the model at the start of a refresh.
struct Interest {
    view: View,
    node: Option<String>,
    sort: Sort,
    detail: Option<Pid>,
}

impl Poller {
    /// A poller reading through `node` (the observer's node).
    pub fn new(node: Node) -> Self {
        Poller {
            events: node.cluster_events(),
            node,
            timeout: DEFAULT_TIMEOUT,
            nodes: HashMap::new(),
            peers: HashMap::new(),
            processes: HashMap::new(),
            refused: None,
            left: HashSet::new(),
        }
    }

    /// How long to wait for a node's answer (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn observer(&self, id: &NodeId) -> noex::Observer {
        self.node.observer_of(id).timeout(self.timeout)
    }

    /// Reads the cluster once and writes what it read into `model`.
    pub async fn refresh(&mut self, model: &Mutex<Model>) {
        let interest = {
            let model = model.lock().unwrap();
            Interest {
                view: model.view,
                node: model.focus_node().map(str::to_owned),
                sort: model.sort,
                detail: model.detail.as_ref().map(|d| d.pid.clone()),
            }
        };
        let mut errors = Vec::new();

        while let Some(event) = self.events.try_recv() {
            match event {
                noex::ClusterEvent::Refused {
                    address,
                    by_peer,
                    reason,
                    ..
                } => {
                    let by = if by_peer { "the peer" } else { "this observer" };
                    self.refused = Some(format!("{address}: refused by {by}: {reason}"));
                }
                noex::ClusterEvent::NodeUp { node, .. } => {
                    self.refused = None;
                    self.left.remove(node.as_str());
                }
                noex::ClusterEvent::NodeDown { node, reason } => {
                    if reason == noex::NodeDownReason::Shutdown {
                        self.left.insert(node.to_string());
                    } else {
                        self.left.remove(node.as_str());
                    }
                }
                _ => {}
            }
        }
        let members = self.node.connected_nodes();
        if members.is_empty() {
            errors.extend(self.refused.clone());
        }
        let overviews = self.overviews(&members).await;
        let now = Instant::now();
        let mut rows = Vec::new();
        for (info, overview) in members.iter().zip(overviews) {
            let id = info.id.to_string();
            rows.push(match overview {
                Ok(overview) => self.node_row(info, &overview, now),
                Err(error) => {
                    errors.push(format!("{id}: {error}"));
                    NodeRow {
                        id,
                        state: NodeState::NoAnswer,
                        uptime: info.uptime,
                        processes: info.process_count as usize,
                        round_trip: info.round_trip,
                        ..NodeRow::default()
                    }
                }
            });
        }
        // The node to read in depth, now that the members are known.
        let focus = interest
            .node
            .clone()
            .or_else(|| members.iter().map(|m| m.id.to_string()).min());
        let focus_id = focus
            .as_deref()
            .filter(|id| members.iter().any(|m| m.id.as_str() == *id))
            .and_then(|id| id.parse::<NodeId>().ok());

        let mut update = Update::default();
        match interest.view {
            View::Nodes => {
                if let Some(id) = &focus_id {
                    match self.observer(id).peers().await {
                        Ok(peers) => {
                            update.peers = Some((id.to_string(), self.peer_rows(id, &peers)))
                        }
                        Err(error) => errors.push(format!("{id}: peers: {error}")),
                    }
                }
            }
            View::Processes => {
                if let Some(id) = &focus_id {
                    let sort = match interest.sort {
                        Sort::MailboxLen => SortBy::MailboxLen,
                        Sort::MessageRate => SortBy::MessageRate,
                    };
                    let query = ProcessQuery::new(sort, PROCESS_LIMIT);
                    let observer = self.observer(id);
                    // Global names are worth showing beside the local ones; a node
                    // that cannot say merely shows none.
                    let globals = observer
                        .globals()
                        .await
                        .map(|g| g.names)
                        .unwrap_or_default();
                    match observer.processes(query).await {
                        Ok(list) => {
                            let rows = self.process_rows(&list.processes, &globals);
                            update.processes = Some((id.to_string(), list.total, rows));
                        }
                        Err(error) => errors.push(format!("{id}: processes: {error}")),
                    }
                }
            }
            View::Tree => {
                let asked = self
                    .ask_all(
                        &members,
                        |observer| async move { observer.supervisors().await },
                    )
                    .await;
                let mut supervisors = Vec::new();
                for (info, answer) in members.iter().zip(asked) {
                    match answer {
                        Ok(list) => supervisors.extend(list),
                        Err(error) => errors.push(format!("{}: supervisors: {error}", info.id)),
                    }
                }
                update.tree = Some(build_tree(&supervisors));
            }
            View::Detail => {
                if let Some(pid) = &interest.detail {
                    match pid.node().parse::<NodeId>() {
                        Ok(id) => match self.observer(&id).process(pid).await {
                            Ok(detail) => update.detail = Some((pid.clone(), detail)),
                            Err(error) => errors.push(format!("{pid}: {error}")),
                        },
                        Err(error) => errors.push(format!("{pid}: {error}")),
                    }
                }
            }
        }

        let mut model = model.lock().unwrap();
        // Nodes seen before and gone now stay listed: as left if they said goodbye, else
        // as down.
        let up: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let down: Vec<NodeRow> = model
            .nodes
            .iter()
            .filter(|r| !up.contains(r.id.as_str()))
            .map(|r| NodeRow {
                state: if self.left.contains(&r.id) {
                    NodeState::Left
                } else {
                    NodeState::Down
                },
                handled: 0.0,
                traffic: Rates::default(),
                round_trip: None,
                ..r.clone()
            })
            .collect();
        rows.extend(down);
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        model.nodes = rows;
        if let Some((of, peers)) = update.peers {
            model.peers_of = Some(of);
            model.peers = peers;
        }
        if let Some((of, total, processes)) = update.processes {
            model.processes_of = Some(of);
            model.process_total = total;
            model.processes = processes;
            model.sort_processes();
        }
        if let Some(tree) = update.tree {
            model.tree = tree;
            model.selected_tree = model.selected_tree.min(model.tree.len().saturating_sub(1));
        }
        if let Some((pid, detail)) = update.detail {
            self.record_detail(&mut model, pid, detail, now);
        }
        model.errors = errors;
        model.refreshes += 1;
        model.revision += 1;
    }

    /// Every member's overview, asked of all at once.
    async fn overviews(&self, members: &[NodeInfo]) -> Vec<Result<NodeOverview, noex::CallError>> {
        self.ask_all(members, |observer| async move { observer.overview().await })
            .await
    }

    /// Asks every member at once with `ask` (a member that does not answer costs one
    /// timeout, not one each); the answers in the members' order.
    async fn ask_all<T, F>(&self, members: &[NodeInfo], ask: impl Fn(noex::Observer) -> F) -> Vec<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let tasks: Vec<_> = members
            .iter()
            .map(|info| self.node.spawn_task(ask(self.observer(&info.id))))
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await);
        }
        answers
    }

    fn node_row(&mut self, info: &NodeInfo, overview: &NodeOverview, now: Instant) -> NodeRow {
        let id = info.id.to_string();
        let (handled, traffic) = match self.nodes.get(&id) {
            Some((then, traffic, handled)) => {
                let elapsed = now - *then;
                (
                    rate(*handled, overview.messages_handled, elapsed),
                    Rates::between(traffic, &overview.traffic, elapsed),
                )
            }
            None => (0.0, Rates::default()),
        };
        self.nodes.insert(
            id.clone(),
            (now, overview.traffic, overview.messages_handled),
        );
        NodeRow {
            id,
            state: NodeState::Up,
            uptime: overview.uptime,
            threads: overview.threads,
            processes: overview.processes,
            handled,
            queued: overview.messages_queued,
            traffic,
            round_trip: info.round_trip,
        }
    }

    fn peer_rows(&mut self, node: &NodeId, peers: &[NodeInfo]) -> Vec<PeerRow> {
        let now = Instant::now();
        let mut rows: Vec<PeerRow> = peers
            .iter()
            .map(|peer| {
                let key = (node.to_string(), peer.id.to_string());
                let rates = match self.peers.get(&key) {
                    Some((then, before)) => Rates::between(before, &peer.stats, now - *then),
                    None => Rates::default(),
                };
                self.peers.insert(key, (now, peer.stats));
                PeerRow {
                    id: peer.id.to_string(),
                    hidden: peer.hidden,
                    rates,
                    queued_bytes: peer.stats.queued_bytes,
                    calls_pending: peer.stats.calls_pending,
                    round_trip: peer.round_trip,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.hidden.cmp(&b.hidden).then(a.id.cmp(&b.id)));
        rows
    }

    fn process_rows(
        &mut self,
        processes: &[ProcessInfo],
        globals: &[(String, Pid)],
    ) -> Vec<ProcessRow> {
        let now = Instant::now();
        let global: HashMap<&Pid, &str> = globals
            .iter()
            .map(|(name, pid)| (pid, name.as_str()))
            .collect();
        processes
            .iter()
            .map(|p| {
                let rate = self
                    .processes
                    .get(&p.pid)
                    .map(|(then, before)| rate(*before, p.message_count, now - *then));
                self.processes.insert(p.pid.clone(), (now, p.message_count));
                ProcessRow {
                    pid: p.pid.clone(),
                    name: p.name.clone(),
                    global_name: global.get(&p.pid).map(|name| (*name).to_owned()),
                    behavior: p.behavior.clone(),
                    status: p.status.to_string(),
                    mailbox_len: p.mailbox_len,
                    message_count: p.message_count,
                    rate,
                    restarts: p.restarts,
                }
            })
            .collect()
    }

    fn record_detail(
        &mut self,
        model: &mut Model,
        pid: Pid,
        detail: Option<ProcessDetail>,
        now: Instant,
    ) {
        let entry = match &mut model.detail {
            Some(entry) if entry.pid == pid => entry,
            // The user moved on to another process meanwhile.
            _ => return,
        };
        let Some(detail) = detail else {
            entry.gone = true;
            return;
        };
        let count = detail.info.message_count;
        entry.rate = self
            .processes
            .get(&pid)
            .map(|(then, before)| rate(*before, count, now - *then));
        self.processes.insert(pid, (now, count));
        entry.record(detail.info.mailbox_len as u64);
        entry.gone = false;
        entry.info = Some(detail_info(detail));
    }

    /// Kills or stops `pid` and says how it went in the model's status line.
    pub async fn act(&mut self, action: Action, pid: &Pid, model: &Mutex<Model>) {
        let outcome = match action {
            Action::Kill => {
                if self.node.kill(pid) {
                    format!("killed {pid}")
                } else {
                    format!("could not kill {pid}: no connection to its node")
                }
            }
            Action::Stop => match self.node.stop(pid, ExitReason::Shutdown).await {
                Ok(reason) => format!("stopped {pid} ({reason})"),
                Err(error) => format!("could not stop {pid}: {error}"),
            },
        };
        let mut model = model.lock().unwrap();
        model.status = outcome;
        model.revision += 1;
    }
}

/// What one refresh read in depth, written into the model at its end.
#[derive(Default)]
struct Update {
    peers: Option<(String, Vec<PeerRow>)>,
    processes: Option<(String, usize, Vec<ProcessRow>)>,
    tree: Option<Vec<TreeRow>>,
    detail: Option<(Pid, Option<ProcessDetail>)>,
}

fn detail_info(detail: ProcessDetail) -> DetailInfo {
    let info = detail.info;
    DetailInfo {
        name: info.name,
        behavior: info.behavior,
        status: info.status.to_string(),
        supervisor: info.supervisor,
        parent: info.parent,
        mailbox_len: info.mailbox_len,
        message_count: info.message_count,
        restarts: info.restarts,
        trap_exit: info.trap_exit,
        links: info.links,
        monitors: detail.monitors.into_iter().map(|(_, pid)| pid).collect(),
        monitored_by: detail
            .monitored_by
            .into_iter()
            .map(|(_, pid)| pid)
            .collect(),
        monitored_nodes: detail.monitored_nodes,
        global_names: detail.global_names,
        groups: detail.groups,
        timers: detail.timers,
    }
}

/// The supervision trees of the cluster, flattened in display order, from the
/// supervisors of every node: a supervisor that is some supervisor's child is shown under
/// it (matched by pid, whichever node it runs on); the others are roots.
pub fn build_tree(supervisors: &[SupervisorInfo]) -> Vec<TreeRow> {
    let by_pid: BTreeMap<&Pid, &SupervisorInfo> = supervisors.iter().map(|s| (&s.pid, s)).collect();
    let children: HashSet<&Pid> = supervisors
        .iter()
        .flat_map(|s| s.children.iter().filter_map(|c| c.pid.as_ref()))
        .collect();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for root in supervisors.iter().filter(|s| !children.contains(&s.pid)) {
        rows.push(TreeRow {
            depth: 0,
            label: root.name.clone().unwrap_or_default(),
            pid: Some(root.pid.clone()),
            node: Some(root.pid.node().to_owned()),
            kind: TreeKind::Supervisor {
                distributed: root.distributed,
                answered: root.answered,
            },
            restarts: 0,
            restarting: false,
        });
        add_children(root, 1, &by_pid, &mut seen, &mut rows);
    }
    rows
}

fn add_children<'a>(
    supervisor: &'a SupervisorInfo,
    depth: usize,
    by_pid: &BTreeMap<&Pid, &'a SupervisorInfo>,
    seen: &mut HashSet<&'a Pid>,
    rows: &mut Vec<TreeRow>,
) {
    if !seen.insert(&supervisor.pid) {
        return; // A cycle would be a bug elsewhere; never loop on it.
    }
    for child in &supervisor.children {
        let entry = child.pid.as_ref().and_then(|pid| by_pid.get(pid).copied());
        let kind = match (entry, child.kind) {
            (Some(sup), _) => TreeKind::Supervisor {
                distributed: sup.distributed,
                answered: sup.answered,
            },
            (None, ChildKind::Supervisor) => TreeKind::Supervisor {
                distributed: false,
                answered: false,
            },
            (None, _) => TreeKind::Worker,
        };
        rows.push(TreeRow {
            depth,
            label: child.id.clone(),
            pid: child.pid.clone(),
            node: child.node.clone(),
            kind,
            restarts: child.restarts,
            restarting: child.restarting,
        });
        if let Some(sup) = entry {
            add_children(sup, depth + 1, by_pid, seen, rows);
        }
    }
}

/// Runs the poller until the model says quit: a refresh every `every`, at once after a
/// [`Command::Refresh`], and actions as they come.
pub async fn run(
    mut poller: Poller,
    model: Arc<Mutex<Model>>,
    commands: smol::channel::Receiver<Command>,
    every: Duration,
) {
    use smol::future::FutureExt;
    loop {
        poller.refresh(&model).await;
        if model.lock().unwrap().quit {
            return;
        }
        // Until the next tick, or a command, whichever comes first.
        let command = async { commands.recv().await.ok() }
            .or(async {
                smol::Timer::after(every).await;
                None
            })
            .await;
        match command {
            Some(Command::Act(action, pid)) => poller.act(action, &pid, &model).await,
            Some(Command::Refresh) => {}
            // The user interface is gone.
            None if commands.is_closed() => return,
            None => {}
        }
    }
}
