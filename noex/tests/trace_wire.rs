//! `Trace` on the wire: a user message with a trace context around it. Every build decodes
//! it — this file runs with and without the `tracing-context` feature — and handles the
//! message inside (a build without the feature ignores the context); a trace inside a
//! trace is a protocol error that ends the connection, never a panic or a deep recursion.

mod common;

use std::time::Duration;

use common::raw::{frame, Address, Raw, Wire};
use common::{cluster_config, run_blocking, within};
use noex::{Ctx, GenServer, Node, ReplyTo, SpawnOptions};

/// The index of `Trace` among the protocol's message kinds.
const TRACE: u8 = 20;

/// Adds up the numbers cast to it.
struct Tally(u64);

#[noex::remote(name = "tally")]
impl GenServer for Tally {
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = u64;
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Tally(0))
    }

    async fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Ctx<Self>) {
        reply.send(self.0);
    }

    async fn handle_cast(&mut self, n: u64, _: &mut Ctx<Self>) {
        self.0 += n;
    }
}

fn cast(n: u64) -> (Wire, Vec<u8>) {
    let cast = Wire::Cast {
        to: Address::Name("tally".into()),
        behavior: noex::__private::tag("tally", ""),
    };
    (cast, postcard::to_allocvec(&n).unwrap())
}

/// The body of a `Trace` frame around `inner` (a message's body, without its payload).
fn traced(trace_id: u128, parent_span: u64, inner: &[u8]) -> Vec<u8> {
    let mut body = vec![TRACE];
    body.extend(postcard::to_allocvec(&(trace_id, parent_span)).unwrap());
    body.extend_from_slice(inner);
    body
}

/// A frame of `body` and `payload`.
fn framed(body: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut frame = ((body.len() + payload.len()) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame.extend_from_slice(payload);
    frame
}

async fn tally_node() -> (Node, noex::ServerRef<Tally>) {
    let node = Node::start(cluster_config("a")).await.unwrap();
    let tally = node
        .spawn_with::<Tally>((), SpawnOptions::new().name("tally"))
        .await
        .unwrap();
    (node, tally)
}

async fn total_reaches(tally: &noex::ServerRef<Tally>, total: u64) {
    within("the casts to be handled", async {
        while tally.call(()).await.unwrap() != total {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

#[test]
fn a_traced_message_is_handled_like_the_message_inside() {
    run_blocking(async {
        let (node, tally) = tally_node().await;
        let mut raw = Raw::join(&node).await;
        let (message, payload) = cast(2);
        let inner = postcard::to_allocvec(&message).unwrap();
        // A traced cast, then a plain one, then another traced one: each handled once, in
        // order, whatever the build does with the context.
        let mut bytes = framed(&traced(0x1234_5678_9abc_def0, 7, &inner), &payload);
        bytes.extend(frame(&message, &payload));
        let (message, payload) = cast(3);
        let inner = postcard::to_allocvec(&message).unwrap();
        bytes.extend(framed(&traced(u128::MAX, u64::MAX, &inner), &payload));
        raw.send_bytes(&bytes).await;
        total_reaches(&tally, 7).await;
        assert_eq!(node.connected_nodes().len(), 1, "the connection stays up");
        node.shutdown();
    });
}

#[test]
fn a_trace_inside_a_trace_ends_the_connection_and_nothing_else() {
    run_blocking(async {
        let (node, tally) = tally_node().await;
        let mut raw = Raw::join(&node).await;
        let (message, payload) = cast(5);
        let inner = postcard::to_allocvec(&message).unwrap();
        let nested = traced(1, 1, &traced(2, 2, &inner));
        raw.send_bytes(&framed(&nested, &payload)).await;
        raw.closed().await;
        // Deeply nested: refused just the same, at the second level.
        let mut raw = Raw::join(&node).await;
        let mut deep = Vec::new();
        for level in 0..100_000u64 {
            deep.extend(traced(level.into(), level, &[]));
        }
        deep.extend_from_slice(&inner);
        raw.send_bytes(&framed(&deep, &payload)).await;
        raw.closed().await;
        // The node serves on, and the cast never reached the process.
        let mut raw = Raw::join(&node).await;
        raw.send_bytes(&framed(&traced(3, 3, &inner), &payload))
            .await;
        total_reaches(&tally, 5).await;
        node.shutdown();
    });
}
