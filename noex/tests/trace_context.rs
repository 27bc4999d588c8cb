//! The `tracing-context` feature: processes run in `noex.process` spans, and a remote
//! message sent in a span is handled on the receiving node in a `noex.message` span that
//! continues its trace.
//!
//! A subscriber written here records every span (name, fields, parent) and event; it is the
//! process-wide default, as the nodes' threads must see it, so every test of this file
//! shares it and picks out its own spans.
#![cfg(feature = "tracing-context")]

mod common;
use common::id;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::{run_blocking, start_cluster, within};
use noex::trace::TraceContext;
use noex::{Ctx, Node, Pid};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    fields: HashMap<String, String>,
    parent: Option<u64>,
    metadata: &'static Metadata<'static>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    message: String,
    span: Option<u64>,
}

#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, SpanRecord>>,
    events: Mutex<Vec<EventRecord>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

struct Captured(&'static Capture);

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let parent = if attributes.is_root() {
            None
        } else if let Some(parent) = attributes.parent() {
            Some(parent.into_u64())
        } else {
            STACK.with(|stack| stack.borrow().last().copied())
        };
        let mut fields = HashMap::new();
        attributes.record(&mut Fields(&mut fields));
        let record = SpanRecord {
            name: attributes.metadata().name(),
            fields,
            parent,
            metadata: attributes.metadata(),
        };
        self.0.spans.lock().unwrap().insert(id, record);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(record) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let span = STACK.with(|stack| stack.borrow().last().copied());
        self.0.events.lock().unwrap().push(EventRecord {
            message: fields.remove("message").unwrap_or_default(),
            span,
        });
    }

    fn enter(&self, span: &Id) {
        STACK.with(|stack| stack.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        STACK.with(|stack| {
            let mut stack = stack.borrow_mut();
            if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
                stack.remove(at);
            }
        });
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let current = STACK.with(|stack| stack.borrow().last().copied());
        match current.and_then(|id| Some((id, self.0.spans.lock().unwrap().get(&id)?.metadata))) {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }
}

/// The subscriber every test of this file shares.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::default());
        tracing::subscriber::set_global_default(Captured(capture)).unwrap();
        capture
    })
}

impl Capture {
    fn span(&self, id: u64) -> SpanRecord {
        self.spans.lock().unwrap()[&id].clone()
    }

    /// The spans named `name` whose field `field` is `value`.
    fn find(&self, name: &str, field: &str, value: &str) -> Vec<(u64, SpanRecord)> {
        let spans = self.spans.lock().unwrap();
        let mut found: Vec<_> = spans
            .iter()
            .filter(|(_, s)| {
                s.name == name && s.fields.get(field).map(String::as_str) == Some(value)
            })
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        found.sort_by_key(|(id, _)| *id);
        found
    }

    /// The event logged with `message`.
    fn event(&self, message: &str) -> Option<EventRecord> {
        let events = self.events.lock().unwrap();
        events.iter().find(|e| e.message == message).cloned()
    }
}

/// Records the trace each note came in, and logs the note.
#[noex::behavior]
pub struct Notes {
    seen: Vec<(String, Option<TraceContext>)>,
}

#[noex::behavior]
impl Notes {
    #[init]
    fn init(_: ()) -> Self {
        Notes { seen: Vec::new() }
    }

    #[cast]
    fn note(&mut self, text: String) {
        tracing::info!("{text}");
        self.seen.push((text, TraceContext::current()));
    }

    /// The trace of the call itself, and the notes seen so far.
    #[call]
    fn seen(&self) -> Vec<(String, Option<u128>)> {
        self.seen
            .iter()
            .map(|(text, context)| (text.clone(), context.as_ref().map(|c| c.trace_id)))
            .collect()
    }

    /// Casts `text` on to `to` (a `Notes` of another node) from inside this handler, and
    /// answers with the trace this call runs in.
    #[call]
    async fn relay(&self, to: Pid, text: String, ctx: &mut Ctx<Self>) -> Option<u128> {
        let next = ctx.node().server_ref::<Notes>(&to).unwrap();
        next.note(text).unwrap();
        TraceContext::current().map(|c| c.trace_id)
    }
}

fn hex(trace_id: u128) -> String {
    format!("{trace_id:032x}")
}

/// The notes `notes` has seen, once there are `count`.
async fn notes_seen(notes: &noex::ServerRef<Notes>, count: usize) -> Vec<(String, Option<u128>)> {
    within("the notes to arrive", async {
        loop {
            let seen = notes.seen().await.unwrap();
            if seen.len() >= count {
                return seen;
            }
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Two connected nodes with every behaviour of this test registered.
async fn registered_pair() -> Vec<Node> {
    let nodes = start_cluster(2).await;
    for node in &nodes {
        noex::register_all!(node).unwrap();
    }
    nodes
}

#[test]
fn a_remote_cast_in_a_span_is_handled_in_a_span_that_continues_its_trace() {
    let capture = capture();
    run_blocking(async {
        let nodes = registered_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let notes = a.spawn_on::<Notes>(&id(b), ()).await.unwrap();

        // Outside any span: no context travels, and no `noex.message` span is opened.
        notes.note("untraced".to_owned()).unwrap();
        // Inside one: the cast starts a trace.
        let request = tracing::info_span!("request", test = "cast");
        let request_id = request.id().unwrap().into_u64();
        request.in_scope(|| notes.note("traced".to_owned()).unwrap());

        let seen = notes_seen(&notes, 2).await;
        assert_eq!(seen[0], ("untraced".to_owned(), None));
        let trace_id = seen[1].1.expect("the traced note came with a trace");
        assert_eq!(seen[1].0, "traced");

        // The sender's side: a `noex.send` span under the request, with the trace id.
        let sends = capture.find("noex.send", "trace_id", &hex(trace_id));
        assert_eq!(sends.len(), 1, "{sends:?}");
        let (send_id, send) = &sends[0];
        assert_eq!(send.parent, Some(request_id));

        // The receiver's side: a `noex.message` span with the same trace id, whose parent
        // is the sender's span, inside the process's `noex.process` span.
        let messages = capture.find("noex.message", "trace_id", &hex(trace_id));
        assert_eq!(messages.len(), 1, "{messages:?}");
        let (message_id, message) = &messages[0];
        assert_eq!(message.fields["parent_node"], id(a).to_string());
        assert_eq!(message.fields["parent_span"], send_id.to_string());
        assert_eq!(message.fields["kind"], "cast");
        let process = capture.span(message.parent.expect("inside the process's span"));
        assert_eq!(process.name, "noex.process");
        assert_eq!(process.fields["pid"], notes.pid().to_string());
        assert_eq!(process.fields["node"], id(b).to_string());

        // What the handler logged is inside the message's span; the untraced note's log
        // only inside the process's.
        let logged = capture.event("traced").expect("the handler logged");
        assert_eq!(logged.span, Some(*message_id));
        let untraced = capture.event("untraced").expect("the handler logged");
        let span = capture.span(untraced.span.expect("in a span"));
        assert_eq!(span.name, "noex.process");
        assert_eq!(span.fields["pid"], notes.pid().to_string());

        for node in nodes {
            node.shutdown();
        }
    });
}

#[test]
fn a_trace_goes_on_through_a_handler_that_sends_to_another_node() {
    let capture = capture();
    run_blocking(async {
        let nodes = registered_pair().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        // The relay runs on b; the notes it casts to, on a.
        let relay = a.spawn_on::<Notes>(&id(b), ()).await.unwrap();
        let notes = b.spawn_on::<Notes>(&id(a), ()).await.unwrap();

        let request = tracing::info_span!("request", test = "relay");
        let call = relay.relay(notes.pid().clone(), "relayed".to_owned());
        let relayed = tracing::Instrument::instrument(call, request)
            .await
            .unwrap();
        let trace_id = relayed.expect("the call came with a trace");

        // Both hops carry the one trace id: the call a → b, and the cast b → a its handler
        // made.
        let seen = notes_seen(&notes, 1).await;
        assert_eq!(seen, vec![("relayed".to_owned(), Some(trace_id))]);
        let messages = capture.find("noex.message", "trace_id", &hex(trace_id));
        assert_eq!(messages.len(), 2, "{messages:?}");
        let (call_id, call) = &messages[0];
        let (_, cast) = &messages[1];
        assert_eq!(call.fields["kind"], "call");
        assert_eq!(call.fields["parent_node"], id(a).to_string());
        assert_eq!(cast.fields["kind"], "cast");
        assert_eq!(cast.fields["parent_node"], id(b).to_string());
        // The second hop's parent is the first hop's handling span, on b.
        assert_eq!(cast.fields["parent_span"], call_id.to_string());
        // No new trace was started on b.
        assert_eq!(
            capture.find("noex.send", "trace_id", &hex(trace_id)).len(),
            1
        );
        let relay_process = capture.span(call.parent.unwrap());
        assert_eq!(relay_process.fields["pid"], relay.pid().to_string());
        let notes_process = capture.span(cast.parent.unwrap());
        assert_eq!(notes_process.fields["pid"], notes.pid().to_string());
        assert_eq!(notes_process.fields["node"], id(a).to_string());

        for node in nodes {
            node.shutdown();
        }
    });
}
