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
    let call_p50 = percentile(calls.clone(), 50);
    let (late_p99, call_p99) = (percentile(late, 99), percentile(calls, 99));
    eprintln!(
        "timer lateness p99 {late_p99:?}; outside call p50 {call_p50:?} p99 {call_p99:?}; \
         flood {sent} casts"
    );
    assert!(
        call_p50 < Duration::from_millis(5),
        "outside call p50 {call_p50:?}"
    );
    // Generous bounds: a test machine's other work holds this thread back as well. (The
    // aim, met on a quiet machine, is 2 ms; a flooded neighbour once held ticks back by
    // 10-30 ms and calls by up to 140 ms.)
    assert!(
        late_p99 < Duration::from_millis(50),
        "timer lateness p99 {late_p99:?}"
    );
    assert!(
        call_p99 < Duration::from_millis(50),
        "outside call p99 {call_p99:?}"
    );
    node.shutdown();
}
