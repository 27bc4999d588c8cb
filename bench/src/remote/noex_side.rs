//! noex's side of the remote workloads: the behaviours, the nodes, and each step's
//! measurement.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use noex::{behavior, ClusterConfig, Node, SendError, ServerRef, TrafficStats};
use smol::future::yield_now;

use super::{Frames, Remote, Step};
use crate::common::{percentile, smol_limit, Plan, Rep, CAST_CHUNK, PHASE_LIMIT, THREADS};

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
pub(super) struct NoexRemote {
    a: Node,
    b: Node,
    echo: ServerRef<Echo>,
    sink: ServerRef<Sink>,
    /// The busy-waiting-off session: calls and 16 B casts only, msg/s only.
    busy_off: bool,
}

impl NoexRemote {
    pub(super) fn start(busy_wait: Duration, busy_off: bool) -> Rep<NoexRemote> {
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
    pub(super) fn frames(&mut self, plan: &Plan) -> Rep<Frames> {
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
