//! What introspection reports: plain data, the same for this node and any other (it
//! crosses the network as it is).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dist::{NodeInfo, RemoteStats, TrafficStats};
use crate::supervisor::ChildInfo;
use crate::{MonitorRef, Pid};

/// What a process is doing, as far as introspection can tell without disturbing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// Its `init` has not finished.
    Starting,
    /// Nothing waits in its mailbox: it waits for a message (or its handler awaits
    /// something).
    Idle,
    /// Messages wait in its mailbox: it is handling them, or about to.
    Busy,
    /// It has ended; its links, monitors and names are being cleared.
    Exiting,
}

impl std::fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessStatus::Starting => "starting",
            ProcessStatus::Idle => "idle",
            ProcessStatus::Busy => "busy",
            ProcessStatus::Exiting => "exiting",
        })
    }
}

/// A snapshot of one process, from [`Node::processes`](crate::Node::processes),
/// [`Node::process_info`](crate::Node::process_info) or an [`Observer`](super::Observer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub name: Option<String>,
    /// The type name of its behaviour.
    pub behavior: String,
    /// What it is doing.
    pub status: ProcessStatus,
    /// The supervisor it is a child of.
    pub supervisor: Option<Pid>,
    /// The process that spawned it with a link.
    pub parent: Option<Pid>,
    /// How many messages it has handled.
    pub message_count: u64,
    /// How many messages wait in its mailbox.
    pub mailbox_len: usize,
    /// The processes it is linked to.
    pub links: Vec<Pid>,
    /// Whether it traps exits.
    pub trap_exit: bool,
    /// For a supervisor's child, how many times the supervisor has restarted it (under
    /// its child id). Filled in by an [`Observer`](super::Observer), which asks the
    /// supervisors; `None` from [`Node::processes`](crate::Node::processes) and for
    /// processes no supervisor of the node started.
    pub restarts: Option<u32>,
}

/// Everything about one process, from [`Observer::process`](super::Observer::process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessDetail {
    /// What the process list shows of it.
    pub info: ProcessInfo,
    /// The monitors it holds on other processes: (reference, monitored process).
    pub monitors: Vec<(MonitorRef, Pid)>,
    /// The monitors others hold on it: (reference, watcher).
    pub monitored_by: Vec<(MonitorRef, Pid)>,
    /// The nodes it monitors.
    pub monitored_nodes: Vec<String>,
    /// The global names it holds.
    pub global_names: Vec<String>,
    /// The process groups it is a member of.
    pub groups: Vec<String>,
    /// Its timers that have not fired yet.
    pub timers: usize,
}

/// How [`Observer::processes`](super::Observer::processes) orders what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SortBy {
    /// Oldest first.
    #[default]
    Spawn,
    /// Longest mailbox first.
    MailboxLen,
    /// Most messages handled first.
    MessageCount,
    /// Most messages handled recently first: since the previous `MessageRate` query of
    /// this node by the observing node (any of its observers), if that was within
    /// [`RATE_WINDOW`](super::RATE_WINDOW) (else, as `MessageCount`, since they started).
    /// An observer that asks once a refresh gets the busiest processes of its last
    /// interval, however long they have run; observers on other nodes do not disturb it
    /// (the observed node keeps the counts of the last four observing nodes).
    MessageRate,
}

/// Which processes to list, from [`Observer::processes`](super::Observer::processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessQuery {
    /// The order.
    pub sort: SortBy,
    /// At most this many processes (the first in that order).
    pub limit: usize,
}

impl Default for ProcessQuery {
    /// In spawn order, at most [`ProcessQuery::DEFAULT_LIMIT`].
    fn default() -> Self {
        ProcessQuery {
            sort: SortBy::Spawn,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl ProcessQuery {
    /// The processes a query returns unless told otherwise.
    pub const DEFAULT_LIMIT: usize = 1000;
    /// The most processes a query returns, whatever its limit (a reply stays well under
    /// the cluster's message size).
    pub const MAX_LIMIT: usize = 10_000;

    /// The first `limit` processes by `sort`.
    pub fn new(sort: SortBy, limit: usize) -> Self {
        ProcessQuery { sort, limit }
    }
}

/// Some of a node's processes, from [`Observer::processes`](super::Observer::processes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessList {
    /// How many processes the node runs (system processes aside).
    pub total: usize,
    /// Those the query asked for, in its order.
    pub processes: Vec<ProcessInfo>,
}

/// One supervisor and its children, from
/// [`Observer::supervisors`](super::Observer::supervisors). A child that is itself a
/// supervisor has its own entry (on the node it runs on), which makes the trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SupervisorInfo {
    /// The supervisor.
    pub pid: Pid,
    /// Its registered name.
    pub name: Option<String>,
    /// The supervisor it is a child of, if any.
    pub supervisor: Option<Pid>,
    /// `true` for a [`DistributedSupervisor`](crate::DistributedSupervisor), whose
    /// children may run on other nodes (each [`ChildInfo::node`] says where).
    pub distributed: bool,
    /// Its children, in start order; empty if it did not answer in time.
    pub children: Vec<ChildInfo>,
    /// `false` if it did not answer in time (it is busy, or blocked).
    pub answered: bool,
}

/// The global names and process groups a node knows, from
/// [`Observer::globals`](super::Observer::globals).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GlobalInfo {
    /// Every global name, with its process, sorted by name.
    pub names: Vec<(String, Pid)>,
    /// Every process group, with its members on all nodes, sorted by name.
    pub groups: Vec<(String, Vec<Pid>)>,
}

/// A node at a glance, from [`Observer::overview`](super::Observer::overview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeOverview {
    /// Its name (its node id in a cluster).
    pub node: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// How long it has been running.
    pub uptime: Duration,
    /// Its scheduler threads.
    pub threads: usize,
    /// `true` for a hidden node (an observer).
    pub hidden: bool,
    /// How many processes it runs (system processes aside).
    pub processes: usize,
    /// Messages its processes have handled since it started, those of processes that
    /// have ended included (so the count only grows, and two readings give a rate).
    pub messages_handled: u64,
    /// Messages waiting in the mailboxes of its processes.
    pub messages_queued: u64,
    /// Its locally registered names.
    pub registered: usize,
    /// The behaviours it can spawn by name.
    pub behaviors: usize,
    /// The nodes it is connected to (hidden ones aside).
    pub peers: usize,
    /// The traffic of all its connections together.
    pub traffic: TrafficStats,
    /// Its work with processes of other nodes.
    pub remote: RemoteStats,
}

/// The peers of a node, from [`Observer::peers`](super::Observer::peers): each connection
/// with its traffic and round-trip time, hidden nodes included (flagged).
pub type PeerList = Vec<NodeInfo>;
