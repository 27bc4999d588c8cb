//! The future of a call: a hand-written state machine holding only what the current step
//! needs. (An `async fn` keeps its arguments and the locals of every step for its whole
//! life; a call's future is moved at least once per call, so its size is paid each time.)

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use super::deadline::Deadline;
use super::process::{Envelope, Process};
use super::reply::{Failure, Outcome, ReplyTo};
use super::slot::{self, Receiver};
use super::{run, GenServer};
use crate::error::{CallError, Target};

type Boxed<'a, R> = Pin<Box<dyn Future<Output = Result<R, CallError>> + Send + 'a>>;

/// A call to a process, local or (boxed) remote.
pub(crate) struct Call<'a, B: GenServer> {
    state: State<'a, B>,
}

enum State<'a, B: GenServer> {
    /// Not polled yet: nothing is sent until the call is awaited.
    Start {
        process: &'a Process<B>,
        request: B::Call,
        timeout: Duration,
    },
    /// Sent; waiting for the reply or the deadline.
    Waiting {
        process: &'a Process<B>,
        reply: Receiver<Outcome<B::Reply>>,
        deadline: Deadline,
    },
    /// A rare path (a remote call, or a request taken but abandoned), boxed so that it
    /// does not size every call.
    Boxed(Boxed<'a, B::Reply>),
    Done,
}

// Nothing in a `Call` is ever pinned in place: the request is moved out when sent, the
// receiver is `Unpin`, boxed futures are pinned in their boxes.
impl<B: GenServer> Unpin for Call<'_, B> {}

impl<'a, B: GenServer> Call<'a, B> {
    pub(crate) fn local(process: &'a Process<B>, request: B::Call, timeout: Duration) -> Self {
        Call {
            state: State::Start {
                process,
                request,
                timeout,
            },
        }
    }

    pub(crate) fn boxed(
        future: impl Future<Output = Result<B::Reply, CallError>> + Send + 'a,
    ) -> Self {
        Call {
            state: State::Boxed(Box::pin(future)),
        }
    }
}

/// The error of a call to a process that is not running.
#[cold]
fn no_proc<B: GenServer>(process: &Process<B>) -> CallError {
    CallError::NoProc {
        target: Target::Pid(process.core.pid().clone()),
    }
}

impl<B: GenServer> Future for Call<'_, B> {
    type Output = Result<B::Reply, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = &mut self.get_mut().state;
        loop {
            match state {
                State::Start { .. } => {
                    let State::Start {
                        process,
                        request,
                        timeout,
                    } = mem::replace(state, State::Done)
                    else {
                        unreachable!("matched above")
                    };
                    if run::is_current(process) {
                        return Poll::Ready(Err(CallError::CallingSelf));
                    }
                    let (slot, reply) = slot::slot();
                    if process
                        .deliver(Envelope::Call(request, ReplyTo::new(slot)))
                        .is_err()
                    {
                        return Poll::Ready(Err(no_proc(process)));
                    }
                    *state = State::Waiting {
                        process,
                        reply,
                        deadline: Deadline::after(timeout),
                    };
                }
                State::Waiting {
                    reply, deadline, ..
                } => match reply.poll_reply(cx) {
                    Poll::Ready(Some(Ok(value))) => {
                        if let State::Waiting { reply, .. } = mem::replace(state, State::Done) {
                            reply.recycle();
                        }
                        return Poll::Ready(Ok(value));
                    }
                    Poll::Ready(Some(Err(Failure::Abandoned))) => {
                        // Taken but never answered, and dropped outside a running handler:
                        // the server is ending (or the reply went to a task that dropped
                        // it). Wait for its end, within the same deadline.
                        let State::Waiting {
                            process,
                            mut deadline,
                            ..
                        } = mem::replace(state, State::Done)
                        else {
                            unreachable!("matched above")
                        };
                        *state = State::Boxed(Box::pin(async move {
                            match deadline.run(process.core.exited()).await {
                                Some(reason) => Err(CallError::Exited(reason)),
                                None => Err(CallError::Timeout {
                                    timeout: deadline.timeout(),
                                }),
                            }
                        }));
                    }
                    Poll::Ready(Some(Err(Failure::Discarded))) => {
                        *state = State::Done;
                        return Poll::Ready(Err(CallError::NoReply));
                    }
                    // The request was dropped unhandled with the mailbox.
                    Poll::Ready(Some(Err(Failure::Unhandled)) | None) => {
                        let State::Waiting { process, .. } = mem::replace(state, State::Done)
                        else {
                            unreachable!("matched above")
                        };
                        return Poll::Ready(Err(no_proc(process)));
                    }
                    Poll::Pending => {
                        ready!(deadline.poll_expired(cx));
                        let timeout = deadline.timeout();
                        *state = State::Done;
                        return Poll::Ready(Err(CallError::Timeout { timeout }));
                    }
                },
                State::Boxed(future) => {
                    let outcome = ready!(future.as_mut().poll(cx));
                    *state = State::Done;
                    return Poll::Ready(outcome);
                }
                State::Done => panic!("a call's future polled after it completed"),
            }
        }
    }
}
