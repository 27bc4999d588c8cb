//! The interactive consoles of the two kinds of node: one command per line on stdin.
//! A bad command or argument prints a one-line error, never ends the node. The node's
//! cluster events (a peer up or down, a connection refused) are printed as `* ` lines.

use noex::supervisor::NodeSelector;
use noex::{CallError, ClusterEvent, Node, NodeInfo};
use smol::future::FutureExt;
use smol::io::{AsyncBufReadExt, BufReader};
use smol::stream::StreamExt;

use crate::node::SupervisorNode;
use crate::pool::{worker_name, ResultsApi, TaskQueueApi, Worker, WorkerApi};

const SUPERVISOR_HELP: &str = "\
/help                     this list
/add-worker               start a worker (placed by the strategy)
/remove-worker <id>       stop a worker
/submit <ms>              queue one task taking <ms> of work
/batch <n>                queue <n> tasks of 100 ms
/results [n]              the last n results (10)
/stats                    queue, results and supervisor counters
/strategy <round_robin|least_loaded|local_first|random>
/workers                  every worker and its node
/nodes                    the connected nodes
/quit                     stop this node";

const WORKER_HELP: &str = "\
/help                     this list
/workers                  the workers running on this node
/crash <id>               make worker <id> panic (its supervisor restarts it)
/slow <id>                worker <id> at half speed
/fast <id>                worker <id> at double speed
/normal <id>              worker <id> at normal speed
/nodes                    the connected nodes
/quit                     stop this node";

/// Reads commands until `/quit` or the end of input.
async fn console(prompt: &str, mut run: impl AsyncFnMut(&str, &[&str]) -> Result<bool, String>) {
    let mut lines = BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
    println!("{prompt}: type /help for the commands");
    while let Some(Ok(line)) = lines.next().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((command, args)) = words.split_first() else {
            continue;
        };
        match run(command, args).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => println!("error: {error}"),
        }
    }
}

/// Prints the cluster events of `node` until it shuts down: a wrong `--secret` shows
/// here as a refused connection.
async fn print_cluster_events(node: Node) {
    let events = node.cluster_events();
    // Peers that came up before the subscription: printed now, their event skipped.
    let mut up = node.connected_nodes();
    for info in &up {
        println!("* {} is up", info.id);
    }
    drop(node);
    while let Some(event) = events.recv().await {
        match event {
            ClusterEvent::NodeUp { node, incarnation } => {
                let seen = |info: &NodeInfo| info.id == node && info.incarnation == incarnation;
                if !up.iter().any(seen) {
                    println!("* {node} is up");
                }
            }
            ClusterEvent::NodeDown { node, reason } => {
                up.retain(|info| info.id != node);
                println!("* {node} is down: {reason}");
            }
            ClusterEvent::Refused {
                address,
                by_peer,
                reason,
                ..
            } => {
                let by = if by_peer {
                    "by the peer"
                } else {
                    "by this node"
                };
                println!("* a connection with {address} refused {by}: {reason}");
            }
            other => println!("* {other:?}"),
        }
    }
}

fn id_arg(args: &[&str]) -> Result<u32, String> {
    match args {
        [id] => id
            .trim_start_matches("worker-")
            .parse()
            .map_err(|_| format!("{id:?} is not a worker id")),
        _ => Err("give one worker id".into()),
    }
}

fn count_arg(args: &[&str], default: u64) -> Result<u64, String> {
    match args {
        [] => Ok(default),
        [n] => n.parse().map_err(|_| format!("{n:?} is not a number")),
        _ => Err("too many arguments".into()),
    }
}

fn print_nodes(node: &Node) {
    let nodes = node.connected_nodes();
    println!("{} (this node)", node.name());
    for info in nodes {
        println!("{}  {} processes", info.id, info.process_count);
    }
}

/// The supervisor node's console.
pub async fn supervisor(mut pool: SupervisorNode) {
    let events = print_cluster_events(pool.node.clone());
    let console = console("supervisor", async |command: &str, args: &[&str]| {
        match command {
            "/help" => println!("{SUPERVISOR_HELP}"),
            "/add-worker" => {
                let (id, node) = pool.add_worker().await?;
                println!("worker {id} runs on {node}");
            }
            "/remove-worker" => {
                pool.remove_worker(id_arg(args)?).await?;
                println!("removed");
            }
            "/submit" => {
                let ms = count_arg(args, 100)?;
                let id = pool.queue.submit(1, ms).await.map_err(|e| e.to_string())?;
                println!("task {id} queued");
            }
            "/batch" => {
                let n = count_arg(args, 10)?;
                if n == 0 {
                    return Err("give at least one task".into());
                }
                let first = pool.queue.submit(n, 100).await.map_err(|e| e.to_string())?;
                println!("tasks {first}..{} queued", first + n - 1);
            }
            "/results" => {
                let n = count_arg(args, 10)? as usize;
                for outcome in pool.results.recent(n).await.map_err(|e| e.to_string())? {
                    let (task, worker, node, value) =
                        (outcome.task, outcome.worker, outcome.node, outcome.value);
                    println!("task {task}: {value} (worker {worker} on {node})");
                }
            }
            "/stats" => {
                let queue = pool.queue.stats().await.map_err(|e| e.to_string())?;
                let summary = pool.results.summary().await.map_err(|e| e.to_string())?;
                let sup = pool
                    .workers
                    .distribution()
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{queue:?}");
                println!("{summary:?}");
                println!("{sup:?}");
            }
            "/strategy" => {
                let selector = match args {
                    ["round_robin"] => NodeSelector::RoundRobin,
                    ["least_loaded"] => NodeSelector::LeastLoaded,
                    ["local_first"] => NodeSelector::LocalFirst,
                    ["random"] => NodeSelector::Random,
                    _ => return Err("round_robin, least_loaded, local_first or random".into()),
                };
                pool.workers
                    .set_selector(selector)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("new workers are placed by {}", args[0]);
            }
            "/workers" => {
                for (id, node) in pool.placement().await {
                    println!("{id}: {}", node.as_deref().unwrap_or("(not running)"));
                }
            }
            "/nodes" => print_nodes(&pool.node),
            "/quit" => return Ok(false),
            other => return Err(format!("unknown command {other:?} (try /help)")),
        }
        Ok(true)
    });
    console.or(events).await
}

/// A worker node's console.
pub async fn worker(node: Node) {
    let events = print_cluster_events(node.clone());
    let console = console("worker node", async |command: &str, args: &[&str]| {
        match command {
            "/help" => println!("{WORKER_HELP}"),
            "/workers" => {
                let here: Vec<_> = node
                    .processes()
                    .into_iter()
                    .filter(|p| p.behavior.ends_with("Worker"))
                    .collect();
                if here.is_empty() {
                    println!("no workers here");
                }
                for process in here {
                    let server = node
                        .server_ref::<Worker>(&process.pid)
                        .map_err(|e| e.to_string())?;
                    let about = server.about().await.map_err(|e| e.to_string())?;
                    println!(
                        "worker {}: speed {}x, {} tasks done ({})",
                        about.id, about.speed, about.done, process.pid
                    );
                }
            }
            "/crash" => {
                let worker = node.named_global::<Worker>(worker_name(id_arg(args)?));
                match worker.crash().await {
                    Ok(()) | Err(CallError::Exited(_)) => {
                        println!("crashed; its supervisor restarts it")
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
            "/slow" | "/fast" | "/normal" => {
                let speed = match command {
                    "/slow" => 0.5,
                    "/fast" => 2.0,
                    _ => 1.0,
                };
                let worker = node.named_global::<Worker>(worker_name(id_arg(args)?));
                worker.set_speed(speed).map_err(|e| e.to_string())?;
                println!("speed {speed}x");
            }
            "/nodes" => print_nodes(&node),
            "/quit" => return Ok(false),
            other => return Err(format!("unknown command {other:?} (try /help)")),
        }
        Ok(true)
    });
    console.or(events).await
}
