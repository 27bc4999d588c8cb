//! What the observer shows: plain data that the [poller](crate::poll) fills from the
//! cluster and the [views](crate::view) render, plus what the user chose to look at.
//!
//! Nothing here talks to the cluster, so tests fill a [`Model`] by hand and render it.
//! Rates (messages and bytes per second) are worked out by the poller from two successive
//! readings of counters that only grow; the helpers for that ([`rate`], [`Rates::between`])
//! live here.

use std::collections::VecDeque;
use std::time::Duration;

use noex::{Pid, TrafficStats};

/// How many mailbox-length samples the detail view keeps (one per refresh).
pub const HISTORY: usize = 60;

/// How many processes of a node are read at a time: the first in the chosen order.
pub const PROCESS_LIMIT: usize = 200;

/// The four views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Every node of the cluster, and the peers of the selected one.
    #[default]
    Nodes,
    /// The processes of the selected node.
    Processes,
    /// The supervision trees of the cluster.
    Tree,
    /// One process in detail.
    Detail,
}

impl View {
    /// Every view, in tab order (key `1` is the first).
    pub const ALL: [View; 4] = [View::Nodes, View::Processes, View::Tree, View::Detail];

    /// The view's tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Nodes => "Nodes",
            View::Processes => "Processes",
            View::Tree => "Supervision",
            View::Detail => "Process",
        }
    }
}

/// The order of the process list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Longest mailbox first.
    #[default]
    MailboxLen,
    /// Most messages handled per second first.
    MessageRate,
}

/// Whether a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeState {
    /// Connected, and it answered the last reading.
    #[default]
    Up,
    /// Connected, but it did not answer the last reading in time.
    NoAnswer,
    /// No longer connected (it was once): the connection was lost.
    Down,
    /// No longer connected: the node left the cluster (it said goodbye as it shut down).
    Left,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Up => "up",
            NodeState::NoAnswer => "silent",
            NodeState::Down => "down",
            NodeState::Left => "left",
        })
    }
}

/// Messages and bytes per second, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Messages received per second.
    pub messages_in: f64,
    /// Messages sent per second.
    pub messages_out: f64,
    /// Bytes received per second.
    pub bytes_in: f64,
    /// Bytes sent per second.
    pub bytes_out: f64,
}

impl Rates {
    /// The rates between two readings of the same traffic counters, `elapsed` apart.
    pub fn between(before: &TrafficStats, now: &TrafficStats, elapsed: Duration) -> Rates {
        Rates {
            messages_in: rate(before.messages_received, now.messages_received, elapsed),
            messages_out: rate(before.messages_sent, now.messages_sent, elapsed),
            bytes_in: rate(before.bytes_received, now.bytes_received, elapsed),
            bytes_out: rate(before.bytes_sent, now.bytes_sent, elapsed),
        }
    }
}

/// Per second, from two readings of a counter `elapsed` apart; 0 if the counter went back
/// (what it counts was reset, or some of it ended) or no time passed.
pub fn rate(before: u64, now: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    now.saturating_sub(before) as f64 / seconds
}

/// One node of the cluster, as the nodes view shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeRow {
    /// Its node id (`name@host:port`).
    pub id: String,
    /// Whether it answers.
    pub state: NodeState,
    /// How long it has been running.
    pub uptime: Duration,
    /// Its scheduler threads (0 if unknown).
    pub threads: usize,
    /// How many processes it runs.
    pub processes: usize,
    /// Messages its processes handle per second.
    pub handled: f64,
    /// Messages waiting in its processes' mailboxes.
    pub queued: u64,
    /// The traffic of all its connections together.
    pub traffic: Rates,
    /// The round-trip time between the observer and it.
    pub round_trip: Option<Duration>,
}

/// One connection of the selected node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerRow {
    /// The peer's node id.
    pub id: String,
    /// `true` for a hidden node (an observer).
    pub hidden: bool,
    /// The connection's traffic, seen from the selected node.
    pub rates: Rates,
    /// Bytes waiting in the connection's outbound queue.
    pub queued_bytes: u64,
    /// Remote calls waiting for their reply.
    pub calls_pending: u64,
    /// The connection's round-trip time.
    pub round_trip: Option<Duration>,
}

/// One process of the selected node.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub name: Option<String>,
    /// A global name it holds.
    pub global_name: Option<String>,
    /// Its behaviour's type name.
    pub behavior: String,
    /// What it is doing (`idle`, `busy`, ...).
    pub status: String,
    /// Messages waiting in its mailbox.
    pub mailbox_len: usize,
    /// Messages it has handled.
    pub message_count: u64,
    /// Messages it handles per second; `None` until it has been read twice.
    pub rate: Option<f64>,
    /// How often its supervisor restarted it, for a supervised process.
    pub restarts: Option<u32>,
}

/// Whether a supervision tree entry is a supervisor or a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A supervisor (`distributed` for a distributed one).
    Supervisor {
        /// `true` for a distributed supervisor.
        distributed: bool,
        /// `false` if it did not answer in time (its children are unknown).
        answered: bool,
    },
    /// Any other process.
    Worker,
}

/// One line of the supervision trees: a supervisor or a child, at its depth.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    /// 0 for a root supervisor, 1 for its children, and so on.
    pub depth: usize,
    /// The child id (a root supervisor: its name, or nothing).
    pub label: String,
    /// Its pid; `None` while it is not running.
    pub pid: Option<Pid>,
    /// The node it runs on.
    pub node: Option<String>,
    /// Supervisor or worker.
    pub kind: TreeKind,
    /// How often it was restarted.
    pub restarts: u32,
    /// `true` while it waits to be started again.
    pub restarting: bool,
}

/// One process in detail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetailInfo {
    /// Its registered name.
    pub name: Option<String>,
    /// Its behaviour's type name.
    pub behavior: String,
    /// What it is doing.
    pub status: String,
    /// The supervisor it is a child of.
    pub supervisor: Option<Pid>,
    /// The process that spawned it with a link.
    pub parent: Option<Pid>,
    /// Messages waiting in its mailbox.
    pub mailbox_len: usize,
    /// Messages it has handled.
    pub message_count: u64,
    /// How often its supervisor restarted it.
    pub restarts: Option<u32>,
    /// Whether it traps exits.
    pub trap_exit: bool,
    /// The processes it is linked to.
    pub links: Vec<Pid>,
    /// The processes it monitors.
    pub monitors: Vec<Pid>,
    /// The processes that monitor it.
    pub monitored_by: Vec<Pid>,
    /// The nodes it monitors.
    pub monitored_nodes: Vec<String>,
    /// Its global names.
    pub global_names: Vec<String>,
    /// The process groups it is in.
    pub groups: Vec<String>,
    /// Its pending timers.
    pub timers: usize,
}

/// The process the detail view follows, with what was last read of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The process.
    pub pid: Pid,
    /// What was last read; `None` before the first reading, or once it has ended.
    pub info: Option<DetailInfo>,
    /// `true` once its node said it does not run.
    pub gone: bool,
    /// Messages it handles per second.
    pub rate: Option<f64>,
    /// Its mailbox length at each refresh, oldest first, at most [`HISTORY`].
    pub history: VecDeque<u64>,
}

impl Detail {
    /// Starts following `pid`.
    pub fn new(pid: Pid) -> Self {
        Detail {
            pid,
            info: None,
            gone: false,
            rate: None,
            history: VecDeque::with_capacity(HISTORY),
        }
    }

    /// Records one mailbox-length sample, forgetting the oldest beyond [`HISTORY`].
    pub fn record(&mut self, mailbox_len: u64) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(mailbox_len);
    }
}

/// What the user may do to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// End it at once (an untrappable `kill` exit signal).
    Kill,
    /// Stop it with reason `shutdown` (it may clean up).
    Stop,
}

/// An action waiting for the user's yes or no.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// What to do.
    pub action: Action,
    /// To which process.
    pub pid: Pid,
    /// Its name, if it has one.
    pub name: Option<String>,
}

/// Everything the views render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// The observer's own node id.
    pub observer: String,
    /// The view shown.
    pub view: View,
    /// Every node of the cluster (the observer aside), by id.
    pub nodes: Vec<NodeRow>,
    /// The id of the node whose peers and processes are shown.
    pub selected_node: Option<String>,
    /// The node [`peers`](Self::peers) belong to.
    pub peers_of: Option<String>,
    /// The connections of that node.
    pub peers: Vec<PeerRow>,
    /// The node [`processes`](Self::processes) belong to.
    pub processes_of: Option<String>,
    /// How many processes that node runs in all.
    pub process_total: usize,
    /// Some of its processes, in [`sort`](Self::sort) order.
    pub processes: Vec<ProcessRow>,
    /// The selected process of the list.
    pub selected_process: Option<Pid>,
    /// The order of the process list.
    pub sort: Sort,
    /// The supervision trees, flattened in display order.
    pub tree: Vec<TreeRow>,
    /// The selected line of the trees.
    pub selected_tree: usize,
    /// The process the detail view follows.
    pub detail: Option<Detail>,
    /// An action waiting for confirmation.
    pub confirm: Option<Confirm>,
    /// What went wrong in the last refresh (a node that did not answer), one per line.
    pub errors: Vec<String>,
    /// The last thing worth saying (an action's outcome).
    pub status: String,
    /// How many refreshes have completed.
    pub refreshes: u64,
    /// Bumped at each change, so the screen is drawn only when something changed.
    pub revision: u64,
    /// Set when the user quits.
    pub quit: bool,
}

impl Model {
    /// An empty model for the observer node `observer`.
    pub fn new(observer: impl Into<String>) -> Self {
        Model {
            observer: observer.into(),
            ..Model::default()
        }
    }

    /// The node whose peers and processes are shown: the selected one, or else the first.
    pub fn focus_node(&self) -> Option<&str> {
        self.selected_node
            .as_deref()
            .or_else(|| self.nodes.first().map(|n| n.id.as_str()))
    }

    /// The index of the selected process in the list: the first if none is selected (or
    /// the selected one is no longer listed).
    pub fn selected_process_index(&self) -> Option<usize> {
        if self.processes.is_empty() {
            return None;
        }
        let pid = self.selected_process.as_ref();
        Some(
            pid.and_then(|pid| self.processes.iter().position(|p| &p.pid == pid))
                .unwrap_or(0),
        )
    }

    /// The index of the focused node in the node list.
    pub fn selected_node_index(&self) -> Option<usize> {
        let id = self.focus_node()?;
        self.nodes.iter().position(|n| n.id == id)
    }

    /// Puts the process list in [`sort`](Self::sort) order.
    pub fn sort_processes(&mut self) {
        match self.sort {
            Sort::MailboxLen => self.processes.sort_by(|a, b| {
                b.mailbox_len
                    .cmp(&a.mailbox_len)
                    .then(b.message_count.cmp(&a.message_count))
            }),
            Sort::MessageRate => self.processes.sort_by(|a, b| {
                let (ra, rb) = (a.rate.unwrap_or(0.0), b.rate.unwrap_or(0.0));
                rb.total_cmp(&ra).then(b.mailbox_len.cmp(&a.mailbox_len))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_per_second_and_never_negative() {
        assert_eq!(rate(10, 30, Duration::from_millis(500)), 40.0);
        assert_eq!(rate(30, 10, Duration::from_secs(1)), 0.0);
        assert_eq!(rate(0, 10, Duration::ZERO), 0.0);
    }

    #[test]
    fn detail_history_keeps_the_latest_samples() {
        let pid: Pid =
            serde_json::from_str(r#"{"node":"a@127.0.0.1:1","incarnation":1,"serial":7}"#).unwrap();
        let mut detail = Detail::new(pid);
        for sample in 0..(HISTORY as u64 + 5) {
            detail.record(sample);
        }
        assert_eq!(detail.history.len(), HISTORY);
        assert_eq!(detail.history.front(), Some(&5));
    }
}
