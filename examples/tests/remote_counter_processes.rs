//! Three `remote_counter` processes on 127.0.0.1: they form a cluster and call each other's
//! counters; one is killed (SIGKILL) and the others report it down; one leaves gracefully
//! (`quit` on its stdin) and the last one reports it as shut down.
//!
//! The processes are watched through their stdout lines (`[name] keyword rest`), with a
//! deadline on every wait; nothing sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_remote_counter");
/// How long the processes may take to start, connect and answer their first calls.
const START_WAIT: Duration = Duration::from_secs(10);
/// How long a node may take to report a change (the heartbeat timeout is 3 s).
const CHANGE_WAIT: Duration = Duration::from_secs(6);

/// What the reader threads pass on.
enum Output {
    /// A line of a process's stdout or stderr.
    Line(usize, String),
    /// A process closed its stdout: it exited.
    Closed(usize),
}

/// The running processes and everything they printed. Dropping it kills and reaps them all,
/// whether the test passed or not.
struct Cluster {
    names: Vec<String>,
    ids: Vec<String>,
    children: Vec<Child>,
    output: Receiver<Output>,
    logs: Vec<Vec<String>>,
    closed: Vec<bool>,
    /// Processes allowed to exit (the ones the test stops).
    may_exit: Vec<bool>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// Starts `n` nodes named `node1`… on reserved ports, each seeded with the first.
    fn start(n: usize) -> Cluster {
        // Hold all the listeners at once so the ports differ, then free them for the nodes.
        let listeners: Vec<_> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        drop(listeners);

        let names: Vec<String> = (1..=n).map(|i| format!("node{i}")).collect();
        let ids: Vec<String> = names
            .iter()
            .zip(&ports)
            .map(|(name, port)| format!("{name}@127.0.0.1:{port}"))
            .collect();
        let (tx, output) = mpsc::channel();
        let mut cluster = Cluster {
            names: names.clone(),
            ids: ids.clone(),
            children: Vec::new(),
            output,
            logs: vec![Vec::new(); n],
            closed: vec![false; n],
            may_exit: vec![false; n],
        };
        for (index, (name, port)) in names.iter().zip(&ports).enumerate() {
            let mut command = Command::new(BIN);
            command
                .args(["--name", name, "--port", &port.to_string()])
                .args(["--secret", "process test secret"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if index > 0 {
                command.args(["--seed", &ids[0]]);
            }
            // Pushed at once, so that a failed start still drops (kills) the others.
            let child = command.spawn().expect("remote_counter starts");
            cluster.children.push(child);
            let child = cluster.children.last_mut().unwrap();
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            read_lines(index, stdout, "", tx.clone(), true);
            read_lines(index, stderr, "stderr: ", tx.clone(), false);
        }
        cluster
    }

    /// Collects output until `done` holds; fails with every log after `timeout`, or at once
    /// if a process exits that should not.
    fn wait_until(&mut self, what: &str, timeout: Duration, done: impl Fn(&Cluster) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(Output::Line(index, line)) => self.logs[index].push(line),
                Ok(Output::Closed(index)) => {
                    self.closed[index] = true;
                    if !self.may_exit[index] {
                        panic!(
                            "{} exited while waiting for {what}\n{}",
                            self.names[index],
                            self.dump()
                        );
                    }
                }
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// The index in node `index`'s log of its first line from `from` on that `matches`
    /// (given the line's keyword and the rest: `[name] keyword rest`).
    fn find(
        &self,
        index: usize,
        from: usize,
        matches: impl Fn(&str, &str) -> bool,
    ) -> Option<usize> {
        let prefix = format!("[{}] ", self.names[index]);
        (from..self.logs[index].len()).find(|&at| {
            let Some(line) = self.logs[index][at].strip_prefix(&prefix) else {
                return false;
            };
            let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
            matches(keyword, rest)
        })
    }

    /// Whether node `index` printed a successful call to `peer` in its lines from `from`.
    fn called(&self, index: usize, from: usize, peer: usize) -> bool {
        let answered = format!("{} get() -> ", self.ids[peer]);
        self.find(index, from, |keyword, rest| {
            keyword == "call" && rest.starts_with(&answered)
        })
        .is_some()
    }

    /// The index of node `index`'s first `node-down` line for `peer` from `from` on, with
    /// one of `reasons`.
    fn saw_down(&self, index: usize, from: usize, peer: usize, reasons: &[&str]) -> Option<usize> {
        self.find(index, from, |keyword, rest| {
            keyword == "node-down"
                && rest
                    .strip_prefix(self.ids[peer].as_str())
                    .and_then(|reason| reason.strip_prefix(' '))
                    .is_some_and(|reason| reasons.contains(&reason))
        })
    }

    fn marks(&self) -> Vec<usize> {
        self.logs.iter().map(Vec::len).collect()
    }

    fn dump(&self) -> String {
        let mut text = String::new();
        for (name, log) in self.names.iter().zip(&self.logs) {
            text.push_str(&format!("--- output of {name} ---\n"));
            for line in log {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

/// Passes every line of `pipe` on, and (for stdout) its end.
fn read_lines(
    index: usize,
    pipe: impl Read + Send + 'static,
    prefix: &'static str,
    tx: Sender<Output>,
    report_end: bool,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx
                .send(Output::Line(index, format!("{prefix}{line}")))
                .is_err()
            {
                return;
            }
        }
        if report_end {
            let _ = tx.send(Output::Closed(index));
        }
    });
}

#[test]
fn three_processes_report_a_killed_node_and_a_leaving_node_down() {
    let mut cluster = Cluster::start(3);
    let others = |me: usize| (0..3).filter(move |&i| i != me);

    // Every node sees the two others come up and gets answers from both.
    cluster.wait_until(
        "every node to report two node-ups and a call to each peer",
        START_WAIT,
        |c| {
            (0..3).all(|me| {
                others(me).all(|peer| {
                    let up = c.find(me, 0, |keyword, rest| {
                        keyword == "node-up" && rest.split(' ').next() == Some(c.ids[peer].as_str())
                    });
                    up.is_some() && c.called(me, 0, peer)
                })
            })
        },
    );

    // SIGKILL the seed: the survivors see its connection close (or, at worst, its
    // heartbeats stop), and go on calling each other.
    let killed = 0;
    cluster.may_exit[killed] = true;
    let marks = cluster.marks();
    cluster.children[killed].kill().expect("kill node1");
    cluster.children[killed].wait().expect("reap node1");
    cluster.wait_until(
        "the survivors to report node1 down, then call each other",
        CHANGE_WAIT,
        |c| {
            [1, 2].into_iter().all(|me| {
                let reasons = ["connection closed", "heartbeat timeout"];
                c.saw_down(me, marks[me], killed, &reasons)
                    .is_some_and(|at| c.called(me, at + 1, 3 - me))
            })
        },
    );

    // node2 leaves gracefully: node3 reports it down with reason shutdown, and node2 exits
    // with success.
    let leaving = 1;
    cluster.may_exit[leaving] = true;
    let marks = cluster.marks();
    let stdin = cluster.children[leaving].stdin.as_mut().unwrap();
    stdin.write_all(b"quit\n").expect("write to node2's stdin");
    stdin.flush().unwrap();
    cluster.wait_until(
        "node3 to report node2 down (shutdown), and node2 to exit",
        CHANGE_WAIT,
        |c| c.saw_down(2, marks[2], leaving, &["shutdown"]).is_some() && c.closed[leaving],
    );
    // Its stdout is closed: it has exited, so this does not block.
    let status = cluster.children[leaving].wait().expect("reap node2");
    assert!(
        status.success(),
        "node2 exited with {status}\n{}",
        cluster.dump()
    );
    assert!(
        cluster
            .find(leaving, 0, |keyword, _| keyword == "stopped")
            .is_some(),
        "node2 did not say it stopped\n{}",
        cluster.dump()
    );
}
