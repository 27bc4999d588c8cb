//! Supervisors: start and stop order, strategies, restart types, restart intensity and
//! escalation, shutdown specs, the dynamic API, simple_one_for_one, auto_shutdown, names
//! and trees.
//!
//! Every child is a `Worker` that reports its life (`init`, a failed `init`, `terminate`)
//! on a channel shared by the whole tree, so a test reads the order in which children start
//! and stop from one log.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, run, within, WAIT};
use futures_lite::FutureExt;
use noex::supervisor::{
    AutoShutdown, ChildKey, ChildSpec, ChildTemplate, Restart, Shutdown, Strategy, SupervisorError,
    SupervisorInitError, SupervisorSpec, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW,
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

// ---------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------

#[test]
fn children_start_in_spec_order_each_init_finishing_before_the_next() {
    run(|node| async move {
        // given: a first child whose init is slow
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.args("a").init_slowly(Duration::from_millis(100)).spec())
            .child(log.spec("b"))
            .child(log.spec("c"));

        // when
        let sup = start(&node, spec).await;

        // then
        log.expect(&["init a", "init b", "init c"]).await;
        assert_eq!(ids(&sup).await, ["a", "b", "c"]);
    });
}

#[test]
fn a_child_failing_to_start_fails_the_supervisor_start_and_stops_earlier_children_in_reverse() {
    run(|node| async move {
        // given: the third of four children fails in init
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(log.args("c").inits_that_succeed(0).spec())
            .child(log.spec("d"));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        match result {
            Err(SpawnError::Init(SupervisorInitError::ChildStart { id, error })) => {
                assert_eq!(id, "c");
                assert!(error.contains("c refuses to start"), "error: {error}");
            }
            other => panic!("expected ChildStart naming c, got {other:?}"),
        }
        log.expect(&[
            "init a",
            "init b",
            "init-failed c",
            "terminate b shutdown",
            "terminate a shutdown",
        ])
        .await;
        log.assert_quiet();
        eventually("no process left running", || node.process_count() == 0).await;
    });
}

#[test]
fn duplicate_child_ids_are_an_invalid_spec() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("a"));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then: refused before any child starts
        assert!(
            matches!(
                result,
                Err(SpawnError::Init(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
        log.assert_quiet();
    });
}

#[test]
fn a_significant_child_under_auto_shutdown_never_is_an_invalid_spec() {
    run(|node| async move {
        // given
        let log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::Never)
            .child(log.spec("a").restart(Restart::Transient).significant(true));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        assert!(
            matches!(
                result,
                Err(SpawnError::Init(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
    });
}

#[test]
fn a_significant_permanent_child_is_an_invalid_spec() {
    run(|node| async move {
        // given
        let log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(log.spec("a").significant(true));

        // when
        let result = within("the supervisor's start", node.spawn::<Supervisor>(spec)).await;

        // then
        assert!(
            matches!(
                result,
                Err(SpawnError::Init(SupervisorInitError::InvalidSpec(_)))
            ),
            "got {result:?}"
        );
    });
}

#[test]
fn a_nested_supervisor_may_take_longer_than_the_default_init_timeout_to_start_its_children() {
    run(|node| async move {
        // given: a child supervisor whose three children take 2 s each to start (6 s in
        // all, more than the 5 s default init timeout but less than each child's own)
        let mut log = Log::new();
        let slow = |id: &str| log.args(id).init_slowly(Duration::from_secs(2)).spec();
        let sub = SupervisorSpec::new(Strategy::OneForOne)
            .child(slow("x"))
            .child(slow("y"))
            .child(slow("z"));
        let spec =
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub));
        let options = SpawnOptions::new().init_timeout(Duration::from_secs(30));

        // when: the top supervisor is given all the time it needs
        let result = node.spawn_with::<Supervisor>(spec, options).await;

        // then: as in OTP, where a supervisor's start has no time limit
        let top = result.expect("the tree starts");
        log.expect(&["init x", "init y", "init z"]).await;
        assert_eq!(ids(&top).await, ["sub"]);
    });
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

#[test]
fn one_for_one_restarts_only_the_crashed_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, three_children(Strategy::OneForOne, &log)).await;
        log.expect(&["init a", "init b", "init c"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init b"]).await;
        let after = children(&sup).await;
        assert_eq!(after[0], before[0], "a keeps its pid");
        assert_eq!(after[2], before[2], "c keeps its pid");
        assert_eq!(after[1].1.as_ref(), Some(log.worker("b").pid()));
        assert_ne!(after[1].1, before[1].1, "b has a new pid");
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn one_for_all_stops_the_others_in_reverse_order_then_starts_all_in_order() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, three_children(Strategy::OneForAll, &log)).await;
        log.expect(&["init a", "init b", "init c"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate a shutdown",
            "init a",
            "init b",
            "init c",
        ])
        .await;
        let after = children(&sup).await;
        for (old, new) in before.iter().zip(&after) {
            assert_ne!(old.1, new.1, "{} has a new pid", old.0);
        }
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_after_it() {
    run(|node| async move {
        // given: four children, so that two follow the crashing one
        let mut log = Log::new();
        let spec = three_children(Strategy::RestForOne, &log).child(log.spec("d"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c", "init d"]).await;
        let before = children(&sup).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate d shutdown",
            "terminate c shutdown",
            "init b",
            "init c",
            "init d",
        ])
        .await;
        let after = children(&sup).await;
        assert_eq!(after[0], before[0], "a keeps its pid");
        for i in 1..4 {
            assert_ne!(after[i].1, before[i].1, "{} has a new pid", before[i].0);
        }
        settle(&sup).await;
        log.assert_quiet();
    });
}

#[test]
fn a_temporary_sibling_stopped_by_a_one_for_all_restart_is_not_restarted() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .child(log.spec("a"))
            .child(log.spec("t").restart(Restart::Temporary))
            .child(log.spec("c"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init t", "init c"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate t shutdown",
            "init a",
            "init c",
        ])
        .await;
        assert_eq!(ids(&sup).await, ["a", "c"]);
        settle(&sup).await;
        log.assert_quiet();
    });
}

// ---------------------------------------------------------------------------------------
// Restart types
// ---------------------------------------------------------------------------------------

/// A supervisor of one child `a` with this restart type.
async fn one_child(node: &Node, log: &mut Log, restart: Restart) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, LONG_WINDOW)
        .child(log.spec("a").restart(restart));
    let sup = start(node, spec).await;
    log.expect(&["init a"]).await;
    sup
}

#[test]
fn a_permanent_child_is_restarted_after_a_normal_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Permanent).await;
        let first = log.worker("a");

        // when
        first.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal", "init a"]).await;
        assert_eq!(pid_of(&sup, "a").await, *log.worker("a").pid());
        assert_ne!(log.worker("a"), first);
    });
}

#[test]
fn a_transient_child_is_not_restarted_after_a_normal_exit_and_keeps_its_spec() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal"]).await;
        assert_eq!(ended(&a).await, ExitReason::Normal);
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(children(&sup).await, [("a".to_owned(), None)]);
    });
}

#[test]
fn a_transient_child_is_not_restarted_after_a_shutdown_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Shutdown)).unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        assert_eq!(ended(&a).await, ExitReason::Shutdown);
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(children(&sup).await, [("a".to_owned(), None)]);
    });
}

#[test]
fn a_transient_child_is_restarted_after_an_abnormal_exit() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Transient).await;
        let first = log.worker("a");

        // when
        first
            .cast(Cast::Exit(ExitReason::error("disk full")))
            .unwrap();

        // then
        log.expect(&["terminate a error: disk full", "init a"])
            .await;
        assert_eq!(pid_of(&sup, "a").await, *log.worker("a").pid());
        assert_ne!(log.worker("a"), first);
    });
}

#[test]
fn a_temporary_child_is_not_restarted_after_a_normal_exit_and_its_spec_is_removed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Temporary).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Exit(ExitReason::Normal)).unwrap();

        // then
        log.expect(&["terminate a normal"]).await;
        ended(&a).await;
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn a_temporary_child_is_not_restarted_after_a_crash_and_its_spec_is_removed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = one_child(&node, &mut log, Restart::Temporary).await;
        let a = log.worker("a");

        // when
        a.cast(Cast::Crash).unwrap();

        // then
        assert_eq!(ended(&a).await, ExitReason::Panic("a crashes".into()));
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

// ---------------------------------------------------------------------------------------
// Restart intensity and escalation
// ---------------------------------------------------------------------------------------

#[test]
fn exceeding_the_intensity_stops_the_remaining_children_in_reverse_order_and_exits_with_shutdown() {
    run(|node| async move {
        // given: one restart allowed per minute, and b has used it
        let mut log = Log::new();
        let spec = three_children(Strategy::OneForOne, &log).intensity(1, LONG_WINDOW);
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c"]).await;
        log.worker("b").cast(Cast::Crash).unwrap();
        log.expect(&["init b"]).await;

        // when
        log.worker("b").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["terminate c shutdown", "terminate a shutdown"])
            .await;
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn exceeding_the_intensity_publishes_max_restarts_exceeded() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, LONG_WINDOW)
            .child(log.spec("a"));
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let events = node.events();
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        let (supervisor, max_restarts, window) =
            next_event(&events, "MaxRestartsExceeded", |event| match event {
                LifecycleEvent::MaxRestartsExceeded {
                    supervisor,
                    max_restarts,
                    within,
                } => Some((supervisor, max_restarts, within)),
                _ => None,
            })
            .await;
        assert_eq!(&supervisor, sup.pid());
        assert_eq!(max_restarts, 1);
        assert_eq!(window, LONG_WINDOW);
    });
}

#[test]
fn a_parent_restarts_a_child_supervisor_that_exceeded_its_intensity() {
    run(|node| async move {
        // given: top supervises sub, which allows one restart per minute
        let mut log = Log::new();
        let sub_spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, LONG_WINDOW)
            .child(log.spec("a"))
            .child(log.spec("b"));
        let top = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub_spec)),
        )
        .await;
        log.expect(&["init a", "init b"]).await;
        let old_sub = pid_of(&top, "sub").await;
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then: sub gives up (stopping b), and top starts a new sub with new children
        log.expect(&["terminate b shutdown", "init a", "init b"])
            .await;
        let new_sub = pid_of(&top, "sub").await;
        assert_ne!(new_sub, old_sub);
        assert!(!node.is_alive(&old_sub));
        assert!(node.is_alive(&new_sub));
        assert!(log.worker("a").is_alive() && log.worker("b").is_alive());
        assert_eq!(
            node.process_info(log.worker("a").pid())
                .and_then(|info| info.supervisor),
            Some(new_sub)
        );
    });
}

#[test]
fn failed_restart_attempts_count_toward_the_intensity() {
    run(|node| async move {
        // given: a starts once and then fails every init; two restarts allowed per minute
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(2, LONG_WINDOW)
            .child(log.args("a").inits_that_succeed(1).spec())
            .child(log.spec("b"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b"]).await;

        // when
        log.worker("a").cast(Cast::Crash).unwrap();

        // then: two failed attempts use up the intensity, the third escalates
        log.expect(&["init-failed a", "init-failed a", "terminate b shutdown"])
            .await;
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn the_default_intensity_restarts_three_quick_crashes_and_the_fourth_escalates() {
    assert_eq!(DEFAULT_MAX_RESTARTS, 3);
    assert_eq!(DEFAULT_RESTART_WINDOW, Duration::from_secs(5));
    run(|node| async move {
        // given: the default intensity
        let mut log = Log::new();
        let sup = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(log.spec("a")),
        )
        .await;
        log.expect(&["init a"]).await;
        let first_crash = Instant::now();

        // when: three crashes
        for _ in 0..3 {
            log.worker("a").cast(Cast::Crash).unwrap();
            log.expect(&["init a"]).await;
        }

        // then: restarted each time, and a fourth crash within the window escalates
        assert!(sup.is_alive());
        let elapsed = first_crash.elapsed();
        assert!(
            elapsed < Duration::from_secs(4),
            "precondition: three restarts took {elapsed:?}, too close to the 5 s window"
        );
        log.worker("a").cast(Cast::Crash).unwrap();
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.assert_quiet();
    });
}

#[test]
fn restarts_older_than_the_window_are_forgotten() {
    run(|node| async move {
        // given: one restart per 300 ms, used once
        let window = Duration::from_millis(300);
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, window)
            .child(log.spec("a"));
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        log.worker("a").cast(Cast::Crash).unwrap();
        log.expect(&["init a"]).await;

        // when: the window passes (time itself is what is tested), and a crashes again
        smol::Timer::after(window * 2).await;
        log.worker("a").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init a"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

// ---------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------

#[test]
fn stopping_the_supervisor_stops_children_in_reverse_order_one_at_a_time() {
    run(|node| async move {
        // given: c takes a while to terminate; if b were asked meanwhile, it would report
        // first
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(
                log.args("c")
                    .terminate_slowly(Duration::from_millis(200))
                    .spec(),
            );
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init c"]).await;

        // when
        let stopped = within("the supervisor to stop", sup.stop(ExitReason::Shutdown)).await;

        // then
        assert_eq!(stopped, Ok(ExitReason::Shutdown));
        log.expect(&[
            "terminate c shutdown",
            "terminate b shutdown",
            "terminate a shutdown",
        ])
        .await;
        assert_eq!(node.process_count(), 0);
    });
}

#[test]
fn brutal_kill_ends_a_child_without_running_terminate() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a").shutdown(Shutdown::BrutalKill))
            .child(log.spec("b"));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b"]).await;
        let a = log.worker("a");
        let events = node.events();

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        log.expect(&["terminate b shutdown"]).await;
        log.assert_quiet();
        assert_eq!(exit_reason(&events, a.pid()).await, ExitReason::Killed);
    });
}

#[test]
fn a_child_whose_terminate_outlasts_its_shutdown_timeout_is_killed() {
    run(|node| async move {
        // given
        let grace = Duration::from_millis(300);
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            log.args("a")
                .hang_in_terminate()
                .spec()
                .shutdown(Shutdown::Timeout(grace)),
        );
        let sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let a = log.worker("a");
        let events = node.events();

        // when
        let asked = Instant::now();
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then: terminate ran, and the child was killed after the timeout
        log.expect(&["terminate a shutdown"]).await;
        assert_eq!(exit_reason(&events, a.pid()).await, ExitReason::Killed);
        assert!(asked.elapsed() >= grace, "killed before its timeout");
    });
}

#[test]
fn stopping_a_tree_stops_a_nested_supervisor_and_its_children_in_reverse_order() {
    run(|node| async move {
        // given: top [a, sub [x, y], c]
        let mut log = Log::new();
        let sub = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("x"))
            .child(log.spec("y"));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(ChildSpec::supervisor("sub", sub))
            .child(log.spec("c"));
        let top = start(&node, spec).await;
        log.expect(&["init a", "init x", "init y", "init c"]).await;

        // when
        within("the tree to stop", top.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        log.expect(&[
            "terminate c shutdown",
            "terminate y shutdown",
            "terminate x shutdown",
            "terminate a shutdown",
        ])
        .await;
        assert_eq!(node.process_count(), 0);
    });
}

// ---------------------------------------------------------------------------------------
// The dynamic API
// ---------------------------------------------------------------------------------------

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

#[test]
fn start_child_starts_a_new_child_after_the_existing_ones() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let pid = within("start_child", sup.start_child(log.spec("c")))
            .await
            .unwrap();

        // then
        log.expect(&["init c"]).await;
        assert_eq!(pid, *log.worker("c").pid());
        assert_eq!(ids(&sup).await, ["a", "b", "c"]);
        assert_eq!(pid_of(&sup, "c").await, pid);
    });
}

#[test]
fn start_child_with_the_id_of_a_running_child_returns_already_started() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("start_child", sup.start_child(log.spec("a"))).await;

        // then
        assert_eq!(
            result,
            Err(SupervisorError::AlreadyStarted {
                id: "a".into(),
                pid: log.worker("a").pid().clone()
            })
        );
        log.assert_quiet();
    });
}

#[test]
fn start_child_with_the_id_of_a_stopped_child_returns_already_present() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();
        log.expect(&["terminate a shutdown"]).await;

        // when
        let result = within("start_child", sup.start_child(log.spec("a"))).await;

        // then
        assert_eq!(result, Err(SupervisorError::AlreadyPresent("a".into())));
        log.assert_quiet();
    });
}

#[test]
fn terminate_child_stops_the_child_keeps_its_spec_and_does_not_restart_it() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let b = pid_of(&sup, "b").await;

        // when
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        settle(&sup).await;
        log.assert_quiet();
        assert_eq!(
            children(&sup).await,
            [("a".to_owned(), None), ("b".to_owned(), Some(b))]
        );
    });
}

#[test]
fn terminate_child_accepts_the_child_pid() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let a = pid_of(&sup, "a").await;

        // when
        within("terminate_child", sup.terminate_child(&a))
            .await
            .unwrap();

        // then
        log.expect(&["terminate a shutdown"]).await;
        assert!(!node.is_alive(&a));
    });
}

#[test]
fn restart_child_starts_a_terminated_child_again() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let old = pid_of(&sup, "a").await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();
        log.expect(&["terminate a shutdown"]).await;

        // when
        let new = within("restart_child", sup.restart_child("a"))
            .await
            .unwrap();

        // then
        log.expect(&["init a"]).await;
        assert_ne!(new, old);
        assert_eq!(pid_of(&sup, "a").await, new);
        assert_eq!(ids(&sup).await, ["a", "b"], "the child keeps its place");
    });
}

#[test]
fn restart_child_of_a_running_child_returns_running() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("restart_child", sup.restart_child("a")).await;

        // then
        assert_eq!(result, Err(SupervisorError::Running("a".into())));
        log.assert_quiet();
    });
}

#[test]
fn delete_child_removes_the_spec_of_a_stopped_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        within("terminate_child", sup.terminate_child("a"))
            .await
            .unwrap();

        // when
        let result = within("delete_child", sup.delete_child("a")).await;

        // then
        assert_eq!(result, Ok(()));
        assert_eq!(ids(&sup).await, ["b"]);
    });
}

#[test]
fn delete_child_of_a_running_child_returns_running() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within("delete_child", sup.delete_child("a")).await;

        // then
        assert_eq!(result, Err(SupervisorError::Running("a".into())));
        assert_eq!(ids(&sup).await, ["a", "b"]);
    });
}

#[test]
fn requests_for_an_unknown_child_return_not_found() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;
        let not_found = || Err(SupervisorError::NotFound(ChildKey::Id("nope".into())));

        // when / then
        assert_eq!(
            within("terminate_child", sup.terminate_child("nope")).await,
            not_found()
        );
        assert_eq!(
            within("restart_child", sup.restart_child("nope"))
                .await
                .map(|_| ()),
            not_found()
        );
        assert_eq!(
            within("delete_child", sup.delete_child("nope")).await,
            not_found()
        );
    });
}

#[test]
fn count_children_counts_specs_running_children_supervisors_and_workers() {
    run(|node| async move {
        // given: two workers (one stopped) and a supervisor
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(log.spec("a"))
            .child(log.spec("b"))
            .child(ChildSpec::supervisor(
                "sub",
                SupervisorSpec::new(Strategy::OneForOne).child(log.spec("x")),
            ));
        let sup = start(&node, spec).await;
        log.expect(&["init a", "init b", "init x"]).await;
        within("terminate_child", sup.terminate_child("b"))
            .await
            .unwrap();

        // when
        let counts = within("count_children", sup.count_children())
            .await
            .unwrap();

        // then
        assert_eq!(counts.specs, 3);
        assert_eq!(counts.active, 2);
        assert_eq!(counts.supervisors, 1);
        assert_eq!(counts.workers, 2);
    });
}

// ---------------------------------------------------------------------------------------
// simple_one_for_one
// ---------------------------------------------------------------------------------------

fn simple(template: ChildTemplate) -> SupervisorSpec {
    SupervisorSpec::simple_one_for_one(template).intensity(10, LONG_WINDOW)
}

#[test]
fn start_simple_child_returns_a_typed_ref_to_the_new_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when
        let child = within(
            "start_simple_child",
            sup.start_simple_child::<Worker>(log.args("w1")),
        )
        .await
        .unwrap();

        // then
        log.expect(&["init w1"]).await;
        let (id, pid) = within("the child's answer", child.call(Whoami))
            .await
            .unwrap();
        assert_eq!((id.as_str(), &pid), ("w1", child.pid()));
        assert_eq!(
            children(&sup)
                .await
                .into_iter()
                .map(|(_, pid)| pid)
                .collect::<Vec<_>>(),
            [Some(pid)]
        );
    });
}

#[test]
fn a_crashed_simple_child_is_restarted_with_its_args() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let w1 = within("w1", sup.start_simple_child::<Worker>(log.args("w1")))
            .await
            .unwrap();
        let w2 = within("w2", sup.start_simple_child::<Worker>(log.args("w2")))
            .await
            .unwrap();
        log.expect(&["init w1", "init w2"]).await;

        // when
        w2.cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init w2"]).await;
        let restarted = log.worker("w2");
        assert_ne!(restarted.pid(), w2.pid());
        let pids: Vec<_> = children(&sup).await.into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            pids,
            [Some(w1.pid().clone()), Some(restarted.pid().clone())]
        );
    });
}

#[test]
fn start_simple_child_of_another_behaviour_returns_wrong_behavior() {
    run(|node| async move {
        // given
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when
        let result = within("start_simple_child", sup.start_simple_child::<Other>(())).await;

        // then
        assert_eq!(
            result.err(),
            Some(SupervisorError::WrongBehavior {
                expected: std::any::type_name::<Worker>(),
                found: std::any::type_name::<Other>(),
            })
        );
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn requests_about_static_children_on_a_simple_one_for_one_supervisor_return_simple_one_for_one() {
    run(|node| async move {
        // given
        let log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;

        // when / then
        assert_eq!(
            within("start_child", sup.start_child(log.spec("a"))).await,
            Err(SupervisorError::SimpleOneForOne)
        );
        assert_eq!(
            within("restart_child", sup.restart_child("worker-1")).await,
            Err(SupervisorError::SimpleOneForOne)
        );
        assert_eq!(
            within("delete_child", sup.delete_child("worker-1")).await,
            Err(SupervisorError::SimpleOneForOne)
        );
    });
}

#[test]
fn start_simple_child_on_a_static_supervisor_returns_not_simple() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = a_and_b(&node, &mut log).await;

        // when
        let result = within(
            "start_simple_child",
            sup.start_simple_child::<Worker>(log.args("w1")),
        )
        .await;

        // then
        assert_eq!(result.err(), Some(SupervisorError::NotSimple));
        log.assert_quiet();
    });
}

#[test]
fn terminate_child_of_a_simple_child_by_pid_stops_it_and_removes_it() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let w1 = within("w1", sup.start_simple_child::<Worker>(log.args("w1")))
            .await
            .unwrap();
        log.expect(&["init w1"]).await;

        // when
        within("terminate_child", sup.terminate_child(w1.pid()))
            .await
            .unwrap();

        // then
        log.expect(&["terminate w1 shutdown"]).await;
        assert_eq!(ids(&sup).await, Vec::<String>::new());
    });
}

#[test]
fn stopping_a_simple_one_for_one_supervisor_stops_all_its_children() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup = start(&node, simple(ChildTemplate::worker::<Worker>("worker"))).await;
        let mut workers = Vec::new();
        for id in ["w1", "w2", "w3"] {
            let child = within(id, sup.start_simple_child::<Worker>(log.args(id)))
                .await
                .unwrap();
            workers.push(child);
        }
        log.expect(&["init w1", "init w2", "init w3"]).await;

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then
        assert_eq!(
            log.next_sorted(3).await,
            [
                "terminate w1 shutdown",
                "terminate w2 shutdown",
                "terminate w3 shutdown"
            ]
        );
        assert!(workers.iter().all(|w| !w.is_alive()));
    });
}

#[test]
fn a_simple_one_for_one_supervisor_stops_its_children_concurrently() {
    run(|node| async move {
        // given: children whose terminate finishes only once all three are terminating,
        // so that stopping them one at a time would kill them at their timeout instead
        let met = Arc::new(AtomicUsize::new(0));
        let mut log = Log::new();
        let template = ChildTemplate::worker::<Worker>("worker")
            .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
        let sup = start(&node, simple(template)).await;
        for id in ["w1", "w2", "w3"] {
            let args = log.args(id).terminate_together(&met, 3);
            within(id, sup.start_simple_child::<Worker>(args))
                .await
                .unwrap();
        }
        log.expect(&["init w1", "init w2", "init w3"]).await;

        // when
        within("the supervisor to stop", sup.stop(ExitReason::Shutdown))
            .await
            .unwrap();

        // then: all three terminates completed
        assert_eq!(
            log.next_sorted(3).await,
            [
                "terminate w1 shutdown",
                "terminate w2 shutdown",
                "terminate w3 shutdown"
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------
// auto_shutdown
// ---------------------------------------------------------------------------------------

/// Under `AnySignificant`: `p` (permanent, not significant) and `s` (significant, with
/// the given restart type).
async fn significant_and_plain(
    node: &Node,
    log: &mut Log,
    strategy: Strategy,
    significant: Restart,
) -> ServerRef<Supervisor> {
    let spec = SupervisorSpec::new(strategy)
        .intensity(10, LONG_WINDOW)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(log.spec("p"))
        .child(log.spec("s").restart(significant).significant(true));
    let sup = start(node, spec).await;
    log.expect(&["init p", "init s"]).await;
    sup
}

#[test]
fn any_significant_shuts_the_supervisor_down_when_one_of_its_significant_children_exits_normally() {
    run(|node| async move {
        // given: two significant children and a plain one
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(log.spec("p"))
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init p", "init s1", "init s2"]).await;

        // when
        log.worker("s1")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then: the supervisor does not wait for s2
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
        log.expect(&[
            "terminate s1 normal",
            "terminate s2 shutdown",
            "terminate p shutdown",
        ])
        .await;
    });
}

#[test]
fn a_significant_child_that_crashes_is_restarted_without_a_shutdown() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        log.worker("s").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["init s"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
    });
}

#[test]
fn terminate_child_of_a_significant_child_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForOne, Restart::Transient).await;

        // when
        within("terminate_child", sup.terminate_child("s"))
            .await
            .unwrap();

        // then
        log.expect(&["terminate s shutdown"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        log.assert_quiet();
    });
}

#[test]
fn a_significant_child_stopped_by_a_sibling_restart_does_not_shut_the_supervisor_down() {
    run(|node| async move {
        // given: a temporary significant child under one_for_all
        let mut log = Log::new();
        let sup =
            significant_and_plain(&node, &mut log, Strategy::OneForAll, Restart::Temporary).await;

        // when
        log.worker("p").cast(Cast::Crash).unwrap();

        // then
        log.expect(&["terminate s shutdown", "init p"]).await;
        settle(&sup).await;
        assert!(sup.is_alive());
        assert_eq!(ids(&sup).await, ["p"]);
    });
}

#[test]
fn all_significant_waits_for_the_last_significant_child() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(log.spec("s1").restart(Restart::Transient).significant(true))
            .child(log.spec("s2").restart(Restart::Transient).significant(true));
        let sup = start(&node, spec).await;
        log.expect(&["init s1", "init s2"]).await;
        let s1 = log.worker("s1");
        s1.cast(Cast::Exit(ExitReason::Normal)).unwrap();
        ended(&s1).await;
        settle(&sup).await;
        assert!(sup.is_alive(), "one significant child is still running");

        // when
        log.worker("s2")
            .cast(Cast::Exit(ExitReason::Normal))
            .unwrap();

        // then
        assert_eq!(sup_ended(&sup).await, ExitReason::Shutdown);
    });
}

// ---------------------------------------------------------------------------------------
// Names, trees and the pool
// ---------------------------------------------------------------------------------------

#[test]
fn a_named_child_is_reached_by_name_after_a_restart() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(log.spec("a").name("x"));
        let _sup = start(&node, spec).await;
        log.expect(&["init a"]).await;
        let named = node.named::<Worker>("x");
        let (_, old) = within("a call by name", named.call(Whoami)).await.unwrap();

        // when
        node.kill(&old);

        // then
        log.expect(&["init a"]).await;
        let (_, new) = within("a call by name", named.call(Whoami)).await.unwrap();
        assert_ne!(new, old);
        assert_eq!(&new, log.worker("a").pid());
    });
}

#[test]
fn a_child_process_info_names_its_supervisor() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let sub = SupervisorSpec::new(Strategy::OneForOne).child(log.spec("w"));
        let top = start(
            &node,
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("sub", sub)),
        )
        .await;
        log.expect(&["init w"]).await;

        // when
        let sub = pid_of(&top, "sub").await;
        let supervisor_of = |pid: &Pid| node.process_info(pid).unwrap().supervisor;

        // then
        assert_eq!(supervisor_of(log.worker("w").pid()), Some(sub.clone()));
        assert_eq!(supervisor_of(&sub), Some(top.pid().clone()));
        assert_eq!(supervisor_of(top.pid()), None);
    });
}

#[test]
fn a_pool_of_four_workers_stays_at_four_when_any_worker_is_killed() {
    run(|node| async move {
        // given
        let mut log = Log::new();
        let ids = ["w1", "w2", "w3", "w4"];
        let mut spec = SupervisorSpec::new(Strategy::OneForOne).intensity(10, LONG_WINDOW);
        for id in ids {
            spec = spec.child(log.spec(id));
        }
        let pool = start(&node, spec).await;
        log.expect(&["init w1", "init w2", "init w3", "init w4"])
            .await;

        for (i, id) in ids.into_iter().enumerate() {
            let before = children(&pool).await;
            let victim = before[i].1.clone().unwrap();

            // when
            node.kill(&victim);

            // then
            let restarted = format!("init {id}");
            log.expect(&[restarted.as_str()]).await;
            let after = children(&pool).await;
            assert_eq!(
                within("count_children", pool.count_children())
                    .await
                    .unwrap()
                    .active,
                4
            );
            for (j, (child, pid)) in after.iter().enumerate() {
                let pid = pid.as_ref().expect("every worker runs");
                assert!(node.is_alive(pid), "{child} is alive");
                if j == i {
                    assert_ne!(pid, &victim, "{child} was replaced");
                } else {
                    assert_eq!(Some(pid), before[j].1.as_ref(), "{child} was untouched");
                }
            }
        }
    });
}
