//! The bare limits: smol + async-channel, on scheduler threads built like a noex node's (one
//! smol `Executor` per thread, each driven by `block_on(executor.run(..))`).
//!
//! Placement: everything that noex puts on one thread runs here on executor 0; the second
//! sender of the 2-sender cast runs on executor 1. `call-outside`: the echo task on executor
//! 0, the bench thread calling it inside `smol::block_on`.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use smol::future::yield_now;
use smol::{Executor, Task};

use crate::common::{
    echo_reply, placement, rss_bytes, smol_limit, timed_calls, Rep, CAST_CHUNK, PROBE, THREADS,
};
use crate::local::{Local, SpawnStop};

/// Scheduler threads for the bare baselines, built like a noex node's.
pub struct BareThreads {
    executors: Vec<Arc<Executor<'static>>>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl BareThreads {
    pub fn new(threads: usize) -> Self {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let executors: Vec<_> = (0..threads).map(|_| Arc::new(Executor::new())).collect();
        let threads = executors
            .iter()
            .enumerate()
            .map(|(index, executor)| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("bare-{index}"))
                    .spawn(move || {
                        smol::block_on(executor.run(async {
                            let _ = stopped.recv().await;
                        }))
                    })
                    .expect("failed to start a bare scheduler thread")
            })
            .collect();
        BareThreads {
            executors,
            stop,
            threads,
        }
    }

    /// Runs `body` in a task on thread `index`; the task gets that thread's executor.
    pub fn spawn<F, T>(
        &self,
        index: usize,
        body: impl FnOnce(Arc<Executor<'static>>) -> F,
    ) -> Task<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let executor = self.executors[index].clone();
        executor.spawn(body(executor.clone()))
    }
}

impl Drop for BareThreads {
    fn drop(&mut self) {
        self.stop.close();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type Request = (u64, Sender<u64>);

/// The bare request/reply server.
async fn echo_server(requests: Receiver<Request>) {
    while let Ok((value, reply)) = requests.recv().await {
        let _ = reply.send(echo_reply(value)).await;
    }
}

/// One bare round trip with a fresh `bounded(1)` reply channel.
async fn bare_call(requests: &Sender<Request>, value: u64) -> u64 {
    let (reply, replies) = async_channel::bounded(1);
    requests
        .send((value, reply))
        .await
        .expect("bare server gone");
    replies.recv().await.expect("bare server dropped the reply")
}

/// The server of the reused-reply-channel variant: answers on one fixed channel.
async fn echo_server_fixed(requests: Receiver<u64>, replies: Sender<u64>) {
    while let Ok(value) = requests.recv().await {
        let _ = replies.send(echo_reply(value)).await;
    }
}

async fn counter(messages: Receiver<u64>, expected: u64, done: Sender<()>) {
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

async fn cast_loop(count: u64, messages: &Sender<u64>) {
    for i in 0..count {
        messages.try_send(black_box(i)).expect("send failed");
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            yield_now().await;
        }
    }
}

/// A bare "actor": acknowledges its start, then reads its mailbox until it closes.
async fn spawn_actor(executor: &Executor<'static>) -> (Sender<u64>, Task<()>) {
    let (mailbox, inbox) = async_channel::unbounded::<u64>();
    let (started, ack) = async_channel::bounded::<()>(1);
    let actor = executor.spawn(async move {
        let _ = started.send(()).await;
        while let Ok(value) = inbox.recv().await {
            black_box(value);
        }
    });
    ack.recv().await.expect("bare actor did not start");
    (mailbox, actor)
}

pub struct BareLocal {
    threads: BareThreads,
}

impl BareLocal {
    pub fn new() -> Self {
        BareLocal {
            threads: BareThreads::new(THREADS),
        }
    }

    /// The call round trip with one reply channel reused for every call.
    pub fn call_reused(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        smol_limit(
            "bare call (reused reply channel)",
            self.threads.spawn(0, |executor| async move {
                let (requests, inbox) = async_channel::unbounded();
                let (reply, replies) = async_channel::bounded(1);
                let server = executor.spawn(echo_server_fixed(inbox, reply));
                let call = |v: u64| {
                    let (requests, replies) = (&requests, &replies);
                    async move {
                        requests.send(v).await.expect("bare server gone");
                        replies.recv().await.expect("bare server gone")
                    }
                };
                for i in 0..warmup {
                    black_box(call(i).await);
                }
                let start = Instant::now();
                for i in 0..calls {
                    black_box(call(black_box(i)).await);
                }
                let elapsed = start.elapsed();
                drop(requests);
                server.await;
                elapsed
            }),
        )
    }
}

impl Local for BareLocal {
    fn call(&mut self, warmup: u64, calls: u64) -> Rep<Duration> {
        smol_limit(
            "bare call",
            self.threads.spawn(0, |executor| async move {
                let (requests, inbox) = async_channel::unbounded();
                let server = executor.spawn(echo_server(inbox));
                for i in 0..warmup {
                    black_box(bare_call(&requests, i).await);
                }
                let start = Instant::now();
                for i in 0..calls {
                    black_box(bare_call(&requests, black_box(i)).await);
                }
                let elapsed = start.elapsed();
                drop(requests);
                server.await;
                elapsed
            }),
        )
    }

    fn cast(&mut self, count: u64, senders: usize) -> Rep<Duration> {
        if senders == 1 {
            return smol_limit(
                "bare cast",
                self.threads.spawn(0, |executor| async move {
                    let (done, finished) = async_channel::bounded(1);
                    let (messages, inbox) = async_channel::unbounded();
                    let receiver = executor.spawn(counter(inbox, count, done));
                    let start = Instant::now();
                    cast_loop(count, &messages).await;
                    finished.recv().await.expect("counter gone");
                    let elapsed = start.elapsed();
                    receiver.await;
                    elapsed
                }),
            );
        }
        let (first_n, second_n) = (count - count / 2, count / 2);
        let (go, gone) = async_channel::bounded::<Sender<u64>>(1);
        let first = self.threads.spawn(0, |executor| async move {
            let (done, finished) = async_channel::bounded(1);
            let (messages, inbox) = async_channel::unbounded();
            let receiver = executor.spawn(counter(inbox, count, done));
            let start = Instant::now();
            go.send(messages.clone()).await.unwrap();
            cast_loop(first_n, &messages).await;
            finished.recv().await.expect("counter gone");
            let elapsed = start.elapsed();
            receiver.await;
            elapsed
        });
        let second = self.threads.spawn(1, |_| async move {
            let messages = gone.recv().await.unwrap();
            cast_loop(second_n, &messages).await;
        });
        smol_limit("bare 2-sender cast", async {
            second.await;
            first.await
        })
    }

    fn spawn_stop(&mut self, count: usize) -> Rep<SpawnStop> {
        smol_limit(
            "bare spawn/stop",
            self.threads.spawn(0, |executor| async move {
                let start = Instant::now();
                let mut actors = Vec::with_capacity(count);
                for _ in 0..count {
                    actors.push(spawn_actor(&executor).await);
                }
                let spawned = start.elapsed();
                for (mailbox, actor) in actors {
                    mailbox.close();
                    actor.await;
                }
                SpawnStop {
                    spawned,
                    total: start.elapsed(),
                }
            }),
        )
    }

    fn call_outside(&mut self, warmup: u64, calls: u64) -> Rep<Vec<u64>> {
        // The echo task on executor 0; this (the bench) thread calls it in `smol::block_on`.
        let (requests, inbox) = async_channel::unbounded();
        let server = self.threads.spawn(0, |_| echo_server(inbox));
        let requests_ref = &requests;
        let times = smol_limit(
            "bare call from outside the executors",
            timed_calls(warmup, calls, |i| bare_call(requests_ref, i)),
        )?;
        drop(requests);
        smol_limit("bare echo task", server)?;
        Ok(times)
    }

    fn ring(&mut self, size: usize, hops: u64) -> Rep<Duration> {
        smol_limit(
            "bare ring",
            self.threads.spawn(0, |executor| async move {
                let (done, finished) = async_channel::bounded::<()>(1);
                let channels: Vec<_> = (0..size)
                    .map(|_| async_channel::unbounded::<u64>())
                    .collect();
                let mut tasks = Vec::with_capacity(size);
                for i in 0..size {
                    let inbox = channels[i].1.clone();
                    let next = channels[(i + 1) % size].0.clone();
                    let done = done.clone();
                    tasks.push(executor.spawn(async move {
                        while let Ok(remaining) = inbox.recv().await {
                            if remaining == 0 {
                                let _ = done.try_send(());
                            } else {
                                let _ = next.try_send(remaining - 1);
                            }
                        }
                    }));
                }
                let start = Instant::now();
                channels[0].0.try_send(hops).unwrap();
                finished.recv().await.unwrap();
                let elapsed = start.elapsed();
                for (sender, _) in &channels {
                    sender.close();
                }
                for task in tasks {
                    task.await;
                }
                elapsed
            }),
        )
    }

    fn placement(&mut self) -> Rep<String> {
        smol_limit(
            "bare placement",
            self.threads.spawn(0, |executor| async move {
                let (requests, inbox) = async_channel::unbounded();
                let server = executor.spawn(echo_server(inbox));
                let mut same = 0;
                for _ in 0..100 {
                    if bare_call(&requests, PROBE).await == crate::common::thread_number() {
                        same += 1;
                    }
                }
                drop(requests);
                server.await;
                placement(same, 100)
            }),
        )
    }
}

/// `count` idle bare actors on one executor thread; the (Sender, Task) pairs are kept.
pub fn idle_memory(count: usize) -> Rep<(u64, u64)> {
    let threads = BareThreads::new(THREADS);
    let spawn_all = |count: usize| {
        smol_limit(
            "bare idle spawn",
            threads.spawn(0, move |executor| async move {
                let mut actors = Vec::with_capacity(count);
                for _ in 0..count {
                    actors.push(spawn_actor(&executor).await);
                }
                actors
            }),
        )
    };
    let stop_all = |actors: Vec<(Sender<u64>, Task<()>)>| {
        smol_limit(
            "bare idle stop",
            threads.spawn(0, move |_| async move {
                for (mailbox, actor) in actors {
                    mailbox.close();
                    actor.await;
                }
            }),
        )
    };
    stop_all(spawn_all(1_000)?)?;
    let before = rss_bytes().ok_or("no /proc/self/statm")?;
    let actors = spawn_all(count)?;
    let after = rss_bytes().ok_or("no /proc/self/statm")?;
    stop_all(actors)?;
    Ok((before, after))
}
