//! A worker pool spread over a cluster: workers are spawned on other nodes, watched with
//! monitors, and spawned again elsewhere when their node goes down.
//!
//! Every node registers its behaviours before it listens
//! (`ClusterConfig::register_behaviors`, the same as `noex::register_all!(node)`). The
//! node that runs the pool spawns its workers on the other nodes with `spawn_on` — by turns
//! (round-robin) or where the pool has the fewest (least-loaded) — monitors each one, and
//! hands out tasks to them by turns. When a worker's node is lost, its monitor fires with
//! `NoConnection` and the pool spawns the worker again on a node still up.
//!
//! # In one process
//!
//! ```text
//! cargo run -p examples --bin remote_processes -- --local-cluster 3
//! ```
//!
//! starts `node1` (the pool) and two worker nodes, spawns four workers, runs a batch of
//! tasks, cuts one worker node off, shows its workers moving to the survivor, runs another
//! batch, and exits (0 only if every task was answered).
//!
//! # As several processes
//!
//! ```text
//! cargo run -p examples --bin remote_processes -- --name node2 --port 4371
//! cargo run -p examples --bin remote_processes -- --name node3 --port 4372 --seed node2@127.0.0.1:4371
//! cargo run -p examples --bin remote_processes -- --name node1 --port 4370 --seed node2@127.0.0.1:4371 --pool 4
//! ```
//!
//! The node with `--pool N` spawns N workers on the others and gives them a task every
//! 200 ms; kill a worker node (Ctrl-C) and watch its workers come back on another one.
//! All traffic stays on 127.0.0.1; every node of a cluster must use the same `--secret`.

use std::collections::BTreeMap;
use std::time::Duration;

use noex::{behavior, ClusterConfig, Ctx, ExitReason, Info, MonitorRef, Node, NodeId, ServerRef};
use serde::{Deserialize, Serialize};
use smol::future::FutureExt;

/// The secret of the demo cluster, unless `--secret` says otherwise.
const DEFAULT_SECRET: &str = "noex remote_processes demo";
/// How long the demo waits for the cluster to do something.
const DEMO_WAIT: Duration = Duration::from_secs(10);

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

/// Does tasks; runs on any node.
#[behavior(name = "worker")]
pub struct Worker {
    number: u32,
    done: u64,
}

#[behavior]
impl Worker {
    #[init]
    fn init(number: u32) -> Self {
        Worker { number, done: 0 }
    }

    /// Does `task` and says who did it: (worker number, node, sum).
    #[call]
    async fn work(&mut self, task: Task, ctx: &mut Ctx<Self>) -> (u32, String, u64) {
        smol::Timer::after(Duration::from_millis(5)).await;
        self.done += 1;
        let node = ctx.pid().node().to_owned();
        (self.number, node, (1..=task.n).sum())
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
    /// The nodes a worker may go to: every connected node but `avoid`.
    fn candidates(ctx: &Ctx<Self>, avoid: Option<&NodeId>) -> Vec<NodeId> {
        ctx.node()
            .connected_nodes()
            .into_iter()
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
    let id = node.local_node_id().expect("a started node has an id");
    let label = format!("[{}]", id.name());
    println!("{label} listening as {id}");
    Ok((node, label))
}

/// Waits until `done` holds, for at most [`DEMO_WAIT`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let waiting = async {
        while !done() {
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        true
    };
    let timeout = async {
        smol::Timer::after(DEMO_WAIT).await;
        false
    };
    match waiting.or(timeout).await {
        true => Ok(()),
        false => Err(format!("gave up after {DEMO_WAIT:?} waiting for {what}")),
    }
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
    }
    Ok(())
}

/// `n` nodes in this process: the pool on the first, workers on the others; one worker
/// node is cut off mid-way.
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

    let lost = others.last().expect("n >= 2");
    let lost_id = lost.local_node_id().expect("started").clone();
    println!("--- {lost_id} is cut off (as if it crashed) ---");
    lost.faults().refuse_connections(true);
    first.faults().refuse_connections(true);
    lost.faults()
        .disconnect(first.local_node_id().expect("started"));
    let moved = async {
        loop {
            let workers = pool.workers().await.unwrap_or_default();
            if workers.len() == 4 && workers.iter().all(|(_, node)| *node != lost_id) {
                return true;
            }
            smol::Timer::after(Duration::from_millis(10)).await;
        }
    };
    let timeout = async {
        smol::Timer::after(DEMO_WAIT).await;
        false
    };
    if !moved.or(timeout).await {
        return Err("the pool did not move its workers off the lost node".into());
    }
    batch(&pool, label, 100).await?;
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
