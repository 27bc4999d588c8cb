//! Lifecycle events: a node-wide feed of processes starting and ending and of supervisors'
//! decisions, for logs, dashboards and tests.
//!
//! Subscribe with [`Node::events`](crate::Node::events). Each subscriber gets every event
//! published after it subscribed, in order, through an unbounded queue; a node without
//! subscribers skips the work entirely.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
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
    /// A supervisor could not start (or restart) a child.
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

/// Fans events out to subscribers.
pub(crate) struct EventBus<T = LifecycleEvent> {
    active: AtomicBool,
    subscribers: Mutex<Vec<async_channel::Sender<T>>>,
}

impl<T> Default for EventBus<T> {
    fn default() -> Self {
        EventBus {
            active: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
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
        subscribers.retain(|tx| tx.try_send(event.clone()).is_ok());
        self.active
            .store(!subscribers.is_empty(), Ordering::Relaxed);
    }

    pub(crate) fn subscribe(&self) -> Subscription<T> {
        let (tx, rx) = async_channel::unbounded();
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.push(tx);
        self.active.store(true, Ordering::Relaxed);
        Subscription { rx: Box::pin(rx) }
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
pub struct Subscription<T> {
    rx: Pin<Box<async_channel::Receiver<T>>>,
}

impl<T> Subscription<T> {
    /// The next event; `None` once the node is gone.
    pub async fn recv(&self) -> Option<T> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is already queued.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.as_mut().poll_next(cx)
    }
}
