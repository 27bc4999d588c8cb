//! A counter on every node of a cluster, called and cast to from the other nodes.
//!
//! Every node runs one `Counter` registered as `"counter"`. Once connected, each node casts
//! `add(1)` to the counter of every other node, then calls `get()` on it, and prints what
//! it gets back; it also prints every cluster event. The counters are reached by name on a
//! given node, `node.named_on::<Counter>("counter", &peer)`: Erlang's `{counter, Node}`.
//!
//! # Three nodes in three terminals
//!
//! ```text
//! cargo build -p examples --bin remote_counter
//! cargo run -p examples --bin remote_counter -- --name node1 --port 4370
//! cargo run -p examples --bin remote_counter -- --name node2 --port 4371 --seed node1@127.0.0.1:4370
//! cargo run -p examples --bin remote_counter -- --name node3 --port 4372 --seed node1@127.0.0.1:4370
//! ```
//!
//! node3 only knows node1, and learns of node2 from it. Each node runs until it is stopped:
//!
//! * Ctrl-C (or any kill) ends the process without a word to the others: its sockets close,
//!   and the others print `node-down <id> connection closed`. (A node that is frozen rather
//!   than killed, `kill -STOP`, is reported as `heartbeat timeout` after 3 s.) The others
//!   keep trying to reconnect, so a node restarted on the same port rejoins.
//! * Typing `quit` and Enter leaves gracefully: the node says goodbye, and the others print
//!   `node-down <id> shutdown` and do not try to reconnect.
//!
//! # Three nodes in one process
//!
//! ```text
//! cargo run -p examples --bin remote_counter -- --local-cluster 3
//! ```
//!
//! starts three nodes in this process (the first is the seed of the others), runs three
//! rounds of calls and casts, shuts the last node down gracefully, shows the survivors'
//! `node-down … shutdown`, runs a last round on the survivors, and exits.
//!
//! # Output
//!
//! Every line starts with the name of the node that prints it, then a keyword:
//!
//! ```text
//! [node1] listening as node1@127.0.0.1:4370
//! [node1] node-up node2@127.0.0.1:4371 incarnation 3f2a…
//! [node1] call node2@127.0.0.1:4371 get() -> 4
//! [node1] cast node2@127.0.0.1:4371 add(1) failed: node node2@127.0.0.1:4371 is not connected
//! [node1] call node2@127.0.0.1:4371 get() failed: node node2@127.0.0.1:4371 is not connected
//! [node1] node-down node2@127.0.0.1:4371 connection closed
//! ```
//!
//! All traffic stays on 127.0.0.1. Every node of a cluster must use the same `--secret`.

use std::collections::BTreeSet;
use std::time::Duration;

use noex::{behavior, ClusterConfig, ClusterEvent, ClusterEvents, Node, NodeId};
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::Task;

/// The name every node registers its counter under.
const COUNTER: &str = "counter";
/// The secret of the demo cluster, unless `--secret` says otherwise.
const DEFAULT_SECRET: &str = "noex remote_counter demo";
/// How long a call to another node's counter may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the `--local-cluster` demo waits for the cluster to do something.
const DEMO_WAIT: Duration = Duration::from_secs(10);

const USAGE: &str = "\
usage: remote_counter --name NAME [--port PORT] [--seed NAME@HOST:PORT]... [--secret SECRET]
       remote_counter --local-cluster N [--secret SECRET]

  --name NAME          this node's name (letters, digits, '_', '-'; starts with a letter)
  --port PORT          the port to listen on, on 127.0.0.1 (default 0: any free port)
  --seed NAME@HOST:PORT
                       a node to join through (repeatable); the rest of the cluster is
                       learnt from it
  --secret SECRET      the cluster secret, the same on every node (default: a demo secret)
  --local-cluster N    run N nodes (2 to 16) in this process, do a few rounds of calls,
                       shut one node down, and exit";

/// A counter, reachable from every node of the cluster.
#[behavior(name = "counter")]
struct Counter {
    count: u64,
}

#[behavior]
impl Counter {
    #[init]
    fn init() -> Self {
        Counter { count: 0 }
    }

    /// Adds `n`.
    #[cast]
    fn add(&mut self, n: u64) {
        self.count += n;
    }

    /// The current count.
    #[call]
    fn get(&self) -> u64 {
        self.count
    }
}

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    /// One node in this process.
    Node {
        name: String,
        port: u16,
        seeds: Vec<String>,
        secret: String,
    },
    /// `n` nodes in this process, for a bounded demo.
    LocalCluster {
        n: usize,
        secret: String,
    },
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut name = None;
    let mut port = None;
    let mut seeds = Vec::new();
    let mut secret = None;
    let mut local_cluster = None;
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--port" => {
                let text = value()?;
                let parsed = text
                    .parse::<u16>()
                    .map_err(|_| format!("--port {text:?} is not a port number"))?;
                port = Some(parsed);
            }
            "--seed" => seeds.push(value()?),
            "--secret" => secret = Some(value()?),
            "--local-cluster" => {
                let text = value()?;
                let n = text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (2..=16).contains(n))
                    .ok_or_else(|| format!("--local-cluster {text:?}: expected 2 to 16"))?;
                local_cluster = Some(n);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let secret = secret.unwrap_or_else(|| DEFAULT_SECRET.to_owned());
    match (local_cluster, name) {
        (Some(n), None) if port.is_none() && seeds.is_empty() => {
            Ok(Command::LocalCluster { n, secret })
        }
        (Some(_), _) => Err("--local-cluster takes no --name, --port or --seed".into()),
        (None, Some(name)) => Ok(Command::Node {
            name,
            port: port.unwrap_or(0),
            seeds,
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
            secret,
        } => run_node(&name, port, &seeds, &secret),
        Command::LocalCluster { n, secret } => smol::block_on(local_cluster(n, &secret)),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// The settings of every node of the demo: loopback, two scheduler threads.
fn config(name: &str, port: u16, secret: &str) -> ClusterConfig {
    ClusterConfig::new(name)
        .bind(([127, 0, 0, 1], port).into())
        .secret(secret)
        .threads(2)
}

/// Starts a node with its counter, and a task that prints its cluster events.
async fn start(config: ClusterConfig, seen: Option<Sender<Seen>>) -> Result<Started, String> {
    let node = Node::start(config)
        .await
        .map_err(|error| format!("the node did not start: {error}"))?;
    let events = node.cluster_events();
    let id = node
        .local_node_id()
        .expect("a started node has an id")
        .clone();
    let label = format!("[{}]", id.name());
    node.spawn_with::<Counter>((), noex::SpawnOptions::new().name(COUNTER))
        .await
        .map_err(|error| format!("the counter did not start: {error}"))?;
    println!("{label} listening as {id}");
    let watcher = smol::spawn(watch(events, node.clone(), label.clone(), seen));
    Ok(Started {
        node,
        id,
        label,
        watcher,
    })
}

/// A running node of the demo.
struct Started {
    node: Node,
    id: NodeId,
    label: String,
    /// Prints the node's cluster events; cancelled when dropped.
    watcher: Task<()>,
}

/// A change a node reported, passed on to the `--local-cluster` driver.
#[derive(Debug)]
enum Seen {
    Up { by: NodeId, peer: NodeId },
    Down { by: NodeId, peer: NodeId },
}

/// Prints every cluster event of `node` as `node-up` / `node-down` lines.
async fn watch(events: ClusterEvents, node: Node, label: String, seen: Option<Sender<Seen>>) {
    let me = node
        .local_node_id()
        .expect("a started node has an id")
        .clone();
    // Node::start returns with the node already connecting, so a peer may come up before
    // `cluster_events()` subscribed. Print the peers connected by now (read after
    // subscribing), then only events that change which peers are up.
    let mut up = BTreeSet::new();
    for info in node.connected_nodes() {
        println!(
            "{label} node-up {} incarnation {:x}",
            info.id, info.incarnation
        );
        up.insert((info.id.clone(), info.incarnation));
        report(
            &seen,
            Seen::Up {
                by: me.clone(),
                peer: info.id,
            },
        )
        .await;
    }
    // The watcher does not keep the node alive: it ends when the node is gone.
    drop(node);
    while let Some(event) = events.recv().await {
        match event {
            ClusterEvent::NodeUp { node, incarnation } => {
                if !up.insert((node.clone(), incarnation)) {
                    continue; // Already printed from `connected_nodes`.
                }
                println!("{label} node-up {node} incarnation {incarnation:x}");
                report(
                    &seen,
                    Seen::Up {
                        by: me.clone(),
                        peer: node,
                    },
                )
                .await;
            }
            ClusterEvent::NodeDown { node, reason } => {
                up.retain(|(id, _)| *id != node);
                // `shutdown`: the peer left, or this node is shutting down.
                println!("{label} node-down {node} {reason}");
                report(
                    &seen,
                    Seen::Down {
                        by: me.clone(),
                        peer: node,
                    },
                )
                .await;
            }
            other => println!("{label} cluster-event {other:?}"),
        }
    }
}

async fn report(seen: &Option<Sender<Seen>>, what: Seen) {
    if let Some(seen) = seen {
        // The driver may be gone already: nothing to tell then.
        let _ = seen.send(what).await;
    }
}

/// One round: casts `add(1)` to the counter of every connected peer, then calls `get()` on
/// it, and prints the answers.
async fn round(node: &Node, label: &str) {
    for peer in node.connected_nodes() {
        let counter = node.named_on::<Counter>(COUNTER, &peer.id);
        if let Err(error) = counter.add(1) {
            println!("{label} cast {} add(1) failed: {error}", peer.id);
        }
        // The call travels on the same connection as the cast, after it: the count
        // includes this `add`.
        match counter.get_with_timeout(CALL_TIMEOUT).await {
            Ok(count) => println!("{label} call {} get() -> {count}", peer.id),
            Err(error) => println!("{label} call {} get() failed: {error}", peer.id),
        }
    }
}

/// One node in this process, until the process is killed or `quit` is typed.
fn run_node(name: &str, port: u16, seeds: &[String], secret: &str) -> Result<(), String> {
    let config = seeds
        .iter()
        .fold(config(name, port, secret), |config, seed| config.seed(seed));
    let quit = quit_on_stdin();
    let started = smol::block_on(async {
        let started = start(config, None).await?;
        println!(
            "{} type \"quit\" and Enter to leave gracefully; Ctrl-C to just stop",
            started.label
        );
        let mut ticks = smol::Timer::interval(Duration::from_secs(1));
        loop {
            let tick = async {
                smol::stream::StreamExt::next(&mut ticks).await;
                true
            };
            let quit = async {
                // A closed channel (stdin's reader ended) is not a request to quit.
                if quit.recv().await.is_err() {
                    std::future::pending::<()>().await;
                }
                false
            };
            if !tick.or(quit).await {
                break;
            }
            round(&started.node, &started.label).await;
        }
        Ok::<_, String>(started)
    })?;
    println!("{} leaving the cluster", started.label);
    started.node.shutdown();
    // The watcher prints this node's own view of its departure (every peer down, reason
    // `shutdown`), and ends when the node is gone; do not wait for it forever.
    let Started {
        node,
        label,
        watcher,
        ..
    } = started;
    drop(node);
    smol::block_on(watcher.or(async {
        smol::Timer::after(Duration::from_secs(1)).await;
    }));
    println!("{label} stopped");
    Ok(())
}

/// A channel that receives a message when `quit` (or `q`) is read from stdin. Closed
/// stdin (`< /dev/null`, a background job) is ignored: the node then runs until killed.
fn quit_on_stdin() -> Receiver<()> {
    let (tx, rx) = smol::channel::bounded(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if matches!(line.trim(), "quit" | "q") {
                let _ = tx.send_blocking(());
                return;
            }
        }
    });
    rx
}

/// `n` nodes in this process: a few rounds, one node leaves, one more round.
async fn local_cluster(n: usize, secret: &str) -> Result<(), String> {
    let (tx, rx) = smol::channel::unbounded();
    let mut view = View::new();
    let mut nodes = Vec::new();
    let outcome = async {
        println!("--- starting {n} nodes; node1 is the seed of the others ---");
        let first = start(config("node1", 0, secret), Some(tx.clone())).await?;
        let seed = first.id.to_string();
        nodes.push(first);
        for i in 2..=n {
            let config = config(&format!("node{i}"), 0, secret).seed(seed.clone());
            nodes.push(start(config, Some(tx.clone())).await?);
        }
        let ids: Vec<NodeId> = nodes.iter().map(|s| s.id.clone()).collect();
        view.wait(&rx, "every node to see all the others", |view| {
            ids.iter().all(|id| view.peers(id).len() == n - 1)
        })
        .await?;

        for number in 1..=3 {
            println!("--- round {number} ---");
            for started in &nodes {
                round(&started.node, &started.label).await;
            }
        }

        let leaving = nodes.pop().expect("n >= 2");
        println!(
            "--- {} leaves the cluster (graceful shutdown) ---",
            leaving.id
        );
        let node = leaving.node.clone();
        smol::unblock(move || node.shutdown()).await;
        view.wait(&rx, "every node to see the leaver down", |view| {
            view.peers(&leaving.id).is_empty()
                && nodes
                    .iter()
                    .all(|s| !view.peers(&s.id).contains(&leaving.id))
        })
        .await?;
        drop(leaving);

        println!("--- a last round on the survivors ---");
        for started in &nodes {
            round(&started.node, &started.label).await;
        }
        for started in &nodes {
            let count = started.node.named::<Counter>(COUNTER).get().await;
            let count = count.map_err(|error| format!("the local counter: {error}"))?;
            println!("{} local counter = {count}", started.label);
        }
        Ok(())
    }
    .await;
    println!("--- stopping the survivors ---");
    // Stop printing first: the survivors' goodbyes to each other are not part of the demo.
    let (survivors, watchers): (Vec<Node>, Vec<Task<()>>) = nodes
        .into_iter()
        .map(|started| (started.node, started.watcher))
        .unzip();
    drop(watchers);
    for node in survivors {
        smol::unblock(move || node.shutdown()).await;
    }
    outcome
}

/// Which peers each node has reported up, from the `Seen` reports of the watchers.
struct View {
    peers: std::collections::BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl View {
    fn new() -> Self {
        View {
            peers: Default::default(),
        }
    }

    fn peers(&self, node: &NodeId) -> BTreeSet<NodeId> {
        self.peers.get(node).cloned().unwrap_or_default()
    }

    /// Applies reports until `done` holds, for at most [`DEMO_WAIT`].
    async fn wait(
        &mut self,
        rx: &Receiver<Seen>,
        what: &str,
        done: impl Fn(&View) -> bool,
    ) -> Result<(), String> {
        let deadline = smol::Timer::after(DEMO_WAIT);
        let waiting = async {
            while !done(self) {
                match rx.recv().await {
                    Ok(Seen::Up { by, peer }) => {
                        self.peers.entry(by).or_default().insert(peer);
                    }
                    Ok(Seen::Down { by, peer }) => {
                        self.peers.entry(by).or_default().remove(&peer);
                    }
                    Err(_) => return false,
                }
            }
            true
        };
        let finished = waiting
            .or(async {
                deadline.await;
                false
            })
            .await;
        if finished {
            Ok(())
        } else {
            Err(format!("gave up after {DEMO_WAIT:?} waiting for {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn a_node_takes_a_name_a_port_seeds_and_a_secret() {
        let command = parse(&[
            "--name",
            "b",
            "--port",
            "4371",
            "--seed",
            "a@127.0.0.1:4370",
            "--seed",
            "127.0.0.1:4372",
            "--secret",
            "s",
        ]);
        match command {
            Ok(Command::Node {
                name,
                port,
                seeds,
                secret,
            }) => {
                assert_eq!((name.as_str(), port, secret.as_str()), ("b", 4371, "s"));
                assert_eq!(seeds, ["a@127.0.0.1:4370", "127.0.0.1:4372"]);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["--name", "a"]) {
            Ok(Command::Node { port, secret, .. }) => {
                assert_eq!((port, secret.as_str()), (0, DEFAULT_SECRET))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_local_cluster_takes_a_size_and_a_secret_only() {
        assert!(matches!(
            parse(&["--local-cluster", "3"]),
            Ok(Command::LocalCluster { n: 3, .. })
        ));
        assert!(parse(&["--local-cluster", "3", "--name", "a"]).is_err());
        assert!(parse(&["--local-cluster", "1"]).is_err());
        assert!(parse(&["--local-cluster", "x"]).is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--name"]).is_err());
        assert!(parse(&["--name", "a", "--port", "70000"]).is_err());
        assert!(parse(&["--name", "a", "--verbose"]).is_err());
        assert!(matches!(parse(&["--name", "a", "-h"]), Ok(Command::Help)));
    }
}
