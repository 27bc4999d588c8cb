//! Supervisors: start and stop order, strategies, restart types, restart intensity and
//! escalation, shutdown specs, the dynamic API, simple_one_for_one, auto_shutdown, names
//! and trees.
//!
//! Every child is a `Worker` that reports its life (`init`, a failed `init`, `terminate`)
//! on a channel shared by the whole tree, so a test reads the order in which children start
//! and stop from one log. The worker, the log and the helpers are here; the tests, one
//! module per topic, beside it.

mod auto_shutdown;
#[path = "../common/mod.rs"]
mod common;
mod dynamic;
mod intensity;
mod restart_types;
mod shutdown;
mod simple_one_for_one;
mod start;
mod strategies;
mod trees;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, run, within, WAIT};
use futures_lite::FutureExt;
use noex::supervisor::{
    AutoShutdown, Backoff, ChildKey, ChildSpec, ChildTemplate, Restart, Shutdown, Strategy,
    SupervisorError, SupervisorInitError, SupervisorSpec, DEFAULT_MAX_RESTARTS,
    DEFAULT_RESTART_WINDOW,
};
use noex::{
    Ctx, Events, ExitReason, GenServer, LifecycleEvent, Node, Pid, ReplyTo, ServerRef, SpawnError,
    SpawnOptions, Supervisor,
};

/// A restart window long enough that no machine is slow enough to leave it by accident.
const LONG_WINDOW: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------

/// What a worker reports, in the order it happens.
enum Life {
    /// `init` succeeded; here is the new incarnation.
    Init(String, ServerRef<Worker>),
    /// `init` failed.
    InitFailed(String),
    /// `terminate` ran with this reason.
    Terminate(String, ExitReason),
}

/// What a worker does in `terminate`.
#[derive(Clone)]
enum OnTerminate {
    /// Reports at once.
    Report,
    /// Reports after this long.
    ReportAfter(Duration),
    /// Reports, then never returns.
    ReportThenHang,
    /// Counts itself in, waits until `.1` workers have counted themselves in, then reports.
    Meet(Arc<AtomicUsize>, usize),
}

/// What a worker is started with; cloned for every incarnation.
#[derive(Clone)]
struct WorkerArgs {
    id: String,
    log: async_channel::Sender<Life>,
    /// How many more `init`s may succeed, shared by every incarnation; `None`: all.
    inits_left: Option<Arc<AtomicUsize>>,
    init_delay: Duration,
    on_terminate: OnTerminate,
}

impl WorkerArgs {
    /// Only the first `n` inits (over all incarnations) succeed; later ones fail.
    fn inits_that_succeed(mut self, n: usize) -> Self {
        self.inits_left = Some(Arc::new(AtomicUsize::new(n)));
        self
    }

    fn init_slowly(mut self, delay: Duration) -> Self {
        self.init_delay = delay;
        self
    }

    fn terminate_slowly(mut self, delay: Duration) -> Self {
        self.on_terminate = OnTerminate::ReportAfter(delay);
        self
    }

    fn hang_in_terminate(mut self) -> Self {
        self.on_terminate = OnTerminate::ReportThenHang;
        self
    }

    fn terminate_together(mut self, met: &Arc<AtomicUsize>, of: usize) -> Self {
        self.on_terminate = OnTerminate::Meet(met.clone(), of);
        self
    }

    /// A permanent worker child with the worker's id.
    fn spec(self) -> ChildSpec {
        ChildSpec::worker::<Worker>(self.id.clone(), self)
    }
}

struct Worker {
    args: WorkerArgs,
}

/// Tells a worker to end.
enum Cast {
    /// Panic in the handler.
    Crash,
    /// Stop by itself (`ctx.stop`) with this reason.
    Exit(ExitReason),
}

/// Asks a worker who it is.
struct Whoami;

impl Worker {
    fn report(&self, life: Life) {
        let _ = self.args.log.try_send(life);
    }
}

impl GenServer for Worker {
    type Args = WorkerArgs;
    type Call = Whoami;
    type Reply = (String, Pid);
    type Cast = Cast;
    type Info = ();
    type InitError = String;

    async fn init(args: WorkerArgs, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        if !args.init_delay.is_zero() {
            smol::Timer::after(args.init_delay).await;
        }
        if let Some(left) = &args.inits_left {
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
            {
                let _ = args.log.try_send(Life::InitFailed(args.id.clone()));
                return Err(format!("{} refuses to start", args.id));
            }
        }
        let _ = args
            .log
            .try_send(Life::Init(args.id.clone(), ctx.server_ref()));
        Ok(Worker { args })
    }

    async fn handle_call(&mut self, _: Whoami, reply: ReplyTo<(String, Pid)>, ctx: &mut Ctx<Self>) {
        reply.send((self.args.id.clone(), ctx.pid().clone()));
    }

    async fn handle_cast(&mut self, cast: Cast, ctx: &mut Ctx<Self>) {
        match cast {
            Cast::Crash => panic!("{} crashes", self.args.id),
            Cast::Exit(reason) => ctx.stop(reason),
        }
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        let report = Life::Terminate(self.args.id.clone(), reason.clone());
        match self.args.on_terminate.clone() {
            OnTerminate::Report => self.report(report),
            OnTerminate::ReportAfter(delay) => {
                smol::Timer::after(delay).await;
                self.report(report);
            }
            OnTerminate::ReportThenHang => {
                self.report(report);
                std::future::pending::<()>().await;
            }
            OnTerminate::Meet(met, of) => {
                met.fetch_add(1, Ordering::SeqCst);
                while met.load(Ordering::SeqCst) < of {
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
                self.report(report);
            }
        }
    }
}

/// A behaviour other than `Worker`, to ask a simple_one_for_one supervisor for.
struct Other;

impl GenServer for Other {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Other)
    }
}

// ---------------------------------------------------------------------------------------
// The log every worker of a test reports to
// ---------------------------------------------------------------------------------------

/// The lifecycle log of a test's workers, read as lines such as `init a`,
/// `init-failed a` and `terminate a shutdown`. It remembers the latest incarnation of each
/// worker it has seen start.
struct Log {
    tx: async_channel::Sender<Life>,
    rx: async_channel::Receiver<Life>,
    current: HashMap<String, ServerRef<Worker>>,
}

impl Log {
    fn new() -> Log {
        let (tx, rx) = async_channel::unbounded();
        Log {
            tx,
            rx,
            current: HashMap::new(),
        }
    }

    /// Arguments of a worker that reports to this log.
    fn args(&self, id: &str) -> WorkerArgs {
        WorkerArgs {
            id: id.to_owned(),
            log: self.tx.clone(),
            inits_left: None,
            init_delay: Duration::ZERO,
            on_terminate: OnTerminate::Report,
        }
    }

    /// A permanent worker child that reports to this log.
    fn spec(&self, id: &str) -> ChildSpec {
        self.args(id).spec()
    }

    fn record(&mut self, life: Life) -> String {
        match life {
            Life::Init(id, server) => {
                let line = format!("init {id}");
                self.current.insert(id, server);
                line
            }
            Life::InitFailed(id) => format!("init-failed {id}"),
            Life::Terminate(id, reason) => format!("terminate {id} {reason}"),
        }
    }

    /// The next line, waiting at most [`WAIT`].
    async fn next(&mut self) -> Option<String> {
        let rx = self.rx.clone();
        let life = async { rx.recv().await.ok() }
            .or(async {
                smol::Timer::after(WAIT).await;
                None
            })
            .await?;
        Some(self.record(life))
    }

    /// Asserts that the next lines are exactly `expected`.
    async fn expect(&mut self, expected: &[&str]) {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            match self.next().await {
                Some(line) => seen.push(line),
                None => break,
            }
        }
        assert_eq!(seen, expected, "the workers' lifecycle");
    }

    /// The next `n` lines, sorted (for events in no defined order).
    async fn next_sorted(&mut self, n: usize) -> Vec<String> {
        let mut seen = Vec::new();
        while seen.len() < n {
            match self.next().await {
                Some(line) => seen.push(line),
                None => panic!("expected {n} lifecycle lines, saw only {seen:?}"),
            }
        }
        seen.sort();
        seen
    }

    /// Asserts that nothing more has been reported.
    fn assert_quiet(&mut self) {
        if let Ok(life) = self.rx.try_recv() {
            let line = self.record(life);
            panic!("expected no more lifecycle lines, saw {line:?}");
        }
    }

    /// The latest incarnation of worker `id` the log has seen start.
    fn worker(&self, id: &str) -> ServerRef<Worker> {
        self.current
            .get(id)
            .unwrap_or_else(|| panic!("worker {id} has not started"))
            .clone()
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

async fn start(node: &Node, spec: SupervisorSpec) -> ServerRef<Supervisor> {
    within("the supervisor to start", node.spawn::<Supervisor>(spec))
        .await
        .expect("the supervisor starts")
}

/// The supervisor's children as (id, pid), in start order.
async fn children(sup: &ServerRef<Supervisor>) -> Vec<(String, Option<Pid>)> {
    within("which_children", sup.which_children())
        .await
        .expect("the supervisor answers which_children")
        .into_iter()
        .map(|child| (child.id, child.pid))
        .collect()
}

/// The ids of the supervisor's children, in start order.
async fn ids(sup: &ServerRef<Supervisor>) -> Vec<String> {
    children(sup).await.into_iter().map(|(id, _)| id).collect()
}

/// The pid of the running child `id`.
async fn pid_of(sup: &ServerRef<Supervisor>, id: &str) -> Pid {
    children(sup)
        .await
        .into_iter()
        .find(|(child, _)| child == id)
        .and_then(|(_, pid)| pid)
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// Returns once the supervisor has handled every exit signal that reached it before this
/// call: the first request turns queued signals into messages, the second one waits
/// behind them.
async fn settle(sup: &ServerRef<Supervisor>) {
    for _ in 0..2 {
        within("the supervisor to answer", sup.count_children())
            .await
            .expect("the supervisor answers");
    }
}

/// Waits until `worker` has ended.
async fn ended(worker: &ServerRef<Worker>) -> ExitReason {
    within("the worker to end", worker.exited()).await
}

/// Waits until `sup` has ended; returns why.
async fn sup_ended(sup: &ServerRef<Supervisor>) -> ExitReason {
    within("the supervisor to end", sup.exited()).await
}

/// The first event matching `pick`, waiting at most [`WAIT`].
async fn next_event<T>(
    events: &Events,
    what: &str,
    mut pick: impl FnMut(LifecycleEvent) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            let event = events.recv().await.expect("the node is running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
}

/// The reason `pid` ended with, from the node's lifecycle events.
async fn exit_reason(events: &Events, pid: &Pid) -> ExitReason {
    next_event(events, "the process to exit", |event| match event {
        LifecycleEvent::Exited { pid: ended, reason } if &ended == pid => Some(reason),
        _ => None,
    })
    .await
}

fn three_children(strategy: Strategy, log: &Log) -> SupervisorSpec {
    SupervisorSpec::new(strategy)
        .intensity(10, LONG_WINDOW)
        .child(log.spec("a"))
        .child(log.spec("b"))
        .child(log.spec("c"))
}

/// A one_for_one supervisor of `a` and `b`, both started.
async fn a_and_b(node: &Node, log: &mut Log) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, LONG_WINDOW)
        .child(log.spec("a"))
        .child(log.spec("b"));
    let sup = start(node, spec).await;
    log.expect(&["init a", "init b"]).await;
    sup
}
