//! A worker pool spread over a cluster: workers are spawned on other nodes, watched with
//! monitors, and spawned again elsewhere when their node goes down; they share a cache
//! found by a global name, and a client finds them through a process group.
//!
//! Every node registers its behaviours before it listens
//! (`ClusterConfig::register_behaviors`, the same as `noex::register_all!(node)`). The
//! node that runs the pool spawns its workers on the other nodes with `spawn_on` — by turns
//! (round-robin) or where the pool has the fewest (least-loaded) — monitors each one, and
//! hands out tasks to them by turns. When a worker's node is lost, its monitor fires with
//! `NoConnection` and the pool spawns the worker again on a node still up.
//!
//! The pool's node also starts a `Cache`, with `spawn_on_with` and
//! `SpawnOptions::new().global_name("cache")`: the name is registered cluster-wide before
//! the cache's `init` runs, and every node then finds the cache under it without asking
//! anyone. Each worker writes its results there through `ctx.node().named_global("cache")`,
//! a reference that looks the name up at each message, wherever the cache runs.
//!
//! Each worker joins the process group `"workers"` in its `init` (`join_group`, like
//! Erlang's `pg`). Any node lists the members with `group_members` and turns them into
//! typed references with `server_ref::<Worker>`; a worker leaves the group when it ends or
//! its node is lost.
//!
//! # In one process
//!
//! ```text
//! cargo run -p examples --bin remote_processes -- --local-cluster 3
//! ```
//!
//! starts `node1` (the pool) and two worker nodes, starts the cache on `node2`, spawns
//! four workers and runs a batch of tasks. `node1` then reads a result back from the cache
//! by its global name, and `node2`, as a client, finds the four workers through the group
//! and gives each one a task. Then the last worker node is cut off: its workers move to the
//! survivor, the client sees the group lose the cut-off workers and gain the respawned
//! ones, and a last batch runs. It exits 0 only if every step worked.
//!
//! # As several processes
//!
//! ```text
//! cargo run -p examples --bin remote_processes -- --name node2 --port 4371
//! cargo run -p examples --bin remote_processes -- --name node3 --port 4372 --seed node2@127.0.0.1:4371
//! cargo run -p examples --bin remote_processes -- --name node1 --port 4370 --seed node2@127.0.0.1:4371 --pool 4
//! ```
//!
//! The node with `--pool N` starts the cache (on its own node, so that it outlives the
//! worker nodes), spawns N workers on the others and gives them a task every 200 ms,
//! printing the size of the group `"workers"` every ten tasks; kill a worker node (Ctrl-C)
//! and watch its workers come back on another one. All traffic stays on 127.0.0.1; every
//! node of a cluster must use the same `--secret`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use noex::{
    behavior, ClusterConfig, Ctx, ExitReason, Info, MonitorRef, NamedRef, Node, NodeId, NodeStatus,
    Pid, ServerRef, SpawnOptions,
};
use serde::{Deserialize, Serialize};
use smol::future::FutureExt;

/// The secret of the demo cluster, unless `--secret` says otherwise.
const DEFAULT_SECRET: &str = "noex remote_processes demo";
/// How long the demo waits for the cluster to do something.
const DEMO_WAIT: Duration = Duration::from_secs(10);
/// The global name of the cache.
const CACHE: &str = "cache";
/// The process group every worker joins.
const WORKERS: &str = "workers";

const USAGE: &str = "\
usage: remote_processes --name NAME [--port PORT] [--seed NAME@HOST:PORT]... [--pool N] [--secret SECRET]
       remote_processes --local-cluster N [--secret SECRET]

  --name NAME          this node's name
  --port PORT          the port to listen on, on 127.0.0.1 (default 0: any free port)
  --seed NAME@HOST:PORT
                       a node to join through (repeatable)
  --pool N             run the pool here, with N workers on the other nodes
  --secret SECRET      the cluster secret, the same on every node
  --local-cluster N    run N nodes (2 to 8) in this process, with the pool on the first";

/// A piece of work: add up the numbers from 1 to `n`, slowly.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub n: u64,
}

/// The key under which the sum of 1 to `n` is cached.
fn sum_key(n: u64) -> String {
    format!("sum 1..={n}")
}

/// A cache of results, reached by its global name ([`CACHE`]) from any node.
#[behavior(name = "cache")]
pub struct Cache {
    entries: BTreeMap<String, u64>,
}

#[behavior]
impl Cache {
    #[init]
    fn init() -> Self {
        Cache {
            entries: BTreeMap::new(),
        }
    }

    /// The value cached under `key`, if any.
    #[call]
    fn get(&self, key: String) -> Option<u64> {
        self.entries.get(&key).copied()
    }

    /// Caches `value` under `key`.
    #[cast]
    fn put(&mut self, key: String, value: u64) {
        self.entries.insert(key, value);
    }
}

/// Does tasks; runs on any node, as a member of the group [`WORKERS`].
#[behavior(name = "worker")]
pub struct Worker {
    number: u32,
    done: u64,
    /// The cache, whichever node holds its global name when a result is written.
    cache: NamedRef<Cache>,
}

#[behavior]
impl Worker {
    /// Joins the group [`WORKERS`]; the worker leaves it when it ends or its node is lost.
    #[init]
    async fn init(number: u32, ctx: &mut Ctx<Self>) -> Self {
        let node = ctx.node();
        if let Err(error) = node.join_group(WORKERS, ctx.pid()).await {
            println!("worker {number} did not join {WORKERS:?}: {error}");
        }
        Worker {
            number,
            done: 0,
            cache: node.named_global(CACHE),
        }
    }

    /// Does `task`, caches its result, and says who did it: (worker number, node, sum).
    #[call]
    async fn work(&mut self, task: Task, ctx: &mut Ctx<Self>) -> (u32, String, u64) {
        smol::Timer::after(Duration::from_millis(5)).await;
        self.done += 1;
        let sum = (1..=task.n).sum();
        if let Err(error) = self.cache.put(sum_key(task.n), sum) {
            println!(
                "worker {}: task {} not cached: {error}",
                self.number, task.id
            );
        }
        let node = ctx.pid().node().to_owned();
        (self.number, node, sum)
    }
}

/// Where the pool places a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    RoundRobin,
    LeastLoaded,
}

/// One worker of the pool.
struct Slot {
    worker: ServerRef<Worker>,
    node: NodeId,
    monitor: MonitorRef,
}

/// The pool: spawns workers on the other nodes, watches them, and respawns the ones whose
/// node goes down.
#[behavior(name = "pool")]
pub struct Pool {
    slots: BTreeMap<u32, Slot>,
    turn: usize,
    next_task: usize,
    label: String,
}

#[behavior(local)]
impl Pool {
    #[init]
    fn init(label: String) -> Self {
        Pool {
            slots: BTreeMap::new(),
            turn: 0,
            next_task: 0,
            label,
        }
    }

    /// Spawns workers `first..first + count` with `placement`.
    #[call]
    async fn grow(&mut self, first: u32, count: u32, placement: Placement, ctx: &mut Ctx<Self>) {
        for number in first..first + count {
            self.spawn(number, placement, None, ctx).await;
        }
    }

    /// Hands `task` to the next worker (the one after, if that one fails); `None` if no
    /// worker could take it.
    #[call]
    async fn submit(&mut self, task: Task) -> Option<(u32, String, u64)> {
        let count = self.slots.len();
        for _ in 0..count {
            let slot = self.slots.values().nth(self.next_task % count)?;
            self.next_task += 1;
            if let Ok(done) = slot.worker.work(task).await {
                return Some(done);
            }
        }
        None
    }

    /// Each worker's number and node.
    #[call]
    fn workers(&self) -> Vec<(u32, NodeId)> {
        self.slots
            .iter()
            .map(|(number, slot)| (*number, slot.node.clone()))
            .collect()
    }

    /// A worker ended: spawned again, on another node if its node is lost.
    #[info]
    async fn info(&mut self, info: Info<()>, ctx: &mut Ctx<Self>) {
        let Info::Down {
            monitor, reason, ..
        } = info
        else {
            return;
        };
        let Some((&number, slot)) = self.slots.iter().find(|(_, s)| s.monitor == monitor) else {
            return;
        };
        let lost = slot.node.clone();
        println!("{} worker {number} on {lost} down ({reason})", self.label);
        self.slots.remove(&number);
        let avoid = (reason == ExitReason::NoConnection).then_some(lost);
        self.spawn(number, Placement::LeastLoaded, avoid.as_ref(), ctx)
            .await;
    }
}

impl Pool {
    /// The nodes a worker may go to: every connected node but `avoid` and those leaving
    /// the cluster (shutting down: their workers end with `Shutdown` as they stop).
    fn candidates(ctx: &Ctx<Self>, avoid: Option<&NodeId>) -> Vec<NodeId> {
        ctx.node()
            .connected_nodes()
            .into_iter()
            .filter(|info| info.status != NodeStatus::Leaving)
            .map(|info| info.id)
            .filter(|id| Some(id) != avoid)
            .collect()
    }

    async fn spawn(
        &mut self,
        number: u32,
        placement: Placement,
        avoid: Option<&NodeId>,
        ctx: &mut Ctx<Self>,
    ) {
        let candidates = Self::candidates(ctx, avoid);
        let node = match placement {
            _ if candidates.is_empty() => {
                println!("{} no node to run worker {number} on", self.label);
                return;
            }
            Placement::RoundRobin => {
                self.turn += 1;
                candidates[self.turn % candidates.len()].clone()
            }
            Placement::LeastLoaded => candidates
                .iter()
                .min_by_key(|id| self.slots.values().filter(|s| s.node == **id).count())
                .cloned()
                .unwrap_or_else(|| candidates[0].clone()),
        };
        match ctx.spawn_monitor_on::<Worker>(&node, number).await {
            Ok((worker, monitor)) => {
                println!(
                    "{} spawned worker {number} on {node} ({placement:?})",
                    self.label
                );
                let slot = Slot {
                    worker,
                    node,
                    monitor,
                };
                self.slots.insert(number, slot);
            }
            Err(error) => println!("{} worker {number}: {error}", self.label),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Node {
        name: String,
        port: u16,
        seeds: Vec<String>,
        pool: Option<u32>,
        secret: String,
    },
    LocalCluster {
        n: usize,
        secret: String,
    },
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let (mut name, mut port, mut seeds, mut pool, mut secret, mut local) =
        (None, 0, Vec::new(), None, None, None);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--port" => {
                let text = value()?;
                port = text
                    .parse()
                    .map_err(|_| format!("--port {text:?} is not a port number"))?;
            }
            "--seed" => seeds.push(value()?),
            "--pool" => {
                let text = value()?;
                let n = text.parse().ok().filter(|n| (1..=64).contains(n));
                pool = Some(n.ok_or_else(|| format!("--pool {text:?}: expected 1 to 64"))?);
            }
            "--secret" => secret = Some(value()?),
            "--local-cluster" => {
                let text = value()?;
                let n = text.parse().ok().filter(|n| (2..=8).contains(n));
                local =
                    Some(n.ok_or_else(|| format!("--local-cluster {text:?}: expected 2 to 8"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let secret = secret.unwrap_or_else(|| DEFAULT_SECRET.to_owned());
    match (local, name) {
        (Some(n), None) if seeds.is_empty() && pool.is_none() => {
            Ok(Command::LocalCluster { n, secret })
        }
        (Some(_), _) => Err("--local-cluster takes no --name, --seed or --pool".into()),
        (None, Some(name)) => Ok(Command::Node {
            name,
            port,
            seeds,
            pool,
            secret,
        }),
        (None, None) => Err("--name (or --local-cluster) is required".into()),
    }
}

fn main() {
    let command = match parse_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Node {
            name,
            port,
            seeds,
            pool,
            secret,
        } => smol::block_on(run_node(&name, port, &seeds, pool, &secret)),
        Command::LocalCluster { n, secret } => smol::block_on(local_cluster(n, &secret)),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// Every node of the demo: loopback, two scheduler threads, its behaviours registered
/// before it listens.
fn config(name: &str, port: u16, secret: &str) -> ClusterConfig {
    ClusterConfig::new(name)
        .bind(([127, 0, 0, 1], port).into())
        .secret(secret)
        .threads(2)
        .register_behaviors()
}

async fn start(config: ClusterConfig) -> Result<(Node, String), String> {
    let node = Node::start(config)
        .await
        .map_err(|error| format!("the node did not start: {error}"))?;
    let label = node_label(&node);
    println!("{label} listening as {}", node.name());
    Ok((node, label))
}

/// How a node's lines start: `[node1]`.
fn node_label(node: &Node) -> String {
    let id = node.local_node_id().expect("a started node has an id");
    format!("[{}]", id.name())
}

/// Calls `attempt` every 10 ms until it gives a value, for at most [`DEMO_WAIT`].
async fn poll_for<T, F>(what: &str, mut attempt: impl FnMut() -> F) -> Result<T, String>
where
    F: Future<Output = Option<T>>,
{
    let polling = async {
        loop {
            if let Some(value) = attempt().await {
                return Some(value);
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
    };
    let timeout = async {
        smol::Timer::after(DEMO_WAIT).await;
        None
    };
    polling
        .or(timeout)
        .await
        .ok_or_else(|| format!("gave up after {DEMO_WAIT:?} waiting for {what}"))
}

/// Waits until `done` holds, for at most [`DEMO_WAIT`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    poll_for(what, || std::future::ready(done().then_some(()))).await
}

/// Starts the cache on `on` (this node or another), under the global name [`CACHE`].
async fn start_cache(node: &Node, on: &NodeId) -> Result<ServerRef<Cache>, String> {
    let options = SpawnOptions::new().global_name(CACHE);
    let cache = node
        .spawn_on_with::<Cache>(on, (), options)
        .await
        .map_err(|error| format!("the cache did not start: {error}"))?;
    println!(
        "{} started the cache on {on} as global {CACHE:?}",
        node_label(node)
    );
    Ok(cache)
}

/// Reads the cached sum of 1 to `n` from `node`, through the global name (waiting for the
/// worker's write, a cast, to arrive), and checks it.
async fn read_cache(node: &Node, n: u64) -> Result<(), String> {
    let cache = &node.named_global::<Cache>(CACHE);
    let key = &sum_key(n);
    let what = format!("{key:?} in the cache");
    let value = poll_for(&what, || async move {
        cache.get(key.clone()).await.ok().flatten()
    })
    .await?;
    let holder = node.whereis_global(CACHE).ok_or("the cache is gone")?;
    println!(
        "{} cache[{key:?}] = {value}, served by {} (found by its global name)",
        node_label(node),
        holder.node()
    );
    match value == (1..=n).sum() {
        true => Ok(()),
        false => Err(format!("the cache holds a wrong {key:?}: {value}")),
    }
}

/// What `client` finds in the group [`WORKERS`]: every member, each given one task (ids
/// from `first_task`).
async fn discover(client: &Node, first_task: u64) -> Result<Vec<Pid>, String> {
    let label = node_label(client);
    let members = client.group_members(WORKERS);
    println!("{label} group {WORKERS:?} has {} members", members.len());
    for (pid, id) in members.iter().zip(first_task..) {
        let worker = client
            .server_ref::<Worker>(pid)
            .map_err(|error| format!("member {pid}: {error}"))?;
        let (number, on, sum) = worker
            .work(Task { id, n: id })
            .await
            .map_err(|error| format!("member {pid}, task {id}: {error}"))?;
        println!("{label}   {pid} is worker {number} on {on}; task {id}: {sum}");
    }
    Ok(members)
}

/// One node in this process; with `--pool`, the pool too. Runs until killed.
async fn run_node(
    name: &str,
    port: u16,
    seeds: &[String],
    pool: Option<u32>,
    secret: &str,
) -> Result<(), String> {
    let config = seeds
        .iter()
        .fold(config(name, port, secret), |config, seed| config.seed(seed));
    let (node, label) = start(config).await?;
    let Some(workers) = pool else {
        println!("{label} serving workers; Ctrl-C to stop");
        return std::future::pending().await;
    };
    wait_for("another node to join", || {
        !node.connected_nodes().is_empty()
    })
    .await?;
    // Another pool's node may hold the name already: its cache then serves this pool too.
    let here = node.local_node_id().expect("started").clone();
    if let Err(error) = start_cache(&node, &here).await {
        println!("{label} {error}");
    }
    let pool = node
        .spawn::<Pool>(label.clone())
        .await
        .map_err(|e| e.to_string())?;
    pool.grow(1, workers, Placement::LeastLoaded)
        .await
        .map_err(|e| e.to_string())?;
    let mut ticks = smol::Timer::interval(Duration::from_millis(200));
    for id in 1.. {
        smol::stream::StreamExt::next(&mut ticks).await;
        let task = Task { id, n: id % 1000 };
        match pool.submit(task).await {
            Ok(Some((worker, on, sum))) => {
                println!("{label} task {id} -> worker {worker} on {on}: {sum}")
            }
            Ok(None) => println!("{label} task {id}: no worker could take it"),
            Err(error) => println!("{label} task {id}: {error}"),
        }
        if id % 10 == 0 {
            let members = node.group_members(WORKERS).len();
            println!("{label} group {WORKERS:?} has {members} members");
        }
    }
    Ok(())
}

/// `n` nodes in this process: the pool on the first, the cache and the client on the
/// second, workers on the others; the last node is cut off mid-way.
async fn local_cluster(n: usize, secret: &str) -> Result<(), String> {
    println!("--- starting {n} nodes; node1 runs the pool ---");
    let (first, label) = start(config("node1", 0, secret)).await?;
    let seed = first.local_node_id().expect("started").to_string();
    let mut others = Vec::new();
    for i in 2..=n {
        let (node, _) = start(config(&format!("node{i}"), 0, secret).seed(seed.clone())).await?;
        others.push(node);
    }
    let outcome = demo(&first, &label, &others, n).await;
    println!("--- stopping ---");
    for node in others.into_iter().chain([first]) {
        smol::unblock(move || node.shutdown()).await;
    }
    outcome
}

async fn demo(first: &Node, label: &str, others: &[Node], n: usize) -> Result<(), String> {
    for node in std::iter::once(first).chain(others) {
        wait_for("the full mesh", || node.connected_nodes().len() == n - 1).await?;
    }
    let client = &others[0];
    let lost = others.last().expect("n >= 2");
    println!("--- the cache, under a global name ---");
    start_cache(first, client.local_node_id().expect("started")).await?;
    let pool = first
        .spawn::<Pool>(label.to_owned())
        .await
        .map_err(|e| e.to_string())?;
    println!("--- four workers: two by turns, two where the pool has fewest ---");
    pool.grow(1, 2, Placement::RoundRobin)
        .await
        .map_err(|e| e.to_string())?;
    pool.grow(3, 2, Placement::LeastLoaded)
        .await
        .map_err(|e| e.to_string())?;
    batch(&pool, label, 0).await?;
    read_cache(first, 10).await?;

    println!(
        "--- {} finds the workers through the group ---",
        client.name()
    );
    wait_for("the client to see four workers", || {
        client.group_members(WORKERS).len() == 4
    })
    .await?;
    let before = discover(client, 51).await?;

    let lost_id = lost.local_node_id().expect("started").clone();
    println!("--- {lost_id} is cut off (as if it crashed) ---");
    // Cut from every node, as a crash would: each node then forgets the lost node's
    // group members and global names (the lost node's processes run on, unreachable).
    lost.faults().refuse_connections(true);
    for node in std::iter::once(first).chain(&others[..others.len() - 1]) {
        lost.faults()
            .disconnect(node.local_node_id().expect("started"));
    }
    let (pool_ref, lost_ref) = (&pool, &lost_id);
    poll_for(
        "the pool to move its workers off the lost node",
        || async move {
            let workers = pool_ref.workers().await.unwrap_or_default();
            let moved = workers.len() == 4 && workers.iter().all(|(_, node)| node != lost_ref);
            moved.then_some(())
        },
    )
    .await?;
    wait_for("the group to lose the cut-off workers", || {
        let members = client.group_members(WORKERS);
        members.len() == 4 && members.iter().all(|pid| pid.node() != lost.name())
    })
    .await?;
    let after = client.group_members(WORKERS);
    let left: Vec<&Pid> = before.iter().filter(|pid| !after.contains(pid)).collect();
    let joined: Vec<&Pid> = after.iter().filter(|pid| !before.contains(pid)).collect();
    println!(
        "{} group {WORKERS:?}: {left:?} left with {lost_id}, {joined:?} joined",
        node_label(client)
    );
    if left.len() != joined.len() || left.iter().any(|pid| pid.node() != lost.name()) {
        return Err(format!(
            "the group changed unexpectedly: {before:?} -> {after:?}"
        ));
    }
    batch(&pool, label, 100).await?;
    read_cache(first, 110).await?;
    for (number, node) in pool.workers().await.map_err(|e| e.to_string())? {
        println!("{label} worker {number} runs on {node}");
    }
    // The pool stops first: the nodes' shutdown that follows is not a failure to answer.
    pool.stop(ExitReason::Shutdown)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Ten tasks, each of which must be answered.
async fn batch(pool: &ServerRef<Pool>, label: &str, first: u64) -> Result<(), String> {
    for id in first + 1..=first + 10 {
        match pool.submit(Task { id, n: id }).await {
            Ok(Some((worker, on, sum))) => {
                println!("{label} task {id} -> worker {worker} on {on}: {sum}")
            }
            other => return Err(format!("task {id} was not done: {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn the_command_line_is_checked() {
        assert!(matches!(
            parse(&["--local-cluster", "3"]),
            Ok(Command::LocalCluster { n: 3, .. })
        ));
        assert!(matches!(
            parse(&["--name", "a", "--pool", "4"]),
            Ok(Command::Node { pool: Some(4), .. })
        ));
        assert!(parse(&["--local-cluster", "3", "--pool", "2"]).is_err());
        assert!(parse(&["--name", "a", "--pool", "0"]).is_err());
        assert!(parse(&[]).is_err());
    }
}
