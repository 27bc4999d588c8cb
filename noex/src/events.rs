//! Lifecycle events: a node-wide feed of processes starting and ending and of supervisors'
//! decisions, for logs, dashboards and tests.
//!
//! Subscribe with [`Node::events`](crate::Node::events). Each subscriber gets every event
//! published after it subscribed, in order, through a queue of its own that holds up to
//! [`EVENT_QUEUE`] unread events: a subscriber that falls further behind loses the newest
//! ones rather than the node's memory, and [`Subscription::missed`] counts them. A node
//! without subscribers skips the work entirely.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use smol::stream::Stream;

use crate::{ExitReason, Pid};

/// Something that happened to a process or supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// A process finished `init` and runs.
    Started {
        /// The process.
        pid: Pid,
        /// Its behaviour's type name.
        behavior: &'static str,
        /// Its registered name, if it was spawned with one.
        name: Option<String>,
    },
    /// A process ended.
    Exited {
        /// The process.
        pid: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A supervisor restarted a child.
    ChildRestarted {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id in its spec.
        child: String,
        /// The new incarnation's pid.
        pid: Pid,
    },
    /// A supervisor could not start a child: in its own start, for `start_child` (or
    /// `start_simple_child`) or `restart_child`, or to restart it.
    ChildStartFailed {
        /// The supervisor.
        supervisor: Pid,
        /// The child's id in its spec.
        child: String,
        /// Why, as text.
        error: String,
    },
    /// A supervisor exceeded its restart intensity and shuts down with reason `Shutdown`.
    MaxRestartsExceeded {
        /// The supervisor.
        supervisor: Pid,
        /// The restart limit that was exceeded.
        max_restarts: u32,
        /// The window the limit applies to.
        within: Duration,
    },
}

/// How many unread events a subscription holds; later events are lost to it (and counted
/// by [`Subscription::missed`]) until it reads some.
pub const EVENT_QUEUE: usize = 65_536;

/// Fans events out to subscribers.
pub(crate) struct EventBus<T = LifecycleEvent> {
    active: AtomicBool,
    subscribers: Mutex<Vec<Subscriber<T>>>,
    /// Set once no event will come any more (see [`close`](Self::close)); read under the
    /// lock of `subscribers`.
    closed: AtomicBool,
}

/// One subscription's end in the bus.
struct Subscriber<T> {
    tx: async_channel::Sender<T>,
    /// Holds at most [`EVENT_QUEUE`] unread events.
    bounded: bool,
    /// Events it lost to a full queue.
    missed: Arc<AtomicU64>,
}

impl<T> Default for EventBus<T> {
    fn default() -> Self {
        EventBus {
            active: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }
}

impl<T: Clone> EventBus<T> {
    /// `true` if someone listens; check it before building an event.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub(crate) fn publish(&self, event: T) {
        if !self.is_active() {
            return;
        }
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.retain(|subscriber| {
            if subscriber.bounded && subscriber.tx.len() >= EVENT_QUEUE {
                if subscriber.missed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        queue = EVENT_QUEUE,
                        "an event subscriber fell behind; it loses events until it reads"
                    );
                }
                return !subscriber.tx.is_closed();
            }
            subscriber.tx.try_send(event.clone()).is_ok()
        });
        self.active
            .store(!subscribers.is_empty(), Ordering::Relaxed);
    }

    /// Ends every subscription (each receives what it holds, then `None`), and those made
    /// from now on at once: no event will come any more (the node has shut down).
    pub(crate) fn close(&self) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::Relaxed);
        self.active.store(false, Ordering::Relaxed);
        subscribers.clear();
    }

    /// Forgets the subscriptions that were dropped; how many are left.
    pub(crate) fn prune(&self) -> usize {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.retain(|subscriber| !subscriber.tx.is_closed());
        self.active
            .store(!subscribers.is_empty(), Ordering::Relaxed);
        subscribers.len()
    }

    /// How many subscriptions it holds, dropped ones not forgotten yet included.
    #[cfg(test)]
    pub(crate) fn subscribers(&self) -> usize {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// A subscription holding up to [`EVENT_QUEUE`] unread events.
    pub(crate) fn subscribe(&self) -> Subscription<T> {
        self.subscribe_with(true)
    }

    /// A subscription that never loses an event: for the runtime's own subscribers
    /// (metrics), whose events are rare or read at once.
    #[cfg(any(test, feature = "metrics"))]
    pub(crate) fn subscribe_unbounded(&self) -> Subscription<T> {
        self.subscribe_with(false)
    }

    fn subscribe_with(&self, bounded: bool) -> Subscription<T> {
        // Unbounded underneath (a bounded channel would allocate all its room at once),
        // bounded by the length check in `publish`.
        let (tx, rx) = async_channel::unbounded();
        let missed = Arc::new(AtomicU64::new(0));
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Relaxed) {
            // Ended from the start (its sender dropped here).
            return Subscription {
                rx: Box::pin(rx),
                missed,
            };
        }
        subscribers.push(Subscriber {
            tx,
            bounded,
            missed: missed.clone(),
        });
        self.active.store(true, Ordering::Relaxed);
        Subscription {
            rx: Box::pin(rx),
            missed,
        }
    }
}

/// A subscription to a node's [`LifecycleEvent`]s. Also a [`Stream`].
pub type Events = Subscription<LifecycleEvent>;

/// A subscription to a stream of events (see [`Events`] and
/// [`ClusterEvents`](crate::ClusterEvents)). Also a [`Stream`].
///
/// ```
/// use noex::{LifecycleEvent, Node};
/// # use noex::{Ctx, GenServer};
/// # struct Idle;
/// # impl GenServer for Idle {
/// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Idle) }
/// # }
///
/// let node = Node::new();
/// let events = node.events();
/// node.block_on(async {
///     let server = node.spawn::<Idle>(()).await.unwrap();
///     match events.recv().await {
///         Some(LifecycleEvent::Started { pid, .. }) => assert_eq!(&pid, server.pid()),
///         other => panic!("unexpected {other:?}"),
///     }
/// });
/// node.shutdown();
/// ```
#[derive(Debug)]
#[must_use = "a subscription dropped unread loses its events: keep it and read it"]
pub struct Subscription<T> {
    rx: Pin<Box<async_channel::Receiver<T>>>,
    missed: Arc<AtomicU64>,
}

impl<T> Subscription<T> {
    /// The next event; `None` once the node has shut down (or is gone) and the events
    /// published before are read.
    pub async fn recv(&self) -> Option<T> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is already queued.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// How many events this subscription has lost because it held [`EVENT_QUEUE`] unread
    /// ones when they were published (0 for a subscriber that keeps up). Events are never
    /// reordered: the ones received are in order, with the lost ones missing.
    ///
    /// ```
    /// let node = noex::Node::new();
    /// let events = node.events();
    /// assert_eq!(events.missed(), 0);
    /// # node.shutdown();
    /// ```
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

impl<T> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_that_falls_behind_loses_the_newest_events_and_counts_them() {
        let bus = EventBus::<usize>::default();
        let slow = bus.subscribe();
        let keeping_up = bus.subscribe();
        let all = bus.subscribe_unbounded();
        for event in 0..EVENT_QUEUE + 10 {
            bus.publish(event);
            assert_eq!(keeping_up.try_recv(), Some(event));
        }
        assert_eq!(slow.missed(), 10);
        assert_eq!(keeping_up.missed(), 0);
        assert_eq!(all.missed(), 0);
        // What it holds is in order: the first EVENT_QUEUE events.
        assert_eq!(slow.try_recv(), Some(0));
        // Room again: the next event arrives, after the ones it held.
        bus.publish(usize::MAX);
        assert_eq!(slow.missed(), 10);
        let rest: Vec<_> = std::iter::from_fn(|| slow.try_recv()).collect();
        assert_eq!(rest.len(), EVENT_QUEUE);
        assert_eq!(rest[EVENT_QUEUE - 2], EVENT_QUEUE - 1);
        assert_eq!(rest[EVENT_QUEUE - 1], usize::MAX);
        assert_eq!(
            all.rx.len(),
            EVENT_QUEUE + 11,
            "the unbounded one lost nothing"
        );
    }

    #[test]
    fn a_closed_bus_ends_its_subscriptions_after_what_they_hold() {
        let bus = EventBus::<u8>::default();
        let subscription = bus.subscribe();
        bus.publish(1);
        bus.close();
        bus.publish(2);
        assert_eq!(smol::block_on(subscription.recv()), Some(1));
        assert_eq!(smol::block_on(subscription.recv()), None);
        assert_eq!(smol::block_on(bus.subscribe().recv()), None);
        assert!(!bus.is_active());
    }

    #[test]
    fn a_dropped_subscription_leaves_the_bus() {
        let bus = EventBus::<u8>::default();
        let subscription = bus.subscribe();
        bus.publish(1);
        drop(subscription);
        bus.publish(2);
        assert!(!bus.is_active(), "nobody listens any more");
    }
}
