//! `tracing` spans for processes, and traces that follow a request across nodes (the
//! `tracing-context` feature).
//!
//! With the feature on:
//!
//! * **every process's task runs inside a span** `noex.process` with the fields `pid` and
//!   `node`, so whatever a handler logs says which process, on which node, logged it;
//! * **a remote call, cast or send carries a trace context** when it is made while a span
//!   is current (and enabled: "tracing is on" for it). The receiving node handles the
//!   message inside a span `noex.message` that continues the trace, a child of the
//!   receiving process's `noex.process` span, with these fields:
//!
//! | field | value |
//! | --- | --- |
//! | `trace_id` | the trace's id, 32 hexadecimal digits |
//! | `parent_node` | the id of the node that sent the message |
//! | `parent_span` | the `tracing` id of the span the sender was in (an id on the sender's side) |
//! | `kind` | `call`, `cast` or `info` |
//!
//! `tracing` has no trace id of its own that could cross a process boundary, so noex
//! defines one, a random `u128`. A message sent from inside the handling of a traced
//! message — inside its `noex.message` span — carries that message's trace id on, so one
//! request keeps one id from node to node. A message sent from anywhere else (a span of
//! the caller's own, a process handling a local message) starts a trace: noex draws a
//! fresh id and records it as the `trace_id` of a span `noex.send` it opens for the send,
//! a child of the current span; that span is the message's `parent_span`. Every remote
//! message sent so starts its own trace: two sends from one span of your own are two
//! traces.
//!
//! Context travels with remote messages only: a local call or cast is handled in its
//! receiver's `noex.process` span, without a `noex.message` span.
//!
//! On the wire the context rides in the frame of the message it belongs to (its id and
//! the sender's span id, 24 bytes or so); the receiving node's id comes from the
//! connection. Nodes built without the feature still decode such messages and handle
//! them, ignoring the context, so builds with and without it can form one cluster — but
//! a node older than this wire message cannot decode it: turn the feature on only once
//! every node runs a version that knows it (it has no effect on what a node sends unless
//! a span is current).
//!
//! With the feature off, none of this code exists: no span per process, and messages are
//! sent and handled exactly as before.
//!
//! # Finding a request in your backend
//!
//! Search for the `trace_id` field: every `noex.message` span of the request carries it,
//! on whichever node handled it, and so does the `noex.send` span where it began. Read
//! [`TraceContext::current`] inside a handler to log the id or hand it on (in an HTTP
//! response header, say).
//!
//! # OpenTelemetry
//!
//! The ids have OpenTelemetry's sizes: a trace id of 16 bytes, a span id of 8. With
//! `tracing-opentelemetry`, a layer (or the handler itself, through
//! [`TraceContext::current`]) can make the `noex.message` span a child of a remote parent
//! in the same OpenTelemetry trace:
//!
//! ```text
//! let context = noex::trace::TraceContext::current().unwrap();
//! let parent = opentelemetry::trace::SpanContext::new(
//!     TraceId::from_bytes(context.trace_id.to_be_bytes()),
//!     SpanId::from_bytes(context.parent_span.to_be_bytes()),
//!     TraceFlags::SAMPLED,
//!     true, // remote
//!     TraceState::default(),
//! );
//! tracing::Span::current().set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
//! ```
//!
//! The trace id then groups the spans of one request across nodes as an OpenTelemetry
//! trace. (The parent span id is `tracing`'s id of the sender's span, not the id the
//! OpenTelemetry layer gave that span, so the parent link is approximate; the trace is
//! exact.)
//!
//! # Example
//!
//! ```
//! use noex::trace::TraceContext;
//! use noex::{ClusterConfig, Node};
//!
//! #[noex::behavior]
//! pub struct Echo;
//!
//! #[noex::behavior]
//! impl Echo {
//!     #[init]
//!     fn init(_: ()) -> Self {
//!         Echo
//!     }
//!
//!     /// The trace this call was handled in.
//!     #[call]
//!     fn trace_id(&self) -> Option<u128> {
//!         TraceContext::current().map(|context| context.trace_id)
//!     }
//! }
//!
//! // Spans need a subscriber: any will do, `tracing-subscriber`'s for one (here, a small
//! // one that records nothing).
//! # use std::cell::RefCell;
//! # use tracing::span::{Attributes, Id, Record};
//! # struct Everything;
//! # thread_local!(static ENTERED: RefCell<Vec<Id>> = RefCell::new(Vec::new()));
//! # static META: std::sync::OnceLock<&'static tracing::Metadata<'static>> = std::sync::OnceLock::new();
//! # impl tracing::Subscriber for Everything {
//! #     fn enabled(&self, _: &tracing::Metadata<'_>) -> bool { true }
//! #     fn new_span(&self, span: &Attributes<'_>) -> Id {
//! #         use std::sync::atomic::{AtomicU64, Ordering};
//! #         static NEXT: AtomicU64 = AtomicU64::new(1);
//! #         META.get_or_init(|| span.metadata());
//! #         Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
//! #     }
//! #     fn record(&self, _: &Id, _: &Record<'_>) {}
//! #     fn record_follows_from(&self, _: &Id, _: &Id) {}
//! #     fn event(&self, _: &tracing::Event<'_>) {}
//! #     fn enter(&self, id: &Id) { ENTERED.with(|e| e.borrow_mut().push(id.clone())) }
//! #     fn exit(&self, _: &Id) { ENTERED.with(|e| e.borrow_mut().pop()); }
//! #     fn current_span(&self) -> tracing_core::span::Current {
//! #         match ENTERED.with(|e| e.borrow().last().cloned()) {
//! #             Some(id) => tracing_core::span::Current::new(id, META.get().unwrap()),
//! #             None => tracing_core::span::Current::none(),
//! #         }
//! #     }
//! # }
//! tracing::subscriber::set_global_default(Everything).unwrap();
//!
//! smol::block_on(async {
//!     let a = Node::start(ClusterConfig::new("a").secret("s").register_behaviors()).await.unwrap();
//!     let seed = a.local_node_id().unwrap().to_string();
//!     let b = Node::start(ClusterConfig::new("b").secret("s").seed(seed)).await.unwrap();
//!     while b.connected_nodes().is_empty() {
//!         smol::Timer::after(std::time::Duration::from_millis(10)).await;
//!     }
//!     let echo = b.spawn_on::<Echo>(a.local_node_id().unwrap(), ()).await.unwrap();
//!
//!     // Outside any span: no context travels.
//!     assert_eq!(echo.trace_id().await, Ok(None));
//!     // Inside one, the call starts a trace, which the handler on `a` runs in.
//!     let span = tracing::info_span!("request");
//!     let _entered = span.enter();
//!     assert!(echo.trace_id().await.unwrap().is_some());
//! #   drop(_entered);
//! #   a.shutdown();
//! #   b.shutdown();
//! });
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tracing::Span;

use crate::dist::wire::{Traced, WireMessage};
use crate::dist::NodeId;
use crate::Pid;

/// The trace a message was sent in, as the node that handles it sees it: from
/// [`TraceContext::current`] inside the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceContext {
    /// The trace's id: drawn at random where the trace began, the same on every node the
    /// request reached. Recorded (in hexadecimal) as the `trace_id` field of the
    /// `noex.message` span the message is handled in.
    pub trace_id: u128,
    /// The node that sent the message.
    pub parent_node: NodeId,
    /// The `tracing` id of the span the sender was in when it sent the message: an id of
    /// the sending node's subscriber.
    pub parent_span: u64,
}

impl TraceContext {
    /// The trace the code running now belongs to: that of the message from another node
    /// whose handler is running on this thread, if it came with one. `None` elsewhere —
    /// outside handlers, in the handling of a local message, or of one sent outside any
    /// span.
    pub fn current() -> Option<TraceContext> {
        CURRENT.with(|current| current.borrow().as_deref().cloned())
    }

    /// [`trace_id`](Self::trace_id) as 32 hexadecimal digits, as the spans record it.
    pub fn trace_id_hex(&self) -> String {
        hex(self.trace_id)
    }
}

fn hex(trace_id: u128) -> String {
    format!("{trace_id:032x}")
}

thread_local! {
    /// The context of the traced message whose handler is being polled on this thread.
    static CURRENT: RefCell<Option<Arc<TraceContext>>> = const { RefCell::new(None) };
}

/// The span a process's task runs in.
pub(crate) fn process_span(pid: &Pid, node: &str) -> Span {
    tracing::info_span!("noex.process", pid = %pid, node = %node)
}

/// `header` — a `Call`, `Cast` or `Info` about to be sent to another node — in a `Trace`
/// if a span is current: with the trace of the message being handled here, or a new one
/// (see the module docs).
pub(crate) fn wrap(header: WireMessage) -> WireMessage {
    let span = Span::current();
    let Some(id) = span.id() else {
        // No span, or one no subscriber is interested in: tracing is off for this send.
        return header;
    };
    let (trace_id, parent_span) = match CURRENT.with(|c| c.borrow().as_ref().map(|c| c.trace_id)) {
        Some(trace_id) => (trace_id, id.into_u64()),
        None => {
            let trace_id = fresh_id();
            let send = tracing::info_span!("noex.send", trace_id = %hex(trace_id));
            let parent = send.id().unwrap_or(id).into_u64();
            (trace_id, parent)
        }
    };
    WireMessage::Trace(Box::new(Traced {
        trace_id,
        parent_span,
        message: header,
    }))
}

/// A random trace id, never 0.
fn fresh_id() -> u128 {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Unlikely; a trace id need not be secret, only unlikely to repeat.
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = time.as_nanos().to_le_bytes();
    }
    u128::from_le_bytes(bytes).max(1)
}

/// The context of a message that arrived in a `Trace`, from the connection it came on.
pub(crate) fn received(traced: &Traced, from: &NodeId) -> Option<Box<TraceContext>> {
    match traced.message {
        WireMessage::Call { .. } | WireMessage::Cast { .. } | WireMessage::Info { .. } => {
            Some(Box::new(TraceContext {
                trace_id: traced.trace_id,
                parent_node: from.clone(),
                parent_span: traced.parent_span,
            }))
        }
        _ => None,
    }
}

/// The handling of one traced message: its `noex.message` span, and its context for
/// [`TraceContext::current`] and for the messages its handler sends.
pub(crate) struct Handling {
    span: Span,
    context: Arc<TraceContext>,
}

impl Handling {
    /// Opens the span of a message of `kind` (`call`, `cast`, `info`) handled in `context`.
    pub(crate) fn new(context: TraceContext, kind: &'static str) -> Handling {
        let span = tracing::info_span!(
            "noex.message",
            trace_id = %hex(context.trace_id),
            parent_node = %context.parent_node,
            parent_span = context.parent_span,
            kind,
        );
        Handling {
            span,
            context: Arc::new(context),
        }
    }

    /// Enters the span and makes the context current on this thread until the guard is
    /// dropped.
    pub(crate) fn enter(&self) -> Entered<'_> {
        let previous = CURRENT.with(|c| c.replace(Some(self.context.clone())));
        Entered {
            _span: self.span.enter(),
            previous,
        }
    }

    /// `future` polled inside the span, with the context current.
    pub(crate) fn instrument<F: Future>(self, future: F) -> InTrace<F> {
        InTrace {
            handling: self,
            future,
        }
    }
}

/// The guard of [`Handling::enter`].
pub(crate) struct Entered<'a> {
    _span: tracing::span::Entered<'a>,
    previous: Option<Arc<TraceContext>>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Handling::instrument`].
    pub(crate) struct InTrace<F> {
        handling: Handling,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InTrace<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.handling.enter();
        this.future.poll(cx)
    }
}
