//! The typed API of a running supervisor: methods on `ServerRef<Supervisor>`.

use std::any::{Any, TypeId};

use thiserror::Error;

use super::placement::{DistributionStats, NodeSelector};
use super::spec::{ChildKind, ChildSpec, Restart};
use super::Supervisor;
use crate::error::CallError;
use crate::server::{GenServer, ServerRef};
use crate::Pid;

/// Names one child of a supervisor: by id, or (useful for simple_one_for_one children) by
/// pid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChildKey {
    /// The child's id.
    Id(String),
    /// The child's current pid.
    Pid(Pid),
}

impl From<&str> for ChildKey {
    fn from(id: &str) -> Self {
        ChildKey::Id(id.to_owned())
    }
}

impl From<String> for ChildKey {
    fn from(id: String) -> Self {
        ChildKey::Id(id)
    }
}

impl From<Pid> for ChildKey {
    fn from(pid: Pid) -> Self {
        ChildKey::Pid(pid)
    }
}

impl From<&Pid> for ChildKey {
    fn from(pid: &Pid) -> Self {
        ChildKey::Pid(pid.clone())
    }
}

impl std::fmt::Display for ChildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildKey::Id(id) => write!(f, "{id:?}"),
            ChildKey::Pid(pid) => write!(f, "{pid}"),
        }
    }
}

/// One child, as reported by [`which_children`](ServerRef::which_children).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Its current pid; `None` while it is not running.
    pub pid: Option<Pid>,
    /// The node it runs on (its pid's); `None` while it is not running.
    pub node: Option<String>,
    /// `true` while it waits to be started again: its restart backoff, or — under a
    /// distributed supervisor — a majority or a node that can take it.
    pub restarting: bool,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
    /// How many times it was started again since the supervisor added it: restarts
    /// after it ended, on another node after its node was lost, or by
    /// [`restart_child`](ServerRef::restart_child).
    pub restarts: u32,
}

/// Child counts, as reported by [`count_children`](ServerRef::count_children).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ChildCounts {
    /// Child specs, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Specs of supervisor children.
    pub supervisors: usize,
    /// Specs of worker children.
    pub workers: usize,
}

/// Why a supervisor request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The supervisor could not be reached.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A child with this id runs already.
    #[error("child {id:?} is already running as {pid}")]
    AlreadyStarted {
        /// The child's id.
        id: String,
        /// Its pid.
        pid: Pid,
    },
    /// A child spec with this id exists (not running); restart or delete it first.
    #[error("child {0:?} already exists")]
    AlreadyPresent(String),
    /// No such child.
    #[error("no child {0}")]
    NotFound(ChildKey),
    /// The child is running, and the request needs it stopped.
    #[error("child {0:?} is running")]
    Running(String),
    /// The child failed to start.
    #[error("child {id:?} failed to start: {error}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// Why.
        error: String,
    },
    /// The child was lost with its node (or a start there got no answer) and may still
    /// run there: it is not started by request until the migration delay has passed and
    /// this side sees a majority (see [`placement`](super::placement)). Unless stopped by
    /// request, it moves by itself then.
    #[error("child {id:?} was lost with node {node} and may still run there; it moves once that is safe")]
    WaitingToMove {
        /// The child's id.
        id: String,
        /// The node it was lost with.
        node: String,
    },
    /// The request does not apply to a simple_one_for_one supervisor.
    #[error("not supported by a simple_one_for_one supervisor")]
    SimpleOneForOne,
    /// The request is for a distributed supervisor (one with a node selector).
    #[error("not a distributed supervisor")]
    NotDistributed,
    /// Only a simple_one_for_one supervisor starts children from a template.
    #[error("only a simple_one_for_one supervisor starts children from a template")]
    NotSimple,
    /// The template starts children of another behaviour.
    #[error("the template's children run {expected}, not {found}")]
    WrongBehavior {
        /// The behaviour of the template's children.
        expected: &'static str,
        /// The behaviour that was asked for.
        found: &'static str,
    },
}

/// A request to a supervisor (the `Call` type of [`Supervisor`]); use the methods on
/// `ServerRef<Supervisor>` instead.
#[doc(hidden)]
pub enum Request {
    StartChild(ChildSpec),
    StartSimple(Box<dyn Any + Send>, TypeId, &'static str),
    Terminate(ChildKey),
    Restart(String),
    Delete(String),
    Which,
    Count,
    SetSelector(NodeSelector),
    Distribution,
}

/// A supervisor's answer (the `Reply` type of [`Supervisor`]).
#[doc(hidden)]
pub enum Response {
    Started(Result<(Pid, Box<dyn Any + Send>), SupervisorError>),
    Done(Result<(), SupervisorError>),
    Children(Vec<ChildInfo>),
    Counts(ChildCounts),
    Distribution(Result<DistributionStats, SupervisorError>),
}

impl ServerRef<Supervisor> {
    async fn request(&self, request: Request) -> Result<Response, SupervisorError> {
        // Starting and stopping children can take the children's own timeouts; the supervisor
        // itself answers as soon as it is done.
        Ok(self.call_with_timeout(request, REQUEST_TIMEOUT).await?)
    }

    /// Starts a new child from `spec` and adds it to the supervisor's children.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupervisorError> {
        match self.request(Request::StartChild(spec)).await? {
            Response::Started(result) => result.map(|(pid, _)| pid),
            _ => unreachable!("supervisor answered start_child with another response"),
        }
    }

    /// Starts a child of a simple_one_for_one supervisor from its template, with `args`.
    pub async fn start_simple_child<B>(
        &self,
        args: B::Args,
    ) -> Result<ServerRef<B>, SupervisorError>
    where
        B: GenServer,
        B::Args: Clone + Sync,
    {
        let request = Request::StartSimple(
            Box::new(args),
            TypeId::of::<B>(),
            std::any::type_name::<B>(),
        );
        match self.request(request).await? {
            Response::Started(result) => {
                let (_, server) = result?;
                // The supervisor checked that the template runs `B`.
                Ok(*server
                    .downcast::<ServerRef<B>>()
                    .expect("a template child of the checked behaviour"))
            }
            _ => unreachable!("supervisor answered start_simple_child with another response"),
        }
    }

    /// Stops a child (by its shutdown spec). Its spec stays (except for temporary and
    /// simple_one_for_one children) so it can be restarted with
    /// [`restart_child`](Self::restart_child).
    pub async fn terminate_child(&self, child: impl Into<ChildKey>) -> Result<(), SupervisorError> {
        self.done(Request::Terminate(child.into())).await
    }

    /// Starts a stopped child again from its spec — not one a distributed supervisor lost
    /// with its node while it may still run there ([`SupervisorError::WaitingToMove`]). If
    /// the node asked to start it gives no answer, the request fails and the child is
    /// held as lost with that node: it starts by itself once that is safe.
    pub async fn restart_child(&self, id: &str) -> Result<Pid, SupervisorError> {
        match self.request(Request::Restart(id.to_owned())).await? {
            Response::Started(result) => result.map(|(pid, _)| pid),
            _ => unreachable!("supervisor answered restart_child with another response"),
        }
    }

    /// Removes the spec of a stopped child.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.done(Request::Delete(id.to_owned())).await
    }

    /// Every child, in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        match self.request(Request::Which).await? {
            Response::Children(children) => Ok(children),
            _ => unreachable!("supervisor answered which_children with another response"),
        }
    }

    /// Counts of children.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        match self.request(Request::Count).await? {
            Response::Counts(counts) => Ok(counts),
            _ => unreachable!("supervisor answered count_children with another response"),
        }
    }

    /// Changes where a [`DistributedSupervisor`](crate::DistributedSupervisor) places the
    /// children it starts from now on; fails with [`SupervisorError::NotDistributed`] on a
    /// supervisor started without a selector.
    pub async fn set_selector(&self, selector: NodeSelector) -> Result<(), SupervisorError> {
        self.done(Request::SetSelector(selector)).await
    }

    /// What a [`DistributedSupervisor`](crate::DistributedSupervisor) did: restarts,
    /// migrations, children per node.
    pub async fn distribution(&self) -> Result<DistributionStats, SupervisorError> {
        match self.request(Request::Distribution).await? {
            Response::Distribution(stats) => stats,
            _ => unreachable!("supervisor answered distribution with another response"),
        }
    }

    async fn done(&self, request: Request) -> Result<(), SupervisorError> {
        match self.request(request).await? {
            Response::Done(result) => result,
            _ => unreachable!("supervisor answered with an unexpected response"),
        }
    }
}

/// How long requests to a supervisor may take: they may wait for children to start or stop.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
