//! The process loop of a `GenServer`: init, then one message at a time, watching signals.
//!
//! Signals are acted on between messages and while a handler is suspended at an `.await`:
//! a kill, or an exit signal the process does not trap, drops the running handler and ends
//! the process at once; a stop request lets the current handler finish, then runs
//! `terminate`. Trapped exits and monitors' `Down`s are not signals here: they arrive in the
//! mailbox, in order with their sender's messages (see `process::send_exit`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ctx::Ctx;
use super::process::{Envelope, Process};
use super::{GenServer, Info};
use crate::error::SpawnError;
use crate::events::LifecycleEvent;
use crate::process::Signal;
use crate::ExitReason;

/// How many messages a process handles before letting its neighbours on the same thread
/// run (tokio's budget). Yielding this rarely costs under 2 % of throughput.
const BUDGET: u32 = 128;

/// Tells the spawner how `init` went.
pub(crate) type Started<B> = oneshot::Sender<Result<(), SpawnError<<B as GenServer>::InitError>>>;

thread_local! {
    /// The process whose handler is being polled on this thread (to refuse self-calls).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// A key for the process whose handler runs on this thread (0 outside handlers): what a
/// connection uses to keep each sender's messages in order.
pub(crate) fn current_sender() -> usize {
    CURRENT.with(|c| c.get())
}

/// `true` if the handler being polled on this thread belongs to `process`.
pub(crate) fn is_current<B: GenServer>(process: &Process<B>) -> bool {
    CURRENT.with(|c| c.get()) == process as *const Process<B> as usize
}

/// Runs `handler` as the handler of the process at address `me` (see [`current_sender`]),
/// restoring the previous value afterwards — also when it panics.
fn as_current<T>(me: usize, handler: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(me)));
    handler()
}

/// Acts on queued signals. Returns the reason to die with, if one says so; a stop request
/// is recorded in `pending_stop` for the loop to honour after the current message.
fn handle_signals<B: GenServer>(
    process: &Process<B>,
    pending_stop: &mut Option<ExitReason>,
) -> Option<ExitReason> {
    while let Some(signal) = process.core.next_signal() {
        match signal {
            Signal::Die(reason) => return Some(reason),
            Signal::Stop(reason) => {
                pending_stop.get_or_insert(reason);
            }
        }
    }
    None
}

/// Polls `future` (a callback) while watching signals. `Err(reason)` if a signal ended the
/// process; the callback is then dropped where it stood.
async fn guarded<B: GenServer, T>(
    process: &Process<B>,
    pending_stop: &mut Option<ExitReason>,
    future: impl Future<Output = T>,
) -> Result<T, ExitReason> {
    let mut future = pin!(future);
    let me = process as *const Process<B> as usize;
    poll_fn(|cx| loop {
        if process.core.has_signals() {
            if let Some(reason) = handle_signals(process, pending_stop) {
                return Poll::Ready(Err(reason));
            }
        }
        let polled = as_current(me, || future.as_mut().poll(cx));
        if let Poll::Ready(value) = polled {
            return Poll::Ready(Ok(value));
        }
        process.core.waker.register(cx.waker());
        if !process.core.has_signals() {
            return Poll::Pending;
        }
    })
    .await
}

/// Waits until the mailbox or the signal queue has something, moving queued messages into
/// `batch`.
async fn wait_for_work<B: GenServer>(process: &Process<B>, batch: &mut VecDeque<Envelope<B>>) {
    poll_fn(|cx| {
        process.mailbox.take_into(batch);
        if !batch.is_empty() || process.core.has_signals() {
            return Poll::Ready(());
        }
        process.core.waker.register(cx.waker());
        // A push after the take above either sets `queued` before we look, or wakes us.
        if process.mailbox.has_queued() || process.core.has_signals() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs a process of behaviour `B` from `init` to its end; returns why it ended.
pub(crate) async fn run<B: GenServer>(
    mut ctx: Ctx<B>,
    args: B::Args,
    started: Started<B>,
) -> ExitReason {
    let process = ctx.process().clone();
    let process = &*process;
    let mut pending_stop = None;

    let init = guarded(process, &mut pending_stop, B::init(args, &mut ctx)).await;
    let mut state = match init {
        Ok(Ok(state)) => state,
        Ok(Err(error)) => {
            let reason = ExitReason::error(&error);
            // The spawner may have given up (init timeout); nothing else to tell it.
            let _ = started.send(Err(SpawnError::Init(error)));
            return reason;
        }
        Err(reason) => {
            let _ = started.send(Err(SpawnError::Exited(reason.clone())));
            return reason;
        }
    };
    process.core.set_initialized();
    if let Some(node) = ctx.node_inner() {
        if node.events.is_active() {
            node.events.publish(LifecycleEvent::Started {
                pid: process.core.pid().clone(),
                behavior: process.core.id.behavior,
                name: process.core.name().map(|n| n.to_string()),
            });
        }
    }
    let _ = started.send(Ok(()));

    let mut batch = VecDeque::new();
    let mut budget = BUDGET;
    loop {
        if process.core.has_signals() {
            if let Some(reason) = handle_signals(process, &mut pending_stop) {
                return reason;
            }
        }
        if let Some(reason) = ctx.take_stop().or_else(|| pending_stop.take()) {
            let ended = guarded(
                process,
                &mut pending_stop,
                state.terminate(&reason, &mut ctx),
            )
            .await;
            return ended.err().unwrap_or(reason);
        }
        let Some(envelope) = batch.pop_front() else {
            wait_for_work(process, &mut batch).await;
            continue;
        };
        process.mailbox.set_in_hand(batch.len());
        if let Envelope::Info(info) = &envelope {
            match info {
                Info::Down { monitor, .. } if process.core.remove_watching(*monitor).is_none() => {
                    // Demonitored after the Down was queued: it must not be seen.
                    continue;
                }
                Info::Exit { from, reason } if process.core.id.is_parent(from) => {
                    // OTP: a trapping server whose parent ends terminates with its reason,
                    // after handling what the parent sent before.
                    pending_stop.get_or_insert(reason.clone());
                    continue;
                }
                _ => {}
            }
        }
        // A handler that is a plain `fn` runs at once; others become a future, polled while
        // signals are watched.
        let me = process as *const Process<B> as usize;
        let handler = match envelope {
            Envelope::Call(request, reply) => {
                let reply = reply.taken();
                match as_current(me, || state.__handle_call_now(request, reply, &mut ctx)) {
                    Ok(()) => None,
                    Err((request, reply)) => Some(Dispatch::Call {
                        handler: state.handle_call(request, reply, &mut ctx),
                    }),
                }
            }
            Envelope::Cast(message) => {
                match as_current(me, || state.__handle_cast_now(message, &mut ctx)) {
                    Ok(()) => None,
                    Err(message) => Some(Dispatch::Cast {
                        handler: state.handle_cast(message, &mut ctx),
                    }),
                }
            }
            Envelope::Info(info) => Some(Dispatch::Info {
                handler: state.handle_info(info, &mut ctx),
            }),
            Envelope::Encoded(encoded) => {
                // Decoded apart; then handled like any message, first in line.
                match guarded(process, &mut pending_stop, Box::pin(encoded.decode())).await {
                    Ok(Some(envelope)) => batch.push_front(envelope),
                    Ok(None) => {}
                    Err(reason) => return reason,
                }
                continue;
            }
        };
        process.core.count_message();
        if let Some(handler) = handler {
            if let Err(reason) = guarded(process, &mut pending_stop, handler).await {
                return reason;
            }
        }
        budget -= 1;
        if budget == 0 {
            budget = BUDGET;
            smol::future::yield_now().await;
        }
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
