//! A node that shuts down leaves the cluster after its processes have stopped: monitors,
//! links and distributed supervisors on other nodes see their true reasons, and a node
//! lost without a goodbye still shows as `NoConnection`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, isolate, run_blocking, shutdown_all, start_registered_cluster, within};
use noex::supervisor::{ChildSpec, NodeSelector, Restart, Strategy, SupervisorSpec};
use noex::{
    behavior, Ctx, DistributedSupervisor, ExitReason, Info, MonitorRef, Node, NodeId, NodeStatus,
    Pid, ServerRef,
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

fn id(node: &Node) -> NodeId {
    node.local_node_id().unwrap().clone()
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
