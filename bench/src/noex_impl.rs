//! noex: `#[behavior]` servers on a `Node` with 2 scheduler threads.
//!
//! Placement: a process spawned from a node task or process starts on that task's thread
//! (one smol executor per thread, no work stealing), so the call, 1-sender cast, spawn and
//! ring workloads run caller and callees on one thread. Work spawned from outside the node
//! is spread round-robin, which puts the two senders of the 2-sender cast on the two
//! threads (checked), the receiver on the first.
//!
//! `call-outside`: the server is spawned from outside the node (so on one of its threads);
//! the bench thread calls it inside `Node::block_on`, which busy-waits like the node's
//! threads (the node's `busy_wait`) before it parks.

use std::future::Future;
use std::hint::black_box;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use async_channel::Sender;
use futures_lite::FutureExt;
use noex::{behavior, ExitReason, Node, ServerRef};
use smol::future::yield_now;

use crate::common::{
    echo_reply, placement, rss_bytes, smol_limit, timed_calls, Rep, CAST_CHUNK, PHASE_LIMIT, PROBE,
    THREADS,
};
use crate::local::{Local, SpawnStop};

/// Answers `echo` with its argument. Also the idle process of the memory workload.
#[behavior]
pub struct Echo;

#[behavior(local)]
impl Echo {
    #[init]
    fn init() -> Self {
        Echo
    }

    #[call]
    fn echo(&self, value: u64) -> u64 {
        echo_reply(value)
    }
}

/// Counts casts; reports on `done` once it has handled `expected`.
#[behavior]
pub struct Counter {
    handled: u64,
    expected: u64,
    done: Option<Sender<()>>,
}

#[behavior(local)]
impl Counter {
    #[init]
    fn init(expected: u64, done: Sender<()>) -> Self {
        Counter {
            handled: 0,
            expected,
            done: Some(done),
        }
    }

    #[cast]
    fn hit(&mut self, value: u64) {
        black_box(value);
        self.handled += 1;
        if self.handled == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.try_send(());
            }
        }
    }
}

/// One process of the ring: forwards the token to `next` until it has no hops left.
#[behavior]
pub struct RingNode {
    next: Option<ServerRef<RingNode>>,
    done: Sender<()>,
}

#[behavior(local)]
impl RingNode {
    #[init]
    fn init(done: Sender<()>) -> Self {
        RingNode { next: None, done }
    }

    #[cast]
    fn link(&mut self, next: ServerRef<RingNode>) {
        self.next = Some(next);
    }

    #[cast]
    fn token(&mut self, remaining: u64) {
        if remaining == 0 {
            let _ = self.done.try_send(());
        } else if let Some(next) = &self.next {
            next.token(remaining - 1).expect("ring cast failed");
        }
    }
}

fn node() -> Node {
    Node::builder().name("bench").threads(THREADS).build()
}

/// A node like [`node`] with its busy-wait set (`Duration::ZERO`: off).
pub fn node_with_busy_wait(busy_wait: Duration) -> Node {
    Node::builder()
        .name("bench-busy-wait")
        .threads(THREADS)
        .busy_wait(busy_wait)
        .build()
}

/// Runs `future` on the calling thread with `node.block_on`, giving up after
/// [`PHASE_LIMIT`].
fn block_on_limit<T>(node: &Node, what: &str, future: impl Future<Output = T>) -> Rep<T> {
    node.block_on(async { Some(future.await) }.or(async {
        smol::Timer::after(PHASE_LIMIT).await;
        None
    }))
    .ok_or_else(|| format!("{what} did not finish within {} s", PHASE_LIMIT.as_secs()))
}

/// The `call-outside` workload on `node`: an `Echo` spawned from outside the node (so on one
/// of its threads), called from this thread inside one `node.block_on`, each call timed
/// alone (ns, sorted).
pub fn call_outside(node: &Node, warmup: u64, calls: u64) -> Rep<Vec<u64>> {
    let server =
        block_on_limit(node, "noex spawn", node.spawn::<Echo>(()))?.map_err(|e| e.to_string())?;
    let server_ref = &server;
    let times = block_on_limit(
        node,
        "noex call from outside the node",
        timed_calls(warmup, calls, |i| async move {
            server_ref.echo(i).await.expect("call failed")
        }),
    )?;
    block_on_limit(node, "noex stop", stop(&server))?;
    Ok(times)
}

async fn stop<B: noex::GenServer>(server: &ServerRef<B>) {
    server.stop(ExitReason::Normal).await.expect("stop failed");
}

async fn cast_loop(count: u64, server: &ServerRef<Counter>) {
    for i in 0..count {
        server.hit(black_box(i)).expect("cast failed");
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            yield_now().await;
        }
    }
}

pub struct NoexLocal {
    node: Node,
}

impl NoexLocal {
    pub fn new() -> Self {
        NoexLocal { node: node() }
    }
}

impl Drop for NoexLocal {
    fn drop(&mut self) {
        self.node.shutdown();
    }
}

impl Local for NoexLocal {
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        let node = self.node.clone();
        smol_limit(
            "noex call",
            self.node.spawn_task(async move {
                // Spawned from a node task: the server runs on this task's thread.
                let server = node.spawn::<Echo>(()).await.expect("spawn failed");
                for i in 0..warmup {
                    black_box(server.echo(i).await.expect("call failed"));
                }
                let start = Instant::now();
                for i in 0..calls {
                    black_box(server.echo(black_box(i)).await.expect("call failed"));
                }
                let elapsed = start.elapsed();
                stop(&server).await;
                elapsed
            }),
        )
    }

    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration> {
        if senders == 1 {
            let node = self.node.clone();
            return smol_limit(
                "noex cast",
                self.node.spawn_task(async move {
                    let (done, finished) = async_channel::bounded(1);
                    let server = node.spawn::<Counter>((count, done)).await.unwrap();
                    let start = Instant::now();
                    cast_loop(count, &server).await;
                    finished.recv().await.expect("counter gone");
                    let elapsed = start.elapsed();
                    stop(&server).await;
                    elapsed
                }),
            );
        }
        let (first_n, second_n) = (count - count / 2, count / 2);
        let (go, gone) = async_channel::bounded::<ServerRef<Counter>>(1);
        let node = self.node.clone();
        // Two consecutive spawns from outside the node land on its two threads (round-robin).
        let first = self.node.spawn_task(async move {
            let (done, finished) = async_channel::bounded(1);
            let server = node.spawn::<Counter>((count, done)).await.unwrap();
            let start = Instant::now();
            go.send(server.clone()).await.unwrap();
            cast_loop(first_n, &server).await;
            finished.recv().await.expect("counter gone");
            let elapsed = start.elapsed();
            stop(&server).await;
            (elapsed, thread::current().id())
        });
        let second = self.node.spawn_task(async move {
            let server = gone.recv().await.unwrap();
            cast_loop(second_n, &server).await;
            thread::current().id()
        });
        let ((elapsed, a), b): ((Duration, ThreadId), ThreadId) =
            smol_limit("noex 2-sender cast", async { (first.await, second.await) })?;
        if a == b {
            return Err("the two senders shared a thread".into());
        }
        Ok(elapsed)
    }

    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop> {
        let node = self.node.clone();
        smol_limit(
            "noex spawn/stop",
            self.node.spawn_task(async move {
                let start = Instant::now();
                let mut servers = Vec::with_capacity(count);
                for _ in 0..count {
                    servers.push(node.spawn::<Echo>(()).await.expect("spawn failed"));
                }
                let spawned = start.elapsed();
                for server in &servers {
                    stop(server).await;
                }
                SpawnStop {
                    spawned,
                    total: start.elapsed(),
                }
            }),
        )
    }

    fn call_outside(&mut self, warmup: u64, calls: u64) -> Rep<Vec<u64>> {
        call_outside(&self.node, warmup, calls)
    }

    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration> {
        let node = self.node.clone();
        smol_limit(
            "noex ring",
            self.node.spawn_task(async move {
                let (done, finished) = async_channel::bounded(1);
                let mut ring = Vec::with_capacity(size);
                for _ in 0..size {
                    ring.push(node.spawn::<RingNode>(done.clone()).await.unwrap());
                }
                for (i, process) in ring.iter().enumerate() {
                    process.link(ring[(i + 1) % size].clone()).unwrap();
                }
                let start = Instant::now();
                ring[0].token(hops).unwrap();
                finished.recv().await.unwrap();
                let elapsed = start.elapsed();
                for process in &ring {
                    stop(process).await;
                }
                elapsed
            }),
        )
    }

    fn placement(&mut self) -> Rep<String> {
        let node = self.node.clone();
        smol_limit(
            "noex placement",
            self.node.spawn_task(async move {
                let server = node.spawn::<Echo>(()).await.unwrap();
                let mut same = 0;
                for _ in 0..100 {
                    if server.echo(PROBE).await.unwrap() == crate::common::thread_number() {
                        same += 1;
                    }
                }
                stop(&server).await;
                placement(same, 100)
            }),
        )
    }
}

/// `count` idle `Echo` processes spawned from one node task (so on one thread); the
/// `ServerRef`s are kept and counted.
pub fn idle_memory(count: usize) -> Rep<(u64, u64)> {
    let node = node();
    let spawn_all = |count: usize| {
        let node2 = node.clone();
        smol_limit(
            "noex idle spawn",
            node.spawn_task(async move {
                let mut servers = Vec::with_capacity(count);
                for _ in 0..count {
                    servers.push(node2.spawn::<Echo>(()).await.expect("spawn failed"));
                }
                servers
            }),
        )
    };
    let stop_all = |servers: Vec<ServerRef<Echo>>| {
        smol_limit(
            "noex idle stop",
            node.spawn_task(async move {
                for server in &servers {
                    stop(server).await;
                }
            }),
        )
    };
    // Warm up the threads and their allocator arenas.
    stop_all(spawn_all(1_000)?)?;
    let before = rss_bytes().ok_or("no /proc/self/statm")?;
    let servers = spawn_all(count)?;
    let after = rss_bytes().ok_or("no /proc/self/statm")?;
    stop_all(servers)?;
    node.shutdown();
    Ok((before, after))
}
