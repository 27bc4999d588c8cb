//! The demo: a supervisor node (this process) and two worker nodes (two more OS processes
//! of this program), four workers, a batch of tasks, and one worker node killed with
//! SIGKILL halfway through. Exits 0 only if every task was completed exactly once.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use noex::supervisor::NodeSelector;
use noex::Node;
use smol::future::FutureExt;

use crate::node::{self, SupervisorNode, DEFAULT_SECRET};
use crate::pool::{ResultsApi, TaskQueueApi};

const WORKERS: usize = 4;
const TASKS: u64 = 80;
const WORK_MS: u64 = 50;
/// How long the demo may take in all.
const DEADLINE: Duration = Duration::from_secs(60);

/// The worker nodes' processes: killed (and waited for) however the demo ends. Each reads
/// its console from a pipe this process holds, and ends at its end of input: should this
/// process be killed, they end too.
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Processes {
    /// Starts worker node `name` as a process of this program, joining through `seed`.
    fn start(&mut self, name: &str, seed: &str) -> Result<(), String> {
        let program = std::env::current_exe().map_err(|e| format!("this program: {e}"))?;
        let child = Command::new(program)
            .args(["worker", "--name", name, "--seed", seed])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        self.0.push((name.to_owned(), child));
        Ok(())
    }

    /// The OS process id of node `id` (`name@host:port`).
    fn os_pid(&self, id: &str) -> Option<u32> {
        let name = id.split('@').next()?;
        let (_, child) = self.0.iter().find(|(n, _)| n == name)?;
        Some(child.id())
    }

    /// Kills node `name` with SIGKILL.
    fn kill(&mut self, name: &str) -> Result<(), String> {
        let (_, child) = self
            .0
            .iter_mut()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("no process {name}"))?;
        child.kill().map_err(|e| format!("killing {name}: {e}"))?;
        child.wait().map_err(|e| format!("reaping {name}: {e}"))?;
        Ok(())
    }
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
async fn wait_for(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !check().await {
        if Instant::now() > deadline {
            return Err(format!("gave up after {within:?} waiting for {what}"));
        }
        smol::Timer::after(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn bar(done: u64, total: u64) -> String {
    let width = 40;
    let filled = (done * width / total.max(1)) as usize;
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled)
    )
}

/// Round robin over the worker nodes only (the supervisor node keeps the queue).
fn worker_nodes_only(supervisor: String) -> NodeSelector {
    let turn = Arc::new(AtomicUsize::new(0));
    NodeSelector::custom(move |candidates| {
        let others: Vec<_> = candidates
            .iter()
            .filter(|id| id.as_str() != supervisor)
            .collect();
        let pick = others.get(turn.fetch_add(1, Ordering::Relaxed) % others.len().max(1))?;
        Some((*pick).clone())
    })
}

pub async fn run() -> Result<(), String> {
    run_demo()
        .or(async {
            smol::Timer::after(DEADLINE).await;
            Err(format!("the demo did not finish within {DEADLINE:?}"))
        })
        .await
}

async fn run_demo() -> Result<(), String> {
    let started = Instant::now();
    println!("== starting the supervisor node here and two worker nodes as OS processes");
    let node = node::start("supervisor", 0, None, DEFAULT_SECRET).await?;
    let id = node.local_node_id().expect("clustered").to_string();
    let mut processes = Processes(Vec::new());
    processes.start("worker1", &id)?;
    processes.start("worker2", &id)?;
    wait_for("both worker nodes", Duration::from_secs(20), async || {
        node.connected_nodes().len() == 2
    })
    .await?;
    for info in node.connected_nodes() {
        let os_pid = processes.os_pid(info.id.as_str()).unwrap_or(0);
        println!("   joined: {} (OS process {os_pid})", info.id);
    }

    let mut pool = SupervisorNode::start(node.clone(), worker_nodes_only(id.clone())).await?;
    println!("== {WORKERS} workers, placed on the worker nodes in turn");
    for _ in 0..WORKERS {
        let (worker, at) = pool.add_worker().await?;
        println!("   worker {worker} on {at}");
    }

    println!("== a batch of {TASKS} tasks of {WORK_MS} ms");
    pool.queue
        .submit(TASKS, WORK_MS)
        .await
        .map_err(|e| e.to_string())?;
    let victim = "worker1";
    let mut killed = false;
    let mut shown = u64::MAX;
    loop {
        let summary = pool.results.summary().await.map_err(|e| e.to_string())?;
        if summary.completed / 8 != shown / 8 || summary.completed == TASKS {
            shown = summary.completed;
            println!("   {}", bar(summary.completed, TASKS));
        }
        if !killed && summary.completed >= TASKS / 2 {
            println!("== killing {victim} with SIGKILL");
            processes.kill(victim)?;
            killed = true;
            show_moves(&pool, &node, victim).await?;
        }
        if summary.completed == TASKS {
            break;
        }
        smol::Timer::after(Duration::from_millis(25)).await;
    }

    let summary = pool.results.summary().await.map_err(|e| e.to_string())?;
    let queue = pool.queue.stats().await.map_err(|e| e.to_string())?;
    let sup = pool
        .workers
        .distribution()
        .await
        .map_err(|e| e.to_string())?;
    let missing = pool
        .results
        .missing(TASKS)
        .await
        .map_err(|e| e.to_string())?;
    println!("== summary");
    println!("   submitted   {}", queue.submitted);
    println!("   completed   {}", summary.completed);
    println!("   requeued    {}", queue.requeued);
    println!("   duplicates  {}", summary.duplicates);
    println!("   migrations  {}", sup.migrations);
    println!("   per node    {:?}", summary.per_node);
    println!("   elapsed     {:.1?}", started.elapsed());
    drop(processes);
    node.shutdown();
    if summary.completed == TASKS && summary.duplicates == 0 && missing.is_empty() {
        println!("every task completed exactly once");
        Ok(())
    } else {
        Err(format!(
            "tasks not completed exactly once: {} missing, {} duplicates",
            missing.len(),
            summary.duplicates
        ))
    }
}

/// Waits until no worker runs on the killed node any more, and shows where they went.
async fn show_moves(pool: &SupervisorNode, node: &Node, victim: &str) -> Result<(), String> {
    let gone = |n: &Option<String>| n.as_deref().is_some_and(|n| n.starts_with(victim));
    wait_for("the workers to move", Duration::from_secs(20), async || {
        let placement = pool.placement().await;
        placement.len() == WORKERS && placement.iter().all(|(_, n)| n.is_some() && !gone(n))
    })
    .await?;
    println!("   the workers now run on:");
    for (worker, at) in pool.placement().await {
        println!("   {worker} on {}", at.unwrap_or_default());
    }
    let _ = node;
    Ok(())
}
