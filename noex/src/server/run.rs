//! The process loop of a `GenServer`: init, then one message at a time, watching signals.
//!
//! Signals are acted on between messages and while a handler is suspended at an `.await`:
//! a kill, or an exit signal the process does not trap, drops the running handler and ends
//! the process at once; a stop request lets the current handler finish, then runs
//! `terminate`. Trapped exits and monitors' `Down`s are not signals here: they arrive in the
//! mailbox, in order with their sender's messages (see `process::send_exit`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::ctx::Ctx;
use super::process::{Encoded, Envelope, Process};
use super::turn::Turn;
use super::{GenServer, Info};
use crate::error::SpawnError;
use crate::events::LifecycleEvent;
use crate::node::executors::timers::Sleep;
use crate::process::{AnyProcess, Signal};
use crate::ExitReason;

/// What a failed `init` tells its spawner: the output of the process's task (see
/// `spawn::ProcessTask`), boxed so that the task's memory, which is kept for the process's
/// life, does not grow with the behaviour's error type.
pub(crate) type InitFailure<B> = Box<SpawnError<<B as GenServer>::InitError>>;

/// Marks a process as started once `init` has succeeded: runs what a spawner of another
/// node left to run (`spawn::OnStarted`), before the process does anything else, then
/// lets the spawner know (see `Core::set_initialized`).
fn started<B: GenServer>(process: &Process<B>) {
    let spawning = process.core.take_spawning();
    if let Some(then) = spawning.and_then(|spawning| spawning.on_started) {
        then(process.core.pid(), process as *const Process<B> as usize);
    }
    process.core.set_initialized();
}

thread_local! {
    /// The process whose handler is being polled on this thread (to refuse self-calls).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// Whether that process has more messages waiting after the one being handled.
    static MORE: Cell<bool> = const { Cell::new(false) };
}

/// `true` if the process whose handler runs on this thread has more messages to handle
/// after this one: a reply it sends may then wait to go out with the next ones.
pub(crate) fn more_to_handle() -> bool {
    MORE.with(Cell::get)
}

/// A key for the process whose handler runs on this thread (0 outside handlers): what a
/// connection uses to keep each sender's messages in order.
pub(crate) fn current_sender() -> usize {
    CURRENT.with(|c| c.get())
}

/// `true` while a handler (or `init`, or `terminate`) of a process runs on this thread.
pub(crate) fn in_handler() -> bool {
    CURRENT.with(|c| c.get()) != 0
}

/// `true` if the handler being polled on this thread belongs to `process`.
pub(crate) fn is_current<B: GenServer>(process: &Process<B>) -> bool {
    CURRENT.with(|c| c.get()) == process as *const Process<B> as usize
}

/// [`is_current`] for a process of any behaviour.
pub(crate) fn is_current_any(process: &dyn AnyProcess) -> bool {
    CURRENT.with(|c| c.get()) == process as *const dyn AnyProcess as *const () as usize
}

/// Runs `handler` as the handler of the process at address `me` (see [`current_sender`]),
/// restoring the previous value afterwards — also when it panics.
fn as_current<T>(me: usize, handler: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
            // Only meaningful while a handler runs (see `more_to_handle`).
            MORE.with(|more| more.set(false));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(me)));
    handler()
}

/// Acts on queued signals. Returns the reason to die with, if one says so; a stop request
/// is noted in the core (`Core::note_stop`) for the loop to honour after the current
/// message.
fn handle_signals<B: GenServer>(process: &Process<B>) -> Option<ExitReason> {
    while let Some(signal) = process.core.next_signal() {
        match signal {
            Signal::Die(reason) => return Some(reason),
            Signal::Stop(reason) => process.core.note_stop(reason),
        }
    }
    None
}

/// Polls `future` (a callback) while watching signals. `Err(reason)` if a signal ended the
/// process; the callback is then dropped where it stood.
fn guarded<B: GenServer, F: Future>(process: &Process<B>, future: F) -> Guarded<'_, B, F> {
    Guarded { process, future }
}

pin_project_lite::pin_project! {
    /// The future of [`guarded`]: a struct, so that it holds the callback once (an `async`
    /// fn would hold it twice, and it is part of every process's memory).
    struct Guarded<'a, B: GenServer, F> {
        process: &'a Process<B>,
        #[pin]
        future: F,
    }
}

impl<B: GenServer, F: Future> Future for Guarded<'_, B, F> {
    type Output = Result<F::Output, ExitReason>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let process = *this.process;
        let me = process as *const Process<B> as usize;
        loop {
            if process.core.has_signals() {
                if let Some(reason) = handle_signals(process) {
                    return Poll::Ready(Err(reason));
                }
            }
            let polled = as_current(me, || this.future.as_mut().poll(cx));
            if let Poll::Ready(value) = polled {
                return Poll::Ready(Ok(value));
            }
            process.core.waker.register(cx.waker());
            if !process.core.has_signals() {
                return Poll::Pending;
            }
        }
    }
}

/// Waits until the mailbox or the signal queue has something, moving queued messages into
/// `batch`. Returns `true` if it had to wait (the process's turn ended).
fn wait_for_work<'a, B: GenServer>(
    process: &'a Process<B>,
    batch: &'a mut VecDeque<Envelope<B>>,
) -> WaitForWork<'a, B> {
    // Every message taken is handled: a reader holding a peer back for this process may
    // look again (see `process::drain`).
    process.core.drain.batch_done();
    WaitForWork {
        process,
        batch,
        waited: false,
    }
}

/// The future of [`wait_for_work`]: a struct, as small as can be (it is part of every idle
/// process's memory).
struct WaitForWork<'a, B: GenServer> {
    process: &'a Process<B>,
    batch: &'a mut VecDeque<Envelope<B>>,
    waited: bool,
}

impl<B: GenServer> Future for WaitForWork<'_, B> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        let process = this.process;
        process.mailbox.take_into(this.batch);
        if !this.batch.is_empty() || process.core.has_signals() {
            return Poll::Ready(this.waited);
        }
        process.core.waker.register(cx.waker());
        // A push after the take above either sets `queued` before we look, or wakes us.
        if process.mailbox.has_queued() || process.core.has_signals() {
            Poll::Ready(this.waited)
        } else {
            process.mailbox.trim(this.batch);
            this.waited = true;
            Poll::Pending
        }
    }
}

/// [`wait_for_work`] for at most `after`: `None` if nothing came. Boxed: only processes
/// with an idle timeout carry its timer.
fn idle_wait<'a, B: GenServer>(
    process: &'a Process<B>,
    batch: &'a mut VecDeque<Envelope<B>>,
    after: Duration,
) -> Pin<Box<dyn Future<Output = Option<bool>> + Send + 'a>> {
    Box::pin(async move {
        use futures_lite::FutureExt;
        async { Some(wait_for_work(process, batch).await) }
            .or(async {
                Sleep::after(after).await;
                None
            })
            .await
    })
}

/// Runs a process of behaviour `B` from `init` to its end; returns why it ended, or, if
/// `init` failed, why and what to tell the spawner.
///
/// Written with an eye on the size of its future, which every process carries: `init`
/// and the loop are two futures, one after the other, so that the loop keeps nothing of
/// `init`'s arguments; the arguments are used where they were captured (an `async fn`
/// would copy them), results are consumed where they are produced, and the message being
/// dispatched lives only in the block that turns it into its handler.
pub(crate) fn run<B: GenServer>(
    mut ctx: Ctx<B>,
    args: B::Args,
) -> impl Future<Output = Result<ExitReason, (ExitReason, InitFailure<B>)>> {
    // `init`: its future, with the arguments, lives only until `init` has ended.
    let init = async move {
        let process = ctx.process().clone();
        process
            .core
            .set_home(crate::node::executors::current_scheduler());
        let state = match guarded(&process, B::init(args, &mut ctx)).await {
            Ok(Ok(state)) => state,
            Ok(Err(error)) => {
                let reason = ExitReason::error(&error);
                return Err((reason, Box::new(SpawnError::InitFailed(error))));
            }
            Err(reason) => {
                let failure = Box::new(SpawnError::Exited(reason.clone()));
                return Err((reason, failure));
            }
        };
        if let Some(node) = ctx.node_inner() {
            if node.events.is_active() {
                node.events.publish(LifecycleEvent::Started {
                    pid: process.core.pid().clone(),
                    behavior: std::any::type_name::<B>(),
                    name: process.core.name().map(|n| n.to_string()),
                });
            }
        }
        started(&process);
        // The loop keeps this handle on the process: one more would cost two atomic
        // operations a spawn.
        Ok((state, ctx, process))
    };
    // `terminate`, once the loop has honoured a stop: a future of its own, so that the
    // loop's keeps no room for the reason beside its other steps.
    let terminate = |(mut state, mut ctx, process, reason): Terminating<B>| async move {
        let ended = guarded(&process, state.terminate(&reason, &mut ctx)).await;
        ended.err().unwrap_or(reason)
    };
    Phases {
        phase: Phase::Init { future: init },
        serve: serve::<B>,
        terminate,
    }
}

/// The process loop, once `init` has succeeded: one message at a time, watching signals;
/// `Ok` to run `terminate` next, `Err` with the reason the process ends with now.
// Not an `async fn`: that would hold copies of the arguments for the process's life.
#[allow(clippy::manual_async_fn)]
fn serve<B: GenServer>(
    (mut state, mut ctx, process): (B, Ctx<B>, Arc<Process<B>>),
) -> impl Future<Output = Result<Terminating<B>, ExitReason>> {
    async move {
        // One pointer for the process's life (`init`'s, beside the one in `ctx`, which is
        // borrowed mutably by the handlers): borrowed where needed rather than kept as a
        // reference beside the `Arc` (both would be stored in this future).
        let mut batch = VecDeque::new();
        let mut turn = Turn::default();
        loop {
            if turn.over(batch.is_empty()) {
                turn = Turn::default();
                smol::future::yield_now().await;
            }
            if process.core.has_signals() {
                if let Some(reason) = handle_signals(&process) {
                    return Err(reason);
                }
            }
            if process.core.stop_is_noted() {
                let Some(reason) = process.core.take_noted_stop() else {
                    continue;
                };
                return Ok((state, ctx, process, reason));
            }
            if let Some(info) = ctx.take_continue() {
                batch.push_front(Envelope::Info(Info::Continue(info)));
            }
            if batch.is_empty() {
                let waited = match ctx.idle_due() {
                    None => wait_for_work(&process, &mut batch).await,
                    Some(after) => match idle_wait(&process, &mut batch, after).await {
                        Some(waited) => waited,
                        None => {
                            ctx.idle_arm(false);
                            batch.push_back(Envelope::Info(Info::Timeout));
                            true
                        }
                    },
                };
                if waited {
                    turn = Turn::default();
                }
                continue;
            }
            if let Some(message) = take_encoded(&mut batch) {
                // A large message from another node: decoded apart, then handled like any
                // message, first in line. (Counted when it comes back decoded.) Taken out
                // here, before the envelope of a handler is, so that nothing of the
                // envelope is kept across this `await`: every process's future has room
                // for what it keeps across each of its `await`s.
                ctx.idle_arm(true);
                turn.count();
                let decode = Box::pin(message.decode());
                match guarded(&process, decode).await {
                    Ok(Some(envelope)) => batch.push_front(envelope),
                    // Undecodable (and dropped): counted now, as it will not come back.
                    Ok(None) => process.core.count_message(),
                    Err(reason) => return Err(reason),
                }
                continue;
            }
            // A cast of a run from another node: decoded and handed to its handler in one
            // step (see `HandleCast`), never moved through an envelope. A handler that
            // awaits gets the message back, and is awaited here, signals watched.
            if let Some(Envelope::Frames(frames)) = batch.front_mut() {
                if let Some((handle, payload)) = frames.next_cast() {
                    ctx.idle_arm(true);
                    turn.count();
                    process.core.count_message();
                    let handled = as_current(Arc::as_ptr(&process) as usize, || {
                        handle(&mut state, payload, &mut ctx)
                    });
                    if handled.is_err() {
                        frames.undecoded();
                    }
                    if frames.is_done() {
                        batch.pop_front();
                    }
                    match handled {
                        Ok(Ok(())) => {}
                        Ok(Err(message)) => {
                            guarded(&process, state.handle_cast(message, &mut ctx)).await?;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "dropped an undecodable remote cast");
                        }
                    }
                    continue;
                }
            }
            // A message from another node with a trace context is handled in the trace's
            // span (the `tracing-context` feature; see `crate::trace`).
            #[cfg(feature = "tracing-context")]
            let trace;
            // A handler that is a plain `fn` runs at once, here (and the loop goes on);
            // others become a future, polled while signals are watched.
            let handler = {
                let Some(envelope) = take_next(&mut batch, &process) else {
                    continue;
                };
                #[cfg(feature = "tracing-context")]
                let envelope = {
                    let (envelope, handling) = envelope.untraced();
                    trace = handling;
                    envelope
                };
                #[cfg(feature = "tracing-context")]
                let _entered = trace.as_ref().map(crate::trace::Handling::enter);
                if !matches!(envelope, Envelope::Info(Info::Timeout)) {
                    ctx.idle_arm(true);
                }
                turn.count();
                if !matches!(envelope, Envelope::Encoded(_)) {
                    // Counted when taken (a decoded message is counted when it comes back).
                    process.core.count_message();
                }
                match envelope {
                    Envelope::Call(request, reply) => {
                        let reply = reply.taken();
                        let more = !batch.is_empty() || process.mailbox.has_queued();
                        MORE.with(|flag| flag.set(more));
                        match as_current(Arc::as_ptr(&process) as usize, || {
                            state.__handle_call_now(request, reply, &mut ctx)
                        }) {
                            Ok(()) => continue,
                            Err((request, reply)) => Dispatch::Call {
                                handler: state.handle_call(request, reply, &mut ctx),
                            },
                        }
                    }
                    Envelope::Cast(message) => {
                        match as_current(Arc::as_ptr(&process) as usize, || {
                            state.__handle_cast_now(message, &mut ctx)
                        }) {
                            Ok(()) => continue,
                            Err(message) => Dispatch::Cast {
                                handler: state.handle_cast(message, &mut ctx),
                            },
                        }
                    }
                    Envelope::Info(info) => {
                        if !wanted(&process, &info) {
                            continue;
                        }
                        Dispatch::Info {
                            handler: state.handle_info(info, &mut ctx),
                        }
                    }
                    // Taken out above; a run is taken apart by `take_next`.
                    envelope @ (Envelope::Encoded(_) | Envelope::Frames(_)) => {
                        batch.push_front(envelope);
                        continue;
                    }
                    // Unwrapped above.
                    #[cfg(feature = "tracing-context")]
                    Envelope::Traced(_) => continue,
                }
            };
            #[cfg(feature = "tracing-context")]
            if let Some(trace) = trace {
                trace.instrument(guarded(&process, handler)).await?;
                continue;
            }
            guarded(&process, handler).await?;
        }
    }
}

/// What `terminate` runs with: the state, the context, the process, and why it stops.
type Terminating<B> = (B, Ctx<B>, Arc<Process<B>>, ExitReason);

pin_project_lite::pin_project! {
    /// The future of [`run`]: `init`'s future, then the loop's, then `terminate`'s if the
    /// process stops gracefully; each made from the last one's output by a closure that
    /// captures nothing (no room taken), and each holding only what it needs.
    struct Phases<I, S, T, F, G> {
        #[pin]
        phase: Phase<I, S, T>,
        serve: F,
        terminate: G,
    }
}

pin_project_lite::pin_project! {
    #[project = PhaseProjection]
    enum Phase<I, S, T> {
        Init { #[pin] future: I },
        Serve { #[pin] future: S },
        Terminate { #[pin] future: T },
    }
}

impl<A, C, E, I, S, T, F, G> Future for Phases<I, S, T, F, G>
where
    I: Future<Output = Result<A, E>>,
    S: Future<Output = Result<C, ExitReason>>,
    T: Future<Output = ExitReason>,
    F: Fn(A) -> S,
    G: Fn(C) -> T,
{
    /// Why the process ended, or `init`'s failure.
    type Output = Result<ExitReason, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.phase.as_mut().project() {
                PhaseProjection::Init { future } => match std::task::ready!(future.poll(cx)) {
                    Ok(serving) => Phase::Serve {
                        future: (this.serve)(serving),
                    },
                    Err(failure) => return Poll::Ready(Err(failure)),
                },
                PhaseProjection::Serve { future } => match std::task::ready!(future.poll(cx)) {
                    Ok(terminating) => Phase::Terminate {
                        future: (this.terminate)(terminating),
                    },
                    Err(reason) => return Poll::Ready(Ok(reason)),
                },
                PhaseProjection::Terminate { future } => return future.poll(cx).map(Ok),
            };
            this.phase.set(next);
        }
    }
}

/// Takes the first message of `batch` if it is a large message from another node, still
/// encoded.
fn take_encoded<B: GenServer>(batch: &mut VecDeque<Envelope<B>>) -> Option<Box<Encoded<B>>> {
    if !matches!(batch.front(), Some(Envelope::Encoded(_))) {
        return None;
    }
    match batch.pop_front() {
        Some(Envelope::Encoded(message)) => Some(message),
        _ => None,
    }
}

/// The first message of `batch`, taken out: from the run of messages still encoded that
/// `batch` begins with, if it does (see `Frames`). `None` if there is none, or if that
/// message does not decode (dropped, and counted: it will not be handled).
#[inline]
fn take_next<B: GenServer>(
    batch: &mut VecDeque<Envelope<B>>,
    process: &Process<B>,
) -> Option<Envelope<B>> {
    let Some(Envelope::Frames(frames)) = batch.front_mut() else {
        return batch.pop_front();
    };
    let next = frames.next();
    if frames.is_done() {
        batch.pop_front();
    }
    match next? {
        Some(envelope) => Some(envelope),
        None => {
            process.core.count_message();
            None
        }
    }
}

/// `false` for an info that must not reach the handler: the `Down` of a monitor removed
/// after it was queued, and the exit of a trapping server's parent (OTP: the server then
/// terminates with the parent's reason, after handling what the parent sent before).
fn wanted<B: GenServer>(process: &Process<B>, info: &Info<B::Info>) -> bool {
    match info {
        Info::Down { monitor, .. } => process.core.remove_watching(*monitor).is_some(),
        Info::NodeDown { node } => process.core.remove_monitored_node(node.as_str()),
        Info::Exit { from, reason } if process.core.is_parent(from) => {
            process.core.note_stop(reason.clone());
            false
        }
        _ => true,
    }
}

pin_project_lite::pin_project! {
    /// The callback handling one message: a future of one of three kinds, holding nothing
    /// else, so the process's future is as small as its largest callback.
    #[project = DispatchProjection]
    enum Dispatch<C, K, I> {
        Call { #[pin] handler: C },
        Cast { #[pin] handler: K },
        Info { #[pin] handler: I },
    }
}

impl<C, K, I> Future for Dispatch<C, K, I>
where
    C: Future<Output = ()>,
    K: Future<Output = ()>,
    I: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            DispatchProjection::Call { handler } => handler.poll(cx),
            DispatchProjection::Cast { handler } => handler.poll(cx),
            DispatchProjection::Info { handler } => handler.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_restored_after_a_handler_panics() {
        assert_eq!(current_sender(), 0);
        let panicked = std::panic::catch_unwind(|| as_current(42, || panic!("in a handler")));
        assert!(panicked.is_err());
        assert_eq!(current_sender(), 0, "not left pointing at the dead process");
        assert_eq!(as_current(7, current_sender), 7);
        assert_eq!(current_sender(), 0);
    }
}
