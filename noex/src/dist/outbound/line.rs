//! Waiting for room: the senders whose message found its lane full, in line.
//!
//! A sender that may wait (a call, an awaited cast) and finds no room takes a ticket and
//! joins its lane's line; room that frees up goes to the first in line, so a waiting
//! sender is never passed over for ever by others. While anyone waits in a lane's line, a
//! sender that may not wait (`try_push`: a plain cast) is refused there even if a few
//! bytes are free: it would pass the ones that waited first.
//!
//! Each lane has its own line, so a small message never waits behind a large one that
//! waits for room in the large lane (as a small message is never sent behind another
//! sender's large one). Order per sender holds across the two lines as well: a sender's
//! message waits while that sender has an earlier one waiting in the other line, and a
//! plain cast of a sender that has a message waiting is refused.

use std::collections::VecDeque;

use super::{is_large_len, Lanes, Outbound, PushError, Queued};
use crate::bytes::Lent;

/// The senders waiting for room in one lane: (ticket, sender), in the order they came.
#[derive(Default)]
pub(super) struct Line {
    waiting: VecDeque<(u64, usize)>,
}

impl Line {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn is_first(&self, ticket: u64) -> bool {
        self.waiting
            .front()
            .is_some_and(|&(first, _)| first == ticket)
    }

    /// `true` if `sender` waits here with a ticket older than `ticket`.
    #[inline]
    fn has_sender_before(&self, sender: usize, ticket: u64) -> bool {
        !self.waiting.is_empty()
            && self
                .waiting
                .iter()
                .any(|&(other, waiting)| waiting == sender && other < ticket)
    }

    /// `true` if `sender` waits here.
    fn has_sender(&self, sender: usize) -> bool {
        self.waiting.iter().any(|&(_, waiting)| waiting == sender)
    }

    /// Takes `ticket` out of the line; `true` if it was first.
    fn leave(&mut self, ticket: u64) -> bool {
        match self.waiting.iter().position(|&(other, _)| other == ticket) {
            Some(at) => {
                self.waiting.remove(at);
                at == 0
            }
            None => false,
        }
    }
}

impl Lanes {
    /// `true` if nobody waits for room, in either lane.
    #[inline]
    pub(super) fn nobody_waits(&self) -> bool {
        self.small_line.is_empty() && self.large_line.is_empty()
    }

    /// May a frame of `sender` go into its lane now? `ticket` is its place in line if it
    /// waits (`None`: a sender that does not wait, which comes after everyone in line).
    #[inline]
    pub(super) fn may_queue(
        &self,
        large: bool,
        sender: usize,
        ticket: Option<u64>,
        limit: usize,
    ) -> bool {
        let (line, other) = if large {
            (&self.large_line, &self.small_line)
        } else {
            (&self.small_line, &self.large_line)
        };
        let first = match ticket {
            Some(ticket) => line.is_first(ticket),
            None => line.is_empty(),
        };
        first
            && self.has_room(large, limit)
            && !other.has_sender_before(sender, ticket.unwrap_or(u64::MAX))
    }

    fn line(&mut self, large: bool) -> &mut Line {
        if large {
            &mut self.large_line
        } else {
            &mut self.small_line
        }
    }
}

/// A sender's place in line, given up if it stops waiting (its future is dropped).
struct Place<'a> {
    queue: &'a Outbound,
    ticket: u64,
    sender: usize,
    large: bool,
    /// Out of line already: queued, or the queue closed (which empties the lines).
    done: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut lanes = self.queue.lock();
        let first = lanes.line(self.large).leave(self.ticket);
        // A later message of its sender waiting in the other line may go now.
        let behind = lanes.line(!self.large).has_sender(self.sender);
        drop(lanes);
        if first || behind {
            // The next in line may have room now.
            self.queue.room.notify(usize::MAX);
        }
    }
}

impl Outbound {
    /// Queues a frame from `sender` (a process key, 0 for none), waiting in line for room
    /// if its lane is full or others wait (see the module docs); fails only if the
    /// connection closes first, or at once if the frame is larger than the peer takes
    /// ([`PushError::TooLarge`]). The frame is taken out of `frame` once queued. Dropping
    /// the future gives up the wait: the frame is then not queued.
    pub(crate) async fn push_waiting(
        &self,
        frame: &mut Vec<u8>,
        sender: usize,
    ) -> Result<(), PushError> {
        self.push_waiting_lent(frame, Lent::new(), sender).await
    }

    /// [`push_waiting`](Self::push_waiting) for a frame that borrows `lent` (see
    /// [`Frame`](super::Frame)).
    pub(crate) async fn push_waiting_lent(
        &self,
        frame: &mut Vec<u8>,
        lent: Lent,
        sender: usize,
    ) -> Result<(), PushError> {
        self.push_waiting_inner(frame, lent, sender, false)
            .await
            .map(drop)
    }

    /// [`push_waiting`](Self::push_waiting) for a frame that may have to be taken back
    /// (see [`withdraw`](Self::withdraw)): its mark, once queued.
    pub(crate) async fn push_waiting_marked(
        &self,
        frame: &mut Vec<u8>,
        sender: usize,
    ) -> Result<Queued, PushError> {
        let queued = self.push_waiting_inner(frame, Lent::new(), sender, true);
        match queued.await? {
            Some(queued) => Ok(queued),
            None => unreachable!("a frame pushed with a mark is marked"),
        }
    }

    async fn push_waiting_inner(
        &self,
        frame: &mut Vec<u8>,
        mut lent: Lent,
        sender: usize,
        mark: bool,
    ) -> Result<Option<Queued>, PushError> {
        let lent_len: usize = lent.iter().map(|(_, bytes)| bytes.len()).sum();
        let large = is_large_len(frame.len() + lent_len);
        if large {
            self.check_size(frame.len() + lent_len)?;
        }
        let ticket = {
            let mut lanes = self.lock();
            if lanes.closed {
                return Err(PushError::Closed);
            }
            if lanes.may_queue(large, sender, None, self.limit) {
                let before = lanes.before_push();
                let tell = lanes.push_lent(frame, std::mem::take(&mut lent), sender, false, false);
                let queued = mark.then(|| lanes.mark_pushed(before));
                drop(lanes);
                if tell {
                    self.tell_writer();
                }
                return Ok(queued);
            }
            let ticket = lanes.next_ticket;
            lanes.next_ticket += 1;
            lanes.line(large).waiting.push_back((ticket, sender));
            ticket
        };
        let mut place = Place {
            queue: self,
            ticket,
            sender,
            large,
            done: false,
        };
        loop {
            let room = self.room.listen();
            {
                let mut lanes = self.lock();
                if lanes.closed {
                    place.done = true;
                    return Err(PushError::Closed);
                }
                if lanes.may_queue(large, sender, Some(ticket), self.limit) {
                    lanes.line(large).waiting.pop_front();
                    place.done = true;
                    let before = lanes.before_push();
                    let tell =
                        lanes.push_lent(frame, std::mem::take(&mut lent), sender, false, false);
                    let queued = mark.then(|| lanes.mark_pushed(before));
                    let others = !lanes.nobody_waits();
                    drop(lanes);
                    if tell {
                        self.tell_writer();
                    }
                    if others {
                        // Whoever is next may fit too, or waited only for this one.
                        self.room.notify(usize::MAX);
                    }
                    return Ok(queued);
                }
            }
            room.await;
        }
    }
}
