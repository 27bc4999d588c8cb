//! The peer's messages a reader withholds while the peer is behind in reading its
//! replies.

use std::collections::VecDeque;

/// The peer's messages the reader has read but not handled, in order, while the peer is
/// behind in reading its replies (`Outbound::holding_back`): a peer that calls without
/// reading its replies gets no more calls handled, and yet its heartbeats and the
/// acknowledgements that let this node's large replies drain still get through. At most
/// the outbound bound's worth of messages is withheld; past it the reader reads nothing
/// more (and a peer that then neither reads nor lets this node read is down after the
/// heartbeat timeout). Withheld messages are taken up, in order, as soon as the peer has
/// caught up — or, if it hangs up first, before its connection is reported down.
#[derive(Default)]
pub(super) struct Withheld {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Withheld {
    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Room for a frame of `len` bytes within `limit` (always for the first one).
    pub(super) fn has_room(&self, len: usize, limit: usize) -> bool {
        self.bytes == 0 || self.bytes + len <= limit
    }

    pub(super) fn push(&mut self, frame: &[u8]) {
        self.bytes += frame.len();
        self.frames.push_back(frame.to_vec());
    }

    pub(super) fn pop(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    pub(super) fn put_back(&mut self, frame: Vec<u8>) {
        self.bytes += frame.len();
        self.frames.push_front(frame);
    }
}
