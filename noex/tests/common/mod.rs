//! Shared test set-up: a node per test, a deadline on every test body and every wait, and
//! `Probe`, a process that does what the test tells it and reports everything it sees.
#![allow(dead_code)]

pub mod gate;
pub mod raw;

use std::future::Future;
use std::time::Duration;

use futures_lite::FutureExt;
use noex::{
    Ctx, ExitReason, GenServer, Info, MonitorRef, Node, Pid, ReplyTo, ServerRef, SpawnError,
    TimerRef,
};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a whole test body may take.
pub const TEST_DEADLINE: Duration = Duration::from_secs(60);

/// Runs a test body as a task on a fresh two-thread node (processes it spawns share its
/// thread), fails the test if it takes longer than [`TEST_DEADLINE`], then shuts the node
/// down.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce(Node) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let node = Node::builder().name("test").threads(2).build();
    let task = node.spawn_task(body(node.clone()));
    let finished = node.block_on(
        async {
            task.await;
            true
        }
        .or(async {
            smol::Timer::after(TEST_DEADLINE).await;
            false
        }),
    );
    node.shutdown();
    assert!(
        finished,
        "test body did not finish within {TEST_DEADLINE:?}"
    );
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let result = async { Some(future.await) }
        .or(async {
            smol::Timer::after(WAIT).await;
            None
        })
        .await;
    match result {
        Some(value) => value,
        None => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Waits until `condition` holds, re-checking after every yield, for at most [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// The reason `pid` ends with, watched from now on (through `node`): a monitor set before
/// what the test does next, so that an end that comes at once is not missed (`NoProc`).
pub async fn watch_end(node: &Node, pid: &Pid) -> smol::Task<ExitReason> {
    let (node, pid) = (node.clone(), pid.clone());
    let mut exited = Box::pin(async move { node.exited(&pid).await });
    // Its first poll sets the monitor: here, not whenever the task is first run.
    if let Some(reason) = futures_lite::future::poll_once(&mut exited).await {
        return smol::spawn(async move { reason });
    }
    smol::spawn(exited)
}

/// What a [`Probe`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Exit {
        from: Pid,
        reason: ExitReason,
    },
    Down {
        monitor: MonitorRef,
        pid: Pid,
        reason: ExitReason,
    },
    Message(String),
    NodeDown(noex::NodeId),
    Terminated(ExitReason),
}

/// A process that obeys the test and reports what it sees on a channel.
pub struct Probe {
    seen: async_channel::Sender<Seen>,
}

/// What a probe is started with.
#[derive(Clone)]
pub struct ProbeArgs {
    pub seen: async_channel::Sender<Seen>,
    pub trap_exits: bool,
}

pub enum ProbeCall {
    Ping,
    Link(Pid),
    Unlink(Pid),
    Monitor(Pid),
    Demonitor(MonitorRef),
    TrapExits(bool),
    Exit(Pid, ExitReason),
    Stop(ExitReason),
    Panic(String),
    Sleep(Duration),
    SpawnLink(ProbeArgs),
    SpawnMonitor(ProbeArgs),
    SendAfter(String, Duration),
    Interval(String, Duration),
    MonitorNode(noex::NodeId),
    DemonitorNode(noex::NodeId),
}

pub enum ProbeReply {
    Done,
    Monitor(MonitorRef),
    Demonitored(bool),
    Sent(bool),
    Spawned(Result<ServerRef<Probe>, SpawnError<String>>),
    SpawnedMonitored(Result<(ServerRef<Probe>, MonitorRef), SpawnError<String>>),
    Timer(TimerRef),
}

impl GenServer for Probe {
    type Args = ProbeArgs;
    type Call = ProbeCall;
    type Reply = ProbeReply;
    type Cast = ();
    type Info = String;
    type InitError = String;

    async fn init(args: ProbeArgs, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        ctx.trap_exits(args.trap_exits);
        Ok(Probe { seen: args.seen })
    }

    async fn handle_call(
        &mut self,
        call: ProbeCall,
        reply: ReplyTo<ProbeReply>,
        ctx: &mut Ctx<Self>,
    ) {
        let answer = match call {
            ProbeCall::Ping => ProbeReply::Done,
            ProbeCall::Link(pid) => {
                ctx.link(&pid);
                ProbeReply::Done
            }
            ProbeCall::Unlink(pid) => {
                ctx.unlink(&pid);
                ProbeReply::Done
            }
            ProbeCall::Monitor(pid) => ProbeReply::Monitor(ctx.monitor(&pid)),
            ProbeCall::Demonitor(monitor) => ProbeReply::Demonitored(ctx.demonitor(monitor)),
            ProbeCall::TrapExits(trap) => {
                ctx.trap_exits(trap);
                ProbeReply::Done
            }
            ProbeCall::Exit(pid, reason) => ProbeReply::Sent(ctx.exit(&pid, reason)),
            ProbeCall::Stop(reason) => {
                ctx.stop(reason);
                ProbeReply::Done
            }
            ProbeCall::Panic(message) => panic!("{message}"),
            ProbeCall::Sleep(duration) => {
                smol::Timer::after(duration).await;
                ProbeReply::Done
            }
            ProbeCall::SpawnLink(args) => ProbeReply::Spawned(ctx.spawn_link::<Probe>(args).await),
            ProbeCall::SpawnMonitor(args) => {
                ProbeReply::SpawnedMonitored(ctx.spawn_monitor::<Probe>(args).await)
            }
            ProbeCall::SendAfter(message, delay) => {
                ProbeReply::Timer(ctx.send_after(message, delay))
            }
            ProbeCall::Interval(message, period) => {
                ProbeReply::Timer(ctx.send_interval(message, period))
            }
            ProbeCall::MonitorNode(node) => {
                ctx.monitor_node(&node);
                ProbeReply::Done
            }
            ProbeCall::DemonitorNode(node) => ProbeReply::Demonitored(ctx.demonitor_node(&node)),
        };
        reply.send(answer);
    }

    async fn handle_info(&mut self, info: Info<String>, _ctx: &mut Ctx<Self>) {
        let seen = match info {
            Info::Exit { from, reason } => Seen::Exit { from, reason },
            Info::Down {
                monitor,
                pid,
                reason,
            } => Seen::Down {
                monitor,
                pid,
                reason,
            },
            Info::NodeDown { node } => Seen::NodeDown(node),
            Info::Message(text) => Seen::Message(text),
            _ => return,
        };
        let _ = self.seen.try_send(seen);
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        let _ = self.seen.try_send(Seen::Terminated(reason.clone()));
    }
}

/// A probe plus the receiving end of what it sees.
pub struct ProbeHandle {
    pub server: ServerRef<Probe>,
    pub seen: async_channel::Receiver<Seen>,
}

impl ProbeHandle {
    pub fn pid(&self) -> &Pid {
        self.server.pid()
    }

    async fn ask(&self, call: ProbeCall) -> ProbeReply {
        within("a probe's reply", self.server.call(call))
            .await
            .unwrap_or_else(|e| panic!("probe {} did not answer: {e}", self.pid()))
    }

    /// Returns once the probe has handled everything queued before, including signals that
    /// had arrived by now (two round trips: signals turn into messages at the first).
    pub async fn sync(&self) {
        self.ask(ProbeCall::Ping).await;
        self.ask(ProbeCall::Ping).await;
    }

    pub async fn link(&self, pid: &Pid) {
        self.ask(ProbeCall::Link(pid.clone())).await;
    }

    pub async fn unlink(&self, pid: &Pid) {
        self.ask(ProbeCall::Unlink(pid.clone())).await;
    }

    pub async fn monitor(&self, pid: &Pid) -> MonitorRef {
        match self.ask(ProbeCall::Monitor(pid.clone())).await {
            ProbeReply::Monitor(monitor) => monitor,
            _ => unreachable!(),
        }
    }

    pub async fn demonitor(&self, monitor: MonitorRef) -> bool {
        match self.ask(ProbeCall::Demonitor(monitor)).await {
            ProbeReply::Demonitored(active) => active,
            _ => unreachable!(),
        }
    }

    pub async fn trap_exits(&self, trap: bool) {
        self.ask(ProbeCall::TrapExits(trap)).await;
    }

    pub async fn exit(&self, pid: &Pid, reason: ExitReason) -> bool {
        match self.ask(ProbeCall::Exit(pid.clone(), reason)).await {
            ProbeReply::Sent(sent) => sent,
            _ => unreachable!(),
        }
    }

    pub async fn stop_itself(&self, reason: ExitReason) {
        self.ask(ProbeCall::Stop(reason)).await;
    }

    pub async fn spawn_link(&self, trap_exits: bool) -> ProbeHandle {
        let (tx, rx) = async_channel::unbounded();
        let args = ProbeArgs {
            seen: tx,
            trap_exits,
        };
        match self.ask(ProbeCall::SpawnLink(args)).await {
            ProbeReply::Spawned(Ok(server)) => ProbeHandle { server, seen: rx },
            _ => panic!("spawn_link failed"),
        }
    }

    pub async fn spawn_monitor(&self) -> (ProbeHandle, MonitorRef) {
        let (tx, rx) = async_channel::unbounded();
        let args = ProbeArgs {
            seen: tx,
            trap_exits: false,
        };
        match self.ask(ProbeCall::SpawnMonitor(args)).await {
            ProbeReply::SpawnedMonitored(Ok((server, monitor))) => {
                (ProbeHandle { server, seen: rx }, monitor)
            }
            _ => panic!("spawn_monitor failed"),
        }
    }

    pub async fn monitor_node(&self, node: &noex::NodeId) {
        self.ask(ProbeCall::MonitorNode(node.clone())).await;
    }

    pub async fn demonitor_node(&self, node: &noex::NodeId) -> bool {
        match self.ask(ProbeCall::DemonitorNode(node.clone())).await {
            ProbeReply::Demonitored(held) => held,
            _ => unreachable!(),
        }
    }

    pub async fn send_after(&self, message: &str, delay: Duration) -> TimerRef {
        match self
            .ask(ProbeCall::SendAfter(message.to_owned(), delay))
            .await
        {
            ProbeReply::Timer(timer) => timer,
            _ => unreachable!(),
        }
    }

    pub async fn interval(&self, message: &str, period: Duration) -> TimerRef {
        match self
            .ask(ProbeCall::Interval(message.to_owned(), period))
            .await
        {
            ProbeReply::Timer(timer) => timer,
            _ => unreachable!(),
        }
    }

    /// The next thing the probe saw, waiting at most [`WAIT`].
    pub async fn next_seen(&self) -> Seen {
        within("the probe to see something", self.seen.recv())
            .await
            .expect("probe's channel closed")
    }

    /// Asserts that the probe has seen nothing more (call [`sync`](Self::sync) first).
    pub fn assert_saw_nothing(&self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("probe {} saw {seen:?}, expected nothing", self.pid());
        }
    }

    /// Waits until the probe has ended; returns why.
    pub async fn exited(&self) -> ExitReason {
        within("the probe to end", self.server.exited()).await
    }
}

/// Spawns a probe on `node`.
pub async fn probe(node: &Node, trap_exits: bool) -> ProbeHandle {
    let (tx, rx) = async_channel::unbounded();
    let server = node
        .spawn::<Probe>(ProbeArgs {
            seen: tx,
            trap_exits,
        })
        .await
        .expect("probe starts");
    ProbeHandle { server, seen: rx }
}

/// Makes `probe` panic with `message` inside a call; returns the reason it ended with, once
/// its end has been fully processed (its exit signals and `Down`s are out).
pub async fn crash(probe: &ProbeHandle, message: &str) -> ExitReason {
    let call = probe.server.call(ProbeCall::Panic(message.to_owned()));
    let result = within("the crashing call", call).await;
    assert!(
        matches!(result, Err(noex::CallError::Exited(_))),
        "the crashing call should fail with Exited, got {:?}",
        result.map(|_| ())
    );
    probe.exited().await
}

/// A process that is not running any more.
pub async fn dead_pid(node: &Node) -> Pid {
    let gone = probe(node, false).await;
    gone.stop_itself(ExitReason::Normal).await;
    assert_eq!(gone.exited().await, ExitReason::Normal);
    gone.pid().clone()
}

/// How a [`Brief`] child lives.
pub enum Fate {
    /// `init` succeeds, then the child stops at once with this reason.
    EndsRightAfterInit(ExitReason),
    /// `init` returns this error.
    InitFails(String),
    /// `init` panics with this message.
    InitPanics(String),
}

/// A child whose whole life is its [`Fate`].
pub struct Brief;

impl GenServer for Brief {
    type Args = Fate;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(fate: Fate, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        match fate {
            Fate::EndsRightAfterInit(reason) => {
                ctx.stop(reason);
                Ok(Brief)
            }
            Fate::InitFails(error) => Err(error),
            Fate::InitPanics(message) => panic!("{message}"),
        }
    }
}

/// Runs an async test body on the test's own thread (for tests that start their own nodes,
/// such as clusters), failing if it takes longer than [`TEST_DEADLINE`].
pub fn run_blocking<Fut: Future<Output = ()>>(body: Fut) {
    let finished = smol::block_on(
        async {
            body.await;
            true
        }
        .or(async {
            smol::Timer::after(TEST_DEADLINE).await;
            false
        }),
    );
    assert!(
        finished,
        "test body did not finish within {TEST_DEADLINE:?}"
    );
}

/// The id of a clustered node.
pub fn id(node: &Node) -> noex::NodeId {
    node.local_node_id().expect("a clustered node").clone()
}

/// The cluster settings of tests: quick heartbeats and reconnects, loopback, a secret.
pub fn cluster_config(name: &str) -> noex::ClusterConfig {
    noex::ClusterConfig::new(name)
        .secret("test secret")
        .heartbeat(Duration::from_millis(100), Duration::from_millis(800))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(2))
        .threads(2)
}

/// [`start_cluster`], then every node registers the program's behaviours (for spawns by
/// name).
pub async fn start_registered_cluster(n: usize) -> Vec<Node> {
    let nodes = start_cluster(n).await;
    for node in &nodes {
        node.register_behaviors().unwrap();
    }
    nodes
}

/// Starts `n` nodes, each seeded with the first, and waits until all see each other.
pub async fn start_cluster(n: usize) -> Vec<Node> {
    start_cluster_with(n, |config| config).await
}

/// [`start_cluster`], each node's [`cluster_config`] changed by `tune` (slower heartbeats,
/// say).
pub async fn start_cluster_with(
    n: usize,
    tune: fn(noex::ClusterConfig) -> noex::ClusterConfig,
) -> Vec<Node> {
    let first = Node::start(tune(cluster_config("n0")))
        .await
        .expect("node starts");
    let seed = first.local_node_id().unwrap().to_string();
    let mut nodes = vec![first];
    for i in 1..n {
        let config = tune(cluster_config(&format!("n{i}"))).seed(seed.clone());
        nodes.push(Node::start(config).await.expect("node starts"));
    }
    for node in &nodes {
        wait_connected(node, n - 1).await;
    }
    nodes
}

/// Shuts every node down.
pub fn shutdown_all(nodes: Vec<Node>) {
    for node in nodes {
        node.shutdown();
    }
}

/// Cuts (or heals) every link between `nodes[at]` and the others, both ways.
pub fn isolate(nodes: &[Node], at: usize, cut: bool) {
    let lone = nodes[at].local_node_id().unwrap();
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != at) {
        node.faults().partition(lone, cut);
        let other = nodes[i].local_node_id().unwrap();
        nodes[at].faults().partition(other, cut);
    }
}

/// Waits until `node` is connected to exactly `count` peers.
pub async fn wait_connected(node: &Node, count: usize) {
    let what = format!("{:?} to see {count} peers", node.local_node_id());
    within(&what, async {
        while node.connected_nodes().len() != count {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// The next cluster event, waiting at most [`WAIT`].
pub async fn next_event(events: &noex::ClusterEvents) -> noex::ClusterEvent {
    within("a cluster event", events.recv())
        .await
        .expect("the node is gone")
}

/// Asserts that `value` matches `pattern`, printing the value if not (std's
/// `assert_matches!` is not stable yet).
#[macro_export]
macro_rules! assert_matches {
    ($value:expr, $pattern:pat $(if $guard:expr)?) => {{
        let value = $value;
        assert!(
            matches!(&value, $pattern $(if $guard)?),
            "expected {}, got {:?}",
            stringify!($pattern),
            value
        );
    }};
}
