//! The pool's processes: the task queue, the result collector and the workers.
//!
//! Workers ask the queue for work (`ready`), and the queue hands each a task (a cast to
//! the worker). The queue monitors every worker from its first `ready` on: a worker that
//! ends, or whose node is lost, leaves the idle list, and has its task, if it held one,
//! put back at the front of the queue: its `Down` arrives after everything it sent, so a
//! completion it reported is never undone, and a task is completed exactly once. The queue passes each completion on to the
//! collector, which counts every task id once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use noex::{behavior, Ctx, Info, MonitorRef, NamedRef, Pid};
use serde::{Deserialize, Serialize};

/// The queue's global name.
pub const QUEUE: &str = "task-queue";
/// The collector's global name.
pub const RESULTS: &str = "results";

/// The global name of worker `id`.
pub fn worker_name(id: u32) -> String {
    format!("worker-{id}")
}

/// A piece of work: `input` squared, after `work_ms` of (simulated) effort.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub input: u64,
    pub work_ms: u64,
}

/// A task done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub task: u64,
    pub worker: u32,
    pub node: String,
    pub value: u64,
}

/// The queue's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueStats {
    pub submitted: u64,
    pub pending: usize,
    pub in_flight: usize,
    pub idle_workers: usize,
    pub requeued: u64,
}

/// Hands out tasks, one per worker at a time, and takes back those of lost workers.
#[behavior(name = "task-queue")]
pub struct TaskQueue {
    pending: VecDeque<Task>,
    /// Tasks handed out, by worker.
    in_flight: HashMap<Pid, Task>,
    /// The monitor of every worker that asked for work and has not ended.
    watched: HashMap<Pid, MonitorRef>,
    /// Workers waiting for a task.
    idle: VecDeque<Pid>,
    submitted: u64,
    requeued: u64,
    results: NamedRef<Results>,
}

#[behavior]
impl TaskQueue {
    #[init]
    fn init(ctx: &mut Ctx<Self>) -> Self {
        TaskQueue {
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
            watched: HashMap::new(),
            idle: VecDeque::new(),
            submitted: 0,
            requeued: 0,
            results: ctx.node().named_global(RESULTS),
        }
    }

    /// Queues `count` tasks taking `work_ms` each; returns the first id.
    #[call]
    fn submit(&mut self, count: u64, work_ms: u64, ctx: &mut Ctx<Self>) -> u64 {
        let first = self.submitted + 1;
        for _ in 0..count {
            self.submitted += 1;
            let id = self.submitted;
            self.pending.push_back(Task {
                id,
                input: id,
                work_ms,
            });
        }
        self.dispatch(ctx);
        first
    }

    /// `worker` wants a task.
    #[cast]
    fn ready(&mut self, worker: Pid, ctx: &mut Ctx<Self>) {
        if !self.watched.contains_key(&worker) {
            let monitor = ctx.monitor(&worker);
            self.watched.insert(worker.clone(), monitor);
        }
        if !self.idle.contains(&worker) && !self.in_flight.contains_key(&worker) {
            self.idle.push_back(worker);
        }
        self.dispatch(ctx);
    }

    /// `worker` finished its task: passed on to the collector.
    #[cast]
    fn complete(&mut self, worker: Pid, outcome: Outcome) {
        if let Some(task) = self.in_flight.remove(&worker) {
            if task.id == outcome.task {
                let _ = self.results.record(outcome);
            }
        }
    }

    #[call]
    fn stats(&self) -> QueueStats {
        QueueStats {
            submitted: self.submitted,
            pending: self.pending.len(),
            in_flight: self.in_flight.len(),
            idle_workers: self.idle.len(),
            requeued: self.requeued,
        }
    }

    #[info]
    fn info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        if let Info::Down { pid, .. } = info {
            self.watched.remove(&pid);
            self.idle.retain(|w| *w != pid);
            if let Some(task) = self.in_flight.remove(&pid) {
                self.requeued += 1;
                self.pending.push_front(task);
                self.dispatch(ctx);
            }
        }
    }
}

impl TaskQueue {
    /// Hands pending tasks to idle workers.
    fn dispatch(&mut self, ctx: &mut Ctx<Self>) {
        while !self.pending.is_empty() {
            let Some(worker) = self.idle.pop_front() else {
                return;
            };
            let Ok(server) = ctx.node().server_ref::<Worker>(&worker) else {
                continue;
            };
            let task = self.pending.pop_front().expect("not empty");
            match server.work(task.clone()) {
                Ok(()) => {
                    self.in_flight.insert(worker, task);
                }
                Err(_) => {
                    // Gone (or unreachable; its Down forgets it): the task waits for
                    // another worker.
                    self.pending.push_front(task);
                }
            }
        }
    }
}

/// The collector's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Distinct tasks completed.
    pub completed: u64,
    /// Completions of a task already counted.
    pub duplicates: u64,
    /// Completions per node.
    pub per_node: BTreeMap<String, u64>,
}

/// Counts every task id once.
#[behavior(name = "results")]
pub struct Results {
    done: BTreeMap<u64, Outcome>,
    recent: VecDeque<Outcome>,
    duplicates: u64,
    per_node: BTreeMap<String, u64>,
}

#[behavior]
impl Results {
    #[init]
    fn init() -> Self {
        Results {
            done: BTreeMap::new(),
            recent: VecDeque::new(),
            duplicates: 0,
            per_node: BTreeMap::new(),
        }
    }

    #[cast]
    fn record(&mut self, outcome: Outcome) {
        if self.done.contains_key(&outcome.task) {
            self.duplicates += 1;
            return;
        }
        *self.per_node.entry(outcome.node.clone()).or_default() += 1;
        self.recent.push_back(outcome.clone());
        if self.recent.len() > 100 {
            self.recent.pop_front();
        }
        self.done.insert(outcome.task, outcome);
    }

    #[call]
    fn summary(&self) -> Summary {
        Summary {
            completed: self.done.len() as u64,
            duplicates: self.duplicates,
            per_node: self.per_node.clone(),
        }
    }

    /// The last `n` results, oldest first.
    #[call]
    fn recent(&self, n: usize) -> Vec<Outcome> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).cloned().collect()
    }

    /// The task ids up to `last` that were not completed.
    #[call]
    fn missing(&self, last: u64) -> Vec<u64> {
        (1..=last)
            .filter(|id| !self.done.contains_key(id))
            .collect()
    }
}

/// What a worker says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: u32,
    pub speed: f64,
    pub done: u64,
}

/// Asks the queue for tasks and does them, at its speed (2.0 is twice as fast).
#[behavior(name = "pool-worker")]
pub struct Worker {
    id: u32,
    speed: f64,
    done: u64,
    queue: NamedRef<TaskQueue>,
}

/// How long a worker waits before asking a queue it could not reach again.
const RETRY: Duration = Duration::from_millis(100);

#[behavior]
impl Worker {
    #[init]
    fn init(id: u32, ctx: &mut Ctx<Self>) -> Self {
        let queue = ctx.node().named_global(QUEUE);
        ctx.send_after((), Duration::ZERO);
        Worker {
            id,
            speed: 1.0,
            done: 0,
            queue,
        }
    }

    /// Does `task`, reports it, and asks for the next.
    #[cast]
    async fn work(&mut self, task: Task, ctx: &mut Ctx<Self>) {
        let millis = (task.work_ms as f64 / self.speed).round() as u64;
        smol::Timer::after(Duration::from_millis(millis)).await;
        self.done += 1;
        let outcome = Outcome {
            task: task.id,
            worker: self.id,
            node: ctx.pid().node().to_owned(),
            value: task.input * task.input,
        };
        let _ = self.queue.complete(ctx.pid().clone(), outcome);
        self.ask(ctx);
    }

    #[cast]
    fn set_speed(&mut self, speed: f64) {
        self.speed = speed;
    }

    #[call]
    fn about(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.id,
            speed: self.speed,
            done: self.done,
        }
    }

    #[call]
    fn crash(&self) {
        panic!("worker {} crashed on request", self.id);
    }

    #[info]
    fn info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        if let Info::Message(()) = info {
            self.ask(ctx);
        }
    }
}

impl Worker {
    /// Asks the queue for a task; tries again shortly if it cannot be reached.
    fn ask(&mut self, ctx: &mut Ctx<Self>) {
        if self.queue.ready(ctx.pid().clone()).is_err() {
            ctx.send_after((), RETRY);
        }
    }
}
