//! The line protocol of `chaos_node`.
//!
//! On start the node prints `READY <node id>` (or `ERR <why>` and exits). Then, for each
//! line read on its standard input, it prints exactly one line: `OK <payload>` or
//! `ERR <message>`. Payloads are single-line JSON; pids travel as JSON too (their serde
//! form), with no spaces, so a pid is one argument of a command.
//!
//! | command | does | payload |
//! | --- | --- | --- |
//! | `ping` | nothing | `"pong"` |
//! | `batch WORKERS TASKS WORK_MS` | starts the task [`Queue`] (global name [`QUEUE_NAME`]) with `TASKS` tasks, then a distributed supervisor (round robin) of `WORKERS` [`Worker`]s, each spending `WORK_MS` per task | `null` |
//! | `add-tasks N` | adds `N` tasks to the queue | the total, a number |
//! | `tasks` | the queue's report | [`TaskReport`] |
//! | `children` | the supervisor's children | `[`[`ChildLine`]`]` |
//! | `stats` | the supervisor's distribution stats | [`SupStats`] |
//! | `local` | the workers running on this node | `[[child id, pid]]` |
//! | `nodes` | the connected nodes | `[`[`PeerLine`]`]` |
//! | `procs` | this node's process count | a number |
//! | `spawn-holder` | spawns a [`Holder`] | its pid |
//! | `hold NAME` | spawns a holder and registers it under the global `NAME` | its pid |
//! | `whereis NAME` | this node's view of the global `NAME` | a pid or `null` |
//! | `names` | this node's view of every global name | `[[name, pid]]` |
//! | `ping-holder PID` | calls a holder (`ERR NoProc`, `ERR NoConnection`, ... on failure) | `"pong"` |
//! | `alive PID` | `Node::is_alive` | `true` / `false` |
//! | `watch PID...` | a [`Watcher`] on this node monitors the pids | how many it watches |
//! | `downs` | the `Down`s the watcher saw | `[[pid, reason]]` |
//! | `stop-watcher` | stops the watcher (its monitors go with it) | `null` |
//! | `singleton` | starts this node's manager of the singleton [`Ticker`] (global name [`SINGLETON_NAME`]) | `null` |
//! | `tickers` | the tickers running on this node | `[pid]` |
//! | `partition NODE on\|off` | cuts or heals the link to `NODE` (fault injection) | `null` |
//! | `quit` | answers, then shuts the node down and exits | `null` |
//!
//! [`Queue`]: crate::workload::Queue
//! [`Worker`]: crate::workload::Worker
//! [`Holder`]: crate::workload::Holder
//! [`Watcher`]: crate::workload::Watcher
//! [`Ticker`]: crate::workload::Ticker

use std::collections::BTreeMap;

use noex::Pid;
use serde::{Deserialize, Serialize};

/// The global name of the task queue.
pub const QUEUE_NAME: &str = "chaos-queue";

/// The global name of the cluster singleton.
pub const SINGLETON_NAME: &str = "chaos-singleton";

/// What the task queue reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Tasks ever added (ids `0..total`).
    pub total: u64,
    /// Tasks waiting for a worker.
    pub pending: usize,
    /// Tasks handed out and not completed yet.
    pub held: usize,
    /// Distinct tasks completed at least once.
    pub done_unique: u64,
    /// Completions, repeats included.
    pub done_total: u64,
    /// Tasks handed back to the queue because their worker went down.
    pub requeued: u64,
    /// Some of the tasks not completed yet (at most 20).
    pub missing: Vec<u64>,
    /// The workers the queue monitors, by node.
    pub monitored: BTreeMap<String, usize>,
}

/// One child of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildLine {
    /// The child id.
    pub id: String,
    /// Its pid, if running.
    pub pid: Option<Pid>,
    /// Its node, if running.
    pub node: Option<String>,
}

/// The supervisor's distribution stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupStats {
    /// Restarts, migrations included.
    pub restarts: u64,
    /// Restarts because a node was lost.
    pub migrations: u64,
    /// Running children per node.
    pub children_per_node: BTreeMap<String, usize>,
    /// Children held back until a majority is seen.
    pub waiting_for_majority: usize,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLine {
    /// Its node id.
    pub id: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Monitors this node's processes hold on the peer's.
    pub monitors_out: u64,
    /// Monitors the peer's processes hold on this node's.
    pub monitors_in: u64,
    /// Links between processes of the two nodes.
    pub links: u64,
}
