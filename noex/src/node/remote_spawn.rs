//! Spawning on any node of the cluster: typed, by name, and from a process with a link or
//! monitor (the protocol is in `dist::spawn`).

use std::time::Duration;

use serde::Serialize;

use super::Node;
use crate::dist::spawn::Tie;
use crate::dist::NodeId;
use crate::error::{RemoteSpawnError, SpawnError};
use crate::server::{Ctx, GenServer, ServerRef, SpawnOptions};
use crate::{MonitorRef, Pid, RemoteBehavior};

impl Node {
    /// Spawns a process of behaviour `B` on `node` and waits for its `init` there; the
    /// reference it returns is used like a local one (the same `BApi` methods). On this
    /// node's own id, an ordinary local spawn.
    ///
    /// `B` must be registered on `node` ([`register_all!`](crate::register_all) or
    /// [`ClusterConfig::register_behaviors`](crate::ClusterConfig::register_behaviors)
    /// there). The spawn as a whole may take 10 s; see [`spawn_on_with`](Self::spawn_on_with)
    /// for a name, the init timeout and the spawn timeout.
    ///
    /// ```
    /// use noex::{behavior, ClusterConfig, Node};
    ///
    /// #[behavior(name = "greeter")]
    /// pub struct Greeter {
    ///     greeting: String,
    /// }
    ///
    /// #[behavior]
    /// impl Greeter {
    ///     #[init]
    ///     fn init(greeting: String) -> Self {
    ///         Greeter { greeting }
    ///     }
    ///
    ///     #[call]
    ///     fn greet(&self, name: String) -> String {
    ///         format!("{}, {name}", self.greeting)
    ///     }
    /// }
    ///
    /// # smol::block_on(async {
    /// let config = |name| ClusterConfig::new(name).secret("s3cret").register_behaviors();
    /// let a = Node::start(config("a")).await.unwrap();
    /// let seed = a.local_node_id().unwrap().to_string();
    /// let b = Node::start(config("b").seed(seed)).await.unwrap();
    /// # while a.connected_nodes().is_empty() { smol::Timer::after(std::time::Duration::from_millis(5)).await; }
    ///
    /// // From a, a greeter that runs on b.
    /// let greeter = a.spawn_on::<Greeter>(b.local_node_id().unwrap(), "Hello".into()).await.unwrap();
    /// assert_eq!(greeter.pid().node(), b.local_node_id().unwrap().as_str());
    /// assert_eq!(greeter.greet("a".into()).await.unwrap(), "Hello, a");
    /// # a.shutdown();
    /// # b.shutdown();
    /// # });
    /// ```
    pub async fn spawn_on<B>(
        &self,
        node: &NodeId,
        args: B::Args,
    ) -> Result<ServerRef<B>, RemoteSpawnError>
    where
        B: RemoteBehavior,
        B::Args: Serialize,
    {
        self.spawn_on_with::<B>(node, args, SpawnOptions::new())
            .await
    }

    /// [`spawn_on`](Self::spawn_on) with options: a name to register the process under
    /// on `node`, the init timeout, and the timeout of the spawn as a whole
    /// ([`SpawnOptions::spawn_timeout`]).
    pub async fn spawn_on_with<B>(
        &self,
        node: &NodeId,
        args: B::Args,
        options: SpawnOptions,
    ) -> Result<ServerRef<B>, RemoteSpawnError>
    where
        B: RemoteBehavior,
        B::Args: Serialize,
    {
        if self.local_node_id() == Some(node) {
            let init_timeout = options.init_timeout;
            return self
                .spawn_with::<B>(args, options)
                .await
                .map_err(|error| local_error(node, B::NAME, init_timeout, error));
        }
        let args = encode(B::NAME, node, &args)?;
        let pid = self
            .spawn_remote(node, B::NAME, &args, &options, None)
            .await?;
        Ok(self.remote_server::<B>(&pid))
    }

    /// Spawns the behaviour registered as `behavior` on `node`, with its init arguments
    /// encoded (postcard) — for code that does not know the behaviour's type.
    pub async fn spawn_by_name_on(
        &self,
        node: &NodeId,
        behavior: &str,
        args: &[u8],
    ) -> Result<Pid, RemoteSpawnError> {
        self.spawn_by_name_on_with(node, behavior, args, SpawnOptions::new())
            .await
    }

    /// [`spawn_by_name_on`](Self::spawn_by_name_on) with options.
    pub async fn spawn_by_name_on_with(
        &self,
        node: &NodeId,
        behavior: &str,
        args: &[u8],
        options: SpawnOptions,
    ) -> Result<Pid, RemoteSpawnError> {
        if self.local_node_id() == Some(node) {
            let init_timeout = options.init_timeout.unwrap_or_default();
            return self
                .spawn_by_name_with(behavior, args, options)
                .await
                .map_err(|error| by_name_error(node, init_timeout, error));
        }
        self.spawn_remote(node, behavior, args, &options, None)
            .await
    }

    async fn spawn_remote(
        &self,
        node: &NodeId,
        behavior: &str,
        args: &[u8],
        options: &SpawnOptions,
        tie: Option<Tie>,
    ) -> Result<Pid, RemoteSpawnError> {
        match self.inner.cluster.get() {
            Some(cluster) => {
                cluster
                    .spawn_remote(node, behavior, args, options, tie)
                    .await
            }
            None => Err(RemoteSpawnError::NoConnection { node: node.clone() }),
        }
    }

    /// A reference to a process of another node that was just spawned as a `B`.
    fn remote_server<B: GenServer>(&self, pid: &Pid) -> ServerRef<B> {
        match self.server_ref::<B>(pid) {
            Ok(server) => server,
            Err(error) => unreachable!("a behaviour spawned remotely has a codec: {error}"),
        }
    }
}

impl<P: GenServer> Ctx<P> {
    /// Spawns a process of behaviour `C` on `node`, linked to this one, atomically: the
    /// link exists before `init` runs there, so a child that ends at once is not missed;
    /// if `init` fails, the spawn returns the error and no exit signal arrives. On this
    /// node's own id, [`spawn_link`](Self::spawn_link).
    pub async fn spawn_link_on<C>(
        &mut self,
        node: &NodeId,
        args: C::Args,
    ) -> Result<ServerRef<C>, RemoteSpawnError>
    where
        C: RemoteBehavior,
        C::Args: Serialize,
    {
        self.spawn_link_on_with::<C>(node, args, SpawnOptions::new())
            .await
    }

    /// [`spawn_link_on`](Self::spawn_link_on) with options: a name to register the child
    /// under on `node`, the init timeout, and the timeout of the spawn as a whole.
    pub async fn spawn_link_on_with<C>(
        &mut self,
        node: &NodeId,
        args: C::Args,
        options: SpawnOptions,
    ) -> Result<ServerRef<C>, RemoteSpawnError>
    where
        C: RemoteBehavior,
        C::Args: Serialize,
    {
        let here = self.node();
        if here.local_node_id() == Some(node) {
            let init_timeout = options.init_timeout;
            return self
                .spawn_link_with::<C>(args, options)
                .await
                .map_err(|error| local_error(node, C::NAME, init_timeout, error));
        }
        let args = encode(C::NAME, node, &args)?;
        let tie = Tie {
            process: self.pid().serial(),
            link: true,
            monitor: None,
        };
        let pid = here
            .spawn_remote(node, C::NAME, &args, &options, Some(tie))
            .await?;
        Ok(here.remote_server::<C>(&pid))
    }

    /// Spawns the behaviour registered as `behavior` on `node` — this node included — with
    /// postcard-encoded init arguments, linked to this process atomically (as
    /// [`spawn_link_on`](Self::spawn_link_on)): for code that knows a behaviour by name
    /// only, such as a supervisor's child spec made with
    /// [`ChildSpec::by_name`](crate::ChildSpec::by_name).
    pub async fn spawn_link_by_name_on_with(
        &mut self,
        node: &NodeId,
        behavior: &str,
        args: &[u8],
        options: SpawnOptions,
    ) -> Result<Pid, RemoteSpawnError> {
        let here = self.node();
        if here.local_node_id() == Some(node) {
            let init_timeout = options.init_timeout.unwrap_or_default();
            let me = here.inner.resolve(self.pid());
            return here
                .spawn_by_name_linked(behavior, args, options, me)
                .await
                .map_err(|error| by_name_error(node, init_timeout, error));
        }
        let tie = Tie {
            process: self.pid().serial(),
            link: true,
            monitor: None,
        };
        here.spawn_remote(node, behavior, args, &options, Some(tie))
            .await
    }

    /// Spawns a process of behaviour `C` on `node`, monitored by this one, atomically (the
    /// monitor exists before `init` runs there). If `init` fails, the spawn returns the
    /// error and no `Down` arrives. On this node's own id,
    /// [`spawn_monitor`](Self::spawn_monitor).
    pub async fn spawn_monitor_on<C>(
        &mut self,
        node: &NodeId,
        args: C::Args,
    ) -> Result<(ServerRef<C>, MonitorRef), RemoteSpawnError>
    where
        C: RemoteBehavior,
        C::Args: Serialize,
    {
        self.spawn_monitor_on_with::<C>(node, args, SpawnOptions::new())
            .await
    }

    /// [`spawn_monitor_on`](Self::spawn_monitor_on) with options: a name to register the
    /// child under on `node`, the init timeout, and the timeout of the spawn as a whole.
    pub async fn spawn_monitor_on_with<C>(
        &mut self,
        node: &NodeId,
        args: C::Args,
        options: SpawnOptions,
    ) -> Result<(ServerRef<C>, MonitorRef), RemoteSpawnError>
    where
        C: RemoteBehavior,
        C::Args: Serialize,
    {
        let here = self.node();
        if here.local_node_id() == Some(node) {
            let init_timeout = options.init_timeout;
            return self
                .spawn_monitor_with::<C>(args, options)
                .await
                .map_err(|error| local_error(node, C::NAME, init_timeout, error));
        }
        let args = encode(C::NAME, node, &args)?;
        let monitor = here.inner.next_monitor_ref();
        let tie = Tie {
            process: self.pid().serial(),
            link: false,
            monitor: Some(monitor),
        };
        let pid = here
            .spawn_remote(node, C::NAME, &args, &options, Some(tie))
            .await?;
        Ok((here.remote_server::<C>(&pid), monitor))
    }
}

/// A local spawn by name's error, as a spawn on this node through the remote API reports
/// it.
fn by_name_error(
    node: &NodeId,
    init_timeout: Duration,
    error: crate::behavior::SpawnByNameError,
) -> RemoteSpawnError {
    use crate::behavior::SpawnByNameError as E;
    let node = node.clone();
    match error {
        E::NotFound(behavior) => RemoteSpawnError::BehaviorNotFound { behavior, node },
        E::LocalOnly(behavior) => RemoteSpawnError::LocalOnly { behavior },
        E::BadArgs {
            behavior,
            args_type,
            error,
        } => RemoteSpawnError::BadArgs {
            behavior,
            node,
            args_type: args_type.to_owned(),
            error,
        },
        E::InitFailed { behavior, error } => RemoteSpawnError::InitFailed {
            behavior,
            node,
            error,
        },
        E::InitPanicked { behavior, message } => RemoteSpawnError::InitPanicked {
            behavior,
            node,
            message,
        },
        E::InitTimeout { behavior } => RemoteSpawnError::InitTimeout {
            behavior,
            node,
            timeout: init_timeout,
        },
        E::NameTaken { name, holder } => RemoteSpawnError::NameTaken { name, node, holder },
        E::Exited { behavior, reason } => RemoteSpawnError::Exited {
            behavior,
            node,
            reason,
        },
        E::RegistrationTimeout { name } => RemoteSpawnError::RegistrationTimeout { name, node },
        E::GlobalName(error) => RemoteSpawnError::GlobalName { node, error },
        E::ShuttingDown => RemoteSpawnError::NodeShuttingDown { node },
    }
}

/// The init arguments, encoded for the wire.
fn encode<A: Serialize>(
    behavior: &str,
    node: &NodeId,
    args: &A,
) -> Result<Vec<u8>, RemoteSpawnError> {
    postcard::to_allocvec(args).map_err(|error| RemoteSpawnError::BadArgs {
        behavior: behavior.to_owned(),
        node: node.clone(),
        args_type: std::any::type_name::<A>().to_owned(),
        error: format!("they do not encode: {error}"),
    })
}

/// A local spawn's error, as a spawn on this node through the remote API reports it.
fn local_error<E: std::fmt::Display>(
    node: &NodeId,
    behavior: &str,
    init_timeout: Option<Duration>,
    error: SpawnError<E>,
) -> RemoteSpawnError {
    let (node, behavior) = (node.clone(), behavior.to_owned());
    match error {
        SpawnError::InitFailed(error) => RemoteSpawnError::InitFailed {
            behavior,
            node,
            error: error.to_string(),
        },
        SpawnError::InitPanicked(message) => RemoteSpawnError::InitPanicked {
            behavior,
            node,
            message,
        },
        SpawnError::InitTimeout => RemoteSpawnError::InitTimeout {
            behavior,
            node,
            timeout: init_timeout.unwrap_or_default(),
        },
        SpawnError::Exited(reason) => RemoteSpawnError::Exited {
            behavior,
            node,
            reason,
        },
        SpawnError::NameTaken { name, holder } => {
            RemoteSpawnError::NameTaken { name, node, holder }
        }
        SpawnError::RegistrationTimeout { name } => {
            RemoteSpawnError::RegistrationTimeout { name, node }
        }
        SpawnError::GlobalName(error) => RemoteSpawnError::GlobalName { node, error },
        SpawnError::ShuttingDown => RemoteSpawnError::NodeShuttingDown { node },
    }
}
