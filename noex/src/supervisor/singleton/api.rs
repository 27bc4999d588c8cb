//! The types of a singleton's API: what its manager is started with, what it reports,
//! how it fails.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::error::CallError;
use crate::server::{GenServer, ServerRef};
use crate::supervisor::Backoff;
use crate::Pid;

use super::Singleton;

/// What a [`Singleton`] manager is started with: the global name of the singleton and the
/// arguments of its `init` (each start takes a clone).
#[must_use = "a SingletonSpec does nothing until a Singleton manager is spawned with it"]
pub struct SingletonSpec<B: GenServer> {
    pub(super) name: String,
    pub(super) args: B::Args,
    pub(super) backoff: Backoff,
    pub(super) init_timeout: Option<Duration>,
}

impl<B: GenServer> SingletonSpec<B>
where
    B::Args: Clone,
{
    /// The singleton registered as the global `name`, started with a clone of `args`;
    /// a restart after a failure waits 100 ms, doubling up to 5 s, and `init` may take
    /// [`DEFAULT_INIT_TIMEOUT`](crate::DEFAULT_INIT_TIMEOUT).
    pub fn new(name: impl Into<String>, args: B::Args) -> Self {
        SingletonSpec {
            name: name.into(),
            args,
            backoff: Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5)),
            init_timeout: Some(crate::DEFAULT_INIT_TIMEOUT),
        }
    }

    /// How long this manager waits before it tries to start the singleton again, after the
    /// one it started failed (ended with another reason than `Normal` or `Shutdown`) or
    /// could not start.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long the singleton's `init` may take; `None` waits however long it takes (a
    /// supervisor's `init` starts its children: give it `None`, as
    /// [`ChildSpec::supervisor`](crate::supervisor::ChildSpec::supervisor) does).
    pub fn init_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.init_timeout = timeout.into();
        self
    }

    /// The singleton's global name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<B: GenServer> Clone for SingletonSpec<B>
where
    B::Args: Clone,
{
    fn clone(&self) -> Self {
        SingletonSpec {
            name: self.name.clone(),
            args: self.args.clone(),
            backoff: self.backoff,
            init_timeout: self.init_timeout,
        }
    }
}

impl<B: GenServer> fmt::Debug for SingletonSpec<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingletonSpec")
            .field("name", &self.name)
            .field("behavior", &std::any::type_name::<B>())
            .field("backoff", &self.backoff)
            .field("init_timeout", &self.init_timeout)
            .finish_non_exhaustive()
    }
}

/// Where a singleton runs, as its manager on this node sees it
/// ([`ServerRef::state`](ServerRef::state)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SingletonState {
    /// This manager started it; it runs on this node.
    Here(Pid),
    /// It runs elsewhere: this node's replica of the global registry has it under its name.
    Elsewhere(Pid),
    /// It runs on `node`, which this node does not reach (a partial partition: a third
    /// node that reaches both refused this manager's claim, for the manager there).
    Unreachable {
        /// The node it runs on.
        node: String,
    },
    /// It runs nowhere this node knows of, and this node does not see a majority of the
    /// cluster (or has not joined it yet, see the [module docs](super)): this manager
    /// starts nothing until it does.
    NoMajority,
    /// It runs nowhere this node knows of: this manager starts it once the loss delay
    /// (after its node was lost) or its backoff (after a failure) is over, unless another
    /// does first.
    Waiting,
}

/// Why a [`Singleton`] manager could not start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum SingletonInitError {
    /// The name is longer than [`MAX_SINGLETON_NAME_LEN`](super::MAX_SINGLETON_NAME_LEN).
    #[error("the singleton name is {len} bytes long, over the limit of {max} bytes")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
        /// [`MAX_SINGLETON_NAME_LEN`](super::MAX_SINGLETON_NAME_LEN).
        max: usize,
    },
    /// The node is hidden: it cannot register global names, so it cannot run a singleton.
    #[error("a hidden node cannot run a singleton")]
    HiddenNode,
}

/// The `Call` type of [`Singleton`]: ask with [`ServerRef::state`](ServerRef::state).
#[derive(Debug)]
pub struct SingletonRequest(());

impl<B> ServerRef<Singleton<B>>
where
    B: GenServer,
    B::Args: Clone + Sync,
{
    /// Where the singleton runs, as this manager sees it.
    pub async fn state(&self) -> Result<SingletonState, CallError> {
        self.call(SingletonRequest(())).await
    }

    /// The singleton's pid, if it runs (here or elsewhere) as this manager sees it.
    pub async fn where_running(&self) -> Result<Option<Pid>, CallError> {
        Ok(match self.state().await? {
            SingletonState::Here(pid) | SingletonState::Elsewhere(pid) => Some(pid),
            _ => None,
        })
    }
}
