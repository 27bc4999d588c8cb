//! The test side of the chaos tests: [`ChaosNode`], a `chaos_node` OS process driven
//! through its standard input and output, killed (and waited for) when dropped; clusters
//! of them; polling with deadlines; the invariant checks the scenarios share.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use noex::Pid;
use noex_chaos::protocol::{ChildLine, PeerLine, SupStats, TaskReport};
use serde::de::DeserializeOwned;

/// How long a node may take to start and print its id.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to answer one command (the node itself gives up after 10 s).
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause between two looks of a poll.
const POLL: Duration = Duration::from_millis(50);

/// A `chaos_node` process.
pub struct ChaosNode {
    /// Its name (`n0`, `n1`, ...).
    pub name: String,
    /// Its node id, `name@127.0.0.1:port`.
    pub id: String,
    /// Its port.
    pub port: u16,
    seeds: Vec<String>,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// `false` once killed.
    running: bool,
}

impl ChaosNode {
    /// Starts a node named `name` on `port` (0: any) with these seeds, and waits for its id.
    pub fn start(name: &str, port: u16, seeds: &[String]) -> ChaosNode {
        ChaosNode::try_start(name, port, seeds).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Starts a node; `Err` with what it said if it did not start.
    pub fn try_start(name: &str, port: u16, seeds: &[String]) -> Result<ChaosNode, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chaos_node"));
        command.arg(name).arg("--port").arg(port.to_string());
        for seed in seeds {
            command.arg("--seed").arg(seed);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chaos_node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let label = name.to_owned();
        // Shown with the test's output (captured, so printed only when it fails).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label} stderr] {line}");
            }
        });
        let mut node = ChaosNode {
            name: name.to_owned(),
            id: String::new(),
            port,
            seeds: seeds.to_vec(),
            stdin: child.stdin.take(),
            child,
            lines,
            running: true,
        };
        let first = node.next_line(START_TIMEOUT, "its READY line");
        let Some(id) = first.strip_prefix("READY ") else {
            return Err(format!("did not start: {first}"));
        };
        node.id = id.to_owned();
        node.port = id
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the node id");
        Ok(node)
    }

    /// Starts a node again, in a new OS process, under the same name, port and seeds.
    /// A port can stay taken for a moment after the old process died: tries a few times.
    pub fn restart(&mut self) {
        assert!(!self.running, "restart of {} while it runs", self.name);
        let mut last = String::new();
        for _ in 0..20 {
            match ChaosNode::try_start(&self.name, self.port, &self.seeds) {
                Ok(node) => {
                    assert_eq!(node.id, self.id, "restarted under another id");
                    *self = node;
                    return;
                }
                Err(e) => {
                    eprintln!("{} did not restart yet: {e}", self.name);
                    last = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!(
            "{} did not restart on port {}: {last}",
            self.name, self.port
        );
    }

    fn next_line(&mut self, timeout: Duration, what: &str) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{} gave no {what} within {timeout:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{} closed its output before {what}", self.name)
            }
        }
    }

    /// Sends a command; its answer: `Ok(payload)` or `Err(message)`.
    pub fn cmd(&mut self, command: &str) -> Result<String, String> {
        assert!(
            self.running,
            "command {command:?} to {} after its kill",
            self.name
        );
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{} does not take commands: {e}", self.name));
        let what = format!("answer to {command:?}");
        let line = self.next_line(REPLY_TIMEOUT, &what);
        if let Some(payload) = line.strip_prefix("OK ") {
            Ok(payload.to_owned())
        } else if let Some(message) = line.strip_prefix("ERR ") {
            Err(message.to_owned())
        } else {
            panic!("{} answered {command:?} with {line:?}", self.name)
        }
    }

    /// Sends a command that must succeed; its payload, decoded.
    pub fn ask<T: DeserializeOwned>(&mut self, command: &str) -> T {
        let payload = self
            .cmd(command)
            .unwrap_or_else(|e| panic!("{}: {command:?} failed: {e}", self.name));
        serde_json::from_str(&payload)
            .unwrap_or_else(|e| panic!("{}: {command:?} answered {payload:?}: {e}", self.name))
    }

    pub fn peers(&mut self) -> Vec<PeerLine> {
        self.ask("nodes")
    }

    pub fn peer_ids(&mut self) -> BTreeSet<String> {
        self.peers().into_iter().map(|p| p.id).collect()
    }

    pub fn tasks(&mut self) -> TaskReport {
        self.ask("tasks")
    }

    pub fn children(&mut self) -> Vec<ChildLine> {
        self.ask("children")
    }

    pub fn stats(&mut self) -> SupStats {
        self.ask("stats")
    }

    /// The workers running on this node: `(child id, pid)`.
    pub fn local(&mut self) -> Vec<(String, Pid)> {
        self.ask("local")
    }

    pub fn whereis(&mut self, name: &str) -> Option<Pid> {
        self.ask(&format!("whereis {name}"))
    }

    /// Spawns a holder under the global `name`.
    pub fn hold(&mut self, name: &str) -> Result<Pid, String> {
        let payload = self.cmd(&format!("hold {name}"))?;
        Ok(serde_json::from_str(&payload).expect("a pid"))
    }

    pub fn partition(&mut self, peer: &str, cut: bool) {
        let state = if cut { "on" } else { "off" };
        self.ask::<()>(&format!("partition {peer} {state}"));
    }

    /// The OS process id.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and waits for the process to end.
    pub fn kill(&mut self) {
        if self.running {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.stdin = None;
            self.running = false;
        }
    }

    /// Sends a signal to the process (`libc::SIGSTOP`, `libc::SIGCONT`).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid_t");
        // SAFETY: kill(2) on our own child, which is not reaped while `self` lives.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }
}

impl Drop for ChaosNode {
    fn drop(&mut self) {
        // Pass or fail, the process ends with the test (a stopped one too: SIGKILL).
        self.kill();
    }
}

/// Polls `look` until it returns `Some`, at most `timeout`; panics with `what` and the
/// last state seen (`describe`) if it never does.
pub fn wait_for<T>(what: &str, timeout: Duration, mut look: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = look() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `condition` until it holds, at most `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    wait_for(what, timeout, || condition().then_some(()))
}

/// Starts `n` nodes (`n0` first, the others seeded with it) and waits for the full mesh.
pub fn start_cluster(n: usize) -> Vec<ChaosNode> {
    let first = ChaosNode::start("n0", 0, &[]);
    let seed = vec![first.id.clone()];
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(ChaosNode::start(&format!("n{i}"), 0, &seed));
    }
    wait_full_mesh(&mut nodes, Duration::from_secs(20));
    nodes
}

/// Waits until every node of `nodes` is connected to exactly all the others.
pub fn wait_full_mesh(nodes: &mut [ChaosNode], timeout: Duration) {
    let all: BTreeSet<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let mut last = Vec::new();
    let meshed = poll(timeout, || {
        last = nodes.iter_mut().map(|n| n.peer_ids()).collect::<Vec<_>>();
        nodes.iter().zip(&last).all(|(node, peers)| {
            let mut expected = all.clone();
            expected.remove(&node.id);
            *peers == expected
        })
    });
    assert!(meshed, "no full mesh within {timeout:?}: {last:?}");
}

/// Polls `condition` until it holds or `timeout` passes; whether it held.
pub fn poll(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until the queue on `coordinator` reports every task completed; the report.
pub fn wait_all_tasks_done(coordinator: &mut ChaosNode, timeout: Duration) -> TaskReport {
    let mut last = None;
    let done = poll(timeout, || {
        let report = coordinator.tasks();
        let done = report.done_unique == report.total;
        last = Some(report);
        done
    });
    let report = last.expect("a report");
    assert!(done, "tasks lost (not done within {timeout:?}): {report:?}");
    report
}

/// Which workers run where: child id → `(node name, pid)` of each process running it,
/// from one look at every running node.
pub fn running_workers(nodes: &mut [ChaosNode]) -> BTreeMap<String, Vec<(String, Pid)>> {
    let mut running: BTreeMap<String, Vec<(String, Pid)>> = BTreeMap::new();
    for node in nodes.iter_mut().filter(|n| n.running) {
        for (id, pid) in node.local() {
            running
                .entry(id)
                .or_default()
                .push((node.name.clone(), pid));
        }
    }
    running
}

/// The children that provably ran twice at one moment: two looks at every node, one after
/// the other; a child with two processes each seen in both looks had them both running
/// throughout the time between the looks (a process seen at two moments runs between
/// them, and pids are never reused).
pub fn simultaneous_duplicates(nodes: &mut [ChaosNode]) -> Vec<(String, Vec<Pid>)> {
    let first = running_workers(nodes);
    let second = running_workers(nodes);
    let mut duplicates = Vec::new();
    for (id, seen) in &first {
        let both: Vec<Pid> = seen
            .iter()
            .filter(|(_, pid)| {
                second
                    .get(id)
                    .is_some_and(|s| s.iter().any(|(_, p)| p == pid))
            })
            .map(|(_, pid)| pid.clone())
            .collect();
        if both.len() > 1 {
            duplicates.push((id.clone(), both));
        }
    }
    duplicates
}

/// Waits until each of the `expected` child ids runs exactly once across `nodes`, and
/// nothing else runs; the placement (child id → node name).
pub fn wait_each_child_once(
    nodes: &mut [ChaosNode],
    expected: &BTreeSet<String>,
    timeout: Duration,
) -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    let settled = poll(timeout, || {
        last = running_workers(nodes);
        last.keys().cloned().collect::<BTreeSet<_>>() == *expected
            && last.values().all(|seen| seen.len() == 1)
    });
    assert!(
        settled,
        "children not running exactly once each within {timeout:?}: {last:?}"
    );
    last.into_iter()
        .map(|(id, mut seen)| (id, seen.remove(0).0))
        .collect()
}

/// Waits until the supervisor reports every child running on one of `allowed` nodes (ids)
/// and nothing waiting; its children.
pub fn wait_children_on(
    coordinator: &mut ChaosNode,
    allowed: &BTreeSet<String>,
    timeout: Duration,
) -> Vec<ChildLine> {
    let mut last = Vec::new();
    let placed = poll(timeout, || {
        last = coordinator.children();
        last.iter()
            .all(|c| c.node.as_ref().is_some_and(|n| allowed.contains(n)))
    });
    assert!(
        placed,
        "children not all running on {allowed:?} within {timeout:?}: {last:?}"
    );
    last
}

/// The node ids of `nodes`.
pub fn ids(nodes: &[ChaosNode]) -> BTreeSet<String> {
    nodes.iter().map(|n| n.id.clone()).collect()
}

/// Reports a phase's duration on the test's output.
pub struct Phase {
    start: Instant,
    test: &'static str,
}

impl Phase {
    pub fn new(test: &'static str) -> Phase {
        Phase {
            start: Instant::now(),
            test,
        }
    }

    pub fn log(&self, what: &str) {
        eprintln!(
            "[{} +{:>6.2}s] {what}",
            self.test,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// What every node's view of its peers must show, given where the children run and which
/// workers the queue (on `n0`) monitors: `n0` is linked to each child (its supervisor) and
/// monitors the workers that took tasks; no other node holds any tie.
pub fn expected_ties(
    coordinator: &str,
    here: &str,
    peer: &str,
    children_on: &BTreeMap<String, usize>,
    monitored: &BTreeMap<String, usize>,
) -> (u64, u64, u64) {
    let count = |map: &BTreeMap<String, usize>, node: &str| map.get(node).copied().unwrap_or(0);
    if here == coordinator {
        (
            count(monitored, peer) as u64,
            0,
            count(children_on, peer) as u64,
        )
    } else if peer == coordinator {
        (
            0,
            count(monitored, here) as u64,
            count(children_on, here) as u64,
        )
    } else {
        (0, 0, 0)
    }
}

/// Checks, until they hold or time runs out, that the ties between the nodes and the
/// process counts match the children and the queue's monitors: nothing leaked. `nodes[0]`
/// runs the supervisor and the queue; node `i` runs `base[i] + extra[i]` processes
/// besides its workers.
pub fn check_no_leaks(nodes: &mut [ChaosNode], base: &[usize], extra: &[usize]) {
    let coordinator = nodes[0].id.clone();
    let mut last = String::new();
    let clean = poll(Duration::from_secs(10), || {
        let children = nodes[0].children();
        let report = nodes[0].tasks();
        let mut children_on: BTreeMap<String, usize> = BTreeMap::new();
        for child in &children {
            let Some(node) = &child.node else {
                last = format!("child not running: {child:?}");
                return false;
            };
            *children_on.entry(node.clone()).or_insert(0) += 1;
        }
        for (node, watched) in &report.monitored {
            if *watched > children_on.get(node).copied().unwrap_or(0) {
                last = format!("the queue monitors more workers than run on {node}: {report:?}");
                return false;
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            let peers: Vec<PeerLine> = node.peers();
            for peer in &peers {
                let want = expected_ties(
                    &coordinator,
                    &node.id,
                    &peer.id,
                    &children_on,
                    &report.monitored,
                );
                let got = (peer.monitors_out, peer.monitors_in, peer.links);
                if got != want {
                    last = format!(
                        "{} → {}: (monitors out, in, links) {got:?}, expected {want:?}",
                        node.id, peer.id
                    );
                    return false;
                }
            }
            let procs: usize = node.ask("procs");
            let own = children_on.get(&node.id).copied().unwrap_or(0) + extra[i];
            if procs != base[i] + own {
                last = format!(
                    "{} runs {procs} processes, expected {} + {own}",
                    node.id, base[i]
                );
                return false;
            }
        }
        true
    });
    assert!(clean, "leak: {last}");
}
