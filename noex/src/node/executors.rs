//! The node's scheduler threads, each running its own tasks from a queue of its own.
//!
//! A process spawned from one of the node's threads runs on that thread, like Erlang placing
//! a spawned process on its parent's scheduler: processes that talk to each other then
//! share a thread, and a call between them costs no cross-thread wake-up. Work spawned from
//! any other thread is spread round-robin over the threads.
//!
//! Each thread is a small purpose-built executor on [`async_task`]: a task woken on its own
//! thread goes to that thread's local queue — a plain `VecDeque`, no atomics, no notification
//! — and one woken from elsewhere goes to the thread's injection queue, waking the thread
//! only if it sleeps. A general-purpose executor pays for work stealing and for notifying
//! other threads on every wake-up; here a task never moves between threads, so a message
//! exchange between two processes of one thread is a few queue operations. The loop runs
//! inside `smol::block_on`, which drives the I/O reactor whenever the thread has nothing to
//! run, every [`BUDGET`] tasks, and whenever [`SERVICE_INTERVAL`] has passed since it last
//! did (see below).
//!
//! # Work from elsewhere does not wait behind a busy neighbour
//!
//! A task woken from outside the run loop — by another thread (a call from outside the
//! node, a message from a process of another thread), or by the reactor on this thread (a
//! timer, a socket) — must not wait for the local queue to drain: a process flooded with
//! messages takes turns of up to a millisecond, and many of them. So the loop looks at the
//! clock every few tasks (every [`CLOCK_EVERY`] while tasks are short, down to every
//! task while they take long) and after any task that says it ran long ([`ran_long`]); once [`SERVICE_INTERVAL`] has passed since it last served the outside, it
//! lets `block_on` poll the reactor, and then runs the tasks injected from other threads
//! before its local queue. Tasks the reactor wakes go to the front of the local queue.
//!
//! # Busy-waiting before sleeping
//!
//! Waking a parked thread costs tens of microseconds on a VM — more than a whole message
//! round trip between processes. So a thread that runs out of work first busy-waits for
//! the node's [`busy_wait`](crate::NodeBuilder::busy_wait) setting, polling the reactor
//! (without blocking) and its injection queue, and only then sleeps: a reply, a call from
//! another thread or a frame from a peer that comes within that time is picked up at once.
//! The cost is CPU time while idle: at most `busy_wait` per burst of work, so a node with
//! nothing to do sleeps, and one with a steady stream of work spaced less than `busy_wait`
//! apart keeps its threads busy (like Erlang's scheduler busy-wait, `+sbwt`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use async_task::{Runnable, Task};
use atomic_waker::AtomicWaker;
use concurrent_queue::ConcurrentQueue;

/// Tasks run before a busy thread lets the I/O reactor look for events (a system call;
/// an idle thread waits in the reactor anyway). At 256 the look cost a same-thread call
/// round trip 8 %; 1,024 short tasks take some 100 µs. (tokio's current-thread runtime, as
/// actix uses it, looks every 61 ticks of 31 local tasks.)
const BUDGET: u32 = 1024;

/// The injection queue is looked at (ahead of the local queue) every this many tasks, so
/// tasks woken from other threads are not starved by a busy local queue.
const INJECTED_EVERY: u32 = 31;

/// The bit of [`CURRENT`] set while the run loop is not running (a scheduler's address is
/// aligned, so its lowest bit is free).
const OUTSIDE: usize = 1;

/// The clock is read at most every this many tasks (reading it costs about as much as
/// running a short task, so not after each while tasks are short). While tasks take long,
/// it is read more often, down to after every task: the stride halves when the tasks
/// since the last reading took more than [`LONG_STRIDE`], and doubles back otherwise.
const CLOCK_EVERY: u32 = 32;

/// See [`CLOCK_EVERY`].
const LONG_STRIDE: Duration = Duration::from_micros(100);

/// How long a busy thread may go without polling the reactor and running the tasks
/// injected from other threads ahead of its local queue.
const SERVICE_INTERVAL: Duration = Duration::from_micros(500);

thread_local! {
    /// The scheduler this thread runs (its address), for a node's own threads.
    /// Its lowest bit ([`OUTSIDE`]) is set while the run loop has handed the thread back
    /// to `block_on`: a task woken on this thread meanwhile was woken by the reactor.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// This thread's local run queue.
    static LOCAL: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
    /// Tasks left to run before the run loop reads the clock (see [`Clock`]); one task
    /// that runs long sets it to 1 ([`ran_long`]).
    static CLOCK_LEFT: Cell<u32> = const { Cell::new(CLOCK_EVERY) };
}

/// Tells the calling scheduler thread that the task it runs has been running for a while
/// (a process's long turn): the thread then sees whether the outside needs serving before
/// it runs the next task, rather than a few more.
#[cold]
#[inline(never)]
pub(crate) fn ran_long() {
    CLOCK_LEFT.with(|left| left.set(1));
}

/// What other threads share with one scheduler thread.
struct Scheduler {
    /// Tasks woken from other threads.
    injected: ConcurrentQueue<Runnable>,
    /// Wakes the thread's `block_on`.
    waker: AtomicWaker,
    /// Set while the thread waits for work: a waker from elsewhere must wake it.
    sleeping: AtomicBool,
    stopped: AtomicBool,
    /// How long the thread busy-waits for work before it sleeps.
    busy_wait: Duration,
    /// The tasks not yet ended, so that stopping can cancel them.
    active: Mutex<Active>,
}

/// A slab of the wakers of the tasks alive on one scheduler.
#[derive(Default)]
struct Active {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Active {
    /// A slot for a task about to be spawned (filled by [`Active::fill`]).
    fn reserve(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.wakers.push(None);
            self.wakers.len() - 1
        })
    }

    fn fill(&mut self, key: usize, waker: Waker) {
        if let Some(slot @ None) = self.wakers.get_mut(key) {
            *slot = Some(waker);
        }
    }

    fn remove(&mut self, key: usize) {
        if let Some(slot @ Some(_)) = self.wakers.get_mut(key) {
            *slot = None;
            self.free.push(key);
        }
    }
}

pin_project_lite::pin_project! {
    /// A task's future, which removes the task from its scheduler's [`Active`] when it is
    /// dropped, however it ends. (A struct rather than an `async` block: an `async` block
    /// awaiting a captured future holds it twice, doubling a process's memory.)
    struct Registered<F> {
        #[pin]
        future: F,
        scheduler: Arc<Scheduler>,
        key: usize,
    }

    impl<F> PinnedDrop for Registered<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.scheduler.active().remove(*this.key);
        }
    }
}

impl<F: Future> Future for Registered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl Scheduler {
    fn active(&self) -> std::sync::MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// Queues a woken task: locally if on this scheduler's thread, else injected.
    fn schedule(self: &Arc<Self>, runnable: Runnable) {
        let current = CURRENT.with(Cell::get);
        if current & !OUTSIDE == self.id() {
            // Woken by a task of this thread: behind the others. Woken by the reactor (a
            // timer, a socket): ahead of them, as work from outside.
            if current & OUTSIDE != 0 {
                LOCAL.with(|local| local.borrow_mut().push_front(runnable));
            } else {
                LOCAL.with(|local| local.borrow_mut().push_back(runnable));
            }
            // Woken on this thread but outside the run loop — by the I/O reactor, which
            // `block_on` drives while the loop sleeps — the loop must be woken too. (On
            // this thread, a plain load sees the loop's own store.)
            if self.sleeping.load(Ordering::Relaxed) {
                self.wake();
            }
            return;
        }
        // Only fails once closed, at shutdown: the task is then dropped, as intended.
        let _ = self.injected.push(runnable);
        self.wake();
    }

    /// Wakes the thread if it waits for work.
    fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Runs tasks until the node stops.
    async fn run(self: Arc<Self>) {
        // Local tasks to run before the injected queue is looked at first.
        let mut until_injected = INJECTED_EVERY;
        let mut clock = Clock::new();
        // Since when the thread has found no work (busy-waiting).
        let mut idle_since: Option<Instant> = None;
        // Injected tasks to run ahead of the local queue.
        let mut injected_first = 0usize;
        let id = self.id();
        let outside = |outside: bool| {
            CURRENT.with(|current| current.set(if outside { id | OUTSIDE } else { id }))
        };
        poll_fn(|cx| {
            self.waker.register(cx.waker());
            // Here `block_on` has just polled the reactor.
            outside(false);
            let now = Instant::now();
            let serve_at = now + SERVICE_INTERVAL;
            // The time the thread spent outside (asleep, or polling the reactor) is not
            // the tasks': measure them from here.
            clock.restart(now);
            for _ in 0..BUDGET {
                if self.stopped.load(Ordering::Relaxed) {
                    outside(true);
                    return Poll::Ready(());
                }
                let next = if until_injected == 0 {
                    until_injected = match injected_first {
                        0 => INJECTED_EVERY,
                        _ => {
                            injected_first -= 1;
                            0
                        }
                    };
                    self.injected.pop().ok().or_else(local_pop)
                } else {
                    until_injected -= 1;
                    local_pop().or_else(|| self.injected.pop().ok())
                };
                match next {
                    Some(runnable) => {
                        idle_since = None;
                        runnable.run();
                        if clock.tick().is_some_and(|now| now >= serve_at) {
                            // Serve the outside: the reactor now, the injected tasks next.
                            (injected_first, until_injected) = (self.injected.len(), 0);
                            outside(true);
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    }
                    None if self.busy_waits(&mut idle_since) => {
                        // `block_on` polls the reactor without blocking and comes back.
                        outside(true);
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    None => {
                        // Announce the sleep, then look again: a task injected meanwhile
                        // is either seen here or its scheduler sees `sleeping` and wakes us.
                        self.sleeping.store(true, Ordering::SeqCst);
                        if self.injected.is_empty() && !self.stopped.load(Ordering::SeqCst) {
                            outside(true);
                            return Poll::Pending;
                        }
                        self.sleeping.store(false, Ordering::SeqCst);
                    }
                }
            }
            // Budget spent: let `block_on` poll the reactor, then come back at once.
            outside(true);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    /// `true` while the thread, out of work since `idle_since`, should busy-wait rather
    /// than sleep.
    fn busy_waits(&self, idle_since: &mut Option<Instant>) -> bool {
        if self.busy_wait.is_zero() {
            return false;
        }
        let now = Instant::now();
        let since = *idle_since.get_or_insert(now);
        if now.duration_since(since) < self.busy_wait {
            // Let other threads of the machine run meanwhile, if any wait.
            thread::yield_now();
            return true;
        }
        false
    }
}

impl Scheduler {
    /// Cancels every task left (on the scheduler's thread, once it stopped running them):
    /// wakes each, so it is queued, then drops the queued tasks, which drops their futures.
    fn cancel_all(&self) {
        let active = std::mem::take(&mut *self.active());
        for waker in active.wakers.into_iter().flatten() {
            waker.wake();
        }
        self.injected.close();
        // Dropped outside any borrow of the queue: a future's drop may wake another task.
        loop {
            let left = LOCAL.with(|local| std::mem::take(&mut *local.borrow_mut()));
            let injected: Vec<_> = std::iter::from_fn(|| self.injected.pop().ok()).collect();
            if left.is_empty() && injected.is_empty() {
                return;
            }
            drop(left);
            drop(injected);
        }
    }
}

/// When the run loop reads the clock (see [`CLOCK_EVERY`]); the count of tasks left until
/// then is [`CLOCK_LEFT`].
struct Clock {
    stride: u32,
    /// When the tasks since the last reading count as long.
    long_at: Instant,
}

impl Clock {
    fn new() -> Clock {
        CLOCK_LEFT.with(|left| left.set(CLOCK_EVERY));
        Clock {
            stride: CLOCK_EVERY,
            long_at: Instant::now() + LONG_STRIDE,
        }
    }

    /// Starts measuring the tasks from `now` (the run loop is back from outside).
    #[inline]
    fn restart(&mut self, now: Instant) {
        self.long_at = now + LONG_STRIDE;
    }

    /// Counts a task run; the time now if the clock is due.
    #[inline]
    fn tick(&mut self) -> Option<Instant> {
        let due = CLOCK_LEFT.with(|left| {
            let now_left = left.get().saturating_sub(1);
            left.set(now_left);
            now_left == 0
        });
        if !due {
            return None;
        }
        let now = Instant::now();
        self.stride = if now > self.long_at {
            (self.stride / 2).max(1)
        } else {
            (self.stride * 2).min(CLOCK_EVERY)
        };
        self.long_at = now + LONG_STRIDE;
        CLOCK_LEFT.with(|left| left.set(self.stride));
        Some(now)
    }
}

/// The scheduler whose thread is calling (a key for [`Executors::spawn_on_scheduler`]), 0 on
/// any other thread.
pub(crate) fn current_scheduler() -> usize {
    CURRENT.with(Cell::get) & !OUTSIDE
}

fn local_pop() -> Option<Runnable> {
    LOCAL.with(|local| local.borrow_mut().pop_front())
}

/// The scheduler threads of one node.
pub(crate) struct Executors {
    schedulers: Vec<Arc<Scheduler>>,
    next: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    thread_ids: Vec<ThreadId>,
}

impl Executors {
    /// Starts `threads` scheduler threads named after the node, each busy-waiting for
    /// `busy_wait` before it sleeps.
    pub(crate) fn start(node_name: &str, threads: usize, busy_wait: Duration) -> Self {
        let threads = threads.max(1);
        let schedulers: Vec<_> = (0..threads)
            .map(|_| {
                Arc::new(Scheduler {
                    injected: ConcurrentQueue::unbounded(),
                    waker: AtomicWaker::new(),
                    sleeping: AtomicBool::new(false),
                    stopped: AtomicBool::new(false),
                    busy_wait,
                    active: Mutex::new(Active::default()),
                })
            })
            .collect();
        let mut handles = Vec::with_capacity(threads);
        for (index, scheduler) in schedulers.iter().enumerate() {
            let scheduler = scheduler.clone();
            let handle = thread::Builder::new()
                .name(format!("noex-{node_name}-{index}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(scheduler.id()));
                    spawn_on(&scheduler, crate::server::deadline::install_watch()).detach();
                    smol::block_on(scheduler.clone().run());
                    scheduler.cancel_all();
                    CURRENT.with(|c| c.set(0));
                })
                .expect("failed to start a noex scheduler thread");
            handles.push(handle);
        }
        Executors {
            thread_ids: handles.iter().map(|h| h.thread().id()).collect(),
            schedulers,
            next: AtomicUsize::new(0),
            threads: Mutex::new(handles),
        }
    }

    /// The scheduler of the calling thread, if it is one of ours.
    fn current(&self) -> Option<usize> {
        let current = current_scheduler();
        self.schedulers.iter().position(|s| s.id() == current)
    }

    /// `true` when called from one of this node's scheduler threads.
    pub(crate) fn on_own_thread(&self) -> bool {
        self.current().is_some()
    }

    /// Spawns a task: on the calling thread if it is ours, else round-robin.
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        let index = self
            .current()
            .unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % self.schedulers.len());
        spawn_on(&self.schedulers[index], future)
    }

    /// `true` if `key` (from [`current_scheduler`]) is one of this node's schedulers.
    pub(crate) fn is_scheduler(&self, key: usize) -> bool {
        self.schedulers.iter().any(|s| s.id() == key)
    }

    /// Spawns a task on the thread of the scheduler `key` (from [`current_scheduler`]);
    /// `None` if it is not one of this node's.
    pub(crate) fn spawn_on_scheduler<T: Send + 'static>(
        &self,
        key: usize,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Option<Task<T>> {
        let scheduler = self.schedulers.iter().find(|s| s.id() == key)?;
        Some(spawn_on(scheduler, future))
    }

    /// Number of scheduler threads.
    pub(crate) fn threads(&self) -> usize {
        self.schedulers.len()
    }

    /// How long a thread busy-waits before it sleeps.
    pub(crate) fn busy_wait(&self) -> Duration {
        self.schedulers
            .first()
            .map_or(Duration::ZERO, |s| s.busy_wait)
    }

    /// Asks every thread to stop; joins them unless called from one of them.
    pub(crate) fn stop(&self) {
        for scheduler in &self.schedulers {
            scheduler.stopped.store(true, Ordering::SeqCst);
            scheduler.sleeping.store(false, Ordering::SeqCst);
            scheduler.waker.wake();
        }
        let me = thread::current().id();
        if self.thread_ids.contains(&me) {
            return;
        }
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            // A thread only ends by returning from `run`; a panic there was already reported.
            let _ = handle.join();
        }
    }
}

/// Spawns `future` on `scheduler`'s thread. A panic in the task is caught and re-raised
/// where the task is awaited, never on the scheduler thread.
fn spawn_on<T: Send + 'static>(
    scheduler: &Arc<Scheduler>,
    future: impl Future<Output = T> + Send + 'static,
) -> Task<T> {
    // Nothing is registered once the scheduler stopped: the task is dropped unrun (its
    // queue is closed), and there is nothing left to cancel it later.
    const NONE: usize = usize::MAX;
    let stopped = || scheduler.stopped.load(Ordering::SeqCst);
    let key = if stopped() {
        NONE
    } else {
        scheduler.active().reserve()
    };
    let future = Registered {
        future,
        scheduler: scheduler.clone(),
        key,
    };
    let owner = scheduler.clone();
    let (runnable, task) = async_task::Builder::new()
        .propagate_panic(true)
        .spawn(|_| future, move |runnable| owner.schedule(runnable));
    if key != NONE && !stopped() {
        scheduler.active().fill(key, runnable.waker());
    }
    runnable.schedule();
    task
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

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
        // The idle thread drives the reactor itself; the timer wakes the task from there,
        // outside the run loop.
        let executors = Executors::start("test", 1, Duration::ZERO);
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
        let executors = Executors::start("test", 2, Duration::ZERO);
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
        let executors = Arc::new(Executors::start("test", 2, Duration::ZERO));
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
        let executors = Executors::start("test", 1, Duration::ZERO);
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
        let executors = Executors::start("test", 1, Duration::ZERO);
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
        let executors = Executors::start("test", 1, Duration::ZERO);
        let failed = executors.spawn(async { panic!("on purpose") });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait(failed)));
        assert!(
            outcome.is_err(),
            "the panic reaches whoever awaits the task"
        );
        assert_eq!(wait(executors.spawn(async { 1 })), 1);
        executors.stop();
    }
}
