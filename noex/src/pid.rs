//! Process identifiers and the references that name one-off things (monitors).
//!
//! A [`Pid`] names one process for its whole life and never names another: it carries the
//! name of the node the process runs on, that node's *incarnation* (drawn when the node
//! starts: its start time above random bits, so a restarted node never accepts pids of its
//! previous life, and other nodes can tell a pid of an earlier life from one of a later
//! one) and a serial number that the node never reuses. Pids are plain data: they can be compared, hashed,
//! printed and serialised, which is what lets them travel inside messages.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The identity of a process: node name, node incarnation and a serial number.
///
/// Displayed as `<node.serial>`, for example `<nonode.42>`.
///
/// ```
/// # use noex::{GenServer, Node, ReplyTo, Ctx};
/// # struct Idle;
/// # impl GenServer for Idle {
/// #     type Args = (); type Call = (); type Reply = (); type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Idle) }
/// # }
/// let node = Node::new();
/// let server = node.block_on(node.spawn::<Idle>(())).unwrap();
/// let pid = server.pid();
/// assert_eq!(pid.node(), node.name());
/// assert!(pid.to_string().starts_with("<nonode."));
/// # node.shutdown();
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pid {
    node: Arc<str>,
    incarnation: u64,
    serial: u64,
}

impl Pid {
    pub(crate) fn new(node: Arc<str>, incarnation: u64, serial: u64) -> Self {
        Pid {
            node,
            incarnation,
            serial,
        }
    }

    pub(crate) fn node_arc(&self) -> Arc<str> {
        self.node.clone()
    }

    /// The name of the node that runs (or ran) this process.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The incarnation of the node when the process was spawned.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The node-local serial number of the process. Serials are never reused by a node.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The serial by reference (how the process table looks processes up).
    pub(crate) fn serial_ref(&self) -> &u64 {
        &self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}>", self.node, self.serial)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Identifies one monitor, as returned by [`Ctx::monitor`](crate::Ctx::monitor).
///
/// Every call to `monitor` creates an independent monitor with its own reference; the
/// [`Info::Down`](crate::Info::Down) message it produces carries the same reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MonitorRef(pub(crate) u64);

impl fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Monitor<{}>", self.0)
    }
}

impl fmt::Debug for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
