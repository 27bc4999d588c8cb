//! Typed references to servers: [`ServerRef`] (one process) and [`NamedRef`] (whatever
//! process holds a name right now).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::call::Call;
use super::process::{Envelope, Process};
use super::run;
use super::{GenServer, Info};
use crate::dist::remote::RemoteTarget;
use crate::error::{CallError, CastError, LookupError, SendError, Target};
use crate::node::{stop_process, Node, DEFAULT_STOP_GRACE};
use crate::{ExitReason, Pid};

/// The timeout of [`ServerRef::call`], as in OTP's `gen_server:call/2`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A typed reference to a process running behaviour `B`.
///
/// A `ServerRef` names one process (one [`Pid`]) and knows its message types, so only
/// `B`'s calls, casts and infos can be sent through it. It is cheap to clone, `Send` and
/// `Sync`, and stays valid after the process ends: sends then fail with `NoProc`.
///
/// ```
/// # use noex::{Ctx, GenServer, Node, ReplyTo};
/// # struct Echo;
/// # impl GenServer for Echo {
/// #     type Args = (); type Call = String; type Reply = String; type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Echo) }
/// #     async fn handle_call(&mut self, text: String, reply: ReplyTo<String>, _: &mut Ctx<Self>) {
/// #         reply.send(text)
/// #     }
/// # }
/// use std::time::Duration;
/// use noex::{CallError, ExitReason, Target};
///
/// let node = Node::new();
/// node.block_on(async {
///     let echo = node.spawn::<Echo>(()).await.unwrap();
///     assert_eq!(echo.call("hi".to_string()).await.unwrap(), "hi");
///     let quick = echo.call_with_timeout("hey".to_string(), Duration::from_millis(100));
///     assert_eq!(quick.await.unwrap(), "hey");
///
///     echo.stop(ExitReason::Normal).await.unwrap();
///     let gone = Target::Pid(echo.pid().clone());
///     assert_eq!(echo.call("anyone?".to_string()).await, Err(CallError::NoProc { target: gone }));
/// });
/// node.shutdown();
/// ```
///
/// # Casts and flow control
///
/// A cast is queued for the server and not waited for. There are three ways to send one,
/// which differ only in what happens when it cannot be queued:
///
/// | method | when the way to the server is full | the message, if not queued |
/// |---|---|---|
/// | [`cast`](Self::cast) | fails with [`SendError::Overloaded`] | dropped (counted in [`TrafficStats::casts_dropped`](crate::TrafficStats)) |
/// | [`try_cast`](Self::try_cast) | fails with [`SendError::Overloaded`] | handed back in the [`CastError`] |
/// | [`cast_wait`](Self::cast_wait)`.await` | waits for room | handed back in the [`CastError`] |
///
/// A mailbox is unbounded, so a cast to a process of this node always finds room (and
/// `cast_wait` completes at once). A cast to a process of another node is queued on the
/// connection to that node, whose outbound queue is bounded
/// ([`ClusterConfig::outbound_queue`](crate::ClusterConfig::outbound_queue)); it is full
/// while that node takes messages more slowly than they are sent — on a slow network, or
/// because a process there is slow: a node stops reading from a peer while a process it
/// delivered that peer's messages to has
/// [`mailbox_limit`](crate::ClusterConfig::mailbox_limit) messages waiting. So senders
/// that use `cast_wait` go at the pace of the slowest consumer they feed, with bounded
/// memory on both nodes, like an Erlang process suspended on a busy distribution port.
/// The `#[behavior]` client methods come in the same three forms: `name(..)`,
/// `try_name(..)` and `name_wait(..)`.
///
/// **Order.** The messages of one sender (a process; code outside any process counts as
/// one sender) to one server arrive in the order they were queued, whichever method
/// queued them. A waiting `cast_wait` keeps its place: a later `try_cast` or `cast` of
/// the same sender (from another future of the same process, say) fails with
/// `Overloaded` rather than pass it. Among senders, room goes to them in the order they
/// began to wait, so a waiting sender is never starved by others that do not wait.
/// Dropping a waiting `cast_wait` future withdraws its message: it is not sent.
///
/// ```
/// # use noex::{Ctx, GenServer, Node, ReplyTo};
/// # struct Counter(u64);
/// # enum Cast { Add(u64) }
/// # impl GenServer for Counter {
/// #     type Args = (); type Call = (); type Reply = u64; type Cast = Cast; type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Counter(0)) }
/// #     async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
/// #         reply.send(self.0)
/// #     }
/// #     async fn handle_cast(&mut self, Cast::Add(n): Cast, _: &mut Ctx<Self>) { self.0 += n }
/// # }
/// use noex::{ExitReason, SendError};
///
/// let node = Node::new();
/// node.block_on(async {
///     let counter = node.spawn::<Counter>(()).await.unwrap();
///     counter.cast_wait(Cast::Add(1)).await.unwrap(); // waits only if the way is full
///     if let Err(refused) = counter.try_cast(Cast::Add(2)) {
///         // Full: wait for room with the same message.
///         counter.cast_wait(refused.into_inner()).await.unwrap();
///     }
///     assert_eq!(counter.call(()).await, Ok(3));
///
///     counter.stop(ExitReason::Normal).await.unwrap();
///     let refused = counter.try_cast(Cast::Add(4)).unwrap_err();
///     assert!(matches!(refused.error(), SendError::NoProc { .. }));
///     let Cast::Add(n) = refused.into_inner();
///     assert_eq!(n, 4);
/// });
/// node.shutdown();
/// ```
pub struct ServerRef<B: GenServer> {
    route: Route<B>,
}

/// Where a `ServerRef`'s messages go.
enum Route<B: GenServer> {
    /// Straight into a local process's mailbox.
    Local(Arc<Process<B>>),
    /// Over the connection to the process's node.
    Remote(Arc<RemoteProcess<B>>),
}

/// A process of another node.
struct RemoteProcess<B: GenServer> {
    pid: Pid,
    target: RemoteTarget<B>,
}

impl<B: GenServer> Clone for ServerRef<B> {
    fn clone(&self) -> Self {
        ServerRef {
            route: match &self.route {
                Route::Local(process) => Route::Local(process.clone()),
                Route::Remote(remote) => Route::Remote(remote.clone()),
            },
        }
    }
}

impl<B: GenServer> PartialEq for ServerRef<B> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.route, &other.route) {
            (Route::Local(a), Route::Local(b)) => Arc::ptr_eq(a, b),
            _ => self.pid() == other.pid(),
        }
    }
}

impl<B: GenServer> Eq for ServerRef<B> {}

impl<B: GenServer> fmt::Debug for ServerRef<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerRef").field(self.pid()).finish()
    }
}

impl<B: GenServer> ServerRef<B> {
    pub(crate) fn from_process(process: Arc<Process<B>>) -> Self {
        ServerRef {
            route: Route::Local(process),
        }
    }

    pub(crate) fn remote(pid: Pid, target: RemoteTarget<B>) -> Self {
        ServerRef {
            route: Route::Remote(Arc::new(RemoteProcess { pid, target })),
        }
    }

    /// The local process, if the reference is to one.
    pub(crate) fn local_process(&self) -> Option<&Arc<Process<B>>> {
        match &self.route {
            Route::Local(process) => Some(process),
            Route::Remote(_) => None,
        }
    }

    #[cold]
    fn no_proc(&self) -> SendError {
        SendError::NoProc {
            target: Target::Pid(self.pid().clone()),
        }
    }

    /// The process's pid.
    pub fn pid(&self) -> &Pid {
        match &self.route {
            Route::Local(process) => process.core.pid(),
            Route::Remote(remote) => &remote.pid,
        }
    }

    /// `true` if the process runs on this node (rather than on another node of the
    /// cluster).
    pub fn is_local(&self) -> bool {
        matches!(self.route, Route::Local(_))
    }

    /// `true` while the process runs. For a process of another node: while that node is
    /// connected (a node learns of a remote process's end only through a monitor).
    pub fn is_alive(&self) -> bool {
        match &self.route {
            Route::Local(process) => process.core.is_alive(),
            Route::Remote(remote) => remote.target.is_reachable(),
        }
    }

    /// Calls the server and waits for its reply, for at most 5 s.
    ///
    /// Errors: [`CallError::NoProc`] at once if the server is not running or ends before
    /// taking the request; [`CallError::Exited`] if it ends while handling it;
    /// [`CallError::Timeout`] if no reply comes in time (a late reply is dropped). A call
    /// to another node fails with [`CallError::NoConnection`] as soon as that node is
    /// lost.
    pub async fn call(&self, request: B::Call) -> Result<B::Reply, CallError> {
        self.call_with_timeout(request, DEFAULT_CALL_TIMEOUT).await
    }

    /// [`call`](Self::call) with a timeout of your choice.
    ///
    /// The timeout is never cut short. From a node's own threads its clock starts when the
    /// thread next reads the clock (it does every few tasks, and before it waits for work)
    /// rather than when the call starts, and call deadlines share one timer per thread
    /// rather than a timer per call (which would cost more than the call): a busy thread
    /// may see it expire a little late.
    pub fn call_with_timeout(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> impl Future<Output = Result<B::Reply, CallError>> + Send + '_ {
        match &self.route {
            Route::Local(process) => Call::local(process, request, timeout),
            // Boxed: the remote call's future is large, and every local call would carry it.
            Route::Remote(remote) => Call::boxed(remote.target.call(request, timeout)),
        }
    }

    /// Sends a one-way message. Fails with [`SendError::NoProc`] if the server is known not
    /// to run (or [`SendError::NoConnection`] / [`SendError::Overloaded`] for a process of
    /// another node); success means the message is queued, not that it will be handled.
    /// A message that fails is dropped: [`try_cast`](Self::try_cast) hands it back, and
    /// [`cast_wait`](Self::cast_wait) waits for room instead of failing with `Overloaded`
    /// (see [flow control](Self#casts-and-flow-control)).
    #[inline]
    pub fn cast(&self, message: B::Cast) -> Result<(), SendError> {
        match &self.route {
            Route::Local(process) => process
                .deliver(Envelope::Cast(message))
                .map_err(|_| self.no_proc()),
            Route::Remote(remote) => remote.target.cast(message),
        }
    }

    /// [`cast`](Self::cast), handing the message back in the error if it cannot be
    /// queued (see [`CastError`]): with [`SendError::Overloaded`] while the way to a
    /// process of another node is full, to be sent again later or with
    /// [`cast_wait`](Self::cast_wait). It never waits.
    pub fn try_cast(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        match &self.route {
            Route::Local(process) => match process.deliver(Envelope::Cast(message)) {
                Ok(()) => Ok(()),
                Err(Envelope::Cast(message)) => Err(CastError::new(self.no_proc(), message)),
                Err(_) => unreachable!("a mailbox hands back the envelope it was given"),
            },
            Route::Remote(remote) => remote.target.try_cast(message),
        }
    }

    /// [`cast`](Self::cast) that waits for room instead of failing with
    /// [`SendError::Overloaded`]: the awaited, flow-controlled cast (see
    /// [flow control](Self#casts-and-flow-control)). To a process of this node it
    /// completes at once. To a process of another node it waits while the connection's
    /// outbound queue is full, in line with the other senders that wait there, and fails —
    /// handing the message back — with [`SendError::NoConnection`] if the connection is
    /// lost first. It resolves once the message is queued, not handled.
    ///
    /// Dropping the future while it waits withdraws the message: it is not sent.
    pub async fn cast_wait(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        match &self.route {
            Route::Local(_) => self.try_cast(message),
            Route::Remote(remote) => remote.target.cast_wait(message).await,
        }
    }

    /// Sends a plain message to the server's [`handle_info`](GenServer::handle_info), like
    /// Erlang's `!`.
    pub fn send(&self, message: B::Info) -> Result<(), SendError> {
        match &self.route {
            Route::Local(process) => process
                .deliver(Envelope::Info(Info::Message(message)))
                .map_err(|_| self.no_proc()),
            Route::Remote(remote) => remote.target.send(message),
        }
    }

    /// Stops the server gracefully: it finishes its current message, runs `terminate` and
    /// ends with `reason`; if that takes more than 5 s it is killed. Resolves with the
    /// reason it actually ended with. A server's own handler cannot wait for its end: it
    /// gets [`SendError::StoppingSelf`], and stops with [`Ctx::stop`](crate::Ctx::stop).
    pub async fn stop(&self, reason: ExitReason) -> Result<ExitReason, SendError> {
        self.stop_with_grace(reason, Some(DEFAULT_STOP_GRACE)).await
    }

    /// [`stop`](Self::stop) with a grace period of your choice; `None` waits for
    /// `terminate` however long it takes.
    pub async fn stop_with_grace(
        &self,
        reason: ExitReason,
        grace: Option<Duration>,
    ) -> Result<ExitReason, SendError> {
        match &self.route {
            Route::Local(process) if run::is_current(process) => Err(SendError::StoppingSelf),
            Route::Local(process) => stop_process(&process.core, reason, grace).await,
            Route::Remote(remote) => remote.target.stop(reason, grace).await,
        }
    }

    /// Waits until the server has ended and returns why. For a process of another node,
    /// the reason comes from that node (through a monitor), or is
    /// [`ExitReason::NoConnection`] if the node is lost first.
    pub async fn exited(&self) -> ExitReason {
        match &self.route {
            Route::Local(process) => process.core.exited().await,
            Route::Remote(remote) => remote.target.exited(&remote.pid).await,
        }
    }
}

/// A reference by name: each use finds the process registered under the name at that
/// moment, so it keeps reaching a supervised process across restarts.
///
/// ```
/// # use noex::{Ctx, GenServer, Node, ReplyTo, SpawnOptions};
/// # struct Echo;
/// # impl GenServer for Echo {
/// #     type Args = (); type Call = u32; type Reply = u32; type Cast = (); type Info = ();
/// #     type InitError = std::convert::Infallible;
/// #     async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> { Ok(Echo) }
/// #     async fn handle_call(&mut self, n: u32, reply: ReplyTo<u32>, _: &mut Ctx<Self>) {
/// #         reply.send(n)
/// #     }
/// # }
/// use noex::{CallError, ExitReason};
///
/// let node = Node::new();
/// let echo = node.named::<Echo>("echo");
/// node.block_on(async {
///     // Nobody has the name yet.
///     assert!(matches!(echo.call(1).await, Err(CallError::NoProc { .. })));
///
///     let first = node.spawn_with::<Echo>((), SpawnOptions::new().name("echo")).await.unwrap();
///     assert_eq!(echo.call(2).await, Ok(2));
///
///     first.stop(ExitReason::Normal).await.unwrap();
///     node.spawn_with::<Echo>((), SpawnOptions::new().name("echo")).await.unwrap();
///     assert_eq!(echo.call(3).await, Ok(3)); // reaches the new process
/// });
/// node.shutdown();
/// ```
pub struct NamedRef<B: GenServer> {
    node: Node,
    name: String,
    scope: Scope<B>,
}

/// Where a [`NamedRef`]'s name is registered.
enum Scope<B: GenServer> {
    /// On this node.
    Local,
    /// On another node, which resolves it at each message.
    Node(Arc<RemoteTarget<B>>),
    /// In the global registry, whose replica this node reads at each message.
    Global,
}

impl<B: GenServer> Clone for NamedRef<B> {
    fn clone(&self) -> Self {
        NamedRef {
            node: self.node.clone(),
            name: self.name.clone(),
            scope: match &self.scope {
                Scope::Local => Scope::Local,
                Scope::Node(target) => Scope::Node(target.clone()),
                Scope::Global => Scope::Global,
            },
        }
    }
}

/// The name, and where it is registered when not on this node: `NamedRef("cache")`,
/// `NamedRef("cache", on b@10.0.0.2:4000)`, `NamedRef("cache", global)`.
impl<B: GenServer> fmt::Debug for NamedRef<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut named = f.debug_tuple("NamedRef");
        named.field(&self.name);
        match &self.scope {
            Scope::Local => {}
            Scope::Node(target) => {
                named.field(&format_args!("on {}", target.node()));
            }
            Scope::Global => {
                named.field(&format_args!("global"));
            }
        }
        named.finish()
    }
}

impl<B: GenServer> NamedRef<B> {
    pub(crate) fn new(node: Node, name: String) -> Self {
        NamedRef {
            node,
            name,
            scope: Scope::Local,
        }
    }

    pub(crate) fn on_node(node: Node, name: String, target: RemoteTarget<B>) -> Self {
        NamedRef {
            node,
            name,
            scope: Scope::Node(Arc::new(target)),
        }
    }

    pub(crate) fn global(node: Node, name: String) -> Self {
        NamedRef {
            node,
            name,
            scope: Scope::Global,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process holding the name now: on this node, or — for a global name — wherever
    /// it runs. A name registered on another node is reached only through the `NamedRef`
    /// itself.
    pub fn resolve(&self) -> Result<ServerRef<B>, LookupError> {
        match &self.scope {
            Scope::Local => self.node.lookup::<B>(&self.name),
            Scope::Global => self.node.lookup_global::<B>(&self.name),
            Scope::Node(_) => Err(LookupError::OnAnotherNode(self.name.clone())),
        }
    }

    fn nobody(&self) -> Target {
        match self.scope {
            Scope::Global => Target::Global {
                name: self.name.clone(),
            },
            _ => Target::name(&self.name),
        }
    }

    /// [`ServerRef::call`] on the process holding the name; `NoProc` if nobody does.
    pub async fn call(&self, request: B::Call) -> Result<B::Reply, CallError> {
        self.call_with_timeout(request, DEFAULT_CALL_TIMEOUT).await
    }

    /// [`ServerRef::call_with_timeout`] on the process holding the name.
    pub async fn call_with_timeout(
        &self,
        request: B::Call,
        timeout: Duration,
    ) -> Result<B::Reply, CallError> {
        match &self.scope {
            Scope::Node(target) => target.call(request, timeout).await,
            _ => match self.resolve() {
                Ok(holder) => holder.call_with_timeout(request, timeout).await,
                Err(LookupError::NotFound(_)) => Err(CallError::NoProc {
                    target: self.nobody(),
                }),
                Err(error) => Err(error.into()),
            },
        }
    }

    /// [`ServerRef::cast`] to the process holding the name.
    pub fn cast(&self, message: B::Cast) -> Result<(), SendError> {
        match &self.scope {
            Scope::Node(target) => target.cast(message),
            _ => self.one_way()?.cast(message),
        }
    }

    /// [`ServerRef::try_cast`] to the process holding the name (`NoProc`, with the
    /// message, if nobody does).
    pub fn try_cast(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        match &self.scope {
            Scope::Node(target) => target.try_cast(message),
            _ => match self.one_way() {
                Ok(holder) => holder.try_cast(message),
                Err(error) => Err(CastError::new(error, message)),
            },
        }
    }

    /// [`ServerRef::cast_wait`] to the process holding the name (`NoProc`, with the
    /// message, if nobody does). A name of this node or a global name is looked up once,
    /// before the wait; a name on another node is looked up there, when the message
    /// arrives.
    pub async fn cast_wait(&self, message: B::Cast) -> Result<(), CastError<B::Cast>> {
        match &self.scope {
            Scope::Node(target) => target.cast_wait(message).await,
            _ => match self.one_way() {
                Ok(holder) => holder.cast_wait(message).await,
                Err(error) => Err(CastError::new(error, message)),
            },
        }
    }

    /// [`ServerRef::send`] to the process holding the name.
    pub fn send(&self, message: B::Info) -> Result<(), SendError> {
        match &self.scope {
            Scope::Node(target) => target.send(message),
            _ => self.one_way()?.send(message),
        }
    }

    fn one_way(&self) -> Result<ServerRef<B>, SendError> {
        self.resolve().map_err(|error| match error {
            LookupError::NotFound(_) => SendError::NoProc {
                target: self.nobody(),
            },
            error => error.into(),
        })
    }
}
