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
//! exchange between two processes of one thread is a few queue operations.
//!
//! # Each thread sleeps in a poller of its own
//!
//! A thread with nothing to run sleeps in its own poller (see [`poller`]), where the
//! sockets its connection readers read are watched: a frame from a peer wakes the thread
//! that reads it, directly. (Under async-io's `block_on`, one thread of the OS process at a
//! time waits in the shared reactor, and a frame for another thread's reader woke that
//! thread first, which then woke the reader's — two wake-ups in a row.) The runtime's own
//! timers are the thread's too (see [`timers`]): the earliest bounds the wait. The rest of
//! async-io's sources (a timer of the user's, accepting, connecting, a writer waiting for
//! room) are served by the thread driving async-io's reactor (its own `async-io` thread, or
//! a thread in `block_on`), which wakes the task's thread like any other thread does. The
//! loop looks at its poller whenever the thread has nothing to run,
//! every [`BUDGET`](scheduler::BUDGET) tasks, and whenever
//! [`SERVICE_INTERVAL`](scheduler::SERVICE_INTERVAL) has passed since it last did (see
//! below).
//!
//! # Work from elsewhere does not wait behind a busy neighbour
//!
//! A task woken from outside the run loop — by another thread (a call from outside the
//! node, a message from a process of another thread), by the thread's poller (a socket) or
//! by one of its timers — must not wait for the local queue to drain: a process flooded with messages
//! takes turns of up to a millisecond, and many of them. So the loop looks at the clock
//! every few tasks (every [`CLOCK_EVERY`] while tasks are short, down to every task while
//! they take long) and after any task that says it ran long ([`ran_long`]); once
//! [`SERVICE_INTERVAL`](scheduler::SERVICE_INTERVAL) has passed since it last served the
//! outside, it looks at its poller without waiting, and then runs the tasks injected from
//! other threads before its local queue. Tasks the poller wakes go to the front of the
//! local queue, and so do those of the timers due, which the loop wakes each time it reads
//! the clock.
//!
//! # Busy-waiting before sleeping
//!
//! Waking a parked thread costs tens of microseconds on a VM — more than a whole message
//! round trip between processes. So a thread that runs out of work first busy-waits for
//! the node's [`busy_wait`](crate::NodeBuilder::busy_wait) setting, looking at its poller
//! (without waiting) and its injection queue, and only then sleeps: a reply, a call from
//! another thread or a frame from a peer that comes within that time is picked up at once.
//! The cost is CPU time while idle: at most `busy_wait` per burst of work, so a node with
//! nothing to do sleeps, and one with a steady stream of work spaced less than `busy_wait`
//! apart keeps its threads busy (like Erlang's scheduler busy-wait, `+sbwt`).

mod active;
pub(crate) mod poller;
mod scheduler;
#[cfg(test)]
mod tests;
pub(crate) mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use async_task::{Runnable, Task};
use concurrent_queue::ConcurrentQueue;
use smol::Async;

use active::{Active, Registered, Slot, HOME};
use poller::{ThreadPoller, Watch};
use scheduler::{Scheduler, CLOCK_EVERY};

/// The number of the next scheduler made (see `active::Slot`).
static NEXT_NUMBER: AtomicU32 = AtomicU32::new(0);

/// The bit of [`CURRENT`] set while the run loop is not running (a scheduler's address is
/// aligned, so its lowest bit is free).
const OUTSIDE: usize = 1;

thread_local! {
    /// The scheduler this thread runs (its address), for a node's own threads.
    /// Its lowest bit ([`OUTSIDE`]) is set while the run loop is out, looking at the
    /// thread's poller: a task woken on this thread meanwhile was woken by a socket.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// This thread's local run queue.
    static LOCAL: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
    /// Tasks left to run before the run loop reads the clock (see [`scheduler::Clock`]); one task
    /// that runs long sets it to 1 ([`ran_long`]).
    static CLOCK_LEFT: Cell<u32> = const { Cell::new(CLOCK_EVERY) };
    /// How many tasks started at once ([`Executors::spawn_started`]) are being polled on
    /// this thread, one inside the other.
    static NESTED: Cell<u32> = const { Cell::new(0) };
    /// How many more tasks may start at once on this thread before their spawner yields
    /// (see [`STARTS_PER_STRIDE`]).
    static STARTS_LEFT: Cell<u32> = const { Cell::new(STARTS_PER_STRIDE) };
    /// Tasks of this thread waiting for it to run out of queued work ([`yield_until_idle`]).
    static IDLE_WAITERS: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// After this many tasks started at once ([`Executors::spawn_started`]) since the run loop
/// last read its clock or a spawner last yielded, the spawner yields ([`pace_starts`]). A
/// task that spawns processes in a loop, none of which makes it wait, would otherwise keep
/// its thread from every other task until the loop ends.
pub(super) const STARTS_PER_STRIDE: u32 = 32;

/// Yields to the other tasks of the calling thread if [`STARTS_PER_STRIDE`] tasks have
/// started at once on it since the run loop last read its clock or a spawner last yielded
/// here (a spawner calls it after each spawn): a spawning loop then yields once every 32
/// spawns, as if one spawn in 32 had made it wait.
pub(crate) async fn pace_starts() {
    if STARTS_LEFT.with(Cell::get) == 0 {
        STARTS_LEFT.with(|left| left.set(STARTS_PER_STRIDE));
        smol::future::yield_now().await;
    }
}

/// How deep tasks started at once may nest (a process whose `init` spawns a process whose
/// `init` spawns ...): deeper ones are queued, as [`Executors::spawn`] does, so that a long
/// chain cannot exhaust the thread's stack.
const MAX_NESTED: u32 = 8;

/// Tells the calling scheduler thread that the task it runs has been running for a while
/// (a process's long turn): the thread then sees whether the outside needs serving before
/// it runs the next task, rather than a few more.
#[cold]
#[inline(never)]
pub(crate) fn ran_long() {
    CLOCK_LEFT.with(|left| left.set(1));
}

/// The scheduler whose thread is calling (a key for [`Executors::spawn_on_scheduler`]), 0 on
/// any other thread.
pub(crate) fn current_scheduler() -> usize {
    CURRENT.with(Cell::get) & !OUTSIDE
}

/// Lets every task queued on the calling scheduler thread run before the caller goes on:
/// it is woken once the thread runs out of queued work, or at the thread's next turn
/// serving the outside (every 500 µs at most) if it never does — so no later than a
/// task woken by a socket would be. On any other thread, a plain yield.
///
/// For a connection's reader whose read buffer ran dry: what its frames woke (a process
/// that will reply, a caller that will call again) runs first, and its reply goes out
/// before the read that most likely finds nothing yet — and costs a system call, and
/// another to wait for the socket.
pub(crate) async fn yield_until_idle() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        if current_scheduler() == 0 {
            cx.waker().wake_by_ref();
        } else {
            IDLE_WAITERS.with(|waiters| waiters.borrow_mut().push(cx.waker().clone()));
        }
        Poll::Pending
    })
    .await;
}

/// Wakes the tasks waiting for the calling thread to be idle ([`yield_until_idle`]);
/// `false` if none waits.
fn wake_idle_waiters() -> bool {
    if IDLE_WAITERS.with(|waiters| waiters.borrow().is_empty()) {
        return false;
    }
    // Woken outside the borrow (a wake queues the task: another thread-local).
    let mut waiters = IDLE_WAITERS.with(|waiters| std::mem::take(&mut *waiters.borrow_mut()));
    for waiter in waiters.drain(..) {
        waiter.wake();
    }
    // The list's memory is kept for the next waiters.
    IDLE_WAITERS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.is_empty() {
            *kept = waiters;
        }
    });
    true
}

/// Arms `watch` in the poller of the calling scheduler thread — after moving it there if
/// it is another thread's (a reader that moved), or making it — so that `waker` is woken
/// once `socket` is readable; `None` on any other thread.
pub(crate) fn watch_readable(
    watch: &mut Option<Watch>,
    socket: &Arc<Async<std::net::TcpStream>>,
    waker: &Waker,
) -> Option<io::Result<()>> {
    HOME.try_with(|home| {
        let poller = &home.get()?.poller;
        if !watch.as_ref().is_some_and(|watch| watch.is_in(poller)) {
            // The old watch leaves its poller first.
            *watch = None;
            match Watch::new(poller, socket) {
                Ok(made) => *watch = Some(made),
                Err(error) => return Some(Err(error)),
            }
        }
        watch.as_ref().map(|watch| watch.arm(waker))
    })
    .ok()
    .flatten()
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
    /// How many of the threads have ended their run loop (see [`stop`](Self::stop)).
    ended: Arc<Ended>,
}

/// A count of ended threads, and a condition variable to wait for it on.
#[derive(Default)]
struct Ended {
    count: Mutex<usize>,
    changed: std::sync::Condvar,
}

/// Counts its thread as ended when dropped (at the end of the thread's closure, however
/// it ends).
struct CountsEnd(Arc<Ended>);

impl Drop for CountsEnd {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.changed.notify_all();
    }
}

/// How long [`Executors::stop`] waits for the threads to end before it leaves those still
/// running (a handler stuck in blocking code holds its thread) to end on their own.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The most scheduler threads a node runs (more are asked for: this many).
pub(crate) const MAX_THREADS: usize = 1024;

impl Executors {
    /// Starts `threads` scheduler threads named after the node, each busy-waiting for
    /// `busy_wait` before it sleeps. If a thread or its poller cannot be made (the OS is
    /// out of threads or file descriptors), the threads already started are stopped and
    /// joined, and the error returned.
    pub(crate) fn start(node_name: &str, threads: usize, busy_wait: Duration) -> io::Result<Self> {
        Self::start_with(node_name, threads, busy_wait, |builder, run| {
            builder.spawn(run)
        })
    }

    /// [`start`](Self::start), making each thread with `spawn` (tests make it fail).
    fn start_with(
        node_name: &str,
        threads: usize,
        busy_wait: Duration,
        mut spawn: impl FnMut(thread::Builder, Box<dyn FnOnce() + Send>) -> io::Result<JoinHandle<()>>,
    ) -> io::Result<Self> {
        let threads = threads.clamp(1, MAX_THREADS);
        // (A thread's name may not hold a NUL.)
        let node_name = node_name.replace('\0', "");
        let mut schedulers = Vec::with_capacity(threads);
        for _ in 0..threads {
            schedulers.push(Arc::new(Scheduler {
                injected: ConcurrentQueue::unbounded(),
                poller: Arc::new(ThreadPoller::new()?),
                sleeping: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                busy_wait,
                number: NEXT_NUMBER.fetch_add(1, Ordering::Relaxed),
                active: Mutex::new(Active::default()),
            }));
        }
        let mut handles = Vec::with_capacity(threads);
        let mut failed = None;
        let ended = Arc::new(Ended::default());
        for (index, scheduler) in schedulers.iter().enumerate() {
            let scheduler = scheduler.clone();
            let builder = thread::Builder::new().name(format!("noex-{node_name}-{index}"));
            let ended = ended.clone();
            let run = Box::new(move || {
                let _counts_end = CountsEnd(ended);
                CURRENT.with(|c| c.set(scheduler.id()));
                let _ = HOME.with(|home| home.set(scheduler.clone()));
                crate::dist::remote::keep_on_this_thread();
                spawn_on(&scheduler, crate::server::deadline::install_watch()).detach();
                scheduler.clone().run();
                scheduler.cancel_all();
                CURRENT.with(|c| c.set(0));
            });
            match spawn(builder, run) {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        let executors = Executors {
            thread_ids: handles.iter().map(|h| h.thread().id()).collect(),
            schedulers,
            next: AtomicUsize::new(0),
            threads: Mutex::new(handles),
            ended,
        };
        match failed {
            None => Ok(executors),
            Some(error) => {
                executors.stop();
                Err(error)
            }
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

    /// Spawns a task like [`spawn`](Self::spawn) and, when called from one of this node's
    /// threads, polls it for the first time at once, in the caller, rather than behind the
    /// tasks queued on the thread: a new process's `init`, which its spawner waits for,
    /// then usually ends before the spawner's own poll does, and the spawner neither
    /// yields nor is woken for it. (A spawner then calls [`pace_starts`].)
    ///
    /// The future is made by `make` where it is stored, in the task's memory, rather than
    /// moved there: a process's future is a few hundred bytes.
    pub(crate) fn spawn_started<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
        &self,
        make: impl FnOnce() -> F,
    ) -> Task<T> {
        let depth = NESTED.with(Cell::get);
        let Some(index) = self.current().filter(|_| depth < MAX_NESTED) else {
            return self.spawn(make());
        };
        STARTS_LEFT.with(|left| left.set(left.get().saturating_sub(1)));
        let scheduler = &self.schedulers[index];
        let (runnable, task) = task_on(scheduler, make);
        if scheduler.stopped.load(Ordering::SeqCst) {
            // Dropped unrun, as `spawn_on` would.
            runnable.schedule();
            return task;
        }
        NESTED.with(|nested| nested.set(depth + 1));
        // The future's panics are caught (`propagate_panic`): `run` returns.
        runnable.run();
        NESTED.with(|nested| nested.set(depth));
        task
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

    /// Goes on with `state` in a task on the thread of the scheduler `key`, the future
    /// `run` makes of it (detached) — or hands `state` back if that is not one of this
    /// node's threads. For a connection's reader and writer, which follow the tasks they
    /// serve to their thread.
    pub(crate) fn go_on<S, F>(&self, key: usize, state: S, run: impl FnOnce(S) -> F) -> Option<S>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if !self.is_scheduler(key) {
            return Some(state);
        }
        if let Some(task) = self.spawn_on_scheduler(key, run(state)) {
            task.detach();
        }
        None
    }

    /// How many sockets the threads' pollers watch, in all.
    #[cfg(test)]
    pub(crate) fn watched_sockets(&self) -> usize {
        self.schedulers.iter().map(|s| s.poller.watching()).sum()
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

    /// Asks every thread to stop; joins them unless called from one of them. A thread
    /// that has not ended within [`STOP_WAIT`] — a task of it blocks it (a handler stuck
    /// in blocking code cannot be interrupted) — is left to end on its own once that task
    /// returns, rather than waited for without end.
    pub(crate) fn stop(&self) {
        for scheduler in &self.schedulers {
            scheduler.stopped.store(true, Ordering::SeqCst);
            scheduler.sleeping.store(false, Ordering::SeqCst);
            scheduler.poller.notify();
        }
        let me = thread::current().id();
        if self.thread_ids.contains(&me) {
            return;
        }
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        if handles.is_empty() {
            // Joined (or left) by an earlier call.
            return;
        }
        let count = self
            .ended
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let all = self.thread_ids.len();
        let (count, _) = self
            .ended
            .changed
            .wait_timeout_while(count, STOP_WAIT, |ended| *ended < all)
            .unwrap_or_else(PoisonError::into_inner);
        let all_ended = *count >= all;
        drop(count);
        for handle in handles {
            if all_ended || handle.is_finished() {
                // A thread only ends by returning from `run`; a panic there was already
                // reported.
                let _ = handle.join();
            } else {
                let thread = handle.thread().name().unwrap_or_default().to_owned();
                tracing::warn!(
                    %thread,
                    "a scheduler thread did not stop within {STOP_WAIT:?} (a task blocks \
                     it); left to end on its own"
                );
            }
        }
    }
}

/// Spawns `future` on `scheduler`'s thread. A panic in the task is caught and re-raised
/// where the task is awaited, never on the scheduler thread.
fn spawn_on<T: Send + 'static>(
    scheduler: &Arc<Scheduler>,
    future: impl Future<Output = T> + Send + 'static,
) -> Task<T> {
    let (runnable, task) = task_on(scheduler, || future);
    runnable.schedule();
    task
}

/// A task of `scheduler` running the future `make` makes (in the task's memory),
/// registered with it, not scheduled yet.
fn task_on<T: Send + 'static, F: Future<Output = T> + Send + 'static>(
    scheduler: &Arc<Scheduler>,
    make: impl FnOnce() -> F,
) -> (Runnable, Task<T>) {
    // Nothing is registered once the scheduler stopped: the task is dropped unrun (its
    // queue is closed), and there is nothing left to cancel it later. The slot is
    // reserved and filled under one lock.
    let owner = scheduler.clone();
    let build = |slot: Slot| {
        async_task::Builder::new().propagate_panic(true).spawn(
            move |_| Registered {
                future: make(),
                slot,
            },
            move |runnable| owner.schedule(runnable),
        )
    };
    if scheduler.stopped.load(Ordering::SeqCst) {
        return build(Slot::NONE);
    }
    let mut active = scheduler.active();
    let index = active.reserve();
    let (runnable, task) = build(Slot {
        scheduler: scheduler.number,
        index,
    });
    active.fill(index, runnable.waker());
    drop(active);
    (runnable, task)
}
