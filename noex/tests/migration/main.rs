//! When a distributed supervisor moves a child: never while the child may still run where
//! it was, and once per loss — a sibling's restart, a spawn that got no answer, a backoff,
//! several nodes lost in turn.

#[path = "../common/mod.rs"]
mod common;
use common::id;
mod intensity;
mod requests;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{
    cluster_config, eventually, isolate, run_blocking, shutdown_all, wait_connected, within,
};
use noex::supervisor::{
    Backoff, ChildSpec, NodeSelector, Strategy, SupervisorError, SupervisorSpec,
};
use noex::{
    behavior, Ctx, DistributedSupervisor, Node, NodeId, Pid, RemoteSpawnError, ServerRef,
    SpawnOptions,
};

/// Every start of a [`Stamped`]: its label, its node, when its `init` ran.
static STARTS: Mutex<Vec<(String, String, Instant)>> = Mutex::new(Vec::new());
/// (label, node) pairs whose `init` waits while they are listed here.
static GATES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// A worker that records each start, and can be made to wait in `init` on one node.
#[behavior(name = "migration-stamped")]
pub struct Stamped;

#[behavior]
impl Stamped {
    #[init]
    async fn init(label: String, ctx: &mut Ctx<Self>) -> Self {
        let here = ctx.node().local_node_id().unwrap().to_string();
        let gated = || {
            GATES
                .lock()
                .unwrap()
                .contains(&(label.clone(), here.clone()))
        };
        while gated() {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
        STARTS.lock().unwrap().push((label, here, Instant::now()));
        Stamped
    }

    #[call]
    fn crash(&self) {
        panic!("crashed on purpose");
    }
}

/// The starts of `label` so far: (node, when).
fn starts(label: &str) -> Vec<(String, Instant)> {
    let starts = STARTS.lock().unwrap();
    let of_label = starts.iter().filter(|(l, ..)| l == label);
    of_label.map(|(_, node, at)| (node.clone(), *at)).collect()
}

fn gate(label: &str, node: &NodeId, closed: bool) {
    let key = (label.to_owned(), node.to_string());
    let mut gates = GATES.lock().unwrap();
    gates.retain(|k| *k != key);
    if closed {
        gates.push(key);
    }
}

/// `n` nodes with the tests' settings but heartbeats every `heartbeat`, all connected.
async fn cluster(n: usize, heartbeat: Duration) -> Vec<Node> {
    let config = |name: String| cluster_config(&name).heartbeat(heartbeat, heartbeat * 8);
    let first = Node::start(config("n0".into())).await.unwrap();
    let seed = first.local_node_id().unwrap().to_string();
    let mut nodes = vec![first];
    for i in 1..n {
        let node = Node::start(config(format!("n{i}")).seed(seed.clone()));
        nodes.push(node.await.unwrap());
    }
    for node in &nodes {
        wait_connected(node, n - 1).await;
        node.register_behaviors().unwrap();
    }
    nodes
}

/// A supervisor on `nodes[0]` with a child `label` on each of the nodes `on`, in order.
async fn supervise(
    nodes: &[Node],
    strategy: Strategy,
    children: &[(&str, usize)],
) -> ServerRef<DistributedSupervisor> {
    let spec = SupervisorSpec::distributed(strategy, NodeSelector::Specific(id(&nodes[0])))
        .intensity(10, Duration::from_secs(60));
    let sup = nodes[0].spawn::<DistributedSupervisor>(spec).await.unwrap();
    for (label, on) in children {
        sup.set_selector(NodeSelector::Specific(id(&nodes[*on])))
            .await
            .unwrap();
        let child = ChildSpec::worker::<Stamped>(*label, (*label).to_owned());
        let child = within("a child to start", sup.start_child(child)).await;
        assert_eq!(child.unwrap().node(), id(&nodes[*on]).as_str());
    }
    sup
}

async fn pids(sup: &ServerRef<DistributedSupervisor>) -> BTreeMap<String, Option<Pid>> {
    let children = sup.which_children().await.unwrap().into_iter();
    children.map(|c| (c.id, c.pid)).collect()
}

/// Waits until every child runs, none as one of `before`.
async fn all_restarted(
    sup: &ServerRef<DistributedSupervisor>,
    before: &BTreeMap<String, Option<Pid>>,
) {
    within("every child to run again", async {
        loop {
            let now = pids(sup).await;
            if now
                .iter()
                .all(|(c, pid)| pid.is_some() && *pid != before[c])
            {
                break;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Three nodes, and on n0 a `OneForOne` supervisor of one child `label` running on n1,
/// placing by turns from then on.
async fn one_child_on_n1(label: &str) -> (Vec<Node>, ServerRef<DistributedSupervisor>) {
    let nodes = cluster(3, Duration::from_millis(100)).await;
    let sup = supervise(&nodes, Strategy::OneForOne, &[(label, 1)]).await;
    sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
    (nodes, sup)
}

/// Waits until the supervisor's distribution stats satisfy `done`.
async fn until(
    sup: &ServerRef<DistributedSupervisor>,
    what: &str,
    done: impl Fn(&noex::supervisor::DistributionStats) -> bool,
) {
    within(what, async {
        while !done(&sup.distribution().await.unwrap()) {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// A selector that places on `node` while it is connected, elsewhere on the first
/// candidate.
fn preferring(node: &NodeId) -> NodeSelector {
    let node = node.clone();
    NodeSelector::custom(move |nodes| {
        nodes
            .iter()
            .find(|n| **n == node)
            .or(nodes.first())
            .cloned()
    })
}

/// Three nodes with heartbeats every `heartbeat`, a one-for-one supervisor on n0 with
/// `children` placed as [`supervise`] places them, and its selector preferring n1 from
/// then on (n1's id is given back).
async fn preferring_n1(
    heartbeat: Duration,
    children: &[(&str, usize)],
) -> (Vec<Node>, ServerRef<DistributedSupervisor>, NodeId) {
    let nodes = cluster(3, heartbeat).await;
    let sup = supervise(&nodes, Strategy::OneForOne, children).await;
    let far = id(&nodes[1]);
    sup.set_selector(preferring(&far)).await.unwrap();
    (nodes, sup, far)
}

/// Waits until a [`Stamped`] process runs on `node` (in its `init`, when gated).
async fn waiting_in_init(node: &Node) {
    eventually("a child to wait in its init", || {
        node.processes()
            .iter()
            .any(|p| p.behavior.contains("Stamped"))
    })
    .await
}

#[test]
fn a_child_found_lost_as_its_group_restarts_for_a_sibling_still_waits_to_move() {
    run_blocking(async {
        let nodes = cluster(3, Duration::from_millis(100)).await;
        let sup = supervise(&nodes, Strategy::OneForAll, &[("b-local", 0), ("b-far", 1)]).await;
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
        let before = pids(&sup).await;
        // n1 falls silent: the supervisor finds out by heartbeats, well after the local
        // sibling's crash has sent it to stop its group — the far child among them.
        let far = id(&nodes[1]);
        for other in [0, 2] {
            nodes[1].faults().silence(&id(&nodes[other]), true);
            nodes[other].faults().silence(&far, true);
        }
        let local = before["b-local"].clone().unwrap();
        let local = nodes[0].server_ref::<Stamped>(&local).unwrap();
        assert!(local.crash().await.is_err());
        all_restarted(&sup, &before).await;
        // The stop of the far child ends with its node lost: it may still run there, so it
        // moves only after the migration delay (0.55 s here), unlike its sibling, restarted
        // as soon as the group was stopped.
        let (_, sibling) = starts("b-local").pop().unwrap();
        // (Where: n1 may be connected again by then; its own child ended with the loss.)
        let (_, moved) = starts("b-far").pop().unwrap();
        let waited = moved.duration_since(sibling);
        assert!(
            waited >= Duration::from_millis(300),
            "moved {waited:?} after its sibling"
        );
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (1, 1));
        shutdown_all(nodes);
    });
}

#[test]
fn a_restart_whose_spawn_got_no_answer_moves_only_after_the_migration_delay() {
    run_blocking(async {
        // Its restart goes to n1 again, where its `init` waits.
        let (nodes, sup, far) =
            preferring_n1(Duration::from_millis(100), &[("c-restart", 1)]).await;
        gate("c-restart", &far, true);
        let before = pids(&sup).await;
        let child = nodes[0].server_ref::<Stamped>(before["c-restart"].as_ref().unwrap());
        assert!(child.unwrap().crash().await.is_err());
        waiting_in_init(&nodes[1]).await;
        // The connection goes with the spawn asked and unanswered: the child may have
        // started there (it has not: it is ended there with the connection).
        let cut = Instant::now();
        isolate(&nodes, 1, true);
        gate("c-restart", &far, false);
        all_restarted(&sup, &before).await;
        // (Its `init` on n1, let go, may have recorded a start there: not the one sought.)
        let mut elsewhere = starts("c-restart")
            .into_iter()
            .filter(|(node, _)| *node != far.to_string());
        let (_, moved) = elsewhere.next_back().unwrap();
        let waited = moved.duration_since(cut);
        assert!(
            waited >= Duration::from_millis(500),
            "moved {waited:?} after the cut"
        );
        assert_eq!(sup.distribution().await.unwrap().migrations, 1);
        shutdown_all(nodes);
    });
}

#[test]
fn a_start_whose_spawn_got_no_answer_fails_instead_of_trying_another_node() {
    run_blocking(async {
        let (nodes, sup, far) = preferring_n1(Duration::from_millis(100), &[]).await;
        gate("c-start", &far, true);
        let starting = {
            let sup = sup.clone();
            let spec = ChildSpec::worker::<Stamped>("c-start", "c-start".to_owned());
            nodes[0].spawn_task(async move { sup.start_child(spec).await.map(|_| ()) })
        };
        waiting_in_init(&nodes[1]).await;
        isolate(&nodes, 1, true);
        gate("c-start", &far, false);
        let result = within("the start to fail", starting).await;
        assert!(
            matches!(&result, Err(SupervisorError::StartFailed { id, .. }) if id == "c-start"),
            "{result:?}"
        );
        // Not started on another node meanwhile (its `init` on n1, let go, may have
        // finished there; that process is ended with the connection).
        assert!(starts("c-start")
            .iter()
            .all(|(node, _)| *node == far.to_string()));
        assert!(pids(&sup).await.is_empty());
        shutdown_all(nodes);
    });
}

#[test]
fn a_lost_child_waiting_for_its_backoff_starts_only_while_a_majority_is_seen() {
    run_blocking(async {
        let nodes = cluster(3, Duration::from_millis(100)).await;
        let sup = supervise(&nodes, Strategy::OneForOne, &[]).await;
        sup.set_selector(NodeSelector::Specific(id(&nodes[1])))
            .await
            .unwrap();
        let child = ChildSpec::worker::<Stamped>("d-backoff", "d-backoff".to_owned())
            .backoff(Backoff::fixed(Duration::from_secs(1)));
        sup.start_child(child).await.unwrap();
        sup.set_selector(NodeSelector::RoundRobin).await.unwrap();
        // n1 is lost; with n0 and n2 a majority, the move is decided after the migration
        // delay, and waits for the child's backoff.
        isolate(&nodes, 1, true);
        until(&sup, "the move to be decided", |stats| stats.restarts > 0).await;
        let decided = Instant::now();
        // Meanwhile n2 is lost too: n0 alone is no majority of three.
        isolate(&nodes, 2, true);
        wait_connected(&nodes[0], 0).await;
        // Past the backoff (an absence: a window of time is what the test can give it).
        while decided.elapsed() < Duration::from_millis(1_500) {
            let stats = sup.distribution().await.unwrap();
            assert_eq!((stats.waiting_for_majority, stats.migrations), (1, 0));
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        assert!(starts("d-backoff")
            .iter()
            .all(|(node, _)| *node == id(&nodes[1]).to_string()));
        // n2 comes back: a majority again, and the child moves.
        isolate(&nodes, 2, false);
        until(&sup, "the child to move", |stats| stats.migrations > 0).await;
        shutdown_all(nodes);
    });
}

#[test]
fn children_lost_with_two_nodes_in_turn_cost_one_restart_of_their_group() {
    run_blocking(async {
        // Slow heartbeats: a migration delay of 1.15 s leaves time to lose the second node.
        let nodes = cluster(5, Duration::from_millis(300)).await;
        let children = [("e-local", 0), ("e-first", 1), ("e-second", 2)];
        let sup = supervise(&nodes, Strategy::OneForAll, &children).await;
        sup.set_selector(NodeSelector::Specific(id(&nodes[3])))
            .await
            .unwrap();
        let before = pids(&sup).await;
        isolate(&nodes, 1, true);
        until(&sup, "the first loss to be seen", |stats| {
            stats.waiting_for_majority > 0
        })
        .await;
        isolate(&nodes, 2, true);
        all_restarted(&sup, &before).await;
        // The first loss restarted the group, the second child with it once its own delay
        // had passed: one restart, two migrations, the local child started once again.
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (1, 2));
        assert_eq!(starts("e-local").len(), 2);
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_whose_request_never_left_the_queue_was_not_sent_and_never_starts() {
    run_blocking(async {
        // Heartbeats slow enough that n1 keeps the connection while n0 writes nothing.
        let nodes = cluster(2, Duration::from_millis(500)).await;
        let far = id(&nodes[1]);
        // n0 stops writing to n1 (as if n1 stopped reading): the request stays queued.
        assert!(nodes[0].faults().stall(&far, true));
        let timeout = Duration::from_millis(200);
        let options = SpawnOptions::new().spawn_timeout(timeout);
        let label = "i-unsent".to_owned();
        let spawned = nodes[0].spawn_on_with::<Stamped>(&far, label, options);
        match within("the spawn to give up", spawned).await {
            Err(RemoteSpawnError::NotSent {
                node, timeout: t, ..
            }) => {
                assert_eq!((node, t), (far.clone(), timeout));
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
        // Taken out of the queue, which the writer never looked at: it cannot be sent
        // later, to start a process nobody tracks.
        assert_eq!(nodes[0].connected_nodes()[0].stats.queued_bytes, 0);
        nodes[0].faults().stall(&far, false);
        let later = SpawnOptions::new();
        let spawned = nodes[0].spawn_on_with::<Stamped>(&far, "i-later".to_owned(), later);
        within("a later spawn", spawned).await.unwrap();
        assert!(starts("i-unsent").is_empty());
        let stamped = nodes[1].processes().into_iter();
        assert_eq!(
            stamped.filter(|p| p.behavior.contains("Stamped")).count(),
            1
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_spawn_whose_request_was_still_queued_when_its_connection_was_lost_was_not_asked() {
    run_blocking(async {
        let nodes = cluster(2, Duration::from_millis(500)).await;
        let far = id(&nodes[1]);
        // n0 stops writing to n1: the request stays queued, until the connection goes.
        assert!(nodes[0].faults().stall(&far, true));
        // A label long enough to tell the request from the heartbeats queued with it.
        let label = format!("i-queued{}", " ".repeat(8 << 10));
        let spawned = smol::spawn({
            let (node, far, label) = (nodes[0].clone(), far.clone(), label.clone());
            async move {
                node.spawn_on_with::<Stamped>(&far, label, SpawnOptions::new())
                    .await
                    .map(|_| ())
            }
        });
        eventually("the request to be queued", || {
            nodes[0].connected_nodes()[0].stats.queued_bytes > 8 << 10
        })
        .await;
        assert!(nodes[0].faults().disconnect(&far));
        // Not `ConnectionLost`: n1 was never asked, so another node may be tried at once.
        match within("the spawn to fail", spawned).await {
            Err(RemoteSpawnError::NoConnection { node }) => assert_eq!(node, far),
            other => panic!("unexpected {other:?}"),
        }
        assert!(starts(&label).is_empty());
        shutdown_all(nodes);
    });
}

#[test]
fn a_start_whose_spawn_was_never_sent_tries_another_node_at_once() {
    run_blocking(async {
        // Heartbeats slow enough that n1 keeps the connection through the spawn timeout
        // (10 s, a supervisor's) while n0 writes nothing to it.
        let (nodes, sup, far) = preferring_n1(Duration::from_secs(2), &[]).await;
        assert!(nodes[0].faults().stall(&far, true));
        let spec = ChildSpec::worker::<Stamped>("i-start", "i-start".to_owned());
        let started =
            futures_lite::FutureExt::or(async { Some(sup.start_child(spec).await) }, async {
                smol::Timer::after(Duration::from_secs(20)).await;
                None
            });
        // n1 was never asked: the child starts on another node rather than fail.
        let pid = started.await.expect("the start to end").unwrap();
        assert_ne!(pid.node(), far.as_str());
        assert!(starts("i-start")
            .iter()
            .all(|(node, _)| *node != far.to_string()));
        nodes[0].faults().stall(&far, false);
        shutdown_all(nodes);
    });
}

#[test]
fn a_group_restarted_for_a_sibling_takes_in_a_child_waiting_to_try_its_start_again() {
    run_blocking(async {
        // Heartbeats every 200 ms: the sibling crashes well within the 850 ms the far
        // child waits before it is tried again.
        let nodes = cluster(3, Duration::from_millis(200)).await;
        let children = [("j-local", 0), ("j-far", 1)];
        let sup = supervise(&nodes, Strategy::OneForAll, &children).await;
        let far = id(&nodes[1]);
        // By turns: n0, then n1 while connected (the far child's start, in start order).
        let turn = std::sync::atomic::AtomicUsize::new(0);
        let target = far.clone();
        let selector = NodeSelector::custom(move |nodes| {
            let far = nodes.iter().find(|n| **n == target);
            match turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 {
                0 => nodes.first().cloned(),
                _ => far.or(nodes.first()).cloned(),
            }
        });
        sup.set_selector(selector).await.unwrap();
        // The far child's restart is asked of n1, which gives no answer: the child waits
        // to be tried again, as a child lost with n1.
        gate("j-far", &far, true);
        let before = pids(&sup).await;
        let child = nodes[0].server_ref::<Stamped>(before["j-far"].as_ref().unwrap());
        assert!(child.unwrap().crash().await.is_err());
        waiting_in_init(&nodes[1]).await;
        isolate(&nodes, 1, true);
        gate("j-far", &far, false);
        until(&sup, "the far child to wait", |stats| {
            stats.waiting_for_majority > 0
        })
        .await;
        // Its sibling crashes meanwhile: the group's restart for it is the far child's
        // too, which then only has to start — not restart the group once more.
        let local = pids(&sup).await["j-local"].clone().unwrap();
        let local = nodes[0].server_ref::<Stamped>(&local).unwrap();
        assert!(local.crash().await.is_err());
        all_restarted(&sup, &before).await;
        assert_eq!(starts("j-local").len(), 3);
        let stats = sup.distribution().await.unwrap();
        assert_eq!((stats.restarts, stats.migrations), (2, 1));
        shutdown_all(nodes);
    });
}
