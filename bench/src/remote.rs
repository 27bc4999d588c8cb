//! The remote workloads: noex's two clustered nodes (with its default busy-wait, and again
//! with busy-waiting off) and the bare TCP limits (all in this process), ractor_cluster
//! (node B a child process) and Erlang/OTP (an escript and its peer node).
//!
//! Every library is set up once; then each step (the call ping-pong, the 16 B casts, the
//! 1 KiB casts, the large message) runs repetition 1 of every library, then repetition 2,
//! ..., so that drift of the machine hits all alike.
//!
//! noex: nodes A and B started with `Node::start(ClusterConfig::new(..).threads(2))` in this
//! OS process, each with 2 scheduler threads; the measuring task runs on A
//! (`Node::spawn_task`), the servers on B (`noex_side`). Bare (`bare_tcp`): two
//! [`BareThreads`](crate::bare::BareThreads) sets of 2 threads, the "A" side on one, the
//! "B" side on the other, over a loopback TCP connection with `TCP_NODELAY`.

use std::collections::BTreeMap;
use std::time::Duration;

mod bare_tcp;
mod noex_side;

use bare_tcp::BareRemote;
use noex_side::NoexRemote;

use crate::common::{Plan, Rep};
use crate::report::{Figure, Outcome, Report};

/// Bytes the bare stream writer buffers before a write (noex's writer batch).
const BARE_BATCH: usize = 256 * 1024;

/// The figures of the remote workloads, in table order:
/// (key, workload, label, unit, higher is better).
pub const FIGURES: [(&str, &str, &str, &str, bool); 18] = [
    (
        "call-p50",
        "remote-call",
        "remote call round trip, p50",
        "µs",
        false,
    ),
    (
        "call-p99",
        "remote-call",
        "remote call round trip, p99",
        "µs",
        false,
    ),
    (
        "call-p50-busy-off",
        "remote-call",
        "remote call round trip, p50, noex with busy-waiting off",
        "µs",
        false,
    ),
    (
        "call-p99-busy-off",
        "remote-call",
        "remote call round trip, p99, noex with busy-waiting off",
        "µs",
        false,
    ),
    (
        "cast16",
        "remote-cast",
        "remote cast, 16 B payload",
        "msg/s",
        true,
    ),
    (
        "cast16-mb",
        "remote-cast",
        "remote cast, 16 B payload",
        "MB/s",
        true,
    ),
    (
        "cast16-busy-off",
        "remote-cast",
        "remote cast, 16 B payload, noex with busy-waiting off",
        "msg/s",
        true,
    ),
    (
        "cast1k",
        "remote-cast",
        "remote cast, 1 KiB payload",
        "msg/s",
        true,
    ),
    (
        "cast1k-mb",
        "remote-cast",
        "remote cast, 1 KiB payload",
        "MB/s",
        true,
    ),
    (
        "big-p50",
        "remote-big",
        "small call p50 while 64 MiB is in flight",
        "µs",
        false,
    ),
    (
        "big-p99",
        "remote-big",
        "small call p99 while 64 MiB is in flight",
        "µs",
        false,
    ),
    (
        "big-max",
        "remote-big",
        "small call max while 64 MiB is in flight",
        "µs",
        false,
    ),
    (
        "big-transfer",
        "remote-big",
        "64 MiB message: send to handled",
        "ms",
        false,
    ),
    (
        "big-p99-vec",
        "remote-big",
        "small call p99 while 64 MiB is in flight, noex with a `Vec<u8>` payload",
        "µs",
        false,
    ),
    (
        "big-peak-sender",
        "remote-big",
        "peak memory growth of the sending node, 64 MiB `Bytes` (× its size)",
        "×",
        false,
    ),
    (
        "big-peak-receiver",
        "remote-big",
        "peak memory growth of the receiving node, 64 MiB `Bytes` (× its size)",
        "×",
        false,
    ),
    (
        "big-peak-sender-vec",
        "remote-big",
        "peak memory growth of the sending node, 64 MiB `Vec<u8>` (× its size)",
        "×",
        false,
    ),
    (
        "big-peak-receiver-vec",
        "remote-big",
        "peak memory growth of the receiving node, 64 MiB `Vec<u8>` (× its size)",
        "×",
        false,
    ),
];

/// Figures only noex has (its extra rows): the peers' cells stay empty.
fn noex_only(key: &str) -> bool {
    key == "big-p99-vec" || key.starts_with("big-peak") || key.ends_with("-busy-off")
}

/// One library's remote results, keyed by [`FIGURES`] keys.
pub type Results = BTreeMap<&'static str, Outcome>;

/// The per-repetition values of one library, keyed by [`FIGURES`] keys.
#[derive(Default)]
pub struct Samples {
    values: BTreeMap<&'static str, Vec<f64>>,
    failed: BTreeMap<&'static str, String>,
}

impl Samples {
    pub fn push(&mut self, key: &'static str, value: f64) {
        self.values.entry(key).or_default().push(value);
    }

    pub fn fail(&mut self, key: &'static str, error: String) {
        self.failed.insert(key, error);
    }

    pub fn has_failed(&self, key: &'static str) -> bool {
        self.failed.contains_key(key)
    }

    pub fn results(mut self) -> Results {
        let mut out = Results::new();
        for (key, error) in std::mem::take(&mut self.failed) {
            out.insert(key, Outcome::skipped(error));
        }
        for (key, values) in self.values {
            out.entry(key)
                .or_insert_with(|| Outcome::from_samples(values));
        }
        out
    }
}

/// One measured step of the remote workloads; a repetition of it gives a value for each of
/// its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Small calls one at a time: p50, p99.
    Call,
    /// 16-byte casts: msg/s, MB/s.
    Cast16,
    /// 1 KiB casts: msg/s, MB/s.
    Cast1k,
    /// Small calls while a large message is in flight: p50, p99, max, transfer time.
    Big,
    /// noex only: the same with a `Vec<u8>` payload: p99.
    BigVec,
    /// noex only: each node's peak memory during one large message, in two fresh OS
    /// processes (see `big_memory`), with a `Bytes` and with a `Vec<u8>` payload.
    BigMemory,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::Call,
        Step::Cast16,
        Step::Cast1k,
        Step::Big,
        Step::BigVec,
        Step::BigMemory,
    ];

    fn workload(self) -> &'static str {
        match self {
            Step::Call => "remote-call",
            Step::Cast16 | Step::Cast1k => "remote-cast",
            Step::Big | Step::BigVec | Step::BigMemory => "remote-big",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Step::Call => "remote call",
            Step::Cast16 => "remote cast 16 B",
            Step::Cast1k => "remote cast 1 KiB",
            Step::Big => "remote big",
            Step::BigVec => "remote big (Vec<u8>)",
            Step::BigMemory => "remote big, peak memory",
        }
    }
}

/// The figure keys of each step for noex (default busy-wait) and the peers that do it.
pub fn standard_keys(step: Step) -> &'static [&'static str] {
    match step {
        Step::Call => &["call-p50", "call-p99"],
        Step::Cast16 => &["cast16", "cast16-mb"],
        Step::Cast1k => &["cast1k", "cast1k-mb"],
        Step::Big => &["big-p50", "big-p99", "big-max", "big-transfer"],
        Step::BigVec => &["big-p99-vec"],
        Step::BigMemory => &[
            "big-peak-sender",
            "big-peak-receiver",
            "big-peak-sender-vec",
            "big-peak-receiver-vec",
        ],
    }
}

/// ractor_cluster's and Erlang's keys: every step but noex's `Vec<u8>` variant.
pub fn peer_keys(step: Step) -> &'static [&'static str] {
    match step {
        Step::BigVec | Step::BigMemory => &[],
        _ => standard_keys(step),
    }
}

fn noex_busy_off_keys(step: Step) -> &'static [&'static str] {
    match step {
        Step::Call => &["call-p50-busy-off", "call-p99-busy-off"],
        Step::Cast16 => &["cast16-busy-off"],
        _ => &[],
    }
}

fn bare_keys(step: Step) -> &'static [&'static str] {
    match step {
        Step::Call | Step::Cast16 | Step::Cast1k => standard_keys(step),
        _ => &[],
    }
}

/// One library set up for the remote workloads.
pub trait Remote {
    /// One repetition of `step`: a value for each of the session's keys for it, in order.
    fn rep(&mut self, step: Step, plan: &Plan) -> Rep<Vec<f64>>;
}

/// A library in the interleaved loop: its column, its keys per step, and its set-up (or
/// why it could not be set up).
struct Session {
    name: &'static str,
    column: &'static str,
    keys: fn(Step) -> &'static [&'static str],
    remote: Result<Box<dyn Remote>, String>,
    samples: Samples,
}

impl Session {
    fn new(
        name: &'static str,
        column: &'static str,
        keys: fn(Step) -> &'static [&'static str],
        remote: Result<Box<dyn Remote>, String>,
    ) -> Session {
        if let Err(error) = &remote {
            eprintln!("{name}: {error}");
        }
        Session {
            name,
            column,
            keys,
            remote,
            samples: Samples::default(),
        }
    }
}

/// The frame sizes noex puts on the wire, which the bare limits send.
#[derive(Debug, Clone, Copy)]
pub struct Frames {
    call: usize,
    reply: usize,
    cast16: usize,
    cast1k: usize,
}

pub fn run(plan: &Plan, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
    let mut sessions = Vec::new();

    // noex with its default busy-wait; its frame sizes for the bare limits.
    let noex = NoexRemote::start(noex::DEFAULT_BUSY_WAIT, false)
        .and_then(|mut noex| noex.frames(plan).map(|frames| (noex, frames)));
    let frames = match noex {
        Ok((noex, frames)) => {
            sessions.push(Session::new(
                "noex",
                "noex",
                standard_keys,
                Ok(Box::new(noex)),
            ));
            Ok(frames)
        }
        Err(error) => {
            sessions.push(Session::new(
                "noex",
                "noex",
                standard_keys,
                Err(error.clone()),
            ));
            Err(format!("needs noex's frame sizes: {error}"))
        }
    };
    report.notes.push(format!(
        "remote, noex: busy-wait {} µs (the default) unless the row says busy-waiting off (`busy_wait(Duration::ZERO)`: a second pair of nodes, A and B, both with it off)",
        noex::DEFAULT_BUSY_WAIT.as_micros()
    ));
    if let Ok(frames) = frames {
        report.notes.push(format!(
            "remote call: {} timed u64 calls per repetition, one at a time; noex's call frame is {} B and its reply frame {} B on the wire, the bare ping-pong sends frames of these sizes",
            plan.remote_calls, frames.call, frames.reply
        ));
        for (size, count, frame) in [
            (16, plan.remote_casts_small, frames.cast16),
            (1024, plan.remote_casts_large, frames.cast1k),
        ] {
            report.notes.push(format!(
                "remote cast {size} B: {count} casts per repetition (a `Vec<u8>` payload); noex's cast frame is {frame} B, the bare batched stream sends frames of this size in 256 KiB writes; MB/s counts payload bytes (10^6)"
            ));
        }
    }
    if wanted("remote-big") {
        report.notes.push(
            "remote big, peak memory (noex): each repetition is two fresh OS processes, node A and node B (this binary re-executed); each node resets its peak resident memory (`/proc/self/clear_refs`) before A makes the payload and casts it to a process on B, and reads it (`VmHWM`) once that process has handled it: (peak − resident before) ÷ the message's size, the payload included".into(),
        );
    }
    // noex with busy-waiting off: its own pair of nodes (warmed like the first).
    let busy_off = NoexRemote::start(Duration::ZERO, true)
        .and_then(|mut noex| noex.frames(plan).map(|_| noex));
    sessions.push(Session::new(
        "noex, busy-waiting off",
        "noex",
        noex_busy_off_keys,
        busy_off.map(|n| Box::new(n) as Box<dyn Remote>),
    ));
    sessions.push(Session::new(
        "bare",
        "bare",
        bare_keys,
        frames.map(|f| Box::new(BareRemote::new(f)) as Box<dyn Remote>),
    ));
    let ractor = crate::ractor_cluster_impl::RactorRemote::start();
    if let Err(error) = &ractor {
        report
            .notes
            .push(format!("ractor_cluster could not run: {error}"));
    }
    sessions.push(Session::new(
        "ractor_cluster",
        "ractor",
        peer_keys,
        ractor.map(|r| Box::new(r) as Box<dyn Remote>),
    ));
    let erlang = crate::erlang::ErlangRemote::start(plan);
    match &erlang {
        Ok(erlang) => report.notes.push(format!(
            "Erlang/OTP {}: two VMs (escript node + `peer` node), +S 2:2 each, gen_server call/cast, binaries as payloads",
            erlang.release()
        )),
        Err(error) => report.notes.push(format!("Erlang/OTP not measured: {error}")),
    }
    sessions.push(Session::new(
        "erlang",
        "erlang",
        peer_keys,
        erlang.map(|e| Box::new(e) as Box<dyn Remote>),
    ));
    crate::progress("remote: set up");

    for step in Step::ALL {
        if !wanted(step.workload()) {
            continue;
        }
        for rep in 0..plan.reps {
            for session in sessions.iter_mut() {
                let keys = (session.keys)(step);
                let Some(first) = keys.first() else { continue };
                let Ok(remote) = session.remote.as_mut() else {
                    continue;
                };
                if session.samples.has_failed(first) {
                    continue;
                }
                match remote.rep(step, plan) {
                    Ok(values) if values.len() == keys.len() => {
                        for (key, value) in keys.iter().zip(values) {
                            session.samples.push(key, value);
                        }
                    }
                    Ok(values) => {
                        for key in keys {
                            session.samples.fail(
                                key,
                                format!("{} values for {} figures", values.len(), keys.len()),
                            );
                        }
                    }
                    Err(error) => {
                        eprintln!("  {} {}: {error}", session.name, step.describe());
                        for key in keys {
                            session.samples.fail(key, error.clone());
                        }
                    }
                }
            }
            crate::progress(&format!(
                "{}: repetition {}/{}",
                step.describe(),
                rep + 1,
                plan.reps
            ));
        }
    }

    // The columns: each session's results (set-up failures on every key it has).
    let mut columns: BTreeMap<&'static str, Results> = BTreeMap::new();
    for session in sessions {
        let column = columns.entry(session.column).or_default();
        match &session.remote {
            Ok(_) => column.extend(session.samples.results()),
            Err(error) => {
                for step in Step::ALL {
                    for key in (session.keys)(step) {
                        column.insert(key, Outcome::skipped(error.clone()));
                    }
                }
            }
        }
        drop(session.remote);
    }
    let skipped_peers = [
        (
            "kameo",
            "kameo's remote actors run over libp2p (feature `remote`), not benchmarked here",
        ),
        ("actix", "actix has no distribution"),
    ];
    for (key, workload, label, unit, higher) in FIGURES {
        if !wanted(workload) {
            continue;
        }
        let mut figure = Figure::new(workload, label, unit, higher);
        for (library, results) in &columns {
            if let Some(outcome) = results.get(key) {
                figure.set(library, outcome.clone());
            }
        }
        // A busy-waiting-off row is held against the same bare limit as its default row
        // (the bare ping-pong parks too): shown again there, with noex's ratio to it.
        if let Some(bare) = key
            .strip_suffix("-busy-off")
            .and_then(|base| columns.get("bare")?.get(base))
        {
            figure.set("bare", bare.clone());
        }
        if !noex_only(key) {
            for (library, reason) in skipped_peers {
                figure.set(library, Outcome::skipped(reason));
            }
        }
        report.figures.push(figure);
    }
}
