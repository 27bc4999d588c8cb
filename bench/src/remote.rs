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
//! (`Node::spawn_task`), the servers on B. Bare: two [`BareThreads`] sets of 2 threads, the
//! "A" side on one, the "B" side on the other, over a loopback TCP connection with
//! `TCP_NODELAY`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use futures_lite::io::BufReader;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use noex::{behavior, ClusterConfig, Node, SendError, ServerRef, TrafficStats};
use smol::future::yield_now;

use crate::bare::BareThreads;
use crate::common::{percentile, smol_limit, Plan, Rep, CAST_CHUNK, PHASE_LIMIT, THREADS};
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

// ---------------------------------------------------------------------------------------
// noex behaviours

/// Answers `echo` with its argument.
#[behavior(name = "noex-bench-echo")]
pub struct Echo;

#[behavior]
impl Echo {
    #[init]
    fn init() -> Self {
        Echo
    }

    #[call]
    fn echo(&self, value: u64) -> u64 {
        value
    }
}

/// Large messages the [`Sink`] has handled (it is on another node of this OS process).
static BIG_RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Counts what it is cast.
#[behavior(name = "noex-bench-sink")]
pub struct Sink {
    messages: u64,
    bytes: u64,
}

#[behavior]
impl Sink {
    #[init]
    fn init() -> Self {
        Sink {
            messages: 0,
            bytes: 0,
        }
    }

    #[cast]
    fn take(&mut self, payload: Vec<u8>) {
        self.messages += 1;
        self.bytes += payload.len() as u64;
    }

    /// (messages, bytes) taken since the last `take_count`.
    #[call]
    fn take_count(&mut self) -> (u64, u64) {
        let counts = (self.messages, self.bytes);
        self.messages = 0;
        self.bytes = 0;
        counts
    }

    #[cast]
    fn big(&mut self, payload: Vec<u8>) {
        std::hint::black_box(payload.last());
        BIG_RECEIVED.fetch_add(1, Ordering::Release);
    }

    #[cast]
    fn big_blob(&mut self, payload: noex::Bytes) {
        std::hint::black_box(payload.last());
        BIG_RECEIVED.fetch_add(1, Ordering::Release);
    }
}

/// Set if the `Blaster` could not queue its large message.
static BLAST_FAILED: AtomicBool = AtomicBool::new(false);

/// A process on A that sends the large message (a process, so that the small calls, from
/// a plain task, are not ordered behind it).
#[behavior(name = "noex-bench-blaster")]
pub struct Blaster {
    payload: Vec<u8>,
}

#[behavior(local)]
impl Blaster {
    #[init]
    fn init() -> Self {
        Blaster {
            payload: Vec::new(),
        }
    }

    /// Builds the next large payload (outside the timed window).
    #[call]
    fn prepare(&mut self, size: usize) {
        self.payload = vec![0x5a; size];
    }

    #[cast]
    fn blast(&mut self, sink: ServerRef<Sink>, blob: bool) {
        let payload = std::mem::take(&mut self.payload);
        let sent = if blob {
            sink.big_blob(noex::Bytes::from(payload))
        } else {
            sink.big(payload)
        };
        if let Err(error) = sent {
            eprintln!("the large cast failed: {error}");
            BLAST_FAILED.store(true, Ordering::Release);
        }
    }
}

// ---------------------------------------------------------------------------------------
// noex measurements

fn start_nodes(busy_wait: Duration) -> Rep<(Node, Node)> {
    let config = |name: &str| {
        ClusterConfig::new(name)
            .secret("noex side-by-side bench")
            .threads(THREADS)
            .busy_wait(busy_wait)
    };
    smol_limit("starting the noex nodes", async {
        let suffix = if busy_wait.is_zero() { "-busy-off" } else { "" };
        let a = Node::start(config(&format!("bench-a{suffix}")))
            .await
            .map_err(|e| e.to_string())?;
        let seed = a.local_node_id().ok_or("not clustered")?.to_string();
        let b = Node::start(config(&format!("bench-b{suffix}")).seed(seed))
            .await
            .map_err(|e| e.to_string())?;
        while a.connected_nodes().len() != 1 || b.connected_nodes().len() != 1 {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        Ok::<_, String>((a, b))
    })?
}

/// Average bytes per message sent by a node between two counter readings.
fn frame_size(before: TrafficStats, after: TrafficStats) -> usize {
    let messages = after.messages_sent - before.messages_sent;
    let bytes = after.bytes_sent - before.bytes_sent;
    (bytes as f64 / messages.max(1) as f64).round() as usize
}

/// `warmup` then `samples` timed calls from a task on A (ns, sorted).
fn noex_calls(a: &Node, echo: &ServerRef<Echo>, warmup: u64, samples: u64) -> Rep<Vec<u64>> {
    let echo = echo.clone();
    let mut times = smol_limit(
        "noex remote calls",
        a.spawn_task(async move {
            let mut times = Vec::with_capacity(samples as usize);
            for i in 0..warmup + samples {
                let start = Instant::now();
                let answer = echo.echo(i).await;
                let elapsed = start.elapsed();
                if answer != Ok(i) {
                    return Err(format!("remote call failed: {answer:?}"));
                }
                if i >= warmup {
                    times.push(elapsed.as_nanos() as u64);
                }
            }
            Ok(times)
        }),
    )??;
    times.sort_unstable();
    Ok(times)
}

/// Casts `count` payloads of `size` bytes from a task on A; the time until a final call
/// (ordered behind the casts) returns the sink's count.
fn noex_casts(a: &Node, sink: &ServerRef<Sink>, count: u64, size: usize) -> Rep<Duration> {
    let sink = sink.clone();
    smol_limit(
        "noex remote casts",
        a.spawn_task(async move {
            let payload = vec![7u8; size];
            let start = Instant::now();
            for i in 0..count {
                loop {
                    match sink.take(payload.clone()) {
                        Ok(()) => break,
                        Err(SendError::Overloaded) => yield_now().await,
                        Err(error) => return Err(format!("remote cast failed: {error}")),
                    }
                }
                if i % CAST_CHUNK == CAST_CHUNK - 1 {
                    yield_now().await;
                }
            }
            let counted = sink.take_count().await.map_err(|e| e.to_string())?;
            let elapsed = start.elapsed();
            if counted != (count, count * size as u64) {
                return Err(format!("the sink counted {counted:?} of {count} casts"));
            }
            Ok(elapsed)
        }),
    )?
}

/// One large message from a `Blaster` process on A; small calls to `echo` from a task on A
/// while it is in flight, until B's sink has handled it (ns, sorted).
fn noex_big(
    a: &Node,
    echo: &ServerRef<Echo>,
    sink: &ServerRef<Sink>,
    size: usize,
    blob: bool,
) -> Rep<(Vec<u64>, Duration)> {
    let (echo, sink, node) = (echo.clone(), sink.clone(), a.clone());
    let (mut calls, transfer) = smol_limit(
        "noex small calls during a large transfer",
        a.spawn_task(async move {
            let blaster = node.spawn::<Blaster>(()).await.map_err(|e| e.to_string())?;
            blaster.prepare(size).await.map_err(|e| e.to_string())?;
            let before = BIG_RECEIVED.load(Ordering::Acquire);
            let start = Instant::now();
            blaster
                .blast(sink.clone(), blob)
                .map_err(|e| e.to_string())?;
            let mut calls = Vec::new();
            let mut i = 0u64;
            while BIG_RECEIVED.load(Ordering::Acquire) == before {
                if BLAST_FAILED.load(Ordering::Acquire) {
                    return Err("the large cast failed".to_owned());
                }
                if start.elapsed() > PHASE_LIMIT {
                    return Err("the large message never arrived".to_owned());
                }
                let call = Instant::now();
                let answer = echo.echo(i).await;
                calls.push(call.elapsed().as_nanos() as u64);
                if answer != Ok(i) {
                    return Err(format!("small call failed: {answer:?}"));
                }
                i += 1;
            }
            let transfer = start.elapsed();
            let _ = blaster.stop(noex::ExitReason::Normal).await;
            Ok((calls, transfer))
        }),
    )??;
    calls.sort_unstable();
    Ok((calls, transfer))
}

/// noex's nodes A and B and the servers on B (references from A).
struct NoexRemote {
    a: Node,
    b: Node,
    echo: ServerRef<Echo>,
    sink: ServerRef<Sink>,
    /// The busy-waiting-off session: calls and 16 B casts only, msg/s only.
    busy_off: bool,
}

impl NoexRemote {
    fn start(busy_wait: Duration, busy_off: bool) -> Rep<NoexRemote> {
        let (a, b) = start_nodes(busy_wait)?;
        let echo = smol_limit("spawning echo", b.spawn::<Echo>(()))?.map_err(|e| e.to_string())?;
        let sink = smol_limit("spawning sink", b.spawn::<Sink>(()))?.map_err(|e| e.to_string())?;
        let echo = a
            .server_ref::<Echo>(echo.pid())
            .map_err(|e| e.to_string())?;
        let sink = a
            .server_ref::<Sink>(sink.pid())
            .map_err(|e| e.to_string())?;
        Ok(NoexRemote {
            a,
            b,
            echo,
            sink,
            busy_off,
        })
    }

    /// Untimed: 100 calls and a round of each cast size (a tenth of a repetition), which
    /// warm the connection and measure the frames noex puts on the wire.
    fn frames(&mut self, plan: &Plan) -> Rep<Frames> {
        let (a0, b0) = (self.a.cluster_stats(), self.b.cluster_stats());
        std::hint::black_box(noex_calls(&self.a, &self.echo, 0, 100)?);
        let (call, reply) = (
            frame_size(a0, self.a.cluster_stats()),
            frame_size(b0, self.b.cluster_stats()),
        );
        let cast = |size: usize, count: u64| {
            let before = self.a.cluster_stats();
            noex_casts(&self.a, &self.sink, count / 10 + 1, size)?;
            Ok::<_, String>(frame_size(before, self.a.cluster_stats()))
        };
        let cast16 = cast(16, plan.remote_casts_small)?;
        let cast1k = cast(1024, plan.remote_casts_large)?;
        Ok(Frames {
            call,
            reply,
            cast16,
            cast1k,
        })
    }
}

impl Remote for NoexRemote {
    fn rep(&mut self, step: Step, plan: &Plan) -> Rep<Vec<f64>> {
        let cast_rates = |size: usize, count: u64| {
            let elapsed = noex_casts(&self.a, &self.sink, count, size)?;
            let rate = count as f64 / elapsed.as_secs_f64();
            Ok(if self.busy_off {
                vec![rate]
            } else {
                vec![rate, rate * size as f64 / 1e6]
            })
        };
        match step {
            Step::Call => {
                let t = noex_calls(
                    &self.a,
                    &self.echo,
                    plan.call_warmup / 10,
                    plan.remote_calls,
                )?;
                Ok(vec![
                    percentile(&t, 50.0) as f64 / 1e3,
                    percentile(&t, 99.0) as f64 / 1e3,
                ])
            }
            Step::Cast16 => cast_rates(16, plan.remote_casts_small),
            Step::Cast1k => cast_rates(1024, plan.remote_casts_large),
            Step::Big => {
                let (calls, transfer) =
                    noex_big(&self.a, &self.echo, &self.sink, plan.big_size, true)?;
                Ok(vec![
                    percentile(&calls, 50.0) as f64 / 1e3,
                    percentile(&calls, 99.0) as f64 / 1e3,
                    percentile(&calls, 100.0) as f64 / 1e3,
                    transfer.as_secs_f64() * 1e3,
                ])
            }
            Step::BigVec => {
                let (calls, _) = noex_big(&self.a, &self.echo, &self.sink, plan.big_size, false)?;
                Ok(vec![percentile(&calls, 99.0) as f64 / 1e3])
            }
            Step::BigMemory => {
                let (sender, receiver) = crate::big_memory::measure(plan.big_size, false)?;
                let (sender_vec, receiver_vec) = crate::big_memory::measure(plan.big_size, true)?;
                Ok(vec![sender, receiver, sender_vec, receiver_vec])
            }
        }
    }
}

impl Drop for NoexRemote {
    fn drop(&mut self) {
        self.a.shutdown();
        self.b.shutdown();
    }
}

/// The bare limits: two sets of bare threads, a fresh loopback connection per repetition.
struct BareRemote {
    side_a: BareThreads,
    side_b: BareThreads,
    frames: Frames,
}

impl BareRemote {
    fn new(frames: Frames) -> BareRemote {
        BareRemote {
            side_a: BareThreads::new(THREADS),
            side_b: BareThreads::new(THREADS),
            frames,
        }
    }
}

impl Remote for BareRemote {
    fn rep(&mut self, step: Step, plan: &Plan) -> Rep<Vec<f64>> {
        let stream = |size: usize, count: u64, frame: usize| {
            let elapsed = bare_stream(&self.side_a, &self.side_b, count, frame)?;
            let rate = count as f64 / elapsed.as_secs_f64();
            Ok(vec![rate, rate * size as f64 / 1e6])
        };
        match step {
            Step::Call => {
                let t = bare_ping_pong(
                    &self.side_a,
                    &self.side_b,
                    plan.call_warmup / 10,
                    plan.remote_calls,
                    self.frames.call,
                    self.frames.reply,
                )?;
                Ok(vec![
                    percentile(&t, 50.0) as f64 / 1e3,
                    percentile(&t, 99.0) as f64 / 1e3,
                ])
            }
            Step::Cast16 => stream(16, plan.remote_casts_small, self.frames.cast16),
            Step::Cast1k => stream(1024, plan.remote_casts_large, self.frames.cast1k),
            Step::Big | Step::BigVec | Step::BigMemory => Err("no bare large-message limit".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bare TCP

/// Reads one length-prefixed frame into `buffer`.
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    buffer.clear();
    buffer.resize(len, 0);
    reader.read_exact(buffer).await
}

/// A frame of `frame_len` bytes in all (prefix included).
fn frame(frame_len: usize, fill: u8) -> Vec<u8> {
    let body = frame_len.max(5) - 4;
    let mut frame = Vec::with_capacity(body + 4);
    frame.extend_from_slice(&(body as u32).to_be_bytes());
    frame.resize(body + 4, fill);
    frame
}

/// A connected pair of loopback sockets with `TCP_NODELAY`: (A's end, B's end).
async fn tcp_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (a, b) = futures_lite::future::zip(TcpStream::connect(address), listener.accept()).await;
    let (a, (b, _)) = (a?, b?);
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

/// Bare ping-pong: `warmup` then `samples` timed round trips (ns, sorted).
fn bare_ping_pong(
    side_a: &BareThreads,
    side_b: &BareThreads,
    warmup: u64,
    samples: u64,
    request_len: usize,
    reply_len: usize,
) -> Rep<Vec<u64>> {
    let (client, server) = smol_limit("bare tcp pair", tcp_pair())?.map_err(|e| e.to_string())?;
    let answering = side_b.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, server.clone());
        let mut writer = server;
        let reply = frame(reply_len, 2);
        let mut buffer = Vec::new();
        while read_frame(&mut reader, &mut buffer).await.is_ok() {
            std::hint::black_box(&buffer);
            if writer.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    let timing = side_a.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, client.clone());
        let mut writer = client;
        let request = frame(request_len, 1);
        let mut buffer = Vec::new();
        let mut times = Vec::with_capacity(samples as usize);
        for i in 0..warmup + samples {
            let start = Instant::now();
            writer
                .write_all(&request)
                .await
                .map_err(|e| e.to_string())?;
            read_frame(&mut reader, &mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            if i >= warmup {
                times.push(start.elapsed().as_nanos() as u64);
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
        Ok::<_, String>(times)
    });
    let mut times = smol_limit("bare ping-pong", timing)??;
    smol_limit("bare ping-pong server", answering)?;
    times.sort_unstable();
    Ok(times)
}

/// Bare batched stream of `count` frames of `frame_len` bytes: the time from the first
/// write until the reader has decoded the last frame.
fn bare_stream(
    side_a: &BareThreads,
    side_b: &BareThreads,
    count: u64,
    frame_len: usize,
) -> Rep<Duration> {
    let (client, server) = smol_limit("bare tcp pair", tcp_pair())?.map_err(|e| e.to_string())?;
    let reading = side_b.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, server);
        let mut buffer = Vec::new();
        let mut bytes = 0u64;
        for _ in 0..count {
            read_frame(&mut reader, &mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            bytes += buffer.len() as u64;
        }
        Ok::<_, String>((Instant::now(), bytes))
    });
    let writing = side_a.spawn(0, |_| async move {
        let mut writer = client;
        let one = frame(frame_len, 3);
        let mut batch = Vec::with_capacity(BARE_BATCH + frame_len);
        let start = Instant::now();
        for i in 0..count {
            // The frame's bytes are copied into the batch, as noex's writer encodes them.
            batch.extend_from_slice(&one);
            std::hint::black_box(i);
            if batch.len() >= BARE_BATCH {
                writer.write_all(&batch).await.map_err(|e| e.to_string())?;
                batch.clear();
            }
        }
        writer.write_all(&batch).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((start, writer))
    });
    let (start, writer) = smol_limit("bare stream writer", writing)??;
    let (end, bytes) = smol_limit("bare stream reader", reading)??;
    drop(writer);
    if bytes != count * (frame_len.max(5) as u64 - 4) {
        return Err("the bare reader lost bytes".into());
    }
    Ok(end - start)
}
