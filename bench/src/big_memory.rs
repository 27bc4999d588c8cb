//! Peak memory of each node while one large message goes from one to the other (issue 15,
//! item 2: at most 3× the message's size on each node).
//!
//! Each repetition is two fresh OS processes, one node each, so that each node's resident
//! memory is its own and nothing is left from an earlier message: this binary re-executed
//! as `__noex-big-a SIZE KIND`, which starts node B as `__noex-big-b` (its child), then
//! node A, spawns a [`PeakSink`] on B, and measures one message of SIZE bytes (a
//! `noex::Bytes`, or a `Vec<u8>`) from a process on A to it. Each node resets its peak
//! (`/proc/self/clear_refs`) just before the payload is made, and reads it (`VmHWM`) once
//! the sink has handled the message: the growth of the peak over the memory resident
//! before, the payload included, divided by SIZE.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use noex::{behavior, Bytes, ClusterConfig, Node};

use crate::common::{child_pair, rss_bytes, smol_limit, Rep, PHASE_LIMIT, THREADS};

/// Takes large messages and reports its node's memory.
#[behavior(name = "noex-bench-peak-sink")]
pub struct PeakSink {
    handled: u64,
}

#[behavior]
impl PeakSink {
    #[init]
    fn init() -> Self {
        PeakSink { handled: 0 }
    }

    #[cast]
    fn take(&mut self, payload: Bytes) {
        std::hint::black_box(payload.last());
        self.handled += 1;
    }

    #[cast]
    fn take_vec(&mut self, payload: Vec<u8>) {
        std::hint::black_box(payload.last());
        self.handled += 1;
    }

    #[call]
    fn handled(&self) -> u64 {
        self.handled
    }

    /// Resets this node's peak; its resident bytes now.
    #[call]
    fn reset_peak(&self) -> u64 {
        reset_peak();
        rss_bytes().unwrap_or(0)
    }

    /// This node's peak resident bytes since the last reset.
    #[call]
    fn peak(&self) -> u64 {
        peak_bytes().unwrap_or(0)
    }
}

/// Resets this process's peak resident memory to what is resident now.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory (`VmHWM`) in bytes.
fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::new(name)
        .secret("noex side-by-side bench")
        .threads(THREADS)
        .register_behaviors()
}

/// One repetition: (sender's, receiver's) peak growth ÷ `size`, for a `Bytes` payload or
/// (`vec`) a `Vec<u8>`.
pub fn measure(size: usize, vec: bool) -> Rep<(f64, f64)> {
    let kind = if vec { "vec" } else { "bytes" };
    child_pair(&["__noex-big-a", &size.to_string(), kind], "peak")
}

/// Node B: `__noex-big-b`. Prints its node id, runs until stdin closes.
pub fn b_child() -> ExitCode {
    let node = match smol::block_on(Node::start(config("bench-peak-b"))) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", node.local_node_id().expect("clustered"));
    let _ = std::io::stdout().flush();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    // Exit at once: tearing the node down is not measured.
    std::process::exit(0)
}

/// Node A: `__noex-big-a SIZE KIND`. Prints `peak <sender> <receiver>`.
pub fn a_child(args: &[String]) -> ExitCode {
    let (Some(size), Some(kind)) = (args.first().and_then(|s| s.parse().ok()), args.get(1)) else {
        eprintln!("usage: __noex-big-a SIZE bytes|vec");
        return ExitCode::FAILURE;
    };
    match a_measure(size, kind == "vec") {
        Ok((sender, receiver)) => {
            println!("peak {sender} {receiver}");
            std::process::exit(0)
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn a_measure(size: usize, vec: bool) -> Rep<(f64, f64)> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut b = Command::new(exe)
        .arg("__noex-big-b")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start node B: {e}"))?;
    let mut b_id = String::new();
    BufReader::new(b.stdout.take().ok_or("no stdout")?)
        .read_line(&mut b_id)
        .map_err(|e| e.to_string())?;
    let measured = smol_limit("the peak memory measure", async {
        let a = Node::start(config("bench-peak-a").seed(b_id.trim()))
            .await
            .map_err(|e| e.to_string())?;
        let b_id = b_id.trim().parse().map_err(|e| format!("{e:?}"))?;
        let started = Instant::now();
        while a.connected_nodes().len() != 1 {
            if started.elapsed() > PHASE_LIMIT {
                return Err("node B never connected".to_owned());
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        let sink = a
            .spawn_on::<PeakSink>(&b_id, ())
            .await
            .map_err(|e| e.to_string())?;
        let task = a.spawn_task(async move {
            let failed = |e: noex::CallError| e.to_string();
            let b_before = sink.reset_peak().await.map_err(failed)?;
            reset_peak();
            let a_before = rss_bytes().unwrap_or(0);
            let payload = vec![0x5a_u8; size];
            let sent = if vec {
                sink.take_vec(payload)
            } else {
                sink.take(Bytes::from(payload))
            };
            sent.map_err(|e| e.to_string())?;
            while sink.handled().await.map_err(failed)? == 0 {
                if started.elapsed() > PHASE_LIMIT {
                    return Err("the message never arrived".to_owned());
                }
                smol::Timer::after(Duration::from_millis(1)).await;
            }
            let a_peak = peak_bytes().unwrap_or(0);
            let b_peak = sink.peak().await.map_err(failed)?;
            let ratio = |peak: u64, before: u64| peak.saturating_sub(before) as f64 / size as f64;
            Ok((ratio(a_peak, a_before), ratio(b_peak, b_before)))
        });
        task.await
    });
    let _ = b.kill();
    let _ = b.wait();
    measured?
}
