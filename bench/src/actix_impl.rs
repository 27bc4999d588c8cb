//! actix: actors on an actix `System`, as it is normally used.
//!
//! Placement: the System arbiter is one thread (a tokio current-thread runtime with a
//! `LocalSet`); `Actor::start` runs the actor on the arbiter of the code that starts it, so
//! the caller (a task spawned with `actix::spawn`), the servers, the ring and the spawned
//! processes all share the System thread. The 2-sender cast adds one `Arbiter` (a second
//! thread) for the second sender, the receiver staying on the System thread: two threads,
//! like the other libraries. `send` is the call, `do_send` the cast (unbounded).
//!
//! `call-outside`: actix has no `block_on` that leaves its actors on other threads (the
//! `SystemRunner::block_on` runs the System arbiter itself on the calling thread), so the
//! server is started on its own `Arbiter` (a thread with actix's event loop) and the bench
//! thread awaits `Addr::send` inside one `smol::block_on` (which parks the thread between
//! wake-ups): the bench thread is the caller, the Arbiter thread the callee.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::common::{
    echo_reply, placement, rss_bytes, smol_limit, thread_number, timed_calls, Rep, CAST_CHUNK,
    PHASE_LIMIT, PROBE,
};
use crate::local::{Local, SpawnStop};

/// Answers `EchoReq`; reports its start and its end when asked to. The idle process too.
pub struct Echo {
    started: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Sender<()>>,
}

impl Actor for Echo {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.send(());
        }
    }
}

#[derive(Message)]
#[rtype(result = "u64")]
pub struct EchoReq(u64);

impl Handler<EchoReq> for Echo {
    type Result = u64;

    fn handle(&mut self, EchoReq(value): EchoReq, _: &mut Context<Self>) -> u64 {
        echo_reply(value)
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Echo {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

pub struct Counter {
    handled: u64,
    expected: u64,
    done: Option<mpsc::Sender<()>>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Hit(u64);

impl Handler<Hit> for Counter {
    type Result = ();

    fn handle(&mut self, Hit(value): Hit, _: &mut Context<Self>) {
        black_box(value);
        self.handled += 1;
        if self.handled == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.try_send(());
            }
        }
    }
}

pub struct RingNode {
    next: Option<Addr<RingNode>>,
    done: mpsc::Sender<()>,
}

impl Actor for RingNode {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Link(Addr<RingNode>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Token(u64);

impl Handler<Link> for RingNode {
    type Result = ();

    fn handle(&mut self, Link(next): Link, _: &mut Context<Self>) {
        self.next = Some(next);
    }
}

impl Handler<Token> for RingNode {
    type Result = ();

    fn handle(&mut self, Token(remaining): Token, _: &mut Context<Self>) {
        if remaining == 0 {
            let _ = self.done.try_send(());
        } else if let Some(next) = &self.next {
            next.do_send(Token(remaining - 1));
        }
    }
}

impl Handler<Stop> for RingNode {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

async fn cast_loop(count: u64, server: &Addr<Counter>) {
    for i in 0..count {
        server.do_send(Hit(black_box(i)));
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            tokio::task::yield_now().await;
        }
    }
}

/// Starts an `Echo` that reports its start and end; waits for the start.
async fn spawn_echo() -> (Addr<Echo>, oneshot::Receiver<()>) {
    let (started, on_start) = oneshot::channel();
    let (stopped, on_stop) = oneshot::channel();
    let addr = Echo {
        started: Some(started),
        stopped: Some(stopped),
    }
    .start();
    on_start.await.expect("actix actor did not start");
    (addr, on_stop)
}

async fn stop_echo(addr: &Addr<Echo>, on_stop: oneshot::Receiver<()>) {
    addr.do_send(Stop);
    on_stop.await.expect("actix actor did not stop");
}

/// Runs `body` as a task on the System arbiter, giving up after [`PHASE_LIMIT`].
fn run<T: 'static>(
    system: &SystemRunner,
    what: &str,
    body: impl Future<Output = T> + 'static,
) -> Rep<T> {
    system.block_on(async {
        match tokio::time::timeout(PHASE_LIMIT, actix::spawn(body)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(format!("{what} failed: {error}")),
            Err(_) => Err(format!(
                "{what} did not finish within {} s",
                PHASE_LIMIT.as_secs()
            )),
        }
    })
}

pub struct ActixLocal {
    system: SystemRunner,
}

impl ActixLocal {
    pub fn new() -> Self {
        ActixLocal {
            system: System::new(),
        }
    }
}

impl Local for ActixLocal {
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        run(&self.system, "actix call", async move {
            let (server, on_stop) = spawn_echo().await;
            for i in 0..warmup {
                black_box(server.send(EchoReq(i)).await.expect("actix send"));
            }
            let start = Instant::now();
            for i in 0..calls {
                black_box(
                    server
                        .send(EchoReq(black_box(i)))
                        .await
                        .expect("actix send"),
                );
            }
            let elapsed = start.elapsed();
            stop_echo(&server, on_stop).await;
            elapsed
        })
    }

    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration> {
        let arbiter = (senders == 2).then(Arbiter::new);
        let arbiter_handle = arbiter.as_ref().map(|a| a.handle());
        let result = run(&self.system, "actix cast", async move {
            let (done, mut finished) = mpsc::channel(1);
            let server = Counter {
                handled: 0,
                expected: count,
                done: Some(done),
            }
            .start();
            let start = Instant::now();
            match arbiter_handle {
                None => cast_loop(count, &server).await,
                Some(arbiter) => {
                    let (first_n, second_n) = (count - count / 2, count / 2);
                    let other = server.clone();
                    let (sent, all_sent) = oneshot::channel();
                    arbiter.spawn(async move {
                        cast_loop(second_n, &other).await;
                        let _ = sent.send(());
                    });
                    cast_loop(first_n, &server).await;
                    all_sent.await.expect("second sender");
                }
            }
            finished.recv().await.expect("counter gone");
            start.elapsed()
        });
        if let Some(arbiter) = arbiter {
            arbiter.stop();
            let _ = arbiter.join();
        }
        result
    }

    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop> {
        run(&self.system, "actix spawn/stop", async move {
            let start = Instant::now();
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(spawn_echo().await);
            }
            let spawned = start.elapsed();
            for (addr, on_stop) in actors {
                stop_echo(&addr, on_stop).await;
            }
            SpawnStop {
                spawned,
                total: start.elapsed(),
            }
        })
    }

    fn call_outside(&mut self, warmup: u64, calls: u64) -> Rep<Vec<u64>> {
        let arbiter = Arbiter::new();
        let (started, on_start) = oneshot::channel();
        let (stopped, on_stop) = oneshot::channel();
        let server = Echo::start_in_arbiter(&arbiter.handle(), move |_| Echo {
            started: Some(started),
            stopped: Some(stopped),
        });
        let result = smol_limit("actix call from outside the System", async {
            on_start.await.expect("actix actor did not start");
            let server_ref = &server;
            let times = timed_calls(warmup, calls, |i| async move {
                server_ref.send(EchoReq(i)).await.expect("actix send")
            })
            .await;
            stop_echo(&server, on_stop).await;
            times
        });
        arbiter.stop();
        let _ = arbiter.join();
        result
    }

    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration> {
        run(&self.system, "actix ring", async move {
            let (done, mut finished) = mpsc::channel(1);
            let ring: Vec<Addr<RingNode>> = (0..size)
                .map(|_| {
                    RingNode {
                        next: None,
                        done: done.clone(),
                    }
                    .start()
                })
                .collect();
            for i in 0..size {
                ring[i].do_send(Link(ring[(i + 1) % size].clone()));
            }
            let start = Instant::now();
            ring[0].do_send(Token(hops));
            finished.recv().await.unwrap();
            let elapsed = start.elapsed();
            for node in &ring {
                node.do_send(Stop);
            }
            elapsed
        })
    }

    fn placement(&mut self) -> Rep<String> {
        run(&self.system, "actix placement", async move {
            let (server, on_stop) = spawn_echo().await;
            let mut same = 0;
            for _ in 0..100 {
                if server.send(EchoReq(PROBE)).await.unwrap() == thread_number() {
                    same += 1;
                }
            }
            stop_echo(&server, on_stop).await;
            placement(same, 100)
        })
    }
}

/// `count` idle `Echo` actors on the System arbiter; (Addr, stop receiver) kept.
pub fn idle_memory(count: usize) -> Rep<(u64, u64)> {
    let system = System::new();
    let spawn_all = |count: usize| {
        run(&system, "actix idle spawn", async move {
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(spawn_echo().await);
            }
            actors
        })
    };
    let stop_all = |actors: Vec<(Addr<Echo>, oneshot::Receiver<()>)>| {
        run(&system, "actix idle stop", async move {
            for (addr, on_stop) in actors {
                stop_echo(&addr, on_stop).await;
            }
        })
    };
    stop_all(spawn_all(1_000)?)?;
    let before = rss_bytes().ok_or("no /proc/self/statm")?;
    let actors = spawn_all(count)?;
    let after = rss_bytes().ok_or("no /proc/self/statm")?;
    stop_all(actors)?;
    Ok((before, after))
}
