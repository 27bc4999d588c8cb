//! Each scheduler thread's own poller: the thread sleeps in it, and the sockets its tasks
//! read are watched in it.
//!
//! async-io has one reactor for the whole OS process, and only one thread at a time waits
//! in it; every other idle thread sleeps on a futex. A socket that becomes readable wakes
//! the thread waiting in the reactor, which then wakes the thread of the task reading the
//! socket — two wake-ups in a row, tens of microseconds each on a VM, whenever the two
//! differ. A scheduler thread that sleeps in a poller of its own, watching the sockets of
//! its own readers (a connection's reader, see `dist::plain_read`), is woken by the kernel
//! directly. The rest of async-io's work — timers, accepting, connecting, writing to a
//! full socket — is done by whichever thread drives its reactor (its `async-io` thread, or
//! a thread in `block_on`), which wakes the task's thread like any other thread does: by
//! [`notify`](ThreadPoller::notify).
//!
//! A reader waits for its socket only after a read that found nothing, leaving its waker
//! in the watch ([`Watch::arm`]); a readiness event takes the waker and wakes it. A watched
//! socket is added to this poller besides async-io's (an epoll or kqueue set may share a
//! socket with another).
//!
//! On Linux the poller is an epoll set, an eventfd and a timerfd (for the thread's earliest
//! timer: `epoll_wait` counts milliseconds), used directly ([`sys`]), and a socket is
//! watched edge-triggered: new bytes are an event whether or not the reader waits (if it
//! does not, the event finds no waker and is dropped: the reader reads before it waits
//! again). Waiting for a socket then costs no system call, a wait is one, and waking up
//! costs one more only when the thread was notified (or its timer fired) — where the
//! general-purpose `polling` crate, which async-io uses, re-arms a one-shot socket before
//! each wait, and a timer and its notifier around every wait. Elsewhere the poller is a `polling::Poller`,
//! its sockets watched one-shot and re-armed each time a reader waits.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::Instant;

use smol::Async;

pub(crate) use sys::Events;

/// How long a wait in the poller may last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Until {
    /// Not at all: the poller is only looked at.
    Now,
    /// Until a socket is ready or the thread is notified.
    Never,
    /// As `Never`, or until then (the thread's earliest timer: see `timers`).
    At(Instant),
}

/// A scheduler thread's poller and the wakers of the sockets watched in it.
pub(crate) struct ThreadPoller {
    poller: sys::Poller,
    watched: Mutex<Watched>,
}

/// The watched sockets' wakers, by key.
#[derive(Default)]
struct Watched {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl ThreadPoller {
    pub(super) fn new() -> io::Result<ThreadPoller> {
        Ok(ThreadPoller {
            poller: sys::Poller::new()?,
            watched: Mutex::new(Watched::default()),
        })
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the thread if it waits in [`wait`](Self::wait) (or makes its next wait return
    /// at once).
    pub(super) fn notify(&self) {
        // Fails only if the notifier cannot be written, which leaves nothing to do here.
        let _ = self.poller.notify();
    }

    /// Waits for a watched socket to be ready or for [`notify`](Self::notify), until
    /// `until` at the latest.
    pub(super) fn wait(&self, events: &mut Events, until: Until) {
        if let Err(error) = self.poller.wait(events, until) {
            if error.kind() != io::ErrorKind::Interrupted {
                tracing::warn!(%error, "a scheduler thread's poller failed to wait");
            }
        }
    }

    /// How many sockets are watched.
    #[cfg(test)]
    pub(crate) fn watching(&self) -> usize {
        let watched = self.watched();
        watched.wakers.len() - watched.free.len()
    }

    /// Wakes the readers of the sockets `events` found ready.
    pub(super) fn wake_ready(&self, events: &Events) {
        for key in events.keys() {
            let waker = self.watched().wakers.get_mut(key).and_then(Option::take);
            // Woken outside the lock: a wake-up queues the task, which may drop a watch.
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// A socket watched for reading by one scheduler thread's poller; dropping it stops the
/// watch.
pub(crate) struct Watch {
    poller: Arc<ThreadPoller>,
    key: usize,
    /// Held so that the socket is not closed before it leaves the poller (see `Drop`).
    socket: Arc<Async<std::net::TcpStream>>,
}

impl Watch {
    /// Adds `socket` to `poller`, not armed yet.
    pub(crate) fn new(
        poller: &Arc<ThreadPoller>,
        socket: &Arc<Async<std::net::TcpStream>>,
    ) -> io::Result<Watch> {
        let key = {
            let mut watched = poller.watched();
            match watched.free.pop() {
                Some(key) => key,
                None => {
                    watched.wakers.push(None);
                    watched.wakers.len() - 1
                }
            }
        };
        // (The watch holds the socket: it is not closed before `Drop` takes it out.)
        if let Err(error) = poller.poller.add(socket.get_ref(), key) {
            poller.watched().free.push(key);
            return Err(error);
        }
        Ok(Watch {
            poller: poller.clone(),
            key,
            socket: socket.clone(),
        })
    }

    /// `true` if the socket is watched by `poller`.
    pub(crate) fn is_in(&self, poller: &Arc<ThreadPoller>) -> bool {
        Arc::ptr_eq(&self.poller, poller)
    }

    /// Arms the watch, after a read that found nothing: `waker` is woken once the socket
    /// is readable.
    pub(crate) fn arm(&self, waker: &Waker) -> io::Result<()> {
        {
            let mut watched = self.poller.watched();
            let slot = &mut watched.wakers[self.key];
            match slot {
                Some(kept) if kept.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        self.poller.poller.rearm(self.socket.get_ref(), self.key)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Cannot fail while the watch holds its socket open (and a socket left in the set
        // would only cause spurious wake-ups of the key's next user).
        let _ = self.poller.poller.delete(self.socket.get_ref());
        let waker = {
            let mut watched = self.poller.watched();
            let waker = watched.wakers[self.key].take();
            watched.free.push(self.key);
            waker
        };
        drop(waker);
    }
}

/// The poller itself: epoll and an eventfd on Linux.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::{Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use rustix::buffer::spare_capacity;
    use rustix::event::epoll::{self, EventData, EventFlags};
    use rustix::event::{eventfd, EventfdFlags, Secs, Timespec};
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags,
    };

    use super::Until;

    /// The key of the notifier's events.
    const NOTIFIED: u64 = u64::MAX;
    /// The key of the timer's events.
    const TIMER: u64 = u64::MAX - 1;

    pub(super) struct Poller {
        epoll: OwnedFd,
        /// Level-triggered: readable from a notification until the waiter reads it.
        notifier: OwnedFd,
        /// Ends a wait at the thread's earliest timer (`epoll_pwait` counts milliseconds):
        /// readable once it fires, until the waiter reads it.
        timer: OwnedFd,
        /// What `timer` is set to, if set and not yet read.
        armed: Mutex<Option<Instant>>,
    }

    fn timespec(duration: Duration) -> Timespec {
        Timespec {
            tv_sec: duration.as_secs().try_into().unwrap_or(Secs::MAX),
            // (`Nsecs` is 32 bits wide on some targets: below 10^9 fits either way.)
            tv_nsec: duration.subsec_nanos() as _,
        }
    }

    /// The events of one wait.
    pub(crate) struct Events(Vec<epoll::Event>);

    impl Events {
        pub(crate) fn new() -> Events {
            Events(Vec::with_capacity(64))
        }

        /// The keys of the sockets found ready.
        pub(super) fn keys(&self) -> impl Iterator<Item = usize> + '_ {
            self.0
                .iter()
                .map(|event| event.data.u64())
                .filter(|&key| key != NOTIFIED && key != TIMER)
                .map(|key| key as usize)
        }
    }

    impl Poller {
        pub(super) fn new() -> io::Result<Poller> {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let notifier = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            epoll::add(
                &epoll,
                &notifier,
                EventData::new_u64(NOTIFIED),
                EventFlags::IN,
            )?;
            let timer = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
            )?;
            epoll::add(&epoll, &timer, EventData::new_u64(TIMER), EventFlags::IN)?;
            Ok(Poller {
                epoll,
                notifier,
                timer,
                armed: Mutex::new(None),
            })
        }

        fn armed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
            self.armed.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(super) fn notify(&self) -> io::Result<()> {
            rustix::io::write(&self.notifier, &1u64.to_ne_bytes())?;
            Ok(())
        }

        pub(super) fn wait(&self, events: &mut Events, until: Until) -> io::Result<()> {
            events.0.clear();
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let timeout = match until {
                Until::Now => Some(zero),
                Until::Never => None,
                Until::At(at) => {
                    let now = Instant::now();
                    match at.checked_duration_since(now).filter(|d| !d.is_zero()) {
                        None => Some(zero),
                        Some(left) => {
                            // Set again only when the earliest timer changed.
                            let mut armed = self.armed();
                            if *armed != Some(at) {
                                let value = Itimerspec {
                                    it_interval: zero,
                                    it_value: timespec(left),
                                };
                                timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &value)?;
                                *armed = Some(at);
                            }
                            None
                        }
                    }
                }
            };
            epoll::wait(&self.epoll, spare_capacity(&mut events.0), timeout.as_ref())?;
            for event in &events.0 {
                // Emptied, so that the next wait waits.
                let mut count = [0; 8];
                match event.data.u64() {
                    NOTIFIED => {
                        let _ = rustix::io::read(&self.notifier, &mut count);
                    }
                    TIMER => {
                        let _ = rustix::io::read(&self.timer, &mut count);
                        *self.armed() = None;
                    }
                    _ => {}
                }
            }
            Ok(())
        }

        /// Watches `source` for bytes to read (edge-triggered: an event when bytes come).
        pub(super) fn add(&self, source: impl AsFd, key: usize) -> io::Result<()> {
            epoll::add(
                &self.epoll,
                source,
                EventData::new_u64(key as u64),
                EventFlags::IN | EventFlags::RDHUP | EventFlags::ET,
            )?;
            Ok(())
        }

        /// Nothing to do: an edge-triggered watch stays armed.
        #[inline]
        pub(super) fn rearm(&self, _source: impl AsFd, _key: usize) -> io::Result<()> {
            Ok(())
        }

        pub(super) fn delete(&self, source: impl AsFd) -> io::Result<()> {
            epoll::delete(&self.epoll, source)?;
            Ok(())
        }
    }
}

/// The poller itself: `polling`'s, away from Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod sys {
    use std::io;
    use std::time::{Duration, Instant};

    use polling::{AsRawSource, AsSource, Event};

    use super::Until;

    pub(super) struct Poller(polling::Poller);

    /// The events of one wait.
    pub(crate) struct Events(polling::Events);

    impl Events {
        pub(crate) fn new() -> Events {
            Events(polling::Events::new())
        }

        /// The keys of the sockets found ready.
        pub(super) fn keys(&self) -> impl Iterator<Item = usize> + '_ {
            self.0.iter().map(|event| event.key)
        }
    }

    impl Poller {
        pub(super) fn new() -> io::Result<Poller> {
            polling::Poller::new().map(Poller)
        }

        pub(super) fn notify(&self) -> io::Result<()> {
            self.0.notify()
        }

        pub(super) fn wait(&self, events: &mut Events, until: Until) -> io::Result<()> {
            events.0.clear();
            let timeout = match until {
                Until::Now => Some(Duration::ZERO),
                Until::Never => None,
                Until::At(at) => Some(at.saturating_duration_since(Instant::now())),
            };
            self.0.wait(&mut events.0, timeout).map(drop)
        }

        /// Adds `source`, watched for nothing until [`rearm`](Self::rearm)ed.
        pub(super) fn add(&self, source: impl AsRawSource, key: usize) -> io::Result<()> {
            // SAFETY: the source must leave the poller before it is closed: a `Watch`
            // holds its socket until its `Drop` has deleted it.
            #[allow(unsafe_code)]
            unsafe {
                self.0.add(source, Event::none(key))
            }
        }

        /// Watches `source` for one readiness event.
        pub(super) fn rearm(&self, source: impl AsSource, key: usize) -> io::Result<()> {
            self.0.modify(source, Event::readable(key))
        }

        pub(super) fn delete(&self, source: impl AsSource) -> io::Result<()> {
            self.0.delete(source)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::time::{Duration, Instant};

    use smol::Async;

    use super::{Events, ThreadPoller, Until, Watch};

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn pair() -> (Arc<Async<TcpStream>>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        (Arc::new(Async::new(ours).unwrap()), theirs)
    }

    /// Waits in `poller` until `count` reaches `at_least` (a deadline of 10 s).
    fn wait_for(poller: &ThreadPoller, count: &Count, at_least: usize) {
        let mut events = Events::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.0.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "no wake-up within 10 s");
            poller.wait(
                &mut events,
                Until::At(Instant::now() + Duration::from_millis(100)),
            );
            poller.wake_ready(&events);
        }
    }

    #[test]
    fn bytes_wake_the_armed_reader_and_a_dropped_watch_wakes_none() {
        let poller = Arc::new(ThreadPoller::new().unwrap());
        let (socket, mut peer) = pair();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let watch = Watch::new(&poller, &socket).unwrap();
        watch.arm(&waker).unwrap();
        peer.write_all(b"frame").unwrap();
        wait_for(&poller, &count, 1);
        // Read to the end, armed again: the next bytes wake it again.
        let mut buf = [0; 16];
        assert_eq!(
            std::io::Read::read(&mut socket.get_ref(), &mut buf).unwrap(),
            5
        );
        watch.arm(&waker).unwrap();
        peer.write_all(b"more").unwrap();
        wait_for(&poller, &count, 2);
        // Gone from the poller: bytes wake nothing.
        watch.arm(&waker).unwrap();
        drop(watch);
        peer.write_all(b"unseen").unwrap();
        let mut events = Events::new();
        poller.wait(
            &mut events,
            Until::At(Instant::now() + Duration::from_millis(50)),
        );
        poller.wake_ready(&events);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_notification_ends_a_wait_and_only_that_one() {
        let poller = Arc::new(ThreadPoller::new().unwrap());
        let notifier = poller.clone();
        let notify = std::thread::spawn(move || notifier.notify());
        let mut events = Events::new();
        // Without a limit: only the notification ends it.
        poller.wait(&mut events, Until::Never);
        notify.join().unwrap();
        // The notification is used up: the next wait waits its time.
        let start = Instant::now();
        poller.wait(&mut events, Until::At(start + Duration::from_millis(20)));
        assert!(
            start.elapsed() >= Duration::from_millis(20),
            "a wait ends at its time"
        );
    }

    #[test]
    fn a_watch_moves_to_another_poller() {
        let (first, second) = (
            Arc::new(ThreadPoller::new().unwrap()),
            Arc::new(ThreadPoller::new().unwrap()),
        );
        let (socket, mut peer) = pair();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut watch = Watch::new(&first, &socket).unwrap();
        assert!(watch.is_in(&first) && !watch.is_in(&second));
        // Moved as `watch_readable` moves it: the old one leaves first.
        drop(watch);
        watch = Watch::new(&second, &socket).unwrap();
        watch.arm(&waker).unwrap();
        peer.write_all(b"frame").unwrap();
        wait_for(&second, &count, 1);
        let mut events = Events::new();
        first.wait(&mut events, Until::Now);
        assert_eq!(
            events.keys().count(),
            0,
            "the first poller no longer watches it"
        );
    }
}
