//! Cluster singletons: one process in the cluster, started again elsewhere when its node is
//! lost or shuts down, never running twice across a partition.

#[path = "../common/mod.rs"]
mod common;
use common::id;
mod hardening;

use std::sync::Mutex;
use std::time::Duration;

use futures_lite::{FutureExt, StreamExt};

use common::{
    eventually, isolate, run_blocking, shutdown_all, start_cluster, start_cluster_with,
    start_registered_cluster, wait_connected, within,
};
use noex::supervisor::{
    Backoff, ChildSpec, NodeSelector, Singleton, SingletonInitError, SingletonSpec, SingletonState,
    Strategy, SupervisorSpec,
};
use noex::{behavior, DistributedSupervisor, ExitReason, Node, NodeId, Pid, ServerRef, SpawnError};

/// The labels of the [`Tracked`] processes whose `terminate` ran (each test's labels are
/// its nodes' ids, which no other test shares).
static TERMINATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn terminated(node: &Node) -> bool {
    TERMINATED.lock().unwrap().contains(&id(node).to_string())
}

/// Labels (node ids) of processes that run, kept by the processes themselves: each test's
/// labels are its nodes' ids, which no other test shares.
pub struct Labels(Mutex<Vec<String>>);

impl Labels {
    #[allow(clippy::new_without_default)] // for statics: a `const fn`
    pub const fn new() -> Labels {
        Labels(Mutex::new(Vec::new()))
    }

    pub fn add(&self, label: &str) {
        self.0.lock().unwrap().push(label.to_owned());
    }

    pub fn remove(&self, label: &str) {
        let mut labels = self.0.lock().unwrap();
        if let Some(at) = labels.iter().position(|l| l == label) {
            labels.swap_remove(at);
        }
    }

    /// How many are labelled with one of `nodes`' ids.
    pub fn count(&self, nodes: &[Node]) -> usize {
        let ids: Vec<String> = nodes.iter().map(|n| id(n).to_string()).collect();
        let labels = self.0.lock().unwrap();
        labels.iter().filter(|label| ids.contains(label)).count()
    }
}

/// The [`Tracked`] processes whose `init` ran and whose state is not yet dropped: those
/// that run, or ran user code.
static LIVE: Labels = Labels::new();

/// How many [`Tracked`] processes of `nodes` are live.
fn live(nodes: &[Node]) -> usize {
    LIVE.count(nodes)
}

#[behavior(name = "singleton-tracked")]
pub struct Tracked {
    label: String,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.remove(&self.label);
    }
}

#[behavior]
impl Tracked {
    #[init]
    fn init(label: String) -> Self {
        LIVE.add(&label);
        Tracked { label }
    }

    #[call]
    fn label(&self) -> String {
        self.label.clone()
    }

    #[call]
    fn crash(&self) {
        panic!("the singleton crashed on purpose");
    }

    #[terminate]
    async fn terminate(&mut self, _reason: &ExitReason) {
        TERMINATED.lock().unwrap().push(self.label.clone());
    }
}

/// The nodes (by id) where a [`Picky`] cannot start.
static REFUSING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A singleton whose `init` fails on the nodes in [`REFUSING`]; its argument is its node.
#[behavior(name = "singleton-picky")]
pub struct Picky;

#[behavior]
impl Picky {
    #[init]
    fn init(node: String) -> Result<Self, String> {
        match REFUSING.lock().unwrap().contains(&node) {
            true => Err(format!("{node} cannot run it")),
            false => Ok(Picky),
        }
    }
}

#[behavior(name = "singleton-worker")]
pub struct Worker;

#[behavior]
impl Worker {
    #[init]
    fn init() -> Self {
        Worker
    }
}

/// `true` for a process of the type named `behavior` (not its manager's, say).
fn is(process: &noex::ProcessInfo, behavior: &str) -> bool {
    process.behavior.ends_with(&format!("::{behavior}"))
}

/// How many processes of the type named `behavior` run on `nodes`.
fn running(nodes: &[Node], behavior: &str) -> usize {
    nodes
        .iter()
        .flat_map(|n| n.processes())
        .filter(|p| is(p, behavior))
        .count()
}

/// The node running a process of `behavior`, by index.
fn running_on(nodes: &[Node], behavior: &str) -> Option<usize> {
    nodes
        .iter()
        .position(|n| n.processes().iter().any(|p| is(p, behavior)))
}

/// A manager of the singleton "tracked" on every node.
async fn managers(nodes: &[Node], name: &str) -> Vec<ServerRef<Singleton<Tracked>>> {
    let mut managers = Vec::new();
    for node in nodes {
        let spec = SingletonSpec::<Tracked>::new(name, id(node).to_string())
            .backoff(Backoff::fixed(Duration::from_millis(20)));
        managers.push(node.spawn::<Singleton<Tracked>>(spec).await.unwrap());
    }
    managers
}

/// Waits until exactly one `Tracked` of `nodes` is live, and every manager in `managers`
/// sees it.
async fn agreed(nodes: &[Node], managers: &[ServerRef<Singleton<Tracked>>]) -> Pid {
    within(
        "the managers to agree on one singleton",
        agreement(nodes, managers),
    )
    .await
}

/// Resolves once exactly one `Tracked` of `nodes` is live, and every manager in `managers`
/// sees it (a manager busy claiming the lock may not answer at once: asked again).
async fn agreement(nodes: &[Node], managers: &[ServerRef<Singleton<Tracked>>]) -> Pid {
    loop {
        let mut seen = Vec::new();
        for manager in managers {
            seen.push(manager.where_running().await.ok().flatten());
        }
        let on = |pid: &Pid| nodes.iter().any(|n| id(n).as_str() == pid.node());
        if live(nodes) == 1
            && seen[0].as_ref().is_some_and(on)
            && seen.iter().all(|pid| *pid == seen[0])
        {
            return seen[0].clone().unwrap();
        }
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_singleton_runs_once_in_the_cluster_and_every_node_reaches_it_by_name() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let managers = managers(&nodes, "tracked").await;
        let pid = agreed(&nodes, &managers).await;
        let here = running_on(&nodes, "Tracked").unwrap();
        assert_eq!(pid.node(), id(&nodes[here]).as_str());
        assert_eq!(
            managers[here].state().await.unwrap(),
            SingletonState::Here(pid.clone())
        );
        for (i, node) in nodes.iter().enumerate() {
            let label = node.named_global::<Tracked>("tracked").label().await;
            assert_eq!(label.unwrap(), id(&nodes[here]).to_string(), "from n{i}");
            if i != here {
                assert_eq!(
                    managers[i].state().await.unwrap(),
                    SingletonState::Elsewhere(pid.clone())
                );
            }
        }
        shutdown_all(nodes);
    });
}

#[test]
fn a_singleton_whose_node_falls_silent_moves_and_never_runs_twice() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let ids: Vec<NodeId> = nodes.iter().map(id).collect();
        let managers = managers(&nodes, "tracked").await;
        agreed(&nodes, &managers).await;
        let old = running_on(&nodes, "Tracked").unwrap();
        // Its node falls silent both ways, sockets open: each side finds out by its
        // heartbeats, the majority side first or last; and no new connection is made.
        nodes[old].faults().refuse_connections(true);
        for other in (0..3).filter(|i| *i != old) {
            nodes[old].faults().silence(&ids[other], true);
            nodes[other].faults().silence(&ids[old], true);
        }
        let mut most = 0;
        within("the singleton to move", async {
            loop {
                let count = live(&nodes);
                most = most.max(count);
                let moved = live(&nodes[old..=old]) == 0 && count == 1;
                if moved {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(most, 1, "the singleton ran twice at some moment");
        eventually("the cut-off manager to see no majority", || {
            let state = smol::block_on(managers[old].state()).unwrap();
            state == SingletonState::NoMajority
        })
        .await;
        // The majority side agrees on it (its registration may still be on its way).
        let majority: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        let majority_managers = [managers[majority[0]].clone(), managers[majority[1]].clone()];
        let majority_nodes = [nodes[majority[0]].clone(), nodes[majority[1]].clone()];
        let moved = agreed(&majority_nodes, &majority_managers).await;
        nodes[old].faults().refuse_connections(false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        assert_eq!(agreed(&nodes, &managers).await, moved);
        shutdown_all(nodes);
    });
}

#[test]
fn a_singleton_cut_off_on_the_minority_side_is_killed_and_runs_once_when_the_partition_heals() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let managers = managers(&nodes, "tracked").await;
        let first = agreed(&nodes, &managers).await;
        let old = running_on(&nodes, "Tracked").unwrap();
        isolate(&nodes, old, true);
        eventually("the singleton to run on the majority side only", || {
            live(&nodes[old..=old]) == 0 && live(&nodes) == 1
        })
        .await;
        // Killed: its `terminate` did not run.
        assert!(!terminated(&nodes[old]));
        let moved = nodes
            .iter()
            .find_map(|n| n.whereis_global("tracked").filter(|pid| *pid != first))
            .unwrap();
        assert_ne!(moved.node(), first.node());
        isolate(&nodes, old, false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        let healed = agreed(&nodes, &managers).await;
        assert_eq!(
            healed, moved,
            "the healed cluster kept the majority's singleton"
        );
        shutdown_all(nodes);
    });
}

#[test]
fn a_singleton_whose_node_shuts_down_moves_without_waiting_for_a_loss() {
    run_blocking(async {
        // Heartbeats so slow that a move after a loss would wait longer than the test
        // waits: this one is told of the end, by a node that says goodbye.
        let mut nodes = start_cluster_with(3, |config| {
            config.heartbeat(Duration::from_secs(5), Duration::from_secs(30))
        })
        .await;
        let managers = managers(&nodes, "tracked").await;
        agreed(&nodes, &managers).await;
        let old = running_on(&nodes, "Tracked").unwrap();
        let leaving = nodes.remove(old);
        let left = id(&leaving);
        let managers: Vec<_> = managers
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != old)
            .map(|(_, m)| m)
            .collect();
        std::thread::spawn(move || leaving.shutdown());
        // Well within the 15 s a move after a loss would wait (a busy machine may take a few
        // seconds over the leave itself).
        let moved = async { Some(agreement(&nodes, &managers).await) }
            .or(async {
                smol::Timer::after(Duration::from_secs(10)).await;
                None
            })
            .await;
        let states: Vec<_> = futures_lite::stream::iter(&managers)
            .then(|m| m.state())
            .collect()
            .await;
        let moved = moved.unwrap_or_else(|| panic!("no move within 10 s; managers: {states:?}"));
        assert_ne!(moved.node(), left.as_str());
        // Stopped gracefully where it ran: its `terminate` ran.
        assert!(TERMINATED.lock().unwrap().contains(&left.to_string()));
        shutdown_all(nodes);
    });
}

#[test]
fn a_crashed_singleton_is_started_again() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let managers = managers(&nodes, "tracked").await;
        let first = agreed(&nodes, &managers).await;
        let error = nodes[0].named_global::<Tracked>("tracked").crash().await;
        assert!(error.is_err());
        within("the singleton to start again", async {
            loop {
                let pid = agreed(&nodes, &managers).await;
                if pid != first {
                    break;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_alone_runs_its_singleton_and_a_name_too_long_is_refused() {
    run_blocking(async {
        let node = Node::new();
        let spec = SingletonSpec::<Tracked>::new("alone", "here".to_owned());
        let manager = node.spawn::<Singleton<Tracked>>(spec).await.unwrap();
        let pid = within("the singleton to start", async {
            loop {
                if let Some(pid) = manager.where_running().await.unwrap() {
                    return pid;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert_eq!(node.whereis_global("alone"), Some(pid.clone()));
        // Stopping its manager stops it.
        node.stop(manager.pid(), ExitReason::Shutdown)
            .await
            .unwrap();
        assert_eq!(node.whereis_global("alone"), None);
        assert_eq!(running(std::slice::from_ref(&node), "Tracked"), 0);
        let long = "x".repeat(noex::MAX_NAME_LEN + 1);
        let refused = node
            .spawn::<Singleton<Tracked>>(SingletonSpec::new(long, String::new()))
            .await;
        assert!(matches!(
            refused,
            Err(SpawnError::InitFailed(
                SingletonInitError::NameTooLong { .. }
            ))
        ));
        node.shutdown();
    });
}

#[test]
fn a_distributed_supervisor_run_as_a_singleton_outlives_its_node() {
    run_blocking(async {
        let nodes = start_registered_cluster(3).await;
        let spec = SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::RoundRobin)
            .intensity(10, Duration::from_secs(60))
            .child(ChildSpec::worker::<Worker>("w0", ()))
            .child(ChildSpec::worker::<Worker>("w1", ()))
            .child(ChildSpec::worker::<Worker>("w2", ()));
        let mut managers = Vec::new();
        for node in &nodes {
            let spec = SingletonSpec::<DistributedSupervisor>::new("jobs", spec.clone())
                .init_timeout(None);
            managers.push(
                node.spawn::<Singleton<DistributedSupervisor>>(spec)
                    .await
                    .unwrap(),
            );
        }
        eventually("one supervisor and its three workers", || {
            running(&nodes, "Supervisor") == 1 && running(&nodes, "Worker") == 3
        })
        .await;
        let old = running_on(&nodes, "Supervisor").unwrap();
        isolate(&nodes, old, true);
        let majority: Vec<Node> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != old)
            .map(|(_, n)| n.clone())
            .collect();
        eventually(
            "the supervisor and its workers to run on the majority side",
            || {
                running(&nodes[old..=old], "Supervisor") == 0
                    && running(&nodes[old..=old], "Worker") == 0
                    && running(&majority, "Supervisor") == 1
                    && running(&majority, "Worker") == 3
            },
        )
        .await;
        // A supervisor's requests do not cross nodes: asked where it runs.
        let here = running_on(&majority, "Supervisor").unwrap();
        let sup = majority[here]
            .lookup_global::<DistributedSupervisor>("jobs")
            .unwrap();
        let children = sup.which_children().await.unwrap();
        assert_eq!(children.len(), 3);
        assert!(children.iter().all(|c| c.pid.is_some()));
        isolate(&nodes, old, false);
        shutdown_all(nodes);
    });
}

#[test]
fn a_singleton_that_cannot_start_on_its_managers_node_is_left_to_another_node() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        // Only n2 can run it.
        REFUSING
            .lock()
            .unwrap()
            .extend([id(&nodes[0]).to_string(), id(&nodes[1]).to_string()]);
        for node in &nodes {
            // A manager whose start failed waits longer than the test: it cannot take the
            // lock back before n2 gets it.
            let spec = SingletonSpec::<Picky>::new("picky", id(node).to_string())
                .backoff(Backoff::fixed(Duration::from_secs(30)));
            node.spawn::<Singleton<Picky>>(spec).await.unwrap();
        }
        eventually("the singleton to run on n2", || {
            running(&nodes[2..], "Picky") == 1
                && nodes.iter().all(|n| {
                    n.whereis_global("picky")
                        .is_some_and(|p| p.node() == id(&nodes[2]).as_str())
                })
        })
        .await;
        assert_eq!(running(&nodes[..2], "Picky"), 0);
        shutdown_all(nodes);
    });
}

#[test]
fn a_manager_under_a_supervisor_is_restarted_and_starts_its_singleton_again() {
    run_blocking(async {
        let node = Node::new();
        let label = format!("supervised-{}", std::process::id());
        let manager = ChildSpec::worker::<Singleton<Tracked>>(
            "manager",
            SingletonSpec::new("supervised", label.clone()),
        );
        let spec = noex::SupervisorSpec::new(Strategy::OneForOne).child(manager);
        let sup = node.spawn::<noex::Supervisor>(spec).await.unwrap();
        let first = within("the singleton to start", async {
            loop {
                if let Some(pid) = node.whereis_global("supervised") {
                    return pid;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        let children = sup.which_children().await.unwrap();
        let manager = children[0].pid.clone().unwrap();
        assert!(node.kill(&manager));
        // The singleton ends with its manager, and the restarted manager starts another.
        let second = within("the singleton to start again", async {
            loop {
                match node.whereis_global("supervised") {
                    Some(pid) if pid != first => return pid,
                    _ => drop(smol::Timer::after(Duration::from_millis(5)).await),
                }
            }
        })
        .await;
        assert!(!node.is_alive(&first));
        assert!(node.is_alive(&second));
        assert_eq!(running(std::slice::from_ref(&node), "Tracked"), 1);
        node.shutdown();
    });
}

#[test]
fn a_manager_started_after_a_loss_it_did_not_see_waits_the_loss_delay() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        // Only n0 has a manager: no other saw the singleton, nor its loss.
        let first = managers(&nodes[..1], "tracked").await;
        agreed(&nodes, &first).await;
        isolate(&nodes, 0, true);
        wait_connected(&nodes[1], 1).await;
        wait_connected(&nodes[2], 1).await;
        // Managers started now, on the majority side, cannot tell how recent the loss of
        // n0 is: they wait the loss delay, by which n0 has killed its singleton.
        let later = managers(&nodes[1..], "tracked").await;
        assert_eq!(later[0].state().await.unwrap(), SingletonState::Waiting);
        let mut most = 0;
        within("the singleton to move", async {
            loop {
                let count = live(&nodes);
                most = most.max(count);
                if live(&nodes[..1]) == 0 && count == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(most, 1, "the singleton ran twice at some moment");
        agreed(&nodes[1..], &later).await;
        isolate(&nodes, 0, false);
        shutdown_all(nodes);
    });
}

#[test]
fn a_process_holding_the_singletons_name_is_waited_for_then_the_singleton_starts() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        // A process of the user's holds the name before any manager starts.
        let squatter = common::probe(&nodes[1], false).await;
        nodes[1]
            .register_global("held", squatter.pid())
            .await
            .unwrap();
        let mut managers = Vec::new();
        for node in &nodes {
            // A manager whose start failed would wait longer than the test.
            let spec = SingletonSpec::<Tracked>::new("held", id(node).to_string())
                .backoff(Backoff::fixed(Duration::from_secs(30)));
            managers.push(node.spawn::<Singleton<Tracked>>(spec).await.unwrap());
        }
        let held = SingletonState::Elsewhere(squatter.pid().clone());
        for manager in &managers {
            eventually("the managers to see the name held", || {
                smol::block_on(manager.state()).unwrap() == held
            })
            .await;
        }
        assert_eq!(live(&nodes), 0);
        // Once it ends, the manager holding the lock starts the singleton.
        squatter.stop_itself(ExitReason::Normal).await;
        agreed(&nodes, &managers).await;
        shutdown_all(nodes);
    });
}
