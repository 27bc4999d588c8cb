//! One chaos node: a clustered noex node in its own OS process, driven by line commands
//! on standard input (see `noex_chaos::protocol`).
//!
//! ```text
//! chaos_node NAME [--port PORT] [--seed NODE_ID]...
//! ```
//!
//! It prints `READY <node id>` once listening, answers each command with one `OK ...` or
//! `ERR ...` line, and shuts down on `quit` or when its standard input closes.

use std::io::{BufRead, Write};
use std::time::Duration;

use futures_lite::FutureExt;
use noex::supervisor::{
    ChildSpec, NodeSelector, Singleton, SingletonSpec, Strategy, SupervisorSpec,
};
use noex::{CallError, DistributedSupervisor, Node, NodeId, Pid, ServerRef, Supervisor};
use noex_chaos::protocol::{ChildLine, PeerLine, SupStats, QUEUE_NAME, SINGLETON_NAME};
use noex_chaos::workload::{
    local_tickers, local_workers, Holder, HolderApi, Queue, QueueApi, Ticker, Watcher, WatcherApi,
    Worker,
};
use serde::Serialize;

/// How long one command may take before the node answers `ERR timeout`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

type Reply = Result<String, String>;

struct State {
    node: Node,
    sup: Option<ServerRef<Supervisor>>,
    queue: Option<ServerRef<Queue>>,
    watcher: Option<ServerRef<Watcher>>,
    singleton: Option<ServerRef<Singleton<Ticker>>>,
}

fn json(value: &impl Serialize) -> Reply {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn pid(text: &str) -> Result<Pid, String> {
    serde_json::from_str(text).map_err(|e| format!("bad pid {text:?}: {e}"))
}

fn number<T: std::str::FromStr>(text: Option<&&str>) -> Result<T, String> {
    text.ok_or("missing argument")?
        .parse()
        .map_err(|_| "not a number".to_owned())
}

/// A call error as its variant's name (the tests match on it).
fn call_error(error: CallError) -> String {
    match error {
        CallError::NoProc { .. } => "NoProc".into(),
        CallError::NoConnection { .. } => "NoConnection".into(),
        CallError::Timeout { .. } => "Timeout".into(),
        other => format!("Other {other}"),
    }
}

impl State {
    async fn handle(&mut self, words: &[&str]) -> Reply {
        let node = self.node.clone();
        match words {
            ["ping"] => json(&"pong"),
            ["batch", workers, tasks, work_ms] => {
                let workers: usize = number(Some(workers))?;
                let tasks: u64 = number(Some(tasks))?;
                let work_ms: u64 = number(Some(work_ms))?;
                let queue = node
                    .spawn::<Queue>(tasks)
                    .await
                    .map_err(|e| e.to_string())?;
                node.register_global(QUEUE_NAME, queue.pid())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut spec =
                    SupervisorSpec::distributed(Strategy::OneForOne, NodeSelector::RoundRobin)
                        .intensity(1000, Duration::from_secs(60));
                for i in 0..workers {
                    let id = format!("w{i}");
                    spec = spec.child(ChildSpec::worker::<Worker>(id.clone(), (id, work_ms)));
                }
                let sup = node
                    .spawn::<DistributedSupervisor>(spec)
                    .await
                    .map_err(|e| e.to_string())?;
                self.queue = Some(queue);
                self.sup = Some(sup);
                json(&())
            }
            ["add-tasks", n] => {
                let queue = self.queue.as_ref().ok_or("no queue here")?;
                let total = queue
                    .add(number(Some(n))?)
                    .await
                    .map_err(|e| e.to_string())?;
                json(&total)
            }
            ["tasks"] => {
                let queue = self.queue.as_ref().ok_or("no queue here")?;
                json(&queue.report().await.map_err(|e| e.to_string())?)
            }
            ["children"] => {
                let sup = self.sup.as_ref().ok_or("no supervisor here")?;
                let children = sup.which_children().await.map_err(|e| e.to_string())?;
                let lines: Vec<ChildLine> = children
                    .into_iter()
                    .map(|c| ChildLine {
                        id: c.id,
                        pid: c.pid,
                        node: c.node,
                    })
                    .collect();
                json(&lines)
            }
            ["stats"] => {
                let sup = self.sup.as_ref().ok_or("no supervisor here")?;
                let stats = sup.distribution().await.map_err(|e| e.to_string())?;
                json(&SupStats {
                    restarts: stats.restarts,
                    migrations: stats.migrations,
                    children_per_node: stats.children_per_node,
                    waiting_for_majority: stats.waiting_for_majority,
                })
            }
            ["local"] => json(&local_workers(&node)),
            ["nodes"] => {
                let peers: Vec<PeerLine> = node
                    .connected_nodes()
                    .into_iter()
                    .map(|info| PeerLine {
                        id: info.id.to_string(),
                        incarnation: info.incarnation,
                        monitors_out: info.ties.monitors_out,
                        monitors_in: info.ties.monitors_in,
                        links: info.ties.links,
                    })
                    .collect();
                json(&peers)
            }
            ["procs"] => json(&node.process_count()),
            ["spawn-holder"] => {
                let holder = node.spawn::<Holder>(()).await.map_err(|e| e.to_string())?;
                json(holder.pid())
            }
            ["hold", name] => {
                let holder = node.spawn::<Holder>(()).await.map_err(|e| e.to_string())?;
                if let Err(e) = node.register_global(name, holder.pid()).await {
                    let _ = holder.stop(noex::ExitReason::Shutdown).await;
                    return Err(format!("register: {e}"));
                }
                json(holder.pid())
            }
            ["whereis", name] => json(&node.whereis_global(name)),
            ["names"] => json(&node.global_names()),
            ["ping-holder", target] => {
                // A pid of this node that does not run is a lookup error: NoProc too.
                let holder = node
                    .server_ref::<Holder>(&pid(target)?)
                    .map_err(|e| call_error(e.into()))?;
                let pong = holder
                    .ping_with_timeout(Duration::from_secs(2))
                    .await
                    .map_err(call_error)?;
                json(&pong)
            }
            ["alive", target] => json(&node.is_alive(&pid(target)?)),
            ["watch", targets @ ..] => {
                let pids = targets
                    .iter()
                    .map(|t| pid(t))
                    .collect::<Result<Vec<_>, _>>()?;
                if self.watcher.is_none() {
                    let watcher = node.spawn::<Watcher>(()).await.map_err(|e| e.to_string())?;
                    self.watcher = Some(watcher);
                }
                let watcher = self.watcher.as_ref().ok_or("no watcher")?;
                json(&watcher.watch(pids).await.map_err(|e| e.to_string())?)
            }
            ["stop-watcher"] => {
                if let Some(watcher) = self.watcher.take() {
                    let reason = watcher.stop(noex::ExitReason::Shutdown).await;
                    reason.map_err(|e| e.to_string())?;
                }
                json(&())
            }
            ["downs"] => match &self.watcher {
                Some(watcher) => json(&watcher.downs().await.map_err(|e| e.to_string())?),
                None => json(&Vec::<(Pid, String)>::new()),
            },
            ["singleton"] => {
                let spec = SingletonSpec::<Ticker>::new(SINGLETON_NAME, ());
                let manager = node
                    .spawn::<Singleton<Ticker>>(spec)
                    .await
                    .map_err(|e| e.to_string())?;
                self.singleton = Some(manager);
                json(&())
            }
            ["tickers"] => json(&local_tickers(&node)),
            ["partition", peer, state] => {
                let peer: NodeId = peer.parse().map_err(|e| format!("bad node id: {e}"))?;
                let cut = match *state {
                    "on" => true,
                    "off" => false,
                    _ => return Err("on or off".into()),
                };
                node.faults().partition(&peer, cut);
                json(&())
            }
            _ => Err(format!("unknown command {:?}", words.join(" "))),
        }
    }
}

struct Args {
    name: String,
    port: u16,
    seeds: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    let name = argv
        .next()
        .ok_or("usage: chaos_node NAME [--port P] [--seed ID]...")?;
    let mut args = Args {
        name,
        port: 0,
        seeds: Vec::new(),
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|_| "bad port")?,
            "--seed" => args.seeds.push(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            say(&format!("ERR {e}"));
            std::process::exit(2);
        }
    };
    let config = noex_chaos::cluster_config(&args.name, args.port, &args.seeds);
    let node = match smol::block_on(Node::start(config)) {
        Ok(node) => node,
        Err(e) => {
            say(&format!("ERR start: {e}"));
            std::process::exit(1);
        }
    };
    let id = node.local_node_id().map(|id| id.to_string());
    say(&format!("READY {}", id.unwrap_or_default()));

    let mut state = State {
        node: node.clone(),
        sup: None,
        queue: None,
        watcher: None,
        singleton: None,
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words == ["quit"] {
            say("OK null");
            break;
        }
        let reply = smol::block_on(async { Some(state.handle(&words).await) }.or(async {
            smol::Timer::after(COMMAND_TIMEOUT).await;
            None
        }));
        match reply {
            Some(Ok(payload)) => say(&format!("OK {payload}")),
            Some(Err(e)) => say(&format!("ERR {}", e.replace('\n', " "))),
            None => say("ERR timeout"),
        }
    }
    node.shutdown();
}
