//! Places kept in the queue for large messages encoded off the scheduler threads.
//!
//! A message whose encoding outgrows `remote::ENCODE_APART` on its sender's thread is
//! encoded on the `blocking` thread pool instead, so that a long copy never holds up the
//! other processes of that thread. Its place in the queue is kept meanwhile:
//! [`Outbound::hold`] puts a placeholder in the large lane, counted as its sender's, so
//! that whatever the sender queues next waits behind it (as behind any large message of
//! that sender: see the module docs of `outbound`), and [`Outbound::fill`] puts the frame
//! in its place once encoded. The writer sends nothing of the large lane past a
//! placeholder; small messages of other senders go on passing it. While a place is held,
//! the large lane has no room for others (its message's size is not known yet, and it is
//! at least `ENCODE_APART`): a sender casting one large message after another is refused
//! (`Overloaded`) until the first is encoded, as it is once that is queued and fills the
//! lane — so encodings do not pile up on the thread pool past the queue's bound.

use std::sync::atomic::Ordering;

use super::{is_large_len, Frame, Large, Outbound, PushError};

impl Outbound {
    /// Keeps a place in the large lane for a message of `sender` being encoded, if a large
    /// message of that sender could be queued now (as [`try_push`](Self::try_push) would
    /// queue it); returns the place's slot, for [`fill`](Self::fill).
    pub(crate) fn hold(&self, sender: usize) -> Result<u64, PushError> {
        self.hold_place(sender, false)
    }

    /// Keeps a place in the large lane for a reply of `sender` being encoded. A reply never
    /// waits for room (the reader bounds replies by taking no more calls while too many
    /// are queued): only a closed queue refuses it.
    pub(crate) fn hold_reply(&self, sender: usize) -> Result<u64, PushError> {
        self.hold_place(sender, true)
    }

    fn hold_place(&self, sender: usize, reply: bool) -> Result<u64, PushError> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(PushError::Closed);
        }
        if !reply && !lanes.may_queue(true, sender, None, self.limit) {
            return Err(PushError::Full);
        }
        // Slots and fragmented messages share the numbering: the slot's number becomes the
        // message's.
        let slot = lanes.next_fragment;
        lanes.next_fragment += 1;
        *lanes.senders_in_large.entry(sender).or_default() += 1;
        lanes.encoding += 1;
        lanes.large.push_back(Large::Encoding {
            slot,
            sender,
            reply,
        });
        Ok(slot)
    }

    /// Puts the frame encoded for `slot` in its place — or, with `None` (the message did
    /// not encode), gives the place up. `false` if the place is gone: the connection closed
    /// meanwhile (the frame is dropped then, after the lock).
    pub(crate) fn fill(&self, slot: u64, frame: Option<Frame>) -> bool {
        let mut lanes = self.lock();
        let lanes = &mut *lanes;
        let found = lanes
            .large
            .iter()
            .position(|entry| matches!(entry, Large::Encoding { slot: held, .. } if *held == slot));
        let (Some(at), false) = (found, lanes.closed) else {
            return false;
        };
        let Large::Encoding { sender, reply, .. } = lanes.large[at] else {
            unreachable!("found above")
        };
        lanes.encoding -= 1;
        match frame {
            Some(frame) => {
                let len = frame.len();
                lanes.large[at] = if is_large_len(len) {
                    lanes.large_bytes += len - 4;
                    if reply {
                        lanes.reply_bytes += len - 4;
                    }
                    Large::Fragmented {
                        id: slot,
                        frame,
                        sent: 4,
                        sender,
                        reply,
                        mark: None,
                    }
                } else {
                    let frame = frame.into_vec();
                    lanes.small_bytes += frame.len();
                    if reply {
                        lanes.reply_bytes += frame.len();
                    }
                    Large::Whole {
                        frame,
                        sender,
                        reply,
                        mark: None,
                    }
                };
                if reply {
                    self.replies.store(lanes.reply_bytes, Ordering::Relaxed);
                }
            }
            None => {
                lanes.large.remove(at);
                if let Some(count) = lanes.senders_in_large.get_mut(&sender) {
                    *count -= 1;
                    if *count == 0 {
                        lanes.senders_in_large.remove(&sender);
                    }
                }
            }
        }
        // Its size is known now: there may be room for others.
        self.room.notify(usize::MAX);
        self.work.notify(1);
        true
    }
}
