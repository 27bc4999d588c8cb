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
//! * **timers and a registry** — messages after a delay, unique names, typed lookups.
//!
//! Every process belongs to a [`Node`]; nothing is global, so several nodes can run in one
//! OS process.
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
#![forbid(unsafe_code)]

mod behavior;
mod error;
mod events;
mod exit;
mod node;
mod pid;
mod process;
mod registry;
mod server;
pub mod supervisor;
mod timer;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use behavior::{
    BehaviorEntry, BehaviorInfo, BehaviorName, RegistryError, RemoteBehavior, ServerHandle,
    SpawnByNameError, SpawnFuture,
};
pub use error::{CallError, LookupError, RegisterError, SendError, SpawnError};
pub use events::{Events, LifecycleEvent};
pub use exit::ExitReason;
pub use node::{Node, NodeBuilder, ProcessInfo, DEFAULT_STOP_GRACE};
pub use pid::{MonitorRef, Pid};
pub use server::reference::DEFAULT_CALL_TIMEOUT;
pub use server::spawn::DEFAULT_INIT_TIMEOUT;
pub use server::{Ctx, GenServer, Info, NamedRef, ReplyTo, ServerRef, SpawnOptions};
pub use supervisor::{ChildSpec, Restart, Shutdown, Strategy, Supervisor, SupervisorSpec};

pub use timer::TimerRef;

pub use noex_macros::behavior;

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
