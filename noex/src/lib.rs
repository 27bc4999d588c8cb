//! Erlang/OTP-style processes for Rust, on the smol runtime.
//!
//! noex gives you what makes OTP systems keep running when parts of them fail:
//!
//! * **processes** — cheap tasks with a mailbox each, that share nothing and talk by
//!   messages;
//! * **behaviours** — a [`GenServer`] owns a state and answers typed calls and casts through
//!   a typed [`ServerRef`];
//! * **links and monitors** — a process learns when another ends, and why ([`ExitReason`]);
//!   a panic ends only the process that panicked;
//! * **supervisors** — restart failed processes by strategy and restart type, and give up
//!   (escalate) when failures come too fast;
//! * **timers and a registry** — messages after a delay, unique names, typed lookups;
//! * **introspection** — what runs on any node of a cluster, read through one typed API
//!   ([`observe`]), with metrics and traces across nodes as opt-in features.
//!
//! Every process belongs to a [`Node`]; nothing is global, so several nodes can run in one
//! OS process. Nodes started with [`Node::start`] form a cluster over TCP, in which a
//! [`ServerRef`] works the same whether its process runs here or on another node (see
//! [`ClusterConfig`]): processes are spawned, linked, monitored and named across nodes
//! ([`global`]), a [`DistributedSupervisor`] places its children on the cluster and moves
//! them off a lost node, and a [`Singleton`] runs one process in the cluster, started again
//! elsewhere when its node is lost — never on both sides of a partition.
//!
//! # Example
//!
//! ```
//! use noex::{Ctx, GenServer, Node, ReplyTo};
//!
//! /// A counter: the state of one process.
//! struct Counter {
//!     count: u64,
//! }
//!
//! enum Call {
//!     Get,
//! }
//!
//! enum Cast {
//!     Add(u64),
//! }
//!
//! impl GenServer for Counter {
//!     type Args = u64;
//!     type Call = Call;
//!     type Reply = u64;
//!     type Cast = Cast;
//!     type Info = ();
//!     type InitError = std::convert::Infallible;
//!
//!     async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
//!         Ok(Counter { count: start })
//!     }
//!
//!     async fn handle_call(&mut self, call: Call, reply: ReplyTo<u64>, _ctx: &mut Ctx<Self>) {
//!         match call {
//!             Call::Get => reply.send(self.count),
//!         }
//!     }
//!
//!     async fn handle_cast(&mut self, cast: Cast, _ctx: &mut Ctx<Self>) {
//!         match cast {
//!             Cast::Add(n) => self.count += n,
//!         }
//!     }
//! }
//!
//! let node = Node::new();
//! node.block_on(async {
//!     let counter = node.spawn::<Counter>(1).await.unwrap();
//!     counter.cast(Cast::Add(41)).unwrap();
//!     assert_eq!(counter.call(Call::Get).await, Ok(42));
//! });
//! node.shutdown();
//! ```
//!
//! Supervision is described in [`supervisor`]; the contract of a behaviour's callbacks in
//! [`GenServer`].

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod behavior;
mod bytes;
mod dist;
mod error;
mod events;
mod exit;
pub mod global;
mod lock;
#[cfg(feature = "metrics")]
pub mod metrics;
mod node;
pub mod observe;
mod pid;
mod process;
mod registry;
mod server;
pub mod supervisor;
mod timer;
#[cfg(feature = "tracing-context")]
pub mod trace;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Guides: longer texts on using noex.
pub mod guide {
    #[doc = include_str!("../docs/running-a-cluster.md")]
    pub mod running_a_cluster {}
}

pub use behavior::{
    BehaviorInfo, BehaviorName, RegistryError, RemoteBehavior, ServerHandle, SpawnByNameError,
};
pub use bytes::Bytes;
pub use dist::discovery;
#[doc(hidden)]
pub use dist::MembershipCounts;
#[cfg(feature = "tls")]
pub use dist::{rustls, TlsConfig, TlsError};
pub use dist::{
    ClusterConfig, ClusterEvent, ConfigError, Discovery, DiscoveryError, DnsSeeds, ForgetError,
    NodeDownReason, NodeId, NodeIdError, NodeInfo, NodeStatus, RefusedReason, RemoteStats,
    SpawnStats, StartError, StaticSeeds, TieStats, TrafficStats, DEFAULT_DISCOVERY_INTERVAL,
    MIN_FRAME_SIZE,
};
pub use error::{
    CallError, CastError, CodecStep, GlobalError, LookupError, RegisterError, RemoteSpawnError,
    SendError, SpawnError, Target,
};
pub use events::{Events, LifecycleEvent, Subscription, EVENT_QUEUE};
pub use exit::ExitReason;
pub use global::{GlobalEvent, GroupEvent, GLOBAL_TIMEOUT, MAX_NAME_LEN};
pub use node::{
    BuildError, ClusterEvents, Faults, GlobalEvents, GroupEvents, Node, NodeBuilder,
    DEFAULT_BUSY_WAIT, DEFAULT_STOP_GRACE,
};
pub use observe::{Observer, ProcessInfo};
pub use pid::{MonitorRef, Pid};
pub use server::reference::DEFAULT_CALL_TIMEOUT;
pub use server::spawn::{DEFAULT_INIT_TIMEOUT, DEFAULT_SPAWN_TIMEOUT};
pub use server::{Ctx, GenServer, Info, NamedRef, ReplyTo, ServerRef, SpawnOptions};
pub use supervisor::{
    ChildSpec, DistributedSupervisor, NodeSelector, Restart, Shutdown, Singleton, SingletonSpec,
    Strategy, Supervisor, SupervisorSpec,
};

pub use timer::TimerRef;

/// The handle of a task started with [`Node::spawn_task`] (smol's task, re-exported so
/// that its type can be named without depending on smol): await it for the task's output
/// ([`fallible`](Task::fallible) where the node may shut down first), drop it to cancel
/// the task, or [`detach`](Task::detach) it to let the task run on.
pub use smol::Task;

/// Writes a behaviour from a struct and one annotated `impl` block: the message types, the
/// [`GenServer`] impl, and a client trait with one typed method per message.
///
/// Put `#[behavior]` on the struct that holds the state and on the struct's own `impl`
/// block, and mark the methods that handle messages:
///
/// ```
/// use noex::{behavior, Node, ReplyTo};
///
/// /// A counter that can also tell a caller about its next change.
/// #[behavior]
/// pub struct Counter {
///     count: u64,
///     waiting: Vec<ReplyTo<u64>>,
/// }
///
/// #[behavior]
/// impl Counter {
///     /// Builds the state from the spawn arguments.
///     #[init]
///     async fn init(start: u64) -> Self {
///         Counter {
///             count: start,
///             waiting: Vec::new(),
///         }
///     }
///
///     /// The current count.
///     #[call]
///     async fn get(&self) -> u64 {
///         self.count
///     }
///
///     /// Adds `n`, and answers the callers waiting for a change.
///     #[cast]
///     async fn add(&mut self, n: u64) {
///         self.count += n;
///         for reply in self.waiting.drain(..) {
///             reply.send(self.count);
///         }
///     }
///
///     /// The count after the next `add`: the method keeps the `ReplyTo` and answers later.
///     #[call]
///     async fn next_change(&mut self, reply: ReplyTo<u64>) {
///         self.waiting.push(reply);
///     }
/// }
///
/// let node = Node::new();
/// node.block_on(async {
///     let counter = node.spawn::<Counter>(40).await.unwrap();
///     counter.add(2).unwrap(); // a cast: Result<(), SendError>
///     assert_eq!(counter.get().await, Ok(42)); // a call: Result<u64, CallError>
///
///     // `next_change` is answered by the `add` that follows it.
///     let next = counter.next_change();
///     let (next, added) = smol::future::zip(next, async { counter.add(1) }).await;
///     assert_eq!((next, added), (Ok(43), Ok(())));
/// });
/// node.shutdown();
/// ```
///
/// # The methods
///
/// | marker | takes | returns | handles |
/// | --- | --- | --- | --- |
/// | `#[init]` (exactly one) | no `self`; the spawn arguments | `Self` or `Result<Self, E>` | [`GenServer::init`] |
/// | `#[call]` | `&self` or `&mut self`; the call's arguments | the reply (nothing for `()`) | a call |
/// | `#[call]`, deferred | `&self` or `&mut self`, arguments, `reply: ReplyTo<T>` | nothing | a call answered through `reply`, now or later |
/// | `#[cast]` | `&self` or `&mut self`; the cast's arguments | nothing | a cast |
/// | `#[info]` (at most one) | `&self` or `&mut self`, `info: Info<T>` | nothing | [`GenServer::handle_info`]; `Info` is `T` |
/// | `#[terminate]` (at most one) | `&self` or `&mut self`, `reason: &ExitReason` | nothing | [`GenServer::terminate`] |
///
/// Every marked method may also take `ctx: &mut Ctx<Self>` (anywhere among its
/// parameters), and may be an `async fn` or a plain `fn`. The arguments of `#[init]` are the
/// behaviour's `Args`: `()` for none, the type itself for one, a tuple for several
/// (`node.spawn::<Worker>((10, "w".to_string()))`). An `Err` from `#[init]` fails the spawn
/// with [`SpawnError::InitFailed`]; an `Err` returned by a `#[call]` method is the caller's
/// reply, not a crash. Methods without a marker stay ordinary methods. `&self` may also be
/// written `self: &Self`, and the markers `#[noex::init]` etc. (as `#[noex::behavior]`). A
/// behaviour has exactly one `#[behavior]` impl block.
///
/// A message is moved to the process (a reply to the caller), so it owns its data: a
/// reference in an argument, reply or info type is refused, with the owned type to use
/// (`String` rather than `&str`), as are `impl Trait` and `_`. `Self` in these types is the
/// behaviour's type. A marked method cannot have type or const parameters (lifetimes are
/// fine). A marked method's `#[cfg(..)]`s apply to everything generated for it, and its
/// doc comments and `#[deprecated]` are copied to its client methods.
///
/// An `async fn` that takes `&self` holds `&Self` across an `.await` of the server, so the
/// state must be `Sync` (a `Cell` field, for example, is refused with "future cannot be sent
/// between threads safely"); take `&mut self` or write a plain `fn` instead.
///
/// # What is generated
///
/// For `#[behavior] impl Counter`:
///
/// * `impl GenServer for Counter`, whose `Call`, `Reply` and `Cast` are hidden enums with
///   one variant per `#[call]` or `#[cast]` method, dispatched to the methods;
/// * `pub trait CounterApi`, implemented for every [`ServerHandle<Counter>`](ServerHandle)
///   ([`ServerRef<Counter>`](ServerRef) and [`NamedRef<Counter>`](NamedRef)). Per `#[call]`
///   it has `name(args)` and `name_with_timeout(args, timeout)`, which resolve to
///   `Result<Reply, CallError>` (the first waits [`DEFAULT_CALL_TIMEOUT`]); per `#[cast]`,
///   `name(args) -> Result<(), SendError>`, `try_name(args) -> Result<(), CastError<A>>`
///   and `name_wait(args)`, which resolves to `Result<(), CastError<A>>` — the three forms
///   of a cast ([`cast`](ServerRef::cast), [`try_cast`](ServerRef::try_cast),
///   [`cast_wait`](ServerRef::cast_wait); see [flow control](ServerRef#casts-and-flow-control)),
///   where `A` is the arguments handed back: `()` for none, the type itself for one, a tuple
///   for several. Import the trait where the handles are used; the method's doc comments
///   become the client method's.
/// * `#[behavior]` on the struct implements [`BehaviorName`]: the type's module path
///   (`my_crate::workers::Counter`), or the name given with `#[behavior(name = "counter")]`.
/// * Unless the behaviour is local: serde impls of the message enums, in which each message
///   is tagged with a `u32` derived from the behaviour's name and the method's name (so a
///   message of a renamed or removed method fails to decode instead of reaching another
///   method); [`RemoteBehavior`] with those tags; and an entry in the behaviour registry,
///   which [`register_all!`] loads into a node for [`Node::spawn_by_name`].
///
/// # Options
///
/// * `#[behavior(name = "...")]` on the struct: the behaviour's name in the registry and on
///   the wire. Two behaviours of one program must not share a name (`register_all!` fails).
/// * `#[behavior(local)]` on the impl block: no serialization and no registry entry, so the
///   messages need not be serde types (channels, `Arc`s, closures). Otherwise every
///   argument, reply, init argument and info type must implement `Serialize` and
///   `DeserializeOwned`. A generic behaviour must be local, its type parameters
///   `Send + 'static`.
/// * `#[behavior(crate = path)]` on the struct **and** on the impl block: the path by which
///   the generated code names noex, instead of `::noex`, for a crate that renames the
///   dependency (`actors = { package = "noex", .. }` in `Cargo.toml`: `crate = actors`) or
///   reaches noex through a facade crate (`crate = facade::noex`); `crate = "actors"` is
///   accepted too. Each of the two expansions names noex on its own, so give it to both
///   (one without it fails with "cannot find `noex` in the crate root"); it combines with
///   the other options, `#[behavior(crate = actors, local)]`.
/// * `#[tag = 0x1234]` on a `#[call]` or `#[cast]` method pins its wire tag, to keep old
///   messages decoding after a rename or to resolve a (compile-time detected) collision.
///
/// A message method named like a method of `ServerRef` or `NamedRef` (`call`, `cast`,
/// `send`, `stop`, `pid`, `is_local`, `name`, ...) would be hidden by it, and is refused, as
/// is one named like a method of a trait they implement (`cast_message`, `clone`, `into`,
/// ...) or like a client method generated for another (`add_wait` next to a
/// `#[cast] add`). The `noex-macros` README writes out the code generated for a small
/// example.
pub use noex_macros::behavior;

/// Makes a hand-written [`GenServer`] usable across nodes and spawnable by name, as
/// `#[behavior]` does for its behaviours: put it on the `impl GenServer for T` block. Its
/// `Args`, `Call`, `Reply`, `Cast` and `Info` types must be serde types (one that is not is a
/// compile error at that type). The behaviour's name is `T`'s module path, or the one given
/// as `#[noex::remote(name = "..")]`. A crate that names noex otherwise than `::noex` (a
/// renamed dependency, a facade) gives its path as `#[remote(crate = path)]`, as for
/// [`#[behavior]`](macro@behavior).
///
/// ```
/// use noex::{Ctx, GenServer, Node, ReplyTo};
/// use serde::{Deserialize, Serialize};
///
/// struct Counter(u64);
///
/// #[derive(Serialize, Deserialize)]
/// enum Call { Get }
///
/// #[derive(Serialize, Deserialize)]
/// enum Cast { Add(u64) }
///
/// #[noex::remote(name = "hand-counter")]
/// impl GenServer for Counter {
///     type Args = u64;
///     type Call = Call;
///     type Reply = u64;
///     type Cast = Cast;
///     type Info = ();
///     type InitError = std::convert::Infallible;
///
///     async fn init(start: u64, _ctx: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
///         Ok(Counter(start))
///     }
///
///     async fn handle_call(&mut self, _: Call, reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
///         reply.send(self.0);
///     }
///
///     async fn handle_cast(&mut self, Cast::Add(n): Cast, _: &mut Ctx<Self>) {
///         self.0 += n;
///     }
/// }
///
/// let node = Node::builder().register_behaviors().build();
/// assert!(node.has_behavior("hand-counter"));
/// node.block_on(async {
///     let args = postcard::to_allocvec(&40u64).unwrap();
///     let pid = node.spawn_by_name("hand-counter", &args).await.unwrap();
///     let counter = node.server_ref::<Counter>(&pid).unwrap();
///     counter.cast(Cast::Add(2)).unwrap();
///     assert_eq!(counter.call(Call::Get).await, Ok(42));
/// });
/// node.shutdown();
/// ```
pub use noex_macros::remote;

/// Registers every behaviour of the program with a node, so that it can be spawned by
/// name: `noex::register_all!(node)`. Fails at start-up, with both type names, if two
/// behaviours share a name. See [`Node::register_behaviors`].
#[macro_export]
macro_rules! register_all {
    ($node:expr) => {
        $crate::Node::register_behaviors(&$node)
    };
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
