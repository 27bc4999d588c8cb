//! Local benchmarks: noex next to bare smol + async-channel baselines, measured in the same
//! run and on the same number of threads.
//!
//! Run with `cargo bench -p noex --bench local`. Groups:
//!
//! * `call_round_trip` — a `u64` request and its `u64` reply. noex's [`ServerRef::call`]
//!   against a bare server task reading an unbounded async-channel of
//!   `(u64, async_channel::Sender<u64>)` with a fresh `bounded(1)` reply channel per call.
//!   `same_thread`: the timed loop runs in a task on the server's thread (noex: a
//!   [`Node::spawn_task`] that spawns the server; bare: a task on a single-threaded smol
//!   `Executor`), timed with `iter_custom` inside that task. `caller_on_other_thread`: the
//!   loop runs in `block_on` on the bench thread and the server on a scheduler thread.
//! * `cast_throughput` — `u64` one-way messages, from 1 sender (sender and receiver on one
//!   thread) or 2 senders (one task on each of the two scheduler threads, the receiver on the
//!   first). noex's [`ServerRef::cast`] against a bare unbounded async-channel `try_send`
//!   and `recv`. A sender yields to its executor every [`CAST_CHUNK`] messages (so a receiver
//!   on its thread drains as it goes instead of after the whole batch). The clock stops when
//!   the receiver reports that it has handled every message.
//! * `spawn` — a process started (its `init` has run) and stopped (it has ended), one at a
//!   time; against a bare "actor": a task owning an async-channel mailbox that acknowledges
//!   its start and ends when its mailbox closes. Also noex spawn-only (stopped afterwards,
//!   untimed) and stop-only (spawned beforehand, untimed).
//! * resident memory per idle process — not a criterion timing: before criterion starts,
//!   the binary runs itself twice as a child process, once spawning 100,000 idle noex
//!   processes and once 100,000 idle bare actors (a task awaiting its async-channel
//!   mailbox), each on a fresh heap, and prints (VmRSS after − VmRSS before) / 100,000 for
//!   each. VmRSS is read in kB from /proc/self/status, so no page size is assumed. Under
//!   `cargo test --benches` it is a 1,000-process smoke run.

mod common;

use std::convert::Infallible;
use std::hint::black_box;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use common::BareThreads;
use criterion::{criterion_group, Criterion, Throughput};
use noex::{Ctx, ExitReason, GenServer, Node, ReplyTo, ServerRef};
use smol::future::yield_now;
use smol::Task;

/// Scheduler threads of the noex node and of the bare baselines alike.
const THREADS: usize = 2;

/// A cast sender yields to its executor after this many messages.
const CAST_CHUNK: u64 = 256;

/// Idle processes spawned by the memory measurement.
const MEMORY_PROCESSES: usize = 100_000;

// ---------------------------------------------------------------------------------------
// noex behaviours

/// Answers a call with its request; ignores casts. Also the idle process.
struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = u64;
    type Info = ();
    type InitError = Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Infallible> {
        Ok(Echo)
    }

    async fn handle_call(&mut self, request: u64, reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(request);
    }
}

/// Counts `u64` casts and reports on `done` once it has handled `expected` of them.
struct Counter {
    handled: u64,
    expected: u64,
    done: Option<Sender<()>>,
}

impl GenServer for Counter {
    type Args = (u64, Sender<()>);
    type Call = ();
    type Reply = ();
    type Cast = u64;
    type Info = ();
    type InitError = Infallible;

    async fn init((expected, done): Self::Args, _: &mut Ctx<Self>) -> Result<Self, Infallible> {
        let mut counter = Counter {
            handled: 0,
            expected,
            done: Some(done),
        };
        counter.report_if_done();
        Ok(counter)
    }

    async fn handle_cast(&mut self, value: u64, _: &mut Ctx<Self>) {
        black_box(value);
        self.handled += 1;
        self.report_if_done();
    }
}

impl Counter {
    fn report_if_done(&mut self) {
        if self.handled == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.try_send(());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bare baselines

type Request = (u64, Sender<u64>);

/// The bare request/reply server.
async fn bare_echo_server(requests: Receiver<Request>) {
    while let Ok((value, reply)) = requests.recv().await {
        let _ = reply.send(value).await;
    }
}

/// One bare request/reply round trip, with a fresh `bounded(1)` reply channel.
async fn bare_call(requests: &Sender<Request>, value: u64) -> u64 {
    let (reply, replies) = async_channel::bounded(1);
    requests
        .send((value, reply))
        .await
        .expect("bare server gone");
    replies.recv().await.expect("bare server dropped the reply")
}

/// The bare counterpart of [`Counter`].
async fn bare_counter(messages: Receiver<u64>, expected: u64, done: Sender<()>) {
    let mut handled = 0;
    while handled < expected {
        match messages.recv().await {
            Ok(value) => {
                black_box(value);
                handled += 1;
            }
            Err(_) => break,
        }
    }
    assert_eq!(handled, expected, "bare counter lost messages");
    let _ = done.try_send(());
}

/// Sends `count` values through `send`, yielding every [`CAST_CHUNK`].
async fn cast_loop(count: u64, mut send: impl FnMut(u64)) {
    for i in 0..count {
        send(black_box(i));
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            yield_now().await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

async fn spawn_echo(node: &Node) -> ServerRef<Echo> {
    node.spawn::<Echo>(()).await.expect("spawn failed")
}

async fn stop<B: GenServer>(server: &ServerRef<B>) {
    let reason = server.stop(ExitReason::Normal).await.expect("stop failed");
    assert_eq!(reason, ExitReason::Normal);
}

fn bench_node() -> Node {
    Node::builder().name("bench").threads(THREADS).build()
}

// ---------------------------------------------------------------------------------------
// 1. Call round trip

fn call_round_trip(c: &mut Criterion) {
    let node = bench_node();
    let bare = BareThreads::new(THREADS);
    let mut group = c.benchmark_group("call_round_trip");

    group.bench_function("noex/same_thread", |b| {
        b.iter_custom(|iters| {
            let node2 = node.clone();
            node.block_on(node.spawn_task(async move {
                // Spawned from a node task: the server runs on this task's thread.
                let server = spawn_echo(&node2).await;
                assert_eq!(server.call(7).await, Ok(7));
                let start = Instant::now();
                for i in 0..iters {
                    black_box(server.call(black_box(i)).await.expect("call failed"));
                }
                let elapsed = start.elapsed();
                stop(&server).await;
                elapsed
            }))
        })
    });

    group.bench_function("bare/same_thread", |b| {
        b.iter_custom(|iters| {
            smol::block_on(bare.spawn(0, |executor| async move {
                let (requests, inbox) = async_channel::unbounded();
                let server = executor.spawn(bare_echo_server(inbox));
                assert_eq!(bare_call(&requests, 7).await, 7);
                let start = Instant::now();
                for i in 0..iters {
                    black_box(bare_call(&requests, black_box(i)).await);
                }
                let elapsed = start.elapsed();
                drop(requests);
                server.await;
                elapsed
            }))
        })
    });

    group.bench_function("noex/caller_on_other_thread", |b| {
        b.iter_custom(|iters| {
            node.block_on(async {
                // Spawned from the bench thread: the server runs on a node thread, the caller
                // stays on the bench thread.
                let server = spawn_echo(&node).await;
                assert_eq!(server.call(7).await, Ok(7));
                let start = Instant::now();
                for i in 0..iters {
                    black_box(server.call(black_box(i)).await.expect("call failed"));
                }
                let elapsed = start.elapsed();
                stop(&server).await;
                elapsed
            })
        })
    });

    group.bench_function("bare/caller_on_other_thread", |b| {
        b.iter_custom(|iters| {
            let (requests, inbox) = async_channel::unbounded();
            let server = bare.spawn(0, |_| bare_echo_server(inbox));
            smol::block_on(async {
                assert_eq!(bare_call(&requests, 7).await, 7);
                let start = Instant::now();
                for i in 0..iters {
                    black_box(bare_call(&requests, black_box(i)).await);
                }
                let elapsed = start.elapsed();
                drop(requests);
                server.await;
                elapsed
            })
        })
    });

    group.finish();
    node.shutdown();
}

// ---------------------------------------------------------------------------------------
// 2. Cast throughput

fn cast_throughput(c: &mut Criterion) {
    let node = bench_node();
    let bare = BareThreads::new(THREADS);
    let mut group = c.benchmark_group("cast_throughput");
    group.throughput(Throughput::Elements(1));

    group.bench_function("noex/1_sender", |b| {
        b.iter_custom(|iters| {
            let node2 = node.clone();
            node.block_on(node.spawn_task(async move {
                let (done, finished) = async_channel::bounded(1);
                let server = node2.spawn::<Counter>((iters, done)).await.unwrap();
                let start = Instant::now();
                cast_loop(iters, |v| server.cast(v).expect("cast failed")).await;
                finished.recv().await.expect("counter gone");
                let elapsed = start.elapsed();
                stop(&server).await;
                elapsed
            }))
        })
    });

    group.bench_function("bare/1_sender", |b| {
        b.iter_custom(|iters| {
            smol::block_on(bare.spawn(0, |executor| async move {
                let (done, finished) = async_channel::bounded(1);
                let (messages, inbox) = async_channel::unbounded();
                let receiver = executor.spawn(bare_counter(inbox, iters, done));
                let start = Instant::now();
                cast_loop(iters, |v| messages.try_send(v).expect("send failed")).await;
                finished.recv().await.expect("counter gone");
                let elapsed = start.elapsed();
                receiver.await;
                elapsed
            }))
        })
    });

    group.bench_function("noex/2_senders", |b| {
        b.iter_custom(|iters| {
            let (first_n, second_n) = (iters - iters / 2, iters / 2);
            let (go, gone) = async_channel::bounded::<ServerRef<Counter>>(1);
            let node2 = node.clone();
            // Two consecutive spawns from outside the node land on its two threads
            // (round-robin); checked below.
            let first = node.spawn_task(async move {
                let (done, finished) = async_channel::bounded(1);
                // The receiver runs on the first sender's thread.
                let server = node2.spawn::<Counter>((iters, done)).await.unwrap();
                let start = Instant::now();
                go.send(server.clone()).await.unwrap();
                cast_loop(first_n, |v| server.cast(v).expect("cast failed")).await;
                finished.recv().await.expect("counter gone");
                let elapsed = start.elapsed();
                stop(&server).await;
                (elapsed, thread::current().id())
            });
            let second = node.spawn_task(async move {
                let server = gone.recv().await.unwrap();
                cast_loop(second_n, |v| server.cast(v).expect("cast failed")).await;
                thread::current().id()
            });
            let ((elapsed, first_thread), second_thread): ((Duration, ThreadId), ThreadId) =
                node.block_on(async { (first.await, second.await) });
            assert_ne!(first_thread, second_thread, "senders share a thread");
            elapsed
        })
    });

    group.bench_function("bare/2_senders", |b| {
        b.iter_custom(|iters| {
            let (first_n, second_n) = (iters - iters / 2, iters / 2);
            let (go, gone) = async_channel::bounded::<Sender<u64>>(1);
            let first = bare.spawn(0, |executor| async move {
                let (done, finished) = async_channel::bounded(1);
                let (messages, inbox) = async_channel::unbounded();
                let receiver = executor.spawn(bare_counter(inbox, iters, done));
                let start = Instant::now();
                go.send(messages.clone()).await.unwrap();
                cast_loop(first_n, |v| messages.try_send(v).expect("send failed")).await;
                finished.recv().await.expect("counter gone");
                let elapsed = start.elapsed();
                receiver.await;
                elapsed
            });
            let second = bare.spawn(1, |_| async move {
                let messages = gone.recv().await.unwrap();
                cast_loop(second_n, |v| messages.try_send(v).expect("send failed")).await;
            });
            smol::block_on(async {
                second.await;
                first.await
            })
        })
    });

    group.finish();
    node.shutdown();
}

// ---------------------------------------------------------------------------------------
// 3. Spawn and stop

fn spawn_stop(c: &mut Criterion) {
    let node = bench_node();
    let bare = BareThreads::new(THREADS);
    let mut group = c.benchmark_group("spawn");

    group.bench_function("noex/spawn_then_stop", |b| {
        b.iter_custom(|iters| {
            let node2 = node.clone();
            node.block_on(node.spawn_task(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let server = spawn_echo(&node2).await;
                    stop(&server).await;
                }
                start.elapsed()
            }))
        })
    });

    group.bench_function("bare/spawn_then_stop", |b| {
        b.iter_custom(|iters| {
            smol::block_on(bare.spawn(0, |executor| async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let (mailbox, inbox) = async_channel::unbounded::<u64>();
                    let (started, ack) = async_channel::bounded::<()>(1);
                    let actor = executor.spawn(async move {
                        let _ = started.send(()).await;
                        while let Ok(value) = inbox.recv().await {
                            black_box(value);
                        }
                    });
                    ack.recv().await.expect("bare actor did not start");
                    mailbox.close();
                    actor.await;
                }
                start.elapsed()
            }))
        })
    });

    group.bench_function("noex/spawn_only", |b| {
        b.iter_custom(|iters| {
            let node2 = node.clone();
            let elapsed = node.block_on(node.spawn_task(async move {
                let mut servers = Vec::with_capacity(iters as usize);
                let start = Instant::now();
                for _ in 0..iters {
                    servers.push(spawn_echo(&node2).await);
                }
                let elapsed = start.elapsed();
                for server in &servers {
                    stop(server).await;
                }
                elapsed
            }));
            assert_eq!(node.process_count(), 0);
            elapsed
        })
    });

    group.bench_function("noex/stop_only", |b| {
        b.iter_custom(|iters| {
            let node2 = node.clone();
            node.block_on(node.spawn_task(async move {
                let mut servers = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    servers.push(spawn_echo(&node2).await);
                }
                let start = Instant::now();
                for server in &servers {
                    stop(server).await;
                }
                start.elapsed()
            }))
        })
    });

    group.finish();
    node.shutdown();
}

// ---------------------------------------------------------------------------------------
// 4. Resident memory per idle process

/// The resident set size in bytes, from `VmRSS` (in kB) in /proc/self/status.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Environment variable that makes the bench binary a memory-measuring child: `noex` or
/// `bare`, with the process count in [`MEMORY_COUNT_ENV`].
const MEMORY_VARIANT_ENV: &str = "NOEX_BENCH_MEMORY_VARIANT";
const MEMORY_COUNT_ENV: &str = "NOEX_BENCH_MEMORY_COUNT";

/// Spawns `count` idle noex processes from one node task (so all on one scheduler thread)
/// and returns (VmRSS before, VmRSS after). The references kept to them are included.
fn noex_idle_rss(count: usize) -> (u64, u64) {
    let node = bench_node();
    let spawn_all = |count: usize| {
        let node2 = node.clone();
        node.block_on(node.spawn_task(async move {
            let mut servers = Vec::with_capacity(count);
            for _ in 0..count {
                servers.push(spawn_echo(&node2).await);
            }
            servers
        }))
    };
    let stop_all = |servers: Vec<ServerRef<Echo>>| {
        node.block_on(node.spawn_task(async move {
            for server in &servers {
                stop(server).await;
            }
        }))
    };
    // Warm up the threads and their allocator arena.
    stop_all(spawn_all(1_000));
    let before = rss_bytes().unwrap_or(0);
    let servers = spawn_all(count);
    let after = rss_bytes().unwrap_or(0);
    assert_eq!(node.process_count(), count);
    stop_all(servers);
    node.shutdown();
    (before, after)
}

/// The bare counterpart: `count` idle tasks, each awaiting its unbounded async-channel
/// mailbox after acknowledging its start, all on one executor thread.
fn bare_idle_rss(count: usize) -> (u64, u64) {
    let bare = BareThreads::new(THREADS);
    let spawn_all = |count: usize| {
        smol::block_on(bare.spawn(0, move |executor| async move {
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                let (mailbox, inbox) = async_channel::unbounded::<u64>();
                let (started, ack) = async_channel::bounded::<()>(1);
                let actor = executor.spawn(async move {
                    let _ = started.send(()).await;
                    while let Ok(value) = inbox.recv().await {
                        black_box(value);
                    }
                });
                ack.recv().await.expect("bare actor did not start");
                actors.push((mailbox, actor));
            }
            actors
        }))
    };
    let stop_all = |actors: Vec<(Sender<u64>, Task<()>)>| {
        smol::block_on(bare.spawn(0, move |_| async move {
            for (mailbox, actor) in actors {
                mailbox.close();
                actor.await;
            }
        }))
    };
    stop_all(spawn_all(1_000));
    let before = rss_bytes().unwrap_or(0);
    let actors = spawn_all(count);
    let after = rss_bytes().unwrap_or(0);
    stop_all(actors);
    (before, after)
}

/// In a memory-measuring child: measures, prints `rss <before> <after>`, returns `true`.
fn memory_child() -> bool {
    let Ok(variant) = std::env::var(MEMORY_VARIANT_ENV) else {
        return false;
    };
    let count = std::env::var(MEMORY_COUNT_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(MEMORY_PROCESSES);
    let (before, after) = match variant.as_str() {
        "noex" => noex_idle_rss(count),
        "bare" => bare_idle_rss(count),
        other => panic!("unknown memory variant {other}"),
    };
    println!("rss {before} {after}");
    true
}

/// Prints the resident memory that `count` idle noex processes, and `count` idle bare
/// actors, add per process. Each variant runs in a fresh child process (this binary again),
/// so neither sees a heap that other work has grown or fragmented.
fn idle_process_memory(count: usize, smoke: bool) {
    println!();
    if smoke {
        println!("idle_process_memory (smoke run: too few processes for a meaningful figure)");
    } else {
        println!("idle_process_memory");
    }
    if rss_bytes().is_none() {
        println!("    /proc/self/status has no VmRSS; skipped");
        return;
    }
    let variants = [
        (
            "noex",
            format!(
                "noex (incl. the {}-byte ServerRef kept per process)",
                std::mem::size_of::<ServerRef<Echo>>()
            ),
        ),
        (
            "bare",
            format!(
                "bare (incl. the {}-byte (Sender, Task) kept per actor)",
                std::mem::size_of::<(Sender<u64>, Task<()>)>()
            ),
        ),
    ];
    for (variant, label) in variants {
        let measured = std::env::current_exe().ok().and_then(|exe| {
            let output = std::process::Command::new(exe)
                .env(MEMORY_VARIANT_ENV, variant)
                .env(MEMORY_COUNT_ENV, count.to_string())
                .output()
                .ok()?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout.lines().find_map(|l| l.strip_prefix("rss "))?;
            let mut fields = line.split(' ').map(|f| f.parse::<u64>().ok());
            Some((fields.next()??, fields.next()??))
        });
        let Some((before, after)) = measured else {
            println!("    {label}: the measuring child process failed");
            continue;
        };
        let per_process = after.saturating_sub(before) as f64 / count as f64;
        println!(
            "    {label}: {count} idle, VmRSS {:.1} MiB -> {:.1} MiB = {per_process:.0} bytes per process",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = call_round_trip, cast_throughput, spawn_stop
}

fn main() {
    if memory_child() {
        return;
    }
    // Criterion benchmarks only under `cargo bench` (`--bench` without `--test`); under
    // `cargo test --benches` the memory figure is a quick smoke run instead.
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if !has("--list") {
        if has("--bench") && !has("--test") {
            idle_process_memory(MEMORY_PROCESSES, false);
        } else {
            idle_process_memory(1_000, true);
        }
    }

    benches();
    Criterion::default().configure_from_args().final_summary();
}
