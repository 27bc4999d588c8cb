//! Taking a queued frame back before the writer takes it: a remote spawn whose timeout ran
//! out while its request waited in the queue is then known not to have been sent, and is
//! never sent (see `dist::spawn`).
//!
//! The writer takes frames under the queue's lock, and so is a frame taken back: either
//! the frame is still queued, whole — it is taken out and never sent — or the writer has
//! taken it (or its first fragment), and it may be on its way: it is left to go.

use super::{Lanes, Large, Outbound};

/// A frame queued by [`Outbound::push_waiting_marked`], to take back with
/// [`Outbound::withdraw`].
#[derive(Debug)]
pub(crate) struct Queued {
    mark: u64,
}

/// A frame of the small lane that may be taken back: where it is in the lane.
pub(super) struct SmallMark {
    mark: u64,
    offset: usize,
    len: usize,
}

/// Where the next frame pushed goes: the lengths of the small and large lanes.
#[derive(Clone, Copy)]
pub(super) struct Before {
    small: usize,
    large: usize,
}

impl Lanes {
    /// Where a frame pushed now goes (to mark it once pushed, see [`mark_pushed`]).
    ///
    /// [`mark_pushed`]: Self::mark_pushed
    pub(super) fn before_push(&self) -> Before {
        Before {
            small: self.small.len(),
            large: self.large.len(),
        }
    }

    /// Marks the frame just pushed (not a reply), whose lane was as `before` says.
    pub(super) fn mark_pushed(&mut self, before: Before) -> Queued {
        let mark = self.next_mark;
        self.next_mark += 1;
        if self.large.len() > before.large {
            if let Some(Large::Whole { mark: at, .. } | Large::Fragmented { mark: at, .. }) =
                self.large.back_mut()
            {
                *at = Some(mark);
            }
        } else {
            self.small_marks.push(SmallMark {
                mark,
                offset: before.small,
                len: self.small.len() - before.small,
            });
        }
        Queued { mark }
    }

    /// The marks of the frames queued that may still be taken back.
    pub(super) fn marked(&self) -> Vec<u64> {
        let small = self.small_marks.iter().map(|m| m.mark);
        let large = self.large.iter().filter_map(|entry| match entry {
            Large::Whole { mark, .. } => *mark,
            Large::Fragmented { mark, sent, .. } if *sent == 4 => *mark,
            _ => None,
        });
        small.chain(large).collect()
    }

    /// Takes the frame `mark` marks out of its lane, if none of it was taken — or, the
    /// queue closed, says whether it was still queued then, never sent.
    fn withdraw(&mut self, mark: u64) -> bool {
        if self.closed {
            return self.unsent.contains(&mark);
        }
        if let Some(at) = self.small_marks.iter().position(|m| m.mark == mark) {
            let SmallMark { offset, len, .. } = self.small_marks.remove(at);
            self.small.drain(offset..offset + len);
            // Marked in the order pushed: those after it were after it in the lane.
            for later in &mut self.small_marks[at..] {
                later.offset -= len;
            }
            self.small_bytes -= len;
            self.small_count -= 1;
            return true;
        }
        let found = self.large.iter().position(|entry| match entry {
            Large::Whole { mark: at, .. } => *at == Some(mark),
            // Not once a fragment of it has been taken.
            Large::Fragmented { mark: at, sent, .. } => *at == Some(mark) && *sent == 4,
            Large::Encoding { .. } => false,
        });
        let Some(at) = found else {
            return false;
        };
        let sender = match self.large.remove(at) {
            Some(Large::Whole { frame, sender, .. }) => {
                self.small_bytes -= frame.len();
                sender
            }
            Some(Large::Fragmented { frame, sender, .. }) => {
                self.large_bytes -= frame.len() - 4;
                sender
            }
            _ => unreachable!("found above"),
        };
        if let Some(count) = self.senders_in_large.get_mut(&sender) {
            *count -= 1;
            if *count == 0 {
                self.senders_in_large.remove(&sender);
            }
        }
        true
    }
}

impl Outbound {
    /// Takes back the frame `queued` stands for, unless the writer has taken it (or any
    /// of it): `true` if taken back — it is never sent (also once the queue has closed,
    /// for a frame still queued then). `false` if it may be on its way.
    pub(crate) fn withdraw(&self, queued: &Queued) -> bool {
        let withdrawn = self.lock().withdraw(queued.mark);
        if withdrawn {
            self.room.notify(usize::MAX);
        }
        withdrawn
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::batch::Taken;
    use super::super::{Frame, Outbound};
    use crate::dist::wire::FRAGMENT_SIZE;

    fn frame(byte: u8, len: usize) -> Vec<u8> {
        let mut frame = (len as u32 - 4).to_be_bytes().to_vec();
        frame.resize(len, byte);
        frame
    }

    fn taken(queue: &Outbound) -> Vec<u8> {
        let mut batch = Frame::default();
        assert!(matches!(queue.take_batch(&mut batch), Taken::Batch(_)));
        queue.written();
        batch.own
    }

    #[test]
    fn a_frame_taken_back_before_the_writer_takes_it_is_never_sent() {
        smol::block_on(async {
            let queue = Outbound::new(1 << 20, Arc::default());
            let (a, b, c) = (frame(1, 10), frame(2, 20), frame(3, 30));
            queue.push_waiting(&mut a.clone(), 1).await.unwrap();
            let second = queue.push_waiting_marked(&mut b.clone(), 2).await.unwrap();
            let third = queue.push_waiting_marked(&mut c.clone(), 3).await.unwrap();
            assert!(queue.withdraw(&second));
            assert!(!queue.withdraw(&second), "once");
            assert_eq!(queue.queued_bytes(), 40);
            assert_eq!(taken(&queue), [a, c].concat());
            assert!(!queue.withdraw(&third), "taken by the writer");
            // Held behind its sender's large message, and large itself.
            let large = frame(4, FRAGMENT_SIZE * 2);
            queue.push_waiting(&mut large.clone(), 5).await.unwrap();
            let held = queue
                .push_waiting_marked(&mut frame(5, 10), 5)
                .await
                .unwrap();
            let big = queue
                .push_waiting_marked(&mut large.clone(), 6)
                .await
                .unwrap();
            assert!(queue.withdraw(&held));
            assert!(queue.withdraw(&big));
            assert_eq!(queue.queued_bytes(), large.len() - 4);
            taken(&queue);
            assert_eq!(queue.queued_bytes(), 0);
            let fresh = Outbound::new(1 << 20, Arc::default());
            let first = fresh
                .push_waiting_marked(&mut large.clone(), 6)
                .await
                .unwrap();
            let mut batch = Frame::default();
            assert!(matches!(fresh.take_batch(&mut batch), Taken::Batch(_)));
            assert!(!fresh.withdraw(&first), "its first fragment is taken");
        });
    }
}
