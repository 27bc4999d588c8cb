//! Large messages encoded off the scheduler threads.
//!
//! A user message is encoded on its sender's thread within a budget of [`ENCODE_APART`]
//! bytes. One that outgrows it (the attempt stops there, having cost at most that much) is
//! encoded again on the `blocking` thread pool, so that copying megabytes never holds up
//! the other processes of the sender's thread. Order is kept:
//!
//! * a call or an awaited cast waits for its frame before it is queued, and its sender,
//!   waiting with it, queues nothing meanwhile;
//! * a plain cast or info returns at once: its place in the connection's queue is kept by
//!   a placeholder counted as its sender's (`Outbound::hold`), behind which whatever the
//!   sender queues next waits, as behind any large message of that sender, until the frame
//!   fills it (`Outbound::fill`). Room for it is checked when the place is taken, as for a
//!   message encoded at once; should it fail to encode there (a `Serialize` impl that
//!   errors, or panics, past the budget), it is logged and counted as a dropped cast.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde::Serialize;

use super::super::outbound::Frame;
use super::super::peer::{Counters, Peer};
use super::super::spares::{Spares, KEEP_FROM};
use super::super::wire::{self, WireMessage};
use crate::bytes;

/// Appends a value, encoded, to a buffer — unless its encoding is longer than the number
/// of bytes given (see [`wire::append_within`]).
pub(crate) type Bounded<T> = fn(&T, &mut Vec<u8>, usize) -> Result<(), postcard::Error>;

/// A message whose encoding outgrows this many bytes on its sender's thread is encoded on
/// the `blocking` thread pool instead (see the module docs).
pub(crate) const ENCODE_APART: usize = 1 << 20;

pub(super) fn encode_within<T: Serialize>(
    value: &T,
    out: &mut Vec<u8>,
    most: usize,
) -> Result<(), postcard::Error> {
    wire::append_within(value, out, most)
}

/// How a user message was encoded.
pub(super) enum Encoded {
    /// Into the buffer given, on the sender's thread.
    Here,
    /// Not: it outgrows [`ENCODE_APART`], and is to be encoded on the `blocking` thread
    /// pool (a long copy on a scheduler thread would hold up the other processes of that
    /// thread). The buffer is left as it was.
    Apart,
}

/// Appends the frame of `header` and `message` to `frame` if its encoding stays within
/// [`ENCODE_APART`].
pub(super) fn encode_here<T>(
    header: &WireMessage,
    message: &T,
    encode: Bounded<T>,
    frame: &mut Vec<u8>,
) -> Result<Encoded, postcard::Error> {
    encoded_here(wire::encode_frame_with(header, frame, |out| {
        encode(message, out, ENCODE_APART)
    }))
}

/// [`encode_here`] with a header already encoded: `head`.
#[inline]
pub(super) fn encode_here_after<T>(
    head: impl FnOnce(&mut Vec<u8>),
    message: &T,
    encode: Bounded<T>,
    frame: &mut Vec<u8>,
) -> Result<Encoded, postcard::Error> {
    let head = |out: &mut Vec<u8>| {
        head(out);
        Ok(())
    };
    encoded_here(wire::encode_frame_of(frame, head, |out| {
        encode(message, out, ENCODE_APART)
    }))
}

fn encoded_here(written: postcard::Result<()>) -> Result<Encoded, postcard::Error> {
    match written {
        Ok(()) => Ok(Encoded::Here),
        Err(postcard::Error::SerializeBufferFull) => Ok(Encoded::Apart),
        Err(error) => Err(error),
    }
}

/// Encodes the frame of `header` and `message` whatever its size: on the calling thread,
/// which must not be a scheduler's. A large `Bytes` in the message is lent to the frame,
/// not copied (see [`Frame`]).
pub(crate) fn encode_whole<T>(
    header: &WireMessage,
    message: &T,
    encode: Bounded<T>,
    spares: &Spares,
) -> Result<Frame, postcard::Error> {
    // The buffer of an earlier large message, if the node kept one: its pages are
    // touched already (see `spares`).
    let mut own = spares.take(0);
    let (encoded, lent) = bytes::lending(|| {
        wire::encode_frame_with(header, &mut own, |out| encode(message, out, usize::MAX))
    });
    encoded?;
    if lent.is_empty() {
        return Ok(Frame::owned(own));
    }
    let frame = Frame { own, lent };
    // The length prefix counts the lent bytes too.
    let len = u32::try_from(frame.len() - 4).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let Frame { mut own, lent } = frame;
    own[..4].copy_from_slice(&len.to_be_bytes());
    // A spare taken for bytes that were lent goes back for the next message.
    if own.capacity() >= KEEP_FROM && own.len() < KEEP_FROM {
        let kept = own.clone();
        drop(spares.give(own));
        own = kept;
    }
    Ok(Frame { own, lent })
}

/// [`encode_whole`] for a message whose encoding nobody awaits (see [`encode_in_place`]):
/// a panic of its `Serialize` impl is taken for an encoding error, so that the place kept
/// for it is given up (or filled with the failure's answer) rather than kept for ever,
/// holding up its sender's later messages and the large ones of everyone.
pub(crate) fn encode_whole_unawaited<T>(
    header: &WireMessage,
    message: &T,
    encode: Bounded<T>,
    spares: &Spares,
) -> Result<Frame, postcard::Error> {
    let encode = AssertUnwindSafe(|| encode_whole(header, message, encode, spares));
    std::panic::catch_unwind(encode).unwrap_or(Err(postcard::Error::SerdeSerCustom))
}

/// The frame of `header` and `message`, encoded on the `blocking` thread pool; with the
/// message, handed back.
pub(super) async fn encode_apart<T: Send + 'static>(
    header: WireMessage,
    message: T,
    encode: Bounded<T>,
    spares: Arc<Spares>,
) -> (Result<Frame, postcard::Error>, T) {
    smol::unblock(move || (encode_whole(&header, &message, encode, &spares), message)).await
}

/// Encodes the frame of `header` and `message` on the `blocking` thread pool into the place
/// `slot` kept for it in `peer`'s queue. A message that does not encode, or is larger than
/// the peer takes, is logged and counted as dropped (its sender returned already).
pub(super) fn encode_in_place<T: Send + 'static>(
    peer: Arc<Peer>,
    slot: u64,
    header: WireMessage,
    message: T,
    encode: Bounded<T>,
) {
    smol::unblock(move || {
        let encoded = encode_whole_unawaited(&header, &message, encode, peer.queue.spares());
        drop(message);
        match encoded.map(|frame| (peer.queue.check_size(frame.len()), frame)) {
            Ok((Ok(()), frame)) => {
                peer.queue.fill(slot, Some(frame));
            }
            Ok((Err(too_large), _)) => {
                peer.queue.fill(slot, None);
                tracing::warn!(
                    ?too_large,
                    peer = %peer.id,
                    "dropped a remote message larger than its node takes"
                );
                Counters::add(&peer.counters.casts_dropped, 1);
            }
            Err(error) => {
                peer.queue.fill(slot, None);
                tracing::warn!(%error, "dropped a remote message that does not encode");
                Counters::add(&peer.counters.casts_dropped, 1);
            }
        }
    })
    .detach();
}
