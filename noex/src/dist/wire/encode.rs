//! Encoding frames: postcard into a buffer the caller keeps, within a length if asked.

use serde::Serialize;

use super::{header, WireMessage};

/// A postcard output that appends to a `Vec` it borrows (so a caller's buffer keeps its
/// allocation from one message to the next), up to a length: past `end` bytes in all, it
/// fails with `SerializeBufferFull` (see [`append_within`]).
struct Append<'a> {
    out: &'a mut Vec<u8>,
    end: usize,
}

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.out.len() >= self.end {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.out.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() > self.end - self.out.len() {
            return Err(postcard::Error::SerializeBufferFull);
        }
        // A large `Bytes` in a frame encoded off the scheduler threads is lent, not copied.
        if bytes.len() >= crate::bytes::LEND_FROM && crate::bytes::lend(bytes, self.out.len()) {
            return Ok(());
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `value`, postcard-encoded, to `out`.
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> postcard::Result<()> {
    append_within(value, out, usize::MAX)
}

/// Appends `value`, postcard-encoded, to `out` — unless its encoding is longer than `most`
/// bytes: then `out` is left with a part of it, and the error is `SerializeBufferFull`
/// (which nothing else returns here: postcard raises it only from its output).
pub(crate) fn append_within<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    most: usize,
) -> postcard::Result<()> {
    let end = out.len().saturating_add(most);
    postcard::serialize_with_flavor(value, Append { out, end })
}

/// Appends one frame to `out`: `message`, then the payload `payload` appends (nothing for
/// the kinds without one). On error `out` is left as it was.
pub(crate) fn encode_frame_with(
    message: &WireMessage,
    out: &mut Vec<u8>,
    payload: impl FnOnce(&mut Vec<u8>) -> postcard::Result<()>,
) -> postcard::Result<()> {
    let head = |out: &mut Vec<u8>| {
        if header::encode(message, out) {
            Ok(())
        } else {
            append(message, out)
        }
    };
    encode_frame_of(out, head, payload)
}

/// Appends one frame to `out`: the message `head` appends, then the payload `payload`
/// appends. On error `out` is left as it was.
#[inline]
pub(crate) fn encode_frame_of(
    out: &mut Vec<u8>,
    head: impl FnOnce(&mut Vec<u8>) -> postcard::Result<()>,
    payload: impl FnOnce(&mut Vec<u8>) -> postcard::Result<()>,
) -> postcard::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let written = head(out).and_then(|()| payload(out));
    let len = u32::try_from(out.len() - start - 4);
    match (written, len) {
        (Ok(()), Ok(len)) => {
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        (Err(error), _) => {
            out.truncate(start);
            Err(error)
        }
        (_, Err(_)) => {
            out.truncate(start);
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}

/// Appends one frame holding `message` (a kind without payload) to `out`.
pub(crate) fn encode_frame(message: &WireMessage, out: &mut Vec<u8>) -> postcard::Result<()> {
    encode_frame_with(message, out, |_| Ok(()))
}
