//! The global registry on a three-node cluster (127.0.0.1, one process): registrations per
//! second, lookups against the local registry's, how soon another node sees a new name, how
//! soon a joining node has the whole table, and joins of one growing group.
//!
//! `cargo bench -p noex --bench global` for the figures; under `cargo test` it runs with
//! tiny counts as a smoke test.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use noex::{ClusterConfig, Ctx, GenServer, Node, Pid};

/// Scheduler threads per node.
const THREADS: usize = 1;
/// Registrations in flight per node in the throughput run.
const IN_FLIGHT: usize = 64;

struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Idle)
    }
}

struct Plan {
    smoke: bool,
    /// Names registered in the throughput run (and held when a node joins).
    names: usize,
    /// Registrations one after another, for latency and the stale window.
    sequential: usize,
    lookups: usize,
}

fn block_on_limit<T>(what: &str, future: impl Future<Output = T>) -> T {
    let limited = async { Some(future.await) }.or(async {
        smol::Timer::after(Duration::from_secs(120)).await;
        None
    });
    smol::block_on(limited).unwrap_or_else(|| panic!("{what} took over 2 minutes"))
}

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::new(name)
        .secret("noex global bench")
        .threads(THREADS)
}

async fn join(seed: &str, name: &str) -> Node {
    Node::start(config(name).seed(seed.to_owned()))
        .await
        .expect("node starts")
}

async fn connected(nodes: &[Node], peers: usize) {
    while nodes.iter().any(|n| n.connected_nodes().len() != peers) {
        smol::Timer::after(Duration::from_millis(2)).await;
    }
}

async fn idle(node: &Node, count: usize) -> Vec<Pid> {
    let mut pids = Vec::with_capacity(count);
    for _ in 0..count {
        let server = node.spawn::<Idle>(()).await.expect("spawns");
        pids.push(server.pid().clone());
    }
    pids
}

/// A fixed pseudo-random permutation (xorshift), the same in every run.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        return;
    }
    let plan = if has("--bench") && !has("--test") {
        Plan {
            smoke: false,
            names: 10_000,
            sequential: 2_000,
            lookups: 1_000_000,
        }
    } else {
        Plan {
            smoke: true,
            names: 300,
            sequential: 50,
            lookups: 10_000,
        }
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    let nodes = block_on_limit("starting three nodes", async {
        let first = Node::start(config("g0")).await.expect("node starts");
        let seed = first.local_node_id().unwrap().to_string();
        let nodes = vec![first, join(&seed, "g1").await, join(&seed, "g2").await];
        connected(&nodes, 2).await;
        nodes
    });

    // Throughput: every node registers a third of the names, IN_FLIGHT at a time.
    let per_node = plan.names / nodes.len();
    let started = Instant::now();
    let tasks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let node = node.clone();
            node.clone().spawn_task(async move {
                let pids = idle(&node, per_node).await;
                let began = Instant::now();
                let mut workers = Vec::new();
                for lane in 0..IN_FLIGHT {
                    let node = node.clone();
                    let mine: Vec<Pid> =
                        pids.iter().skip(lane).step_by(IN_FLIGHT).cloned().collect();
                    workers.push(node.clone().spawn_task(async move {
                        for pid in mine {
                            let name = format!("n{n}-{}", pid.serial());
                            node.register_global(&name, &pid).await.expect("registers");
                        }
                    }));
                }
                for worker in workers {
                    worker.await;
                }
                began
            })
        })
        .collect();
    let began = block_on_limit("registering", async {
        let mut first = None;
        for task in tasks {
            let began = task.await;
            first = Some(first.map_or(began, |f: Instant| f.min(began)));
        }
        first.unwrap()
    });
    let registered = per_node * nodes.len();
    let elapsed = began.elapsed();
    block_on_limit("the names to reach every node", async {
        while nodes.iter().any(|n| n.global_names().len() != registered) {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
    });
    let everywhere = began.elapsed();
    let _ = started;
    rows.push((
        format!("registrations, 3 nodes, {IN_FLIGHT} in flight per node"),
        format!(
            "{:.0}/s ({registered} in {elapsed:.1?}; on every node after {everywhere:.1?})",
            registered as f64 / elapsed.as_secs_f64()
        ),
    ));

    // One at a time from one node: the latency of a registration, and how long another
    // node takes to see it (watched from a thread of its own, spinning).
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<(String, Instant)>();
    let (ack_tx, ack_rx) = async_channel::bounded::<Duration>(1);
    let watcher = {
        let b = nodes[1].clone();
        std::thread::spawn(move || {
            for (name, done) in seen_rx {
                while b.whereis_global(&name).is_none() {
                    std::hint::spin_loop();
                }
                if ack_tx.send_blocking(done.elapsed()).is_err() {
                    return;
                }
            }
        })
    };
    let (latency, stale) = block_on_limit("sequential registrations", {
        let a = nodes[0].clone();
        let count = plan.sequential;
        nodes[0].spawn_task(async move {
            let pids = idle(&a, count).await;
            let mut latency = Vec::with_capacity(count);
            let mut stale = Vec::with_capacity(count);
            for (i, pid) in pids.iter().enumerate() {
                let name = format!("seq-{i}");
                let start = Instant::now();
                a.register_global(&name, pid).await.expect("registers");
                let done = Instant::now();
                latency.push(done - start);
                seen_tx.send((name, done)).expect("the watcher runs");
                stale.push(ack_rx.recv().await.expect("the watcher answers"));
            }
            latency.sort();
            stale.sort();
            (latency, stale)
        })
    });
    watcher.join().expect("the watcher ends");
    rows.push((
        "registration latency, one at a time (p50 / p99)".into(),
        format!(
            "{:.1?} / {:.1?}",
            percentile(&latency, 0.5),
            percentile(&latency, 0.99)
        ),
    ));
    rows.push((
        "a new name seen on another node after (p50 / p99)".into(),
        format!(
            "{:.1?} / {:.1?}",
            percentile(&stale, 0.5),
            percentile(&stale, 0.99)
        ),
    ));

    // Lookups: the global replica against the local registry, with the same names.
    // Both in one shuffled order (the registry's keys are not laid out in name order).
    let mut global_names: Vec<String> = nodes[2]
        .global_names()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    shuffle(&mut global_names);
    let local_names = block_on_limit("local names", async {
        let pids = idle(&nodes[2], global_names.len()).await;
        for (name, pid) in global_names.iter().zip(&pids) {
            nodes[2].register(name, pid).expect("registers");
        }
        global_names.clone()
    });
    let time_lookups = |lookup: &dyn Fn(&str) -> Option<Pid>, names: &[String]| {
        let start = Instant::now();
        for i in 0..plan.lookups {
            black_box(lookup(&names[i % names.len()]));
        }
        start.elapsed().as_nanos() as f64 / plan.lookups as f64
    };
    let node = nodes[2].clone();
    // Alternated, five rounds each: the median of each.
    let (mut global, mut local) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        global.push(time_lookups(
            &|name| node.whereis_global(name),
            &global_names,
        ));
        local.push(time_lookups(&|name| node.whereis(name), &local_names));
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (global, local) = (median(global), median(local));
    rows.push((
        format!(
            "lookup by name, {} names: global / local registry",
            local_names.len()
        ),
        format!("{global:.0} ns / {local:.0} ns"),
    ));

    // A node that joins receives the whole table.
    let held = nodes[0].global_names().len();
    let (joined, complete) = block_on_limit("a node joining", async {
        let seed = nodes[0].local_node_id().unwrap().to_string();
        let start = Instant::now();
        let late = join(&seed, "late").await;
        while late.connected_nodes().len() != nodes.len() {
            smol::Timer::after(Duration::from_micros(200)).await;
        }
        let connected = start.elapsed();
        while late.global_names().len() != held {
            smol::Timer::after(Duration::from_micros(200)).await;
        }
        let complete = start.elapsed();
        late.shutdown();
        (connected, complete)
    });
    rows.push((
        format!("a joining node has all {held} names after"),
        format!("{complete:.1?} (connected to all three after {joined:.1?})"),
    ));

    // Joins of one group from one node, timed by quarter as the group grows (each a step
    // of the same cost whatever the group's size), then the leaves.
    let members = plan.names * 2;
    let (quarters, leaves) = block_on_limit("group joins and leaves", {
        let a = nodes[0].clone();
        nodes[0].spawn_task(async move {
            let pids = idle(&a, members).await;
            let mut quarters = Vec::new();
            for quarter in pids.chunks(members / 4) {
                let start = Instant::now();
                for pid in quarter {
                    a.join_group("pool", pid).await.expect("joins");
                }
                quarters.push(start.elapsed());
            }
            let start = Instant::now();
            for pid in &pids {
                a.leave_group("pool", pid).await.expect("leaves");
            }
            (quarters, start.elapsed())
        })
    });
    let quarters: Vec<String> = quarters.iter().map(|q| format!("{q:.1?}")).collect();
    rows.push((
        format!("{members} joins of one group from one node, by quarter; then every leave"),
        format!("{}; {leaves:.1?}", quarters.join(" / ")),
    ));

    for node in nodes {
        node.shutdown();
    }
    println!();
    if plan.smoke {
        println!("global registry benchmarks (smoke run: tiny counts, the figures mean nothing)");
    } else {
        println!("global registry benchmarks");
    }
    println!();
    println!("Three nodes on 127.0.0.1 in one process, {THREADS} scheduler thread each.");
    println!();
    println!("| measurement | result |");
    println!("|---|---|");
    for (what, result) in rows {
        println!("| {what} | {result} |");
    }
}
