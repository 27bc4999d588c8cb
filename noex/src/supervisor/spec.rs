//! What a supervisor is told: its strategy, limits and child specifications.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::Backoff;
use super::placement::NodeSelector;
use super::Supervisor;
use crate::error::RemoteSpawnError;
use crate::server::{Ctx, GenServer, SpawnOptions};
use crate::{NodeId, Pid};

/// Which children a supervisor restarts when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Restart only the child that ended.
    #[default]
    OneForOne,
    /// Stop every other child (in reverse start order), then restart all of them in order.
    OneForAll,
    /// Stop the children started after the one that ended (in reverse order), then restart
    /// it and them in order.
    RestForOne,
    /// Like `OneForOne`, for children started at run time from one
    /// [`ChildTemplate`] with [`start_simple_child`](crate::ServerRef::start_simple_child).
    /// They stop concurrently.
    SimpleOneForOne,
}

/// When a child is restarted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only when it ends abnormally (a reason other than `Normal` or `Shutdown`).
    Transient,
    /// Never; its spec is removed when it ends.
    Temporary,
}

/// How a child is stopped by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Kill it at once; `terminate` does not run.
    BrutalKill,
    /// Ask it to stop (its `terminate` runs) and kill it if it has not ended after this long.
    Timeout(Duration),
    /// Ask it to stop and wait however long it takes (the default for supervisors).
    Infinity,
}

/// The shutdown of a worker unless told otherwise: 5 s, as in OTP.
pub const DEFAULT_WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

/// Whether a child is a worker or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChildKind {
    /// Any process that is not a supervisor.
    Worker,
    /// A supervisor.
    Supervisor,
}

/// When the ending of *significant* children shuts the supervisor down (OTP 24's
/// `auto_shutdown`). Only a child ending by itself counts, not one stopped by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoShutdown {
    /// Never (the default); no child may be significant.
    #[default]
    Never,
    /// When any significant child ends without being restarted.
    AnySignificant,
    /// When every significant child has ended without being restarted.
    AllSignificant,
}

/// A child that has just started: its pid and its typed `ServerRef`, type-erased.
pub(crate) struct Started {
    pub(crate) pid: Pid,
    pub(crate) server: Box<dyn Any + Send>,
}

/// The future a child's start function returns: the new child, or why it failed.
pub(crate) type StartFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Started, String>> + Send + 'a>>;

/// Starts one child from inside its supervisor (always linked to it).
pub(crate) type StartFn =
    Arc<dyn for<'a> Fn(&'a mut Ctx<Supervisor>, SpawnOptions) -> StartFuture<'a> + Send + Sync>;

/// Why a child could not be started on a given node.
pub(crate) enum PlaceError {
    /// The node cannot take it (not connected, the behaviour not registered there...):
    /// another node may.
    Node(String),
    /// The child itself failed (its `init`, a taken name...).
    Child(String),
    /// The node was asked, and no answer came back (the connection was lost, or the spawn
    /// timed out): the child may run there until that node ends it.
    Lost(String),
}

/// The future of a [`PlaceFn`].
pub(crate) type PlaceFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Started, PlaceError>> + Send + 'a>>;

/// Starts one child on a given node, linked to its supervisor (see `placement`).
pub(crate) type PlaceFn = Arc<
    dyn for<'a> Fn(&'a mut Ctx<Supervisor>, NodeId, SpawnOptions) -> PlaceFuture<'a> + Send + Sync,
>;

/// Sorts a remote spawn's error: the node's fault, or the child's.
fn place_error(error: RemoteSpawnError) -> PlaceError {
    match error {
        RemoteSpawnError::NoConnection { .. }
        | RemoteSpawnError::NotSent { .. }
        | RemoteSpawnError::BehaviorNotFound { .. }
        | RemoteSpawnError::NodeShuttingDown { .. }
        | RemoteSpawnError::TooLarge { .. }
        | RemoteSpawnError::HiddenNode { .. } => PlaceError::Node(error.to_string()),
        // The process may have started there (it is ended once that node sees its spawner
        // gave up, or lost): trying another node at once could run the child twice.
        RemoteSpawnError::ConnectionLost { .. } | RemoteSpawnError::Timeout { .. } => {
            PlaceError::Lost(error.to_string())
        }
        _ => PlaceError::Child(error.to_string()),
    }
}

/// How to start, restart and stop one child.
///
/// ```
/// use std::time::Duration;
/// use noex::supervisor::{ChildSpec, Restart, Shutdown};
/// # use noex::{Ctx, GenServer};
/// # struct Cache;
/// # impl GenServer for Cache {
/// #     type Args = usize; type Call = (); type Reply = (); type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: usize, _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Cache) }
/// # }
///
/// let spec = ChildSpec::worker::<Cache>("cache", 1024)
///     .name("cache")
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "cache");
/// ```
#[derive(Clone)]
#[must_use = "a ChildSpec does nothing until a supervisor takes it (SupervisorSpec::child, start_child)"]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) significant: bool,
    pub(crate) name: Option<String>,
    pub(crate) global_name: Option<String>,
    pub(crate) init_timeout: Option<Duration>,
    /// How to start it on a given node, if it can cross nodes.
    pub(crate) place: Option<PlaceFn>,
    /// Known by its behaviour's registered name ([`by_name`](Self::by_name)): placed on
    /// the supervisor's node too through `place`, as that node may not register it.
    pub(crate) by_name: bool,
    pub(crate) backoff: Option<Backoff>,
}

impl ChildSpec {
    /// A worker running behaviour `B`, started with a clone of `args` each time.
    /// Permanent, with a 5 s shutdown and a 5 s init timeout.
    pub fn worker<B>(id: impl Into<String>, args: B::Args) -> ChildSpec
    where
        B: GenServer,
        B::Args: Clone + Sync,
    {
        ChildSpec {
            id: id.into(),
            place: place_fn::<B>(&args),
            by_name: false,
            start: start_fn::<B>(args),
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
            significant: false,
            name: None,
            global_name: None,
            init_timeout: Some(crate::DEFAULT_INIT_TIMEOUT),
            backoff: None,
        }
    }

    /// A worker running the behaviour registered as `behavior`, started with
    /// postcard-encoded init arguments: for a supervisor that knows its children by name
    /// only (a [`DistributedSupervisor`](crate::DistributedSupervisor) places it on any
    /// node where the behaviour is registered). Its `ServerRef` is not typed: the start
    /// functions return its `Pid`.
    pub fn by_name(id: impl Into<String>, behavior: impl Into<String>, args: Vec<u8>) -> ChildSpec {
        let behavior: Arc<str> = Arc::from(behavior.into());
        let args: Arc<[u8]> = Arc::from(args);
        let (local_behavior, local_args) = (behavior.clone(), args.clone());
        let start: StartFn = Arc::new(move |ctx: &mut Ctx<Supervisor>, options| {
            let (behavior, args) = (local_behavior.clone(), local_args.clone());
            Box::pin(async move {
                let node = ctx.node();
                let here = ctx.pid().clone();
                let me = node.inner.resolve(&here);
                match node
                    .spawn_by_name_linked(&behavior, &args, options, me)
                    .await
                {
                    Ok(pid) => Ok(Started {
                        server: Box::new(pid.clone()),
                        pid,
                    }),
                    Err(error) => Err(error.to_string()),
                }
            }) as StartFuture<'_>
        });
        let place: PlaceFn = Arc::new(move |ctx: &mut Ctx<Supervisor>, node, options| {
            let (behavior, args) = (behavior.clone(), args.clone());
            Box::pin(async move {
                match ctx
                    .spawn_link_by_name_on_with(&node, &behavior, &args, options)
                    .await
                {
                    Ok(pid) => Ok(Started {
                        server: Box::new(pid.clone()),
                        pid,
                    }),
                    Err(error) => Err(place_error(error)),
                }
            }) as PlaceFuture<'_>
        });
        ChildSpec {
            id: id.into(),
            start,
            place: Some(place),
            by_name: true,
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
            significant: false,
            name: None,
            global_name: None,
            init_timeout: Some(crate::DEFAULT_INIT_TIMEOUT),
            backoff: None,
        }
    }

    /// A nested supervisor. Permanent, with an `Infinity` shutdown so that it can stop its
    /// own children in full, and no init timeout: its start takes as long as its children's
    /// starts, each bounded by its own init timeout.
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: start_fn::<Supervisor>(spec),
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            kind: ChildKind::Supervisor,
            significant: false,
            name: None,
            global_name: None,
            init_timeout: None,
            place: None,
            by_name: false,
            backoff: None,
        }
    }

    /// The child's id, unique among its siblings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets when the child is restarted.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Registers every incarnation of the child under `name`, so that callers who look it up
    /// by name (see [`Node::named`](crate::Node::named)) reach the current one.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Registers every incarnation of the child under the global `name`, unique in the
    /// cluster, so that callers on any node (see [`Node::named_global`](crate::Node::named_global))
    /// reach the current one. A start whose name is held elsewhere fails, as for a taken
    /// local name.
    pub fn global_name(mut self, name: impl Into<String>) -> Self {
        self.global_name = Some(name.into());
        self
    }

    /// Makes each restart of the child wait for a delay (see [`Backoff`]); the restart
    /// counts toward the intensity when it is decided, not when it happens.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// How long the child's `init` may take before the start counts as failed; `None` waits
    /// however long it takes.
    pub fn init_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.init_timeout = timeout.into();
        self
    }

    /// Marks the child significant for [`AutoShutdown`]. Only transient and temporary
    /// children may be significant.
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .field("name", &self.name)
            .field("global_name", &self.global_name)
            .field("init_timeout", &self.init_timeout)
            .field("backoff", &self.backoff)
            .finish()
    }
}

fn start_fn<B>(args: B::Args) -> StartFn
where
    B: GenServer,
    B::Args: Clone + Sync,
{
    Arc::new(move |ctx: &mut Ctx<Supervisor>, options: SpawnOptions| {
        let args = args.clone();
        Box::pin(async move {
            match ctx.spawn_link_with::<B>(args, options).await {
                Ok(server) => Ok(Started {
                    pid: server.pid().clone(),
                    server: Box::new(server),
                }),
                Err(error) => Err(error.to_string()),
            }
        }) as StartFuture<'_>
    })
}

/// How a child of behaviour `B` starts on a given node: `None` if `B`'s messages cannot
/// cross nodes (it then always starts on its supervisor's node). The arguments are encoded
/// once, here.
fn place_fn<B: GenServer>(args: &B::Args) -> Option<PlaceFn> {
    let codec = B::__remote_codec()?;
    let mut encoded = Vec::new();
    (codec.encode_args)(args, &mut encoded).ok()?;
    let args: Arc<[u8]> = Arc::from(encoded);
    Some(Arc::new(
        move |ctx: &mut Ctx<Supervisor>, node: NodeId, options| {
            let args = args.clone();
            Box::pin(async move {
                let spawned = ctx
                    .spawn_link_by_name_on_with(&node, codec.name, &args, options)
                    .await;
                match spawned {
                    Ok(pid) => match ctx.node().server_ref::<B>(&pid) {
                        Ok(server) => Ok(Started {
                            pid,
                            server: Box::new(server),
                        }),
                        Err(error) => Err(PlaceError::Child(error.to_string())),
                    },
                    Err(error) => Err(place_error(error)),
                }
            }) as PlaceFuture<'_>
        },
    ))
}

/// Makes a child spec from the arguments of one
/// [`start_simple_child`](crate::ServerRef::start_simple_child) call; gives the arguments
/// back if they are of the wrong type.
pub(crate) type Instantiate = Arc<
    dyn Fn(String, Box<dyn Any + Send>) -> Result<ChildSpec, Box<dyn Any + Send>> + Send + Sync,
>;

/// The one kind of child a [`Strategy::SimpleOneForOne`] supervisor starts, with arguments
/// given at each start.
///
/// ```
/// use noex::supervisor::{ChildTemplate, Restart};
/// # use noex::{Ctx, GenServer};
/// # struct Worker;
/// # impl GenServer for Worker {
/// #     type Args = u32; type Call = (); type Reply = (); type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: u32, _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Worker) }
/// # }
///
/// let template = ChildTemplate::worker::<Worker>("worker").restart(Restart::Transient);
/// # let _ = template;
/// ```
#[derive(Clone)]
#[must_use = "a ChildTemplate does nothing until a supervisor takes it (SupervisorSpec::simple_one_for_one)"]
pub struct ChildTemplate {
    pub(crate) id: String,
    pub(crate) behavior: TypeId,
    pub(crate) behavior_name: &'static str,
    pub(crate) instantiate: Instantiate,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) backoff: Option<Backoff>,
}

impl ChildTemplate {
    /// Workers running behaviour `B`; each child's id is `id` followed by a number.
    pub fn worker<B>(id: impl Into<String>) -> ChildTemplate
    where
        B: GenServer,
        B::Args: Clone + Sync,
    {
        ChildTemplate {
            id: id.into(),
            behavior: TypeId::of::<B>(),
            behavior_name: std::any::type_name::<B>(),
            instantiate: Arc::new(|id, args| {
                let args = args.downcast::<B::Args>()?;
                Ok(ChildSpec::worker::<B>(id, *args))
            }),
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            backoff: None,
        }
    }

    /// Makes each restart of the children wait for a delay (see [`Backoff`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Sets when the children are restarted.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the children are stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }
}

impl fmt::Debug for ChildTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildTemplate")
            .field("id", &self.id)
            .field("behavior", &self.behavior_name)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// The restart intensity unless told otherwise: 3 restarts within 5 s, as in noex and
/// Elixir.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// The window of the default restart intensity.
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(5);

/// Everything a supervisor is started with: `node.spawn::<Supervisor>(spec)`.
///
/// ```
/// use std::time::Duration;
/// use noex::supervisor::{AutoShutdown, Strategy, SupervisorSpec};
///
/// let spec = SupervisorSpec::new(Strategy::RestForOne)
///     .intensity(5, Duration::from_secs(10))
///     .auto_shutdown(AutoShutdown::Never);
/// # let _ = spec;
/// ```
#[derive(Debug, Clone)]
#[must_use = "a SupervisorSpec does nothing until a supervisor is spawned with it"]
pub struct SupervisorSpec {
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: u32,
    pub(crate) within: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) template: Option<ChildTemplate>,
    pub(crate) selector: Option<NodeSelector>,
}

impl SupervisorSpec {
    /// A supervisor with this strategy, no children yet, and the default intensity.
    pub fn new(strategy: Strategy) -> Self {
        SupervisorSpec {
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            within: DEFAULT_RESTART_WINDOW,
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            template: None,
            selector: None,
        }
    }

    /// A [`DistributedSupervisor`](crate::DistributedSupervisor): its children that can
    /// cross nodes start where `selector` places them, and move when their node is lost
    /// (see [`placement`](super::placement)).
    pub fn distributed(strategy: Strategy, selector: NodeSelector) -> Self {
        SupervisorSpec {
            selector: Some(selector),
            ..SupervisorSpec::new(strategy)
        }
    }

    /// Places the children with `selector`: makes the supervisor distributed.
    pub fn selector(mut self, selector: NodeSelector) -> Self {
        self.selector = Some(selector);
        self
    }

    /// A [`Strategy::SimpleOneForOne`] supervisor of children made from `template`.
    pub fn simple_one_for_one(template: ChildTemplate) -> Self {
        SupervisorSpec {
            template: Some(template),
            ..SupervisorSpec::new(Strategy::SimpleOneForOne)
        }
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Sets the restart intensity: more than `max_restarts` restarts within `within` make
    /// the supervisor stop its children and exit with `Shutdown`.
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// Sets when significant children shut the supervisor down.
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }
}
