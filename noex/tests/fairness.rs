//! Work from outside a scheduler thread — a timer firing, a call from another thread — is
//! not held up behind a process flooded with messages on that thread.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use noex::{behavior, Ctx, Info, NodeBuilder};

/// Counts what it is sent (also where the flooding thread can see it).
#[behavior]
pub struct Sink {
    handled: Arc<AtomicU64>,
}

#[behavior(local)]
impl Sink {
    #[init]
    fn init(handled: Arc<AtomicU64>) -> Self {
        Sink { handled }
    }

    #[cast]
    fn take(&mut self, n: u64) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        std::hint::black_box(n);
    }
}

/// Notes when each tick of a 1 ms interval arrives.
#[behavior]
pub struct Ticker {
    ticks: Vec<Instant>,
}

#[behavior(local)]
impl Ticker {
    #[init]
    fn init(ctx: &mut Ctx<Self>) -> Self {
        ctx.send_interval((), Duration::from_millis(1));
        Ticker { ticks: Vec::new() }
    }

    #[info]
    fn tick(&mut self, info: Info<()>) {
        if let Info::Message(()) = info {
            self.ticks.push(Instant::now());
        }
    }

    #[call]
    fn ticks(&mut self) -> Vec<Instant> {
        std::mem::take(&mut self.ticks)
    }

    #[call]
    fn ping(&self) {}
}

fn percentile(mut values: Vec<Duration>, p: usize) -> Duration {
    values.sort_unstable();
    values[(values.len() - 1) * p / 100]
}

#[test]
fn timers_and_calls_from_outside_pass_a_flooded_neighbour() {
    // One thread, so the flood and the ticker share it.
    let node = NodeBuilder::default().threads(1).build();
    let handled = Arc::new(AtomicU64::new(0));
    let (sink, ticker) = node.block_on(async {
        let sink = node.spawn::<Sink>(handled.clone()).await.unwrap();
        let ticker = node.spawn::<Ticker>(()).await.unwrap();
        (sink, ticker)
    });
    // The flood: a thread outside the node that keeps the sink's mailbox full (up to a
    // bounded backlog), so that the sink takes every turn it can.
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let (sink, flooding, handled) = (sink.clone(), flooding.clone(), handled.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while flooding.load(Ordering::Relaxed) {
                if sent - handled.load(Ordering::Relaxed) > 200_000 {
                    std::thread::yield_now();
                    continue;
                }
                for n in 0..1024 {
                    sink.take(n).unwrap();
                }
                sent += 1024;
            }
            sent
        })
    };
    let mut calls = Vec::new();
    node.block_on(async {
        ticker.ticks().await.unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            let call = Instant::now();
            ticker.ping().await.unwrap();
            calls.push(call.elapsed());
            smol::Timer::after(Duration::from_micros(500)).await;
        }
    });
    let ticks = node.block_on(ticker.ticks()).unwrap();
    flooding.store(false, Ordering::Relaxed);
    let sent = flood.join().unwrap();
    assert!(sent > 100_000, "the flood ran: {sent} casts");
    // Gaps between ticks beyond their 1 ms period: how late each tick was.
    let late: Vec<Duration> = ticks
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).saturating_sub(Duration::from_millis(1)))
        .collect();
    assert!(late.len() > 100, "only {} ticks", late.len());
    let (late_p50, call_p50) = (percentile(late.clone(), 50), percentile(calls.clone(), 50));
    let (late_p99, call_p99) = (percentile(late, 99), percentile(calls, 99));
    eprintln!(
        "timer lateness p50 {late_p50:?} p99 {late_p99:?}; outside call p50 {call_p50:?} \
         p99 {call_p99:?}; flood {sent} casts"
    );
    // The medians tell the fix from the defect (a flooded neighbour held ticks back by
    // 10-30 ms and calls by 15 ms at the median); the tails only show that nothing waits
    // for good, with bounds a busy test machine's other work cannot reach. (The aim, met
    // on a quiet machine and measured by `noex-bench fairness`, is 2 ms at p99.)
    assert!(
        call_p50 < Duration::from_millis(8),
        "outside call p50 {call_p50:?}"
    );
    assert!(
        late_p50 < Duration::from_millis(8),
        "timer lateness p50 {late_p50:?}"
    );
    assert!(
        late_p99 < Duration::from_millis(250),
        "timer lateness p99 {late_p99:?}"
    );
    assert!(
        call_p99 < Duration::from_millis(250),
        "outside call p99 {call_p99:?}"
    );
    node.shutdown();
}

/// A process that does nothing.
#[behavior]
pub struct Idle;

#[behavior(local)]
impl Idle {
    #[init]
    fn init() -> Self {
        Idle
    }
}

#[test]
fn a_task_spawning_processes_in_a_loop_lets_the_others_of_its_thread_run() {
    // A process spawned from a node thread starts at once, inside the spawn, so a spawn
    // need not make its spawner wait; a loop of them still gives the thread's other tasks
    // their turn.
    let node = NodeBuilder::default().threads(1).build();
    let other_ran = Arc::new(AtomicBool::new(false));
    let seen_during_loop = node.block_on({
        let node = node.clone();
        let other_ran = other_ran.clone();
        node.clone().spawn_task(async move {
            // Queued behind this task, on the same (only) thread.
            let flag = other_ran.clone();
            let other = node.spawn_task(async move { flag.store(true, Ordering::SeqCst) });
            let mut servers = Vec::new();
            for _ in 0..1_000 {
                servers.push(node.spawn::<Idle>(()).await.expect("spawned"));
            }
            let seen = other_ran.load(Ordering::SeqCst);
            other.await;
            seen
        })
    });
    assert!(seen_during_loop, "the other task waited for the whole loop");
    node.shutdown();
}
