//! What a singleton must survive beyond a clean loss: a node cut off while its singleton is
//! still in `init`, a node that starts cut off from its cluster, an instance that loses
//! its global name but traps the exit signal that tells it so, flapping links, a link cut
//! between two of three nodes, a chain of four nodes, managers restarted by a local
//! supervisor or sharing a node, and a singleton slow to stop on a node that shuts down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use noex::supervisor::{
    Backoff, ChildSpec, Singleton, SingletonSpec, SingletonState, Strategy, Supervisor,
    SupervisorSpec,
};
use noex::{Ctx, ExitReason, GenServer, Info, Node, ServerRef};

use super::common::{
    cluster_config, eventually, isolate, probe, run_blocking, shutdown_all, start_cluster,
    wait_connected, within,
};
use super::{agreed, id, live, managers, running, Labels, Tracked};

/// The [`Stuck`] processes in their `init`.
static IN_INIT: Labels = Labels::new();

/// How many [`Stuck`] processes of `nodes` are in their `init` (those whose registration
/// of the name failed never got there).
fn in_init(nodes: &[Node]) -> usize {
    IN_INIT.count(nodes)
}

/// One [`Stuck`] process in its `init`, until that is dropped (the process killed).
struct InInit(String);

impl Drop for InInit {
    fn drop(&mut self) {
        IN_INIT.remove(&self.0);
    }
}

/// A singleton whose `init` never ends: it runs user code from the moment it is spawned.
pub struct Stuck;

impl GenServer for Stuck {
    type Args = String;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(label: String, _ctx: &mut Ctx<Self>) -> Result<Self, String> {
        IN_INIT.add(&label);
        let _in_init = InInit(label);
        futures_lite::future::pending().await
    }
}

/// A singleton that traps exits and ignores every exit signal, the loss of its global
/// name included.
pub struct Stubborn;

impl GenServer for Stubborn {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(_: (), ctx: &mut Ctx<Self>) -> Result<Self, String> {
        ctx.trap_exits(true);
        Ok(Stubborn)
    }

    async fn handle_info(&mut self, _info: Info<()>, _ctx: &mut Ctx<Self>) {}
}

#[test]
fn a_singleton_cut_off_during_its_init_is_killed_before_the_majority_starts_another() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let mut managers = Vec::new();
        for node in &nodes {
            let spec = SingletonSpec::<Stuck>::new("stuck", id(node).to_string());
            let spec = spec.init_timeout(None);
            managers.push(node.spawn::<Singleton<Stuck>>(spec).await.unwrap());
        }
        eventually("one singleton in its init", || in_init(&nodes) == 1).await;
        let old = (0..3).find(|i| in_init(&nodes[*i..=*i]) == 1).unwrap();
        // The other managers watch it (its own, waiting for its `init`, answers nothing).
        let pid = nodes[old].whereis_global("stuck").unwrap();
        for (i, manager) in managers.iter().enumerate().filter(|(i, _)| *i != old) {
            within(&format!("n{i}'s manager to watch it"), async {
                while manager.where_running().await.unwrap().as_ref() != Some(&pid) {
                    smol::Timer::after(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        isolate(&nodes, old, true);
        let mut most = 0;
        within("the singleton to move to the majority side", async {
            loop {
                let count = in_init(&nodes);
                most = most.max(count);
                if in_init(&nodes[old..=old]) == 0 && count == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(most, 1, "the singleton ran twice at some moment");
        isolate(&nodes, old, false);
        shutdown_all(nodes);
    });
}

#[test]
fn a_node_that_starts_cut_off_from_its_cluster_starts_no_singleton_of_its_own() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let managers = managers(&nodes, "tracked").await;
        let first = agreed(&nodes, &managers).await;
        // A node (a new one, or one restarted under a new id) whose seed does not answer
        // yet: it knows no member, and so sees no cluster to be a majority of.
        for node in &nodes {
            node.faults().refuse_connections(true);
        }
        let seed = id(&nodes[0]).to_string();
        let late = Node::start(cluster_config("late").seed(seed))
            .await
            .unwrap();
        let mut all = nodes.clone();
        all.push(late.clone());
        let spec = SingletonSpec::new("tracked", id(&late).to_string());
        let manager = late.spawn::<Singleton<_>>(spec).await.unwrap();
        assert_eq!(manager.state().await.unwrap(), SingletonState::NoMajority);
        assert_eq!(live(&all), 1);
        // Once it has joined, it sees the one that ran all along.
        for node in &nodes {
            node.faults().refuse_connections(false);
        }
        for node in &all {
            wait_connected(node, 3).await;
        }
        let mut managers = managers;
        managers.push(manager);
        assert_eq!(agreed(&all, &managers).await, first);
        shutdown_all(all);
    });
}

#[test]
fn an_instance_that_lost_its_name_but_traps_the_exit_is_killed() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        isolate(&nodes, 0, true);
        wait_connected(&nodes[1], 1).await;
        wait_connected(&nodes[2], 1).await;
        // A process of n0 (not a manager) takes the name first, on its side...
        let user = probe(&nodes[0], false).await;
        nodes[0]
            .register_global("stubborn", user.pid())
            .await
            .unwrap();
        // ... the managers of the other side start the singleton on theirs, later.
        let mut managers = Vec::new();
        for node in &nodes[1..] {
            let spec = SingletonSpec::<Stubborn>::new("stubborn", ());
            managers.push(node.spawn::<Singleton<Stubborn>>(spec).await.unwrap());
        }
        eventually("the singleton to run on the majority side", || {
            running(&nodes, "Stubborn") == 1
        })
        .await;
        // When the partition heals, the earlier registration keeps the name: the singleton
        // loses it, ignores the exit signal that tells it so, and its manager kills it.
        isolate(&nodes, 0, false);
        eventually("the instance without the name to end", || {
            running(&nodes, "Stubborn") == 0
        })
        .await;
        // The managers watch the user's process, and start nothing while it holds the name.
        let holder = Some(user.pid().clone());
        for manager in &managers {
            within("the manager to watch the name's holder", async {
                while manager.where_running().await.unwrap() != holder {
                    smol::Timer::after(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        assert_eq!(running(&nodes, "Stubborn"), 0);
        // Once it ends, one of them starts the singleton.
        user.stop_itself(ExitReason::Normal).await;
        eventually("the singleton to start again", || {
            running(&nodes, "Stubborn") == 1
        })
        .await;
        shutdown_all(nodes);
    });
}

#[test]
fn flapping_links_neither_start_a_second_singleton_nor_leave_a_manager_stuck() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let ids: Vec<_> = nodes.iter().map(id).collect();
        let managers = managers(&nodes, "tracked").await;
        let first = agreed(&nodes, &managers).await;
        let at = nodes.iter().position(|n| id(n).as_str() == first.node());
        let at = at.unwrap();
        let sampler = Sampler::start(&nodes);
        // Each link of the singleton's node drops and comes back, one at a time (the node
        // keeps its majority), then the link between the two others.
        let links = (0..3)
            .filter(|i| *i != at)
            .map(|i| (i, at))
            .chain([((at + 1) % 3, (at + 2) % 3)]);
        for (from, to) in links.cycle().take(9) {
            nodes[from].faults().disconnect(&ids[to]);
            for node in &nodes {
                wait_connected(node, 2).await;
            }
        }
        assert_eq!(agreed(&nodes, &managers).await, first);
        // Every manager watches it: stopped with its manager, it starts again elsewhere.
        nodes[at]
            .stop(managers[at].pid(), ExitReason::Shutdown)
            .await
            .unwrap();
        let others: Vec<_> = (0..3).filter(|i| *i != at).collect();
        let rest: Vec<Node> = others.iter().map(|i| nodes[*i].clone()).collect();
        let watching: Vec<_> = others.iter().map(|i| managers[*i].clone()).collect();
        let moved = agreed(&rest, &watching).await;
        assert_ne!(moved, first);
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        shutdown_all(nodes);
    });
}

#[test]
fn a_manager_restarted_by_its_supervisor_and_a_second_manager_on_its_node_keep_one_singleton() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        // Two managers of the same singleton on every node, children of a local supervisor.
        let mut sups = Vec::new();
        for node in &nodes {
            let spec = SingletonSpec::<Tracked>::new("tracked", id(node).to_string())
                .backoff(Backoff::fixed(Duration::from_millis(20)));
            let sup = SupervisorSpec::new(Strategy::OneForOne)
                .child(ChildSpec::worker::<Singleton<Tracked>>("m1", spec.clone()))
                .child(ChildSpec::worker::<Singleton<Tracked>>("m2", spec));
            sups.push(node.spawn::<Supervisor>(sup).await.unwrap());
        }
        let first = within("the singleton to start", async {
            loop {
                if let Some(pid) = nodes[0].whereis_global("tracked") {
                    return pid;
                }
                smol::Timer::after(Duration::from_millis(5)).await;
            }
        })
        .await;
        let at = nodes.iter().position(|n| id(n).as_str() == first.node());
        let at = at.unwrap();
        let sampler = Sampler::start(&nodes);
        // Its manager is killed: the singleton ends with it (its parent), and one of the
        // seven managers left — the restarted one among them — starts it again.
        let manager = nodes[at].process_info(&first).unwrap().parent.unwrap();
        nodes[at].kill(&manager);
        eventually("the singleton to run again", || {
            let holder = nodes[at].whereis_global("tracked");
            live(&nodes) == 1 && holder.is_some_and(|pid| pid != first)
        })
        .await;
        for sup in &sups {
            let children = sup.which_children().await.unwrap();
            assert!(children.iter().all(|c| c.pid.is_some()));
        }
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        shutdown_all(nodes);
    });
}

/// Samples, every millisecond until dropped, how many [`Tracked`] processes of some nodes
/// are live, and keeps the most.
struct Sampler {
    most: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    _task: smol::Task<()>,
}

impl Sampler {
    fn start(nodes: &[Node]) -> Sampler {
        let most = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let (nodes, counts) = (nodes.to_vec(), (most.clone(), samples.clone()));
        let task = smol::spawn(async move {
            loop {
                counts.0.fetch_max(live(&nodes), Ordering::Relaxed);
                counts.1.fetch_add(1, Ordering::Relaxed);
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        });
        Sampler {
            most,
            samples,
            _task: task,
        }
    }

    /// The most live at once, once a sample taken from now on is in.
    async fn most(&self) -> usize {
        let taken = self.samples.load(Ordering::Relaxed);
        eventually("a sample", || {
            self.samples.load(Ordering::Relaxed) > taken + 1
        })
        .await;
        self.most.load(Ordering::Relaxed)
    }
}

/// The [`SlowStop`] processes that run (from `init` until their state is dropped, after
/// `terminate`).
static SLOW_LIVE: Labels = Labels::new();

/// A singleton whose `terminate` takes a while (a third of a second).
pub struct SlowStop(String);

impl Drop for SlowStop {
    fn drop(&mut self) {
        SLOW_LIVE.remove(&self.0);
    }
}

impl GenServer for SlowStop {
    type Args = String;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = String;

    async fn init(label: String, _ctx: &mut Ctx<Self>) -> Result<Self, String> {
        SLOW_LIVE.add(&label);
        Ok(SlowStop(label))
    }

    async fn terminate(&mut self, _reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        smol::Timer::after(Duration::from_millis(300)).await;
    }
}

#[test]
fn a_singleton_slow_to_stop_on_a_node_shutting_down_runs_once() {
    run_blocking(async {
        let mut nodes = start_cluster(3).await;
        let all = nodes.clone();
        for node in &nodes {
            let spec = SingletonSpec::<SlowStop>::new("slow", id(node).to_string());
            node.spawn::<Singleton<SlowStop>>(spec).await.unwrap();
        }
        // Running, and known to n0 (its registration may still be on its way there).
        eventually("the singleton to run", || {
            SLOW_LIVE.count(&all) == 1 && nodes[0].whereis_global("slow").is_some()
        })
        .await;
        let pid = nodes[0].whereis_global("slow").unwrap();
        let at = nodes.iter().position(|n| id(n).as_str() == pid.node());
        let leaving = nodes.remove(at.unwrap());
        let stopped = std::thread::spawn(move || leaving.shutdown());
        let mut most = 0;
        within("the singleton to run on another node", async {
            loop {
                let count = SLOW_LIVE.count(&all);
                most = most.max(count);
                let moved = nodes[0].whereis_global("slow").filter(|p| *p != pid);
                if moved.is_some() && count == 1 {
                    break;
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(most, 1, "the singleton ran twice at some moment");
        stopped.join().unwrap();
        shutdown_all(nodes);
    });
}

/// Cuts (or heals) the link between `nodes[i]` and `nodes[j]`, both ways.
fn cut(nodes: &[Node], i: usize, j: usize, cut: bool) {
    nodes[i].faults().partition(&id(&nodes[j]), cut);
    nodes[j].faults().partition(&id(&nodes[i]), cut);
}

#[test]
fn in_a_chain_of_four_the_singleton_leaves_the_end_node_and_runs_once_in_the_middle() {
    run_blocking(async {
        let nodes = start_cluster(4).await;
        let managers = managers(&nodes, "tracked").await;
        let first = agreed(&nodes, &managers).await;
        let h = nodes.iter().position(|n| id(n).as_str() == first.node());
        let h = h.unwrap();
        // The chain h – x – y – z: h and z see two nodes of four (no majority), x and y
        // three.
        let [x, y, z] = [(h + 1) % 4, (h + 2) % 4, (h + 3) % 4];
        let sampler = Sampler::start(&nodes);
        for (i, j) in [(h, y), (h, z), (x, z)] {
            cut(&nodes, i, j, true);
        }
        for (node, peers) in [(h, 1), (x, 2), (y, 2), (z, 1)] {
            wait_connected(&nodes[node], peers).await;
        }
        let middle = [nodes[x].clone(), nodes[y].clone()];
        eventually("the singleton to run in the middle of the chain", || {
            live(&nodes[h..=h]) == 0
                && live(&middle) == 1
                && nodes[x].whereis_global("tracked").is_some()
        })
        .await;
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        // The middle node that does not run it sees where it runs; so does the end node
        // next to the one that does. The other end sees no majority, and nothing.
        let pid = nodes[x].whereis_global("tracked").unwrap();
        let (here, there) = match pid.node() == id(&nodes[x]).as_str() {
            true => ((x, h), (y, z)),
            false => ((y, z), (x, h)),
        };
        let state = |i: usize| settled(&managers[i]);
        assert_eq!(state(here.0).await, SingletonState::Here(pid.clone()));
        assert_eq!(state(there.0).await, SingletonState::Elsewhere(pid.clone()));
        assert_eq!(state(here.1).await, SingletonState::Elsewhere(pid.clone()));
        assert_eq!(state(there.1).await, SingletonState::NoMajority);
        for (i, j) in [(h, y), (h, z), (x, z)] {
            cut(&nodes, i, j, false);
        }
        for node in &nodes {
            wait_connected(node, 3).await;
        }
        assert_eq!(agreed(&nodes, &managers).await, pid);
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        shutdown_all(nodes);
    });
}

/// The state of `manager` once it is not `Waiting`.
async fn settled(manager: &ServerRef<Singleton<Tracked>>) -> SingletonState {
    within("a manager's view", async {
        loop {
            let state = manager.state().await.unwrap();
            if state != SingletonState::Waiting {
                return state;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Three nodes a – b – c with the singleton on a, the link a–c cut, and c's manager told
/// (its claim refused through b) that the singleton runs out of its reach.
struct CutLink {
    nodes: Vec<Node>,
    managers: Vec<ServerRef<Singleton<Tracked>>>,
    first: noex::Pid,
    a: usize,
    b: usize,
    c: usize,
    sampler: Sampler,
}

async fn cut_link() -> CutLink {
    let nodes = start_cluster(3).await;
    let managers = managers(&nodes, "tracked").await;
    let first = agreed(&nodes, &managers).await;
    let a = nodes.iter().position(|n| id(n).as_str() == first.node());
    let a = a.unwrap();
    let (b, c) = ((a + 1) % 3, (a + 2) % 3);
    // c no longer reaches the singleton's node, but b does (and both see a majority).
    // c's replica drops the name; its manager's claim, once the loss delay is over, is
    // refused through b.
    let sampler = Sampler::start(&nodes);
    cut(&nodes, a, c, true);
    wait_connected(&nodes[a], 1).await;
    wait_connected(&nodes[c], 1).await;
    let unreachable = SingletonState::Unreachable {
        node: first.node().to_owned(),
    };
    within("c's manager to learn where the singleton runs", async {
        while managers[c].state().await.unwrap() != unreachable {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await;
    CutLink {
        nodes,
        managers,
        first,
        a,
        b,
        c,
        sampler,
    }
}

#[test]
fn across_a_cut_link_a_manager_sees_the_singleton_through_the_third_node_and_starts_none() {
    run_blocking(async {
        let CutLink {
            nodes,
            managers,
            first,
            a,
            b,
            c,
            sampler,
        } = cut_link().await;
        let elsewhere = SingletonState::Elsewhere(first.clone());
        assert_eq!(managers[b].state().await.unwrap(), elsewhere);
        assert_eq!(
            managers[a].state().await.unwrap(),
            SingletonState::Here(first.clone())
        );
        cut(&nodes, a, c, false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        assert_eq!(agreed(&nodes, &managers).await, first);
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        shutdown_all(nodes);
    });
}

#[test]
fn when_the_last_link_to_the_singletons_node_fails_a_manager_that_could_not_reach_it_waits() {
    run_blocking(async {
        let CutLink {
            nodes,
            managers,
            a,
            b,
            c,
            sampler,
            ..
        } = cut_link().await;
        // Now a–b fails too: b drops a's names at once, and grants c's next claim; a kills
        // its singleton only at its next look. c, which never saw it end, waits.
        cut(&nodes, a, b, true);
        eventually("the singleton to run on c's side only", || {
            live(&nodes[a..=a]) == 0 && live(&nodes) == 1
        })
        .await;
        assert_eq!(sampler.most().await, 1, "two singletons ran at once");
        cut(&nodes, a, b, false);
        cut(&nodes, a, c, false);
        for node in &nodes {
            wait_connected(node, 2).await;
        }
        agreed(&nodes, &managers).await;
        shutdown_all(nodes);
    });
}
