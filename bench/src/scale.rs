//! The scale workloads, noex only: how a full mesh forms as nodes are added
//! (`scale-cluster`), and how one node fares with many idle processes (`scale-processes`).
//!
//! Each repetition runs in a fresh child process (this binary re-executed), so that one
//! repetition's threads, sockets and memory never weigh on the next.
//!
//! * `scale-cluster N`: N nodes in the child, each `Node::start` with 1 scheduler thread,
//!   the first with no seed and every other seeded with the first, started one after the
//!   other without waiting (as a user starting a cluster would). The clock runs from just
//!   before the first start until every node has N − 1 peers connected (counted from each
//!   node's `NodeUp`/`NodeDown` events). Then, once every member list sent has been
//!   received, the member lists sent by all nodes together and the node ids they named.
//! * `scale-processes`: one node (2 scheduler threads), warmed by spawning and stopping
//!   1,000 processes; then from one node task idle `Echo` processes are spawned up to each
//!   checkpoint (10k, 100k, 1M) in turn, and at each: the spawn rate of the processes
//!   spawned since the previous checkpoint, the resident memory per idle process
//!   (`/proc/self/statm`, from before the first spawn; the spawner's handles included), and
//!   the round trip of a call to the first process spawned (1,000 untimed, 20,000 timed).

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use noex::{ClusterConfig, ClusterEvent, Node, NodeId};
use smol::LocalExecutor;

use crate::common::{rss_bytes, smol_limit, Plan, Rep, PHASE_LIMIT, THREADS};
use crate::noex_impl::{Echo, EchoApi};
use crate::report::{Figure, Outcome, Report};

/// Calls timed (after this many untimed) at each checkpoint of `scale-processes`.
const CALLS: u64 = 20_000;
const CALL_WARMUP: u64 = 1_000;

/// Runs the scale workloads that are wanted.
pub fn run(plan: &Plan, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
    if wanted("scale-cluster") {
        cluster(plan, report);
    }
    if wanted("scale-processes") {
        processes(plan, report);
    }
}

/// One mesh formed: how long it took, and the member lists it cost.
struct Mesh {
    ms: f64,
    lists: u64,
    ids: u64,
}

fn cluster(plan: &Plan, report: &mut Report) {
    let sizes = &plan.scale_nodes;
    let mut samples: Vec<Vec<Mesh>> = sizes.iter().map(|_| Vec::new()).collect();
    let mut failed: Vec<Option<String>> = vec![None; sizes.len()];
    // Interleaved (every size, then again), so that drift hits all sizes alike.
    for rep in 0..plan.reps {
        for (i, &n) in sizes.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            match in_child("__scale-cluster", &[n]) {
                Ok(lines) => match parse_mesh(&lines) {
                    Some(mesh) => samples[i].push(mesh),
                    None => failed[i] = Some(format!("bad child output {lines:?}")),
                },
                Err(error) => {
                    eprintln!("  scale-cluster {n}: {error}");
                    failed[i] = Some(error);
                }
            }
        }
        crate::progress(&format!(
            "scale-cluster: repetition {}/{}",
            rep + 1,
            plan.reps
        ));
    }
    type Pick = fn(&Mesh) -> f64;
    let rows: [(&str, &str, Pick); 3] = [
        ("full mesh formed", "ms", |m| m.ms),
        ("member lists sent, all nodes", "lists", |m| m.lists as f64),
        ("node ids in those lists", "ids", |m| m.ids as f64),
    ];
    for (label, unit, pick) in rows {
        for (i, &n) in sizes.iter().enumerate() {
            let mut figure =
                Figure::new("scale-cluster", &format!("{label}, {n} nodes"), unit, false);
            let outcome = match &failed[i] {
                Some(error) => Outcome::skipped(error.clone()),
                None => Outcome::from_samples(samples[i].iter().map(pick).collect()),
            };
            figure.set("noex", outcome);
            report.figures.push(figure);
        }
    }
    report.notes.push(
        "scale-cluster: each repetition a fresh child process; N nodes with 1 scheduler thread each, all seeded with the first, started back to back; the clock stops when every node has N − 1 peers; member lists counted once all have arrived".into(),
    );
}

fn parse_mesh(lines: &[String]) -> Option<Mesh> {
    let line = lines.iter().find_map(|l| l.strip_prefix("mesh "))?;
    let mut fields = line.split(' ');
    Some(Mesh {
        ms: fields.next()?.parse().ok()?,
        lists: fields.next()?.parse().ok()?,
        ids: fields.next()?.parse().ok()?,
    })
}

/// One checkpoint of `scale-processes`.
struct Checkpoint {
    count: usize,
    spawn_rate: f64,
    bytes_per_process: f64,
    call_ns: f64,
}

fn processes(plan: &Plan, report: &mut Report) {
    let counts = &plan.scale_processes;
    let mut samples: Vec<Vec<Checkpoint>> = Vec::new();
    let mut failure = None;
    for rep in 0..plan.reps {
        match in_child("__scale-processes", counts) {
            Ok(lines) => {
                let checkpoints: Vec<_> =
                    lines.iter().filter_map(|l| parse_checkpoint(l)).collect();
                if checkpoints.len() != counts.len() {
                    failure = Some(format!("bad child output {lines:?}"));
                    break;
                }
                samples.push(checkpoints);
            }
            Err(error) => {
                eprintln!("  scale-processes: {error}");
                failure = Some(error);
                break;
            }
        }
        crate::progress(&format!(
            "scale-processes: repetition {}/{}",
            rep + 1,
            plan.reps
        ));
    }
    type Pick = fn(&Checkpoint) -> f64;
    let rows: [(&str, &str, bool, Pick); 3] = [
        ("spawn rate up to", "processes/s", true, |c| c.spawn_rate),
        ("resident memory per idle process,", "bytes", false, |c| {
            c.bytes_per_process
        }),
        ("call round trip with", "ns", false, |c| c.call_ns),
    ];
    for (label, unit, higher, pick) in rows {
        for (i, &count) in counts.iter().enumerate() {
            let mut figure = Figure::new(
                "scale-processes",
                &format!("{label} {count} idle processes"),
                unit,
                higher,
            );
            let outcome = match &failure {
                Some(error) => Outcome::skipped(error.clone()),
                None => Outcome::from_samples(samples.iter().map(|rep| pick(&rep[i])).collect()),
            };
            figure.set("noex", outcome);
            report.figures.push(figure);
        }
    }
    report.notes.push(format!(
        "scale-processes: each repetition a fresh child process; idle processes spawned from one node task up to each count in turn; spawn rate of those since the previous count; memory = resident bytes from before the first spawn ÷ count, handles included; {CALLS} timed calls (after {CALL_WARMUP}) to the first process"
    ));
}

fn parse_checkpoint(line: &str) -> Option<Checkpoint> {
    let line = line.strip_prefix("at ")?;
    let mut fields = line.split(' ');
    Some(Checkpoint {
        count: fields.next()?.parse().ok()?,
        spawn_rate: fields.next()?.parse().ok()?,
        bytes_per_process: fields.next()?.parse().ok()?,
        call_ns: fields.next()?.parse().ok()?,
    })
}

/// Runs this binary as `<command> <numbers...>` and returns its standard output's lines.
fn in_child(command: &str, numbers: &[usize]) -> Rep<Vec<String>> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(exe)
        .arg(command)
        .args(numbers.iter().map(|n| n.to_string()))
        .output()
        .map_err(|e| format!("could not start the child: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the child failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("no output")
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The child of `scale-cluster`: forms a mesh of `args[0]` nodes and prints
/// `mesh <ms> <lists> <ids>`. Exits at once (tearing the nodes down is not measured).
pub fn cluster_child(args: &[String]) -> Rep<()> {
    let n: usize = args
        .first()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 2)
        .ok_or("usage: __scale-cluster NODES (at least 2)")?;
    let executor = LocalExecutor::new();
    let (nodes, elapsed) = smol_limit("scale-cluster", executor.run(form_mesh(&executor, n)))?;
    // Every list sent has arrived, or (lists to connections lost meanwhile never arrive)
    // none was sent for a while. The clock has stopped: this is not timed.
    let counts = || {
        nodes.iter().fold((0, 0), |(s, r), node| {
            let m = node.faults().membership();
            (s + m.lists_sent, r + m.lists_received)
        })
    };
    let settled = async {
        let (mut last, mut quiet) = (counts().0, 0);
        loop {
            let (sent, received) = counts();
            if sent == received || quiet >= 10 {
                return;
            }
            (quiet, last) = if sent == last {
                (quiet + 1, last)
            } else {
                (0, sent)
            };
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    };
    smol_limit("member lists to arrive", settled)?;
    let (lists, ids) = nodes.iter().fold((0, 0), |(l, i), node| {
        let m = node.faults().membership();
        (l + m.lists_sent, i + m.ids_sent)
    });
    println!("mesh {:.3} {lists} {ids}", elapsed.as_secs_f64() * 1e3);
    std::process::exit(0);
}

/// Starts `n` nodes seeded with the first and waits until each sees every other.
async fn form_mesh(executor: &LocalExecutor<'_>, n: usize) -> (Vec<Node>, Duration) {
    let (done, finished) = async_channel::unbounded::<bool>();
    let config = |i: usize| {
        ClusterConfig::new(format!("n{i}"))
            .secret("bench")
            .threads(1)
    };
    let start = Instant::now();
    let first = Node::start(config(0)).await.expect("node starts");
    let seed = first.local_node_id().expect("a cluster node").to_string();
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(
            Node::start(config(i).seed(seed.clone()))
                .await
                .expect("node starts"),
        );
    }
    for node in &nodes {
        // Subscribe, then read the peers: later changes all arrive as events.
        let events = node.cluster_events();
        let mut peers: HashSet<NodeId> = node
            .connected_nodes()
            .into_iter()
            .map(|info| info.id)
            .collect();
        let done = done.clone();
        let want = n - 1;
        executor
            .spawn(async move {
                let mut complete = peers.len() == want;
                if complete {
                    let _ = done.send(true).await;
                }
                while let Some(event) = events.recv().await {
                    match event {
                        ClusterEvent::NodeUp { node, .. } => {
                            peers.insert(node);
                        }
                        ClusterEvent::NodeDown { node, .. } => {
                            peers.remove(&node);
                        }
                        _ => {}
                    }
                    if (peers.len() == want) != complete {
                        complete = !complete;
                        let _ = done.send(complete).await;
                    }
                }
            })
            .detach();
    }
    let mut complete = 0usize;
    while complete < n {
        match finished.recv().await {
            Ok(true) => complete += 1,
            Ok(false) => complete -= 1,
            Err(_) => break,
        }
    }
    (nodes, start.elapsed())
}

/// The child of `scale-processes`: prints `at <count> <spawns/s> <bytes/process> <call ns>`
/// for each count of `args`, in turn. Exits at once.
pub fn processes_child(args: &[String]) -> Rep<()> {
    let counts: Vec<usize> = args
        .iter()
        .map(|a| a.parse().map_err(|_| format!("not a count: {a}")))
        .collect::<Rep<_>>()?;
    let most = counts.iter().copied().max().ok_or("no counts")?;
    let node = Node::builder().name("bench").threads(THREADS).build();
    // Warm the threads and their allocator arenas, as the memory workload does.
    let warm = node.clone();
    smol_limit(
        "warm-up",
        node.spawn_task(async move {
            let mut servers = Vec::with_capacity(1_000);
            for _ in 0..1_000 {
                servers.push(warm.spawn::<Echo>(()).await.expect("spawn failed"));
            }
            for server in &servers {
                server
                    .stop(noex::ExitReason::Normal)
                    .await
                    .expect("stop failed");
            }
        }),
    )?;
    let before = rss_bytes().ok_or("no /proc/self/statm")?;
    let spawner = node.clone();
    let checkpoints = node.spawn_task(async move {
        let mut servers = Vec::with_capacity(most);
        let mut out = Vec::new();
        for count in counts {
            let from = servers.len();
            let start = Instant::now();
            while servers.len() < count {
                servers.push(spawner.spawn::<Echo>(()).await.expect("spawn failed"));
            }
            let spawn_rate = (count - from) as f64 / start.elapsed().as_secs_f64();
            let rss = rss_bytes().unwrap_or(0);
            let first: &noex::ServerRef<Echo> = &servers[0];
            for i in 0..CALL_WARMUP {
                std::hint::black_box(first.echo(i).await.expect("call failed"));
            }
            let start = Instant::now();
            for i in 0..CALLS {
                std::hint::black_box(first.echo(i).await.expect("call failed"));
            }
            let call_ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
            let bytes = rss.saturating_sub(before) as f64 / count as f64;
            out.push(Checkpoint {
                count,
                spawn_rate,
                bytes_per_process: bytes,
                call_ns,
            });
        }
        (out, servers)
    });
    // 1M spawns take seconds; allow for a slow machine.
    let (out, _servers) = smol::block_on(async { Some(checkpoints.await) }.or(async {
        smol::Timer::after(PHASE_LIMIT * 3).await;
        None
    }))
    .ok_or("the spawns did not finish in time")?;
    for c in out {
        println!(
            "at {} {:.0} {:.1} {:.1}",
            c.count, c.spawn_rate, c.bytes_per_process, c.call_ns
        );
    }
    std::process::exit(0);
}
