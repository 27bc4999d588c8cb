//! The behaviours a chaos node hosts.
//!
//! * [`Queue`] hands task ids to [`Worker`]s, monitors each worker it gave a task to, and
//!   hands the tasks of a worker that goes down (`Down`, `NoConnection` when its node is
//!   lost) to the next workers; it counts completions per task id. "No task lost" means
//!   every id is completed at least once.
//! * [`Worker`] is a supervised child: it takes a task from the queue (found by global
//!   name), spends the work time on it, reports it done, and takes the next.
//! * [`Holder`] holds global names; [`Watcher`] monitors processes and records their
//!   `Down`s.
//! * [`Ticker`] is the cluster singleton: every node runs a `Singleton<Ticker>` manager,
//!   and one ticker runs in the cluster.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use noex::{behavior, Ctx, Info, MonitorRef, Node, Pid};

use crate::protocol::{TaskReport, QUEUE_NAME};

/// How long a worker waits for the queue before trying again.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle worker waits before asking again.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The workers started in this OS process, by pid: their child ids.
static WORKERS: Mutex<BTreeMap<Pid, String>> = Mutex::new(BTreeMap::new());

/// The workers running on `node`: `(child id, pid)`, by pid.
pub fn local_workers(node: &Node) -> Vec<(String, Pid)> {
    let mut workers = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    workers.retain(|pid, _| node.is_alive(pid));
    workers
        .iter()
        .map(|(pid, id)| (id.clone(), pid.clone()))
        .collect()
}

/// The tickers started in this OS process (pids).
static TICKERS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// The tickers running on `node`.
pub fn local_tickers(node: &Node) -> Vec<Pid> {
    let mut tickers = TICKERS.lock().unwrap_or_else(|e| e.into_inner());
    tickers.retain(|pid| node.is_alive(pid));
    tickers.clone()
}

/// The task queue (see the [module docs](self)).
#[behavior(name = "chaos-queue")]
pub struct Queue {
    total: u64,
    pending: VecDeque<u64>,
    /// Task → the worker holding it.
    held: BTreeMap<u64, Pid>,
    /// The workers monitored.
    watched: HashMap<Pid, MonitorRef>,
    /// Task → completions.
    done: BTreeMap<u64, u64>,
    requeued: u64,
}

#[behavior]
impl Queue {
    #[init]
    fn init(tasks: u64) -> Self {
        Queue {
            total: tasks,
            pending: (0..tasks).collect(),
            held: BTreeMap::new(),
            watched: HashMap::new(),
            done: BTreeMap::new(),
            requeued: 0,
        }
    }

    /// A task for `worker`: the one it already holds (its last answer may have been
    /// lost), else the next pending one.
    #[call]
    fn take(&mut self, worker: Pid, ctx: &mut Ctx<Self>) -> Option<u64> {
        if !self.watched.contains_key(&worker) {
            let monitor = ctx.monitor(&worker);
            self.watched.insert(worker.clone(), monitor);
        }
        if let Some((task, _)) = self.held.iter().find(|(_, holder)| **holder == worker) {
            return Some(*task);
        }
        let task = self.pending.pop_front()?;
        self.held.insert(task, worker);
        Some(task)
    }

    /// `worker` completed `task`.
    #[call]
    fn complete(&mut self, task: u64, worker: Pid) {
        *self.done.entry(task).or_insert(0) += 1;
        if self.held.get(&task) == Some(&worker) {
            self.held.remove(&task);
        }
    }

    /// Adds `n` tasks; returns the total.
    #[call]
    fn add(&mut self, n: u64) -> u64 {
        self.pending.extend(self.total..self.total + n);
        self.total += n;
        self.total
    }

    /// Where the work stands.
    #[call]
    fn report(&self) -> TaskReport {
        let mut monitored = BTreeMap::new();
        for pid in self.watched.keys() {
            *monitored.entry(pid.node().to_owned()).or_insert(0) += 1;
        }
        TaskReport {
            total: self.total,
            pending: self.pending.len(),
            held: self.held.len(),
            done_unique: self.done.len() as u64,
            done_total: self.done.values().sum(),
            requeued: self.requeued,
            missing: (0..self.total)
                .filter(|task| !self.done.contains_key(task))
                .take(20)
                .collect(),
            monitored,
        }
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Down { pid, .. } = info {
            self.watched.remove(&pid);
            let lost: Vec<u64> = self
                .held
                .iter()
                .filter(|(_, holder)| **holder == pid)
                .map(|(task, _)| *task)
                .collect();
            for task in lost {
                self.held.remove(&task);
                self.requeued += 1;
                if !self.done.contains_key(&task) {
                    self.pending.push_front(task);
                }
            }
        }
    }
}

/// A supervised worker (see the [module docs](self)).
#[behavior(name = "chaos-worker")]
pub struct Worker {
    work: Duration,
}

#[behavior]
impl Worker {
    /// `(child id, work per task in ms)`.
    #[init]
    fn init(args: (String, u64), ctx: &mut Ctx<Self>) -> Self {
        let (id, work_ms) = args;
        WORKERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ctx.pid().clone(), id);
        ctx.send_after((), Duration::ZERO);
        Worker {
            work: Duration::from_millis(work_ms),
        }
    }

    /// Answers, to show the worker runs.
    #[call]
    fn alive(&self) -> bool {
        true
    }

    /// One step: take a task, work on it, report it.
    #[info]
    async fn info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        if !matches!(info, Info::Message(())) {
            return;
        }
        let me = ctx.pid().clone();
        let queue = ctx.node().named_global::<Queue>(QUEUE_NAME);
        let next = match queue.take_with_timeout(me.clone(), QUEUE_TIMEOUT).await {
            Ok(Some(task)) => {
                smol::Timer::after(self.work).await;
                match queue.complete_with_timeout(task, me, QUEUE_TIMEOUT).await {
                    Ok(()) => Duration::ZERO,
                    Err(_) => IDLE_POLL,
                }
            }
            Ok(None) | Err(_) => IDLE_POLL,
        };
        ctx.send_after((), next);
    }
}

/// A process that holds global names and answers pings.
#[behavior(name = "chaos-holder")]
pub struct Holder;

#[behavior]
impl Holder {
    #[init]
    fn init() -> Self {
        Holder
    }

    /// Answers `"pong"`.
    #[call]
    fn ping(&self) -> String {
        "pong".into()
    }
}

/// Monitors processes and records their `Down`s.
#[behavior(name = "chaos-watcher")]
pub struct Watcher {
    watching: usize,
    downs: Vec<(Pid, String)>,
}

#[behavior]
impl Watcher {
    #[init]
    fn init() -> Self {
        Watcher {
            watching: 0,
            downs: Vec::new(),
        }
    }

    /// Monitors every pid; returns how many are watched in all.
    #[call]
    fn watch(&mut self, pids: Vec<Pid>, ctx: &mut Ctx<Self>) -> usize {
        for pid in &pids {
            ctx.monitor(pid);
        }
        self.watching += pids.len();
        self.watching
    }

    /// The `Down`s seen: pid and reason (its `Debug` form).
    #[call]
    fn downs(&self) -> Vec<(Pid, String)> {
        self.downs.clone()
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        if let Info::Down { pid, reason, .. } = info {
            self.downs.push((pid, format!("{reason:?}")));
        }
    }
}

/// The cluster singleton (see the [module docs](self)): does nothing but run.
#[behavior(name = "chaos-ticker")]
pub struct Ticker;

#[behavior]
impl Ticker {
    #[init]
    fn init(ctx: &mut Ctx<Self>) -> Self {
        TICKERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ctx.pid().clone());
        Ticker
    }

    /// Answers, to show it runs.
    #[call]
    fn alive(&self) -> bool {
        true
    }
}
