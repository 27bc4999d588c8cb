//! The `GenServer` behaviour: a process that owns a state and answers typed messages.
//!
//! # Contract
//!
//! * [`init`](GenServer::init) runs inside the new process before anything else. The spawner
//!   waits for it (up to the init timeout, 5 s by default): `Ok(state)` makes the process
//!   run, `Err(e)` makes the spawn fail with [`SpawnError::InitFailed`](crate::SpawnError::InitFailed).
//!   Messages sent during `init` wait in the mailbox.
//! * Messages are handled one at a time, in arrival order per sender. Each handler may
//!   `.await`; the next message waits until the handler returns.
//! * [`handle_call`](GenServer::handle_call) gets a [`ReplyTo`] and answers through it, now
//!   or later (store it and answer from another message: a *deferred* reply). A `Reply` of
//!   type `Result<T, E>` is how a handler reports its own errors: they are replies, not
//!   crashes.
//! * [`handle_cast`](GenServer::handle_cast) handles one-way messages;
//!   [`handle_info`](GenServer::handle_info) handles everything else: timer messages,
//!   messages sent with [`ServerRef::send`], and — when the process traps exits — `Exit`
//!   messages from linked processes, plus `Down` messages from monitors.
//! * [`terminate`](GenServer::terminate) runs when the process stops gracefully: after
//!   [`Ctx::stop`], a [`stop`](ServerRef::stop) request, or an exit signal from its parent
//!   while trapping exits. It does not run when the process is killed, dies from an exit
//!   signal it does not trap, or panics.
//! * A panic anywhere (`init`, a handler, `terminate`) ends this process only, with reason
//!   [`ExitReason::Panic`]; links, monitors and supervisors see it like any other exit.
//! * A kill, or an exit signal the process does not trap, ends it at once: a handler that
//!   is waiting on an `.await` is dropped there. Code that runs without awaiting cannot be
//!   interrupted, so long CPU-bound work should yield now and then.
//! * **Continuation** (OTP's `handle_continue`): [`Ctx::continue_with`] in `init` or any
//!   handler makes [`Info::Continue`] the next thing handled, before any message in the
//!   mailbox — `init` returns (and `spawn` with it) while the continuation does the slow
//!   part of starting.
//! * **Idle timeout** (OTP's `timeout`): after [`Ctx::idle_timeout`], [`Info::Timeout`]
//!   arrives when no message came for that long, once per silence; any message restarts
//!   the clock.
//! * **A stop a handler can see**: a graceful stop takes effect when the current handler
//!   returns; a handler that awaits something long can `select` on [`Ctx::stopping`] to
//!   wind down before the grace period ends (a kill still drops it where it stands).

mod call;
pub(crate) mod ctx;
pub(crate) mod deadline;
pub(crate) mod process;
pub(crate) mod reference;
pub(crate) mod reply;
pub(crate) mod run;
pub(crate) mod slot;
pub(crate) mod spawn;
mod turn;

use std::fmt;
use std::future::Future;

use crate::{ExitReason, MonitorRef, Pid};

pub use ctx::Ctx;
pub use reference::{NamedRef, ServerRef};
pub use reply::ReplyTo;
pub use spawn::SpawnOptions;

/// A process behaviour in the style of OTP's `gen_server`.
///
/// Implement it by hand as below, or let the `#[behavior]` macro write it for you.
///
/// ```
/// use noex::{Ctx, GenServer, Node, ReplyTo};
///
/// struct Counter(u64);
///
/// enum Call { Get }
/// enum Cast { Add(u64) }
///
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
///     async fn handle_call(&mut self, call: Call, reply: ReplyTo<u64>, _ctx: &mut Ctx<Self>) {
///         match call {
///             Call::Get => reply.send(self.0),
///         }
///     }
///
///     async fn handle_cast(&mut self, cast: Cast, _ctx: &mut Ctx<Self>) {
///         match cast {
///             Cast::Add(n) => self.0 += n,
///         }
///     }
/// }
///
/// let node = Node::new();
/// node.block_on(async {
///     let counter = node.spawn::<Counter>(40).await.unwrap();
///     counter.cast(Cast::Add(2)).unwrap();
///     assert_eq!(counter.call(Call::Get).await, Ok(42));
/// });
/// node.shutdown();
/// ```
pub trait GenServer: Sized + Send + 'static {
    /// What [`init`](GenServer::init) is given.
    type Args: Send + 'static;
    /// Requests handled by [`handle_call`](GenServer::handle_call).
    type Call: Send + 'static;
    /// Answers to calls.
    type Reply: Send + 'static;
    /// One-way messages handled by [`handle_cast`](GenServer::handle_cast).
    type Cast: Send + 'static;
    /// Plain messages (timers, [`ServerRef::send`]) handled by
    /// [`handle_info`](GenServer::handle_info).
    type Info: Send + 'static;
    /// Why `init` can fail. Use [`std::convert::Infallible`] when it cannot.
    type InitError: fmt::Display + Send + 'static;

    /// Builds the state. Runs in the new process; see the module docs for the contract.
    fn init(
        args: Self::Args,
        ctx: &mut Ctx<Self>,
    ) -> impl Future<Output = Result<Self, Self::InitError>> + Send;

    /// Handles a call. Answer with [`ReplyTo::send`], now or later. Dropping the `ReplyTo`
    /// in a handler without answering fails the call at once with
    /// [`CallError::NoReply`](crate::CallError::NoReply). The default does that.
    fn handle_call(
        &mut self,
        request: Self::Call,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Ctx<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (request, ctx);
        // Dropped as the handler runs (a future polled as one), not before.
        async move { drop(reply) }
    }

    /// Handles a cast. The default ignores it.
    fn handle_cast(
        &mut self,
        message: Self::Cast,
        ctx: &mut Ctx<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (message, ctx);
        std::future::ready(())
    }

    /// Handles everything that is not a call or a cast. The default ignores it.
    fn handle_info(
        &mut self,
        info: Info<Self::Info>,
        ctx: &mut Ctx<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (info, ctx);
        std::future::ready(())
    }

    /// Handles a call at once if its handler does not await (`#[behavior]` writes it for
    /// the methods that are plain `fn`s): the process then runs it without building a
    /// future. Hands the request back for [`handle_call`](GenServer::handle_call) otherwise.
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn __handle_call_now(
        &mut self,
        request: Self::Call,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Ctx<Self>,
    ) -> Result<(), (Self::Call, ReplyTo<Self::Reply>)> {
        let _ = ctx;
        Err((request, reply))
    }

    /// Handles a cast at once if its handler does not await; hands it back otherwise.
    #[doc(hidden)]
    fn __handle_cast_now(
        &mut self,
        message: Self::Cast,
        ctx: &mut Ctx<Self>,
    ) -> Result<(), Self::Cast> {
        let _ = ctx;
        Err(message)
    }

    /// The codec of the behaviour's messages, if they can cross nodes. `#[behavior]` writes
    /// it (from `RemoteBehavior::codec`); a hand-written behaviour whose messages are serde
    /// types can return `Some(noex::__private::codec::<Self>())`.
    #[doc(hidden)]
    fn __remote_codec() -> Option<crate::dist::remote::Codec<Self>> {
        None
    }

    /// Runs when the process stops gracefully, with the reason it stops for. The default
    /// does nothing.
    fn terminate(
        &mut self,
        reason: &ExitReason,
        ctx: &mut Ctx<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        std::future::ready(())
    }
}

/// A message for [`GenServer::handle_info`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Info<M> {
    /// A linked process ended (delivered only while trapping exits, see
    /// [`Ctx::trap_exits`]), or another process sent this one an exit signal with
    /// [`Ctx::exit`].
    Exit {
        /// The process that ended or sent the signal.
        from: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A monitored process ended. Delivered exactly once per monitor, and never after
    /// [`Ctx::demonitor`].
    Down {
        /// The monitor, as returned by [`Ctx::monitor`].
        monitor: MonitorRef,
        /// The monitored process.
        pid: Pid,
        /// Why it ended; [`ExitReason::NoProc`] if it was not running when monitored.
        reason: ExitReason,
    },
    /// A monitored node was lost (see [`Ctx::monitor_node`]): its connection closed or
    /// fell silent, or it was not connected when the monitor was set. Delivered once per
    /// monitor, and never after [`Ctx::demonitor_node`].
    NodeDown {
        /// The node.
        node: crate::NodeId,
    },
    /// A plain message: from a timer or [`ServerRef::send`].
    Message(M),
    /// The continuation asked for with [`Ctx::continue_with`]: handled before any message
    /// in the mailbox (OTP's `handle_continue`).
    Continue(M),
    /// No message arrived for the duration set with [`Ctx::idle_timeout`] (OTP's
    /// `timeout`). Once per silence: the next one can come only after another message.
    Timeout,
}
