//! Tests of the scheduler threads.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use futures_lite::FutureExt;

use super::*;

/// Waits for `future` on the test thread, failing after 10 s.
fn wait<T>(future: impl Future<Output = T>) -> T {
    smol::block_on(future.or(async {
        smol::Timer::after(Duration::from_secs(10)).await;
        panic!("timed out")
    }))
}

#[test]
fn a_task_woken_by_a_timer_on_its_idle_thread_runs() {
    // The idle thread sleeps in its own poller; the timer is served by the thread driving
    // async-io's reactor, which wakes the task's thread from there.
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    for _ in 0..20 {
        let task = executors.spawn(async {
            smol::Timer::after(Duration::from_millis(2)).await;
            7
        });
        assert_eq!(wait(task), 7);
    }
    executors.stop();
}

#[test]
fn a_task_woken_from_another_thread_runs() {
    let executors = Executors::start("test", 2, Duration::ZERO).unwrap();
    let (tx, rx) = async_channel::unbounded::<u32>();
    let task = executors.spawn(async move {
        let mut sum = 0;
        while let Ok(n) = rx.recv().await {
            sum += n;
        }
        sum
    });
    for n in 0..1_000 {
        tx.send_blocking(n).unwrap();
    }
    drop(tx);
    assert_eq!(wait(task), (0..1_000).sum());
    executors.stop();
}

#[test]
fn tasks_spawned_on_a_scheduler_thread_stay_on_it() {
    let executors = Arc::new(Executors::start("test", 2, Duration::ZERO).unwrap());
    let inner = executors.clone();
    let same = wait(executors.spawn(async move {
        let here = thread::current().id();
        let child = inner.spawn(async { thread::current().id() });
        child.await == here
    }));
    assert!(same);
    executors.stop();
}

#[test]
fn stopping_cancels_the_tasks_left() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Flag(dropped.clone());
    let (started_tx, started) = async_channel::bounded::<()>(1);
    executors
        .spawn(async move {
            let _flag = flag;
            started_tx.send(()).await.unwrap();
            std::future::pending::<()>().await
        })
        .detach();
    wait(started.recv()).unwrap();
    executors.stop();
    assert!(
        dropped.load(Ordering::SeqCst),
        "the pending task was dropped"
    );
}

#[test]
fn spawning_onto_a_stopped_scheduler_neither_panics_nor_hangs() {
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    // Tasks that ended leave free slots behind.
    for n in 0..3 {
        assert_eq!(wait(executors.spawn(async move { n })), n);
    }
    executors.stop();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    executors
        .spawn(async move { flag.store(true, Ordering::SeqCst) })
        .detach();
    assert!(
        !ran.load(Ordering::SeqCst),
        "a stopped scheduler runs nothing"
    );
}

#[test]
fn a_panicking_task_does_not_take_its_thread_down() {
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    let failed = executors.spawn(async { panic!("on purpose") });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait(failed)));
    assert!(
        outcome.is_err(),
        "the panic reaches whoever awaits the task"
    );
    assert_eq!(wait(executors.spawn(async { 1 })), 1);
    executors.stop();
}

#[test]
fn a_task_yielding_until_idle_goes_on_after_all_the_work_it_queued() {
    let executors = Arc::new(Executors::start("test", 1, Duration::ZERO).unwrap());
    let inner = executors.clone();
    let order = wait(executors.spawn(async move {
        let order = Arc::new(Mutex::new(Vec::new()));
        // A chain of tasks, each queuing the next after a plain yield: a plain yield of
        // the reader's would go on before the end of the chain.
        let chain = {
            let order = order.clone();
            let inner = inner.clone();
            inner.clone().spawn(async move {
                for step in 0..3 {
                    smol::future::yield_now().await;
                    order.lock().unwrap().push(format!("chain {step}"));
                }
                let order = order.clone();
                inner
                    .spawn(async move { order.lock().unwrap().push("last".into()) })
                    .detach();
            })
        };
        yield_until_idle().await;
        order.lock().unwrap().push("after idle".into());
        chain.await;
        let order = order.lock().unwrap().clone();
        order
    }));
    assert_eq!(
        order,
        ["chain 0", "chain 1", "chain 2", "last", "after idle"]
    );
    executors.stop();
}

#[test]
fn a_task_yielding_until_idle_on_a_busy_thread_goes_on_at_its_next_service_turn() {
    let executors = Arc::new(Executors::start("test", 1, Duration::ZERO).unwrap());
    let busy = Arc::new(AtomicBool::new(true));
    // Keeps the thread's queue from ever emptying.
    let spinner = {
        let busy = busy.clone();
        executors.spawn(async move {
            while busy.load(Ordering::Relaxed) {
                smol::future::yield_now().await;
            }
        })
    };
    let waited = executors.spawn(async move {
        yield_until_idle().await;
        busy.store(false, Ordering::Relaxed);
    });
    wait(waited);
    wait(spinner);
    executors.stop();
}

#[test]
fn the_threads_own_timers_fire_in_order_and_a_dropped_one_never() {
    use super::timers::{Interval, Sleep};
    use futures_lite::future;
    // One thread, asleep between the timers: its poller's wait ends at the earliest.
    let executors = Arc::new(Executors::start("test", 1, Duration::ZERO).unwrap());
    let spawner = executors.clone();
    let task = executors.spawn(async move {
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::<u64>::new()));
        // One task each: timers that come due in one reading of the clock (a busy
        // machine) wake their tasks in deadline order, whereas one task polling them all
        // would see them in its own order.
        let sleeper = |ms: u64| {
            let order = order.clone();
            spawner.spawn(async move {
                Sleep::after(Duration::from_millis(ms)).await;
                order.lock().unwrap().push(ms);
            })
        };
        // Polled once, then dropped: its entry leaves the table.
        let mut dropped = Box::pin(Sleep::after(Duration::from_millis(1)));
        assert!(future::poll_once(&mut dropped).await.is_none());
        drop(dropped);
        let sleepers = [sleeper(9), sleeper(3), sleeper(6)];
        for sleeper in sleepers {
            sleeper.await;
        }
        assert_eq!(*order.lock().unwrap(), [3, 6, 9]);
        assert!(
            start.elapsed() >= Duration::from_millis(9),
            "none fires early"
        );
        let mut ticks = Interval::new(Duration::from_millis(2));
        for _ in 0..3 {
            ticks.tick().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(15));
        super::timers::earliest()
    });
    assert_eq!(wait(task), None, "nothing left in the table");
    executors.stop();
}

#[test]
fn timers_due_together_run_in_the_order_they_were_set() {
    use super::timers::Sleep;
    // One deadline for all: they come due in one reading of the clock.
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let at = Instant::now() + Duration::from_millis(5);
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let order = order.clone();
            executors.spawn(async move {
                Sleep::until(Some(at)).await;
                order.lock().unwrap().push(n);
            })
        })
        .collect();
    for task in tasks {
        wait(task);
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    executors.stop();
}

#[test]
fn an_interval_longer_than_an_instant_can_reach_never_ticks() {
    use super::timers::Interval;
    use futures_lite::future;
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    let task = executors.spawn(async {
        let mut ticks = Interval::new(Duration::MAX);
        future::poll_once(Box::pin(ticks.tick())).await.is_none()
    });
    assert!(wait(task), "it never ticks (and does not panic)");
    executors.stop();
}

#[test]
fn a_late_interval_skips_the_ticks_it_missed() {
    use super::timers::Interval;
    let executors = Executors::start("test", 1, Duration::ZERO).unwrap();
    let task = executors.spawn(async {
        let mut ticks = Interval::new(Duration::from_millis(2));
        ticks.tick().await;
        // The thread busy for five periods: one late tick, then the next a period later.
        std::thread::sleep(Duration::from_millis(10));
        ticks.tick().await;
        let late = Instant::now();
        ticks.tick().await;
        late.elapsed()
    });
    assert!(
        wait(task) >= Duration::from_millis(1),
        "no burst of missed ticks"
    );
    executors.stop();
}

#[test]
fn a_thread_that_cannot_start_stops_the_threads_started_before_it() {
    let started = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let (counted, done) = (started.clone(), ended.clone());
    let result = Executors::start_with("test", 3, Duration::ZERO, move |builder, run| {
        if counted.load(Ordering::SeqCst) == 2 {
            return Err(io::Error::other("out of threads"));
        }
        counted.fetch_add(1, Ordering::SeqCst);
        let done = done.clone();
        builder.spawn(move || {
            run();
            done.fetch_add(1, Ordering::SeqCst);
        })
    });
    let error = result.err().expect("the third thread failed to start");
    assert_eq!(error.to_string(), "out of threads");
    // The two threads that started were stopped and joined before the error came back.
    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert_eq!(ended.load(Ordering::SeqCst), 2);
}
