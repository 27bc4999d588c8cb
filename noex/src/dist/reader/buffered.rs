//! The reader's buffer over its connection's stream.
//!
//! Frames that lie whole in the buffer are handled where they lie (see `reader`). The
//! fragments of a large message are read in place instead (see `assembly`): the rest of a
//! fragment's payload is read straight into its message's buffer, and, in the same read,
//! at most [`TAIL`] bytes after it into this buffer — the next frame's header, most of
//! the time, with the first bytes of its payload. While a message is being reassembled,
//! the buffer is refilled by at most that much too, so the payload of the next fragment
//! is read in place rather than into the buffer (and copied from there).

use std::io::{self, IoSliceMut};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::future::poll_fn;
use futures_lite::AsyncRead;

use super::super::transport::ReadHalf;

/// The buffer's size.
const CAPACITY: usize = 64 * 1024;

/// What is read after the end of a fragment read in place, and into an empty buffer while
/// a message is being reassembled.
pub(super) const TAIL: usize = 4 * 1024;

/// A stream and its read buffer.
pub(super) struct Buffered<R = ReadHalf> {
    stream: R,
    buf: Box<[u8]>,
    /// The bytes buffered are `buf[pos..end]`.
    pos: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> Buffered<R> {
    pub(super) fn new(stream: R) -> Self {
        Buffered {
            stream,
            buf: vec![0; CAPACITY].into_boxed_slice(),
            pos: 0,
            end: 0,
        }
    }

    /// The bytes buffered.
    pub(super) fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Forgets the first `n` bytes buffered.
    pub(super) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads at most `most` bytes into the buffer, which must be empty; the bytes read
    /// (none at the end of the stream).
    pub(super) async fn fill(&mut self, most: usize) -> io::Result<&[u8]> {
        debug_assert!(self.buffer().is_empty());
        let most = most.min(CAPACITY);
        let n =
            poll_fn(|cx| Pin::new(&mut self.stream).poll_read(cx, &mut self.buf[..most])).await?;
        (self.pos, self.end) = (0, n);
        Ok(self.buffer())
    }

    /// Reads into `place`, and whatever follows, up to [`TAIL`] bytes, into the buffer,
    /// which must be empty; the bytes read into `place`.
    pub(super) async fn read_into(&mut self, place: &mut [u8]) -> io::Result<usize> {
        debug_assert!(self.buffer().is_empty());
        let wanted = place.len();
        let n = poll_fn(|cx| {
            let mut slices = [
                IoSliceMut::new(&mut *place),
                IoSliceMut::new(&mut self.buf[..TAIL]),
            ];
            Pin::new(&mut self.stream).poll_read_vectored(cx, &mut slices)
        })
        .await?;
        let into_place = n.min(wanted);
        (self.pos, self.end) = (0, n - into_place);
        Ok(into_place)
    }
}

/// Reads through the buffer (for frames read in steps: see `incoming`).
impl<R: AsyncRead + Unpin> AsyncRead for Buffered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pos == this.end {
            // Nothing buffered: a long read goes straight to `out`.
            if out.len() >= CAPACITY {
                return Pin::new(&mut this.stream).poll_read(cx, out);
            }
            let n = ready!(Pin::new(&mut this.stream).poll_read(cx, &mut this.buf))?;
            (this.pos, this.end) = (0, n);
        }
        let buffered = &this.buf[this.pos..this.end];
        let n = buffered.len().min(out.len());
        out[..n].copy_from_slice(&buffered[..n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use futures_lite::AsyncReadExt;

    use super::*;

    #[test]
    fn a_read_in_place_leaves_what_follows_in_the_buffer() {
        let bytes: Vec<u8> = (0..3 * TAIL).map(|i| i as u8).collect();
        let mut stream = Buffered::new(&bytes[..]);
        assert_eq!(block_on(stream.fill(10)).unwrap(), &bytes[..10]);
        stream.consume(10);
        let mut place = [0; 100];
        assert_eq!(block_on(stream.read_into(&mut place)).unwrap(), 100);
        assert_eq!(place, bytes[10..110]);
        assert_eq!(stream.buffer(), &bytes[110..110 + TAIL], "at most the tail");
        // Through the buffer, then past it.
        let mut rest = Vec::new();
        block_on(stream.read_to_end(&mut rest)).unwrap();
        assert_eq!(rest, bytes[110..]);
    }
}
