//! A frame read in steps, for frames that do not lie whole in the read buffer.
//!
//! What has been read is kept here, not in the future that reads it, so the reader can stop
//! waiting for the rest (to take up withheld messages when the peer catches up) and come
//! back to it later without losing a byte — which reading with `read_exact` cannot do.

use futures_lite::{AsyncRead, AsyncReadExt};

use super::super::wire::WireError;

/// A frame being read: its length prefix, then its body.
#[derive(Default)]
pub(super) struct Incoming {
    prefix: [u8; 4],
    prefix_read: usize,
    /// The body's length, once the prefix is read.
    len: Option<usize>,
    /// Holds the body in its first `len` bytes; never shrinks, so the zeroes a longer
    /// frame needs are written once, not for every frame.
    body: Vec<u8>,
    body_read: usize,
}

impl Incoming {
    /// `true` if no byte of a frame has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.prefix_read == 0
    }

    /// The frame's body, once it has been read whole.
    pub(super) fn whole(&self) -> Option<&[u8]> {
        (self.len == Some(self.body_read)).then_some(&self.body[..self.body_read])
    }

    /// Forgets the frame read (its body buffer is kept for the next), returning its length.
    pub(super) fn clear(&mut self) -> usize {
        let len = self.body_read;
        self.prefix_read = 0;
        self.len = None;
        self.body_read = 0;
        len
    }

    /// Reads until the frame is whole. The length prefix is checked against `max` before
    /// anything is allocated for the body. Abandoning the future loses nothing: a later
    /// call goes on where this one stopped.
    pub(super) async fn read<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
        max: usize,
    ) -> Result<(), WireError> {
        while self.prefix_read < 4 {
            let n = stream.read(&mut self.prefix[self.prefix_read..]).await?;
            if n == 0 {
                return Err(eof());
            }
            self.prefix_read += n;
        }
        let len = match self.len {
            Some(len) => len,
            None => {
                let len = u32::from_be_bytes(self.prefix) as usize;
                if len > max {
                    return Err(WireError::Oversized { len, max });
                }
                if self.body.len() < len {
                    self.body.resize(len, 0);
                }
                *self.len.insert(len)
            }
        };
        while self.body_read < len {
            let n = stream.read(&mut self.body[self.body_read..len]).await?;
            if n == 0 {
                return Err(eof());
            }
            self.body_read += n;
        }
        Ok(())
    }
}

pub(super) fn eof() -> WireError {
    WireError::Io(std::io::ErrorKind::UnexpectedEof.into())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_lite::future::{block_on, poll_once};

    use super::*;

    /// Hands out one byte per read, and is not ready every other poll.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        ready: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = usize::from(self.at < self.bytes.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_frame_read_in_abandoned_steps_arrives_whole() {
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&2u32.to_be_bytes());
        let mut stream = Trickle {
            bytes,
            at: 0,
            ready: false,
        };
        let mut incoming = Incoming::default();
        // Each poll reads at most one byte, and each read is abandoned when it waits.
        let mut polls = 0;
        while block_on(poll_once(incoming.read(&mut stream, 16))).is_none() {
            polls += 1;
            assert!(polls < 100);
        }
        assert_eq!(incoming.whole(), Some(&b"hello"[..]));
        assert_eq!(incoming.clear(), 5);
        assert!(incoming.is_empty());
        let error = block_on(incoming.read(&mut stream, 1)).unwrap_err();
        assert!(matches!(error, WireError::Oversized { len: 2, max: 1 }));
    }
}
