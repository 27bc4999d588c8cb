//! The writer's side of the queue: taking what is queued as one batch to write — the
//! control frames first, then the small frames (the buffer itself, swapped, when nothing
//! comes before them), then fragments of the large lane up to [`BATCH`] bytes and within
//! the window on fragments in flight.

use std::sync::atomic::Ordering;

use super::super::wire::{self, WireMessage, FRAGMENT_SIZE, FRAGMENT_WINDOW};
use super::{Frame, Lanes, Large, Outbound};

/// The writer adds fragments to a batch until it holds this many bytes.
const BATCH: usize = 256 * 1024;

impl Lanes {
    /// Moves the next large-lane entries into `batch`, up to [`BATCH`] bytes and within
    /// the window. Returns the bytes freed of each class and the messages completed.
    fn take_large(&mut self, batch: &mut Frame) -> (usize, usize, usize) {
        let (mut freed_small, mut freed_large, mut messages) = (0, 0, 0);
        while batch.len() < BATCH {
            let Some(head) = self.large.front_mut() else {
                break;
            };
            let (done, sender) = match head {
                // Sent once encoded: nothing behind it may pass it.
                Large::Encoding { .. } => break,
                Large::Whole {
                    frame,
                    sender,
                    reply,
                    ..
                } => {
                    freed_small += frame.len();
                    if *reply {
                        self.reply_bytes -= frame.len();
                    }
                    batch.own.extend_from_slice(frame);
                    messages += 1;
                    (true, *sender)
                }
                Large::Fragmented {
                    id,
                    frame,
                    sent,
                    sender,
                    reply,
                    ..
                } => {
                    if self.unacked >= FRAGMENT_WINDOW {
                        break;
                    }
                    let len = frame.len();
                    let end = (*sent + FRAGMENT_SIZE).min(len);
                    let last = end == len;
                    let piece = end - *sent;
                    let fragment = WireMessage::Fragment {
                        id: *id,
                        last,
                        size: (len - 4) as u64,
                    };
                    // The fragment's header (two numbers: always encodes), its length
                    // prefix counting the piece, then the piece: lent buffers stay lent.
                    let start = batch.own.len();
                    let _ = wire::encode_frame(&fragment, &mut batch.own);
                    let len = batch.own.len() - start - 4 + piece;
                    batch.own[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
                    frame.share(*sent, end, batch);
                    self.unacked += piece;
                    freed_large += piece;
                    if *reply {
                        self.reply_bytes -= piece;
                    }
                    *sent = end;
                    messages += usize::from(last);
                    (last, *sender)
                }
            };
            if done {
                if let Some(Large::Fragmented { frame, .. }) = self.large.pop_front() {
                    self.finished.push(frame);
                }
                if let Some(count) = self.senders_in_large.get_mut(&sender) {
                    *count -= 1;
                    if *count == 0 {
                        self.senders_in_large.remove(&sender);
                    }
                }
            }
        }
        (freed_small, freed_large, messages)
    }
}

impl Outbound {
    /// Waits for the next batch of frames to write, appending them to `batch`; returns how
    /// many messages it holds, or `None` once the queue is closed. Returns an empty batch
    /// at once, taking nothing, if `held()` (fault injection's stall) when it would take:
    /// it is asked under the queue's lock, so that a frame queued after the stall began is
    /// never taken.
    pub(crate) async fn next_batch(
        &self,
        batch: &mut Frame,
        held: impl Fn() -> bool,
    ) -> Option<Batch> {
        loop {
            let listener = self.work.listen();
            match self.take_batch_unless(batch, &held) {
                Taken::Closed => return None,
                Taken::Held => return Some(Batch::default()),
                Taken::Batch(Batch { messages: 0, .. }) => {
                    listener.await;
                    // Woken by the first frame queued since the last batch: whoever queued
                    // it (a task of this thread, mostly) goes on first, so that the next
                    // write carries its following frames too rather than one each.
                    smol::future::yield_now().await;
                }
                Taken::Batch(taken) => return Some(taken),
            }
        }
    }

    /// The writer has written the batch it took. Returns `true` if more is queued.
    pub(crate) fn written(&self) -> bool {
        let mut lanes = self.lock();
        lanes.writing = false;
        let work = !lanes.is_empty();
        drop(lanes);
        if work {
            self.work.notify(1);
        }
        work
    }

    #[cfg(test)]
    pub(super) fn take_batch(&self, batch: &mut Frame) -> Taken {
        self.take_batch_unless(batch, &|| false)
    }

    fn take_batch_unless(&self, batch: &mut Frame, held: &dyn Fn() -> bool) -> Taken {
        // Declared first, dropped last: after the lock (handing pages back takes time).
        let (mut dropped, mut dropped_lent) = (Vec::new(), Vec::new());
        let mut lanes = self.lock();
        let lanes = &mut *lanes;
        if lanes.closed {
            return Taken::Closed;
        }
        if held() {
            return Taken::Held;
        }
        if lanes.writing {
            // A sender is writing its frame; it calls for the writer when done.
            return Taken::Batch(Batch::default());
        }
        // The rest of a frame a sender began to write.
        let head = lanes.partial.len();
        let mut messages = usize::from(head > 0);
        batch.own.append(&mut lanes.partial);
        // Control frames (heartbeats, member lists, the global registry's messages) and
        // fragment acknowledgements are not counted as messages sent: the receiving side
        // does not count them either.
        let control = std::mem::take(&mut lanes.control_count);
        batch.own.extend_from_slice(&lanes.control);
        lanes.control.clear();
        if lanes.ack_due > 0 {
            let bytes = lanes.ack_due.min(u64::from(u32::MAX));
            lanes.ack_due -= bytes;
            let ack = WireMessage::FragmentAck {
                bytes: bytes as u32,
            };
            // Two numbers: always encodes.
            let _ = wire::encode_frame(&ack, &mut batch.own);
        }
        let mut freed_small = lanes.small.len();
        lanes.reply_bytes -= std::mem::take(&mut lanes.small_reply_bytes);
        messages += std::mem::take(&mut lanes.small_count);
        if batch.own.is_empty() {
            std::mem::swap(&mut batch.own, &mut lanes.small);
        } else {
            batch.own.extend_from_slice(&lanes.small);
            lanes.small.clear();
        }
        // Taken: none of them can be taken back now.
        lanes.small_marks.clear();
        let (small, large, completed) = lanes.take_large(batch);
        for frame in lanes.finished.drain(..) {
            dropped.extend(self.spares.give(frame.own));
            dropped_lent.push(frame.lent);
        }
        freed_small += small;
        messages += completed;
        lanes.small_bytes -= freed_small;
        lanes.large_bytes -= large;
        self.replies.store(lanes.reply_bytes, Ordering::Relaxed);
        if freed_small + large > 0 {
            self.room.notify(usize::MAX);
        }
        let empty = batch.own.is_empty() && batch.lent.is_empty();
        lanes.writing = !empty;
        // A fragment (or a control frame) alone counts as progress too.
        Taken::Batch(Batch {
            messages: if empty {
                0
            } else {
                (messages + control).max(1)
            },
            counted: messages,
            head,
        })
    }
}

pub(super) enum Taken {
    Closed,
    /// Fault injection holds the writer back.
    Held,
    Batch(Batch),
}

/// What a batch holds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Batch {
    /// Frames, more or less: a batch of fragments counts as one (0: nothing to write).
    pub(crate) messages: usize,
    /// The messages it holds for `TrafficStats::messages_sent`: user messages, replies,
    /// signals, a large message once its last fragment is in — not control frames.
    pub(crate) counted: usize,
    /// Bytes at its front that finish a frame a sender wrote in part: they must reach the
    /// socket whatever happens to the rest, or the stream is broken mid-frame.
    pub(crate) head: usize,
}
