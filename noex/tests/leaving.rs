//! A node that shuts down leaves the cluster after its processes have stopped: monitors,
//! links and distributed supervisors on other nodes see their true reasons, and a node
//! lost without a goodbye still shows as `NoConnection`.

mod common;
use common::id;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    eventually, isolate, run_blocking, shutdown_all, start_cluster_with, start_registered_cluster,
    within,
};
use noex::supervisor::{ChildSpec, NodeSelector, Restart, Strategy, SupervisorSpec};
use noex::{
    behavior, ClusterConfig, Ctx, DistributedSupervisor, ExitReason, Info, MonitorRef, Node,
    NodeId, NodeStatus, Pid, ServerRef,
};
use serde::{Deserialize, Serialize};

/// What reached a [`Watcher`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seen {
    Exit { from: Pid, reason: ExitReason },
    Down { pid: Pid, reason: ExitReason },
}

/// Monitors or links to what the test says, trapping exits, and records what it is told.
#[behavior(name = "leaving-watcher")]
pub struct Watcher {
    seen: Vec<Seen>,
}

#[behavior]
impl Watcher {
    #[init]
    fn init(ctx: &mut Ctx<Self>) -> Self {
        ctx.trap_exits(true);
        Watcher { seen: Vec::new() }
    }

    #[call]
    fn monitor(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.monitor(&pid)
    }

    #[call]
    fn link(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.link(&pid);
    }

    #[call]
    fn seen(&self) -> Vec<Seen> {
        self.seen.clone()
    }

    #[info]
    fn info(&mut self, info: Info<()>) {
        self.seen.push(match info {
            Info::Exit { from, reason } => Seen::Exit { from, reason },
            Info::Down { pid, reason, .. } => Seen::Down { pid, reason },
            _ => return,
        });
    }
}

/// Set while a held [`Lingering`] process's `terminate` must wait.
static HOLD_TERMINATE: AtomicBool = AtomicBool::new(false);
/// Set once a held [`Lingering`] process's `terminate` has started.
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// A process to watch. A held one (started with `true`) signals [`TERMINATING`] in its
/// `terminate`, then waits while [`HOLD_TERMINATE`] is set.
#[behavior(name = "leaving-target")]
pub struct Lingering {
    held: bool,
}

#[behavior]
impl Lingering {
    #[init]
    fn init(held: bool) -> Self {
        Lingering { held }
    }

    #[call]
    fn ping(&self) {}

    #[terminate]
    async fn terminate(&mut self, _reason: &ExitReason) {
        if !self.held {
            return;
        }
        TERMINATING.store(true, Ordering::SeqCst);
        while HOLD_TERMINATE.load(Ordering::SeqCst) {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    }
}

/// Set while a [`Slow`] process's call must wait.
static HOLD_CALL: AtomicBool = AtomicBool::new(false);
/// Set once a [`Slow`] process's call has started.
static CALLED: AtomicBool = AtomicBool::new(false);

/// A process whose call waits while [`HOLD_CALL`] is set.
#[behavior(name = "leaving-slow")]
pub struct Slow;

#[behavior]
impl Slow {
    #[init]
    fn init() -> Self {
        Slow
    }

    #[call]
    async fn slow(&self) -> u32 {
        CALLED.store(true, Ordering::SeqCst);
        while HOLD_CALL.load(Ordering::SeqCst) {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
        7
    }
}

/// Set while the [`Stubborn`] processes of a slot (one per test) must wait in their
/// `terminate`.
static HOLD_STUBBORN: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];
/// Set once a [`Stubborn`] process of a slot has started its `terminate`.
static STUBBORN_TERMINATING: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];

/// A process whose `terminate` signals [`STUBBORN_TERMINATING`] of its slot, then waits
/// while [`HOLD_STUBBORN`] of its slot is set.
#[behavior(name = "leaving-stubborn")]
pub struct Stubborn {
    slot: usize,
}

#[behavior]
impl Stubborn {
    #[init]
    fn init(slot: usize) -> Self {
        Stubborn { slot }
    }

    #[terminate]
    async fn terminate(&mut self, _reason: &ExitReason) {
        STUBBORN_TERMINATING[self.slot].store(true, Ordering::SeqCst);
        while HOLD_STUBBORN[self.slot].load(Ordering::SeqCst) {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    }
}

async fn watcher(node: &Node) -> ServerRef<Watcher> {
    node.spawn::<Watcher>(()).await.unwrap()
}

async fn target(node: &Node) -> ServerRef<Lingering> {
    node.spawn::<Lingering>(false).await.unwrap()
}

/// Waits until `node` knows of the `monitors` and `links` its peers' processes hold on
/// its own (sent by the watchers, they may arrive after a call made later).
async fn ties_in_place(node: &Node, monitors: u64, links: u64) {
    eventually("the monitors and links to reach the target's node", || {
        let peers = node.connected_nodes().into_iter();
        let ties = peers.map(|info| (info.ties.monitors_in, info.ties.links));
        ties.fold((0, 0), |(m, l), (mi, li)| (m + mi, l + li)) == (monitors, links)
    })
    .await;
}

/// What `watcher` has seen, once it has seen `count` things.
async fn seen(watcher: &ServerRef<Watcher>, count: usize) -> Vec<Seen> {
    within("the watcher to be told", async {
        loop {
            let seen = watcher.seen().await.unwrap();
            if seen.len() >= count {
                break seen;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// A process of node 1 monitored and linked from node 0; `end` ends node 1 one way or
/// another, and the monitor and the link are to see `reason`.
async fn watched_from_node_0_sees(
    nodes: &mut Vec<Node>,
    end: fn(&mut Vec<Node>),
    reason: ExitReason,
) {
    let watching = watcher(&nodes[0]).await;
    let linked = watcher(&nodes[0]).await;
    let watched = target(&nodes[1]).await;
    let pid = watched.pid().clone();
    watching.monitor(pid.clone()).await.unwrap();
    linked.link(pid.clone()).await.unwrap();
    ties_in_place(&nodes[1], 1, 1).await;

    end(nodes);
    let down = Seen::Down {
        pid: pid.clone(),
        reason: reason.clone(),
    };
    assert_eq!(seen(&watching, 1).await, vec![down]);
    assert_eq!(
        seen(&linked, 1).await,
        vec![Seen::Exit { from: pid, reason }]
    );
}

#[test]
fn a_monitor_and_a_link_of_another_node_see_shutdown_when_the_node_shuts_down() {
    run_blocking(async {
        let mut nodes = start_registered_cluster(2).await;
        let shut_down = |nodes: &mut Vec<Node>| nodes.pop().unwrap().shutdown();
        watched_from_node_0_sees(&mut nodes, shut_down, ExitReason::Shutdown).await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_lost_without_a_goodbye_still_shows_as_no_connection() {
    run_blocking(async {
        let mut nodes = start_registered_cluster(2).await;
        let cut = |nodes: &mut Vec<Node>| isolate(nodes, 1, true);
        watched_from_node_0_sees(&mut nodes, cut, ExitReason::NoConnection).await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_transient_child_on_a_node_that_leaves_moves_to_a_survivor() {
    run_blocking(async {
        let mut nodes = start_registered_cluster(3).await;
        let leaving = id(&nodes[2]);
        let selector = NodeSelector::Specific(leaving.clone());
        let spec = SupervisorSpec::distributed(Strategy::OneForOne, selector)
            .intensity(10, Duration::from_secs(60))
            .child(ChildSpec::worker::<Lingering>("transient", false).restart(Restart::Transient));
        let sup = nodes[0].spawn::<DistributedSupervisor>(spec).await.unwrap();
        let children = sup.which_children().await.unwrap();
        assert_eq!(children[0].node.as_deref(), Some(leaving.as_str()));
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();

        // Its node stops it with `Shutdown`, which would not restart a transient child
        // that ended by itself: it moves, as lost with its node.
        nodes.pop().unwrap().shutdown();
        let moved = within("the child to move", async {
            loop {
                let children = sup.which_children().await.unwrap();
                match children.first().and_then(|c| c.node.clone()) {
                    Some(node) if node != leaving.as_str() => break node,
                    _ => {
                        smol::Timer::after(Duration::from_millis(5)).await;
                    }
                }
            }
        })
        .await;
        assert!(nodes.iter().any(|node| id(node).as_str() == moved));
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (1, 1));
        shutdown_all(nodes);
    });
}

#[test]
fn a_leaving_node_shows_as_leaving_and_takes_no_new_children() {
    run_blocking(async {
        let mut nodes = start_registered_cluster(3).await;
        let leaving = id(&nodes[2]);
        let lingering = nodes[2].spawn::<Lingering>(true).await.unwrap();
        let watching = watcher(&nodes[0]).await;
        watching.monitor(lingering.pid().clone()).await.unwrap();
        ties_in_place(&nodes[2], 1, 0).await;
        HOLD_TERMINATE.store(true, Ordering::SeqCst);
        let node = nodes.pop().unwrap();
        let shutdown = std::thread::spawn(move || node.shutdown());
        eventually("the process to be stopping", || {
            TERMINATING.load(Ordering::SeqCst)
        })
        .await;
        // The node announced its leave before it stopped its processes.
        let status = |node: &Node| {
            let infos = node.connected_nodes().into_iter();
            infos
                .filter(|info| info.id == leaving)
                .map(|info| info.status)
                .next()
        };
        for node in &nodes {
            eventually("the peers to see the node leaving", || {
                status(node) == Some(NodeStatus::Leaving)
            })
            .await;
        }
        // A distributed supervisor is not offered the leaving node.
        let offered = Arc::new(Mutex::new(Vec::new()));
        let selector = NodeSelector::custom({
            let offered = offered.clone();
            move |candidates| {
                offered.lock().unwrap().extend_from_slice(candidates);
                candidates.first().cloned()
            }
        });
        let spec = SupervisorSpec::distributed(Strategy::OneForOne, selector)
            .child(ChildSpec::worker::<Lingering>("late", false));
        nodes[0].spawn::<DistributedSupervisor>(spec).await.unwrap();
        let mut offered = offered.lock().unwrap().clone();
        offered.sort();
        let mut others: Vec<NodeId> = nodes.iter().map(id).collect();
        others.sort();
        assert_eq!(offered, others);

        HOLD_TERMINATE.store(false, Ordering::SeqCst);
        let down = Seen::Down {
            pid: lingering.pid().clone(),
            reason: ExitReason::Shutdown,
        };
        assert_eq!(seen(&watching, 1).await, vec![down]);
        shutdown.join().unwrap();
        shutdown_all(nodes);
    });
}

#[test]
fn a_call_under_way_when_its_node_shuts_down_is_answered() {
    run_blocking(async {
        let mut nodes = start_registered_cluster(2).await;
        let leaving = id(&nodes[1]);
        let pid = nodes[1].spawn::<Slow>(()).await.unwrap().pid().clone();
        let slow = nodes[0].server_ref::<Slow>(&pid).unwrap();
        HOLD_CALL.store(true, Ordering::SeqCst);
        let call = smol::spawn(async move { slow.slow().await });
        eventually("the call to be under way", || CALLED.load(Ordering::SeqCst)).await;
        let node = nodes.pop().unwrap();
        let shutdown = std::thread::spawn(move || node.shutdown());
        eventually("the node to be leaving", || {
            let mut infos = nodes[0].connected_nodes().into_iter();
            infos.any(|info| info.id == leaving && info.status == NodeStatus::Leaving)
        })
        .await;
        // The process finishes the call before it stops; the connection is still open.
        HOLD_CALL.store(false, Ordering::SeqCst);
        assert_eq!(within("the reply", call).await, Ok(7));
        shutdown.join().unwrap();
        shutdown_all(nodes);
    });
}

/// Heartbeats so slow that a move after a node's loss — the migration delay, 250 ms and
/// three heartbeat intervals: 15.25 s — would wait longer than a test waits.
fn slow_heartbeats(config: ClusterConfig) -> ClusterConfig {
    config.heartbeat(Duration::from_secs(5), Duration::from_secs(30))
}

/// [`start_registered_cluster`] with [`slow_heartbeats`].
async fn start_slow_cluster(n: usize) -> Vec<Node> {
    let nodes = start_cluster_with(n, slow_heartbeats).await;
    for node in &nodes {
        node.register_behaviors().unwrap();
    }
    nodes
}

/// A distributed supervisor on `node` of `children`, all placed on `on`, then placing
/// round robin.
async fn supervise_on(
    node: &Node,
    on: &NodeId,
    max_restarts: u32,
    children: Vec<ChildSpec>,
) -> ServerRef<DistributedSupervisor> {
    let selector = NodeSelector::Specific(on.clone());
    let mut spec = SupervisorSpec::distributed(Strategy::OneForOne, selector)
        .intensity(max_restarts, Duration::from_secs(60));
    for child in children {
        spec = spec.child(child);
    }
    let sup = node.spawn::<DistributedSupervisor>(spec).await.unwrap();
    let placed = sup.distribution().await.unwrap().children_per_node;
    assert_eq!(placed.into_keys().collect::<Vec<_>>(), vec![on.to_string()]);
    sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
    sup
}

/// The node each child of `sup` runs on, by id (`None`: not running), once `done` holds
/// of it.
async fn children_until(
    sup: &ServerRef<DistributedSupervisor>,
    what: &str,
    done: impl Fn(&BTreeMap<String, Option<String>>) -> bool,
) -> BTreeMap<String, Option<String>> {
    within(what, async {
        loop {
            let children = sup.which_children().await.unwrap();
            let nodes = children.into_iter().map(|c| (c.id, c.node)).collect();
            if done(&nodes) {
                break nodes;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Checks, for half a second, that `sup` starts none of its children elsewhere than on
/// `left` (where they ran): a move would come at once.
async fn nothing_moves(sup: &ServerRef<DistributedSupervisor>, left: &NodeId) {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let stats = sup.distribution().await.unwrap();
        assert_eq!(stats.migrations, 0);
        let running = stats.children_per_node.into_keys();
        assert!(running.into_iter().all(|node| node == left.as_str()));
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn the_children_of_a_node_that_leaves_move_at_once_in_one_restart() {
    run_blocking(async {
        let mut nodes = start_slow_cluster(3).await;
        let leaving = id(&nodes[2]);
        let children = (0..3)
            .map(|i| ChildSpec::worker::<Lingering>(format!("w{i}"), false))
            .collect();
        // One restart allowed: the three children of the node cost one, together.
        let sup = supervise_on(&nodes[0], &leaving, 1, children).await;

        // The node stops them and tells their ends: they have ended, and move without the
        // migration delay (longer than this test waits).
        nodes.pop().unwrap().shutdown();
        let moved = children_until(&sup, "the children to move", |children| {
            children
                .values()
                .all(|node| node.as_ref().is_some_and(|n| n != leaving.as_str()))
        })
        .await;
        assert_eq!(moved.len(), 3);
        let stats = sup.distribution().await.unwrap();
        // Three children restarted (the supervisor still runs: one restart counted).
        assert_eq!((stats.restarts, stats.migrations), (3, 3));
        assert_eq!(stats.waiting_for_majority, 0);
        shutdown_all(nodes);
    });
}

#[test]
fn in_a_cluster_of_two_the_children_of_the_node_that_leaves_move_once_it_is_gone() {
    run_blocking(async {
        let mut nodes = start_slow_cluster(2).await;
        let leaving = id(&nodes[1]);
        let children = (0..2)
            .map(|i| ChildSpec::worker::<Lingering>(format!("w{i}"), false))
            .collect();
        let sup = supervise_on(&nodes[0], &leaving, 1, children).await;

        // Leaving, the node is no longer seen but still a member: the survivor, one of
        // two, sees no majority until the goodbye leaves it the whole cluster.
        nodes.pop().unwrap().shutdown();
        let here = id(&nodes[0]).to_string();
        children_until(&sup, "the children to move", |children| {
            children.values().all(|node| node.as_ref() == Some(&here))
        })
        .await;
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (2, 2));
        shutdown_all(nodes);
    });
}

/// Shuts down `nodes[2]` on a thread of its own, and waits until the [`Stubborn`]
/// processes of `slot` there, held, have started their `terminate`.
async fn shut_down_held(nodes: &[Node], slot: usize) -> std::thread::JoinHandle<()> {
    HOLD_STUBBORN[slot].store(true, Ordering::SeqCst);
    let node = nodes[2].clone();
    let shutdown = std::thread::spawn(move || node.shutdown());
    eventually("the stubborn child to be stopping", || {
        STUBBORN_TERMINATING[slot].load(Ordering::SeqCst)
    })
    .await;
    shutdown
}

#[test]
fn the_children_of_a_leaving_node_wait_for_the_last_one_there_to_end() {
    run_blocking(async {
        let mut nodes = start_slow_cluster(3).await;
        let leaving = id(&nodes[2]);
        let stubborn = ChildSpec::worker::<Stubborn>("stubborn", 0).restart(Restart::Temporary);
        let children = vec![
            ChildSpec::worker::<Lingering>("quick", false),
            stubborn,
            ChildSpec::worker::<Lingering>("quick too", false),
        ];
        let sup = supervise_on(&nodes[0], &leaving, 1, children).await;
        let shutdown = shut_down_held(&nodes, 0).await;
        children_until(&sup, "the quick children's ends", |children| {
            children["quick"].as_deref() != Some(leaving.as_str())
                && children["quick too"].as_deref() != Some(leaving.as_str())
        })
        .await;
        nothing_moves(&sup, &leaving).await;

        // The last one ends there (temporary, it is not started again): the others move,
        // in one restart.
        HOLD_STUBBORN[0].store(false, Ordering::SeqCst);
        let moved = children_until(&sup, "the quick children to move", |children| {
            children.len() == 2 && children.values().all(Option::is_some)
        })
        .await;
        assert!(moved
            .values()
            .all(|node| node.as_deref() != Some(leaving.as_str())));
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (2, 2));
        shutdown.join().unwrap();
        nodes.pop();
        shutdown_all(nodes);
    });
}

#[test]
fn children_of_a_leaving_node_whose_connection_closes_first_wait_the_migration_delay() {
    run_blocking(async {
        let mut nodes = start_slow_cluster(3).await;
        let leaving = id(&nodes[2]);
        let children = vec![
            ChildSpec::worker::<Lingering>("quick", false),
            ChildSpec::worker::<Stubborn>("stubborn", 1),
        ];
        let sup = supervise_on(&nodes[0], &leaving, 10, children).await;
        let shutdown = shut_down_held(&nodes, 1).await;
        // The quick one has ended there, as its node said: it waits for the other one.
        children_until(&sup, "the quick child's end", |children| {
            children["quick"].as_deref() != Some(leaving.as_str())
        })
        .await;
        nothing_moves(&sup, &leaving).await;

        // The connection closes with the stubborn one still running: it may run on, unseen,
        // so both wait the migration delay (longer than this test).
        isolate(&nodes, 2, true);
        children_until(&sup, "the stubborn child's end", |children| {
            children["stubborn"].is_none()
        })
        .await;
        nothing_moves(&sup, &leaving).await;
        let stats = sup.distribution().await.unwrap();
        assert_eq!(stats.waiting_for_majority, 2);

        HOLD_STUBBORN[1].store(false, Ordering::SeqCst);
        shutdown.join().unwrap();
        nodes.pop();
        shutdown_all(nodes);
    });
}
