//! ractor: actors on a tokio multi-thread runtime with 2 worker threads.
//!
//! Placement: `Actor::spawn` is a `tokio::spawn`; tokio puts a task spawned from a worker
//! on that worker's queue, but an idle worker may steal it, and every actor is its own task
//! woken through a channel, so caller and callee may run on different threads (the probe
//! shows how often). Nothing pins the two senders of the 2-sender cast to different threads.
//!
//! ractor_cluster is in this build, which turns on ractor's `cluster` feature for every
//! ractor actor (it adds a branch and an `Option` per message); so message types here
//! implement `ractor::Message` by hand.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::common::{
    echo_reply, placement, rss_bytes, thread_number, timed_calls, tokio_limit, tokio_outside,
    tokio_runtime, Rep, CAST_CHUNK, PROBE,
};
use crate::local::{Local, SpawnStop};

// ---------------------------------------------------------------------------------------
// Actors

pub struct Echo;

pub enum EchoMsg {
    Echo(u64, RpcReplyPort<u64>),
}

impl ractor::Message for EchoMsg {}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMsg>,
        message: EchoMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMsg::Echo(value, reply) => {
                let _ = reply.send(echo_reply(value));
            }
        }
        Ok(())
    }
}

pub struct Counter;

pub struct Hit(u64);

impl ractor::Message for Hit {}

pub struct CounterState {
    handled: u64,
    expected: u64,
    done: Option<mpsc::Sender<()>>,
}

impl Actor for Counter {
    type Msg = Hit;
    type State = CounterState;
    type Arguments = (u64, mpsc::Sender<()>);

    async fn pre_start(
        &self,
        _: ActorRef<Hit>,
        (expected, done): Self::Arguments,
    ) -> Result<CounterState, ActorProcessingErr> {
        Ok(CounterState {
            handled: 0,
            expected,
            done: Some(done),
        })
    }

    async fn handle(
        &self,
        _: ActorRef<Hit>,
        Hit(value): Hit,
        state: &mut CounterState,
    ) -> Result<(), ActorProcessingErr> {
        black_box(value);
        state.handled += 1;
        if state.handled == state.expected {
            if let Some(done) = state.done.take() {
                let _ = done.try_send(());
            }
        }
        Ok(())
    }
}

pub struct RingNode;

pub enum RingMsg {
    Link(ActorRef<RingMsg>),
    Token(u64),
}

impl ractor::Message for RingMsg {}

pub struct RingState {
    next: Option<ActorRef<RingMsg>>,
    done: mpsc::Sender<()>,
}

impl Actor for RingNode {
    type Msg = RingMsg;
    type State = RingState;
    type Arguments = mpsc::Sender<()>;

    async fn pre_start(
        &self,
        _: ActorRef<RingMsg>,
        done: mpsc::Sender<()>,
    ) -> Result<RingState, ActorProcessingErr> {
        Ok(RingState { next: None, done })
    }

    async fn handle(
        &self,
        _: ActorRef<RingMsg>,
        message: RingMsg,
        state: &mut RingState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RingMsg::Link(next) => state.next = Some(next),
            RingMsg::Token(0) => {
                let _ = state.done.try_send(());
            }
            RingMsg::Token(remaining) => {
                if let Some(next) = &state.next {
                    next.cast(RingMsg::Token(remaining - 1))?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

pub async fn call_echo(server: &ActorRef<EchoMsg>, value: u64) -> u64 {
    match server
        .call(|reply| EchoMsg::Echo(value, reply), None)
        .await
        .expect("ractor call failed")
    {
        ractor::rpc::CallResult::Success(reply) => reply,
        _ => panic!("ractor call failed"),
    }
}

async fn cast_loop(count: u64, server: &ActorRef<Hit>) {
    for i in 0..count {
        server.cast(Hit(black_box(i))).expect("ractor cast failed");
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            tokio::task::yield_now().await;
        }
    }
}

pub struct RactorLocal {
    rt: Runtime,
}

impl RactorLocal {
    pub fn new() -> Self {
        RactorLocal {
            rt: tokio_runtime(),
        }
    }
}

impl Local for RactorLocal {
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        tokio_limit(&self.rt, "ractor call", async move {
            let (server, handle) = Actor::spawn(None, Echo, ()).await.expect("spawn");
            for i in 0..warmup {
                black_box(call_echo(&server, i).await);
            }
            let start = Instant::now();
            for i in 0..calls {
                black_box(call_echo(&server, black_box(i)).await);
            }
            let elapsed = start.elapsed();
            server.stop(None);
            let _ = handle.await;
            elapsed
        })
    }

    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration> {
        tokio_limit(&self.rt, "ractor cast", async move {
            let (done, mut finished) = mpsc::channel(1);
            let (server, handle) = Actor::spawn(None, Counter, (count, done))
                .await
                .expect("spawn");
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
            server.stop(None);
            let _ = handle.await;
            elapsed
        })
    }

    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop> {
        tokio_limit(&self.rt, "ractor spawn/stop", async move {
            let start = Instant::now();
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(Actor::spawn(None, Echo, ()).await.expect("spawn"));
            }
            let spawned = start.elapsed();
            for (actor, handle) in actors {
                actor.stop(None);
                handle.await.expect("actor ended");
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
            "ractor call from outside the runtime",
            async move {
                let (server, handle) = Actor::spawn(None, Echo, ()).await.expect("spawn");
                let server_ref = &server;
                let times =
                    timed_calls(
                        warmup,
                        calls,
                        |i| async move { call_echo(server_ref, i).await },
                    )
                    .await;
                server.stop(None);
                let _ = handle.await;
                times
            },
        )
    }

    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration> {
        tokio_limit(&self.rt, "ractor ring", async move {
            let (done, mut finished) = mpsc::channel(1);
            let mut ring = Vec::with_capacity(size);
            for _ in 0..size {
                ring.push(
                    Actor::spawn(None, RingNode, done.clone())
                        .await
                        .expect("spawn"),
                );
            }
            for i in 0..size {
                ring[i]
                    .0
                    .cast(RingMsg::Link(ring[(i + 1) % size].0.clone()))
                    .unwrap();
            }
            let start = Instant::now();
            ring[0].0.cast(RingMsg::Token(hops)).unwrap();
            finished.recv().await.unwrap();
            let elapsed = start.elapsed();
            for (actor, handle) in ring {
                actor.stop(None);
                let _ = handle.await;
            }
            elapsed
        })
    }

    fn placement(&mut self) -> Rep<String> {
        tokio_limit(&self.rt, "ractor placement", async move {
            let (server, handle) = Actor::spawn(None, Echo, ()).await.expect("spawn");
            let mut same = 0;
            for _ in 0..100 {
                if call_echo(&server, PROBE).await == thread_number() {
                    same += 1;
                }
            }
            server.stop(None);
            let _ = handle.await;
            placement(same, 100)
        })
    }
}

/// `count` idle `Echo` actors spawned from one task; (ActorRef, JoinHandle) kept.
pub fn idle_memory(count: usize) -> Rep<(u64, u64)> {
    let rt = tokio_runtime();
    let spawn_all = |count: usize| {
        tokio_limit(&rt, "ractor idle spawn", async move {
            let mut actors = Vec::with_capacity(count);
            for _ in 0..count {
                actors.push(Actor::spawn(None, Echo, ()).await.expect("spawn"));
            }
            actors
        })
    };
    let stop_all = |actors: Vec<(ActorRef<EchoMsg>, tokio::task::JoinHandle<()>)>| {
        tokio_limit(&rt, "ractor idle stop", async move {
            for (actor, handle) in actors {
                actor.stop(None);
                let _ = handle.await;
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
