//! Spawning on other nodes: typed and by name, with a name, linked or monitored from a
//! process, and every way a spawn can fail — with no process left behind.

mod common;
use common::id;

use std::time::Duration;

use common::{
    cluster_config, eventually, run_blocking, shutdown_all, start_registered_cluster, within,
};
use noex::{
    behavior, Ctx, ExitReason, Info, MonitorRef, Node, NodeId, Pid, RemoteSpawnError, ServerRef,
    SpawnOptions,
};
use serde::{Deserialize, Serialize};

/// How a [`Worker`]'s `init` goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Start {
    Fine,
    Fail(String),
    Panic,
    Slow(u64),
    EndAtOnce(ExitReason),
    Trapping,
}

#[behavior(name = "worker")]
pub struct Worker {
    jobs: u64,
}

#[behavior]
impl Worker {
    #[init]
    async fn init(start: Start, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        match start {
            Start::Fine => {}
            Start::Fail(error) => return Err(error),
            Start::Panic => panic!("worker could not start"),
            Start::Slow(ms) => {
                smol::Timer::after(Duration::from_millis(ms)).await;
            }
            Start::EndAtOnce(reason) => ctx.stop(reason),
            Start::Trapping => ctx.trap_exits(true),
        }
        Ok(Worker { jobs: 0 })
    }

    #[call]
    fn work(&mut self) -> u64 {
        self.jobs += 1;
        self.jobs
    }

    #[call]
    fn crash(&self) {
        panic!("worker crashed");
    }

    /// Busy for `ms` milliseconds.
    #[call]
    async fn busy(&self, ms: u64) {
        smol::Timer::after(Duration::from_millis(ms)).await;
    }
}

/// A local-only behaviour: not spawned by name.
#[behavior(name = "local-thing")]
pub struct LocalThing;

#[behavior(local)]
impl LocalThing {
    #[init]
    fn init() -> Self {
        LocalThing
    }
}

/// What a [`Parent`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Exit(Pid, ExitReason),
    Down(MonitorRef, Pid, ExitReason),
}

/// Spawns workers on other nodes, linked or monitored, and reports what it sees.
#[behavior(name = "parent")]
pub struct Parent {
    seen: async_channel::Sender<Seen>,
}

#[behavior(local)]
impl Parent {
    #[init]
    fn init(seen: async_channel::Sender<Seen>, ctx: &mut Ctx<Self>) -> Self {
        ctx.trap_exits(true);
        Parent { seen }
    }

    #[call]
    async fn spawn_link_on(
        &mut self,
        node: NodeId,
        start: Start,
        ctx: &mut Ctx<Self>,
    ) -> Result<ServerRef<Worker>, RemoteSpawnError> {
        ctx.spawn_link_on::<Worker>(&node, start).await
    }

    #[call]
    async fn spawn_monitor_on(
        &mut self,
        node: NodeId,
        start: Start,
        ctx: &mut Ctx<Self>,
    ) -> Result<(ServerRef<Worker>, MonitorRef), RemoteSpawnError> {
        ctx.spawn_monitor_on::<Worker>(&node, start).await
    }

    #[call]
    async fn spawn_link_on_named(
        &mut self,
        node: NodeId,
        name: String,
        ctx: &mut Ctx<Self>,
    ) -> Result<ServerRef<Worker>, RemoteSpawnError> {
        let options = SpawnOptions::new().name(name);
        ctx.spawn_link_on_with::<Worker>(&node, Start::Fine, options)
            .await
    }

    #[call]
    async fn spawn_monitor_on_named(
        &mut self,
        node: NodeId,
        name: String,
        ctx: &mut Ctx<Self>,
    ) -> Result<(ServerRef<Worker>, MonitorRef), RemoteSpawnError> {
        let options = SpawnOptions::new().name(name);
        ctx.spawn_monitor_on_with::<Worker>(&node, Start::Fine, options)
            .await
    }

    /// Starts spawning a linked worker on `node`, waits for `gate`, then gives the spawn up.
    #[call]
    async fn spawn_link_on_then_drop(
        &mut self,
        node: NodeId,
        gate: async_channel::Receiver<()>,
        ctx: &mut Ctx<Self>,
    ) {
        let mut spawn = Box::pin(ctx.spawn_link_on::<Worker>(&node, Start::Fine));
        assert!(futures_lite::future::poll_once(&mut spawn).await.is_none());
        let _ = gate.recv().await;
    }

    #[call]
    fn ping(&self) {}

    #[info]
    fn info(&mut self, info: Info<()>) {
        let seen = match info {
            Info::Exit { from, reason } => Seen::Exit(from, reason),
            Info::Down {
                monitor,
                pid,
                reason,
            } => Seen::Down(monitor, pid, reason),
            _ => return,
        };
        let _ = self.seen.try_send(seen);
    }
}

/// A hand-written `GenServer`, made remote with one line.
pub struct HandCounter(u64);

#[derive(Serialize, Deserialize)]
pub enum HandCall {
    Get,
}

#[derive(Serialize, Deserialize)]
pub enum HandCast {
    Add(u64),
}

#[noex::remote(name = "hand-counter")]
impl noex::GenServer for HandCounter {
    type Args = u64;
    type Call = HandCall;
    type Reply = u64;
    type Cast = HandCast;
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(HandCounter(start))
    }

    async fn handle_call(&mut self, _: HandCall, reply: noex::ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(self.0);
    }

    async fn handle_cast(&mut self, HandCast::Add(n): HandCast, _: &mut Ctx<Self>) {
        self.0 += n;
    }
}

/// Waits until `node` runs exactly `count` processes.
async fn runs(node: &Node, count: usize) {
    eventually("the processes to be as expected", || {
        node.process_count() == count
    })
    .await
}

#[test]
fn a_typed_remote_spawn_returns_a_reference_usable_at_once() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let worker = a.spawn_on::<Worker>(&id(b), Start::Fine).await.unwrap();
        assert_eq!(worker.pid().node(), id(b).as_str());
        assert!(!worker.is_local());
        assert_eq!(worker.work().await, Ok(1));
        assert_eq!(worker.work().await, Ok(2));
        assert_eq!(b.process_count(), 1);
        // On the node's own id: a local spawn.
        let here = a.spawn_on::<Worker>(&id(a), Start::Fine).await.unwrap();
        assert!(here.is_local());
        let stats = a.remote_stats().spawns;
        assert_eq!((stats.started, stats.succeeded, stats.pending), (1, 1, 0));
        shutdown_all(nodes);
    });
}

#[test]
fn a_remote_spawn_with_a_name_is_found_from_a_third_node() {
    run_blocking(async {
        let nodes = start_registered_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let options = SpawnOptions::new().name("the-worker");
        let worker = a
            .spawn_on_with::<Worker>(&id(b), Start::Fine, options.clone())
            .await
            .unwrap();
        assert_eq!(b.whereis("the-worker").as_ref(), Some(worker.pid()));
        let named = c.named_on::<Worker>("the-worker", &id(b));
        assert_eq!(named.work().await, Ok(1));
        // The name is taken now: the next spawn fails, naming the holder, and leaves
        // nothing behind.
        let again = a
            .spawn_on_with::<Worker>(&id(b), Start::Fine, options)
            .await;
        assert_eq!(
            again.map(|w| w.pid().clone()),
            Err(RemoteSpawnError::NameTaken {
                name: "the-worker".into(),
                node: id(b),
                holder: worker.pid().clone()
            })
        );
        runs(b, 1).await;
        shutdown_all(nodes);
    });
}

#[test]
fn every_failed_remote_spawn_says_why_and_leaves_nothing_behind() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let node = id(b);
        let spawn = |start: Start| a.spawn_on::<Worker>(&node, start);
        let behavior = || "worker".to_owned();

        assert_eq!(
            spawn(Start::Fail("no disk".into())).await.map(|_| ()),
            Err(RemoteSpawnError::InitFailed {
                behavior: behavior(),
                node: node.clone(),
                error: "no disk".into()
            })
        );
        assert_eq!(
            spawn(Start::Panic).await.map(|_| ()),
            Err(RemoteSpawnError::InitPanicked {
                behavior: behavior(),
                node: node.clone(),
                message: "worker could not start".into()
            })
        );
        let slow = SpawnOptions::new().init_timeout(Duration::from_millis(50));
        assert_eq!(
            a.spawn_on_with::<Worker>(&node, Start::Slow(5_000), slow)
                .await
                .map(|_| ()),
            Err(RemoteSpawnError::InitTimeout {
                behavior: behavior(),
                node: node.clone(),
                timeout: Duration::from_millis(50)
            })
        );
        // The spawn as a whole times out: the process that starts too late is ended.
        let impatient = SpawnOptions::new().spawn_timeout(Duration::from_millis(100));
        assert_eq!(
            a.spawn_on_with::<Worker>(&node, Start::Slow(300), impatient)
                .await
                .map(|_| ()),
            Err(RemoteSpawnError::Timeout {
                behavior: behavior(),
                node: node.clone(),
                timeout: Duration::from_millis(100)
            })
        );
        assert_eq!(
            a.spawn_by_name_on(&node, "no-such-thing", &[]).await,
            Err(RemoteSpawnError::BehaviorNotFound {
                behavior: "no-such-thing".into(),
                node: node.clone()
            })
        );
        assert_eq!(
            a.spawn_by_name_on(&node, "local-thing", &[]).await,
            Err(RemoteSpawnError::LocalOnly {
                behavior: "local-thing".into()
            })
        );
        assert!(matches!(
            a.spawn_by_name_on(&node, "worker", &[0xff, 0xff]).await,
            Err(RemoteSpawnError::BadArgs { behavior, node: n, .. }) if behavior == "worker" && n == node
        ));
        let stranger = Node::start(cluster_config("stranger")).await.unwrap();
        assert_eq!(
            spawn_on_stranger(a, &id(&stranger)).await,
            Err(RemoteSpawnError::NoConnection {
                node: id(&stranger)
            })
        );
        stranger.shutdown();
        runs(b, 0).await;
        let stats = a.remote_stats().spawns;
        assert_eq!(stats.started, 8);
        assert_eq!(stats.succeeded, 0);
        assert_eq!(stats.timed_out, 1);
        assert_eq!(stats.unreachable, 1);
        assert_eq!(stats.init_failed, 3);
        assert_eq!(stats.refused, 3);
        assert_eq!(stats.pending, 0);
        shutdown_all(nodes);
    });
}

async fn spawn_on_stranger(a: &Node, stranger: &NodeId) -> Result<(), RemoteSpawnError> {
    a.spawn_on::<Worker>(stranger, Start::Fine)
        .await
        .map(|_| ())
}

#[test]
fn a_spawn_its_caller_gives_up_leaves_no_process_behind() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = id(b);
        let mut spawn = Box::pin(a.spawn_on::<Worker>(&target, Start::Slow(200)));
        assert!(futures_lite::future::poll_once(&mut spawn).await.is_none());
        runs(b, 1).await;
        drop(spawn);
        runs(b, 0).await;
        assert_eq!(a.remote_stats().spawns.pending, 0);
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_whose_connection_is_lost_once_asked_says_so_and_leaves_no_process_behind() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let target = id(b);
        let spawn = a.spawn_on::<Worker>(&target, Start::Slow(1_000));
        let mut spawn = Box::pin(spawn);
        assert!(futures_lite::future::poll_once(&mut spawn).await.is_none());
        // b runs the process's init when the connection goes: it may have started there,
        // which `NoConnection` ("not asked") would hide from a caller about to try elsewhere.
        runs(b, 1).await;
        a.faults().partition(&target, true);
        b.faults().partition(&id(a), true);
        assert_eq!(
            within("the spawn to fail", spawn).await.map(|_| ()),
            Err(RemoteSpawnError::ConnectionLost {
                node: target.clone()
            })
        );
        runs(b, 0).await;
        assert_eq!(a.remote_stats().spawns.pending, 0);
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_given_up_after_its_reply_was_read_leaves_no_process_and_no_link() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (tx, seen) = async_channel::unbounded();
        let parent = a.spawn::<Parent>(tx).await.unwrap();
        let (open, gate) = async_channel::bounded(1);
        // b's answers wait until the worker runs: the spawn is surely still under way when
        // the parent first polls it (both nodes share this machine's threads).
        assert!(b.faults().stall(&id(a), true));
        let mut spawning = Box::pin(parent.spawn_link_on_then_drop(id(b), gate));
        assert!(futures_lite::future::poll_once(&mut spawning)
            .await
            .is_none());
        runs(b, 1).await;
        assert!(b.faults().stall(&id(a), false));
        let worker = b.processes()[0].pid.clone();
        // The worker's reply to this call follows its spawn reply on the connection: once
        // it is back, a has read the spawn reply — which the parent never takes.
        let remote = a.server_ref::<Worker>(&worker).unwrap();
        assert_eq!(remote.work().await, Ok(1));
        open.send(()).await.unwrap();
        assert_eq!(within("the parent", spawning).await, Ok(()));
        // The worker is ended, and the parent, which never saw its pid, hears nothing.
        runs(b, 0).await;
        assert_eq!(a.exited(&worker).await, ExitReason::NoProc);
        assert_eq!(parent.ping().await, Ok(()));
        assert!(seen.is_empty());
        assert!(a.process_info(parent.pid()).unwrap().links.is_empty());
        eventually("no ties left", || {
            a.connected_nodes()[0].ties == noex::TieStats::default()
                && b.connected_nodes()[0].ties == noex::TieStats::default()
        })
        .await;
        assert_eq!(a.remote_stats().spawns.pending, 0);
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_spawns_linked_and_monitored_workers_on_another_node() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (tx, seen) = async_channel::unbounded();
        let parent = a.spawn::<Parent>(tx).await.unwrap();
        let next = || within("the parent to see something", seen.recv());

        // A linked worker that crashes: the trapping parent hears of it.
        let worker = parent
            .spawn_link_on(id(b), Start::Fine)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(worker.pid().node(), id(b).as_str());
        assert!(worker.crash().await.is_err());
        let crash = ExitReason::Panic("worker crashed".into());
        assert_eq!(
            next().await,
            Ok(Seen::Exit(worker.pid().clone(), crash.clone()))
        );

        // A monitored worker that crashes: one Down.
        let (worker, monitor) = parent
            .spawn_monitor_on(id(b), Start::Fine)
            .await
            .unwrap()
            .unwrap();
        assert!(worker.crash().await.is_err());
        assert_eq!(
            next().await,
            Ok(Seen::Down(monitor, worker.pid().clone(), crash))
        );

        // Workers that end right after init are never missed.
        let reason = ExitReason::Custom("done already".into());
        let worker = parent
            .spawn_link_on(id(b), Start::EndAtOnce(reason.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            next().await,
            Ok(Seen::Exit(worker.pid().clone(), reason.clone()))
        );
        let (worker, monitor) = parent
            .spawn_monitor_on(id(b), Start::EndAtOnce(reason.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            next().await,
            Ok(Seen::Down(monitor, worker.pid().clone(), reason))
        );

        // A worker that fails in init is reported once, as the spawn's result.
        let failed = parent
            .spawn_link_on(id(b), Start::Fail("nope".into()))
            .await
            .unwrap();
        assert!(matches!(failed, Err(RemoteSpawnError::InitFailed { .. })));
        let failed = parent.spawn_monitor_on(id(b), Start::Panic).await.unwrap();
        assert!(matches!(failed, Err(RemoteSpawnError::InitPanicked { .. })));
        runs(b, 0).await;
        // Nothing more arrived for the parent, and no tie is left.
        assert!(seen.is_empty());
        eventually("no ties left", || {
            a.connected_nodes()[0].ties == noex::TieStats::default()
                && b.connected_nodes()[0].ties == noex::TieStats::default()
        })
        .await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_linked_child_is_spawned_on_another_node_under_a_name() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (tx, seen) = async_channel::unbounded();
        let parent = a.spawn::<Parent>(tx).await.unwrap();
        let spawn = parent.spawn_link_on_named(id(b), "linked-worker".into());
        let worker = spawn.await.unwrap().unwrap();
        assert_eq!(b.whereis("linked-worker").as_ref(), Some(worker.pid()));
        let named = a.named_on::<Worker>("linked-worker", &id(b));
        assert_eq!(named.work().await, Ok(1));
        // The name is taken while it runs: a second spawn says by whom.
        let again = parent.spawn_link_on_named(id(b), "linked-worker".into());
        assert_matches!(
            again.await.unwrap(),
            Err(RemoteSpawnError::NameTaken { holder, .. }) if holder == worker.pid()
        );
        assert!(worker.crash().await.is_err());
        let crash = ExitReason::Panic("worker crashed".into());
        assert_eq!(
            within("the parent to see it", seen.recv()).await,
            Ok(Seen::Exit(worker.pid().clone(), crash))
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_monitored_child_is_spawned_under_a_name_on_another_node_or_this_one() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (tx, seen) = async_channel::unbounded();
        let parent = a.spawn::<Parent>(tx).await.unwrap();
        for (node, name) in [(b, "watched-there"), (a, "watched-here")] {
            let spawn = parent.spawn_monitor_on_named(id(node), name.into());
            let (worker, monitor) = spawn.await.unwrap().unwrap();
            assert_eq!(node.whereis(name).as_ref(), Some(worker.pid()));
            assert!(worker.crash().await.is_err());
            let crash = ExitReason::Panic("worker crashed".into());
            assert_eq!(
                within("the parent to see it", seen.recv()).await,
                Ok(Seen::Down(monitor, worker.pid().clone(), crash))
            );
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_hand_written_gen_server_is_spawned_and_called_across_nodes() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let counter = a.spawn_on::<HandCounter>(&id(b), 40).await.unwrap();
        counter.cast(HandCast::Add(2)).unwrap();
        assert_eq!(counter.call(HandCall::Get).await, Ok(42));
        let args = postcard::to_allocvec(&1u64).unwrap();
        let pid = a
            .spawn_by_name_on(&id(b), "hand-counter", &args)
            .await
            .unwrap();
        let by_name = a.server_ref::<HandCounter>(&pid).unwrap();
        assert_eq!(by_name.call(HandCall::Get).await, Ok(1));
        shutdown_all(nodes);
    });
}

#[test]
fn the_registry_lists_a_hand_written_behaviours_args_type_as_written() {
    let node = Node::new();
    node.register_behaviors().unwrap();
    let args_type = |name: &str| {
        let info = node.behaviors().into_iter().find(|b| b.name == name);
        info.map(|b| b.args_type)
    };
    assert_eq!(args_type("hand-counter"), Some("u64"));
    assert_eq!(args_type("worker"), Some("Start"), "as for a #[behavior]");
    node.shutdown();
}

/// A parent on `a` and the child it spawn-linked on `b`, which traps exits.
async fn trapping_child(a: &Node, b: &Node) -> (ServerRef<Parent>, ServerRef<Worker>) {
    let (tx, _seen) = async_channel::unbounded();
    let parent = a.spawn::<Parent>(tx).await.unwrap();
    let child = parent.spawn_link_on(id(b), Start::Trapping).await.unwrap();
    (parent, child.unwrap())
}

#[test]
fn a_trapping_child_spawned_from_another_node_ends_with_its_parent() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (parent, child) = trapping_child(a, b).await;
        let info = b.process_info(child.pid()).unwrap();
        assert_eq!(info.parent.as_ref(), Some(parent.pid()));
        // As in OTP: the parent's exit ends a trapping child, with the parent's reason.
        let mut ended = Box::pin(child.exited());
        assert!(futures_lite::future::poll_once(&mut ended).await.is_none());
        let reason = ExitReason::Custom("closing down".into());
        parent.stop(reason.clone()).await.unwrap();
        assert_eq!(within("the child's end", ended).await, reason);
        shutdown_all(nodes);
    });
}

#[test]
fn a_trapping_child_cut_off_from_its_parent_ends_at_once_even_in_a_long_handler() {
    run_blocking(async {
        let nodes = start_registered_cluster(2).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (_parent, child) = trapping_child(a, b).await;
        // Busy for a minute on b.
        let local = b.server_ref::<Worker>(child.pid()).unwrap();
        let busy = smol::spawn(async move {
            local
                .busy_with_timeout(60_000, Duration::from_secs(120))
                .await
        });
        common::eventually("the child to be busy", || {
            b.process_info(child.pid())
                .is_some_and(|info| info.message_count == 1)
        })
        .await;
        let ended = common::watch_end(b, child.pid()).await;
        // Its parent's node is lost: it must not run on beside a replacement its parent's
        // supervisor may start elsewhere (supervisor::placement, rule 2).
        a.faults().partition(&id(b), true);
        b.faults().partition(&id(a), true);
        assert_eq!(
            within("the child's end", ended).await,
            ExitReason::NoConnection
        );
        assert!(busy.await.is_err());
        shutdown_all(nodes);
    });
}

#[test]
fn behaviours_registered_before_listening_are_spawnable_at_once() {
    run_blocking(async {
        let b = Node::start(cluster_config("b").register_behaviors())
            .await
            .unwrap();
        assert!(b.has_behavior("worker"));
        let a = Node::start(cluster_config("a").seed(id(&b).to_string()))
            .await
            .unwrap();
        common::wait_connected(&a, 1).await;
        let worker = a.spawn_on::<Worker>(&id(&b), Start::Fine).await.unwrap();
        assert_eq!(worker.work().await, Ok(1));
        a.shutdown();
        b.shutdown();
    });
}
