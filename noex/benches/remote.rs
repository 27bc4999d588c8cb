//! Distribution benchmarks: two clustered nodes on 127.0.0.1 in this one OS process, next to
//! bare TCP baselines measured in the same run, on the same number of threads.
//!
//! Run with `cargo bench -p noex --bench remote`. It prints a markdown table. Under
//! `cargo test --benches` it is a smoke run with tiny counts (its figures mean nothing).
//!
//! Set-up: node A and node B each have [`THREADS`] scheduler thread(s) (`ClusterConfig::
//! threads`), so A, B and their connection tasks run on two threads; the bare baselines
//! run on [`BareThreads`] built the same way (one smol `Executor` per thread driven by
//! `block_on(executor.run(..))`), one thread for the "A" side and one for the "B" side. In
//! both cases the bench thread only waits in `smol::block_on` for the measuring task.
//!
//! * **Call round trip** — a task on A's scheduler thread (`Node::spawn_task`) calls
//!   `echo(u64) -> u64` on a `#[behavior]` server on B, one call at a time, and times each
//!   call. Against a bare TCP ping-pong: a task on bare thread A writes one length-prefixed
//!   frame (`write_all`, `TCP_NODELAY`) and reads the answer frame (`BufReader` +
//!   `read_exact`, as noex's reader does), a task on bare thread B answers each frame. The
//!   bare frames have the sizes noex's call and reply frames had on the wire (from the
//!   nodes' traffic counters).
//! * **Cast throughput** — a task on A casts `take(Vec<u8>)` with a 16-byte and a 1 KiB
//!   payload to a counting server on B, yielding every [`CAST_CHUNK`] casts (so A's writer
//!   task runs) and retrying after a yield on `Overloaded`; the clock stops when a final
//!   call (queued behind the casts on the same connection) returns the server's count,
//!   which must equal the casts sent. Against a bare batched stream: a writer task appends
//!   length-prefixed frames of noex's cast-frame size to a buffer and writes it whenever it
//!   holds 256 KiB (noex's batch size); a reader task (`BufReader` of 64 KiB) decodes frames
//!   and stops the clock at the last. msg/s and MB/s (of payload, 10^6 bytes) are the
//!   median of [`CAST_ROUNDS`] rounds, noex and bare alternating.
//! * **Small calls while 64 MiB is in flight** — a local `Blaster` *process* on A casts a
//!   64 MiB payload to B (so the small calls, from a non-process task, are not held behind
//!   it by per-sender ordering); meanwhile a task on A calls `echo` on B one call at a time
//!   and times each, from the moment the big cast is queued until B's server has handled
//!   the big message. [`BIG_ROUNDS`] transfers; p50/p99/max of all those calls. Twice: with
//!   the payload a `Vec<u8>` (what one writes; serde encodes it byte by byte) and `noex::Bytes`
//!   (encoded as one block of bytes, and received as a view of the arrived buffer). These calls are closed-loop: a call
//!   stuck behind a 50 ms stall is one sample, however many calls a steady caller would
//!   have had stuck; the "open-loop equivalent" p99 corrects for that (coordinated
//!   omission), counting for a call of `t` also `t − k·i` for every `k ≥ 1`, `i` being an
//!   idle call's median round trip. Also the process's peak resident memory during each
//!   transfer (`VmHWM`, restarted by writing 5 to `/proc/self/clear_refs` as the large
//!   cast is sent) less what it held then (the prepared payload included), over the
//!   message size: both nodes together, as they share this process.
//!
//! * **TLS** (with `--features tls`) — the call round trip p50 and the cast throughputs
//!   between two more nodes whose connection runs over TLS 1.3, against the plain nodes
//!   measured alternately.
//!
//! `NOEX_REMOTE_BENCH=calls,cast16,cast1k,big,big-blob,tls` runs only the listed
//! measurements (for profiling one of them).

mod common;
#[cfg(feature = "tls")]
#[path = "remote/tls.rs"]
mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use common::BareThreads;
use futures_lite::io::BufReader;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt, FutureExt};
use noex::{behavior, Bytes, ClusterConfig, Node, SendError, ServerRef, TrafficStats};
use smol::future::yield_now;

/// Scheduler threads per node (and per side of the bare baselines).
const THREADS: usize = 1;

/// A cast sender yields to its executor after this many messages.
const CAST_CHUNK: u64 = 256;

/// Rounds of each cast throughput measurement (the median is reported).
const CAST_ROUNDS: usize = 3;

/// The large message of the third measurement.
const BIG_SIZE: usize = 64 << 20;

/// How many large messages are sent, one after the other.
const BIG_ROUNDS: usize = 4;

/// Bytes the bare stream writer buffers before a write (noex's writer batch).
const BARE_BATCH: usize = 256 * 1024;

/// How long any single measurement may take before the run is abandoned.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// The counts of one run.
struct Plan {
    smoke: bool,
    call_warmup: u64,
    call_samples: u64,
    small_casts: u64,
    large_casts: u64,
    big_size: usize,
    big_rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Plan {
            smoke: false,
            call_warmup: 5_000,
            call_samples: 50_000,
            small_casts: 1_000_000,
            large_casts: 200_000,
            big_size: BIG_SIZE,
            big_rounds: BIG_ROUNDS,
        }
    }

    fn smoke() -> Self {
        Plan {
            smoke: true,
            call_warmup: 10,
            call_samples: 100,
            small_casts: 1_000,
            large_casts: 100,
            big_size: 1 << 20,
            big_rounds: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// noex behaviours

/// Answers `echo` with its argument.
#[behavior(name = "bench-remote-echo")]
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
#[behavior(name = "bench-remote-sink")]
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

    /// One message of the cast throughput measurement.
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

    /// The large message.
    #[cast]
    fn big(&mut self, payload: Vec<u8>) {
        std::hint::black_box(payload.last());
        BIG_RECEIVED.fetch_add(1, Ordering::Release);
    }

    /// The large message, encoded as one block of bytes.
    #[cast]
    fn big_blob(&mut self, payload: Bytes) {
        std::hint::black_box(payload.last());
        BIG_RECEIVED.fetch_add(1, Ordering::Release);
    }
}

/// Set if the `Blaster` could not queue its large message.
static BLAST_FAILED: AtomicBool = AtomicBool::new(false);

/// A process on A that sends the large message, so that it is sent by a process.
#[behavior(name = "bench-remote-blaster")]
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

    /// Casts the prepared payload to `sink` (as [`Bytes`] if `blob`).
    #[cast]
    fn blast(&mut self, sink: ServerRef<Sink>, blob: bool) {
        let payload = std::mem::take(&mut self.payload);
        let sent = if blob {
            sink.big_blob(Bytes::from(payload))
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
// Bare baselines

/// Reads one length-prefixed frame into `buffer`, as noex's reader does.
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
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let (a, b) = futures_lite::future::zip(TcpStream::connect(address), listener.accept()).await;
    let (a, (b, _)) = (a.expect("connect"), b.expect("accept"));
    a.set_nodelay(true).expect("nodelay");
    b.set_nodelay(true).expect("nodelay");
    (a, b)
}

/// Bare ping-pong: `warmup` then `samples` timed round trips; returns the times in ns.
fn bare_ping_pong(
    bare: &BareThreads,
    warmup: u64,
    samples: u64,
    request_len: usize,
    reply_len: usize,
) -> Vec<u64> {
    let (client, server) = block_on_limit("bare tcp_pair", tcp_pair());
    let answering = bare.spawn(1, |_| async move {
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
    let timing = bare.spawn(0, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, client.clone());
        let mut writer = client;
        let request = frame(request_len, 1);
        let mut buffer = Vec::new();
        let mut times = Vec::with_capacity(samples as usize);
        for i in 0..warmup + samples {
            let start = Instant::now();
            writer.write_all(&request).await.expect("bare write");
            read_frame(&mut reader, &mut buffer)
                .await
                .expect("bare read");
            if i >= warmup {
                times.push(start.elapsed().as_nanos() as u64);
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
        times
    });
    let times = block_on_limit("bare ping-pong", timing);
    block_on_limit("bare ping-pong server", answering);
    times
}

/// Bare batched stream of `count` frames of `frame_len` bytes; returns the time from the
/// first write until the reader has decoded the last frame.
fn bare_stream(bare: &BareThreads, count: u64, frame_len: usize) -> Duration {
    let (client, server) = block_on_limit("bare tcp_pair", tcp_pair());
    let reading = bare.spawn(1, |_| async move {
        let mut reader = BufReader::with_capacity(64 * 1024, server);
        let mut buffer = Vec::new();
        let mut bytes = 0u64;
        for _ in 0..count {
            read_frame(&mut reader, &mut buffer)
                .await
                .expect("bare read");
            bytes += buffer.len() as u64;
        }
        (Instant::now(), bytes)
    });
    let writing = bare.spawn(0, |_| async move {
        let mut writer = client;
        let one = frame(frame_len, 3);
        let mut batch = Vec::with_capacity(BARE_BATCH + frame_len);
        let start = Instant::now();
        for i in 0..count {
            // The frame's bytes are "encoded" into the batch, as noex's writer copies them.
            batch.extend_from_slice(&one);
            std::hint::black_box(i);
            if batch.len() >= BARE_BATCH {
                writer.write_all(&batch).await.expect("bare write");
                batch.clear();
            }
        }
        writer.write_all(&batch).await.expect("bare write");
        (start, writer)
    });
    let (start, writer) = block_on_limit("bare stream writer", writing);
    let (end, bytes) = block_on_limit("bare stream reader", reading);
    assert_eq!(bytes, count * (frame_len.max(5) as u64 - 4));
    drop(writer);
    end - start
}

// ---------------------------------------------------------------------------------------
// noex measurements

/// Runs `future` to completion on the bench thread, panicking after [`PHASE_LIMIT`].
fn block_on_limit<T>(what: &str, future: impl Future<Output = T>) -> T {
    smol::block_on(async { Some(future.await) }.or(async {
        smol::Timer::after(PHASE_LIMIT).await;
        None
    }))
    .unwrap_or_else(|| panic!("{what} did not finish within {PHASE_LIMIT:?}"))
}

/// Starts two connected nodes.
fn start_nodes() -> (Node, Node) {
    let config = |name: &str| {
        ClusterConfig::new(name)
            .secret("noex remote bench")
            .threads(THREADS)
    };
    block_on_limit("starting the nodes", async {
        let a = Node::start(config("bench-a")).await.expect("node a starts");
        let seed = a.local_node_id().expect("clustered").to_string();
        let b = Node::start(config("bench-b").seed(seed))
            .await
            .expect("node b starts");
        while a.connected_nodes().len() != 1 || b.connected_nodes().len() != 1 {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        (a, b)
    })
}

/// Traffic counters of `node`'s connections.
fn stats(node: &Node) -> TrafficStats {
    node.cluster_stats()
}

/// Average bytes per message sent by `node` between two counter readings.
fn frame_size(before: TrafficStats, after: TrafficStats) -> usize {
    let messages = after.messages_sent - before.messages_sent;
    let bytes = after.bytes_sent - before.bytes_sent;
    (bytes as f64 / messages.max(1) as f64).round() as usize
}

/// Remote call round trips from a task on A: `warmup`, then `samples` timed ones (ns).
fn noex_calls(a: &Node, echo: &ServerRef<Echo>, warmup: u64, samples: u64) -> Vec<u64> {
    let echo = echo.clone();
    block_on_limit(
        "remote calls",
        a.spawn_task(async move {
            let mut times = Vec::with_capacity(samples as usize);
            for i in 0..warmup + samples {
                let start = Instant::now();
                let answer = echo.echo(i).await;
                let elapsed = start.elapsed();
                assert_eq!(answer, Ok(i), "remote call failed");
                if i >= warmup {
                    times.push(elapsed.as_nanos() as u64);
                }
            }
            times
        }),
    )
}

/// Casts `count` payloads of `size` bytes from a task on A to `sink`; returns the time
/// until `sink` has handled them all.
fn noex_casts(a: &Node, sink: &ServerRef<Sink>, count: u64, size: usize) -> Duration {
    let sink = sink.clone();
    block_on_limit(
        "remote casts",
        a.spawn_task(async move {
            let payload = vec![7u8; size];
            let start = Instant::now();
            let mut overloaded = 0u64;
            for i in 0..count {
                loop {
                    match sink.take(payload.clone()) {
                        Ok(()) => break,
                        Err(SendError::Overloaded) => {
                            overloaded += 1;
                            yield_now().await;
                        }
                        Err(error) => panic!("remote cast failed: {error}"),
                    }
                }
                if i % CAST_CHUNK == CAST_CHUNK - 1 {
                    yield_now().await;
                }
            }
            let counted = sink.take_count().await.expect("final call failed");
            let elapsed = start.elapsed();
            assert_eq!(
                counted,
                (count, count * size as u64),
                "the sink did not get every cast"
            );
            std::hint::black_box(overloaded);
            elapsed
        }),
    )
}

/// What the large-message measurement saw.
struct BigRun {
    /// Small call round trips during the transfers (ns).
    calls: Vec<u64>,
    /// Time from the large cast to its handling on B, per transfer.
    transfers: Vec<Duration>,
    /// The process's peak resident memory during each transfer, less what it held
    /// before (bytes; empty where Linux's `/proc/self` is not there).
    peaks: Vec<u64>,
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), if there is one.
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Starts a new peak of resident memory (`VmHWM`) at the current resident memory, and
/// returns that: the base the next peak is measured from.
fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    proc_status("VmRSS:")
}

/// Sends `rounds` large messages from a `Blaster` process on A to `sink`, timing small
/// calls to `echo` from a task on A while each is in flight.
fn noex_big(
    a: &Node,
    echo: &ServerRef<Echo>,
    sink: &ServerRef<Sink>,
    size: usize,
    rounds: usize,
    blob: bool,
) -> BigRun {
    let (echo, sink, node) = (echo.clone(), sink.clone(), a.clone());
    block_on_limit(
        "small calls during large transfers",
        a.spawn_task(async move {
            let blaster = node.spawn::<Blaster>(()).await.expect("blaster starts");
            let mut calls = Vec::new();
            let mut transfers = Vec::new();
            let mut peaks = Vec::new();
            for _ in 0..rounds {
                blaster.prepare(size).await.expect("prepare failed");
                let before = BIG_RECEIVED.load(Ordering::Acquire);
                let base = reset_peak();
                let start = Instant::now();
                blaster
                    .blast(sink.clone(), blob)
                    .expect("blast cast failed");
                let mut i = 0u64;
                while BIG_RECEIVED.load(Ordering::Acquire) == before {
                    assert!(
                        !BLAST_FAILED.load(Ordering::Acquire),
                        "the large cast failed"
                    );
                    assert!(
                        start.elapsed() < PHASE_LIMIT,
                        "the large message never arrived"
                    );
                    let call = Instant::now();
                    let answer = echo.echo(i).await;
                    calls.push(call.elapsed().as_nanos() as u64);
                    assert_eq!(answer, Ok(i), "small call failed");
                    i += 1;
                }
                transfers.push(start.elapsed());
                if let (Some(base), Some(peak)) = (base, proc_status("VmHWM:")) {
                    peaks.push(peak.saturating_sub(base));
                }
            }
            blaster
                .stop(noex::ExitReason::Normal)
                .await
                .expect("blaster stops");
            BigRun {
                calls,
                transfers,
                peaks,
            }
        }),
    )
}

// ---------------------------------------------------------------------------------------
// Reporting

/// The `p`-th percentile (0..=100) of sorted `values`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

struct Row {
    what: String,
    noex: String,
    bare: String,
    ratio: String,
    target: String,
    met: &'static str,
}

fn verdict(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

fn print_table(rows: &[Row]) {
    println!("| measurement | noex | bare baseline | noex / bare | target | met |");
    println!("|---|---:|---:|---:|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.what, row.noex, row.bare, row.ratio, row.target, row.met
        );
    }
}

/// The nodes, servers and bare threads shared by the measurements.
struct Bench {
    plan: Plan,
    a: Node,
    b: Node,
    bare: BareThreads,
    echo: ServerRef<Echo>,
    sink: ServerRef<Sink>,
    rows: Vec<Row>,
    notes: Vec<String>,
    /// noex's idle call round trips (sorted), once measured.
    idle_calls: Vec<u64>,
}

impl Bench {
    fn calls(&mut self) {
        let (a, b, plan) = (&self.a, &self.b, &self.plan);
        let (a0, b0) = (stats(a), stats(b));
        let mut noex_rtt = noex_calls(a, &self.echo, plan.call_warmup, plan.call_samples);
        let (request_len, reply_len) = (frame_size(a0, stats(a)), frame_size(b0, stats(b)));
        let mut bare_rtt = bare_ping_pong(
            &self.bare,
            plan.call_warmup,
            plan.call_samples,
            request_len,
            reply_len,
        );
        noex_rtt.sort_unstable();
        bare_rtt.sort_unstable();
        for (p, name) in [(50.0, "p50"), (99.0, "p99")] {
            let (n, r) = (percentile(&noex_rtt, p), percentile(&bare_rtt, p));
            let ratio = n as f64 / r as f64;
            let (target, met) = if p == 50.0 {
                ("≤ 1.5× bare", verdict(ratio <= 1.5))
            } else {
                ("—", "")
            };
            self.rows.push(Row {
                what: format!("call round trip {name} (µs)"),
                noex: micros(n),
                bare: micros(r),
                ratio: format!("{ratio:.2}×"),
                target: target.to_owned(),
                met,
            });
        }
        self.notes.push(format!(
            "call round trip: {} timed calls after {} warm-up; call frame {request_len} B, \
             reply frame {reply_len} B (the bare frames have these sizes)",
            plan.call_samples, plan.call_warmup
        ));
        self.idle_calls = noex_rtt;
    }

    fn casts(&mut self, size: usize, count: u64, label: &str) {
        let a = &self.a;
        let before = stats(a);
        let first = noex_casts(a, &self.sink, count, size);
        let cast_frame = frame_size(before, stats(a));
        let mut noex_rates = vec![count as f64 / first.as_secs_f64()];
        let mut bare_rates = Vec::new();
        for _ in 0..CAST_ROUNDS {
            let elapsed = bare_stream(&self.bare, count, cast_frame);
            bare_rates.push(count as f64 / elapsed.as_secs_f64());
            if noex_rates.len() < CAST_ROUNDS {
                let elapsed = noex_casts(a, &self.sink, count, size);
                noex_rates.push(count as f64 / elapsed.as_secs_f64());
            }
        }
        let (n, r) = (median(noex_rates), median(bare_rates));
        let mb = |rate: f64| rate * size as f64 / 1e6;
        let (target, met) = if size <= 16 {
            (
                "≥ 1,000,000 msg/s and ≥ 1/3 of bare",
                verdict(n >= 1e6 && n * 3.0 >= r),
            )
        } else {
            ("—", "")
        };
        self.rows.push(Row {
            what: format!("cast {label} payload (frame {cast_frame} B), msg/s"),
            noex: format!("{n:.0}"),
            bare: format!("{r:.0}"),
            ratio: format!("{:.2}×", n / r),
            target: target.to_owned(),
            met,
        });
        self.rows.push(Row {
            what: format!("cast {label} payload, MB/s of payload"),
            noex: format!("{:.1}", mb(n)),
            bare: format!("{:.1}", mb(r)),
            ratio: format!("{:.2}×", n / r),
            target: "—".to_owned(),
            met: "",
        });
        self.notes.push(format!(
            "cast {label}: {count} casts per round, median of {CAST_ROUNDS} rounds; bare \
             frames of {cast_frame} B"
        ));
    }

    fn big(&mut self, blob: bool) {
        let plan = &self.plan;
        let run = noex_big(
            &self.a,
            &self.echo,
            &self.sink,
            plan.big_size,
            plan.big_rounds,
            blob,
        );
        let mut calls = run.calls;
        calls.sort_unstable();
        // The interval a steady caller would call at: an idle call's round trip.
        let interval = if self.idle_calls.is_empty() {
            percentile(&calls, 50.0)
        } else {
            percentile(&self.idle_calls, 50.0)
        };
        let mut corrected = open_loop(&calls, interval);
        corrected.sort_unstable();
        let mib = plan.big_size >> 20;
        let kind = if blob { "`Bytes`" } else { "`Vec<u8>`" };
        let rows = [
            ("p50", percentile(&calls, 50.0), "—"),
            ("p99", percentile(&calls, 99.0), "< 10 ms"),
            ("max", percentile(&calls, 100.0), "—"),
            (
                "p99 (open-loop equivalent)",
                percentile(&corrected, 99.0),
                "(< 10 ms)",
            ),
        ];
        for (name, n, target) in rows {
            let met = match target {
                "—" => "",
                _ => verdict(n < 10_000_000),
            };
            let idle = match (name, self.idle_calls.is_empty()) {
                ("p50", false) => format!("{} (idle)", micros(percentile(&self.idle_calls, 50.0))),
                ("p99", false) => format!("{} (idle)", micros(percentile(&self.idle_calls, 99.0))),
                _ => "—".to_owned(),
            };
            self.rows.push(Row {
                what: format!("small call {name} while {mib} MiB {kind} in flight (µs)"),
                noex: micros(n),
                bare: idle,
                ratio: "—".to_owned(),
                target: target.to_owned(),
                met,
            });
        }
        if !run.peaks.is_empty() {
            let times: Vec<f64> = run
                .peaks
                .iter()
                .map(|&peak| peak as f64 / plan.big_size as f64)
                .collect();
            self.rows.push(Row {
                what: format!(
                    "peak resident memory during a {mib} MiB {kind} transfer, both nodes, \
                     over the message size (×)"
                ),
                noex: format!("{:.2}", median(times)),
                bare: "—".to_owned(),
                ratio: "—".to_owned(),
                target: "≤ 3 per node".to_owned(),
                met: "",
            });
        }
        let transfers: Vec<String> = run
            .transfers
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
            .collect();
        self.notes.push(format!(
            "{mib} MiB {kind}: {} transfers took {} ms; {} small calls timed during them \
             (open-loop equivalent: each call of t > {} µs also counts t − k·{} µs for every \
             k ≥ 1, the calls a caller every {} µs would have waited in)",
            plan.big_rounds,
            transfers.join(", "),
            calls.len(),
            micros(interval),
            micros(interval),
            micros(interval),
        ));
    }
}

/// The samples a caller calling every `interval` would have seen (coordinated omission
/// correction): a call that took `t` also stands for the calls that would have been issued
/// during it, which waited `t − interval`, `t − 2·interval`, ...
fn open_loop(samples: &[u64], interval: u64) -> Vec<u64> {
    let mut all = Vec::with_capacity(samples.len());
    for &sample in samples {
        all.push(sample);
        let mut waited = sample;
        while interval > 0 && waited > interval {
            waited -= interval;
            all.push(waited);
        }
    }
    all
}

fn main() {
    // Full counts only under `cargo bench` (`--bench` without `--test`).
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        return;
    }
    let plan = if has("--bench") && !has("--test") {
        Plan::full()
    } else {
        Plan::smoke()
    };
    // NOEX_REMOTE_BENCH=calls,cast16,cast1k,big,big-blob runs only those (for profiling).
    let only = std::env::var("NOEX_REMOTE_BENCH").ok();
    let wanted = |phase: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|p| p.trim() == phase))
    };
    let run_start = Instant::now();
    let (a, b) = start_nodes();
    let echo = block_on_limit("spawning echo", b.spawn::<Echo>(())).expect("echo starts");
    let sink = block_on_limit("spawning sink", b.spawn::<Sink>(())).expect("sink starts");
    let echo = a.server_ref::<Echo>(echo.pid()).expect("remote echo");
    let sink = a.server_ref::<Sink>(sink.pid()).expect("remote sink");
    assert!(!echo.is_local() && !sink.is_local());
    let smoke = plan.smoke;
    let mut bench = Bench {
        plan,
        a,
        b,
        bare: BareThreads::new(2),
        echo,
        sink,
        rows: Vec::new(),
        notes: Vec::new(),
        idle_calls: Vec::new(),
    };
    let progress = |what: &str| eprintln!("{what} done after {:.1?}", run_start.elapsed());
    if wanted("calls") {
        bench.calls();
        progress("calls");
    }
    if wanted("cast16") {
        bench.casts(16, bench.plan.small_casts, "16 B");
        progress("16 B casts");
    }
    if wanted("cast1k") {
        bench.casts(1024, bench.plan.large_casts, "1 KiB");
        progress("1 KiB casts");
    }
    if wanted("big") {
        bench.big(false);
        progress("large Vec<u8> transfers");
    }
    if wanted("big-blob") {
        bench.big(true);
        progress("large Bytes transfers");
    }
    #[cfg(feature = "tls")]
    if wanted("tls") {
        bench.tls();
        progress("TLS");
    }
    bench.a.shutdown();
    bench.b.shutdown();

    println!();
    if smoke {
        println!("remote benchmarks (smoke run: tiny counts, the figures mean nothing)");
    } else {
        println!("remote benchmarks");
    }
    println!();
    println!(
        "Two nodes on 127.0.0.1 in one process, {THREADS} scheduler thread each; the bare \
         baselines on one thread per side."
    );
    for note in &bench.notes {
        println!("- {note}");
    }
    println!();
    print_table(&bench.rows);
    println!();
    println!("whole run: {:.1?}", run_start.elapsed());
}
