//! One scheduler thread: its run loop, and what other threads share with it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;

use super::active::Active;
use super::poller::{Events, ThreadPoller, Until};
use super::timers;
use super::{
    local_pop, wake_idle_waiters, CLOCK_LEFT, CURRENT, IDLE_WAITERS, LOCAL, OUTSIDE, STARTS_LEFT,
    STARTS_PER_STRIDE,
};
use crate::dist::remote;
use crate::server::deadline;

/// Tasks run before a busy thread looks at its poller for events (a system call; an idle
/// thread waits in it anyway). At 256 the look cost a same-thread call
/// round trip 8 %; 1,024 short tasks take some 100 µs. (tokio's current-thread runtime, as
/// actix uses it, looks every 61 ticks of 31 local tasks.)
pub(super) const BUDGET: u32 = 1024;

/// The injection queue is looked at (ahead of the local queue) every this many tasks, so
/// tasks woken from other threads are not starved by a busy local queue.
const INJECTED_EVERY: u32 = 31;

/// The clock is read at most every this many tasks (reading it costs about as much as
/// running a short task, so not after each while tasks are short). While tasks take long,
/// it is read more often, down to after every task: the stride halves when the tasks
/// since the last reading took more than [`LONG_STRIDE`], and doubles back otherwise.
pub(super) const CLOCK_EVERY: u32 = 32;

/// See [`CLOCK_EVERY`].
const LONG_STRIDE: Duration = Duration::from_micros(100);

/// How long a busy thread may go without looking at its poller and running the tasks
/// injected from other threads ahead of its local queue.
pub(super) const SERVICE_INTERVAL: Duration = Duration::from_micros(500);

/// What other threads share with one scheduler thread.
pub(super) struct Scheduler {
    /// Tasks woken from other threads.
    pub(super) injected: ConcurrentQueue<Runnable>,
    /// The poller the thread sleeps in.
    pub(super) poller: Arc<ThreadPoller>,
    /// Set while the thread waits for work: a waker from elsewhere must wake it.
    pub(super) sleeping: AtomicBool,
    pub(super) stopped: AtomicBool,
    /// How long the thread busy-waits for work before it sleeps.
    pub(super) busy_wait: Duration,
    /// A number of its own, unique in the OS process (see `active::Slot`).
    pub(super) number: u32,
    /// The tasks not yet ended, so that stopping can cancel them.
    pub(super) active: Mutex<Active>,
}

impl Scheduler {
    pub(super) fn active(&self) -> std::sync::MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its key: its address (an `Arc`'s, so the same from every clone).
    pub(super) fn id(&self) -> usize {
        self as *const Scheduler as usize
    }

    /// Queues a woken task: locally if on this scheduler's thread, else injected.
    pub(super) fn schedule(self: &Arc<Self>, runnable: Runnable) {
        let current = CURRENT.with(Cell::get);
        if current & !OUTSIDE == self.id() {
            // Woken by a task of this thread: behind the others. Woken by the thread's
            // poller (a socket) or one of its timers: ahead of them, as work from outside.
            // (The thread is awake either way: those are woken once it is back from its
            // wait, or between two tasks.)
            if current & OUTSIDE != 0 {
                LOCAL.with(|local| local.borrow_mut().push_front(runnable));
            } else {
                LOCAL.with(|local| local.borrow_mut().push_back(runnable));
            }
            return;
        }
        // Only fails once closed, at shutdown: the task is then dropped, as intended.
        let _ = self.injected.push(runnable);
        self.wake();
    }

    /// Wakes the thread if it waits for work.
    pub(super) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.poller.notify();
        }
    }

    /// Runs tasks until the node stops, waiting in the thread's poller whenever it has
    /// none to run.
    pub(super) fn run(self: Arc<Self>) {
        let mut state = Turns {
            until_injected: INJECTED_EVERY,
            clock: Clock::new(),
            idle_since: None,
            injected_first: 0,
        };
        let mut events = Events::new();
        loop {
            let until = match self.turn(&mut state) {
                Turn::Stopped => return,
                Turn::Again => Until::Now,
                Turn::Sleep => timers::earliest().map_or(Until::Never, Until::At),
            };
            // Tasks woken while the thread waits, or by the sockets it watches, are woken
            // from outside the run loop.
            self.outside(true);
            self.poller.wait(&mut events, until);
            // Awake: a waker needs not notify the poller (a wake-up it misses here is in
            // the injected queue, which the run loop looks at before it sleeps again).
            self.sleeping.store(false, Ordering::SeqCst);
            self.poller.wake_ready(&events);
        }
    }

    fn outside(&self, outside: bool) {
        let id = self.id();
        CURRENT.with(|current| current.set(if outside { id | OUTSIDE } else { id }));
    }

    /// Runs tasks until the thread is to look at its poller: at once (`Again`), or to
    /// sleep there (`Sleep`).
    fn turn(&self, state: &mut Turns) -> Turn {
        let Turns {
            until_injected,
            clock,
            idle_since,
            injected_first,
        } = state;
        let now = Instant::now();
        // (Still outside: the timers' tasks go ahead of the others.)
        timers::wake_due(now);
        self.outside(false);
        let serve_at = now + SERVICE_INTERVAL;
        // The time the thread spent outside (asleep, or polling) is not the tasks':
        // measure them from here.
        clock.restart(now);
        deadline::clock_read(now);
        for _ in 0..BUDGET {
            if self.stopped.load(Ordering::Relaxed) {
                self.outside(true);
                return Turn::Stopped;
            }
            let next = if *until_injected == 0 {
                *until_injected = match *injected_first {
                    0 => INJECTED_EVERY,
                    _ => {
                        *injected_first -= 1;
                        0
                    }
                };
                self.injected.pop().ok().or_else(local_pop)
            } else {
                *until_injected -= 1;
                local_pop().or_else(|| self.injected.pop().ok())
            };
            match next {
                Some(runnable) => {
                    *idle_since = None;
                    runnable.run();
                    let read = clock.tick();
                    if let Some(now) = read {
                        deadline::clock_read(now);
                        // A timer due goes ahead of the local queue, as if woken from
                        // outside: not behind a flood.
                        if timers::earliest().is_some_and(|at| at <= now) {
                            self.outside(true);
                            timers::wake_due(now);
                            self.outside(false);
                        }
                    }
                    if read.is_some_and(|now| now >= serve_at) {
                        // Serve the outside: the poller now, the injected tasks next (and
                        // the tasks waiting for the thread to be idle: it may not be for
                        // a while).
                        (*injected_first, *until_injected) = (self.injected.len(), 0);
                        wake_idle_waiters();
                        return Turn::Again;
                    }
                }
                // Out of queued work: the tasks waiting for that go on, and the new call
                // deadlines start their clocks (which may wake the sweeper); a closed
                // connection kept for sending is let go of.
                None if wake_idle_waiters() | before_idle() => {}
                // Polls without waiting, and comes back.
                None if self.busy_waits(idle_since) => return Turn::Again,
                None => {
                    // Announce the sleep, then look again: a task injected meanwhile is
                    // either seen here or its scheduler sees `sleeping` and wakes us.
                    self.sleeping.store(true, Ordering::SeqCst);
                    if self.injected.is_empty() && !self.stopped.load(Ordering::SeqCst) {
                        return Turn::Sleep;
                    }
                    self.sleeping.store(false, Ordering::SeqCst);
                }
            }
        }
        // Budget spent: poll, then come back at once.
        wake_idle_waiters();
        Turn::Again
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
    pub(super) fn cancel_all(&self) {
        // Dropped outside the borrow: a task dropped with its waker may wake another.
        drop(IDLE_WAITERS.with(|waiters| std::mem::take(&mut *waiters.borrow_mut())));
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

/// What the run loop keeps from one turn to the next.
struct Turns {
    /// Local tasks to run before the injected queue is looked at first.
    until_injected: u32,
    clock: Clock,
    /// Since when the thread has found no work (busy-waiting).
    idle_since: Option<Instant>,
    /// Injected tasks to run ahead of the local queue.
    injected_first: usize,
}

/// How a turn of the run loop ends.
enum Turn {
    /// The node stopped.
    Stopped,
    /// The poller is to be looked at without waiting.
    Again,
    /// The poller is to be waited in: there is nothing to run.
    Sleep,
}

/// When the run loop reads the clock (see [`CLOCK_EVERY`]); the count of tasks left until
/// then is [`CLOCK_LEFT`].
pub(super) struct Clock {
    stride: u32,
    /// When the tasks since the last reading count as long.
    long_at: Instant,
}

impl Clock {
    pub(super) fn new() -> Clock {
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
        STARTS_LEFT.with(|left| left.set(STARTS_PER_STRIDE));
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
        STARTS_LEFT.with(|left| left.set(STARTS_PER_STRIDE));
        Some(now)
    }
}

/// The calling scheduler thread is about to wait for work (see `deadline::before_idle`);
/// `true` if it has work after all.
fn before_idle() -> bool {
    remote::forget_closed();
    deadline::before_idle()
}
