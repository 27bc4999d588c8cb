//! The largest message the peer takes: what it said in the handshake (its max message
//! size). A larger one is refused here, with [`PushError::TooLarge`], for its sender to
//! fail with a typed error — the peer would close the connection over it, failing every
//! call and monitor between the two nodes. A message of up to [`FRAGMENT_SIZE`] bytes is
//! sent whole, which the peer always takes: only large frames need be measured.

use super::{Outbound, PushError, FRAGMENT_SIZE};

impl Outbound {
    /// The queue of a connection whose peer takes messages of at most `max_message` bytes
    /// reassembled (what it said in the handshake): larger ones are refused with
    /// [`PushError::TooLarge`]. A message of up to [`FRAGMENT_SIZE`] bytes is sent whole,
    /// which the peer always takes, so the limit is never less than that.
    pub(crate) fn taking(mut self, max_message: u64) -> Self {
        let max_message = usize::try_from(max_message).unwrap_or(usize::MAX);
        self.peer_takes = max_message.max(FRAGMENT_SIZE);
        self
    }

    /// Refuses a frame of `len` bytes (its length prefix included) that is larger than the
    /// peer takes. One compare: called for large frames, and for those of unknown size.
    #[inline]
    pub(crate) fn check_size(&self, len: usize) -> Result<(), PushError> {
        match len.saturating_sub(4) {
            size if size > self.peer_takes => Err(PushError::TooLarge {
                size,
                limit: self.peer_takes,
            }),
            _ => Ok(()),
        }
    }
}
