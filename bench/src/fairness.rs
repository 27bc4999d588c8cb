//! The `fairness` workload, noex only: work from outside a scheduler thread beside a
//! process flooded with messages on that thread.
//!
//! One node with 1 scheduler thread runs a counting `Sink` and a `Ticker` with a 1 ms
//! interval timer. A task on the same thread keeps the sink's mailbox full (16,384 casts
//! between its yields, up to 200,000 behind), so the sink takes every turn it can, each as
//! long as a turn may be. Meanwhile the bench thread calls
//! the ticker from `Node::block_on` every 500 µs for [`WINDOW`]. Per repetition: the p99
//! of the ticks' lateness (the gap between two ticks beyond 1 ms), the p50 and p99 of those
//! calls, and the casts the sink handled per second (the flood's throughput, to show the
//! fairness does not cost it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use noex::{behavior, Ctx, Info, NodeBuilder};

use crate::common::Plan;
use crate::report::{Figure, Outcome, Report};

/// Casts the flooding task queues between its yields.
const FLOOD_ROUND: u64 = 16_384;

/// How long each repetition measures.
const WINDOW: Duration = Duration::from_millis(800);

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

/// One repetition's figures: lateness p99, call p50, call p99 (µs), casts handled per s.
fn once() -> [f64; 4] {
    let node = NodeBuilder::default().name("fairness").threads(1).build();
    let handled = Arc::new(AtomicU64::new(0));
    let (sink, ticker) = node.block_on(async {
        let sink = node.spawn::<Sink>(handled.clone()).await.expect("sink");
        let ticker = node.spawn::<Ticker>(()).await.expect("ticker");
        (sink, ticker)
    });
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let (sink, flooding, handled) = (sink.clone(), flooding.clone(), handled.clone());
        node.spawn_task(async move {
            let mut sent = 0u64;
            while flooding.load(Ordering::Relaxed) {
                if sent - handled.load(Ordering::Relaxed) < 200_000 {
                    for n in 0..FLOOD_ROUND {
                        let _ = sink.take(n);
                    }
                    sent += FLOOD_ROUND;
                }
                smol::future::yield_now().await;
            }
        })
    };
    let mut calls = Vec::new();
    let (start_handled, start) = (handled.load(Ordering::Relaxed), Instant::now());
    node.block_on(async {
        let _ = ticker.ticks().await;
        while start.elapsed() < WINDOW {
            let call = Instant::now();
            let _ = ticker.ping().await;
            calls.push(call.elapsed().as_secs_f64() * 1e6);
            smol::Timer::after(Duration::from_micros(500)).await;
        }
    });
    let rate =
        (handled.load(Ordering::Relaxed) - start_handled) as f64 / start.elapsed().as_secs_f64();
    let ticks = node.block_on(ticker.ticks()).unwrap_or_default();
    flooding.store(false, Ordering::Relaxed);
    node.block_on(flood);
    node.shutdown();
    let mut late: Vec<f64> = ticks
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs_f64() * 1e6 - 1000.0)
        .map(|late| late.max(0.0))
        .collect();
    let at = |values: &mut Vec<f64>, p: f64| {
        values.sort_by(|a, b| a.total_cmp(b));
        values
            .get(((values.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    [
        at(&mut late, 0.99),
        at(&mut calls, 0.5),
        at(&mut calls, 0.99),
        rate,
    ]
}

/// Runs the `fairness` workload.
pub fn run(plan: &Plan, report: &mut Report) {
    let mut samples: [Vec<f64>; 4] = Default::default();
    for rep in 0..plan.reps {
        for (sample, value) in samples.iter_mut().zip(once()) {
            sample.push(value);
        }
        crate::progress(&format!("fairness: repetition {}/{}", rep + 1, plan.reps));
    }
    let rows = [
        ("timer lateness p99 beside a flooded process", "µs", false),
        (
            "call from outside p50 beside a flooded process",
            "µs",
            false,
        ),
        (
            "call from outside p99 beside a flooded process",
            "µs",
            false,
        ),
        (
            "the flooded process's casts handled meanwhile",
            "msg/s",
            true,
        ),
    ];
    for ((label, unit, higher), sample) in rows.into_iter().zip(samples) {
        let mut figure = Figure::new("fairness", label, unit, higher);
        figure.set("noex", Outcome::from_samples(sample));
        report.figures.push(figure);
    }
    report.notes.push(format!(
        "fairness: one node with 1 scheduler thread; a task on that thread floods a counting process with casts (16,384 between yields, at most 200,000 behind) while a 1 ms interval timer ticks for another process and the bench thread calls that process from `Node::block_on` every 500 µs, for {} ms per repetition; lateness = gap between ticks beyond 1 ms",
        WINDOW.as_millis()
    ));
}
