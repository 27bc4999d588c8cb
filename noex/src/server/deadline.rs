//! Call timeouts (and the other deadlines of the runtime: a spawn's init timeout, a stop's
//! grace period) without a reactor timer each.
//!
//! Every `call` has a timeout, and almost every call is answered long before it. A reactor
//! timer per call costs more than a local call itself (registering one may wake the thread
//! that sleeps in the reactor), so a call made on a node's scheduler thread registers its
//! deadline in that thread's [`Watch`] instead: a slot in a per-thread table.
//!
//! A deadline's clock starts the next time the thread's run loop reads the clock — it does
//! every few tasks, after any long one, and before it waits for work — rather than when the
//! call starts, which saves reading the clock on every call: so a call times out no earlier
//! than asked, and later only by what the thread ran meanwhile. A sweeper task per thread
//! sleeps on one timer (the thread's own: see `node::executors::timers`) set to the
//! earliest expiry it knows of, and wakes the calls whose deadline has passed. That timer
//! is set again only when a deadline expires earlier than it: calls answered within their
//! timeout, one after another, cost no timer and no wake-up at all (a sweeper ticking every
//! few milliseconds would wake a sleeping thread — and move it to another core — that
//! often).
//!
//! Calls made from other threads use a reactor timer — but not while
//! [`Node::block_on`](crate::Node::block_on) busy-waits for the call's answer (see
//! [`deferring_timers`]): most calls from outside are answered within that window, and
//! registering a reactor timer costs a system call.
//!
//! The sweeper frees an expired slot itself when it wakes its call: a deadline that finds
//! its slot freed (or reused, under a newer generation) has expired. So a deadline that is
//! dropped on another thread than its table's — a call future completed elsewhere, which
//! cannot touch this thread's table — costs its table no more than the call would have had
//! it kept waiting: its slot is freed at its expiry.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::node::executors::timers::Sleep;

thread_local! {
    /// The deadline table of a node scheduler thread; not `installed` on any other thread.
    static WATCH: RefCell<Watch> = const { RefCell::new(Watch::new()) };
    /// While a busy-waiting `block_on` polls its future, the data pointer of the waker it
    /// polls it with (see [`deferring_timers`]); 0 otherwise.
    static DEFER_TIMERS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `poll` with the reactor timers of deadlines deferred (off the scheduler threads):
/// a deadline polled meanwhile with `waker` waits unregistered. For a caller that polls the
/// same future again without deferring before it lets its thread park — as
/// `Node::block_on` does when its busy-wait ends — so the deadline's clock starts at most
/// that much later.
///
/// Only a deadline polled with `waker` itself is deferred: one polled with another waker
/// belongs to a future that something else drives — an executor run inside the poll (a
/// nested `block_on`) — which would park its thread with the deadline unregistered.
pub(crate) fn deferring_timers<T>(waker: &Waker, poll: impl FnOnce() -> T) -> T {
    /// Ends the deferral however `poll` ends (a panic included), giving back the one of
    /// an outer `block_on`.
    struct Deferring(usize);
    impl Drop for Deferring {
        fn drop(&mut self) {
            DEFER_TIMERS.with(|defer| defer.set(self.0));
        }
    }
    let outer = DEFER_TIMERS.with(|defer| defer.replace(waker.data() as usize));
    let _deferring = Deferring(outer);
    poll()
}

/// The run loop of the calling scheduler thread has read the clock: the deadlines
/// registered since start theirs.
#[inline]
pub(crate) fn clock_read(now: Instant) {
    let sweeper = WATCH.with(|cell| {
        let mut watch = cell.borrow_mut();
        match watch.unseen.is_empty() {
            true => None,
            false => watch.start_clocks(now),
        }
    });
    if let Some(sweeper) = sweeper {
        sweeper.wake();
    }
}

/// The calling scheduler thread is about to wait for work: the deadlines registered since
/// the clock was last read start theirs, and free slots let go of the wakers they kept (so
/// a quiet thread holds no ended task's memory). `true` if the sweeper was woken (to set
/// its timer earlier): the thread has work after all.
pub(crate) fn before_idle() -> bool {
    let sweeper = WATCH.with(|cell| {
        let mut watch = cell.borrow_mut();
        watch.forget_wakers();
        match watch.unseen.is_empty() {
            true => None,
            false => watch.start_clocks(Instant::now()),
        }
    });
    sweeper.map(Waker::wake).is_some()
}

/// The deadlines registered on one scheduler thread.
pub(crate) struct Watch {
    /// Set on a node's scheduler thread, whose sweeper checks the table.
    installed: bool,
    slots: Vec<Slot>,
    /// Free slots, reused last-freed first: a task making one call after another gets
    /// the same slot back, with its own waker still in it. The slots that keep a waker
    /// are the last ones freed: those pushed since wakers were last forgotten.
    free: Vec<u32>,
    registered: usize,
    /// Slots registered since the clock was last read (index, generation): their clock
    /// has not started.
    unseen: Vec<(u32, u32)>,
    /// No deadline expires before this (one that does may have been released since).
    due: Option<Instant>,
    /// What the sweeper's timer is set to (`None`: not set).
    armed: Option<Instant>,
    /// Free slots may keep wakers.
    kept: bool,
    /// The sweeper's waker.
    sweeper: Option<Waker>,
}

struct Slot {
    /// Bumped each time the slot is freed, so a stale handle cannot touch its successor.
    generation: u32,
    in_use: bool,
    timeout: Duration,
    /// When its clock started.
    seen: Option<Instant>,
    /// The caller's waker. Kept when the slot is freed (its next user is likely the same
    /// task, which then needs no clone) until the thread next waits for work.
    waker: Option<Waker>,
}

impl Watch {
    const fn new() -> Self {
        Watch {
            installed: false,
            slots: Vec::new(),
            free: Vec::new(),
            registered: 0,
            unseen: Vec::new(),
            due: None,
            armed: None,
            kept: false,
            sweeper: None,
        }
    }

    #[inline]
    fn register(&mut self, timeout: Duration, waker: &Waker) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => self.grow(),
        };
        let Some(slot) = self.slots.get_mut(index as usize) else {
            unreachable!("free slots are in the table")
        };
        slot.timeout = timeout;
        slot.seen = None;
        slot.in_use = true;
        match &slot.waker {
            Some(kept) if kept.will_wake(waker) => {}
            _ => slot.waker = Some(waker.clone()),
        }
        let generation = slot.generation;
        self.registered += 1;
        self.unseen.push((index, generation));
        (index, generation)
    }

    #[cold]
    fn grow(&mut self) -> u32 {
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 deadlines");
        self.slots.push(Slot {
            generation: 0,
            in_use: false,
            timeout: Duration::ZERO,
            seen: None,
            waker: None,
        });
        index
    }

    #[inline]
    fn release(&mut self, index: u32, generation: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if slot.in_use && slot.generation == generation {
                slot.in_use = false;
                slot.generation = generation.wrapping_add(1);
                self.registered -= 1;
                self.free.push(index);
                self.kept = true;
                // Released before its clock started (a call answered before the thread
                // next read the clock): not to be started.
                if self.unseen.last() == Some(&(index, generation)) {
                    self.unseen.pop();
                }
            }
        }
    }

    /// Starts the clock of the deadlines registered since it was last read; the sweeper's
    /// waker if one of them expires before its timer is set to fire.
    fn start_clocks(&mut self, now: Instant) -> Option<Waker> {
        let mut unseen = std::mem::take(&mut self.unseen);
        for (index, generation) in unseen.drain(..) {
            let Some(slot) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if !slot.in_use || slot.generation != generation {
                continue;
            }
            slot.seen = Some(now);
            if let Some(at) = now.checked_add(slot.timeout) {
                self.due = Some(self.due.map_or(at, |due| due.min(at)));
            }
        }
        // The list's memory is kept.
        self.unseen = unseen;
        match (self.due, self.armed) {
            (Some(due), Some(armed)) if armed <= due => None,
            (None, _) => None,
            _ => self.sweeper.clone(),
        }
    }

    /// Drops the wakers kept in free slots (they hold their tasks' memory): those of the
    /// slots freed since the last time, which lie on top of the free list.
    fn forget_wakers(&mut self) {
        if !std::mem::take(&mut self.kept) {
            return;
        }
        for &index in self.free.iter().rev() {
            match self.slots.get_mut(index as usize).map(|s| s.waker.take()) {
                Some(Some(_)) => {}
                _ => break,
            }
        }
    }

    /// Starts the clock of new deadlines, frees the slots of expired ones and returns the
    /// wakers of their calls (which find their slot freed: see [`Deadline::poll_expired`]);
    /// finds the next expiry, which the sweeper's timer is to be set to.
    fn expire(&mut self, now: Instant) -> Vec<Waker> {
        self.forget_wakers();
        self.unseen.clear();
        let mut expired = Vec::new();
        let mut due: Option<Instant> = None;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if !slot.in_use {
                continue;
            }
            let seen = *slot.seen.get_or_insert(now);
            if now.duration_since(seen) >= slot.timeout {
                slot.in_use = false;
                slot.generation = slot.generation.wrapping_add(1);
                self.registered -= 1;
                self.free.push(index as u32);
                expired.extend(slot.waker.take());
            } else if let Some(at) = seen.checked_add(slot.timeout) {
                due = Some(due.map_or(at, |due| due.min(at)));
            }
        }
        (self.due, self.armed) = (due, None);
        expired
    }
}

/// Identifies the calling thread's table (the address of its thread-local).
fn table_id(watch: &RefCell<Watch>) -> usize {
    watch as *const RefCell<Watch> as usize
}

/// Installs the deadline table of the calling scheduler thread and returns its sweeper, to
/// be run on that thread's executor.
pub(crate) fn install_watch() -> impl Future<Output = ()> + Send + 'static {
    WATCH.with(|watch| watch.borrow_mut().installed = true);
    async {
        let mut timer = Sleep::never();
        loop {
            // Sleep until the earliest expiry known (set again when an earlier one comes)...
            poll_fn(|cx| {
                let set = WATCH.with(|cell| {
                    let mut watch = cell.borrow_mut();
                    match &watch.sweeper {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        _ => watch.sweeper = Some(cx.waker().clone()),
                    }
                    (watch.armed != watch.due).then(|| {
                        watch.armed = watch.due;
                        watch.due
                    })
                });
                match set {
                    Some(Some(at)) => timer.set_at(at),
                    Some(None) => timer = Sleep::never(),
                    None => {}
                }
                Pin::new(&mut timer).poll(cx)
            })
            .await;
            // ...then wake the calls whose deadline has passed.
            let expired = WATCH.with(|watch| watch.borrow_mut().expire(Instant::now()));
            for waker in expired {
                waker.wake();
            }
        }
    }
}

/// The deadline of one call.
pub(crate) struct Deadline {
    timeout: Duration,
    state: State,
}

enum State {
    /// Not registered yet: a call answered at its first poll never registers.
    Idle,
    /// Registered in the table of the calling thread (`table` tells which).
    Watched {
        table: usize,
        index: u32,
        generation: u32,
    },
    /// Off a scheduler thread: a reactor timer.
    /// (Boxed: rare, and it would double the size of every call's future.)
    Timer(Box<smol::Timer>),
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline {
            timeout,
            state: State::Idle,
        }
    }

    /// `true` once it has a reactor timer.
    #[cfg(test)]
    pub(crate) fn has_timer(&self) -> bool {
        matches!(self.state, State::Timer(_))
    }

    /// How long the deadline is from its start.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ready once the deadline has passed; registers the caller's waker otherwise.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.state {
            State::Idle => {
                let registered = WATCH.with(|cell| {
                    let mut watch = cell.borrow_mut();
                    watch.installed.then(|| {
                        let (index, generation) = watch.register(self.timeout, cx.waker());
                        State::Watched {
                            table: table_id(cell),
                            index,
                            generation,
                        }
                    })
                });
                match registered {
                    // Just registered, with this waker: nothing to check yet.
                    Some(watched) => {
                        self.state = watched;
                        Poll::Pending
                    }
                    None => self.unwatched(cx),
                }
            }
            State::Watched {
                table,
                index,
                generation,
            } => self.poll_watched(cx, table, index, generation),
            State::Timer(ref mut timer) => Pin::new(&mut **timer).poll(cx).map(drop),
        }
    }

    #[cold]
    fn poll_watched(
        &mut self,
        cx: &mut Context<'_>,
        table: usize,
        index: u32,
        generation: u32,
    ) -> Poll<()> {
        let watched = WATCH.with(|cell| {
            if table_id(cell) != table {
                return None;
            }
            let mut watch = cell.borrow_mut();
            let Some(slot) = watch
                .slots
                .get_mut(index as usize)
                .filter(|slot| slot.in_use && slot.generation == generation)
            else {
                // Freed by the sweeper: expired.
                return Some(Poll::Ready(()));
            };
            match &slot.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => slot.waker = Some(cx.waker().clone()),
            }
            Some(Poll::Pending)
        });
        // Polled on another thread than the one it registered on: a scheduler thread's
        // tasks never move, so the future moved to a foreign executor. Fall back to a
        // reactor timer (restarting the clock: at worst the call waits longer).
        watched.unwrap_or_else(|| self.start_timer(cx))
    }

    /// Off a scheduler thread: a reactor timer, unless timers are deferred meanwhile.
    #[cold]
    fn unwatched(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deferring = DEFER_TIMERS.with(Cell::get);
        if deferring != 0 && deferring == cx.waker().data() as usize {
            Poll::Pending
        } else {
            self.start_timer(cx)
        }
    }

    /// Off a scheduler thread: a reactor timer.
    #[cold]
    fn start_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut timer = Box::new(smol::Timer::after(self.timeout));
        let polled = Pin::new(&mut *timer).poll(cx).map(drop);
        self.state = State::Timer(timer);
        polled
    }

    /// Runs `future` until the deadline; `None` if the deadline came first.
    pub(crate) async fn run<F: Future>(&mut self, future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_expired(cx).map(|()| None)
        })
        .await
    }
}

impl Drop for Deadline {
    #[inline]
    fn drop(&mut self) {
        if let State::Watched {
            table,
            index,
            generation,
        } = self.state
        {
            // `try_with`: the thread may be tearing its thread-locals down. A deadline
            // dropped on another thread leaves its slot to the sweeper, which frees it at
            // its expiry (see the module docs).
            let _ = WATCH.try_with(|cell| {
                if table_id(cell) == table {
                    if let Ok(mut watch) = cell.try_borrow_mut() {
                        watch.release(index, generation);
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests;
