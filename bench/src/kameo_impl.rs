//! kameo: actors on a tokio multi-thread runtime with 2 worker threads.
//!
//! Placement: as ractor, each actor is a `tokio::spawn`ed task that an idle worker may
//! steal. `ask` is the call, `tell` the cast. The cast receiver gets an unbounded mailbox
//! (`mailbox::unbounded()`, like noex's, ractor's and actix's `do_send`) and the sender
//! uses `tell(..).try_send()`; the other actors keep kameo's default bounded(64) mailbox,
//! which never fills in those workloads (one message in flight).

use std::hint::black_box;
use std::time::{Duration, Instant};

use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::common::{
    echo_reply, placement, rss_bytes, thread_number, timed_calls, tokio_limit, tokio_outside,
    tokio_runtime, Rep, CAST_CHUNK, PROBE,
};
use crate::local::{Local, SpawnStop};

#[derive(Actor)]
pub struct Echo;

pub struct EchoReq(u64);

impl Message<EchoReq> for Echo {
    type Reply = u64;

    async fn handle(&mut self, EchoReq(value): EchoReq, _: &mut Context<Self, u64>) -> u64 {
        echo_reply(value)
    }
}

#[derive(Actor)]
pub struct Counter {
    handled: u64,
    expected: u64,
    done: Option<mpsc::Sender<()>>,
}

pub struct Hit(u64);

impl Message<Hit> for Counter {
    type Reply = ();

    async fn handle(&mut self, Hit(value): Hit, _: &mut Context<Self, ()>) {
        black_box(value);
        self.handled += 1;
        if self.handled == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.try_send(());
            }
        }
    }
}

#[derive(Actor)]
pub struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: mpsc::Sender<()>,
}

pub struct Link(ActorRef<RingNode>);
pub struct Token(u64);

impl Message<Link> for RingNode {
    type Reply = ();

    async fn handle(&mut self, Link(next): Link, _: &mut Context<Self, ()>) {
        self.next = Some(next);
    }
}

impl Message<Token> for RingNode {
    type Reply = ();

    async fn handle(&mut self, Token(remaining): Token, _: &mut Context<Self, ()>) {
        if remaining == 0 {
            let _ = self.done.try_send(());
        } else if let Some(next) = &self.next {
            next.tell(Token(remaining - 1))
                .try_send()
                .map_err(|_| ())
                .expect("kameo ring tell failed");
        }
    }
}

async fn call_echo(server: &ActorRef<Echo>, value: u64) -> u64 {
    server
        .ask(EchoReq(value))
        .await
        .map_err(|_| ())
        .expect("kameo ask failed")
}

async fn stop<A: Actor>(actor: &ActorRef<A>) {
    let _ = actor.stop_gracefully().await;
    actor.wait_for_shutdown().await;
}

async fn cast_loop(count: u64, server: &ActorRef<Counter>) {
    for i in 0..count {
        server
            .tell(Hit(black_box(i)))
            .try_send()
            .map_err(|_| ())
            .expect("kameo tell failed");
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            tokio::task::yield_now().await;
        }
    }
}

/// Spawns an `Echo` and waits until it has started.
async fn spawn_echo() -> ActorRef<Echo> {
    let actor = Echo::spawn(Echo);
    actor.wait_for_startup().await;
    actor
}

pub struct KameoLocal {
    rt: Runtime,
}

impl KameoLocal {
    pub fn new() -> Self {
        KameoLocal {
            rt: tokio_runtime(),
        }
    }
}

impl Local for KameoLocal {
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        tokio_limit(&self.rt, "kameo call", async move {
            let server = spawn_echo().await;
            for i in 0..warmup {
                black_box(call_echo(&server, i).await);
            }
            let start = Instant::now();
            for i in 0..calls {
                black_box(call_echo(&server, black_box(i)).await);
            }
            let elapsed = start.elapsed();
            stop(&server).await;
            elapsed
        })
    }

    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration> {
        tokio_limit(&self.rt, "kameo cast", async move {
            let (done, mut finished) = mpsc::channel(1);
            let counter = Counter {
                handled: 0,
                expected: count,
                done: Some(done),
            };
            let server = Counter::spawn_with_mailbox(counter, mailbox::unbounded());
            server.wait_for_startup().await;
            let start = Instant::now();
            if senders == 1 {
                cast_loop(count, &server).await;
            } else {
                let (first_n, second_n) = (count - count / 2, count / 2);
                let other = server.clone();
                let second = tokio::spawn(async move { cast_loop(second_n, &other).await });
                cast_loop(first_n, &server).await;
                second.await.expect("second sender");
            }
            finished.recv().await.expect("counter gone");
            let elapsed = start.elapsed();
            stop(&server).await;
            elapsed
        })
    }

    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop> {
        tokio_limit(&self.rt, "kameo spawn/stop", async move {
            let start = Instant::now();
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(spawn_echo().await);
            }
            let spawned = start.elapsed();
            for actor in &actors {
                stop(actor).await;
            }
            SpawnStop {
                spawned,
                total: start.elapsed(),
            }
        })
    }

    fn call_outside(&mut self, warmup: u64, calls: u64) -> Rep<Vec<u64>> {
        // `rt.block_on` runs this future on the bench thread; the actor, spawned from it,
        // is a task on the runtime's workers.
        tokio_outside(
            &self.rt,
            "kameo call from outside the runtime",
            async move {
                let server = spawn_echo().await;
                let server_ref = &server;
                let times =
                    timed_calls(
                        warmup,
                        calls,
                        |i| async move { call_echo(server_ref, i).await },
                    )
                    .await;
                stop(&server).await;
                times
            },
        )
    }

    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration> {
        tokio_limit(&self.rt, "kameo ring", async move {
            let (done, mut finished) = mpsc::channel(1);
            let mut ring = Vec::with_capacity(size);
            for _ in 0..size {
                let node = RingNode::spawn(RingNode {
                    next: None,
                    done: done.clone(),
                });
                node.wait_for_startup().await;
                ring.push(node);
            }
            for i in 0..size {
                ring[i]
                    .tell(Link(ring[(i + 1) % size].clone()))
                    .await
                    .map_err(|_| ())
                    .unwrap();
            }
            let start = Instant::now();
            ring[0].tell(Token(hops)).await.map_err(|_| ()).unwrap();
            finished.recv().await.unwrap();
            let elapsed = start.elapsed();
            for node in &ring {
                stop(node).await;
            }
            elapsed
        })
    }

    fn placement(&mut self) -> Rep<String> {
        tokio_limit(&self.rt, "kameo placement", async move {
            let server = spawn_echo().await;
            let mut same = 0;
            for _ in 0..100 {
                if call_echo(&server, PROBE).await == thread_number() {
                    same += 1;
                }
            }
            stop(&server).await;
            placement(same, 100)
        })
    }
}

/// `count` idle `Echo` actors spawned from one task; the `ActorRef`s are kept.
pub fn idle_memory(count: usize) -> Rep<(u64, u64)> {
    let rt = tokio_runtime();
    let spawn_all = |count: usize| {
        tokio_limit(&rt, "kameo idle spawn", async move {
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(spawn_echo().await);
            }
            actors
        })
    };
    let stop_all = |actors: Vec<ActorRef<Echo>>| {
        tokio_limit(&rt, "kameo idle stop", async move {
            for actor in &actors {
                stop(actor).await;
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
