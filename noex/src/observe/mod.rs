//! Introspection: what runs on a node of the cluster, read through one typed API whether
//! the node is this one or another.
//!
//! An [`Observer`] reads one node: [`Node::observer`] this one, [`Node::observer_of`] any
//! node of the cluster (this one included). It lists the node's processes (pid, name,
//! behaviour, status, mailbox length, messages handled, supervisor, parent, links,
//! restarts), one process in detail (its monitors both ways, the nodes it monitors, its
//! global names and groups, its timers), the node's supervisors with their children (the
//! supervision trees; a distributed supervisor's children with their nodes), the global
//! names and groups it knows, and its peers with their traffic and round-trip times.
//!
//! # How it works, and what it costs
//!
//! Reading this node is a walk of its tables. Reading another node is a call to its
//! *agent*: a system process every clustered node starts, registered as `noex.observer`,
//! which answers one request at a time — so however many observers ask, the node does one
//! read at a time. A read walks the process table once (with each process's lock taken
//! briefly, as [`Node::processes`] does) and asks the supervisors concerned all at once,
//! giving them a second together (one busy starting a child is reported as not having
//! answered). Nothing is recorded for observers: a node that nobody observes pays
//! nothing per message beyond the counters it keeps anyway (messages handled per process,
//! traffic per connection). The agent is left out of
//! [`process_count`](Node::process_count), [`processes`](Node::processes) and every list
//! an observer gets.
//!
//! The `noex-observer` terminal program of this repository shows all of it live, from a
//! [hidden](crate::ClusterConfig::hidden) node.
//!
//! # Example
//!
//! ```
//! use noex::observe::{ProcessQuery, SortBy};
//! use noex::{ClusterConfig, Node};
//!
//! # smol::block_on(async {
//! let a = Node::start(ClusterConfig::new("a").secret("s3cret")).await.unwrap();
//! let seed = a.local_node_id().unwrap().to_string();
//! let b = Node::start(ClusterConfig::new("b").secret("s3cret").seed(seed)).await.unwrap();
//! # while a.connected_nodes().is_empty() { smol::Timer::after(std::time::Duration::from_millis(5)).await; }
//!
//! // From a, look at b.
//! let observer = a.observer_of(b.local_node_id().unwrap());
//! let overview = observer.overview().await.unwrap();
//! assert_eq!(overview.node, b.name());
//! let busiest = observer
//!     .processes(ProcessQuery::new(SortBy::MailboxLen, 20))
//!     .await
//!     .unwrap();
//! assert_eq!(busiest.total, b.process_count());
//! # a.shutdown();
//! # b.shutdown();
//! # });
//! ```

mod agent;
pub(crate) mod snapshot;
mod types;

use std::time::Duration;

pub(crate) use agent::{Agent, Request, AGENT_NAME};
pub use types::{
    GlobalInfo, NodeOverview, PeerList, ProcessDetail, ProcessInfo, ProcessList, ProcessQuery,
    ProcessStatus, SortBy, SupervisorInfo,
};

use crate::error::CallError;
use crate::{Node, NodeId, Pid};
use agent::Answer;

/// How long a node remembers the message counts of a [`SortBy::MessageRate`] query for
/// the observing node's next one; then it forgets them (they take 16 bytes a process). A
/// node keeps the counts of the four nodes that queried it last at most.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// How long an observer waits for another node's answer, unless told otherwise.
pub const DEFAULT_OBSERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one node of the cluster: this one or another, through the same methods. From
/// [`Node::observer`] or [`Node::observer_of`]; cheap to make and to clone.
///
/// Each method fails with a [`CallError`] only when the node is another one that cannot
/// answer: not connected (`NoConnection`), too slow (`Timeout`), or running no agent
/// (`NoProc`: a node that is not clustered).
#[derive(Clone, Debug)]
pub struct Observer {
    node: Node,
    /// `None`: the observing node itself.
    target: Option<NodeId>,
    timeout: Duration,
}

impl Node {
    /// An observer of this node.
    ///
    /// ```
    /// use noex::Node;
    ///
    /// let node = Node::new();
    /// node.block_on(async {
    ///     let overview = node.observer().overview().await.unwrap();
    ///     assert_eq!(overview.processes, 0);
    /// });
    /// # node.shutdown();
    /// ```
    pub fn observer(&self) -> Observer {
        Observer {
            node: self.clone(),
            target: None,
            timeout: DEFAULT_OBSERVE_TIMEOUT,
        }
    }

    /// An observer of `node`, a node of this node's cluster (or this node itself). See
    /// the [module docs](crate::observe) for an example.
    pub fn observer_of(&self, node: &NodeId) -> Observer {
        let target = (self.local_node_id() != Some(node)).then(|| node.clone());
        Observer {
            node: self.clone(),
            target,
            timeout: DEFAULT_OBSERVE_TIMEOUT,
        }
    }
}

impl Observer {
    /// How long to wait for another node's answers (default
    /// [`DEFAULT_OBSERVE_TIMEOUT`]).
    #[must_use = "`timeout` returns the observer with the new timeout"]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The node observed: its id, or this node's name for a local node.
    pub fn node(&self) -> String {
        match &self.target {
            Some(id) => id.to_string(),
            None => self.node.name().to_owned(),
        }
    }

    async fn ask(&self, id: &NodeId, request: Request) -> Result<Answer, CallError> {
        self.node
            .named_on::<Agent>(AGENT_NAME, id)
            .call_with_timeout(request, self.timeout)
            .await
    }

    /// The node at a glance: uptime, threads, process and message counts, traffic.
    pub async fn overview(&self) -> Result<NodeOverview, CallError> {
        let Some(id) = &self.target else {
            return Ok(self.node.read_overview().await);
        };
        match self.ask(id, Request::Overview).await? {
            Answer::Overview(overview) => Ok(*overview),
            _ => Err(CallError::BadReply),
        }
    }

    /// The node's processes: how many it runs, and the first `query.limit` in the
    /// query's order.
    pub async fn processes(&self, query: ProcessQuery) -> Result<ProcessList, CallError> {
        let observer = self.node.inner.incarnation;
        let Some(id) = &self.target else {
            return Ok(self.node.read_processes(query, observer).await);
        };
        match self.ask(id, Request::Processes(query, observer)).await? {
            Answer::Processes(list) => Ok(list),
            _ => Err(CallError::BadReply),
        }
    }

    /// One process in detail; `None` if it does not run. It is read where it runs: on the
    /// node of its pid, whichever node this observer reads otherwise.
    pub async fn process(&self, pid: &Pid) -> Result<Option<ProcessDetail>, CallError> {
        if !self.node.inner.is_remote(pid) {
            return Ok(self.node.read_process(pid).await);
        }
        let id: NodeId = pid.node().parse().map_err(|_| CallError::NoConnection {
            node: pid.node().to_owned(),
        })?;
        match self.ask(&id, Request::Process(pid.clone())).await? {
            Answer::Process(detail) => Ok(detail.map(|d| *d)),
            _ => Err(CallError::BadReply),
        }
    }

    /// The node's supervisors, each with its children, in spawn order.
    pub async fn supervisors(&self) -> Result<Vec<SupervisorInfo>, CallError> {
        let Some(id) = &self.target else {
            return Ok(self.node.read_supervisors().await);
        };
        match self.ask(id, Request::Supervisors).await? {
            Answer::Supervisors(supervisors) => Ok(supervisors),
            _ => Err(CallError::BadReply),
        }
    }

    /// The global names and process groups the node knows.
    pub async fn globals(&self) -> Result<GlobalInfo, CallError> {
        let Some(id) = &self.target else {
            return Ok(self.node.read_globals());
        };
        match self.ask(id, Request::Globals).await? {
            Answer::Globals(globals) => Ok(globals),
            _ => Err(CallError::BadReply),
        }
    }

    /// The node's connections: every peer, hidden ones included, with its traffic and
    /// round-trip time.
    pub async fn peers(&self) -> Result<PeerList, CallError> {
        let Some(id) = &self.target else {
            return Ok(self.node.read_peers());
        };
        match self.ask(id, Request::Peers).await? {
            Answer::Peers(peers) => Ok(peers),
            _ => Err(CallError::BadReply),
        }
    }
}
