//! `WireMessage::Trace`: a user message with a trace context around it.
//!
//! A call, cast or send made while a `tracing` span is current, on a node built with the
//! `tracing-context` feature, travels as a `Trace` whose `message` is the `Call`, `Cast` or
//! `Info` it would otherwise have been, followed by that message's payload as usual. The
//! context rides inside the frame of the message it belongs to rather than in a frame of
//! its own, so nothing can come between the two: the outbound queue interleaves the frames
//! of different senders and sends a large message in fragments, and a fragmented message
//! is reassembled with its context.
//!
//! Every build decodes it, with or without the feature: a node without it handles the
//! message and ignores the context, so builds with and without the feature work together
//! (nodes older than this variant fail to decode it, which closes the connection, as any
//! new message kind does; see the module docs of `wire`). A `Trace` inside a `Trace` is
//! refused while decoding, so a peer cannot make the decoder recurse.

use std::cell::Cell;

use serde::{Deserialize, Deserializer, Serialize};

use super::WireMessage;

/// A user message with the trace context it was sent in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Traced {
    /// The trace the message belongs to.
    pub(crate) trace_id: u128,
    /// The sender's span the message was sent in (its `tracing` id, meaningful on the
    /// sender only).
    pub(crate) parent_span: u64,
    /// The message: a `Call`, `Cast` or `Info` (a receiver handles any other kind as if
    /// the context were not there).
    #[serde(deserialize_with = "untraced")]
    pub(crate) message: WireMessage,
}

thread_local! {
    /// Set while the message inside a `Trace` is being decoded.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Decodes the message inside a `Trace`, refusing another `Trace` in it (a decode error,
/// as for any malformed frame) — whose decoding would be refused in turn: decoding never
/// goes deeper than one level.
fn untraced<'de, D: Deserializer<'de>>(deserializer: D) -> Result<WireMessage, D::Error> {
    /// Clears `INSIDE` however the decoding ends.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            INSIDE.with(|inside| inside.set(false));
        }
    }
    if INSIDE.with(Cell::get) {
        return Err(serde::de::Error::custom("a trace inside a trace"));
    }
    INSIDE.with(|inside| inside.set(true));
    let _leave = Leave;
    WireMessage::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use super::super::{decode, encode_frame_with, Address, WireMessage};
    use super::Traced;

    #[test]
    fn a_traced_message_round_trips_with_its_payload_and_a_nested_trace_is_refused() {
        let cast = WireMessage::Cast {
            to: Address::Name("n".into()),
            behavior: 9,
        };
        let traced = |message| {
            WireMessage::Trace(Box::new(Traced {
                trace_id: u128::MAX - 1,
                parent_span: 42,
                message,
            }))
        };
        let mut frame = Vec::new();
        encode_frame_with(&traced(cast.clone()), &mut frame, |out| {
            out.extend_from_slice(b"payload");
            Ok(())
        })
        .unwrap();
        let (message, payload) = decode(&frame[4..]).unwrap();
        assert_eq!(message, traced(cast.clone()));
        assert_eq!(payload, b"payload");

        // A kind without payload may not be followed by bytes inside a trace either.
        let mut frame = Vec::new();
        let goodbye = traced(WireMessage::Goodbye);
        encode_frame_with(&goodbye, &mut frame, |out| {
            out.push(0);
            Ok(())
        })
        .unwrap();
        assert!(decode(&frame[4..]).is_err());

        let mut frame = Vec::new();
        encode_frame_with(&traced(traced(cast)), &mut frame, |_| Ok(())).unwrap();
        assert!(decode(&frame[4..]).is_err(), "a trace inside a trace");
        // The refusal leaves nothing behind: the next frame decodes.
        let mut frame = Vec::new();
        encode_frame_with(&goodbye, &mut frame, |_| Ok(())).unwrap();
        assert_eq!(decode(&frame[4..]).unwrap().0, goodbye);
    }
}
