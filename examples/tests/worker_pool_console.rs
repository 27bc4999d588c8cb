//! The `worker_pool` consoles driven by hand, as the README describes: a supervisor node
//! and a worker node, each reading commands on its standard input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_worker_pool");
const TIMEOUT: Duration = Duration::from_secs(20);

/// A node's process, killed (and waited for) when dropped.
struct Console {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// The `* ` lines (cluster events) read so far.
    events: Vec<String>,
}

impl Console {
    /// Starts a node; its id, once it listens, and its console past its greeting.
    fn start(args: &[&str]) -> (Console, String) {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take().expect("piped stdin");
        let mut console = Console {
            child,
            stdin,
            lines,
            events: Vec::new(),
        };
        let listening = console.line();
        let id = listening.strip_prefix("listening as ").expect("its id");
        assert!(console.line().contains("/help"), "no greeting");
        (console, id.to_owned())
    }

    /// The next line that is not a cluster event.
    fn line(&mut self) -> String {
        loop {
            let line = self.lines.recv_timeout(TIMEOUT).expect("a line in time");
            if !line.starts_with("* ") {
                return line;
            }
            self.events.push(line);
        }
    }

    /// Waits for a cluster event line that contains `needle`.
    fn event(&mut self, needle: &str) -> String {
        while !self.events.iter().any(|e| e.contains(needle)) {
            let line = self.lines.recv_timeout(TIMEOUT);
            let line = line.unwrap_or_else(|_| panic!("no {needle:?} in {:?}", self.events));
            if line.starts_with("* ") {
                self.events.push(line);
            }
        }
        let found = self.events.iter().find(|e| e.contains(needle));
        found.expect("found").clone()
    }

    /// Sends `command`; the first line of its answer.
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("the console reads");
        self.line()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn crash_names_a_missing_worker_and_batch_refuses_zero_tasks() {
    let (mut supervisor, id) = Console::start(&["supervisor", "--port", "0"]);
    let (mut worker, _) = Console::start(&["worker", "--name", "w1", "--seed", &id]);
    let added = supervisor.ask("/add-worker");
    assert!(added.starts_with("worker 1 runs on "), "{added}");

    // The worker node learns the worker's global name once it has joined.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let answer = worker.ask("/crash 1");
        if answer == "crashed; its supervisor restarts it" {
            break;
        }
        assert!(Instant::now() < deadline, "/crash 1 answered {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let missing = worker.ask("/crash 99");
    assert!(missing.starts_with("error: "), "{missing}");
    assert!(missing.contains("worker-99"), "{missing}");

    let zero = supervisor.ask("/batch 0");
    assert!(zero.starts_with("error: "), "{zero}");
    assert_eq!(supervisor.ask("/batch 2"), "tasks 1..2 queued");
}

#[test]
fn stats_count_only_the_idle_workers_that_run() {
    let (mut supervisor, _) = Console::start(&["supervisor", "--port", "0"]);
    let idle = |supervisor: &mut Console, want: &str| {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let queue = supervisor.ask("/stats");
            let (_summary, _distribution) = (supervisor.line(), supervisor.line());
            if queue.contains(&format!("idle_workers: {want},")) {
                return;
            }
            assert!(Instant::now() < deadline, "{want} idle wanted: {queue}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for n in 1..=3 {
        assert!(supervisor
            .ask("/add-worker")
            .starts_with(&format!("worker {n} ")));
    }
    idle(&mut supervisor, "3");
    assert_eq!(supervisor.ask("/remove-worker 1"), "removed");
    idle(&mut supervisor, "2");
    assert!(supervisor
        .ask("/crash 2")
        .starts_with("error: unknown command"));
}

#[test]
fn the_consoles_show_peers_up_and_a_wrong_secret() {
    let (mut supervisor, id) = Console::start(&["supervisor", "--port", "0"]);
    let (mut worker, worker_id) = Console::start(&["worker", "--name", "w1", "--seed", &id]);
    supervisor.event(&format!("* {worker_id} is up"));
    worker.event(&format!("* {id} is up"));
    let args = ["worker", "--name", "w2", "--seed", &id, "--secret", "wrong"];
    let (mut intruder, _) = Console::start(&args);
    let refused = intruder.event("refused");
    assert!(refused.contains("wrong cluster secret"), "{refused}");
}

#[test]
fn help_prints_the_usage_and_starts_nothing() {
    for args in [
        &["--help"][..],
        &["help"],
        &["worker", "--seed", "x@127.0.0.1:1", "-h"],
    ] {
        let output = Command::new(BIN).args(args).output().expect("it runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {:?}", output.status);
        assert!(
            stdout.starts_with("usage: worker_pool"),
            "{args:?}: {stdout}"
        );
    }
    let wrong = Command::new(BIN).arg("--bogus").output().expect("it runs");
    assert_eq!(wrong.status.code(), Some(2));
}
